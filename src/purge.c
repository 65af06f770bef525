/* purge.c: when free memory goes back to the OS.
 *
 * Free memory that hakmem keeps (dirty units in the pool, cached large
 * blocks, spare slabs of idle threads) is released by purge passes:
 *  - eager: at once, when a slab or a large block is given back;
 *  - lazy: after 10 s unused;
 *  - adaptive (default): after twice the reuse interval hakmem observes (how
 *    long freed memory waited before it was reused), between 20 ms and 1 s.
 *    Memory the program keeps reusing stays; memory idle past the program's
 *    own rhythm goes back.
 * HAKMEM_RSS_BUDGET_KB caps what is kept: past it, the freeing thread purges
 * everything idle at once.
 *
 * Who runs the passes. A process that has only one thread stays that way:
 * hakmem starts no thread of its own there (sandboxes unshare namespaces,
 * seccomp filters forbid clone, a single-threaded process may fork from a
 * signal handler). Its passes run inline, from the program's own calls that
 * give memory back (a slab to the pool, a large block to the cache): a pass
 * when the next piece is due, and a pass over everything as soon as the
 * memory kept free exceeds a bound derived from the program's peak (1/16 of
 * the most it ever had mapped, at least KEEP_MIN_BYTES) and half of what is
 * mapped now, so a program that frees most of what it built and then stops
 * calling keeps at most that.
 *
 * Once a second thread has called into hakmem (the heap count of heap.c),
 * and HAKMEM_PURGE_THREAD allows it, the passes move to a purge thread,
 * started by the first call that leaves memory to purge: it sleeps until the
 * next piece is due, so a program that stops allocating still sees its RSS
 * fall. It never ends the process: when no thread that called into hakmem
 * is left (the last one's exit wakes it), it ends itself, and if it was the
 * process's last thread, glibc then runs exit(0) on it, as it would have on
 * the program's last thread: so it has a default-sized stack and, before it
 * ends, takes back the signal mask of the thread that started it. A failed
 * start (or an end) is followed by at least START_BACKOFF_MS of inline
 * passes before the next try.
 *
 * Every pass, inline or on the thread, and malloc_trim hold pass_lock, which
 * fork takes too (heap.c), so no slab or spare is in a pass's hands when
 * the process forks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define ADAPTIVE_MIN_MS 20
#define ADAPTIVE_MAX_MS 1000
#define LAZY_MS         10000
/* A heap's spare slabs go back to the pool once it has parked none for this
 * long, or the purge delay if longer: spares are for a busy thread. */
#define SPARE_IDLE_MS   1000
/* Inline passes: memory kept free beyond 1/KEEP_SHARE of the peak mapping
 * (and KEEP_MIN_BYTES) is given back at once. */
#define KEEP_SHARE      16
#define KEEP_MIN_BYTES  ((size_t)8 << 20)
/* No new purge thread this soon after a failed start or an end. */
#define START_BACKOFF_MS 1000
/* An idle purge thread looks at the heap count this often. */
#define IDLE_WAKE_MS    1000

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

/* ---- passes ----------------------------------------------------------------- */

static pthread_mutex_t pass_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic size_t peak_mapped;        /* most bytes of SuperSlabs and large mappings */
static _Atomic uint64_t inline_due_ms;    /* next inline pass (0: none due) */

void _hak_purge_pass_lock(void) { hak_lock(&pass_lock); }
void _hak_purge_pass_unlock(void) { hak_unlock(&pass_lock); }

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static size_t kept_free_bytes(void)
{
    return _hak_pool_dirty_bytes() + _hak_large_cache_bytes();
}

/* Bytes of SuperSlabs and large mappings (cached ones too) now. */
static size_t mapped_now(void)
{
    uint64_t ss, retained;
    _hak_pool_counts(&ss, &retained);
    return (size_t)ss * HAK_SS_SIZE + _hak_stats_large_mapped() + _hak_large_cache_bytes();
}

/* SuperSlabs or large mappings grew: remember the peak the bound follows. */
void _hak_purge_note_mapped(void)
{
    size_t now = mapped_now();
    if (now > atomic_load_explicit(&peak_mapped, memory_order_relaxed))
        atomic_store_explicit(&peak_mapped, now, memory_order_relaxed);
}

static size_t keep_bound(void)
{
    size_t b = atomic_load_explicit(&peak_mapped, memory_order_relaxed) / KEEP_SHARE;
    return b > KEEP_MIN_BYTES ? b : KEEP_MIN_BYTES;
}

static HAK_TLS bool in_pass;   /* a pass's own returns start no other pass */

