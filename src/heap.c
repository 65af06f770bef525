/* heap.c: per-thread heaps, process start, thread exit and fork.
 *
 * Each thread allocates from its own heap, reached through one initial-exec
 * TLS pointer. A thread starts with the static empty heap, whose every class
 * has a slab with no blocks: its first malloc fails the fast path and lands
 * in _hak_heap_init_thread, so the fast path never tests "initialised?".
 *
 * Heaps live in hakmem's own metadata mappings and are never unmapped: when
 * a thread exits, its heap waits on the free-heap list for the next thread.
 * This is what lets another thread hand a block to a heap without fearing
 * that the heap is gone. It waits "parked": with its slabs, spares and
 * lists as the thread left them (only its cache of other heaps' blocks is
 * flushed), so that the next thread, which takes the most recently parked
 * heap, starts warm instead of taking and carving a slab per class again;
 * in a program whose threads come and go, that was most of a thread's cost.
 * (Not under the eager policy, which has no passes to unpark it, nor for a
 * late heap.) A heap parked for the purge delay (at least 1 s), or when memory is
 * needed (no free unit left, malloc_trim, a failed mapping), is unparked:
 * its slabs given back as at a thread's exit (empty ones to the pool, the
 * rest abandoned for live threads to adopt). Frees into a parked heap's
 * slabs from other threads take the remote path as for any owner, whose
 * delayed list the next owner drains.
 *
 * Locks, always taken in this order: purge.c's pass lock, heap_lock (free
 * heaps, metadata), the pool's lock, the large-block cache's lock. fork
 * holds all four (see "fork" below).
 */
#include <errno.h>
#include <pthread.h>
#include <sys/random.h>

#include "internal.h"

static hak_heap heap_empty = {
    .cur = { [0 ... HAK_CLASSES - 1] = &_hak_slab_empty.fl },
    .active = { [0 ... HAK_CLASSES - 1] = &_hak_slab_empty },
    .is_empty_heap = true,
};

HAK_TLS hak_heap *_hak_tl_heap = &heap_empty;

static pthread_mutex_t heap_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic long heap_count;       /* heaps owned by threads (see _hak_heap_count) */
static _Atomic long late_count;       /* late heaps owned (see _hak_heap_reap_late) */
static hak_heap *free_heaps;          /* heaps no thread owns (heap_lock) */
static hak_heap *all_heaps;           /* every heap made (heap_lock; never shrinks) */
static char *meta_cur, *meta_end;     /* metadata bump area (heap_lock) */
static pthread_key_t thread_key;
static pthread_once_t process_once = PTHREAD_ONCE_INIT;

#define META_CHUNK (256 * 1024)

/* ---- process start ----------------------------------------------------- */

static void thread_done(void *arg);

/* Runs once, from the first allocation or the library constructor,
 * whichever comes first. Allocates nothing. */
#if HAK_SECURE
uintptr_t _hak_secret;

static void make_secret(void)
{
    uintptr_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v))
        v = (uintptr_t)&v ^ ((uintptr_t)_hak_now_ms() << 32);   /* no entropy yet: still unguessable enough */
    _hak_secret = v | 1;
}
#else
static void make_secret(void) {}
#endif

static void process_init(void)
{
    make_secret();
    _hak_sizeclass_init();
    _hak_options_init();
    _hak_stats_init();
    pthread_key_create(&thread_key, thread_done);
}

/* ---- fork ------------------------------------------------------------------
 *
 * In a process with more than one thread, fork holds every hakmem lock, so
 * the child starts with them free and with consistent lists. They are taken
 * in glibc's order: after the stdio list lock (glibc's fork takes it after
 * the fork handlers ran, so these handlers take it first, and glibc's own
 * take of it, a recursive lock, then nests), because a thread holding a FILE
 * lock may be waiting in realloc for a hakmem lock while another holds the
 * list lock and waits for that FILE (fflush(NULL), exit). Then the pass
 * lock, so no purge pass has slabs in its hands, then heap_lock, the pool's
 * and the large cache's. While the forking thread holds them, its own
 * allocations (in other fork handlers, or in a signal handler) take none of
 * them again (hak_lock).
 *
 * A single-threaded process holds nothing across fork, as glibc does, so
 * that a signal handler may fork even while the thread is inside fork or
 * inside hakmem (glibc's promise of an async-signal-safe fork there); a fork
 * inside fork takes nothing either. The child re-initialises the locks in
 * every case.
 */
