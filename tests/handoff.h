/* handoff.h: what the multi-threaded stress tests (test_mt_stress.c,
 * prefix_stress.c) share: a block as they pass it around, the ring under a
 * mutex through which one thread hands blocks to another (so that most
 * frees of the blocks taken from it are frees of another thread's block),
 * and the key a block's pattern is derived from (the clock is testutil.h's
 * t_now_s).
 *
 * Include once per program, after testutil.h.
 */
#ifndef HAKMEM_TESTS_HANDOFF_H
#define HAKMEM_TESTS_HANDOFF_H

#include <pthread.h>
#include <stdint.h>

#define QCAP 4096

typedef struct {
    unsigned char *p;
    size_t sz;
} item_t;

static item_t queue[QCAP];
static size_t q_head, q_count;
static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;

/* Puts it in the ring; 0 if the ring is full. */
static int q_push(item_t it)
{
    int ok = 0;
    pthread_mutex_lock(&q_lock);
    if (q_count < QCAP) {
        queue[(q_head + q_count) % QCAP] = it;
        q_count++;
        ok = 1;
    }
    pthread_mutex_unlock(&q_lock);
    return ok;
}

/* Takes the oldest block from the ring; 0 if it is empty. */
static int q_pop(item_t *it)
{
    int ok = 0;
    pthread_mutex_lock(&q_lock);
    if (q_count > 0) {
        *it = queue[q_head];
        q_head = (q_head + 1) % QCAP;
        q_count--;
        ok = 1;
    }
    pthread_mutex_unlock(&q_lock);
    return ok;
}

static uint64_t key_of(const void *p, size_t sz)
{
    return (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)sz;
}

#endif
