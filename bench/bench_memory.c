/* bench_memory.c: how much memory an allocator holds through a phased workload.
 *
 *   bench_memory SIZE_MB SEED [PAUSE_MS]
 *
 * Four phases, single-threaded; after each the resident set size (RSS, from
 * /proc/self/statm) is recorded:
 *   1. grow:      malloc small blocks of 16-512 B (sizes mixed at random),
 *                 filling each, until SIZE_MB MiB are requested;
 *   2. free-most: free a random 90% of them; the survivors are spread over
 *                 the whole heap, which makes memory hard to give back;
 *   3. regrow:    malloc blocks of other sizes, 520-4096 B, filling each,
 *                 until live data is SIZE_MB MiB again: an allocator that
 *                 reuses the memory freed in phase 2 for these stays low;
 *   4. free-all:  free everything; what remains is what the allocator keeps.
 * With PAUSE_MS > 0 the program behaves like a server whose load falls off:
 * each of the two phases that free memory (2 and 4) is followed by a lull of
 * PAUSE_MS milliseconds before the next phase (or the exit). A lull is not
 * silence: every 10 ms the program mallocs and frees a few blocks of 16-4096
 * bytes, a trickle of requests, so allocators that purge only when they are
 * called get the chance to. The RSS is recorded again at the end of each
 * lull. An allocator that gives idle memory back shows it there, and in the
 * RSS-over-time series that scripts/bench-memory.sh samples from outside.
 *
 * It also reports the peak RSS (getrusage) and throughput: mallocs + frees
 * per second over the four phases, lulls not included (so the figure is
 * comparable with and without pauses). The pointer tables are mmap'd,
 * outside the allocator, and counted in the RSS (8 bytes per live block:
 * about 3% of the data in phase 1).
 */
#include "bench_util.h"

#include <sys/mman.h>

#define USAGE "SIZE_MB SEED [PAUSE_MS]\n"                                 \
    "  SIZE_MB   MiB of small blocks to grow to, 1..65536 (about 1024 for\n" \
    "            the full workload)\n"                                    \
    "  SEED      PRNG seed, any integer >= 0\n"                           \
    "  PAUSE_MS  lull after free-most and after free-all, in ms,\n"       \
    "            0..3600000 (default 0: no lulls)\n"                      \
    "examples: bench_memory 1024 42\n"                                    \
    "          bench_memory 128 42 2000"

#define SMALL_MIN 16u
#define SMALL_MAX 512u
#define OTHER_MIN 520u
#define OTHER_MAX 4096u

/* The trickle of requests during a lull: every LULL_TICK_MS, LULL_BLOCKS
 * blocks of LULL_MIN..LULL_MAX bytes are malloc'd, written and freed. */
#define LULL_TICK_MS 10u
#define LULL_BLOCKS  8u
#define LULL_MIN     16u
#define LULL_MAX     4096u

/* A pointer table outside the allocator under test. Pages are only touched
 * as far as they are used. */
static void **table_new(size_t entries)
{
    void *t = mmap(NULL, entries * sizeof(void *), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t == MAP_FAILED)
        bu_die("mmap of a %zu-entry pointer table failed", entries);
    return t;
}

/* Mallocs blocks of [min, max] bytes, filled, into table[*count...] until
 * *live reaches target bytes. Returns the number of mallocs. */
static uint64_t grow(void **table, size_t *count, size_t capacity, size_t *live,
                     size_t target, unsigned min, unsigned max, bu_rng *rng)
{
    uint64_t n = 0;
    while (*live < target) {
        if (*count == capacity)
            bu_die("pointer table full");
        size_t size = min + (size_t)bu_below(bu_next(rng), max - min + 1);
        char *p = malloc(size);
        if (!p)
            bu_die("malloc(%zu) failed after %zu MiB", size, *live >> 20);
        memset(p, (int)(n & 0xFF), size);
        memcpy(p, &size, sizeof size);  /* the block remembers its size */
        table[(*count)++] = p;
        *live += size;
        n++;
    }
    return n;
}

/* A lull of pause_ms: a trickle of small requests every LULL_TICK_MS, on
 * absolute deadlines so the lull lasts pause_ms however long a tick takes.
 * Returns the number of mallocs and frees. Uses its own PRNG stream, so the
 * phases draw the same numbers with and without lulls. */
static uint64_t lull(uint64_t pause_ms, bu_rng *rng)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    uint64_t end_ns = (uint64_t)next.tv_sec * 1000000000u + (uint64_t)next.tv_nsec
                    + pause_ms * 1000000u;
    uint64_t ops = 0;
    void *blocks[LULL_BLOCKS];
    for (;;) {
        for (unsigned i = 0; i < LULL_BLOCKS; i++) {
            size_t size = LULL_MIN + (size_t)bu_below(bu_next(rng), LULL_MAX - LULL_MIN + 1);
            char *p = malloc(size);
            if (!p)
                bu_die("malloc(%zu) failed during a lull", size);
            p[0] = (char)i;
            p[size - 1] = (char)size;
            blocks[i] = p;
        }
        for (unsigned i = 0; i < LULL_BLOCKS; i++)
            free(blocks[i]);
        ops += 2 * LULL_BLOCKS;

        uint64_t next_ns = (uint64_t)next.tv_sec * 1000000000u + (uint64_t)next.tv_nsec
                         + LULL_TICK_MS * 1000000u;
        if (next_ns > end_ns)
            next_ns = end_ns;
        next.tv_sec = (time_t)(next_ns / 1000000000u);
        next.tv_nsec = (long)(next_ns % 1000000000u);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        if (next_ns >= end_ns)
            return ops;
    }
}

