/* purge.c: when free memory goes back to the OS.
 *
 * Free memory that hakmem keeps (dirty units in the pool, cached large
 * blocks) is released by purge passes, never by a free itself:
 *  - eager: at once, when a slab or a large block is given back;
 *  - lazy: after 10 s unused;
 *  - adaptive (default): after twice the reuse interval hakmem observes (how
 *    long freed memory waited before it was reused), between 20 ms and 1 s.
 *    Memory the program keeps reusing stays; memory idle past the program's
 *    own rhythm goes back.
 * HAKMEM_RSS_BUDGET_KB caps what is kept: past it, the freeing thread purges
 * everything idle at once.
 *
 * The passes run on a purge thread, started the first time there is memory
 * to purge (a small program that never frees a slab never gets one). It
 * sleeps until the next unit is due, and when nothing is left to purge until
 * a free leaves memory to purge, waking once a second only to see whether it
 * is the process's last thread: a process ends when its last thread does,
 * so when every thread of the program has called pthread_exit, the purge
 * thread ends the process with exit(0) as that last thread would have.
 * After fork the child starts its own when it needs one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define ADAPTIVE_MIN_MS 20
#define ADAPTIVE_MAX_MS 1000
#define LAZY_MS         10000
/* A heap's spare slabs go back to the pool once it has parked none for this
 * long, or the purge delay if longer: spares are for a busy thread. */
#define SPARE_IDLE_MS   1000

static _Atomic uint64_t reuse_ms = 100;   /* running estimate of the reuse interval */

uint64_t _hak_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t _hak_purge_delay_ms(void)
{
    switch (_hak_opt.free_policy) {
    case HAK_POLICY_EAGER: return 0;
    case HAK_POLICY_LAZY: return LAZY_MS;
    default: {
        uint64_t d = 2 * atomic_load_explicit(&reuse_ms, memory_order_relaxed);
        return d < ADAPTIVE_MIN_MS ? ADAPTIVE_MIN_MS : d > ADAPTIVE_MAX_MS ? ADAPTIVE_MAX_MS : d;
    }
    }
}

/* Freed memory was reused after idle_ms: fold it into the estimate (an
 * exponentially weighted average; races between threads only blur it). */
void _hak_purge_note_reuse(uint64_t idle_ms)
{
    uint64_t old = atomic_load_explicit(&reuse_ms, memory_order_relaxed);
    atomic_store_explicit(&reuse_ms, (old * 7 + idle_ms) / 8, memory_order_relaxed);
}

/* ---- the purge thread ----------------------------------------------------- */

static pthread_mutex_t purge_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t purge_wake;
static _Atomic int purge_state;          /* 0 none, 1 starting or running */
static _Atomic bool purge_sleeping;      /* waiting with nothing to purge */
static _Atomic uint64_t purge_gen;       /* bumped by every free that leaves work */

#define LIVENESS_MS 1000

/* Whether thread tid has ended (a zombie: the main thread's entry stays
 * until the process ends) or is gone. */
