/* superslab.c: SuperSlabs and the shared pool of slabs.
 *
 * A SuperSlab is a 2 MiB-aligned mapping of 16 units of 128 KiB. Its header
 * (the hak_superslab struct) sits in the first page(s) of unit 0, so the slab
 * of unit 0 is shorter than the others. A slab is one unit, whatever its
 * class: a unit that empties can serve any class next.
 *
 * The pool hands slabs to heaps and takes them back when they are empty; a
 * returned slab can then serve any class. It also keeps the slabs abandoned
 * by exited threads, per class, until a live thread adopts them. Everything
 * here runs under one lock, on the slow path only: a heap comes here once per
 * slab, not per block. The states of a slab and who moves it between them:
 * the table at the top of slab.c.
 *
 * Lists (all under pool_lock): ss_partial holds SuperSlabs with some units
 * free and some in use; ss_empty holds wholly free ones, at most
 * HAKMEM_SS_RETAIN of them; a SuperSlab with no free unit is on no list.
 *
 * Purging. A unit given back is "dirty": its pages may still be resident.
 * It is reused warm if a heap asks for it soon; if it stays free longer than
 * the purge delay (purge.c decides it) its pages go back to the OS with
 * MADV_DONTNEED, from the purge pass, never from a free. The time a dirty
 * unit waited before being reused is what the adaptive policy learns from.
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

#define ALL_UNITS ((uint32_t)((1ull << HAK_UNITS) - 1))
#define ABANDONED_PAGES_MIN_MS 100   /* pages inside abandoned slabs: at most this often */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_superslab *ss_partial;
static hak_superslab *ss_empty;
static long ss_empty_count;
static hak_slab_list abandoned[HAK_CLASSES];
static hak_superslab *ss_all;         /* every SuperSlab mapped */
static size_t dirty_bytes;            /* bytes of dirty free units (written under the
                                         lock, atomically: read without it) */
static long ss_mapped;                /* SuperSlabs mapped now */
static long ss_peak;                  /* the most ever mapped at once */

/* While slabs of exited threads hold blocks, the purge passes look at them
 * this often: other threads' frees into them wake no one. */
#define ABANDONED_SWEEP_MS 500

/* A heap is "busy" for huge pages once it has this many SuperSlabs. */
#define THP_BUSY_SUPERSLABS 64

void _hak_pool_lock(void) { hak_lock(&pool_lock); }
void _hak_pool_unlock(void) { hak_unlock(&pool_lock); }
void _hak_pool_after_fork_child(void) { pthread_mutex_init(&pool_lock, NULL); }

/* ---- SuperSlab lists ------------------------------------------------- */

static void ss_push(hak_superslab **list, hak_superslab *ss)
{
    ss->prev = NULL;
    ss->next = *list;
    if (*list) (*list)->prev = ss;
    *list = ss;
}

static void ss_remove(hak_superslab **list, hak_superslab *ss)
{
    if (ss->prev) ss->prev->next = ss->next;
    else *list = ss->next;
    if (ss->next) ss->next->prev = ss->prev;
    ss->next = ss->prev = NULL;
}

