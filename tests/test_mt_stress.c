/* test_mt_stress: multi-threaded stress (issue 2, "Tests").
 *
 * HAKTEST_THREADS worker threads (default 8; the runner also runs 16 and 64
 * on two cores, oversubscribed) allocate blocks of 8 bytes to 64 KiB (malloc, calloc,
 * memalign, realloc), fill each with a pattern derived from its address and
 * size, and free them themselves or pass them through a shared queue to be
 * freed (or realloc'd, or kept) by another thread.  Meanwhile the main thread
 * starts waves of short-lived threads that allocate, hand their blocks to the
 * queue and exit, so blocks are freed after their owner died.  Every block's
 * contents are verified before it is freed or resized.  The run lasts
 * HAKTEST_SECONDS (default 3) seconds; then everything is freed and, in
 * the debug build, the live-block count must be back to its start value.
 * The workers start together (a barrier) once all exist, and every thread
 * stops its work at the deadline, so many threads on few cores stay within
 * the time given.
 *
 * All threads run on stacks of their own (see t_thread in testutil.h) so
 * glibc's stack cache keeps no malloc'd blocks alive after the joins.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "handoff.h"

#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define MAX_WORKERS 256
#define WAVE 4
#define LOCAL 256
#define MAX_SIZE 65536

static atomic_int stop;
static double deadline;
static pthread_barrier_t start_line;
static atomic_ullong n_ops, n_remote_frees, n_threads, n_reallocs;

static void verify(const item_t *it, const char *when)
{
    size_t bad = check_pattern(it->p, it->sz, key_of(it->p, it->sz));
    CHECK(bad == it->sz, "block %p of %zu bytes damaged at byte %zu (%s)", (void *)it->p, it->sz,
          bad, when);
}

static size_t pick_size(rng_t *r)
{
    /* log-uniform over 8 B .. 64 KiB */
    unsigned shift = 3 + (unsigned)rng_below(r, 14);  /* 8 .. 65536 */
    size_t s = ((size_t)1 << shift) + (size_t)rng_below(r, (uint64_t)1 << shift);
    return s > MAX_SIZE ? MAX_SIZE : s;
}

static item_t alloc_block(rng_t *r)
{
    item_t it;
    it.sz = pick_size(r);
    unsigned how = (unsigned)rng_below(r, 10);
    if (how < 6) {
        it.p = malloc(it.sz);
    } else if (how < 8) {
        it.p = calloc(1, it.sz);
        CHECK(it.p != NULL, "calloc(1, %zu) failed", it.sz);
        for (size_t i = 0; i < it.sz; i += 61)
            CHECK(it.p[i] == 0, "calloc(1, %zu)=%p not zeroed at %zu", it.sz, (void *)it.p, i);
        CHECK(it.p[it.sz - 1] == 0, "calloc(1, %zu) last byte not zero", it.sz);
    } else {
        size_t al = (size_t)16 << rng_below(r, 8);  /* 16 .. 2048 */
        it.p = memalign(al, it.sz);
        CHECK(it.p != NULL && IS_ALIGNED(it.p, al), "memalign(%zu, %zu)=%p", al, it.sz,
              (void *)it.p);
    }
    CHECK(it.p != NULL, "allocation of %zu bytes failed, errno %d", it.sz, errno);
    CHECK(IS_ALIGNED(it.p, 16), "block %p of %zu bytes not 16-byte aligned", (void *)it.p, it.sz);
    fill_pattern(it.p, it.sz, key_of(it.p, it.sz));
    return it;
}

static void resize_block(item_t *it, rng_t *r)
{
    verify(it, "before realloc");
    size_t nsz = pick_size(r);
    uint64_t oldkey = key_of(it->p, it->sz);
    unsigned char *q = realloc(it->p, nsz);
    CHECK(q != NULL, "realloc(%p, %zu -> %zu) failed", (void *)it->p, it->sz, nsz);
    size_t keep = (it->sz < nsz ? it->sz : nsz) & ~(size_t)7;  /* whole pattern words */
    size_t bad = check_pattern(q, keep, oldkey);
    CHECK(bad == keep, "realloc(%p -> %p, %zu -> %zu) lost contents at byte %zu", (void *)it->p,
          (void *)q, it->sz, nsz, bad);
    it->p = q;
    it->sz = nsz;
    fill_pattern(q, nsz, key_of(q, nsz));
    atomic_fetch_add_explicit(&n_reallocs, 1, memory_order_relaxed);
}

static void free_block(item_t *it, const char *when)
{
    verify(it, when);
    free(it->p);
    it->p = NULL;
}

