/* large.c: blocks above the slab range (> 32 KiB), and the cache of
 * recently freed large mappings.
 *
 * A large block takes one of two forms.
 *
 * Runs (up to HAK_RUN_MAX, 256 KiB): whole 128 KiB units of a SuperSlab,
 * adjacent, taken from the pool as slabs are (superslab.c). The block starts
 * at the first unit (after the header in unit 0), so it is page aligned,
 * and unit aligned when asked for an alignment above a page. The units'
 * descriptors mark the run (`run`, `run_units`, `run_usable`) and are no
 * slab's (no owner, block size 0), so every free of such a block leaves the
 * slab paths (free.c) for _hak_run_free, from any thread. A freed run's
 * units are dirty units of the pool like a slab's, reused warm by the next
 * slab or run, and given back to the OS by the purge passes. Packed this
 * way, many blocks share one mapping and its page tables: what fork copies
 * and the address space grow with the bytes in use, not with the number of
 * blocks, as they did when each block took a 2 MiB mapping.
 *
 * Mappings (above 256 KiB, or aligned above 128 KiB): each block its own
 * mapping, 2 MiB aligned and a whole number of 2 MiB chunks, like a
 * SuperSlab, so the owned-range map can name it exactly. Its header
 * (hak_large) sits at the base; the user pointer is `offset` bytes further
 * (64, or the requested alignment). Only the pages written are backed by
 * memory, so the rounding costs address space, not RSS. realloc grows in
 * place when the mapping has room or the kernel can extend it, and otherwise
 * moves the pages with mremap: nothing is copied.
 *
 * The cache keeps freed mappings (at most HAKMEM_LARGE_CACHE_KB in all) for
 * new large requests, whose pages would otherwise be faulted in (and
 * zeroed by the kernel) again: the smallest that fits is taken and its
 * surplus chunks stay cached as a mapping of their own; when none fits,
 * the largest grows (cache_take). The purge passes (purge.c) unmap entries
 * left unused past the purge delay. A cached mapping stays in the owned-range map with offset
 * 0, which no user pointer can match: a free of a stale pointer into it is
 * refused.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "internal.h"

#define LARGE_OFFSET 64
#define CACHE_SLOTS  64

typedef struct {
    hak_large *h;
    uint64_t freed_ms;
} cache_entry;

static pthread_mutex_t large_lock = PTHREAD_MUTEX_INITIALIZER;
static cache_entry cache[CACHE_SLOTS];   /* cache[0..cache_n) (large_lock) */
static unsigned cache_n;
static size_t cache_bytes;
static uint64_t last_take_ms;            /* when a large block was last asked for */
static uint64_t last_put_ms;             /* when one was last freed into the cache */
static uint64_t window_ms;               /* start of the current second of requests */
static uint32_t window_asks;             /* large_busy tests since window_ms */
#define BUSY_ASKS 4
#define CHURN_KEEP_MS 1000

void _hak_large_lock(void) { hak_lock(&large_lock); }
void _hak_large_unlock(void) { hak_unlock(&large_lock); }
void _hak_large_after_fork_child(void) { pthread_mutex_init(&large_lock, NULL); }

static size_t map_align(size_t offset)
{
    return offset > HAK_SS_SIZE ? offset : HAK_SS_SIZE;
}

/* dirty_end keeps the high-water mark of what the user could have written,
 * so a calloc that reuses the mapping zeroes exactly that. */
static void set_usable(hak_large *h, size_t size)
{
    h->usable = hak_align_up(h->offset + size, HAK_PAGE) - h->offset;
    if (h->offset + h->usable > h->dirty_end) h->dirty_end = h->offset + h->usable;
    if (h->dirty_end > h->map_size) h->dirty_end = h->map_size;
}

static void unmap_large(hak_large *h, size_t map)
{
    _hak_pagemap_clear(h, map);
    _hak_os_unmap(h, map);
}

/* A cached mapping (or part of one) goes back to the OS. */
static void release_cached(hak_large *h, size_t map)
{
    unmap_large(h, map);
    _hak_stats_purged(map);
}

/* ---- the cache ---------------------------------------------------------- */