int main(int argc, char **argv)
{
    bu_set_usage("bench_memory", USAGE, argc, argv);
    if (argc != 3 && argc != 4)
        bu_usage_error("expected 2 or 3 arguments, got %d", argc - 1);
    uint64_t size_mb = bu_parse_u64(argv[1], "SIZE_MB", 1, 65536);
    uint64_t seed = bu_parse_u64(argv[2], "SEED", 0, UINT64_MAX);
    uint64_t pause_ms = argc == 4 ? bu_parse_u64(argv[3], "PAUSE_MS", 0, 3600000) : 0;
    size_t target = (size_t)size_mb << 20;
    bu_rng rng, lull_rng;
    bu_rng_seed(&rng, seed, 0);
    bu_rng_seed(&lull_rng, seed, 1);

    /* Phase 1 blocks each hold at least SMALL_MIN bytes, so target/SMALL_MIN
     * entries always suffice; phase 3 likewise with OTHER_MIN. */
    size_t small_cap = target / SMALL_MIN + 1, other_cap = target / OTHER_MIN + 1;
    void **small = table_new(small_cap), **other = table_new(other_cap);
    size_t n_small = 0, n_other = 0, live = 0;
    uint64_t ops = 0, lull_ops = 0;
    long rss[4], rss_lull[2] = { -1, -1 };
    double sec[4];   /* time spent in each phase */

    double t0 = bu_now();

    /* 1. grow */
    ops += grow(small, &n_small, small_cap, &live, target, SMALL_MIN, SMALL_MAX, &rng);
    double t1 = bu_now();
    sec[0] = t1 - t0;
    rss[0] = bu_current_rss_kb();

    /* 2. free-most: keep about one block in ten. Kept blocks move to the front
     * of the table and their sizes (stored in each block) are summed. */
    t1 = bu_now();
    size_t kept = 0;
    live = 0;
    for (size_t i = 0; i < n_small; i++) {
        if (bu_below(bu_next(&rng), 10) == 0) {
            size_t size;
            memcpy(&size, small[i], sizeof size);
            live += size;
            small[kept++] = small[i];
            continue;
        }
        free(small[i]);
        ops++;
    }
    n_small = kept;
    sec[1] = bu_now() - t1;
    rss[1] = bu_current_rss_kb();
    if (pause_ms) {
        lull_ops += lull(pause_ms, &lull_rng);
        rss_lull[0] = bu_current_rss_kb();
    }

    /* 3. regrow with other sizes */
    t1 = bu_now();
    ops += grow(other, &n_other, other_cap, &live, target, OTHER_MIN, OTHER_MAX, &rng);
    sec[2] = bu_now() - t1;
    rss[2] = bu_current_rss_kb();

    /* 4. free-all */
    t1 = bu_now();
    for (size_t i = 0; i < n_small; i++)
        free(small[i]);
    for (size_t i = 0; i < n_other; i++)
        free(other[i]);
    ops += n_small + n_other;
    sec[3] = bu_now() - t1;
    rss[3] = bu_current_rss_kb();
    if (pause_ms) {
        lull_ops += lull(pause_ms, &lull_rng);
        rss_lull[1] = bu_current_rss_kb();
    }

    double elapsed = sec[0] + sec[1] + sec[2] + sec[3];
    double wall = bu_now() - t0;
    long peak_kb = bu_peak_rss_kb();
    munmap(small, small_cap * sizeof(void *));
    munmap(other, other_cap * sizeof(void *));

    double rate = bu_rate((double)ops, elapsed);
    printf("bench_memory: %llu MiB target; RSS after grow %.1f MiB, free-most "
           "%.1f MiB, regrow %.1f MiB, free-all %.1f MiB; peak %.1f MiB; "
           "%.3f s, %.3f M ops/s\n",
           (unsigned long long)size_mb, rss[0] / 1024.0, rss[1] / 1024.0,
           rss[2] / 1024.0, rss[3] / 1024.0, peak_kb / 1024.0, elapsed,
           rate / 1e6);
    if (pause_ms)
        printf("bench_memory: lulls of %llu ms: RSS at the end of the lull after "
               "free-most %.1f MiB, after free-all %.1f MiB; %.3f s in all\n",
               (unsigned long long)pause_ms, rss_lull[0] / 1024.0,
               rss_lull[1] / 1024.0, wall);
    printf("RESULT bench=bench_memory threads=1 ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld size_mb=%llu rss_grow_kb=%ld "
           "rss_free_most_kb=%ld rss_regrow_kb=%ld rss_free_all_kb=%ld "
           "pause_ms=%llu sec_grow=%.3f sec_free_most=%.3f sec_regrow=%.3f "
           "sec_free_all=%.3f",
           (unsigned long long)ops, elapsed, rate, peak_kb,
           (unsigned long long)size_mb, rss[0], rss[1], rss[2], rss[3],
           (unsigned long long)pause_ms, sec[0], sec[1], sec[2], sec[3]);
    if (pause_ms)
        printf(" lull_ops=%llu rss_free_most_lull_kb=%ld rss_free_all_lull_kb=%ld "
               "wall_seconds=%.3f",
               (unsigned long long)lull_ops, rss_lull[0], rss_lull[1], wall);
    printf("\n");
    return 0;
}