static hak_superslab *ss_map(void)
{
    hak_superslab *ss = _hak_os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
    if (ss == NULL) return NULL;
    long mapped = __atomic_add_fetch(&ss_mapped, 1, __ATOMIC_RELAXED);
    /* auto: huge pages only once the heap is busy, so a small program never
     * pays 2 MiB of resident memory for a few blocks. "No" is advised before
     * the first write: under the system's `always` mode, the header's first
     * write would fault in a huge page for the whole SuperSlab. "Yes" is
     * advised after it, so the header is a small page and the SuperSlab
     * gets its huge page from khugepaged once it is populated, not at its
     * first fault (which would make a SuperSlab with a few blocks resident
     * whole: bench_memory's peak rose from 225 to 265 MiB). */
    bool huge = _hak_opt.thp == HAK_THP_ALWAYS || (_hak_opt.thp == HAK_THP_AUTO && mapped > THP_BUSY_SUPERSLABS);
    if (!huge) _hak_os_huge_pages(ss, HAK_SS_SIZE, false);
    if (!_hak_pagemap_set(ss, HAK_SS_SIZE, (uintptr_t)ss)) {
        __atomic_sub_fetch(&ss_mapped, 1, __ATOMIC_RELAXED);
        _hak_os_unmap(ss, HAK_SS_SIZE);
        return NULL;
    }
    long peak = __atomic_load_n(&ss_peak, __ATOMIC_RELAXED);
    while (mapped > peak &&
           !__atomic_compare_exchange_n(&ss_peak, &peak, mapped, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    if (HAK_SS_GUARD) _hak_os_protect_none((char *)ss + HAK_SS_SIZE - HAK_SS_GUARD, HAK_SS_GUARD);
    ss->free_units = ALL_UNITS;   /* the rest of the header is zero from mmap */
    _hak_pool_lock();
    ss->all_next = ss_all;
    if (ss_all) ss_all->all_prev = ss;
    ss_all = ss;
    _hak_pool_unlock();
    for (unsigned u = 0; u < HAK_UNITS; u++) ss->slabs[u].unit = (uint8_t)u;
    ss->huge = huge;
    if (huge) _hak_os_huge_pages(ss, HAK_SS_SIZE, true);
    _hak_purge_note_mapped();
    return ss;
}

static void ss_unmap(hak_superslab *ss)
{
    _hak_pool_lock();
    if (ss->all_prev) ss->all_prev->all_next = ss->all_next;
    else ss_all = ss->all_next;
    if (ss->all_next) ss->all_next->all_prev = ss->all_prev;
    _hak_pool_unlock();
    __atomic_sub_fetch(&ss_mapped, 1, __ATOMIC_RELAXED);
    _hak_pagemap_clear(ss, HAK_SS_SIZE);
    _hak_os_unmap(ss, HAK_SS_SIZE);
}

/* ---- dirty units ----------------------------------------------------- */

static void mark_dirty(hak_superslab *ss, uint32_t units, uint64_t now)
{
    for (unsigned u = 0; u < HAK_UNITS; u++) {
        if (!(units >> u & 1) || (ss->dirty_units >> u & 1)) continue;
        ss->dirty_units |= 1u << u;
        ss->slabs[u].freed_ms = now;
        __atomic_add_fetch(&dirty_bytes, hak_unit_bytes(u), __ATOMIC_RELAXED);
    }
}

/* Reused units stop being dirty; how long they waited teaches the policy. */
static void claim_dirty(hak_superslab *ss, uint32_t units)
{
    uint32_t reused = ss->dirty_units & units;
    if (reused == 0) return;
    uint64_t now = _hak_now_ms(), oldest = now;
    for (unsigned u = 0; u < HAK_UNITS; u++) {
        if (!(reused >> u & 1)) continue;
        if (ss->slabs[u].freed_ms < oldest) oldest = ss->slabs[u].freed_ms;
        __atomic_sub_fetch(&dirty_bytes, hak_unit_bytes(u), __ATOMIC_RELAXED);
    }
    ss->dirty_units &= ~reused;
    _hak_purge_note_reuse(now - oldest);
}

/* auto: a SuperSlab with idle memory is not busy; keep khugepaged from
 * filling the pages it gave back in again as a huge page. */
static void not_huge_locked(hak_superslab *ss)
{
    if (ss->huge && _hak_opt.thp == HAK_THP_AUTO) {
        ss->huge = false;
        _hak_os_huge_pages(ss, HAK_SS_SIZE, false);
    }
}

/* Pages inside a slab in use of ss went back to the OS (slab.c). */
void _hak_pool_pages_purged(hak_superslab *ss)
{
    _hak_pool_lock();
    not_huge_locked(ss);
    _hak_pool_unlock();
}

/* Decommit the dirty units of ss idle for delay_ms or more, one madvise per
 * run of adjacent units. Returns when the next remaining one is due, or
 * UINT64_MAX. */
static uint64_t purge_ss_locked(hak_superslab *ss, uint64_t now, uint64_t delay_ms)
{
    uint64_t next = UINT64_MAX;
    unsigned u = 0;
    while (u < HAK_UNITS) {
        if (!(ss->dirty_units >> u & 1)) {
            u++;
            continue;
        }
        if (now - ss->slabs[u].freed_ms < delay_ms && now >= ss->slabs[u].freed_ms) {
            uint64_t due = ss->slabs[u].freed_ms + delay_ms;
            if (due < next) next = due;
            u++;
            continue;
        }
        unsigned first = u;
        size_t bytes = 0;
        while (u < HAK_UNITS && (ss->dirty_units >> u & 1) &&
               (now - ss->slabs[u].freed_ms >= delay_ms || now < ss->slabs[u].freed_ms)) {
            bytes += hak_unit_bytes(u);
            ss->dirty_units &= ~(1u << u);
            u++;
        }
        _hak_os_decommit((char *)ss + hak_unit_offset(first), bytes);
        _hak_stats_purged(bytes);
        not_huge_locked(ss);
        __atomic_sub_fetch(&dirty_bytes, bytes, __ATOMIC_RELAXED);
    }
    return next;
}

static void forget_dirty(hak_superslab *ss)
{
    for (unsigned u = 0; u < HAK_UNITS; u++)
        if (ss->dirty_units >> u & 1) __atomic_sub_fetch(&dirty_bytes, hak_unit_bytes(u), __ATOMIC_RELAXED);
    ss->dirty_units = 0;
}

/* ---- taking and returning units ------------------------------------- */

static void unmap_list(hak_superslab *ss)
{
    while (ss) {
        hak_superslab *next = ss->next;
        ss_unmap(ss);
        ss = next;
    }
}

static hak_superslab *sweep_abandoned_locked(void);

/* Where a run of n free units may start in ss (one bit per first unit),
 * for a block of `size` bytes (0: a slab, which takes what one unit has);
 * unit_aligned: the block must start on a unit boundary, so not in unit 0,
 * whose first page(s) hold the header. */
static uint32_t run_starts(uint32_t units, unsigned n, size_t size, bool unit_aligned)
{
    uint32_t m = units;
    for (unsigned i = 1; i < n; i++) m &= units >> i;
    if (size == 0) return m;
    if (unit_aligned || n * HAK_UNIT_SIZE - HAK_SS_HEADER_SIZE < size) m &= ~1u;
    if (n * HAK_UNIT_SIZE - HAK_SS_GUARD < size) m &= ~(1u << (HAK_UNITS - n));
    return m;
}

/* The first unit of the n free ones of ss to use next, or -1: dirty ones
 * if there are, since their pages are likely resident already, so reusing
 * them costs no new memory. */
static int pick_units(const hak_superslab *ss, unsigned n, size_t size, bool unit_aligned)
{
    uint32_t any = run_starts(ss->free_units, n, size, unit_aligned);
    if (any == 0) return -1;
    uint32_t warm = run_starts(ss->free_units & ss->dirty_units, n, size, unit_aligned);
    return __builtin_ctz(warm ? warm : any);
}

static void claim_units(hak_superslab *ss, uint32_t units)
{
    /* a unit that is not dirty was given back whole, or never written */
    for (unsigned u = 0; u < HAK_UNITS; u++)
        if ((units & ~ss->dirty_units) >> u & 1) ss->slabs[u].touched = 0;
    uint32_t was = ss->free_units;
    ss->free_units &= ~units;
    claim_dirty(ss, units);
    if (was == ALL_UNITS) {
        ss_remove(&ss_empty, ss);
        __atomic_sub_fetch(&ss_empty_count, 1, __ATOMIC_RELAXED);
        ss_push(&ss_partial, ss);
    }
    if (ss->free_units == 0) ss_remove(&ss_partial, ss);
}

/* A run needs n adjacent free units, which a SuperSlab in use may not
 * have: this many on the partial list are looked at before an empty one. */
#define RUN_SCAN 64

/* n free units (size and unit_aligned as for run_starts), taken: the slab
 * of the first, or NULL. *dirty: which of them were dirty. */
static hak_slab *take_units_locked(unsigned n, size_t size, bool unit_aligned, uint32_t *dirty)
{
    hak_superslab *lists[2] = { ss_partial, ss_empty };
    for (int l = 0; l < 2; l++) {
        unsigned looked = 0;
        for (hak_superslab *ss = lists[l]; ss && looked < RUN_SCAN; ss = ss->next, looked++) {
            int first = pick_units(ss, n, size, unit_aligned);
            if (first < 0) continue;
            uint32_t units = (uint32_t)((1ull << n) - 1) << first;
            *dirty = ss->dirty_units & units;
            claim_units(ss, units);
            return &ss->slabs[first];
        }
    }
    return NULL;
}

/* n free units, from the pool, else (after reclaiming what exited threads
 * left behind) from a new SuperSlab. NULL when out of memory. */
static hak_slab *take_units(unsigned n, size_t size, bool unit_aligned, uint32_t *dirty)
{
    _hak_pool_lock();
    hak_slab *s = take_units_locked(n, size, unit_aligned, dirty);
    _hak_pool_unlock();
    if (s) return s;
    _hak_heap_sweep_unowned();
    _hak_pool_lock();
    hak_superslab *dead = sweep_abandoned_locked();
    s = take_units_locked(n, size, unit_aligned, dirty);
    _hak_pool_unlock();
    unmap_list(dead);
    bool retried = false;
    while (s == NULL) {
        hak_superslab *ss = ss_map();
        if (ss == NULL) {
            /* out of address space or memory: give back what hakmem holds
             * free (a spare may come back to the pool), retry once */
            if (retried) return NULL;
            retried = true;
            _hak_purge_release_all();
            _hak_pool_lock();
            s = take_units_locked(n, size, unit_aligned, dirty);
            _hak_pool_unlock();
            continue;
        }
        _hak_pool_lock();
        ss_push(&ss_empty, ss);
        __atomic_add_fetch(&ss_empty_count, 1, __ATOMIC_RELAXED);
        s = take_units_locked(n, size, unit_aligned, dirty);
        _hak_pool_unlock();
    }
    return s;
}

/* Units of ss go back to the pool (their slab retired already); returns
 * ss if it is to be unmapped once unlocked. */
static hak_superslab *release_units_locked(hak_superslab *ss, uint32_t units)
{
    uint32_t was = ss->free_units;
    ss->free_units |= units;
    if (was == 0) ss_push(&ss_partial, ss);
    if (ss->free_units == ALL_UNITS) {
        ss_remove(&ss_partial, ss);
        bool eager = _hak_opt.free_policy == HAK_POLICY_EAGER;
        if (ss_empty_count >= (eager ? 0 : _hak_opt.ss_retain)) {
            forget_dirty(ss);
            return ss;
        }
        ss_push(&ss_empty, ss);
        __atomic_add_fetch(&ss_empty_count, 1, __ATOMIC_RELAXED);
    }
    mark_dirty(ss, units, _hak_now_ms());
    if (_hak_opt.free_policy == HAK_POLICY_EAGER) purge_ss_locked(ss, 0, 0);
    return NULL;
}

/* An empty slab's unit goes back to the pool. */
static hak_superslab *release_slab_locked(hak_slab *s)
{
    _hak_slab_retire(s);
    return release_units_locked(hak_ss_of_slab(s), 1u << s->unit);
}

/* Collect what other threads freed into abandoned slabs and give the empty
 * ones back, so memory of exited threads returns to the pool. */
static hak_superslab *sweep_abandoned_locked(void)
{
    hak_superslab *to_unmap = NULL;
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        hak_slab *s = abandoned[c].first;
        while (s) {
            hak_slab *next = s->next;
            _hak_slab_collect_remote(s);
            if (s->used == 0) {
                _hak_slab_list_remove(&abandoned[c], s);
                hak_superslab *ss = release_slab_locked(s);
                if (ss) {           /* unmap later, outside the lock */
                    ss->next = to_unmap;
                    to_unmap = ss;
                }
            }
            s = next;
        }
    }
    return to_unmap;
}

/* A slab for class cls owned by heap: an abandoned one of that class if any
 * (its blocks still out stay counted in used), else fresh units. NULL when
 * out of memory. */
hak_slab *_hak_pool_take_slab(hak_heap *heap, unsigned cls)
{
    _hak_pool_lock();
    hak_slab *s = abandoned[cls].first;
    if (s) {
        _hak_slab_list_remove(&abandoned[cls], s);
        if (s->touched) heap->tails++;
        atomic_store_explicit(&s->owner_a, heap->owner_tag, memory_order_release);
        _hak_pool_unlock();
        return s;
    }
    _hak_pool_unlock();
    uint32_t dirty;
    s = take_units(1, 0, false, &dirty);
    if (s) _hak_slab_init(s, heap, cls);
    return s;
}

/* An empty slab (used == 0, on no heap list) goes back to the pool. */
void _hak_pool_return_slab(hak_slab *s)
{
    _hak_pool_lock();
    hak_superslab *dead = release_slab_locked(s);
    _hak_pool_unlock();
    if (dead) ss_unmap(dead);
    _hak_purge_after_free();
}

/* ---- runs --------------------------------------------------------------- */

/* The units of a run for a large block of `size` bytes (large.c), marked as
 * the run's: every one names the first in `run`, the first holds the count.
 * They are no slab: no owner, block size 0, so every free of the block
 * leaves the slab paths for large.c's. *dirty: which of them may hold old
 * data. NULL when out of memory. */
hak_slab *_hak_pool_take_run(size_t size, bool unit_aligned, uint32_t *dirty)
{
    unsigned n = (unsigned)((size + HAK_UNIT_SIZE - 1) / HAK_UNIT_SIZE);
    hak_slab *s = take_units(n, size, unit_aligned, dirty);
    if (s == NULL) return NULL;
    hak_superslab *ss = hak_ss_of_slab(s);
    _hak_pool_lock();   /* the fork child reads the marks under it */
    for (unsigned u = s->unit; u < s->unit + n; u++) {
        ss->slabs[u].run = (uint8_t)(s->unit + 1);
        ss->slabs[u].touched = (uint8_t)(hak_unit_bytes(u) / HAK_PAGE);   /* the block's to write */
    }
    s->run_units = (uint8_t)n;
    _hak_pool_unlock();
    return s;
}

/* The run whose first unit is s goes back to the pool; false if it is not
 * a live run (freed already). */
bool _hak_pool_return_run(hak_slab *s)
{
    hak_superslab *ss = hak_ss_of_slab(s);
    _hak_pool_lock();
    unsigned n = s->run_units;
    if (n == 0 || s->run != s->unit + 1) {
        _hak_pool_unlock();
        return false;
    }
    for (unsigned u = s->unit; u < s->unit + n; u++) ss->slabs[u].run = 0;
    s->run_units = 0;
    hak_superslab *dead = release_units_locked(ss, (uint32_t)((1ull << n) - 1) << s->unit);
    _hak_pool_unlock();
    if (dead) ss_unmap(dead);
    _hak_purge_after_free();
    return true;
}

/* ---- purging ------------------------------------------------------------ */

/* The pages wholly free inside abandoned slabs go back, as a heap's own do
 * (slab.c). Each slab worth a look leaves its list while the pool's lock is
 * dropped, so that no thread adopts it meanwhile; other threads' frees into
 * it still go to its remote list. Returns the bytes given back. */
static size_t purge_abandoned_pages(bool all)
{
    hak_slab *claimed = NULL;
    _hak_pool_lock();
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        for (hak_slab *s = abandoned[c].first; s;) {
            hak_slab *next = s->next;
            if (_hak_slab_pages_worth(s, all)) {
                _hak_slab_list_remove(&abandoned[c], s);
                s->next = claimed;
                claimed = s;
            }
            s = next;
        }
    }
    _hak_pool_unlock();
    if (claimed == NULL) return 0;
    size_t bytes = 0;
    for (hak_slab *s = claimed; s; s = s->next) bytes += _hak_slab_purge_pages(s);
    _hak_pool_lock();
    while (claimed) {
        hak_slab *s = claimed;
        claimed = s->next;
        _hak_slab_list_push(&abandoned[s->cls], s);
    }
    _hak_pool_unlock();
    return bytes;
}

