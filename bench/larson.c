/* larson.c: a Larson-style server workload.
 *
 *   larson SECONDS MIN_SIZE MAX_SIZE CHUNKS_PER_THREAD ROUNDS SEED THREADS
 *
 * A "chunk set" is an array of CHUNKS_PER_THREAD live blocks. Each worker
 * thread holds one set and, for one turn, replaces random blocks of it with
 * new blocks of random size in [MIN_SIZE, MAX_SIZE] (free the old block, malloc
 * the new one, write to both its ends): CHUNKS_PER_THREAD * ROUNDS
 * replacements per turn. After its turn the thread hands its set over and
 * continues with a set last worked on by another thread, so most frees hit
 * blocks that a different thread allocated, as when a server passes requests
 * between threads. The run stops after SECONDS; throughput counts each
 * malloc and each free as one operation.
 *
 * The classic program hands each set to a freshly spawned thread that is
 * never joined, which measures thread creation rather than the allocator (and
 * stalls once the process runs out of memory mappings). Here the THREADS
 * workers live for the whole run and pass sets through a queue holding one
 * spare set (THREADS + 1 sets in all), so a finishing worker almost always
 * finds a set from another worker waiting; if not, it waits for one. With a
 * single thread there is nobody to hand to and it alternates two sets.
 *
 * A MIN_SIZE above MAX_SIZE is swapped (with a note on stderr).
 */
#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>

#define USAGE "SECONDS MIN_SIZE MAX_SIZE CHUNKS_PER_THREAD ROUNDS SEED THREADS\n" \
    "  SECONDS            run time, > 0 (fractions allowed)\n"                  \
    "  MIN_SIZE MAX_SIZE  block sizes in bytes, 1..2^30 (swapped if MIN > MAX)\n" \
    "  CHUNKS_PER_THREAD  blocks in each thread's set, >= 1\n"                \
    "  ROUNDS             a turn is CHUNKS_PER_THREAD * ROUNDS replacements, >= 1\n" \
    "  SEED               PRNG seed, any integer >= 0\n"                        \
    "  THREADS            worker threads, 1..1024\n"                            \
    "example: larson 10 8 128 1024 1 12345 4"

/* One set of chunks, passed between workers. */
typedef struct chunk_set {
    void **blocks;          /* chunks live blocks */
    int last_owner;         /* worker that last used it, -1 = main thread */
    struct chunk_set *next; /* link while waiting in the hand-off queue */
} chunk_set;

/* Per-worker state. The hot loop keeps its counters in locals and stores
 * them here once, at the end. */
typedef struct {
    int id;
    pthread_t tid;
    chunk_set *first;   /* set to start with */
    bu_rng rng;
    uint64_t ops;       /* mallocs + frees done */
    uint64_t turns;     /* sets handed over */
} worker;

static struct {
    size_t min_size, range;      /* sizes are min_size + [0, range) */
    size_t chunks;
    uint64_t per_turn;           /* replacements per turn */
    int threads;

    pthread_mutex_t lock;        /* guards the queue */
    pthread_cond_t cond;         /* signalled when a set is queued or at stop */
    chunk_set *q_head, *q_tail;  /* FIFO of sets waiting for a worker */
    int waiters;

    pthread_barrier_t start;     /* workers and main start the clock together */
    /* Set by main when the time is up; read before every replacement, so
     * it lives on its own cache line, away from the queue's lock. */
    _Alignas(64) atomic_int stop;
} G;

static void queue_put(chunk_set *s)
{
    pthread_mutex_lock(&G.lock);
    s->next = NULL;
    if (G.q_tail)
        G.q_tail->next = s;
    else
        G.q_head = s;
    G.q_tail = s;
    if (G.waiters)
        pthread_cond_broadcast(&G.cond);
    pthread_mutex_unlock(&G.lock);
}

/* Takes the oldest queued set that worker `me` did not use last (any set when
 * there is only one worker); waits if there is none. NULL once stopped. */
static chunk_set *queue_take(int me)
{
    chunk_set *found = NULL;
    pthread_mutex_lock(&G.lock);
    for (;;) {
        chunk_set *prev = NULL;
        for (chunk_set *s = G.q_head; s; prev = s, s = s->next) {
            if (s->last_owner != me || G.threads == 1) {
                found = s;
                break;
            }
        }
        if (found) {
            if (prev)
                prev->next = found->next;
            else
                G.q_head = found->next;
            if (G.q_tail == found)
                G.q_tail = prev;
            break;
        }
        if (atomic_load_explicit(&G.stop, memory_order_relaxed))
            break;
        G.waiters++;
        pthread_cond_wait(&G.cond, &G.lock);
        G.waiters--;
    }
    pthread_mutex_unlock(&G.lock);
    return found;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    chunk_set *set = w->first;
    bu_rng rng = w->rng;
    uint64_t ops = 0, turns = 0;
    /* Parameters in locals: malloc and free are opaque calls, after which
     * the compiler would otherwise reload globals. */
    const size_t min_size = G.min_size, range = G.range, chunks = G.chunks;
    const uint64_t per_turn = G.per_turn;

    pthread_barrier_wait(&G.start);
    while (set) {
        void **blocks = set->blocks;
        uint64_t n;
        for (n = 0; n < per_turn; n++) {
            if (atomic_load_explicit(&G.stop, memory_order_relaxed))
                break;
            uint64_t r = bu_next(&rng);
            size_t victim = (size_t)bu_below(r, chunks);
            size_t size = min_size + (size_t)bu_below(bu_next(&rng), range);
            free(blocks[victim]);
            char *p = malloc(size);
            if (!p)
                bu_die("malloc(%zu) failed", size);
            p[0] = (char)r;
            p[size - 1] = (char)n;
            blocks[victim] = p;
        }
        ops += 2 * n;
        set->last_owner = w->id;
        queue_put(set);
        if (n < per_turn) /* stopped mid-turn */
            break;
        turns++;
        set = queue_take(w->id);
    }
    w->ops = ops;
    w->turns = turns;
    return NULL;
}

