/* bench_memory.c: how much memory an allocator holds through a phased workload.
 *
 *   bench_memory SIZE_MB SEED
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
 * It also reports the peak RSS (getrusage) and throughput (mallocs + frees
 * per second over all phases). The pointer tables are mmap'd, outside the
 * allocator, and counted in the RSS (8 bytes per live block: about 3% of the
 * data in phase 1).
 */
#include "bench_util.h"

#include <sys/mman.h>

#define USAGE "SIZE_MB SEED\n"                                            \
    "  SIZE_MB  MiB of small blocks to grow to, 1..65536 (about 1024 for\n" \
    "           the full workload)\n"                                     \
    "  SEED     PRNG seed, any integer >= 0\n"                            \
    "example: bench_memory 1024 42"

#define SMALL_MIN 16u
#define SMALL_MAX 512u
#define OTHER_MIN 520u
#define OTHER_MAX 4096u

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

int main(int argc, char **argv)
{
    bu_set_usage("bench_memory", USAGE, argc, argv);
    if (argc != 3)
        bu_usage_error("expected 2 arguments, got %d", argc - 1);
    uint64_t size_mb = bu_parse_u64(argv[1], "SIZE_MB", 1, 65536);
    uint64_t seed = bu_parse_u64(argv[2], "SEED", 0, UINT64_MAX);
    size_t target = (size_t)size_mb << 20;
    bu_rng rng;
    bu_rng_seed(&rng, seed, 0);

    /* Phase 1 blocks each hold at least SMALL_MIN bytes, so target/SMALL_MIN
     * entries always suffice; phase 3 likewise with OTHER_MIN. */
    size_t small_cap = target / SMALL_MIN + 1, other_cap = target / OTHER_MIN + 1;
    void **small = table_new(small_cap), **other = table_new(other_cap);
    size_t n_small = 0, n_other = 0, live = 0;
    uint64_t ops = 0;
    long rss[4];

    double t0 = bu_now();

    /* 1. grow */
    ops += grow(small, &n_small, small_cap, &live, target, SMALL_MIN, SMALL_MAX, &rng);
    rss[0] = bu_current_rss_kb();

    /* 2. free-most: keep about one block in ten. Kept blocks move to the front
     * of the table and their sizes (stored in each block) are summed. */
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
    rss[1] = bu_current_rss_kb();

    /* 3. regrow with other sizes */
    ops += grow(other, &n_other, other_cap, &live, target, OTHER_MIN, OTHER_MAX, &rng);
    rss[2] = bu_current_rss_kb();

    /* 4. free-all */
    for (size_t i = 0; i < n_small; i++)
        free(small[i]);
    for (size_t i = 0; i < n_other; i++)
        free(other[i]);
    ops += n_small + n_other;

    double elapsed = bu_now() - t0;
    rss[3] = bu_current_rss_kb();
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
    printf("RESULT bench=bench_memory threads=1 ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld size_mb=%llu rss_grow_kb=%ld "
           "rss_free_most_kb=%ld rss_regrow_kb=%ld rss_free_all_kb=%ld\n",
           (unsigned long long)ops, elapsed, rate, peak_kb,
           (unsigned long long)size_mb, rss[0], rss[1], rss[2], rss[3]);
    return 0;
}
