/* test_oom: running out of memory for real (issue 2: "failure sets errno to
 * ENOMEM", "a failed realloc leaves the old block intact", "Initialization
 * failure returns NULL with ENOMEM; it never prints and never crashes").
 *
 * A forked child limits its address space (RLIMIT_AS) to a little above what
 * it uses, then allocates small, mid and large blocks until malloc fails.
 * Each failure must be NULL with errno ENOMEM, never a crash; realloc,
 * calloc, posix_memalign and aligned_alloc fail cleanly too, realloc leaving
 * the block intact; after everything is freed, allocation works again.  In
 * the release build the child must print nothing.
 *
 * A second child (issue 13, item 3): memory the program freed is usable by
 * allocations of another size under the same limit. Large blocks until
 * failure, all freed (hakmem caches up to 64 MiB of them), then small ones
 * until failure: they must get at least 70% of the bytes the large ones
 * got; and the other way round. With a second thread, so that the purge
 * passes do not run inside the frees. (When a mapping failed, hakmem used to
 * return ENOMEM while holding cached large blocks, empty SuperSlabs and
 * spare slabs.)
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define HEADROOM ((size_t)96 << 20)
#define MAX_BLOCKS 4000000

/* Allocates blocks of `size` until malloc fails, chaining them through
 * their first word; returns the chain.  The failure must be ENOMEM. */
static void **fill_until_failure(size_t size, size_t *count, const char *what)
{
    void **head = NULL;
    size_t n = 0;
    for (;;) {
        errno = 0;
        void **p = malloc(size);
        if (!p) {
            CHECK(errno == ENOMEM, "%s: malloc(%zu) failed after %zu blocks with errno %d, "
                  "not ENOMEM", what, size, n, errno);
            break;
        }
        *p = head;
        ((char *)p)[size - 1] = 7;
        head = p;
        n++;
        CHECK(n < MAX_BLOCKS, "%s: %zu blocks of %zu bytes and malloc has not failed yet: "
              "the address-space limit is not working", what, n, size);
    }
    *count = n;
    return head;
}

static void free_chain(void **head)
{
    while (head) {
        void **next = *head;
        free(head);
        head = next;
    }
}

static void phase(size_t size, const char *what)
{
    size_t n;
    void **chain = fill_until_failure(size, &n, what);
    CHECK(n > 0, "%s: not even one %zu-byte block could be allocated", what, size);
    /* while memory is exhausted, the other entry points fail cleanly too */
    void *q;
    errno = 0;
    q = calloc(1, t_size(64u << 20));
    CHECK(q == NULL && errno == ENOMEM, "%s, memory full: calloc(1, 64 MiB) = %p, errno %d", what,
          q, errno);
    errno = 0;
    q = aligned_alloc(4096, t_size(64u << 20));
    CHECK(q == NULL && errno == ENOMEM, "%s, memory full: aligned_alloc(4096, 64 MiB) = %p, "
          "errno %d", what, q, errno);
    q = (void *)1;
    int r = posix_memalign(&q, 64, t_size(64u << 20));
    CHECK(r == ENOMEM, "%s, memory full: posix_memalign(64, 64 MiB) returned %d", what, r);
    /* realloc of a live block beyond what is left: NULL, ENOMEM, intact */
    unsigned char *b = (unsigned char *)chain;
    unsigned char saved[64];
    size_t keep = size < sizeof saved ? size : sizeof saved;
    memcpy(saved, b, keep);
    errno = 0;
    q = realloc(b, t_size(128u << 20));
    CHECK(q == NULL && errno == ENOMEM, "%s, memory full: realloc(%zu-byte block, 128 MiB) = %p, "
          "errno %d", what, size, q, errno);
    CHECK(memcmp(saved, b, keep) == 0 && b[size - 1] == 7,
          "%s: a failed realloc damaged the block", what);
    free_chain(chain);
    /* and after freeing it all, the same again */
    void *again = malloc(t_size(size));
    CHECK(again != NULL, "%s: after freeing %zu blocks, malloc(%zu) still fails (errno %d)", what,
          n, size, errno);
    free(again);
    printf("%s: %zu blocks of %zu bytes, then ENOMEM\n", what, n, size);
}

