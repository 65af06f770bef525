/* test_fork: fork while other threads allocate (issue 2, "fork: the child can
 * allocate and free at once, even if other threads of the parent were inside
 * hakmem when it forked").
 *
 * Three threads allocate, verify and free (some of it across threads) in a
 * loop.  Meanwhile the main thread and one more thread fork over and over;
 * each child at once allocates and frees a variety of sizes, frees blocks it
 * inherited (some owned by threads that do not exist in the child), starts a
 * thread of its own that allocates, sometimes forks a grandchild that does
 * the same, and exits 0.  The parent checks every child's exit status; a
 * child that hangs (a lock held across fork) is killed after a time limit
 * and fails the test.  Runs for HAKTEST_SECONDS (default 2) seconds.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#define CHURNERS 3
#define CHURN_LOCAL 48
#define PARKED 24
#define CHILD_TIMEOUT 30.0

typedef struct {
    unsigned char *p;
    size_t sz;
} item_t;

static atomic_int stop;
static atomic_ullong n_forks, n_churn_ops;
/* blocks made by each churner before the forking starts, left alone until
 * the end; children free them (their owners do not exist in the child) */
static item_t parked[CHURNERS][PARKED];
static atomic_int parked_ready;
/* a one-slot mailbox per churner for cross-thread frees */
static _Atomic(unsigned char *) mailbox[CHURNERS];
static size_t mailbox_sz[CHURNERS];
static pthread_mutex_t mailbox_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t key_of(const void *p, size_t sz)
{
    return (uint64_t)(uintptr_t)p * 0xD1B54A32D192ED03ull ^ (uint64_t)sz;
}

static item_t make(size_t sz)
{
    item_t it = { malloc(sz), sz };
    CHECK(it.p != NULL, "malloc(%zu) failed, errno %d", sz, errno);
    fill_pattern(it.p, sz, key_of(it.p, sz));
    return it;
}

static void verify_free(item_t *it, const char *when)
{
    size_t bad = check_pattern(it->p, it->sz, key_of(it->p, it->sz));
    CHECK(bad == it->sz, "[pid %d] block %p (%zu bytes) damaged at byte %zu (%s)", (int)getpid(),
          (void *)it->p, it->sz, bad, when);
    free(it->p);
    it->p = NULL;
}

static size_t churn_size(rng_t *r)
{
    unsigned k = (unsigned)rng_below(r, 1000);
    if (k < 700)
        return 1 + rng_below(r, 1024);
    if (k < 960)
        return 1024 + rng_below(r, 31 * 1024);
    if (k < 998)
        return 32768 + rng_below(r, 256 * 1024);
    return (1u << 20) + rng_below(r, 1u << 20);
}

static void *churner(void *arg)
{
    int id = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, 77 + (uint64_t)id);
    for (int i = 0; i < PARKED; i++)
        parked[id][i] = make(churn_size(&r));
    atomic_fetch_add(&parked_ready, 1);
    item_t local[CHURN_LOCAL];
    int n = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned op = (unsigned)rng_below(&r, 10);
        if (op < 5 && n < CHURN_LOCAL) {
            local[n++] = make(churn_size(&r));
        } else if (op < 8 && n > 0) {
            int i = (int)rng_below(&r, (uint64_t)n);
            verify_free(&local[i], "churner free");
            local[i] = local[--n];
        } else if (n > 0) {
            /* swap a block with the next churner's mailbox: its owner frees
             * what we leave, we free what it left */
            int to = (id + 1) % CHURNERS;
            pthread_mutex_lock(&mailbox_lock);
            item_t prev = { atomic_load(&mailbox[to]), mailbox_sz[to] };
            atomic_store(&mailbox[to], local[n - 1].p);
            mailbox_sz[to] = local[n - 1].sz;
            pthread_mutex_unlock(&mailbox_lock);
            n--;
            if (prev.p)
                verify_free(&prev, "mailbox free");
        }
        atomic_fetch_add_explicit(&n_churn_ops, 1, memory_order_relaxed);
    }
    for (int i = 0; i < n; i++)
        verify_free(&local[i], "churner exit");
    return NULL;
}

/* sizes for the children: small to mid, to keep each child short */
static size_t child_size(rng_t *r)
{
    return rng_below(r, 4) ? 1 + rng_below(r, 1024) : 1024 + rng_below(r, 63 * 1024);
}

static void *child_thread(void *arg)
{
    rng_t *r = arg;
    for (int i = 0; i < 100; i++) {
        item_t it = make(child_size(r));
        verify_free(&it, "child thread");
    }
    return NULL;
}

