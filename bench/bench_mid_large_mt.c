/* bench_mid_large_mt.c: multi-threaded random malloc/free of 8-32 KiB blocks.
 *
 *   bench_mid_large_mt THREADS CYCLES WS SEED
 *
 * Each thread has its own WS slots and runs CYCLES cycles: pick a random
 * slot; free it if occupied, else malloc a block of 8192 to 32768 bytes and
 * touch every page of it (one write per 4 KiB and one at the end), as a
 * program filling a buffer would. Threads never share blocks, so this measures
 * how an allocator serves mid-size requests from several threads at once.
 * One cycle is one operation; the result is the total over all threads,
 * timed from a common start (after all threads exist) until the last
 * thread ends its cycles (its final cleanup is not timed).
 */
#include "bench_util.h"

#include <pthread.h>

#define USAGE "THREADS CYCLES WS SEED\n"                                \
    "  THREADS  worker threads, 1..1024\n"                              \
    "  CYCLES   malloc-or-free operations per thread, >= 1\n"           \
    "  WS       slots per thread, 1..2^24\n"                            \
    "  SEED     PRNG seed, any integer >= 0\n"                          \
    "example: bench_mid_large_mt 2 200000 256 42"

#define MIN_SIZE (8u * 1024)
#define MAX_SIZE (32u * 1024)
#define PAGE 4096u

typedef struct {
    pthread_t tid;
    uint64_t seed;
    int id;
    uint64_t mallocs;
} worker;

static uint64_t g_cycles, g_ws;
static pthread_barrier_t g_start, g_end;  /* timed region boundaries */

static void *worker_main(void *arg)
{
    worker *w = arg;
    bu_rng rng;
    bu_rng_seed(&rng, w->seed, (uint64_t)w->id + 1);
    void **slots = bu_xcalloc(g_ws, sizeof(void *));
    uint64_t mallocs = 0;

    pthread_barrier_wait(&g_start);
    for (uint64_t i = 0; i < g_cycles; i++) {
        uint64_t r = bu_next(&rng);
        size_t idx = (size_t)bu_below(r, g_ws);
        if (slots[idx]) {
            free(slots[idx]);
            slots[idx] = NULL;
        } else {
            size_t size = MIN_SIZE + (size_t)((r & 0xFFFFFFFFu) % (MAX_SIZE - MIN_SIZE + 1));
            char *p = malloc(size);
            if (!p)
                bu_die("malloc(%zu) failed", size);
            for (size_t off = 0; off < size; off += PAGE)
                p[off] = (char)off;
            p[size - 1] = (char)i;
            slots[idx] = p;
            mallocs++;
        }
    }
    w->mallocs = mallocs;
    pthread_barrier_wait(&g_end);
    /* Cleanup, after the clock stopped. */
    for (uint64_t i = 0; i < g_ws; i++)
        free(slots[i]);
    free(slots);
    return NULL;
}

int main(int argc, char **argv)
{
    bu_set_usage("bench_mid_large_mt", USAGE, argc, argv);
    if (argc != 5)
        bu_usage_error("expected 4 arguments, got %d", argc - 1);
    int threads = (int)bu_parse_u64(argv[1], "THREADS", 1, 1024);
    g_cycles = bu_parse_u64(argv[2], "CYCLES", 1, UINT64_MAX / 1024);
    g_ws = bu_parse_u64(argv[3], "WS", 1, 1ull << 24);
    uint64_t seed = bu_parse_u64(argv[4], "SEED", 0, UINT64_MAX);

    worker *workers = bu_xcalloc((size_t)threads, sizeof(worker));
    pthread_barrier_init(&g_start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&g_end, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        workers[i].id = i;
        workers[i].seed = seed;
        int rc = pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
        if (rc != 0)
            bu_die("pthread_create failed for thread %d of %d: %s", i + 1,
                   threads, strerror(rc));
    }
    pthread_barrier_wait(&g_start);
    double t0 = bu_now();
    pthread_barrier_wait(&g_end);
    double elapsed = bu_now() - t0;
    uint64_t mallocs = 0;
    for (int i = 0; i < threads; i++) {
        int rc = pthread_join(workers[i].tid, NULL);
        if (rc != 0)
            bu_die("pthread_join failed: %s", strerror(rc));
        mallocs += workers[i].mallocs;
    }
    long peak_kb = bu_peak_rss_kb();
    free(workers);

    uint64_t ops = g_cycles * (uint64_t)threads;
    double rate = bu_rate((double)ops, elapsed);
    printf("bench_mid_large_mt: %d threads x %llu cycles over %llu slots each "
           "(%llu mallocs of 8-32 KiB), %.3f s: %.3f M ops/s\n",
           threads, (unsigned long long)g_cycles, (unsigned long long)g_ws,
           (unsigned long long)mallocs, elapsed, rate / 1e6);
    printf("RESULT bench=bench_mid_large_mt threads=%d ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld ws=%llu\n",
           threads, (unsigned long long)ops, elapsed, rate, peak_kb,
           (unsigned long long)g_ws);
    return 0;
}