extern char __libc_single_threaded __attribute__((weak));
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));

HAK_TLS bool _hak_tl_forking;
static HAK_TLS int fork_depth;        /* forks this thread is inside of */

static bool single_threaded(void)
{
    return &__libc_single_threaded != NULL && __libc_single_threaded;
}

static void fork_prepare(void)
{
    if (fork_depth++ > 0 || single_threaded()) return;
    if (_IO_list_lock) _IO_list_lock();
    _hak_purge_pass_lock();
    hak_lock(&heap_lock);
    _hak_pool_lock();
    _hak_large_lock();
    _hak_tl_forking = true;
}

static void fork_parent(void)
{
    if (--fork_depth > 0 || !_hak_tl_forking) return;
    _hak_tl_forking = false;
    _hak_large_unlock();
    _hak_pool_unlock();
    hak_unlock(&heap_lock);
    _hak_purge_pass_unlock();
    if (_IO_list_unlock) _IO_list_unlock();   /* glibc's child resets it itself */
}

static void heap_reset(hak_heap *h);
static void alive_init(hak_heap *h);

/* The child has one thread, the one that forked; its heap is intact. The
 * heaps of the parent's other threads have no thread here: their slabs are
 * abandoned (superslab.c), their spares given back, their cached and
 * delayed blocks sent to their slabs, and the heaps themselves wait on the
 * free-heap list for the child's threads. Parked heaps lose their slabs
 * the same way. */
static void adopt_heaps_of_other_threads(void)
{
    hak_heap *me = _hak_tl_heap;
    for (hak_heap *h = all_heaps; h; h = h->next_all)
        if ((h->owned || h->parked) && h != me) _hak_heap_return_spares(h);
    _hak_pool_orphan_slabs(me);
    for (hak_heap *h = all_heaps; h; h = h->next_all) {
        if (h->parked) {   /* on the free-heap list already; its slabs were abandoned */
            _hak_heap_drain_delayed(h);
            heap_reset(h);
            h->parked = false;
            continue;
        }
        if (!h->owned || h == me) continue;
        if (h->late) {   /* its owner is not here to unlock it */
            alive_init(h);
            h->late = false;
            atomic_fetch_sub(&late_count, 1);
        }
        _hak_heap_flush_all_foreign(h);
        _hak_heap_drain_delayed(h);
        heap_reset(h);
        h->next_free = free_heaps;
        free_heaps = h;
    }
}

static void fork_child(void)
{
    if (--fork_depth > 0) return;
    _hak_tl_forking = false;
    _hak_large_after_fork_child();
    _hak_pool_after_fork_child();
    pthread_mutex_init(&heap_lock, NULL);
    /* no purge thread, and every lock free, before the adoption gives
     * slabs back (which may run a pass) */
    atomic_store(&heap_count, _hak_tl_heap->is_empty_heap ? 0 : 1);
    _hak_purge_after_fork_child();
    adopt_heaps_of_other_threads();
}

/* Once per process, from the library constructor or the first allocation,
 * whichever comes first (a program may fork before constructors run).
 * pthread_atfork may allocate: callers have a working malloc. */