static hak_large *cache_remove_locked(unsigned i)
{
    hak_large *h = cache[i].h;
    __atomic_sub_fetch(&cache_bytes, h->map_size, __ATOMIC_RELAXED);
    cache[i] = cache[--cache_n];
    return h;
}

static hak_large *grow_mapping(hak_large *h, size_t new_map);

/* A mapping of map bytes from the cache, NULL if it is empty. Freed pages
 * are worth keeping: a program that replaces large blocks would otherwise
 * fault every page of each new one in again. So the smallest mapping that
 * holds map is taken and its surplus chunks stay cached as a mapping of
 * their own; when none is big enough, the largest grows (mremap: its pages
 * stay, only the rest is new). */
static hak_large *cache_take(size_t map)
{
    __atomic_store_n(&last_take_ms, _hak_now_ms(), __ATOMIC_RELAXED);
    _hak_large_lock();
    unsigned best = CACHE_SLOTS, largest = CACHE_SLOTS;
    for (unsigned i = 0; i < cache_n; i++) {
        size_t have = cache[i].h->map_size;
        if (have >= map && (best == CACHE_SLOTS || have < cache[best].h->map_size)) best = i;
        if (largest == CACHE_SLOTS || have > cache[largest].h->map_size) largest = i;
    }
    if (best == CACHE_SLOTS) best = largest;
    hak_large *h = NULL;
    uint64_t freed = 0;
    if (best != CACHE_SLOTS) {
        freed = cache[best].freed_ms;
        h = cache_remove_locked(best);
        if (h->map_size > map) {
            /* the tail, whole chunks, is a cached mapping again */
            hak_large *tail = (hak_large *)((char *)h + map);
            tail->map_size = h->map_size - map;
            tail->offset = 0;
            tail->dirty_end = h->dirty_end > map ? h->dirty_end - map : 0;
            tail->thp = h->thp;
            _hak_pagemap_set(tail, tail->map_size, (uintptr_t)tail | HAK_MAP_LARGE);   /* its leaves exist */
            cache[cache_n++] = (cache_entry){ tail, freed };
            __atomic_add_fetch(&cache_bytes, tail->map_size, __ATOMIC_RELAXED);
            h->map_size = map;
            if (h->dirty_end > map) h->dirty_end = map;
        }
    }
    _hak_large_unlock();
    if (h == NULL) return NULL;
    _hak_purge_note_reuse(_hak_now_ms() - freed);
    if (h->map_size < map) {
        hak_large *grown = grow_mapping(h, map);
        if (grown == NULL) {
            release_cached(h, h->map_size);
            return NULL;
        }
        h = grown;
        h->map_size = map;
    }
    return h;
}

/* Keep a freed mapping for reuse if the cache has room (making room by
 * dropping the oldest); otherwise unmap it. */
static void cache_put(hak_large *h)
{
    size_t limit = (size_t)_hak_opt.large_cache_kb * 1024;
    if (_hak_opt.free_policy == HAK_POLICY_EAGER || h->map_size > limit) {
        unmap_large(h, h->map_size);
        return;
    }
    h->offset = 0;
    hak_large *evicted[CACHE_SLOTS];
    unsigned n_evicted = 0;
    _hak_large_lock();
    while (cache_n > 0 && (cache_n == CACHE_SLOTS || cache_bytes + h->map_size > limit)) {
        unsigned oldest = 0;
        for (unsigned i = 1; i < cache_n; i++)
            if (cache[i].freed_ms < cache[oldest].freed_ms) oldest = i;
        evicted[n_evicted++] = cache_remove_locked(oldest);
    }
    uint64_t now = _hak_now_ms();
    __atomic_store_n(&last_put_ms, now, __ATOMIC_RELAXED);
    cache[cache_n++] = (cache_entry){ h, now };
    __atomic_add_fetch(&cache_bytes, h->map_size, __ATOMIC_RELAXED);
    _hak_large_unlock();
    for (unsigned i = 0; i < n_evicted; i++) release_cached(evicted[i], evicted[i]->map_size);
    _hak_purge_after_free();
}

