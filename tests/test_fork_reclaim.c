/* test_fork_reclaim: in the child of fork, the memory of the parent's other
 * threads is reusable (issue 12, item 4).
 *
 * A parent with 8 threads, each holding 8 MiB of small blocks and still
 * running, forks. The child frees every one of those blocks, calls
 * malloc_trim(0) and allocates as much again: its RSS must stay within 1.3x
 * of what it was before the frees. (The heaps of threads that do not exist
 * in the child used to stay owned for good: the blocks freed into their
 * slabs were never collected, and the child needed twice the memory.) The
 * child then starts a thread that allocates as much again and stays, and
 * forks: the grandchild does the same with that thread's blocks.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdatomic.h>

#define THREADS 8
#define BYTES_PER_THREAD ((size_t)8 << 20)
#define MAX_BLOCKS (BYTES_PER_THREAD / 32)

typedef struct {
    void **p;
    size_t n;
} table_t;

static table_t tables[THREADS];
static atomic_int ready, done;

static size_t block_size(size_t i)
{
    return 32 + (i * 37) % 993;
}

static void fill(table_t *t, uint64_t seed)
{
    size_t bytes = 0;
    t->n = 0;
    while (bytes < BYTES_PER_THREAD && t->n < MAX_BLOCKS) {
        size_t sz = block_size(t->n + seed);
        char *p = malloc(t_size(sz));
        CHECK(p != NULL, "malloc(%zu)", sz);
        memset(p, (int)(t->n & 0xff), sz);
        t->p[t->n++] = p;
        bytes += sz;
    }
}

static void empty(table_t *t)
{
    for (size_t i = 0; i < t->n; i++) free(t->p[i]);
    t->n = 0;
}

static void *holder(void *arg)
{
    table_t *t = arg;
    fill(t, (uint64_t)(t - tables));
    atomic_fetch_add(&ready, 1);
    while (!atomic_load(&done)) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* In a child: free what the vanished threads held, trim, allocate it all
 * again, and compare RSS. */
static void reuse_in_child(const char *who)
{
    size_t before = t_rss_bytes();
    for (int t = 0; t < THREADS; t++) empty(&tables[t]);
    malloc_trim(0);
    size_t trimmed = t_rss_bytes();
    for (int t = 0; t < THREADS; t++) fill(&tables[t], 1000 + (uint64_t)t);
    size_t after = t_rss_bytes();
    printf("%s: RSS %zu KiB with the parent's blocks, %zu KiB after freeing them and trimming, %zu KiB "
           "with as much again\n", who, before >> 10, trimmed >> 10, after >> 10);
    CHECK(after * 10 <= before * 13, "%s: RSS grew from %zu KiB to %zu KiB (more than 1.3x): the memory of "
          "the parent's threads was not reused", who, before >> 10, after >> 10);
}

static void *child_holder(void *arg)
{
    (void)arg;
    for (int t = 0; t < THREADS; t++) empty(&tables[t]);
    for (int t = 0; t < THREADS; t++) fill(&tables[t], 2000 + (uint64_t)t);
    atomic_store(&ready, -1);
    for (;;) pause();
    return NULL;
}

static void wait_ok(pid_t pid, const char *who)
{
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s ended with %s %d", who,
          WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int main(void)
{
    test_init("test_fork_reclaim");
    for (int t = 0; t < THREADS; t++) {
        tables[t].p = mmap(NULL, MAX_BLOCKS * sizeof(void *), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        CHECK(tables[t].p != MAP_FAILED, "mmap");
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++) CHECK(pthread_create(&th[t], NULL, holder, &tables[t]) == 0, "pthread_create");
    while (atomic_load(&ready) < THREADS) {
        struct timespec ts = { 0, 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: errno %d", errno);
    if (pid == 0) {
        alarm(60);
        reuse_in_child("child");
        pthread_t t;
        CHECK(pthread_create(&t, NULL, child_holder, NULL) == 0, "pthread_create in the child");
        while (atomic_load(&ready) != -1) {
            struct timespec ts = { 0, 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        /* a grandchild, where the child's thread does not exist */
        pid_t g = fork();
        CHECK(g >= 0, "fork in the child");
        if (g == 0) {
            reuse_in_child("grandchild");
            _exit(0);
        }
        wait_ok(g, "the grandchild");
        _exit(0);
    }
    wait_ok(pid, "the child");
    atomic_store(&done, 1);
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < THREADS; t++) empty(&tables[t]);
    printf("test_fork_reclaim: ok\n");
    return 0;
}
