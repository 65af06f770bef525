/* bench_large_churn.c: large blocks replaced and filled, as by a program
 * holding big buffers (images, decoded files, batches).
 *
 *   bench_large_churn THREADS DURATION LIVE MIN_KB MAX_KB [SEED]
 *
 * Each of THREADS threads keeps LIVE slots, each holding a block of random
 * size in [MIN_KB, MAX_KB] KiB (any byte count in that range, not only whole
 * KiB). Before the clock starts every thread fills its slots, writing every
 * byte of each block. Then, until the run ends, a thread picks a random
 * slot, frees its block, mallocs a new one of random size in the range and
 * writes every byte of it (memset), as a program filling a fresh buffer
 * would. The memset is part of what is measured: an allocator that hands
 * out memory the kernel must first fault in and zero page by page, or that
 * maps and unmaps for every block, pays for it here.
 *
 * DURATION is either a time, a number of seconds followed by "s" (such as
 * "2s" or "0.5s"), after which the main thread tells the threads to stop
 * (checked before each replacement), or a plain number: the replacements
 * each thread does. One replacement (free + malloc + memset) is one
 * operation; ops_per_sec is replacements per second, over all threads, timed
 * from a common start until every thread has stopped (the final frees are
 * not timed).
 *
 * Defaults from the issue: 20 live blocks of 5-25 MiB per thread
 * (bench_large_churn 1 2s 20 5120 25600); the mid range of 64 KiB-1 MiB
 * with 64 live blocks (bench_large_churn 2 1s 64 64 1024) exercises sizes
 * that allocators serve from their own pools rather than from one mapping
 * each. MIN_KB above MAX_KB is swapped (with a note on stderr).
 */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>

#define USAGE "THREADS DURATION LIVE MIN_KB MAX_KB [SEED]\n"                       \
    "  THREADS   worker threads, 1..1024\n"                                        \
    "  DURATION  seconds followed by s (\"2s\", \"0.5s\"), or replacements per\n"  \
    "            thread (a plain integer >= 1)\n"                                  \
    "  LIVE      blocks each thread keeps, 1..2^20\n"                              \
    "  MIN_KB MAX_KB  block sizes in KiB, 1..2^22 (4 GiB; swapped if MIN > MAX)\n" \
    "  SEED      PRNG seed, any integer >= 0 (default 42)\n"                       \
    "examples: bench_large_churn 1 2s 20 5120 25600\n"                             \
    "          bench_large_churn 2 1s 64 64 1024 42"

typedef struct {
    pthread_t tid;
    int id;
    uint64_t replacements;
    uint64_t bytes;       /* written by the timed memsets */
} worker;

static struct {
    size_t min_size, range;  /* sizes are min_size + [0, range) */
    size_t live;
    uint64_t iters;          /* per thread; 0 = run until stop */
    uint64_t seed;
    pthread_barrier_t start, end;
    _Alignas(64) atomic_int stop;
} G;

static void *worker_main(void *arg)
{
    worker *w = arg;
    bu_rng rng;
    bu_rng_seed(&rng, G.seed, (uint64_t)w->id + 1);
    const size_t min_size = G.min_size, range = G.range, live = G.live;
    const uint64_t iters = G.iters;
    void **slots = bu_xcalloc(live, sizeof(void *));

    /* Warm-up, not timed: every slot filled. */
    for (size_t i = 0; i < live; i++) {
        size_t size = min_size + (size_t)bu_below(bu_next(&rng), range);
        void *p = malloc(size);
        if (!p)
            bu_die("malloc(%zu) failed during warm-up", size);
        memset(p, (int)(i & 0xFF), size);
        slots[i] = p;
    }

    uint64_t n = 0, bytes = 0;
    pthread_barrier_wait(&G.start);
    for (;;) {
        if (iters ? n == iters : atomic_load_explicit(&G.stop, memory_order_relaxed))
            break;
        uint64_t r = bu_next(&rng);
        size_t victim = (size_t)bu_below(r, live);
        size_t size = min_size + (size_t)bu_below(bu_next(&rng), range);
        free(slots[victim]);
        char *p = malloc(size);
        if (!p)
            bu_die("malloc(%zu) failed", size);
        memset(p, (int)(r >> 56), size);
        slots[victim] = p;
        bytes += size;
        n++;
    }
    w->replacements = n;
    w->bytes = bytes;
    pthread_barrier_wait(&G.end);

    /* Cleanup, after the clock stopped. */
    for (size_t i = 0; i < live; i++)
        free(slots[i]);
    free(slots);
    return NULL;
}