/* One purge pass: reclaim empty abandoned slabs, then decommit every dirty
 * unit idle for delay_ms or more. Returns when the next pass is due: the
 * next remaining dirty unit, or the next look at abandoned slabs
 * (UINT64_MAX if there is neither). */
uint64_t _hak_pool_purge(uint64_t now, uint64_t delay_ms)
{
    uint64_t next = UINT64_MAX;
    _hak_pool_lock();
    hak_superslab *dead = sweep_abandoned_locked();
    hak_superslab *lists[2] = { ss_partial, ss_empty };
    for (int l = 0; l < 2; l++) {
        for (hak_superslab *ss = lists[l]; ss; ss = ss->next) {
            if (ss->dirty_units == 0) continue;
            uint64_t due = purge_ss_locked(ss, now, delay_ms);
            if (due < next) next = due;
        }
    }
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        if (abandoned[c].first && now + ABANDONED_SWEEP_MS < next) {
            next = now + ABANDONED_SWEEP_MS;
            break;
        }
    }
    _hak_pool_unlock();
    unmap_list(dead);
    /* pages inside abandoned slabs, at most once per delay, as a heap does */
    static _Atomic uint64_t abandoned_pages_ms;
    uint64_t gap = delay_ms < ABANDONED_PAGES_MIN_MS ? ABANDONED_PAGES_MIN_MS : delay_ms;
    if (now == 0 || now - atomic_load_explicit(&abandoned_pages_ms, memory_order_relaxed) >= gap) {
        atomic_store_explicit(&abandoned_pages_ms, now, memory_order_relaxed);
        purge_abandoned_pages(false);
    }
    return next;
}