/* One pass over everything (delay 0 with now 0: everything idle at all);
 * when is the next one due (UINT64_MAX: never). Spares taken back go into
 * the pool first, where they wait the purge delay as any slab given back
 * does. */

static uint64_t purge_pass(uint64_t now, uint64_t delay)
{
    hak_lock(&pass_lock);
    in_pass = true;
    _hak_heap_reap_late();
    uint64_t idle = delay > SPARE_IDLE_MS ? delay : SPARE_IDLE_MS;
    uint64_t spares = _hak_heap_sweep_spares(now, idle);
    if (now == 0 && delay == 0) idle = 0;   /* everything */
    spares = min_u64(spares, _hak_heap_unpark_idle(now, idle));
    uint64_t pool = _hak_pool_purge(now, delay);
    uint64_t due = min_u64(spares, min_u64(pool, _hak_large_cache_purge(now, delay)));
    in_pass = false;
    hak_unlock(&pass_lock);
    return due;
}

/* No purge thread: the calling thread runs the pass that is due, or one
 * over everything when the memory kept free is past the bound and more
 * than what is in use (so that a steady churn, whose free space between
 * blocks is soon reused, is not given back and faulted in again). */
static void purge_inline(void)
{
    size_t kept = kept_free_bytes();
    bool over = kept > keep_bound() && kept > mapped_now() / 2;
    uint64_t due = atomic_load_explicit(&inline_due_ms, memory_order_relaxed);
    uint64_t now = _hak_now_ms();
    if (!over && due != 0 && now < due) return;   /* 0: nothing pending, look now */
    due = over ? purge_pass(0, 0) : purge_pass(now, _hak_purge_delay_ms());
    if (over && due != UINT64_MAX) due = now + _hak_purge_delay_ms();
    atomic_store_explicit(&inline_due_ms, due == UINT64_MAX ? 0 : due, memory_order_relaxed);
}

/* ---- the purge thread ----------------------------------------------------- */

static pthread_mutex_t purge_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t purge_wake;
static bool purge_wake_ready;            /* purge_wake initialised (CLOCK_MONOTONIC) */
static _Atomic int purge_state;          /* 0 none, 1 starting or running */
static _Atomic bool purge_sleeping;      /* waiting with nothing to purge */
static _Atomic uint64_t purge_gen;       /* bumped by every call that leaves work */
static _Atomic uint64_t backoff_until;   /* no start before this (ms) */
static sigset_t starter_mask;            /* signal mask of the thread that started it */

static void timespec_after(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void *purge_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&purge_lock);
    for (;;) {
        if (_hak_heap_count() == 0) break;   /* every thread that used hakmem has ended */
        uint64_t seen = atomic_load(&purge_gen);
        pthread_mutex_unlock(&purge_lock);
        uint64_t now = _hak_now_ms();
        uint64_t due = purge_pass(now, _hak_purge_delay_ms());
        pthread_mutex_lock(&purge_lock);
        if (_hak_heap_count() == 0) break;   /* checked under the lock the last exit signals */
        bool idle = due == UINT64_MAX;
        if (idle) {
            atomic_store(&purge_sleeping, true);
            if (atomic_load(&purge_gen) != seen) {
                atomic_store(&purge_sleeping, false);
                continue;
            }
            due = _hak_now_ms() + IDLE_WAKE_MS;
        }
        /* sleep until due, measured on the coarse clock passes use */
        now = _hak_now_ms();
        struct timespec ts;
        timespec_after(&ts, due > now ? due - now + 1 : 1);
        pthread_cond_timedwait(&purge_wake, &purge_lock, &ts);
        if (idle) atomic_store(&purge_sleeping, false);
    }
    /* From here on the program's own calls run the passes. */
    atomic_store(&backoff_until, _hak_now_ms() + START_BACKOFF_MS);
    atomic_store(&inline_due_ms, _hak_now_ms());
    atomic_store(&purge_state, 0);
    pthread_mutex_unlock(&purge_lock);
    /* If this is the process's last thread, glibc runs exit(0) on it next:
     * with the signals a program thread would have. */
    pthread_sigmask(SIG_SETMASK, &starter_mask, NULL);
    return NULL;
}

/* Starts the purge thread if the process may have one now; false if the
 * passes stay inline. */