static bool thread_ended(const char *tid)
{
    char path[64], buf[512];
    size_t n = _hak_format(path, sizeof(path), "/proc/self/task/%s/stat", tid);
    (void)n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true;
    ssize_t len = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (len <= 0) return true;
    buf[len] = '\0';
    const char *p = strrchr(buf, ')');   /* the state follows the command name */
    return p == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* True if no thread but the calling one is still running. Reads
 * /proc/self/task with getdents64: opendir would allocate. */
static bool only_thread_left(void)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    char self[24];
    _hak_format(self, sizeof(self), "%ld", (long)syscall(SYS_gettid));
    char buf[4096];
    bool alone = true;
    long n;
    while (alone && (n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < n;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d =
                (void *)(buf + off);
            off += d->reclen;
            if (d->name[0] == '.' || strcmp(d->name, self) == 0) continue;
            if (!thread_ended(d->name)) {
                alone = false;
                break;
            }
        }
    }
    close(fd);
    return alone;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* One pass over everything; when is the next one due (UINT64_MAX: never).
 * Spares taken back go into the pool first, where they wait the purge
 * delay as any slab given back does. */
static uint64_t purge_pass(uint64_t now)
{
    uint64_t delay = _hak_purge_delay_ms();
    uint64_t spares = _hak_heap_sweep_spares(now, delay > SPARE_IDLE_MS ? delay : SPARE_IDLE_MS);
    uint64_t pool = _hak_pool_purge(now, delay);
    return min_u64(spares, min_u64(pool, _hak_large_cache_purge(now, delay)));
}

static void *purge_main(void *arg)
{
    (void)arg;
    uint64_t last_check = _hak_now_ms();
    pthread_mutex_lock(&purge_lock);
    for (;;) {
        uint64_t seen = atomic_load(&purge_gen);
        pthread_mutex_unlock(&purge_lock);
        uint64_t now = _hak_now_ms();
        if (now - last_check >= LIVENESS_MS) {
            last_check = now;
            if (only_thread_left()) exit(0);
        }
        uint64_t due = purge_pass(now);
        pthread_mutex_lock(&purge_lock);
        bool idle = due == UINT64_MAX;
        if (idle) {
            atomic_store(&purge_sleeping, true);
            if (atomic_load(&purge_gen) != seen) {
                atomic_store(&purge_sleeping, false);
                continue;
            }
            due = _hak_now_ms() + LIVENESS_MS;
        }
        /* sleep until due, measured on the coarse clock passes use */
        now = _hak_now_ms();
        uint64_t wait_ms = due > now ? due - now + 1 : 1;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&purge_wake, &purge_lock, &ts);
        if (idle) atomic_store(&purge_sleeping, false);
    }
    return NULL;
}

static void purge_start(void)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&purge_state, &expected, 1)) return;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&purge_wake, &ca);
    pthread_condattr_destroy(&ca);

    /* the thread takes no signals meant for the program */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    hak_dbg_internal(true);   /* glibc's blocks for the new thread are hakmem's own */
    int rc = pthread_create(&t, &attr, purge_main, NULL);
    hak_dbg_internal(false);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) atomic_store(&purge_state, 0);   /* try again on a later free */
    else pthread_setname_np(t, "hakmem-purge");
}

/* A slab or large block was just given back (no hakmem lock is held). */
void _hak_purge_after_free(void)
{
    if (_hak_opt.free_policy == HAK_POLICY_EAGER) return;   /* done already */
    if (_hak_opt.rss_budget_kb > 0 &&
        (_hak_pool_dirty_bytes() + _hak_large_cache_bytes()) / 1024 > (size_t)_hak_opt.rss_budget_kb) {
        int saved = errno;
        _hak_pool_purge(0, 0);
        _hak_large_cache_purge(0, 0);
        errno = saved;
        return;
    }
    atomic_fetch_add(&purge_gen, 1);
    if (atomic_load_explicit(&purge_state, memory_order_relaxed) == 0) {
        int saved = errno;
        purge_start();
        errno = saved;
    } else if (atomic_load(&purge_sleeping)) {
        pthread_mutex_lock(&purge_lock);
        pthread_cond_signal(&purge_wake);
        pthread_mutex_unlock(&purge_lock);
    }
}

/* A heap parked a spare slab: the purge thread, which takes back the
 * spares of idle heaps, must be running (it then looks at them at least
 * once a second). Not under eager, which has no purge thread. */
void _hak_purge_watch_spares(void)
{
    if (_hak_opt.free_policy == HAK_POLICY_EAGER) return;
    if (atomic_load_explicit(&purge_state, memory_order_relaxed) == 0) {
        int saved = errno;
        purge_start();
        errno = saved;
    }
}

void _hak_purge_after_fork_child(void)
{
    pthread_mutex_init(&purge_lock, NULL);
    atomic_store(&purge_state, 0);
    atomic_store(&purge_sleeping, false);
}

/* malloc_trim(0): the calling thread's empty slabs, then everything free. */
int _hak_trim(void)
{
    int saved = errno;
    size_t released = _hak_heap_trim_thread(_hak_tl_heap);
    _hak_heap_sweep_unowned();
    released += _hak_pool_trim();
    released += _hak_large_cache_bytes();
    _hak_large_cache_purge(0, 0);
    errno = saved;
    return released > 0;
}