/* One step of the workload over a thread's local set of blocks. */
static void step(rng_t *r, item_t *local, int *nlocal)
{
    unsigned op = (unsigned)rng_below(r, 100);
    if (op < 35) {
        if (*nlocal < LOCAL)
            local[(*nlocal)++] = alloc_block(r);
    } else if (op < 55) {
        if (*nlocal > 0) {
            int i = (int)rng_below(r, (uint64_t)*nlocal);
            free_block(&local[i], "local free");
            local[i] = local[--*nlocal];
        }
    } else if (op < 70) {
        /* hand a block to another thread */
        if (*nlocal > 0) {
            int i = (int)rng_below(r, (uint64_t)*nlocal);
            if (q_push(local[i]))
                local[i] = local[--*nlocal];
        }
    } else if (op < 95) {
        /* take someone else's block: mostly free it, sometimes keep or resize it */
        item_t it;
        if (q_pop(&it)) {
            verify(&it, "taken from the queue");
            unsigned what = (unsigned)rng_below(r, 10);
            if (what < 7 || *nlocal >= LOCAL) {
                free_block(&it, "remote free");
                atomic_fetch_add_explicit(&n_remote_frees, 1, memory_order_relaxed);
            } else {
                if (what == 9)
                    resize_block(&it, r);
                local[(*nlocal)++] = it;
            }
        }
    } else {
        if (*nlocal > 0)
            resize_block(&local[rng_below(r, (uint64_t)*nlocal)], r);
    }
    atomic_fetch_add_explicit(&n_ops, 1, memory_order_relaxed);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, 1000 + (uint64_t)id);
    static __thread item_t local[LOCAL];
    int nlocal = 0;
    pthread_barrier_wait(&start_line);
    while (!atomic_load_explicit(&stop, memory_order_relaxed) && t_now_s() < deadline)
        for (int k = 0; k < 64; k++)
            step(&r, local, &nlocal);
    for (int i = 0; i < nlocal; i++)
        free_block(&local[i], "worker exit");
    return NULL;
}

/* Short-lived: some work, then its blocks go to the queue (or are freed if
 * the queue is full) and it exits. */
static void *ephemeral(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg;
    rng_t r;
    rng_seed(&r, seed);
    static __thread item_t local[LOCAL];
    int nlocal = 0;
    int steps = 500 + (int)rng_below(&r, 3000);
    for (int k = 0; k < steps; k++) {
        if (k % 64 == 63 && t_now_s() > deadline)
            break;
        step(&r, local, &nlocal);
    }
    /* fill up with fresh blocks, all handed over: freed after we are gone */
    while (nlocal < 64)
        local[nlocal++] = alloc_block(&r);
    for (int i = 0; i < nlocal; i++)
        if (!q_push(local[i]))
            free_block(&local[i], "ephemeral exit, queue full");
    return NULL;
}

int main(void)
{
    test_init("test_mt_stress");
    double seconds = 3;
    const char *env = getenv("HAKTEST_SECONDS");
    if (env && atof(env) > 0)
        seconds = atof(env);
    int nworkers = 8;
    env = getenv("HAKTEST_THREADS");
    if (env && atoi(env) > 0)
        nworkers = atoi(env);
    CHECK(nworkers <= MAX_WORKERS, "HAKTEST_THREADS=%d: at most %d", nworkers, MAX_WORKERS);
    live_begin();

    static t_thread workers[MAX_WORKERS];
    double end = t_now_s() + seconds;
    deadline = end;
    CHECK(pthread_barrier_init(&start_line, NULL, (unsigned)nworkers + 1) == 0, "barrier");
    for (int i = 0; i < nworkers; i++)
        t_thread_start(&workers[i], worker, (void *)(intptr_t)i);
    pthread_barrier_wait(&start_line);

    uint64_t seed = 1;
    unsigned long long waves = 0;
    while (t_now_s() < end) {
        t_thread eph[WAVE];
        for (int i = 0; i < WAVE; i++)
            t_thread_start(&eph[i], ephemeral, (void *)(uintptr_t)(seed++));
        for (int i = 0; i < WAVE; i++)
            t_thread_join(&eph[i]);
        atomic_fetch_add(&n_threads, WAVE);
        waves++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nworkers; i++)
        t_thread_join(&workers[i]);
    pthread_barrier_destroy(&start_line);

    /* what is left in the queue: verify and free */
    item_t it;
    size_t drained = 0;
    while (q_pop(&it)) {
        free_block(&it, "final drain");
        drained++;
    }
    CHECK(atomic_load(&n_remote_frees) > 0, "no cross-thread frees happened");
    CHECK(waves > 0, "no wave of short-lived threads ran");
    live_end("test_mt_stress");
    printf("test_mt_stress: ok (%d workers, %llu ops, %llu cross-thread frees, %llu reallocs, "
           "%llu short-lived threads in %llu waves, %zu drained at the end)\n",
           nworkers, (unsigned long long)atomic_load(&n_ops),
           (unsigned long long)atomic_load(&n_remote_frees),
           (unsigned long long)atomic_load(&n_reallocs), (unsigned long long)atomic_load(&n_threads),
           waves, drained);
    return 0;
}
