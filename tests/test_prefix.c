/* test_prefix: the prefix API (hak_malloc and friends) side by side with
 * glibc's malloc in one process (issue 2, "The API" and "Every free is
 * accounted for").
 *
 * Linked with libhakmem-prefix.a, so malloc here is glibc's.  Checks: the
 * hak_ functions behave as their namesakes; glibc's blocks are never taken
 * for hakmem's and the reverse; hak_free of a block glibc handed out returns
 * it to glibc (small: glibc hands the same address out again; large: its
 * mmapped-chunk count, mallinfo2().hblks, goes down); hak_free of a pointer
 * nobody allocated (stack, static array, a bare mmap) aborts with a message
 * naming the pointer; hak_mallinfo2, hak_mallinfo, hak_malloc_info,
 * hak_mallopt and the sized frees see hakmem's blocks, not glibc's.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "hakmem.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

static void check_hak_block(void *p, size_t req, size_t align, const char *what)
{
    CHECK(p != NULL, "%s(%zu) returned NULL, errno %d", what, req, errno);
    CHECK(hak_owns(p) == 1, "%s(%zu)=%p: hak_owns is %d", what, req, p, hak_owns(p));
    if (align < 16)
        align = 16;
    CHECK(IS_ALIGNED(p, align), "%s(%zu)=%p not %zu-byte aligned", what, req, p, align);
    size_t u = hak_usable_size(p);
    CHECK(u >= req, "%s(%zu)=%p: hak_usable_size %zu", what, req, p, u);
    memset(p, 0x77, u);
}

static void test_functions(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t sz = 0; sz <= (4u << 20); sz = sz < 2048 ? sz + 1 : sz * 2 + 13) {
        void *p = hak_malloc(t_size(sz));
        check_hak_block(p, sz, 16, "hak_malloc");
        hak_free(p);
    }
    unsigned char *c = hak_calloc(t_size(100), t_size(100));
    CHECK(c != NULL, "hak_calloc(100, 100)");
    for (int i = 0; i < 10000; i++)
        CHECK(c[i] == 0, "hak_calloc block not zeroed at byte %d", i);
    fill_bytes(c, 0, 10000, 3);
    c = hak_realloc(c, t_size(200000));
    CHECK(c != NULL && hak_owns(c) == 1, "hak_realloc grow");
    CHECK(check_bytes(c, 10000, 3) == 10000, "hak_realloc lost contents");
    c = hak_realloc(c, t_size(50));
    CHECK(c != NULL && check_bytes(c, 50, 3) == 50, "hak_realloc shrink lost contents");
    c = hak_reallocarray(c, t_size(40), t_size(40));
    CHECK(c != NULL && check_bytes(c, 50, 3) == 50, "hak_reallocarray lost contents");
    errno = 0;
    CHECK(hak_reallocarray(c, t_size(SIZE_MAX / 2 + 1), 2) == NULL && errno == ENOMEM,
          "hak_reallocarray overflow: not NULL + ENOMEM");
    CHECK(check_bytes(c, 50, 3) == 50, "failed hak_reallocarray damaged the block");
    hak_free(c);
    hak_free(NULL);

    for (size_t al = 8; al <= (1u << 20); al *= 2) {
        void *p = hak_aligned_alloc(t_size(al), t_size(al + 5));
        check_hak_block(p, al + 5, al, "hak_aligned_alloc");
        hak_free(p);
        p = hak_memalign(t_size(al), t_size(100));
        check_hak_block(p, 100, al, "hak_memalign");
        hak_free(p);
        p = NULL;
        CHECK(hak_posix_memalign(&p, t_size(al), t_size(3 * al)) == 0, "hak_posix_memalign(%zu)", al);
        check_hak_block(p, 3 * al, al, "hak_posix_memalign");
        hak_free(p);
    }
    void *p = (void *)0x1234;
    CHECK(hak_posix_memalign(&p, t_size(24), 10) == EINVAL, "hak_posix_memalign(24) not EINVAL");
    CHECK(hak_posix_memalign(&p, t_size(0), 10) == EINVAL, "hak_posix_memalign(0) not EINVAL");
    CHECK(hak_posix_memalign(&p, t_size(4), 10) == EINVAL, "hak_posix_memalign(4) not EINVAL");
    p = hak_valloc(t_size(100));
    check_hak_block(p, 100, page, "hak_valloc");
    hak_free(p);
    p = hak_pvalloc(t_size(page + 1));
    check_hak_block(p, 2 * page, page, "hak_pvalloc");
    hak_free(p);

    static const size_t imp[] = { SIZE_MAX, SIZE_MAX - 4095, (size_t)1 << 48 };
    for (int i = 0; i < 3; i++) {
        size_t s = t_size(imp[i]);
        errno = 0;
        CHECK(hak_malloc(s) == NULL && errno == ENOMEM, "hak_malloc(%zu): not NULL + ENOMEM", s);
        errno = 0;
        CHECK(hak_calloc(1, s) == NULL && errno == ENOMEM, "hak_calloc(1, %zu): not NULL + ENOMEM", s);
        errno = 0;
        CHECK(hak_realloc(NULL, s) == NULL && errno == ENOMEM, "hak_realloc(NULL, %zu)", s);
        errno = 0;
        CHECK(hak_aligned_alloc(64, s) == NULL && errno == ENOMEM, "hak_aligned_alloc(64, %zu)", s);
        CHECK(hak_posix_memalign(&p, 64, s) == ENOMEM, "hak_posix_memalign(64, %zu)", s);
    }
    errno = 0;
    CHECK(hak_calloc(t_size(SIZE_MAX / 2 + 1), 2) == NULL && errno == ENOMEM,
          "hak_calloc overflow: not NULL + ENOMEM");
}

/* glibc's malloc is untouched, and the two allocators' blocks interleave
 * without either one mistaking the other's. */
