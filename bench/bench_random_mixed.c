/* bench_random_mixed.c: single-threaded random malloc/free of small blocks.
 *
 *   bench_random_mixed CYCLES WS SEED
 *
 * WS slots start empty. Each cycle draws a random word r and a random slot:
 * an occupied slot is freed, an empty one gets malloc(16 + (r & 0x3FF)) (16 to
 * 1039 bytes) and the block's first and last bytes are written. One cycle is
 * one operation. The slot comes from other bits of the PRNG than the size, so
 * a slot does not always get the same size. Blocks still live at the end are
 * freed after the clock stops.
 *
 * The timed loop is the function run_cycles, which `make bench-instr` uses to
 * count instructions of the loop alone under callgrind.
 */
#include "bench_util.h"

#define USAGE "CYCLES WS SEED\n"                                        \
    "  CYCLES  malloc-or-free operations, >= 1\n"                       \
    "  WS      working-set slots, 1..2^28\n"                            \
    "  SEED    PRNG seed, any integer >= 0\n"                           \
    "example: bench_random_mixed 10000000 8192 42"

/* Runs the cycles; returns how many of them were mallocs. Kept out of line
 * (and unclonable) so callgrind can find it by name. */
__attribute__((noinline, noclone))
static uint64_t run_cycles(void **slots, uint64_t ws, uint64_t cycles, bu_rng *rng)
{
    uint64_t mallocs = 0;
    for (uint64_t i = 0; i < cycles; i++) {
        uint64_t r = bu_next(rng);
        size_t idx = (size_t)bu_below(r, ws);  /* high bits pick the slot */
        if (slots[idx]) {
            free(slots[idx]);
            slots[idx] = NULL;
        } else {
            size_t size = 16 + (size_t)(r & 0x3FF);  /* low bits: size */
            char *p = malloc(size);
            if (!p)
                bu_die("malloc(%zu) failed", size);
            p[0] = (char)i;
            p[size - 1] = (char)r;
            slots[idx] = p;
            mallocs++;
        }
    }
    return mallocs;
}

int main(int argc, char **argv)
{
    bu_set_usage("bench_random_mixed", USAGE, argc, argv);
    if (argc != 4)
        bu_usage_error("expected 3 arguments, got %d", argc - 1);
    uint64_t cycles = bu_parse_u64(argv[1], "CYCLES", 1, UINT64_MAX);
    uint64_t ws = bu_parse_u64(argv[2], "WS", 1, 1ull << 28);
    uint64_t seed = bu_parse_u64(argv[3], "SEED", 0, UINT64_MAX);

    void **slots = bu_xcalloc(ws, sizeof(void *));
    bu_rng rng;
    bu_rng_seed(&rng, seed, 0);

    double t0 = bu_now();
    uint64_t mallocs = run_cycles(slots, ws, cycles, &rng);
    double elapsed = bu_now() - t0;
    long peak_kb = bu_peak_rss_kb();

    for (uint64_t i = 0; i < ws; i++)
        free(slots[i]);
    free(slots);

    double rate = bu_rate((double)cycles, elapsed);
    printf("bench_random_mixed: %llu cycles over %llu slots (%llu mallocs), "
           "%.3f s: %.3f M ops/s\n",
           (unsigned long long)cycles, (unsigned long long)ws,
           (unsigned long long)mallocs, elapsed, rate / 1e6);
    printf("RESULT bench=bench_random_mixed threads=1 ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld ws=%llu\n",
           (unsigned long long)cycles, elapsed, rate, peak_kb,
           (unsigned long long)ws);
    return 0;
}