/* Unmap cached mappings unused for delay_ms or more; returns when the next
 * one is due (UINT64_MAX if the cache is empty). While the program is
 * taking large blocks (one asked for within delay_ms), a cached mapping
 * stays at least CHURN_KEEP_MS: in a churn of blocks of varying sizes the
 * surplus of one split waits for a request it fits, which comes later
 * than the program's usual reuse interval. delay_ms 0: all of them. */
uint64_t _hak_large_cache_purge(uint64_t now, uint64_t delay_ms)
{
    hak_large *dropped[CACHE_SLOTS];
    unsigned n = 0;
    uint64_t next = UINT64_MAX;
    uint64_t asked = __atomic_load_n(&last_take_ms, __ATOMIC_RELAXED);
    if (delay_ms != 0 && delay_ms < CHURN_KEEP_MS && now >= asked && now - asked < delay_ms) delay_ms = CHURN_KEEP_MS;
    _hak_large_lock();
    for (unsigned i = 0; i < cache_n;) {
        if (now - cache[i].freed_ms >= delay_ms || now < cache[i].freed_ms) {
            dropped[n++] = cache_remove_locked(i);
            continue;
        }
        if (cache[i].freed_ms + delay_ms < next) next = cache[i].freed_ms + delay_ms;
        i++;
    }
    _hak_large_unlock();
    for (unsigned i = 0; i < n; i++) release_cached(dropped[i], dropped[i]->map_size);
    return next;
}

size_t _hak_large_cache_bytes(void)
{
    return __atomic_load_n(&cache_bytes, __ATOMIC_RELAXED);
}

/* ---- runs ------------------------------------------------------------- */

static size_t run_usable_for(const hak_slab *s, size_t size)
{
    size_t usable = hak_align_up(size, HAK_PAGE), bytes = hak_run_bytes(s);
    return usable < bytes ? usable : bytes;
}

/* A block of size bytes (<= HAK_RUN_MAX) as a run; NULL when out of
 * memory. Units that were never used or whose pages went back to the OS
 * read as zero; calloc clears the part of the block in dirty ones. */