int main(int argc, char **argv)
{
    bu_set_usage("bench_large_churn", USAGE, argc, argv);
    if (argc != 6 && argc != 7)
        bu_usage_error("expected 5 or 6 arguments, got %d", argc - 1);
    int threads = (int)bu_parse_u64(argv[1], "THREADS", 1, 1024);
    const char *dur = argv[2];
    size_t dlen = strlen(dur);
    double seconds = 0.0;
    if (dlen > 0 && dur[dlen - 1] == 's') {
        char buf[64];
        if (dlen - 1 >= sizeof buf)
            bu_usage_error("DURATION: '%s' is too long", dur);
        memcpy(buf, dur, dlen - 1);
        buf[dlen - 1] = '\0';
        seconds = bu_parse_seconds(buf, "DURATION (seconds)", 1e6);
        G.iters = 0;
    } else {
        G.iters = bu_parse_u64(dur, "DURATION (replacements)", 1, UINT64_MAX / 2);
    }
    G.live = (size_t)bu_parse_u64(argv[3], "LIVE", 1, 1ull << 20);
    uint64_t min_kb = bu_parse_u64(argv[4], "MIN_KB", 1, 1ull << 22);
    uint64_t max_kb = bu_parse_u64(argv[5], "MAX_KB", 1, 1ull << 22);
    G.seed = argc == 7 ? bu_parse_u64(argv[6], "SEED", 0, UINT64_MAX) : 42;
    if (min_kb > max_kb) {
        fprintf(stderr, "bench_large_churn: note: MIN_KB %llu > MAX_KB %llu, swapping them\n",
                (unsigned long long)min_kb, (unsigned long long)max_kb);
        uint64_t t = min_kb;
        min_kb = max_kb;
        max_kb = t;
    }
    G.min_size = (size_t)min_kb * 1024;
    G.range = (size_t)(max_kb - min_kb) * 1024 + 1;

    worker *workers = bu_xcalloc((size_t)threads, sizeof(worker));
    pthread_barrier_init(&G.start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&G.end, NULL, (unsigned)threads + 1);
    for (int i = 0; i < threads; i++) {
        workers[i].id = i;
        int rc = pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
        if (rc != 0)
            bu_die("pthread_create failed for thread %d of %d: %s", i + 1,
                   threads, strerror(rc));
    }
    pthread_barrier_wait(&G.start);
    double t0 = bu_now();
    if (G.iters == 0) {
        struct timespec ts = { (time_t)seconds,
                               (long)((seconds - (double)(time_t)seconds) * 1e9) };
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        atomic_store(&G.stop, 1);
    }
    pthread_barrier_wait(&G.end);
    double elapsed = bu_now() - t0;
    long peak_kb = bu_peak_rss_kb();

    uint64_t ops = 0, bytes = 0;
    for (int i = 0; i < threads; i++) {
        int rc = pthread_join(workers[i].tid, NULL);
        if (rc != 0)
            bu_die("pthread_join failed: %s", strerror(rc));
        ops += workers[i].replacements;
        bytes += workers[i].bytes;
    }
    free(workers);

    double rate = bu_rate((double)ops, elapsed);
    double gib_s = bu_rate((double)bytes / (1024.0 * 1024 * 1024), elapsed);
    printf("bench_large_churn: %d threads x %zu live blocks of %llu-%llu KiB, "
           "%.3f s: %llu replacements, %.1f replacements/s, %.2f GiB/s filled\n",
           threads, G.live, (unsigned long long)min_kb, (unsigned long long)max_kb,
           elapsed, (unsigned long long)ops, rate, gib_s);
    printf("RESULT bench=bench_large_churn threads=%d ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld live=%zu min_kb=%llu max_kb=%llu "
           "bytes_written=%llu gib_per_sec=%.3f\n",
           threads, (unsigned long long)ops, elapsed, rate, peak_kb, G.live,
           (unsigned long long)min_kb, (unsigned long long)max_kb,
           (unsigned long long)bytes, gib_s);
    return 0;
}
