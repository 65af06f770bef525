/* test_badfree.c: frees hakmem must refuse. Each case runs in a forked
 * child whose stderr is captured: it must die by SIGABRT with one line that
 * names the pointer. Every build refuses pointers hakmem does not own and
 * interior pointers into large blocks, and double frees by the same thread
 * (at once, after other frees: glibc's tst-tcfree1 and 2, of its own block
 * or another thread's) while a live block that holds a freed one's bytes
 * is no double free (tst-tcfree3); the debug build also catches double
 * frees by another thread, interior pointers
 * into slabs, and writes into freed blocks (found when the block is reused). The debug build's free-route trace (HAKMEM_FREE_ROUTE_TRACE=1)
 * is checked by running this program again with the option set. */
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

static void *volatile bad_ptr;   /* what the child frees; named in the message */

/* The body of a child: default SIGABRT, a time limit, then the case. */
static void child_body(void *fn)
{
    signal(SIGABRT, SIG_DFL);
    alarm(20);
    ((void (*)(void))fn)();
}

/* The child died by SIGABRT and said `what` and the pointer, in one line. */
static void expect_abort(const char *name, void (*fn)(void), const char *what)
{
    t_child r = t_run_child(child_body, (void *)fn);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
          "%s: child was not aborted (status %#x), stderr: %s", name, r.status, r.err);
    char addr[32];
    snprintf(addr, sizeof(addr), "%#lx", (unsigned long)t_addr(bad_ptr));
    CHECK(strstr(r.err, what) != NULL, "%s: stderr lacks \"%s\": %s", name, what, r.err);
    CHECK(strstr(r.err, addr) != NULL, "%s: stderr lacks the pointer %s: %s", name, addr, r.err);
    CHECK(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "%s: not one line: %s", name, r.err);
    printf("%s: refused: %s", name, r.err);
}

static char static_array[256];

static void free_stack(void)
{
    char local[64];
    bad_ptr = t_hide(local + 16);
    free(bad_ptr);
}

static void free_static(void)
{
    bad_ptr = t_hide(static_array + 32);
    free(bad_ptr);
}

static void free_mmap(void)
{
    char *m = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bad_ptr = t_hide(m + 4096);
    free(bad_ptr);
}

/* A buffer of the program's that looks like a glibc mmapped chunk of one
 * page (glibc's free used to unmap the program's first page) */