static void test_side_by_side(void)
{
    void *g = malloc(t_size(100));
    CHECK(g != NULL, "malloc");
    CHECK(hak_owns(g) == 0, "malloc(100)=%p is hakmem's: malloc should be glibc's here", g);
    free(g);

    enum { N = 4000 };
    static void *ps[N];
    static size_t sz[N];
    static int mine[N];
    rng_t r;
    rng_seed(&r, 99);
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N; i++) {
            uint64_t x = rng_next(&r);
            sz[i] = (x >> 8) % 4 == 0 ? (size_t)(x >> 16) % 300000 : (size_t)(x >> 16) % 2000;
            mine[i] = (int)(x & 1);
            ps[i] = mine[i] ? hak_malloc(sz[i]) : malloc(sz[i]);
            CHECK(ps[i] != NULL, "allocation of %zu failed", sz[i]);
            fill_pattern(ps[i], sz[i], (uint64_t)i * 31 + (uint64_t)round);
        }
        for (int i = 0; i < N; i++) {
            CHECK(hak_owns(ps[i]) == mine[i], "%s block %p (%zu bytes): hak_owns says %d",
                  mine[i] ? "hak_malloc" : "glibc malloc", ps[i], sz[i], hak_owns(ps[i]));
            CHECK(check_pattern(ps[i], sz[i], (uint64_t)i * 31 + (uint64_t)round) == sz[i],
                  "block %d (%p, %zu bytes) damaged", i, ps[i], sz[i]);
        }
        for (int i = 0; i < N; i++) {
            if (mine[i])
                hak_free(ps[i]);
            else
                free(ps[i]);
        }
    }
}

/* hak_free of a glibc block gives it back to glibc */
static void test_free_glibc_blocks(void)
{
    /* small: glibc's per-thread cache hands the same chunk back out */
    for (size_t sz = 16; sz <= 1024; sz *= 2) {
        void *g = malloc(t_size(sz));
        CHECK(g != NULL && hak_owns(g) == 0, "glibc malloc(%zu)", sz);
        memset(g, 1, sz);
        hak_free(g);
        void *again = malloc(t_size(sz));
        CHECK(again == g, "after hak_free of glibc block %p (%zu bytes), glibc's next malloc gave "
              "%p: the block did not go back to glibc", g, sz, again);
        free(again);
    }
    /* a glibc block from calloc and from memalign, freed by hakmem */
    void *g = calloc(3, t_size(50));
    CHECK(g != NULL, "calloc");
    hak_free(g);
    g = memalign(256, t_size(300));
    CHECK(g != NULL, "memalign");
    hak_free(g);

    /* large: mmapped by glibc, counted in mallinfo2().hblks */
    for (int i = 0; i < 3; i++) {
        struct mallinfo2 before = mallinfo2();
        void *big = malloc(t_size(1u << 20));
        CHECK(big != NULL, "glibc malloc(1 MiB)");
        memset(big, 2, 1u << 20);
        struct mallinfo2 during = mallinfo2();
        CHECK(during.hblks == before.hblks + 1, "glibc malloc(1 MiB) is not mmapped? "
              "hblks %zu -> %zu", before.hblks, during.hblks);
        CHECK(hak_owns(big) == 0, "glibc's 1 MiB block %p taken for hakmem's", big);
        hak_free(big);
        struct mallinfo2 after = mallinfo2();
        CHECK(after.hblks == before.hblks, "hak_free of glibc's mmapped 1 MiB block %p did not "
              "return it to glibc: hblks %zu before, %zu after", big, before.hblks, after.hblks);
    }
}

