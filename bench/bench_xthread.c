/* bench_xthread.c: cross-thread frees, producers allocate and consumers free.
 *
 *   bench_xthread PAIRS OPS SEED
 *
 * PAIRS producer/consumer pairs (2 * PAIRS threads). Each producer mallocs OPS
 * blocks of random size in [16, 4096] bytes, writes a small header (the size)
 * and the last byte, and passes the pointer to its consumer through a
 * single-producer single-consumer ring of RING_CAP slots; the consumer checks
 * the header and frees the block. Every free is thus of a block allocated by
 * another thread, the pattern of pipelines and thread pools that allocators
 * with per-thread caches must handle ("remote frees"). A full or empty ring
 * makes the waiting side spin briefly and then yield, so it also runs when
 * there are more threads than cores.
 *
 * Operations are mallocs plus frees (2 * PAIRS * OPS), timed from a common
 * start until every consumer has freed its last block.
 */
#include "bench_util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#define USAGE "PAIRS OPS SEED\n"                                              \
    "  PAIRS  producer/consumer thread pairs (2*PAIRS threads), 1..512\n"      \
    "  OPS    blocks each producer allocates (and its consumer frees), >= 1\n" \
    "  SEED   PRNG seed, any integer >= 0\n"                                  \
    "example: bench_xthread 2 1000000 42"

#define MIN_SIZE 16u
#define MAX_SIZE 4096u
#define RING_CAP 1024u /* power of two */

/* One producer -> consumer channel. head is written only by the producer,
 * tail only by the consumer; each sits on its own cache line. */
typedef struct {
    _Alignas(64) atomic_size_t head;  /* slots published */
    _Alignas(64) atomic_size_t tail;  /* slots consumed */
    _Alignas(64) void *slot[RING_CAP];
    int id;
    uint64_t seed;
    pthread_t producer, consumer;
} channel;

static uint64_t g_ops;
static pthread_barrier_t g_start;

static void *producer_main(void *arg)
{
    channel *ch = arg;
    bu_rng rng;
    bu_rng_seed(&rng, ch->seed, (uint64_t)ch->id + 1);
    size_t head = 0, tail_seen = 0;

    pthread_barrier_wait(&g_start);
    for (uint64_t i = 0; i < g_ops; i++) {
        size_t size = MIN_SIZE + (size_t)bu_below(bu_next(&rng), MAX_SIZE - MIN_SIZE + 1);
        char *p = malloc(size);
        if (!p)
            bu_die("malloc(%zu) failed", size);
        memcpy(p, &size, sizeof size);
        p[size - 1] = (char)i;
        unsigned spins = 0;
        while (head - tail_seen == RING_CAP) {  /* full: see what was consumed */
            tail_seen = atomic_load_explicit(&ch->tail, memory_order_acquire);
            if (head - tail_seen == RING_CAP)
                bu_backoff(&spins);
        }
        ch->slot[head % RING_CAP] = p;
        atomic_store_explicit(&ch->head, ++head, memory_order_release);
    }
    return NULL;
}

static void *consumer_main(void *arg)
{
    channel *ch = arg;
    size_t tail = 0, head_seen = 0;

    pthread_barrier_wait(&g_start);
    for (uint64_t i = 0; i < g_ops; i++) {
        unsigned spins = 0;
        while (tail == head_seen) {  /* empty: see what was published */
            head_seen = atomic_load_explicit(&ch->head, memory_order_acquire);
            if (tail == head_seen)
                bu_backoff(&spins);
        }
        char *p = ch->slot[tail % RING_CAP];
        size_t size;
        memcpy(&size, p, sizeof size);
        if (size < MIN_SIZE || size > MAX_SIZE)
            bu_die("corrupt block %p: header says %zu bytes", (void *)p, size);
        free(p);
        atomic_store_explicit(&ch->tail, ++tail, memory_order_release);
    }
    return NULL;
}

static void start_thread(pthread_t *t, void *(*fn)(void *), channel *ch,
                         int n, int total)
{
    int rc = pthread_create(t, NULL, fn, ch);
    if (rc != 0)
        bu_die("pthread_create failed for thread %d of %d: %s", n, total,
               strerror(rc));
}

int main(int argc, char **argv)
{
    bu_set_usage("bench_xthread", USAGE, argc, argv);
    if (argc != 4)
        bu_usage_error("expected 3 arguments, got %d", argc - 1);
    int pairs = (int)bu_parse_u64(argv[1], "PAIRS", 1, 512);
    g_ops = bu_parse_u64(argv[2], "OPS", 1, UINT64_MAX / 2048);
    uint64_t seed = bu_parse_u64(argv[3], "SEED", 0, UINT64_MAX);

    channel *chans = aligned_alloc(64, sizeof(channel) * (size_t)pairs);
    if (!chans)
        bu_die("out of memory");
    memset(chans, 0, sizeof(channel) * (size_t)pairs);
    pthread_barrier_init(&g_start, NULL, 2 * (unsigned)pairs + 1);
    for (int i = 0; i < pairs; i++) {
        chans[i].id = i;
        chans[i].seed = seed;
        start_thread(&chans[i].consumer, consumer_main, &chans[i], 2 * i + 1, 2 * pairs);
        start_thread(&chans[i].producer, producer_main, &chans[i], 2 * i + 2, 2 * pairs);
    }
    pthread_barrier_wait(&g_start);
    double t0 = bu_now();
    for (int i = 0; i < pairs; i++) {
        int rc = pthread_join(chans[i].producer, NULL);
        if (rc == 0)
            rc = pthread_join(chans[i].consumer, NULL);
        if (rc != 0)
            bu_die("pthread_join failed: %s", strerror(rc));
    }
    double elapsed = bu_now() - t0;
    long peak_kb = bu_peak_rss_kb();
    free(chans);

    uint64_t ops = 2 * g_ops * (uint64_t)pairs;
    double rate = bu_rate((double)ops, elapsed);
    printf("bench_xthread: %d producer/consumer pairs x %llu blocks of 16-4096 B, "
           "%.3f s: %.3f M ops/s\n",
           pairs, (unsigned long long)g_ops, elapsed, rate / 1e6);
    printf("RESULT bench=bench_xthread threads=%d ops=%llu seconds=%.3f "
           "ops_per_sec=%.0f peak_rss_kb=%ld pairs=%d\n",
           2 * pairs, (unsigned long long)ops, elapsed, rate, peak_kb, pairs);
    return 0;
}