int main(int argc, char **argv)
{
    bu_set_usage("larson", USAGE, argc, argv);
    if (argc != 8)
        bu_usage_error("expected 7 arguments, got %d", argc - 1);
    double seconds = bu_parse_seconds(argv[1], "SECONDS", 1e6);
    uint64_t min_size = bu_parse_u64(argv[2], "MIN_SIZE", 1, 1ull << 30);
    uint64_t max_size = bu_parse_u64(argv[3], "MAX_SIZE", 1, 1ull << 30);
    uint64_t chunks = bu_parse_u64(argv[4], "CHUNKS_PER_THREAD", 1, 1ull << 28);
    uint64_t rounds = bu_parse_u64(argv[5], "ROUNDS", 1, 1ull << 32);
    uint64_t seed = bu_parse_u64(argv[6], "SEED", 0, UINT64_MAX);
    int threads = (int)bu_parse_u64(argv[7], "THREADS", 1, 1024);
    if (min_size > max_size) {
        fprintf(stderr, "larson: note: MIN_SIZE %llu > MAX_SIZE %llu, swapping them\n",
                (unsigned long long)min_size, (unsigned long long)max_size);
        uint64_t t = min_size;
        min_size = max_size;
        max_size = t;
    }

    G.min_size = min_size;
    G.range = max_size - min_size + 1;
    G.chunks = chunks;
    G.per_turn = chunks * rounds;
    G.threads = threads;
    pthread_mutex_init(&G.lock, NULL);
    pthread_cond_init(&G.cond, NULL);
    pthread_barrier_init(&G.start, NULL, (unsigned)threads + 1);

    /* Warm-up, not timed: the main thread fills every set, so even the first
     * frees of each worker are of blocks another thread allocated. */
    int nsets = threads + 1;
    chunk_set *sets = bu_xcalloc((size_t)nsets, sizeof *sets);
    bu_rng rng;
    bu_rng_seed(&rng, seed, 0);
    for (int i = 0; i < nsets; i++) {
        sets[i].blocks = bu_xcalloc(chunks, sizeof(void *));
        sets[i].last_owner = -1;
        for (size_t c = 0; c < chunks; c++) {
            size_t size = min_size + (size_t)bu_below(bu_next(&rng), G.range);
            char *p = malloc(size);
            if (!p)
                bu_die("malloc(%zu) failed during warm-up", size);
            p[0] = 1;
            sets[i].blocks[c] = p;
        }
    }
    queue_put(&sets[threads]); /* the spare set */

    worker *workers = bu_xcalloc((size_t)threads, sizeof(worker));
    for (int i = 0; i < threads; i++) {
        workers[i].id = i;
        workers[i].first = &sets[i];
        bu_rng_seed(&workers[i].rng, seed, (uint64_t)i + 1);
        int rc = pthread_create(&workers[i].tid, NULL, worker_main, &workers[i]);
        if (rc != 0)
            bu_die("pthread_create failed for thread %d of %d: %s", i + 1,
                   threads, strerror(rc));
    }

    pthread_barrier_wait(&G.start);
    double t0 = bu_now();
    struct timespec ts = { (time_t)seconds,
                           (long)((seconds - (double)(time_t)seconds) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&G.lock);
    atomic_store(&G.stop, 1);
    pthread_cond_broadcast(&G.cond);
    pthread_mutex_unlock(&G.lock);

    uint64_t ops = 0, turns = 0;
    for (int i = 0; i < threads; i++) {
        int rc = pthread_join(workers[i].tid, NULL);
        if (rc != 0)
            bu_die("pthread_join failed: %s", strerror(rc));
        ops += workers[i].ops;
        turns += workers[i].turns;
    }
    double elapsed = bu_now() - t0;
    long peak_kb = bu_peak_rss_kb();

    /* Cleanup, not timed. */
    for (int i = 0; i < nsets; i++) {
        for (size_t c = 0; c < chunks; c++)
            free(sets[i].blocks[c]);
        free(sets[i].blocks);
    }
    free(sets);
    free(workers);

    double rate = bu_rate((double)ops, elapsed);
    printf("larson: %d threads, %llu chunks of %llu-%llu B per thread, %.2f s: "
           "%llu ops, %.3f M ops/s, %llu hand-offs\n",
           threads, (unsigned long long)chunks, (unsigned long long)min_size,
           (unsigned long long)max_size, elapsed, (unsigned long long)ops,
           rate / 1e6, (unsigned long long)turns);
    printf("RESULT bench=larson threads=%d ops=%llu seconds=%.3f ops_per_sec=%.0f "
           "peak_rss_kb=%ld handoffs=%llu\n",
           threads, (unsigned long long)ops, elapsed, rate, peak_kb,
           (unsigned long long)turns);
    return 0;
}