/* Two threads, each mixing both allocators, freeing blocks the other made */
#define XN 2000
static void *xblocks[2][XN];
static void *mixer(void *arg)
{
    int id = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, (uint64_t)id + 1000);
    for (int i = 0; i < XN; i++) {
        size_t s = rng_below(&r, 5000);
        xblocks[id][i] = (i & 1) ? hak_malloc(s) : malloc(s);
        CHECK(xblocks[id][i] != NULL, "allocation in mixer");
        memset(xblocks[id][i], id, s);
    }
    return NULL;
}
static void test_threads(void)
{
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, mixer, (void *)(intptr_t)i) == 0, "pthread_create");
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int id = 0; id < 2; id++)
        for (int i = 0; i < XN; i++) {
            CHECK(hak_owns(xblocks[id][i]) == (i & 1), "mixer block %d of thread %d: hak_owns %d",
                  i, id, hak_owns(xblocks[id][i]));
            if (i & 1)
                hak_free(xblocks[id][i]);
            else
                free(xblocks[id][i]);
        }
}

/* hak_free(bad) in a child must die by SIGABRT and name the pointer */
static char static_area[256];

static void free_in_child(void *bad)
{
    signal(SIGABRT, SIG_DFL);
    alarm(20);
    hak_free(bad);   /* hakmem aborts; returning fails the case */
}

static void expect_abort(void *bad, const char *what)
{
    t_child r = t_run_child(free_in_child, bad);
    int st = r.status;
    char *out = r.err;
    size_t n = strlen(out);
    char *nl;
    while ((nl = strchr(out, '\n')) && nl[1])
        *nl = ' ';
    if (nl)
        *nl = 0;
    if (WIFEXITED(st))
        FAIL("hak_free(%p) (%s) did not abort: the child exited with %d; stderr: \"%s\"", bad,
             what, WEXITSTATUS(st), out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "hak_free(%p) (%s): the child died by "
          "signal %d, not SIGABRT; stderr: \"%s\"", bad, what,
          WIFSIGNALED(st) ? WTERMSIG(st) : -1, out);
    /* the message names the pointer, in hex, whatever the case or prefix */
    char hex[32];
    snprintf(hex, sizeof hex, "%lx", (unsigned long)(uintptr_t)bad);
    char lower[sizeof(r.err)];
    for (size_t i = 0; i <= n; i++)
        lower[i] = (char)((out[i] >= 'A' && out[i] <= 'F') ? out[i] - 'A' + 'a' : out[i]);
    CHECK(strstr(lower, hex) != NULL, "hak_free(%p) (%s) aborted, but its message does not "
          "name the pointer: \"%s\"", bad, what, out);
}

static void test_invalid_free(void)
{
    char on_stack[64];
    memset(on_stack, 0, sizeof on_stack);
    expect_abort(&on_stack[16], "a stack address");
    expect_abort(&static_area[32], "a pointer into a static array");
    expect_abort(static_area, "the start of a static array");
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    expect_abort(m + page + 64, "a pointer into a bare mmap");
    munmap(m, 2 * page);
}

/* The prefix library leaves the process's signals alone (issue 13, item
 * 6): no handler of hakmem's, before or after its functions ran. */