static void *run_alloc(size_t size, size_t align, bool zero)
{
    uint32_t dirty;
    hak_slab *s = _hak_pool_take_run(size, align > HAK_PAGE, &dirty);
    if (s == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = hak_run_start(s);
    s->run_usable = (uint32_t)run_usable_for(s, size);
    hak_dbg_count(1);
    hak_dbg_large(NULL, 0, p, s->run_usable);
    _hak_stats_large(1, (long long)hak_run_bytes(s), true);
    if (zero) {
        for (unsigned u = s->unit; dirty >> u; u++) {
            if (!(dirty >> u & 1)) continue;
            char *from = (char *)hak_ss_of_slab(s) + hak_unit_offset(u);
            char *to = (char *)hak_ss_of_slab(s) + (u + 1) * HAK_UNIT_SIZE;
            if (to > p + size) to = p + size;
            if (from < to) memset(from, 0, (size_t)(to - from));
        }
    }
    return p;
}

size_t _hak_run_usable(hak_slab *s, const void *p)
{
    return hak_run_valid(s, p) ? s->run_usable : 0;
}

/* Free of p, a pointer into unit s that holds no slab: the block of a run,
 * or a bad pointer. */
void _hak_run_free(hak_slab *s, void *p)
{
    if (!hak_run_valid(s, p)) {
        /* a unit in no use, freed at its start: most likely a run freed before */
        bool again = !s->run && (char *)p == (char *)hak_ss_of_slab(s) + hak_unit_offset(s->unit);
        _hak_fatal_ptr(s->run ? "free(): invalid pointer"
                       : again ? "free(): double free detected"
                               : "free(): pointer into unused memory", p);
    }
    int saved = errno;
    size_t usable = s->run_usable, bytes = hak_run_bytes(s);
    if (!_hak_pool_return_run(s)) _hak_fatal_ptr("free(): double free detected", p);
    hak_dbg_route("large run", p);
    hak_dbg_count(-1);
    hak_dbg_large(p, usable, NULL, 0);
    _hak_stats_large(-1, -(long long)bytes, true);
    errno = saved;
}

/* realloc of a run to size bytes (> HAK_SMALL_MAX) in place, if the run
 * holds it without wasting more than half of it. */
bool _hak_run_resize(hak_slab *s, void *p, size_t size)
{
    size_t bytes = hak_run_bytes(s);
    if (size > bytes || size <= bytes / 2) return false;
    size_t old = s->run_usable;
    s->run_usable = (uint32_t)run_usable_for(s, size);
    hak_dbg_large(p, old, p, s->run_usable);
    return true;
}

/* ---- mappings ------------------------------------------------------------ */

/* A new mapping; when the OS refuses, once more after everything free that
 * hakmem holds went back. */
static void *map_fresh(size_t size, size_t align)
{
    void *p = _hak_os_map_aligned(size, align);
    if (p == NULL) {
        _hak_purge_release_all();
        p = _hak_os_map_aligned(size, align);
    }
    return p;
}

/* Whether the program is busy with large mappings: BUSY_ASKS requests
 * reached this test within a second (counting this one: blocks of 2 MiB and
 * up that fill half of their last chunk, see thp_wanted), or a mapping was
 * freed into the cache within CHURN_KEEP_MS. Racy counts: they only choose
 * an advice. */
static bool large_busy(void)
{
    uint64_t t = _hak_now_ms();
    uint64_t start = __atomic_load_n(&window_ms, __ATOMIC_RELAXED);
    uint32_t asks;
    if (t < start || t - start >= CHURN_KEEP_MS) {
        __atomic_store_n(&window_ms, t, __ATOMIC_RELAXED);
        __atomic_store_n(&window_asks, 1, __ATOMIC_RELAXED);
        asks = 1;
    } else {
        asks = __atomic_add_fetch(&window_asks, 1, __ATOMIC_RELAXED);
    }
    uint64_t put = __atomic_load_n(&last_put_ms, __ATOMIC_RELAXED);
    return asks >= BUSY_ASKS || (put != 0 && t >= put && t - put < CHURN_KEEP_MS);
}

/* Huge-page advice for a large block of `size` bytes (HAKMEM_THP): always
 * yes; never no; auto no below 2 MiB, where a huge page would cost up to
 * 2 MiB for a block that touches a few pages (system mode `always`); above,
 * yes while the program is busy with large blocks (large_busy) if the
 * block fills at least half of its last 2 MiB chunk (a huge page there
 * would hold less than 1 MiB of it: a 4 MiB block, whose last chunk holds
 * the 64 bytes that its header pushes out of the first two, keeps 4 KiB
 * pages, even under the system mode `always`), else the system's default. A program that keeps
 * replacing big buffers writes them: each new one faulted in 4 KiB at a
 * time cost it more than its own writes (bench_large_churn 1 2s 20 5120
 * 25600: 363-407 replacements/s against 311-352 without, 3 runs each). A block
 * allocated once, perhaps to be touched sparsely, gets no advice. A fresh
 * mapping gets it before its first byte is written (the header), a cached
 * one when it changes. */
static int thp_wanted(size_t offset, size_t size, int now)
{
    if (_hak_opt.thp == HAK_THP_ALWAYS) return 1;
    if (_hak_opt.thp == HAK_THP_NEVER || size < HAK_SS_SIZE) return -1;
    size_t tail = (offset + size) & HAK_SS_MASK;
    if (tail != 0 && tail < HAK_SS_SIZE / 2) return -1;
    return large_busy() ? 1 : now;
}

/* zero: the caller needs the block zeroed (calloc); fresh mappings are. */
void *_hak_large_alloc(size_t size, size_t align, bool zero)
{
    if (size > HAK_MAX_REQUEST || align > HAK_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    if (size <= HAK_RUN_MAX && align <= HAK_UNIT_SIZE) return run_alloc(size ? size : 1, align, zero);
    size_t offset = align > LARGE_OFFSET ? align : LARGE_OFFSET;
    if (size == 0) size = 1;   /* the block must lie inside its mapping */
    size_t map = hak_align_up(offset + size, HAK_SS_SIZE);
    hak_large *h = map_align(offset) == HAK_SS_SIZE ? cache_take(map) : NULL;
    if (h) {
        int thp = thp_wanted(offset, size, h->thp);
        if (thp != h->thp) {
            _hak_os_huge_pages(h, h->map_size, thp > 0);
            h->thp = thp;
        }
        if (zero && h->dirty_end > offset) {
            size_t dirty = h->dirty_end - offset;
            memset((char *)h + offset, 0, dirty < size ? dirty : size);
        }
    } else {
        h = map_fresh(map, map_align(offset));
        if (h == NULL) return NULL;
        int thp = thp_wanted(offset, size, 0);
        if (thp) _hak_os_huge_pages(h, map, thp > 0);
        if (!_hak_pagemap_set(h, map, (uintptr_t)h | HAK_MAP_LARGE)) {
            _hak_os_unmap(h, map);
            errno = ENOMEM;
            return NULL;
        }
        h->map_size = map;
        h->dirty_end = 0;
        h->thp = thp;
    }
    h->offset = offset;
    set_usable(h, size);
    hak_dbg_count(1);
    hak_dbg_large(NULL, 0, (char *)h + offset, h->usable);
    _hak_stats_large(1, (long long)h->map_size, false);
    _hak_purge_note_mapped();
    return (char *)h + offset;
}

bool _hak_large_valid(hak_large *h, const void *p)
{
    return h->offset != 0 && (const char *)h + h->offset == (const char *)p;
}

size_t _hak_large_usable(hak_large *h, const void *p)
{
    return _hak_large_valid(h, p) ? h->usable : 0;
}

void _hak_large_free(hak_large *h, void *p)
{
    hak_dbg_large(p, h->usable, NULL, 0);
    _hak_stats_large(-1, -(long long)h->map_size, false);
    cache_put(h);
}

/* Mapping h made new_map bytes long (larger): in place if the kernel can,
 * else its pages move to a fresh range (nothing is copied). Returns where
 * it is now, NULL (errno ENOMEM, h as it was) if it cannot grow. The
 * caller sets map_size. */
static hak_large *grow_mapping(hak_large *h, size_t new_map)
{
    size_t old_map = h->map_size;
    if (_hak_os_grow_in_place(h, old_map, new_map)) {
        if (!_hak_pagemap_set((char *)h + old_map, new_map - old_map, (uintptr_t)h | HAK_MAP_LARGE)) {
            _hak_os_unmap((char *)h + old_map, new_map - old_map);
            errno = ENOMEM;
            return NULL;
        }
        return h;
    }
    char *dest = map_fresh(new_map, map_align(h->offset));
    if (dest == NULL) return NULL;
    /* create the map's leaves for the new range before anything moves */
    if (!_hak_pagemap_set(dest, new_map, 0)) {
        _hak_os_unmap(dest, new_map);
        errno = ENOMEM;
        return NULL;
    }
    _hak_pagemap_clear(h, old_map);
    hak_large *nh = _hak_os_remap_fixed(h, old_map, new_map, dest);
    if (nh == NULL) {
        _hak_pagemap_set(h, old_map, (uintptr_t)h | HAK_MAP_LARGE);
        _hak_os_unmap(dest, new_map);
        errno = ENOMEM;
        return NULL;
    }
    _hak_pagemap_set(nh, new_map, (uintptr_t)nh | HAK_MAP_LARGE);
    return nh;
}

void *_hak_large_realloc(hak_large *h, void *p, size_t size)
{
    size_t old_map = h->map_size;
    size_t new_map = hak_align_up(h->offset + size, HAK_SS_SIZE);
    if (new_map < old_map) {         /* give back whole chunks at the end */
        unmap_large((hak_large *)((char *)h + new_map), old_map - new_map);
        h->map_size = new_map;
        _hak_stats_large(0, (long long)new_map - (long long)old_map, false);
    } else if (new_map > old_map) {
        hak_large *nh = grow_mapping(h, new_map);
        if (nh == NULL) return NULL;
        h = nh;
        h->map_size = new_map;
        _hak_stats_large(0, (long long)(new_map - old_map), false);
        _hak_purge_note_mapped();
    }
    void *np = (char *)h + h->offset;
    size_t old_usable = h->usable;
    set_usable(h, size);
    hak_dbg_large(p, old_usable, np, h->usable);
    return np;
}
