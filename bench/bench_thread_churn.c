/* bench_thread_churn.c: short-lived threads that free each other's blocks.
 *
 *   bench_thread_churn THREADS ROUNDS BLOCKS [SEED]
 *
 * ROUNDS rounds, one after the other. In each round the main thread creates
 * THREADS threads. Thread i mallocs BLOCKS blocks of random size (7 in 8 of
 * 16-4096 bytes, the rest of 4097-32768 bytes), writes the size into each
 * block's first bytes and a byte at its end, frees about half of them itself
 * (each block picked by a coin toss) and puts the others into its mailbox,
 * an array of slots that thread i + 1 of the same round (the last thread
 * wraps to the first) empties: it waits for the mailbox to be published,
 * checks each block's size and frees it. Then the thread exits; the main
 * thread joins all of them and starts the next round.
 *
 * A mailbox may be emptied after the thread that filled it has exited, so
 * the allocator sees frees of blocks whose owner is gone as well as frees of
 * a live thread's blocks. Every round also pays for thread creation, the
 * first malloc of a new thread (setting up its heap or cache) and thread
 * exit (handing back what the thread still holds): the life of worker
 * threads spawned per task. With THREADS = 1 the thread is its own
 * neighbour, so there are no cross-thread frees, only the thread churn.
 *
 * Operations are mallocs plus frees (2 * THREADS * BLOCKS per round), timed
 * from the first pthread_create to the last pthread_join, thread start-up
 * and exit included.
 */
#include "bench_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define USAGE "THREADS ROUNDS BLOCKS [SEED]\n"                                  \
    "  THREADS  threads created in each round, 1..1024\n"                       \
    "  ROUNDS   rounds (THREADS threads created and joined in each), 1..2^28\n" \
    "  BLOCKS   blocks each thread mallocs per round, 1..2^24\n"                \
    "  SEED     PRNG seed, any integer >= 0 (default 42)\n"                     \
    "example: bench_thread_churn 2 800 300 42"

#define SMALL_MIN 16u
#define SMALL_MAX 4096u
#define BIG_MAX   (32u * 1024)
#define BIG_ONE_IN 8u /* one block in BIG_ONE_IN is above SMALL_MAX */

/* Per-thread slot of one round. The mailbox (`out`, `n_out`) is written by
 * its thread and read by the next one; `ready` publishes it and holds the
 * number of the round (from 1) whose blocks it carries, so it never needs
 * resetting. Each slot starts on its own cache line. */
typedef struct {
    _Alignas(64) atomic_uint_fast64_t ready;
    size_t n_out;
    void **out;    /* mailbox: blocks for the next thread, BLOCKS slots */
    void **keep;   /* blocks this thread frees itself, BLOCKS slots */
    pthread_t tid;
    int id;
    uint64_t round;  /* 1-based, set by main before creating the thread */
    uint64_t frees_own, frees_received;
} slot;

static struct {
    int threads;
    uint64_t blocks;
    uint64_t seed;
    slot *slots;
} G;

static void *thread_main(void *arg)
{
    slot *me = arg;
    const uint64_t blocks = G.blocks, round = me->round;
    bu_rng rng;
    bu_rng_seed(&rng, G.seed, (round - 1) * (uint64_t)G.threads + (uint64_t)me->id + 1);
    void **out = me->out, **keep = me->keep;
    size_t n_out = 0, n_keep = 0;

    for (uint64_t i = 0; i < blocks; i++) {
        uint64_t r = bu_next(&rng);
        size_t size;
        if (bu_below(r, BIG_ONE_IN) == 0)
            size = SMALL_MAX + 1 + (size_t)bu_below(bu_next(&rng), BIG_MAX - SMALL_MAX);
        else
            size = SMALL_MIN + (size_t)bu_below(bu_next(&rng), SMALL_MAX - SMALL_MIN + 1);
        char *p = malloc(size);
        if (!p)
            bu_die("malloc(%zu) failed", size);
        memcpy(p, &size, sizeof size);
        p[size - 1] = (char)i;
        if (r & 1)   /* the coin: bit 0, apart from the bits bu_below used */
            out[n_out++] = p;
        else
            keep[n_keep++] = p;
    }
    for (size_t i = 0; i < n_keep; i++)
        free(keep[i]);
    me->frees_own = n_keep;

    /* Publish the mailbox, then empty the previous thread's. */
    me->n_out = n_out;
    atomic_store_explicit(&me->ready, round, memory_order_release);
    slot *from = &G.slots[(me->id + G.threads - 1) % G.threads];
    unsigned spins = 0;
    while (atomic_load_explicit(&from->ready, memory_order_acquire) != round)
        bu_backoff(&spins);
    for (size_t i = 0; i < from->n_out; i++) {
        char *p = from->out[i];
        size_t size;
        memcpy(&size, p, sizeof size);
        if (size < SMALL_MIN || size > BIG_MAX)
            bu_die("corrupt block %p from thread %d: header says %zu bytes",
                   (void *)p, from->id, size);
        free(p);
    }
    me->frees_received = from->n_out;
    return NULL;
}

