/* test_rss: freed memory goes back to the operating system.
 *
 *  1. 1.5 GiB in blocks of 64 B to 256 KiB, every byte written, freed in
 *     random order; then no allocator call at all while waiting up to 2 s:
 *     RSS must fall below 10% of the peak.
 *  2. One 512 MiB block, written and freed: RSS back near the start within
 *     the same wait.
 *  3. 5 rounds of 2,000 threads, each leaving blocks that the main thread
 *     frees after the thread exited: RSS at the end of round 5 within 10% of
 *     RSS at the end of round 2 (no growth from memory that exited threads
 *     left behind), and once the main thread has freed the blocks, RSS falls
 *     below a quarter of that (the memory goes back). Each round starts once
 *     RSS has settled after the last one's frees: without the wait, the
 *     purging still due from the last round made the figures vary by 10%.
 *  4. malloc_trim(0) after freeing everything: RSS near the start at once.
 *  5. malloc_trim(0) after freeing 90% of many small blocks at random: the
 *     pages with no block left on them go back (at least an eighth of the
 *     heap), and every block keeps its bytes.
 * RSS is read from /proc/self/statm with open/read, which do not allocate.
 */
#include <fcntl.h>
#include <malloc.h>

#include "testutil.h"

/* Waits (no allocator call) until RSS is at most target, up to 2 s. */
static size_t wait_rss_below(size_t target)
{
    size_t r = t_rss_bytes();
    for (int i = 0; i < 200 && r > target; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        r = t_rss_bytes();
    }
    return r;
}

/* RSS once it has stopped falling (no new low for 1.2 s; 5 s at most):
 * what the process keeps after hakmem's purging has caught up (its purge
 * thread looks at slabs of exited threads every half second). */
static size_t settled_rss(void)
{
    size_t low = t_rss_bytes();
    int quiet = 0;
    for (int i = 0; i < 100 && quiet < 24; i++) {
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        size_t r = t_rss_bytes();
        if (r < low) {
            low = r;
            quiet = 0;
        } else {
            quiet++;
        }
    }
    return low;
}

#define MiB ((size_t)1 << 20)

/* A table of n block pointers outside the allocator under test. */
static void **block_table(size_t n)
{
    void **t = mmap(NULL, n * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(t != MAP_FAILED, "mmap of a table of %zu pointers", n);
    return t;
}

static void test_free_all(void)
{
    enum { MAX_BLOCKS = 1 << 20 };
    void **blocks = block_table(MAX_BLOCKS);
    rng_t r;
    rng_seed(&r, 42);
    size_t total = 0, n = 0;
    while (total < 1536 * MiB) {
        /* log-uniform from 64 B to 256 KiB */
        size_t size = (size_t)64 << rng_below(&r, 12);
        size += rng_below(&r, size);
        blocks[n] = malloc(size);
        CHECK(blocks[n] != NULL, "malloc(%zu)", size);
        memset(blocks[n], 0x77, size);
        total += size;
        n++;
    }
    size_t peak = t_rss_bytes();
    for (size_t i = n - 1; i > 0; i--) {   /* shuffle, then free */
        size_t j = rng_below(&r, i + 1);
        void *t = blocks[i];
        blocks[i] = blocks[j];
        blocks[j] = t;
    }
    for (size_t i = 0; i < n; i++) free(blocks[i]);
    size_t after = wait_rss_below(peak / 10);
    printf("free all: %zu blocks, %zu MiB; RSS peak %zu MiB, after free %zu MiB (%.1f%%)\n",
           n, total / MiB, peak / MiB, after / MiB, 100.0 * (double)after / (double)peak);
    CHECK(after < peak / 10, "RSS %zu MiB not below 10%% of the peak %zu MiB after 2 s", after / MiB, peak / MiB);
    munmap(blocks, MAX_BLOCKS * sizeof(void *));
}

static void test_one_big_block(void)
{
    size_t before = t_rss_bytes();
    char *p = malloc(512 * MiB);
    CHECK(p != NULL, "malloc(512 MiB)");
    memset(p, 1, 512 * MiB);
    size_t peak = t_rss_bytes();
    free(p);
    size_t after = wait_rss_below(before + 16 * MiB);
    printf("512 MiB block: RSS before %zu MiB, peak %zu MiB, after free %zu MiB\n",
           before / MiB, peak / MiB, after / MiB);
    CHECK(after <= before + 16 * MiB, "RSS %zu MiB after freeing 512 MiB (before: %zu MiB)", after / MiB, before / MiB);
}

enum { THREADS_PER_ROUND = 2000, BATCH = 16, BLOCKS_PER_THREAD = 64 };
static void *handed[THREADS_PER_ROUND][BLOCKS_PER_THREAD];

static void *leave_blocks(void *arg)
{
    void **out = arg;
    rng_t r;
    rng_seed(&r, (uint64_t)(uintptr_t)arg);
    for (int i = 0; i < BLOCKS_PER_THREAD; i++) {
        size_t size = 16 + rng_below(&r, i % 8 == 0 ? 20000 : 2000);
        out[i] = malloc(size);
        CHECK(out[i] != NULL, "malloc in thread");
        memset(out[i], i, size);
    }
    return NULL;
}

static void test_thread_rounds(void)
{
    size_t out[6] = { 0 }, freed[6] = { 0 };
    for (int round = 1; round <= 5; round++) {
        for (int t = 0; t < THREADS_PER_ROUND; t += BATCH) {
            pthread_t th[BATCH];
            for (int b = 0; b < BATCH; b++)
                CHECK(pthread_create(&th[b], NULL, leave_blocks, handed[t + b]) == 0, "pthread_create");
            for (int b = 0; b < BATCH; b++) pthread_join(th[b], NULL);
        }
        out[round] = t_rss_bytes();
        for (int t = 0; t < THREADS_PER_ROUND; t++)
            for (int i = 0; i < BLOCKS_PER_THREAD; i++) free(handed[t][i]);
        /* every round starts from a settled heap, so that what a round
         * finds out is not what the purging of the last one had yet to do */
        freed[round] = settled_rss();
        if (round == 2 || round == 5) {
            printf("threads round %d: RSS %zu KiB with the blocks out, %zu KiB once they were freed\n", round,
                   out[round] / 1024, freed[round] / 1024);
        }
    }
    CHECK(out[5] <= out[2] + out[2] / 10, "RSS with the blocks out grew from %zu KiB in round 2 to %zu KiB in round 5",
          out[2] / 1024, out[5] / 1024);
    for (int round = 2; round <= 5; round += 3)
        CHECK(freed[round] < out[round] / 4, "round %d: RSS only fell from %zu KiB to %zu KiB after the frees",
              round, out[round] / 1024, freed[round] / 1024);
}

static void test_trim(void)
{
    size_t before = t_rss_bytes();
    enum { N = 200000 };
    static void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = malloc(16 + (size_t)(i % 64) * 16 + (i % 1000 == 0 ? 100000 : 0));
        memset(b[i], 3, 16);
    }
    size_t peak = t_rss_bytes();
    for (int i = 0; i < N; i++) free(b[i]);
    malloc_trim(0);
    size_t after = t_rss_bytes();
    printf("malloc_trim: RSS before %zu MiB, peak %zu MiB, after trim %zu MiB\n",
           before / MiB, peak / MiB, after / MiB);
    CHECK(after <= before + 4 * MiB, "RSS %zu KiB after malloc_trim, %zu KiB at the start", after / 1024, before / 1024);
}