/* What a child does at once after fork. */
static void child_work(uint64_t seed, int depth)
{
    alarm((unsigned)CHILD_TIMEOUT);  /* a hang dies by SIGALRM */
    rng_t r;
    rng_seed(&r, seed);
    /* a variety of sizes, right away */
    static const size_t sizes[] = { 0, 1, 8, 16, 24, 100, 512, 1024, 1025, 4000, 16384, 32768,
                                    40000, 100000, 1u << 20 };
    item_t held[sizeof sizes / sizeof sizes[0]];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        held[i] = make(sizes[i]);
        CHECK(owned(held[i].p) == 1, "[child] malloc(%zu)=%p not hakmem's", sizes[i],
              (void *)held[i].p);
    }
    unsigned char *c = calloc(100, 100);
    CHECK(c != NULL, "[child] calloc");
    for (int i = 0; i < 10000; i++)
        CHECK(c[i] == 0, "[child] calloc not zeroed");
    c = realloc(c, 300000);
    CHECK(c != NULL, "[child] realloc");
    free(c);
    void *a = memalign(4096, 5000);
    CHECK(a != NULL && IS_ALIGNED(a, 4096), "[child] memalign");
    free(a);
    item_t many[100];
    for (int i = 0; i < 100; i++)
        many[i] = make(child_size(&r));
    /* inherited blocks: some owned by threads that do not exist here */
    for (int t = 0; t < CHURNERS; t++)
        for (int i = (int)(seed % 3); i < PARKED; i += 3)
            verify_free(&parked[t][i], "child frees a parked block");
    for (int i = 99; i >= 0; i--)
        verify_free(&many[i], "child");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        verify_free(&held[i], "child");
    /* a thread of the child's own */
    pthread_t th;
    CHECK(pthread_create(&th, NULL, child_thread, &r) == 0, "[child] pthread_create");
    pthread_join(th, NULL);
    /* and now and then a grandchild */
    if (depth == 0 && seed % 8 == 0) {
        pid_t g = fork();
        CHECK(g >= 0, "[child] fork of a grandchild failed");
        if (g == 0) {
            child_work(seed * 31 + 7, 1);
            _exit(0);
        }
        int st;
        CHECK(waitpid(g, &st, 0) == g, "[child] waitpid");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "[child] grandchild failed: status 0x%x", st);
    }
}

/* fork once and check the child; returns when the child is done */
static void fork_one(uint64_t seed)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed, errno %d", errno);
    if (pid == 0) {
        child_work(seed, 0);
        if (seed & 1)
            exit(0);
        _exit(0);
    }
    double limit = t_now_s() + CHILD_TIMEOUT + 5;
    int st;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        CHECK(w >= 0, "waitpid failed, errno %d", errno);
        if (w == pid)
            break;
        if (t_now_s() > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            FAIL("child %d (seed %llu) hung for %.0f s after fork (a lock held across fork?)",
                 (int)pid, (unsigned long long)seed, CHILD_TIMEOUT + 5);
        }
        usleep(200);
    }
    if (WIFSIGNALED(st))
        FAIL("child %d (seed %llu) died by signal %d%s", (int)pid, (unsigned long long)seed,
             WTERMSIG(st), WTERMSIG(st) == SIGALRM ? " (SIGALRM: it hung)" : "");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d (seed %llu) exited with status %d",
          (int)pid, (unsigned long long)seed, WEXITSTATUS(st));
    atomic_fetch_add(&n_forks, 1);
}

static double deadline;

static void *forking_thread(void *arg)
{
    uint64_t seed = 1000001;
    while (t_now_s() < deadline)
        fork_one(seed += 2);
    return NULL;
}

int main(void)
{
    test_init("test_fork");
    double seconds = 2;
    const char *env = getenv("HAKTEST_SECONDS");
    if (env && atof(env) > 0)
        seconds = atof(env);
    live_begin();

    t_thread ch[CHURNERS], ft;
    for (int i = 0; i < CHURNERS; i++)
        t_thread_start(&ch[i], churner, (void *)(intptr_t)i);
    while (atomic_load(&parked_ready) < CHURNERS)
        usleep(1000);
    deadline = t_now_s() + seconds;
    t_thread_start(&ft, forking_thread, NULL);
    uint64_t seed = 0;
    while (t_now_s() < deadline)
        fork_one(seed++);
    t_thread_join(&ft);
    atomic_store(&stop, 1);
    for (int i = 0; i < CHURNERS; i++)
        t_thread_join(&ch[i]);
    for (int t = 0; t < CHURNERS; t++) {
        item_t m = { atomic_load(&mailbox[t]), mailbox_sz[t] };
        if (m.p)
            verify_free(&m, "mailbox at the end");
        for (int i = 0; i < PARKED; i++)
            verify_free(&parked[t][i], "parked at the end");
    }
    CHECK(atomic_load(&n_forks) >= 10, "only %llu forks ran", (unsigned long long)atomic_load(&n_forks));
    live_end("test_fork");
    printf("test_fork: ok (%llu forks, %llu churn operations)\n",
           (unsigned long long)atomic_load(&n_forks), (unsigned long long)atomic_load(&n_churn_ops));
    return 0;
}