int main(int argc, char **argv)
{
    bu_set_usage("bench_thread_churn", USAGE, argc, argv);
    if (argc != 4 && argc != 5)
        bu_usage_error("expected 3 or 4 arguments, got %d", argc - 1);
    G.threads = (int)bu_parse_u64(argv[1], "THREADS", 1, 1024);
    uint64_t rounds = bu_parse_u64(argv[2], "ROUNDS", 1, 1ull << 28);
    G.blocks = bu_parse_u64(argv[3], "BLOCKS", 1, 1ull << 24);
    G.seed = argc == 5 ? bu_parse_u64(argv[4], "SEED", 0, UINT64_MAX) : 42;

    /* Bookkeeping, not timed: the slots and their pointer arrays are reused
     * by every round. */
    G.slots = aligned_alloc(64, sizeof(slot) * (size_t)G.threads);
    if (!G.slots)
        bu_die("out of memory");
    memset(G.slots, 0, sizeof(slot) * (size_t)G.threads);
    for (int i = 0; i < G.threads; i++) {
        G.slots[i].id = i;
        G.slots[i].out = bu_xcalloc(G.blocks, sizeof(void *));
        G.slots[i].keep = bu_xcalloc(G.blocks, sizeof(void *));
    }

    uint64_t frees_own = 0, frees_received = 0;
    double t0 = bu_now();
    for (uint64_t round = 1; round <= rounds; round++) {
        for (int i = 0; i < G.threads; i++) {
            G.slots[i].round = round;
            int rc = pthread_create(&G.slots[i].tid, NULL, thread_main, &G.slots[i]);
            if (rc != 0)
                bu_die("pthread_create failed for thread %d of %d in round %llu: %s",
                       i + 1, G.threads, (unsigned long long)round, strerror(rc));
        }
        for (int i = 0; i < G.threads; i++) {
            int rc = pthread_join(G.slots[i].tid, NULL);
            if (rc != 0)
                bu_die("pthread_join failed: %s", strerror(rc));
            frees_own += G.slots[i].frees_own;
            frees_received += G.slots[i].frees_received;
        }
    }
    double elapsed = bu_now() - t0;
    long peak_kb = bu_peak_rss_kb();

    uint64_t mallocs = rounds * (uint64_t)G.threads * G.blocks;
    if (frees_own + frees_received != mallocs)
        bu_die("%llu mallocs but %llu frees", (unsigned long long)mallocs,
               (unsigned long long)(frees_own + frees_received));
    for (int i = 0; i < G.threads; i++) {
        free(G.slots[i].out);
        free(G.slots[i].keep);
    }
    free(G.slots);

    uint64_t ops = 2 * mallocs;
    /* with one thread, the "next thread" is the thread itself */
    uint64_t remote = G.threads > 1 ? frees_received : 0;
    double rate = bu_rate((double)ops, elapsed);
    printf("bench_thread_churn: %llu rounds of %d threads x %llu blocks of 16 B-32 KiB "
           "(%llu freed by their own thread, %llu by the next), %.3f s: %.3f M ops/s, "
           "%.0f threads/s\n",
           (unsigned long long)rounds, G.threads, (unsigned long long)G.blocks,
           (unsigned long long)frees_own, (unsigned long long)frees_received,
           elapsed, rate / 1e6, bu_rate((double)rounds * G.threads, elapsed));
    printf("RESULT bench=bench_thread_churn threads=%d ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld rounds=%llu blocks=%llu "
           "remote_frees=%llu threads_per_sec=%.0f\n",
           G.threads, (unsigned long long)ops, elapsed, rate, peak_kb,
           (unsigned long long)rounds, (unsigned long long)G.blocks,
           (unsigned long long)remote,
           bu_rate((double)rounds * G.threads, elapsed));
    return 0;
}