/* 128 MiB of blocks of 16-512 B, 90% of them freed at random: no slab
 * empties, yet about a quarter of the pages hold only free blocks.
 * malloc_trim(0) gives those back; the blocks still out keep their bytes,
 * and new blocks, some of them on the pages given back, work as any. */
static void test_trim_fragmented(void)
{
    enum { MAX_BLOCKS = 3 << 19 };
    void **b = block_table(MAX_BLOCKS);
    rng_t r;
    rng_seed(&r, 7);
    size_t before = t_rss_bytes(), total = 0, n = 0;
    while (total < 128 * MiB) {
        size_t size = 16 + rng_below(&r, 497);
        b[n] = malloc(size);
        CHECK(b[n] != NULL, "malloc(%zu)", size);
        memset(b[n], (int)(n & 0xff), size);
        total += size;
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        if (rng_below(&r, 10) == 0) continue;
        free(b[i]);
        b[i] = NULL;
    }
    size_t most = t_rss_bytes();
    malloc_trim(0);
    size_t trimmed = t_rss_bytes();
    printf("trim after freeing 90%%: RSS before %zu MiB, with 10%% left %zu MiB, after trim %zu MiB\n",
           before / MiB, most / MiB, trimmed / MiB);
    CHECK(most - trimmed > (most - before) / 8, "malloc_trim gave back %zu of %zu MiB", (most - trimmed) / MiB,
          (most - before) / MiB);
    for (size_t i = 0; i < n; i++) {
        if (b[i] == NULL) continue;
        const unsigned char *c = b[i];
        CHECK(c[0] == (unsigned char)(i & 0xff), "block %zu lost its bytes", i);
    }
    for (size_t i = 0; i < n; i += 2) {   /* half the freed ones again */
        if (b[i]) continue;
        size_t size = 16 + rng_below(&r, 497);
        b[i] = malloc(size);
        CHECK(b[i] != NULL, "malloc(%zu)", size);
        memset(b[i], (int)(i & 0xff), size);
    }
    for (size_t i = 0; i < n; i++) {
        if (b[i] == NULL) continue;
        const unsigned char *c = b[i];
        CHECK(c[0] == (unsigned char)(i & 0xff), "block %zu lost its bytes", i);
        free(b[i]);
    }
    munmap(b, MAX_BLOCKS * sizeof(void *));
}

int main(void)
{
    test_init("test_rss");
    test_trim();
    test_trim_fragmented();
    test_free_all();
    test_one_big_block();
    test_thread_rounds();
    printf("test_rss: ok\n");
    return 0;
}
