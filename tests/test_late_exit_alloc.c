/* test_late_exit_alloc: a thread's last allocations are given back however
 * late they come (issue 12, item 5).
 *
 * Each of 4,000 threads allocates (so hakmem's thread-exit handler runs in
 * the first round of pthread key destructors), and a destructor of its own
 * keeps itself going for all PTHREAD_DESTRUCTOR_ITERATIONS rounds and
 * allocates a block in the last one, after hakmem's handler ran. The block
 * is handed to the main thread, which frees it after the thread ended. With
 * every thread joined and every block freed, malloc_trim(0) and a wait of
 * at most 3 s must bring RSS back within 16 MiB of where it was, and the
 * address space within 64 MiB (each thread's late heap used to stay owned
 * for good: about 63 KiB of RSS and 130 KiB of address space per thread).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <time.h>

#define THREADS 4000
#define BATCH 40

static pthread_key_t key;
static void *handed[THREADS];
static __thread int rounds;
static __thread int my_index;

static void destructor(void *v)
{
    if (++rounds < PTHREAD_DESTRUCTOR_ITERATIONS) {
        pthread_setspecific(key, v);   /* once more, in the next round */
        return;
    }
    char *p = malloc(t_size(200));     /* the last round: hakmem's handler ran long ago */
    CHECK(p != NULL, "malloc in the last destructor round");
    memset(p, 0x5a, 200);
    handed[my_index] = p;
}

static void *worker(void *arg)
{
    my_index = (int)(intptr_t)arg;
    free(malloc(t_size(48)));          /* hakmem's exit handler will run in round 1 */
    pthread_setspecific(key, (void *)1);
    return NULL;
}

static void run_threads(int from, int to)
{
    for (int i = from; i < to; i += BATCH) {
        pthread_t th[BATCH];
        int n = to - i < BATCH ? to - i : BATCH;
        for (int b = 0; b < n; b++)
            CHECK(pthread_create(&th[b], NULL, worker, (void *)(intptr_t)(i + b)) == 0, "pthread_create");
        for (int b = 0; b < n; b++) pthread_join(th[b], NULL);
    }
}

static void free_handed(int from, int to)
{
    for (int i = from; i < to; i++) {
        CHECK(handed[i] != NULL, "thread %d handed no block: its last destructor round did not come", i);
        unsigned char *c = handed[i];
        CHECK(c[0] == 0x5a && c[199] == 0x5a, "block of thread %d changed", i);
        free(handed[i]);
        handed[i] = NULL;
    }
}

int main(void)
{
    test_init("test_late_exit_alloc");
    CHECK(pthread_key_create(&key, destructor) == 0, "pthread_key_create");
    /* a first batch: glibc's stack cache and hakmem's pools fill up */
    run_threads(0, 200);
    free_handed(0, 200);
    malloc_trim(0);
    size_t vm0, rss0;
    t_statm(&vm0, &rss0);
    run_threads(200, THREADS);
    free_handed(200, THREADS);
    size_t vm1 = 0, rss1 = 0;
    for (int i = 0; i < 30; i++) {
        malloc_trim(0);
        t_statm(&vm1, &rss1);
        if (rss1 <= rss0 + (16u << 20) && vm1 <= vm0 + (64u << 20)) break;
        struct timespec ts = { 0, 100 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    printf("%d threads allocating in their last destructor round: RSS %zu -> %zu KiB, address space %zu -> %zu KiB\n",
           THREADS - 200, rss0 >> 10, rss1 >> 10, vm0 >> 10, vm1 >> 10);
    CHECK(rss1 <= rss0 + (16u << 20), "RSS grew by %zu KiB: late heaps were not given back", (rss1 - rss0) >> 10);
    CHECK(vm1 <= vm0 + (64u << 20), "address space grew by %zu KiB", (vm1 - vm0) >> 10);
    printf("test_late_exit_alloc: ok\n");
    return 0;
}