static void register_fork_handlers(void)
{
    static _Atomic bool done;
    if (atomic_load_explicit(&done, memory_order_acquire) || atomic_exchange(&done, true)) return;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Options and tables before main, in both libraries: threads that call in
 * at once then find them ready. Nothing the process can see. */
__attribute__((constructor)) static void hak_process_start(void)
{
    pthread_once(&process_once, process_init);
}

/* libhakmem's start (override.c): the fork handlers at once, which the
 * prefix library registers only on its first hak_ call. */
void _hak_heap_process_start(void)
{
    pthread_once(&process_once, process_init);
    register_fork_handlers();
}

/* ---- heaps ------------------------------------------------------------- */

static hak_heap *heap_new_locked(void)
{
    size_t need = hak_align_up(sizeof(hak_heap), 64);
    if (meta_cur == NULL || (size_t)(meta_end - meta_cur) < need) {
        char *chunk = _hak_os_map(META_CHUNK);
        if (chunk == NULL) return NULL;
        meta_cur = chunk;
        meta_end = chunk + META_CHUNK;
    }
    hak_heap *h = (hak_heap *)meta_cur;
    meta_cur += need;
    alive_init(h);
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        h->active[c] = &_hak_slab_empty;
        h->cur[c] = &_hak_slab_empty.fl;
    }
    h->owner_tag = _hak_stats_on ? (hak_heap *)((char *)h + 1) : h;
    h->takes_foreign = HAK_FOREIGN_CACHE && !_hak_stats_on;
    h->next_all = all_heaps;
    __atomic_store_n(&all_heaps, h, __ATOMIC_RELEASE);
    return h;
}

/* Set once the thread's exit handler has run: a heap it takes after that
 * (a pthread key destructor of a later round allocating) gets no second
 * call of the handler. */
static HAK_TLS bool tl_exited;

hak_heap *_hak_heap_init_thread(void)
{
    pthread_once(&process_once, process_init);
    hak_lock(&heap_lock);
    hak_heap *h = free_heaps;
    if (h) free_heaps = h->next_free;
    hak_unlock(&heap_lock);
    if (h == NULL) {
        _hak_heap_reap_late();   /* a late heap whose thread is gone, first */
        hak_lock(&heap_lock);
        h = free_heaps;
        if (h) free_heaps = h->next_free;
        else h = heap_new_locked();
        hak_unlock(&heap_lock);
    }
    if (h == NULL) return NULL;
    h->next_free = NULL;
    h->parked = false;   /* its slabs, if it has any, are this thread's now */
    h->owned = true;
    atomic_fetch_add(&heap_count, 1);
    _hak_tl_heap = h;
    /* may allocate: the heap is ready */
    if (pthread_setspecific(thread_key, h) != 0 || tl_exited) {
        /* no exit handler will give this heap back: the thread holds its
         * robust mutex, which the kernel marks when the thread ends */
        pthread_mutex_lock(&h->alive);
        h->late = true;
        atomic_fetch_add(&late_count, 1);
    }
    register_fork_handlers();
    _hak_heap_drain_delayed(h);
    return h;
}

/* The robust mutex a late heap's owner holds (see _hak_heap_reap_late). */
static void alive_init(hak_heap *h)
{
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&h->alive, &ma);
    pthread_mutexattr_destroy(&ma);
}

/* A heap with no slab, spare or cached block: every class on the empty
 * slab, no slab counted as held, owned by no thread. */
static void heap_reset(hak_heap *h)
{
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        h->active[c] = &_hak_slab_empty;
        h->cur[c] = &_hak_slab_empty.fl;
        h->partial[c].first = NULL;
        h->full[c].first = NULL;
        h->foreign[c].free = NULL;
        h->foreign[c].used = 0;
        h->foreign[c].pushed = 0;
    }
    h->pages_held = 0;
    h->pages_mark = 0;
    h->tails = 0;
    h->owned = false;
}

/* The thread owning heap exits: empty slabs go back to the pool, the others
 * are abandoned with their blocks still out, to be adopted by live threads. */
static void heap_abandon(hak_heap *heap)
{
    _hak_heap_flush_all_foreign(heap);
    /* No slab may stay NOTIFY (partial slabs keep the mark they had on the
     * full list): after this loop no new block can be handed to this heap,
     * except by a free already past its CAS (see slab.c). */
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        while (heap->full[c].first) {
            hak_slab *s = heap->full[c].first;
            s->used |= HAK_USED_FULL;   /* as free_slow expects of a slab on the full list */
            _hak_slab_free_slow(heap, s);    /* moves it to the partial list */
        }
        for (hak_slab *s = heap->partial[c].first; s; s = s->next) _hak_slab_clear_notify(s);
    }
    _hak_heap_drain_delayed(heap);
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        heap->active[c] = &_hak_slab_empty;
        heap->cur[c] = &_hak_slab_empty.fl;
        while (heap->partial[c].first) {
            hak_slab *s = heap->partial[c].first;
            _hak_slab_list_remove(&heap->partial[c], s);
            _hak_slab_collect_remote(s);
            if (s->used == 0) _hak_pool_return_slab(s);
            else _hak_pool_abandon_slab(s);
        }
    }
    _hak_heap_return_spares(heap);
    heap->pages_held = 0;
    heap->pages_mark = 0;
    heap->tails = 0;
}