static void free_forged_mmapped(void)
{
    size_t *m = mmap(NULL, 4 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    m[0] = 0;
    m[1] = 4096 | 2;
    bad_ptr = t_hide(m + 2);
    free(bad_ptr);
}

/* A stack buffer whose word before the pointer looks like a chunk size of
 * another arena (glibc's free used to fault on it) */
static void free_stack_arena_size(void)
{
    size_t local[8] = { 0, 0, 0, 69, 0 };
    bad_ptr = t_hide(&local[4]);
    free(bad_ptr);
}

static void free_large_interior(void)
{
    char *p = malloc(t_size(1 << 20));
    bad_ptr = t_hide(p + 4096);
    free(bad_ptr);
}

static void realloc_foreign(void)
{
    char local[64];
    bad_ptr = t_hide(local);
    void *q = realloc(bad_ptr, 100);
    (void)t_hide(q);
}

static void double_free_small(void)
{
    void *p = malloc(t_size(48));
    void *keep = malloc(t_size(48));   /* the slab stays in use */
    free(p);
    bad_ptr = p;
    free(t_hide(p));
    free(keep);
}

/* the first freed block is no longer the most recent free */
static void double_free_later(void)
{
    void *p = malloc(t_size(48)), *q = malloc(t_size(48)), *r = malloc(t_size(48));
    void *keep = malloc(t_size(48));
    free(t_hide(p));
    free(t_hide(q));
    free(t_hide(r));
    bad_ptr = p;
    free(t_hide(p));
    free(keep);
}

/* glibc's tst-tcfree2: 20 blocks freed, then the first once more */
static void double_free_after_19(void)
{
    void *b[20];
    void *keep = malloc(t_size(64));
    for (int i = 0; i < 20; i++) b[i] = malloc(t_size(64));
    for (int i = 0; i < 20; i++) free(t_hide(b[i]));
    bad_ptr = b[0];
    free(t_hide(b[0]));
    free(keep);
}

static void *free_in_thread(void *p)
{
    free(p);
    return NULL;
}

static void *alloc_in_thread(void *arg)
{
    (void)arg;
    return malloc(t_size(80));
}

/* a block of another thread's slab, freed twice by this one (the foreign
 * cache) */
static void double_free_foreign(void)
{
    t_thread t;
    t_thread_start(&t, alloc_in_thread, NULL);
    void *p = t_thread_join(&t);
    free(t_hide(p));
    bad_ptr = p;
    free(t_hide(p));
}

/* a block of this thread's own slab, freed twice while another thread's
 * block is cached (the own block joins the cache, free.c) */
static void double_free_own_cached(void)
{
    void *mine = malloc(t_size(80)), *next = malloc(t_size(80)), *keep = malloc(t_size(80));
    t_thread t;
    t_thread_start(&t, alloc_in_thread, NULL);
    void *other = t_thread_join(&t);
    free(t_hide(other));
    free(t_hide(mine));
    free(t_hide(next));   /* not the same block twice in a row */
    bad_ptr = mine;
    free(t_hide(mine));
    free(keep);
}

/* glibc's tst-tcfree3: a live block holding the bytes of a freed one is
 * not a double free */
static void copied_from_freed(void)
{
    char *p = malloc(t_size(48)), *q = malloc(t_size(48));
    void *keep = malloc(t_size(48));
    free(t_hide(p));
    memcpy(q, t_hide(p), 48);
    free(t_hide(q));
    free(keep);
}

static void double_free_remote(void)
{
    void *p = malloc(t_size(200));
    void *keep = malloc(t_size(200));
    free(p);
    bad_ptr = p;
    t_thread t;
    t_thread_start(&t, free_in_thread, t_hide(p));
    t_thread_join(&t);
    free(keep);
}

/* a write into a freed block is found when the block is handed out again */
static void write_after_free(void)
{
    char *p = malloc(t_size(96));
    void *keep = malloc(t_size(96));
    free(p);
    p[40] = 'x';
    bad_ptr = p;
    void *again = malloc(t_size(96));   /* LIFO: the same block */
    (void)t_hide(again);
    free(keep);
}

static void free_interior_small(void)
{
    char *p = malloc(t_size(64));
    bad_ptr = t_hide(p + 16);
    free(bad_ptr);
}

static void trace_child(void *argv0)
{
    setenv("HAKMEM_FREE_ROUTE_TRACE", "1", 1);
    execl("/proc/self/exe", (char *)argv0, "trace", (char *)NULL);
    _exit(127);
}

/* hakmem's own fatal error with its crash report installed (not reset as
 * child_body does): still the one line, not the report of the abort after
 * it (issue 13, item 6). */
static void child_keeps_handlers(void *fn)
{
    alarm(20);
    ((void (*)(void))fn)();
}

static void expect_one_line_with_report(void)
{
    t_child r = t_run_child(child_keeps_handlers, (void *)free_stack);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "child was not aborted (status %#x), stderr: %s",
          r.status, r.err);
    CHECK(strstr(r.err, "invalid pointer") != NULL, "no message: %s", r.err);
    CHECK(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "a fatal error with the crash report installed is "
          "not one line: %s", r.err);
    printf("fatal error with the crash report installed: one line\n");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "trace") == 0) {   /* the route-trace child */
        void *p = malloc(t_size(40));
        free(t_hide(p));
        return 0;
    }
    test_init("test_badfree");
    expect_abort("stack pointer", free_stack, "invalid pointer");
    expect_one_line_with_report();
    expect_abort("static array", free_static, "invalid pointer");
    expect_abort("foreign mmap", free_mmap, "invalid pointer");
    expect_abort("mapping forged as a glibc chunk", free_forged_mmapped, "hakmem: free(): invalid pointer 0x");
    expect_abort("stack word like a glibc size", free_stack_arena_size, "hakmem: free(): invalid pointer 0x");
    expect_abort("large interior", free_large_interior, "invalid pointer");
    expect_abort("realloc foreign", realloc_foreign, "invalid pointer");
    /* every build: glibc's tst-tcfree1 and 2, and the foreign cache */
    expect_abort("double free", double_free_small, "double free");
    expect_abort("double free after other frees", double_free_later, "double free");
    expect_abort("double free after 19 other frees", double_free_after_19, "double free");
    expect_abort("double free of another thread's block", double_free_foreign, "double free");
    expect_abort("double free of an own block cached beside another's", double_free_own_cached,
                 "double free");
    t_child c = t_run_child(child_body, (void *)copied_from_freed);
    CHECK(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0, "a live block holding a freed one's bytes was "
          "refused (status %#x): %s", c.status, c.err);
    if (t_debug) {
        expect_abort("double free, other thread", double_free_remote, "double free");
        expect_abort("interior small", free_interior_small, "interior pointer");
        expect_abort("write after free", write_after_free, "write after free");

        /* route trace: the option is read at start-up, so run a new process */
        t_child r = t_run_child(trace_child, argv[0]);
        CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "trace child status %#x", r.status);
        CHECK(strstr(r.err, "-> local") != NULL, "no free route trace in: %.300s", r.err);
    }
    printf("test_badfree: ok\n");
    return 0;
}