static bool purge_start(void)
{
    if (!_hak_opt.purge_thread || _hak_heap_count() < 2) return false;
    if (_hak_now_ms() < atomic_load_explicit(&backoff_until, memory_order_relaxed)) return false;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&purge_state, &expected, 1)) return true;
    if (!purge_wake_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&purge_wake, &ca);
        pthread_condattr_destroy(&ca);
        purge_wake_ready = true;
    }
    /* the thread takes no signals meant for the program */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &starter_mask);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    hak_dbg_internal(true);   /* glibc's blocks for the new thread are hakmem's own */
    int rc = pthread_create(&t, &attr, purge_main, NULL);
    hak_dbg_internal(false);
    pthread_attr_destroy(&attr);
    pthread_sigmask(SIG_SETMASK, &starter_mask, NULL);
    if (rc != 0) {
        atomic_store(&backoff_until, _hak_now_ms() + START_BACKOFF_MS);
        atomic_store(&purge_state, 0);
        return false;
    }
    pthread_setname_np(t, "hakmem-purge");
    return true;
}

/* There is new work: wake the purge thread, start it, or run the pass
 * inline. */
static void purge_kick(void)
{
    atomic_fetch_add(&purge_gen, 1);
    if (atomic_load_explicit(&purge_state, memory_order_relaxed) == 0) {
        if (!purge_start()) purge_inline();
    } else if (atomic_load(&purge_sleeping)) {
        pthread_mutex_lock(&purge_lock);
        pthread_cond_signal(&purge_wake);
        pthread_mutex_unlock(&purge_lock);
    }
}

/* A slab, a large block or an abandoned slab was just given back (no
 * hakmem lock is held). */
void _hak_purge_after_free(void)
{
    if (_hak_opt.free_policy == HAK_POLICY_EAGER || in_pass) return;   /* done already */
    int saved = errno;
    if (_hak_opt.rss_budget_kb > 0 && kept_free_bytes() / 1024 > (size_t)_hak_opt.rss_budget_kb)
        purge_pass(0, 0);
    else
        purge_kick();
    errno = saved;
}

/* A heap parked a spare slab: the spares of idle heaps are taken back by
 * the passes, so one must come (the purge thread looks at them at least
 * once a second). Not under eager, which has no passes. */
void _hak_purge_watch_spares(void)
{
    if (_hak_opt.free_policy == HAK_POLICY_EAGER) return;
    if (atomic_load_explicit(&purge_state, memory_order_relaxed) != 0) return;
    int saved = errno;
    if (!purge_start() && atomic_load_explicit(&inline_due_ms, memory_order_relaxed) == 0)
        atomic_store_explicit(&inline_due_ms, _hak_now_ms() + SPARE_IDLE_MS, memory_order_relaxed);
    errno = saved;
}

/* The last thread that used hakmem ended: the purge thread must end too,
 * or the process would live on. */
void _hak_purge_threads_gone(void)
{
    if (atomic_load(&purge_state) == 0) return;
    pthread_mutex_lock(&purge_lock);
    pthread_cond_signal(&purge_wake);
    pthread_mutex_unlock(&purge_lock);
}

/* The child of fork has no purge thread; fork held pass_lock. */
void _hak_purge_after_fork_child(void)
{
    pthread_mutex_init(&purge_lock, NULL);
    pthread_mutex_init(&pass_lock, NULL);
    purge_wake_ready = false;   /* the parent's thread may have been waiting on it */
    atomic_store(&purge_state, 0);
    atomic_store(&purge_sleeping, false);
    atomic_store(&backoff_until, 0);
    if (atomic_load(&inline_due_ms) == 0) atomic_store(&inline_due_ms, _hak_now_ms());
}

/* Everything free that no thread's lists hold goes back to the OS: blocks
 * forwarded from heaps of exited threads (late heaps of ended threads
 * reaped first), empty and retained SuperSlabs, dirty units, the free pages
 * of abandoned slabs, cached large blocks. The pass lock is held. Returns
 * the bytes given back. */
static size_t give_back_free(void)
{
    _hak_heap_sweep_unowned();
    size_t bytes = _hak_pool_trim() + _hak_large_cache_bytes();
    _hak_large_cache_purge(0, 0);
    return bytes;
}

/* A mapping failed: every heap's spares go to the pool and everything free
 * goes back, for the caller's one retry. Not from inside a pass, which
 * holds the pass lock. */
void _hak_purge_release_all(void)
{
    if (in_pass) return;
    int saved = errno;
    hak_lock(&pass_lock);
    in_pass = true;
    _hak_heap_sweep_spares(_hak_now_ms(), 0);
    give_back_free();
    in_pass = false;
    hak_unlock(&pass_lock);
    errno = saved;
}

/* malloc_trim(0): the calling thread's empty slabs, then everything free. */
int _hak_trim(void)
{
    int saved = errno;
    hak_lock(&pass_lock);
    in_pass = true;
    size_t released = _hak_heap_trim_thread(_hak_tl_heap);   /* first: its slabs go too */
    released += give_back_free();
    in_pass = false;
    hak_unlock(&pass_lock);
    errno = saved;
    return released > 0;
}
