/* test_fork_footprint: what many large blocks cost in address space and
 * page tables, which is what every fork has to copy (issue 12, item 4).
 *
 * Four threads each allocate 500 blocks of 33-100 KiB (above the slab
 * range, below 1 MiB) and fill them. The address space may grow by at most
 * three times the bytes asked for (plus a little), and the page tables by at
 * most what those bytes need when packed, not a table per block as when
 * every block had a 2 MiB mapping of its own.
 *
 * Then the process forks while the threads still hold their blocks: the
 * child checks and frees all of them, reallocates some in place and moved,
 * and allocates the same again; the parent frees its copies after. Bad
 * frees of such blocks (interior pointer, double free) are fatal errors with
 * their one-line message.
 */
#include "testutil.h"

#include <malloc.h>

#define THREADS 4
#define PER_THREAD 500
#define BLOCKS (THREADS * PER_THREAD)
#define MIN_SIZE (33 << 10)
#define MAX_SIZE (100 << 10)

static void *blocks[BLOCKS];
static size_t sizes[BLOCKS];

static long status_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL, "open /proc/self/status");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') v = atol(line + n + 1);
    fclose(f);
    CHECK(v >= 0, "%s not in /proc/self/status", field);
    return v;
}

static void *fill_thread(void *arg)
{
    size_t t = (size_t)arg;
    rng_t r;
    rng_seed(&r, 1000 + t);
    for (size_t i = t * PER_THREAD; i < (t + 1) * PER_THREAD; i++) {
        sizes[i] = (MIN_SIZE + rng_below(&r, MAX_SIZE - MIN_SIZE + 1)) & ~(size_t)7;
        blocks[i] = malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu)", sizes[i]);
        CHECK(owned(blocks[i]), "block %zu not hakmem's", i);
        CHECK(malloc_usable_size(blocks[i]) >= sizes[i], "usable %zu < %zu", malloc_usable_size(blocks[i]),
              sizes[i]);
        fill_pattern(blocks[i], sizes[i], i);
    }
    return NULL;
}

static void check_all(void)
{
    for (size_t i = 0; i < BLOCKS; i++) {
        size_t bad = check_pattern(blocks[i], sizes[i], i);
        CHECK(bad == sizes[i], "block %zu (%zu bytes) differs at %zu", i, sizes[i], bad);
    }
}

/* In the child: everything the parent's threads held is usable and goes
 * back; realloc keeps the contents whether it stays or moves. */
static void child_work(void *arg)
{
    check_all();
    for (size_t i = 0; i < BLOCKS; i += 2) free(blocks[i]);
    for (size_t i = 1; i < BLOCKS; i += 4) {
        size_t n = i % 8 == 1 ? sizes[i] - 1000 : sizes[i] * 3;   /* in place, then moved */
        void *q = realloc(blocks[i], n);
        CHECK(q != NULL, "realloc(%zu)", n);
        size_t keep = n < sizes[i] ? n : sizes[i];
        CHECK(check_pattern(q, keep, i) == keep, "realloc(%zu -> %zu) lost the contents", sizes[i], n);
        CHECK(malloc_usable_size(q) >= n, "usable %zu after realloc to %zu", malloc_usable_size(q), n);
        blocks[i] = q;
        sizes[i] = keep;   /* the pattern's length */
    }
    for (size_t i = 1; i < BLOCKS; i += 2) free(blocks[i]);
    for (size_t i = 0; i < BLOCKS; i++) {
        void *p = calloc(1, sizes[i]);
        CHECK(p != NULL, "calloc");
        const unsigned char *c = p;
        for (size_t k = 0; k < sizes[i]; k += 4096) CHECK(c[k] == 0, "calloc block not zero at %zu", k);
        CHECK(c[sizes[i] - 1] == 0, "calloc block not zero at its end");
        blocks[i] = p;
    }
    for (size_t i = 0; i < BLOCKS; i++) free(blocks[i]);
}

static void free_interior(void *arg)
{
    char *p = malloc(200 << 10);
    free(p + 4096);
}

static void free_twice(void *arg)
{
    char *p = malloc(200 << 10);
    free(p);
    free(p);
}

static void expect_fatal(void (*fn)(void *), const char *what)
{
    t_child r = t_run_child(fn, NULL);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "%s: child status %#x, said \"%s\"", what, r.status,
          r.err);
    CHECK(strstr(r.err, what) != NULL, "expected \"%s\", got \"%s\"", what, r.err);
}

int main(void)
{
    test_init("fork_footprint");
    long vm0 = status_kib("VmSize"), pte0 = status_kib("VmPTE");
    pthread_t th[THREADS];
    for (size_t t = 0; t < THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, fill_thread, (void *)t) == 0, "pthread_create");
    for (size_t t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    size_t asked = 0;
    for (size_t i = 0; i < BLOCKS; i++) asked += sizes[i];
    long vm = status_kib("VmSize") - vm0, pte = status_kib("VmPTE") - pte0;
    long asked_kib = (long)(asked >> 10);
    printf("%d blocks, %ld KiB asked: address space +%ld KiB, page tables +%ld KiB\n", BLOCKS, asked_kib, vm, pte);
    /* slack: thread stacks, a few partly used SuperSlabs */
    CHECK(vm < 3 * asked_kib + 64 * 1024, "address space +%ld KiB for %ld KiB of blocks", vm, asked_kib);
    /* packed, a 4 KiB table maps 2 MiB: asked/512; one table per block would be 8000 KiB */
    CHECK(pte < asked_kib / 128 + 1024, "page tables +%ld KiB for %ld KiB of blocks", pte, asked_kib);

    /* fork while the threads hold blocks: the child frees them all */
    t_child r = t_run_child(child_work, NULL);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child status %#x: %s", r.status, r.err);
    check_all();
    for (size_t i = 0; i < BLOCKS; i++) free(blocks[i]);

    expect_fatal(free_interior, "free(): invalid pointer");
    expect_fatal(free_twice, "double free");
    printf("ok\n");
    return 0;
}