/* malloc_trim: everything free goes back now, retained SuperSlabs too. */
size_t _hak_pool_trim(void)
{
    size_t released = 0;
    _hak_pool_lock();
    hak_superslab *dead = sweep_abandoned_locked();
    for (hak_superslab *ss = ss_partial; ss; ss = ss->next) {
        size_t before = dirty_bytes;
        purge_ss_locked(ss, 0, 0);
        released += before - dirty_bytes;
    }
    while (ss_empty) {
        hak_superslab *ss = ss_empty;
        ss_remove(&ss_empty, ss);
        __atomic_sub_fetch(&ss_empty_count, 1, __ATOMIC_RELAXED);
        forget_dirty(ss);
        ss->next = dead;
        dead = ss;
    }
    _hak_pool_unlock();
    for (hak_superslab *ss = dead; ss; ss = ss->next) released += HAK_SS_SIZE;
    unmap_list(dead);
    return released + purge_abandoned_pages(true);
}

void _hak_pool_counts(uint64_t *mapped, uint64_t *retained)
{
    *mapped = (uint64_t)__atomic_load_n(&ss_mapped, __ATOMIC_RELAXED);
    *retained = (uint64_t)__atomic_load_n(&ss_empty_count, __ATOMIC_RELAXED);
}

size_t _hak_pool_dirty_bytes(void)
{
    return __atomic_load_n(&dirty_bytes, __ATOMIC_RELAXED);
}