/* The heap goes onto the free-heap list, owned by no thread. */
static void heap_release(hak_heap *heap)
{
    hak_lock(&heap_lock);
    heap->owned = false;
    heap->next_free = free_heaps;
    free_heaps = heap;
    hak_unlock(&heap_lock);
    if (atomic_fetch_sub(&heap_count, 1) == 1) _hak_purge_threads_gone();
}

static void thread_done(void *arg)
{
    hak_heap *heap = arg;
    tl_exited = true;
    if (heap == NULL || heap == &heap_empty) return;
    bool late = heap->late;
    bool park = !late && _hak_opt.free_policy != HAK_POLICY_EAGER;   /* eager: no passes to unpark it */
    _hak_heap_trim_tails(heap, false);
    if (!park) {
        heap_abandon(heap);
    } else {
        /* parked: the next thread gets the slabs (see the top of this file) */
        _hak_heap_flush_all_foreign(heap);
        heap->parked = true;
        heap->parked_ms = _hak_now_ms();
    }
    _hak_tl_heap = &heap_empty;
    if (late) {
        heap->late = false;
        atomic_fetch_sub(&late_count, 1);
    }
    heap_release(heap);
    if (late) pthread_mutex_unlock(&heap->alive);
    if (park) _hak_purge_after_free();   /* a pass must come for it */
}

/* Parked heaps idle since before now - idle_ms (idle_ms 0: all) give
 * their slabs back and stay on the free-heap list empty. A heap being
 * unparked is off the list, so no thread takes it meanwhile. Returns when
 * the next parked heap falls due (UINT64_MAX: none). */
uint64_t _hak_heap_unpark_idle(uint64_t now, uint64_t idle_ms)
{
    hak_heap *todo = NULL;
    uint64_t due = UINT64_MAX;
    hak_lock(&heap_lock);
    for (hak_heap **link = &free_heaps; *link;) {
        hak_heap *h = *link;
        if (h->parked && (idle_ms == 0 || h->parked_ms + idle_ms <= now)) {
            *link = h->next_free;
            h->next_free = todo;
            todo = h;
            continue;
        }
        if (h->parked && h->parked_ms + idle_ms < due) due = h->parked_ms + idle_ms;
        link = &h->next_free;
    }
    hak_unlock(&heap_lock);
    while (todo) {
        hak_heap *h = todo;
        todo = h->next_free;
        heap_abandon(h);
        hak_lock(&heap_lock);
        h->parked = false;
        h->next_free = free_heaps;
        free_heaps = h;
        hak_unlock(&heap_lock);
    }
    return due;
}

/* Late heaps whose threads have ended (their robust mutex says so) are
 * abandoned and released as their exit handler would have: a thread's last
 * allocations are given back however late they come. Cheap when there is
 * no late heap; from the purge passes, a thread's first allocation when no
 * heap is free, and before a new SuperSlab is mapped. */
void _hak_heap_reap_late(void)
{
    if (atomic_load_explicit(&late_count, memory_order_relaxed) == 0) return;
    hak_heap *dead = NULL;
    hak_lock(&heap_lock);
    for (hak_heap *h = all_heaps; h; h = h->next_all) {
        if (!h->late || !h->owned || h == _hak_tl_heap) continue;
        int rc = pthread_mutex_trylock(&h->alive);
        if (rc == 0) pthread_mutex_unlock(&h->alive);
        if (rc != EOWNERDEAD) continue;   /* EBUSY: its thread runs */
        pthread_mutex_consistent(&h->alive);
        pthread_mutex_unlock(&h->alive);
        h->late = false;
        atomic_fetch_sub(&late_count, 1);
        h->next_free = dead;
        dead = h;
    }
    hak_unlock(&heap_lock);
    while (dead) {
        hak_heap *h = dead;
        dead = h->next_free;
        heap_abandon(h);
        heap_release(h);
    }
}

