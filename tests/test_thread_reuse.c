/* test_thread_reuse: a thread's heap, parked at its exit with its slabs,
 * serves the next thread (issue 14, threads that come and go).
 *
 * 1. A thread allocates 3,000 blocks of 16 B..4 KiB, frees every other one
 *    and exits, leaving its slabs partly used. Then, 20 rounds: a new thread
 *    allocates and frees as many blocks in the same classes, checking each
 *    one's bytes; the first thread's blocks keep theirs throughout, and the
 *    main thread frees them at the end.
 * 2. The same left-behind heap, then fork: the child's own new thread
 *    allocates and frees in those classes, the child frees the blocks the
 *    first thread left (a parked heap's slabs are abandoned in the child,
 *    not kept by the heap as well) and exits 0.
 * 3. A thread fills 64 MiB with blocks of 1 KiB, frees all but one block
 *    in 64 and exits: malloc_trim(0) gives its free pages back (RSS falls
 *    by at least half of what was freed), though its heap was parked.
 * With the debug build, no block is lost (the live-block count).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>

#define MiB ((size_t)1 << 20)
#define LEFT 3000

typedef struct {
    unsigned char *p;
    size_t sz;
} item_t;

static item_t left[LEFT];   /* the first thread's blocks still out */

static uint64_t key_of(const void *p, size_t sz)
{
    return (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)sz;
}

static item_t make(size_t sz)
{
    item_t it = { malloc(sz), sz };
    CHECK(it.p != NULL, "malloc(%zu)", sz);
    fill_pattern(it.p, sz, key_of(it.p, sz));
    return it;
}

static void check_free(item_t *it, const char *when)
{
    size_t bad = check_pattern(it->p, it->sz, key_of(it->p, it->sz));
    CHECK(bad == it->sz, "[pid %d] block %p (%zu bytes) damaged at byte %zu (%s)", (int)getpid(), (void *)it->p,
          it->sz, bad, when);
    free(it->p);
    it->p = NULL;
}

static size_t size_of(rng_t *r)
{
    return 16 + rng_below(r, 4081);
}

static void *leave_blocks(void *arg)
{
    (void)arg;
    rng_t r;
    rng_seed(&r, 11);
    for (int i = 0; i < LEFT; i++) left[i] = make(size_of(&r));
    for (int i = 0; i < LEFT; i += 2) check_free(&left[i], "first thread");
    return NULL;
}

static void *churn(void *arg)
{
    rng_t r;
    rng_seed(&r, (uint64_t)(uintptr_t)arg);
    static __thread item_t mine[LEFT];
    for (int i = 0; i < LEFT; i++) mine[i] = make(size_of(&r));
    for (int i = LEFT; i-- > 0;) check_free(&mine[i], "a later thread");
    return NULL;
}

static void run_thread(void *(*fn)(void *), void *arg)
{
    t_thread t;
    t_thread_start(&t, fn, arg);
    t_thread_join(&t);
}

static void check_left(const char *when)
{
    for (int i = 1; i < LEFT; i += 2) {
        size_t bad = check_pattern(left[i].p, left[i].sz, key_of(left[i].p, left[i].sz));
        CHECK(bad == left[i].sz, "block %p left by an exited thread damaged at byte %zu (%s)", (void *)left[i].p,
              bad, when);
    }
}

static void free_left(const char *when)
{
    for (int i = 1; i < LEFT; i += 2) check_free(&left[i], when);
}

static void test_next_threads(void)
{
    run_thread(leave_blocks, NULL);
    for (int round = 0; round < 20; round++) {
        run_thread(churn, (void *)(uintptr_t)(100 + round));
        check_left("after a later thread");
    }
    free_left("main thread");
}

static void test_fork_after(void)
{
    run_thread(leave_blocks, NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        for (int round = 0; round < 3; round++) run_thread(churn, (void *)(uintptr_t)(200 + round));
        check_left("in the child");
        free_left("child");
        run_thread(churn, (void *)(uintptr_t)300);
        _exit(0);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child after a parked heap: status %d", st);
    run_thread(churn, (void *)(uintptr_t)400);
    free_left("parent after the fork");
}

#define FILL_BLOCKS (64 * 1024)
static void *fill[FILL_BLOCKS];

static void *fill_and_leave(void *arg)
{
    (void)arg;
    for (int i = 0; i < FILL_BLOCKS; i++) {
        fill[i] = malloc(1024);
        CHECK(fill[i] != NULL, "malloc(1024)");
        memset(fill[i], 0x5a, 1024);
    }
    for (int i = 0; i < FILL_BLOCKS; i++)
        if (i % 64 != 0) {
            free(fill[i]);
            fill[i] = NULL;
        }
    return NULL;
}

static void test_trim_parked(void)
{
    size_t before = t_rss_bytes();
    run_thread(fill_and_leave, NULL);
    size_t held = t_rss_bytes();
    malloc_trim(0);
    size_t after = t_rss_bytes();
    printf("parked heap: RSS %zu MiB before, %zu MiB after the thread, %zu MiB after malloc_trim\n", before / MiB,
           held / MiB, after / MiB);
    CHECK(held >= before + 48 * MiB, "RSS only %zu KiB -> %zu KiB for 64 MiB of blocks", before / 1024, held / 1024);
    CHECK(after + 31 * MiB <= held, "malloc_trim gave back only %zu KiB of the 63 MiB an exited thread freed",
          (held - after) / 1024);
    for (int i = 0; i < FILL_BLOCKS; i += 64) {
        unsigned char *p = fill[i];
        CHECK(p[0] == 0x5a && p[1023] == 0x5a, "block %p lost its bytes", (void *)p);
        free(p);
    }
}

int main(void)
{
    test_init("test_thread_reuse");
    live_begin();
    test_next_threads();
    test_fork_after();
    test_trim_parked();
    live_end("test_thread_reuse");
    printf("test_thread_reuse: ok\n");
    return 0;
}