uint64_t _hak_pool_peak(void)
{
    return (uint64_t)__atomic_load_n(&ss_peak, __ATOMIC_RELAXED);
}

/* fn(arg, ss, unit) for every unit of every SuperSlab mapped, under the
 * pool's lock (info.c's figures: fn only reads, and neither allocates nor
 * locks). Returns how many SuperSlabs there were. */
uint64_t _hak_pool_each_unit(void (*fn)(void *arg, hak_superslab *ss, unsigned unit), void *arg)
{
    uint64_t n = 0;
    _hak_pool_lock();
    for (hak_superslab *ss = ss_all; ss; ss = ss->all_next, n++)
        for (unsigned u = 0; u < HAK_UNITS; u++) fn(arg, ss, u);
    _hak_pool_unlock();
    return n;
}

/* The child of fork: every slab in use that neither keep owns nor holds as
 * a spare belonged to a thread of the parent, which does not run here. Such
 * a slab is abandoned as at that thread's exit (or given back if it is
 * empty): heap.c has already taken back those threads' spares, and sends
 * their cached and delayed blocks to the slabs' remote lists after this.
 * Whatever those threads were doing at the moment of fork leaves at worst a
 * slab whose `used` counts one block too many (a free half done), which
 * then never empties. */
void _hak_pool_orphan_slabs(hak_heap *keep)
{
    hak_superslab *dead = NULL;
    _hak_pool_lock();
    for (hak_superslab *ss = ss_all; ss; ss = ss->all_next) {
        for (unsigned u = 0; u < HAK_UNITS; u++) {
            if (ss->free_units >> u & 1) continue;
            hak_slab *s = &ss->slabs[u];
            if (s->run) continue;   /* a large block: no thread's */
            hak_heap *owner = atomic_load_explicit(&s->owner_a, memory_order_relaxed);
            if (owner == keep->owner_tag) continue;
            if (owner == NULL) {
                if (s->block_size != 0) continue;   /* abandoned already */
                bool spare = false;
                for (unsigned i = 0; i < HAK_HEAP_SPARE; i++)
                    spare |= atomic_load_explicit(&keep->spare[i], memory_order_relaxed) == s;
                if (spare) continue;
                /* on its way to or from the pool when the parent forked */
                s->used = 0;
            } else {
                uintptr_t v = atomic_load_explicit(&s->remote_a, memory_order_relaxed);
                atomic_store_explicit(&s->remote_a, v & ~(uintptr_t)HAK_REMOTE_STATE_MASK, memory_order_relaxed);
                _hak_slab_collect_remote(s);
                s->used &= ~HAK_USED_FULL;
                s->to_cache = 0;   /* owner gone: its cache comes back as remote frees */
            }
            if (s->used == 0) {
                hak_superslab *gone = release_slab_locked(s);
                if (gone) {
                    gone->next = dead;
                    dead = gone;
                }
                continue;
            }
            atomic_store_explicit(&s->owner_a, NULL, memory_order_relaxed);
            _hak_slab_list_push(&abandoned[s->cls], s);
        }
    }
    _hak_pool_unlock();
    unmap_list(dead);
}

/* A slab with blocks still out whose owner thread exits. */
void _hak_pool_abandon_slab(hak_slab *s)
{
    _hak_pool_lock();
    atomic_store_explicit(&s->owner_a, NULL, memory_order_release);
    _hak_slab_list_push(&abandoned[s->cls], s);
    _hak_pool_unlock();
    _hak_purge_after_free();   /* a purge pass reclaims it once emptied */
}