static void check_no_handlers(const char *when)
{
    static const int sigs[] = { SIGSEGV, SIGBUS, SIGABRT };
    for (int i = 0; i < 3; i++) {
        struct sigaction sa;
        CHECK(sigaction(sigs[i], NULL, &sa) == 0, "sigaction");
        CHECK(!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL,
              "%s: signal %d has a handler: the prefix library installed one", when, sigs[i]);
    }
}

/* The hak_ equivalents of glibc's introspection API and of the sized
 * frees report hakmem's blocks and nothing of glibc's, whose own mallinfo2
 * and mallopt stay glibc's. */
static void test_introspection(void)
{
    struct mallinfo2 h0 = hak_mallinfo2(), g0 = mallinfo2();
    static void *b[200];
    size_t usable = 0;
    for (int i = 0; i < 200; i++) {
        b[i] = hak_malloc(t_size(3000));
        usable += hak_usable_size(b[i]);
    }
    void *g = malloc(t_size(3000));
    struct mallinfo2 h1 = hak_mallinfo2(), g1 = mallinfo2();
    CHECK(h1.uordblks - h0.uordblks == usable, "hak_mallinfo2: uordblks %zu -> %zu for %zu bytes of hak_malloc",
          h0.uordblks, h1.uordblks, usable);
    CHECK(g1.uordblks - g0.uordblks >= 3000 && g1.uordblks - g0.uordblks < 3000 + 64,
          "glibc's mallinfo2 moved by %zu for one malloc(3000) and 200 hak_mallocs", g1.uordblks - g0.uordblks);
    CHECK(h1.arena >= h1.uordblks && h1.arena % (2u << 20) == 0, "hak_mallinfo2: arena %zu", h1.arena);
    CHECK(hak_mallinfo().uordblks == (int)h1.uordblks, "hak_mallinfo differs from hak_mallinfo2");
    free(g);
    for (int i = 0; i < 200; i++) hak_free_sized(b[i], 3000);
    CHECK(hak_mallinfo2().uordblks == h0.uordblks, "hak_free_sized did not free the blocks");
    void *a = hak_aligned_alloc(256, t_size(1000));
    hak_free_aligned_sized(a, 256, 1000);
    CHECK(hak_mallinfo2().uordblks == h0.uordblks, "hak_free_aligned_sized did not free the block");

    CHECK(hak_mallopt(M_MXFAST, 161) == 0 && hak_mallopt(M_MXFAST, 64) == 1 && hak_mallopt(12345, 1) == 0,
          "hak_mallopt's return values");
    char path[] = "/tmp/hakmem-prefix-info.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w+");
    errno = 0;
    CHECK(hak_malloc_info(1, f) == -1 && errno == EINVAL, "hak_malloc_info(1, f): not -1 and EINVAL");
    CHECK(hak_malloc_info(0, f) == 0, "hak_malloc_info(0, f)");
    rewind(f);
    static char xml[65536];
    size_t n = fread(xml, 1, sizeof xml - 1, f);
    xml[n] = '\0';
    fclose(f);
    unlink(path);
    CHECK(strncmp(xml, "<malloc version=\"1\">\n<heap nr=\"0\">", 29) == 0 && strstr(xml, "</malloc>\n") != NULL,
          "hak_malloc_info wrote:\n%s", xml);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    check_no_handlers("at start");
    /* a glibc block from before hakmem's first use, realloc'ed and freed
     * through hakmem at the end */
    char *early = malloc(1000);
    CHECK(early != NULL, "malloc");
    fill_bytes(early, 0, 1000, 77);
    /* A fixed mmap threshold (no dynamic raising), and the large-block check
     * first, while glibc's heap top is small: glibc serves a large request
     * from the top of its heap when that is big enough, mmapping only
     * otherwise. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    test_free_glibc_blocks();
    test_functions();
    test_side_by_side();
    test_threads();
    test_invalid_free();
    test_introspection();
    early = hak_realloc(early, t_size(3000));
    CHECK(early != NULL && hak_owns(early) == 1, "hak_realloc of a glibc block from before hakmem's first use");
    CHECK(check_bytes(early, 1000, 77) == 1000, "hak_realloc of a glibc block lost its bytes");
    hak_free(early);
    check_no_handlers("after hak_ calls");
    printf("test_prefix: ok\n");
    return 0;
}