/* Program threads that called into hakmem and have not ended: the process
 * is multi-threaded for hakmem once this reaches 2 (purge.c), and when it
 * falls to 0 the purge thread must end. */
long _hak_heap_count(void)
{
    return atomic_load_explicit(&heap_count, memory_order_relaxed);
}

hak_heap *_hak_heap_first_of_all(void)
{
    return __atomic_load_n(&all_heaps, __ATOMIC_ACQUIRE);
}

/* Purge thread: the spares of every heap seen to park none for idle_ms go
 * back to the pool, so a thread that went idle keeps no empty slab. The
 * owner only counts its parks (no clock read); a heap is idle from the pass
 * that last saw the count change. Heaps of exited threads have no spares;
 * those of threads fork left behind are swept too. Returns when the next
 * heap's spares fall due (UINT64_MAX: none). */
uint64_t _hak_heap_sweep_spares(uint64_t now, uint64_t idle_ms)
{
    uint64_t due = UINT64_MAX;
    for (hak_heap *h = _hak_heap_first_of_all(); h; h = h->next_all) {
        bool any = false;
        for (unsigned i = 0; i < HAK_HEAP_SPARE; i++)
            any |= atomic_load_explicit(&h->spare[i], memory_order_relaxed) != NULL;
        if (!any) continue;
        uint32_t parks = atomic_load_explicit(&h->spare_parks, memory_order_relaxed);
        if (parks != h->sweep_parks || h->sweep_ms == 0) {
            h->sweep_parks = parks;
            h->sweep_ms = now;
        }
        uint64_t at = h->sweep_ms + idle_ms;
        if (at <= now) {
            _hak_heap_return_spares(h);
            h->sweep_ms = 0;
        } else if (at < due) {
            due = at;
        }
    }
    return due;
}

/* malloc_trim: the thread's empty slabs (its spares, and current ones that
 * emptied) go back to the pool. Returns the bytes given back. */
size_t _hak_heap_trim_thread(hak_heap *heap)
{
    if (heap->is_empty_heap) return 0;
    _hak_heap_flush_all_foreign(heap);
    _hak_heap_drain_delayed(heap);
    size_t bytes = _hak_heap_return_spares(heap) + _hak_heap_trim_tails(heap, true) +
                   _hak_heap_purge_pages(heap, true, NULL);
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        hak_slab *s = heap->partial[c].first;
        while (s) {
            hak_slab *next = s->next;
            if (s->free == NULL) _hak_slab_collect_remote(s);
            if (s->used == 0) {
                if (heap->active[c] == s) hak_heap_set_active(heap, c, &_hak_slab_empty);
                _hak_slab_list_remove(&heap->partial[c], s);
                bytes += hak_unit_bytes(s->unit);
                _hak_pool_return_slab(s);
            }
            s = next;
        }
    }
    return bytes;
}

/* Forward blocks that reached heaps of exited threads after they left
 * (after reaping late heaps whose threads ended). */
void _hak_heap_sweep_unowned(void)
{
    _hak_heap_reap_late();
    _hak_heap_unpark_idle(0, 0);
    hak_block *todo = NULL;
    hak_lock(&heap_lock);
    for (hak_heap *h = free_heaps; h; h = h->next_free) {
        if (atomic_load_explicit(&h->delayed_a, memory_order_relaxed) == NULL) continue;
        hak_block *b = atomic_exchange_explicit(&h->delayed_a, NULL, memory_order_acquire);
        while (b) {
            hak_block *next = b->next;
            b->next = todo;
            todo = b;
            b = next;
        }
    }
    hak_unlock(&heap_lock);
    while (todo) {
        hak_block *next = todo->next;
        hak_slab *s = hak_slab_of((hak_superslab *)hak_pagemap_get(todo), todo);
        hak_heap *me = _hak_tl_heap;
        if (!me->is_empty_heap && atomic_load_explicit(&s->owner_a, memory_order_relaxed) == me->owner_tag)
            hak_slab_push_local(me, s, todo);
        else
            _hak_slab_free_remote(s, todo, todo, 1);
        todo = next;
    }
}
