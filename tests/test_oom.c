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

static void child(void)
{
    /* what the process uses now, plus some room */
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL, "open /proc/self/statm");
    unsigned long pages = 0;
    CHECK(fscanf(f, "%lu", &pages) == 1, "read /proc/self/statm");
    fclose(f);
    size_t vsize = pages * (size_t)sysconf(_SC_PAGESIZE);
    struct rlimit rl = { vsize + HEADROOM, vsize + HEADROOM };
    CHECK(setrlimit(RLIMIT_AS, &rl) == 0, "setrlimit(RLIMIT_AS) failed: errno %d", errno);

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
    printf("test_oom: ok\n");
    return 0;
}