static void limit_address_space(void);

static void child(void)
{
    /* what the process uses now, plus some room */
    limit_address_space();

    phase(64, "small");
    phase(20000, "mid");
    phase(3u << 20, "large");
    phase(1000, "small again");
    /* mixed sizes at once */
    void *hold[64];
    for (int i = 0; i < 64; i++) {
        hold[i] = malloc(t_size((size_t)16 << (i % 18)));
        CHECK(hold[i] != NULL, "mixed allocation %d failed after the OOM phases", i);
    }
    for (int i = 0; i < 64; i++)
        free(hold[i]);
}

static void limit_address_space(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL, "open /proc/self/statm");
    unsigned long pages = 0;
    CHECK(fscanf(f, "%lu", &pages) == 1, "read /proc/self/statm");
    fclose(f);
    size_t vsize = pages * (size_t)sysconf(_SC_PAGESIZE);
    struct rlimit rl = { vsize + HEADROOM, vsize + HEADROOM };
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS) failed: errno %d", errno);
}

/* Bytes in blocks of `size` allocated before the first failure, all freed
 * again. */
static size_t fill_and_free(size_t size, const char *what)
{
    size_t n;
    free_chain(fill_until_failure(size, &n, what));
    return n * size;
}

static void *parked(void *arg)
{
    (void)arg;
    free(malloc(t_size(64)));
    for (;;) pause();
    return NULL;
}

static void reuse_child(void *arg)
{
    (void)arg;
    alarm(60);
    /* a second thread: hakmem's passes run on its purge thread, after the
     * purge delay, not inside the frees */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, parked, NULL) == 0, "pthread_create");
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    free(malloc(t_size(1 << 20)));   /* memory to purge: the purge thread starts now */
    nanosleep(&ts, NULL);
    limit_address_space();
    size_t large = ((size_t)2 << 20) - 4096, small = 1000;
    size_t l1 = fill_and_free(large, "large first");
    size_t s1 = fill_and_free(small, "small after large");
    size_t l2 = fill_and_free(large, "large after small");
    printf("under RLIMIT_AS: %zu KiB in large blocks, then %zu KiB in small ones, then %zu KiB in large ones\n",
           l1 >> 10, s1 >> 10, l2 >> 10);
    CHECK(s1 * 10 >= l1 * 7, "small blocks got %zu KiB after the large blocks (%zu KiB) were freed", s1 >> 10, l1 >> 10);
    CHECK(l2 * 10 >= s1 * 7, "large blocks got %zu KiB after the small blocks (%zu KiB) were freed", l2 >> 10, s1 >> 10);
}

/* The out-of-memory phases run in a child, with a time limit. */
static void oom_child(void *arg)
{
    (void)arg;
    alarm(60);
    child();
}

int main(void)
{
    test_init("test_oom");
    t_child r = t_run_child(oom_child, NULL);
    int st = r.status;
    char *out = r.err;
    size_t n = strlen(out);
    for (size_t i = 0; i + 1 < n; i++)
        if (out[i] == '\n')
            out[i] = ' ';
    CHECK(!WIFSIGNALED(st), "out of memory, the child died by signal %d; its stderr: \"%s\"",
          WTERMSIG(st), out);
    CHECK(WEXITSTATUS(st) == 0, "out of memory, the child failed (status %d): %s",
          WEXITSTATUS(st), out);
    if (!t_debug && !t_system)
        CHECK(n == 0, "running out of memory, the release build printed: \"%s\"", out);
    r = t_run_child(reuse_child, NULL);
    if (r.err[0]) fprintf(stderr, "%s", r.err);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "memory freed was not usable again by other sizes "
          "(status %#x)", r.status);
    printf("test_oom: ok\n");
    return 0;
}
