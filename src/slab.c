/* slab.c: the slab-level slow paths of a heap.
 *
 * The ownership protocol of a slab (one unit of a SuperSlab). Every file
 * that moves a slab between these states follows this table; the other
 * comments refer to it.
 *
 *   state          owner_a  block_size  where                   who moves it out, how
 *   pool           NULL     0           free_units bit          a heap taking a slab or a run: pool lock
 *   spare          NULL     0           a heap's spare[i]       the owner heap (exchange) -> owned;
 *                                                               a purge pass (exchange) -> pool
 *   owned partial  heap     class size  heap's partial[cls];    the owner: -> full (NOTIFY set by CAS,
 *                                       remote_a NOTIFY if it   only while remote_a is empty), -> spare
 *                                       left full with no       or pool when empty, -> abandoned at
 *                                       remote frees seen       its heap's abandon (NOTIFY cleared)
 *   owned full     heap     class size  heap's full[cls];       the first remote push, which clears
 *                                       used | HAK_USED_FULL;   NOTIFY by CAS and hands its blocks to
 *                                       remote_a NOTIFY         the heap's delayed list; the owner's
 *                                                               drain or local free -> partial
 *   abandoned      NULL     class size  pool's abandoned[cls]   a heap adopting it (pool lock, owner
 *                                                               store) -> owned; a pass reclaiming it
 *                                                               empty (pool lock) -> pool
 *   claimed        NULL     class size  a purge pass's list     the same pass, after giving back its
 *                                                               free pages (pool lock) -> abandoned
 *   run            NULL     0, run != 0 a large block's units   its free, from any thread (pool lock)
 *
 * In every state but pool, spare and run, other threads free into the slab
 * through remote_a (CAS push), never its local list; only the owner (or,
 * for abandoned and claimed slabs, the holder of the pool lock or the
 * claim) takes blocks off remote_a (exchange). A parked heap (heap.c) is
 * still the owner of its slabs: they stay owned until a thread takes the
 * heap or a pass unparks it (heap_abandon). The fork child rebuilds these
 * states from the slabs (_hak_pool_orphan_slabs).
 *
 * Owns: carving fresh blocks out of a slab (bump allocation, a page's worth
 * at a time), collecting blocks other threads freed, the partial and full
 * lists and spare slots of each heap, the foreign cache's flushes, the remote-free
 * protocol, the hand-off of blocks freed by other threads into a full slab
 * (the heap's delayed list), and giving back the pages that are wholly free
 * inside slabs still in use.
 *
 * Pages inside slabs in use. A program that frees most of its blocks at
 * random leaves slabs partly used, none empty, yet many pages with no block
 * out. The owner gives those pages back (_hak_slab_purge_pages): their
 * blocks leave the free list and the page's bit is set in `purged`; once
 * the slab has carved all else, they are carved again, from the zero pages
 * the OS gives back. The heap does it before it takes another slab, once
 * it has grown past its size at the last time (heap_purge_pages_if_due),
 * and in malloc_trim; the pool does it for
 * abandoned slabs (superslab.c).
 *
 * Tails. A unit's pages stay resident when its slab empties into a spare
 * slot or the pool, and the next slab on it, of any class, carves from its
 * start again: past what it carves, the pages its unit's earlier use wrote
 * (`touched`) are its tail, resident and holding no block. Thread churn
 * kept more of them than it had blocks (4 threads a round, 300 blocks
 * each: a peak RSS of 26-35 MiB, 15-17 MiB with the tails trimmed). They
 * go back with the pages above, at malloc_trim, and at the thread's exit
 * once they add up to TAIL_TRIM_PAGES (_hak_heap_trim_tails). `touched`
 * belongs to the unit: carving raises it, a run (large.c) sets it whole, a
 * unit the pool gives back whole (or never wrote) starts at 0.
 *
 * Spare slabs. A slab that empties goes into one of its heap's
 * HAK_HEAP_SPARE spare slots, and only when all are taken back to the pool.
 * Any class of the heap takes a spare before asking the pool, so memory
 * moves between the heap's classes without the pool's lock, and warm pages
 * are used again before fresh ones. A spare is in the pool's state (no
 * owner, block size 0), so a stray free into it is refused as in a pool
 * slab. A thread that goes idle would keep its spares for ever, so the purge
 * thread takes back those of a heap that parked none for a while
 * (_hak_heap_sweep_spares); a slot changes hands only by an atomic exchange,
 * so each spare goes to exactly one of the two.
 *
 * The foreign cache. A block a thread frees from another heap's slab is not
 * sent back at once: it goes onto the freeing heap's foreign list of its
 * class (no atomic; the push is inline in free.c), which becomes what the
 * malloc fast path pops (heap->cur), so the heap's next mallocs of the class
 * take these blocks first, while they are warm; once the list is empty the
 * slow path turns back to the slab. The block stays counted in its slab's
 * `used` all along, so the slab cannot be emptied under it. A list longer
 * than _hak_class_foreign_max[cls] (about 2 KiB of blocks) is flushed back
 * to the slabs; so is every list once HAK_FOREIGN_PERIOD blocks were pushed
 * onto it since its last flush: otherwise blocks that one thread allocated
 * and another keeps freeing and reusing (a worker recycling what the main
 * thread built) would stay foreign for ever, each free of them taking the
 * foreign branch; sending the few on the list home now and then lets them
 * settle with the slabs of the thread that uses them. Thread exit and
 * malloc_trim flush every list. The secure build has no foreign cache.
 *
 * Remote frees. A flush pushes each run of blocks from one slab onto the
 * slab's remote list with one CAS (a thread with no heap yet pushes its
 * frees there directly); the owner takes the whole list with one exchange
 * when it looks at the slab again. A slab the owner put on its full list is
 * not looked at, so the owner marks it NOTIFY (only while its remote list is
 * empty): the first remote push that sees the mark clears it and hands its
 * blocks to the owner heap's delayed list instead. Draining that list brings
 * the slab back to the partial list. A slab its owner's frees bring back
 * keeps the mark if no other thread has freed into it yet (slab_leave_full),
 * so that slabs of few big blocks cycle between the lists without an
 * atomic operation. Blocks being handed over are still
 * counted in `used`, so the slab cannot be emptied and reused while the
 * hand-over is in flight; heaps are never unmapped, so a hand-over to a heap
 * whose thread just exited is safe too (the blocks are forwarded when the
 * heap is reused or swept).
 */
#include <errno.h>

#include "internal.h"

/* Giving back pages inside slabs in use: looked for at slabs with at least
 * this much free (see heap_purge_pages_if_due for when a heap looks). */
#define PAGES_PASS_MIN_FREE (4 * HAK_PAGE)

/* The slab of every class of an uninitialised heap: never has a block, so
 * the fast path falls through to the slow path. */
hak_slab _hak_slab_empty;

/* Fresh blocks are carved about a page at a time, so memory a slab never
 * serves is never touched. */
#define CARVE_BYTES 4096
/* at least this many per batch: the secure build shuffles each batch */
#define CARVE_MIN_BLOCKS (HAK_SECURE ? 16 : 1)

void _hak_slab_init(hak_slab *s, hak_heap *heap, unsigned cls)
{
    s->free = NULL;
    s->used = 0;
    s->bump = 0;
    s->block_size = _hak_class_size[cls];
    s->capacity = (uint16_t)(hak_unit_bytes(s->unit) / s->block_size);
    s->cls = (uint8_t)cls;
    s->start_off = (uint32_t)hak_unit_offset(s->unit);
    s->to_cache = 0;
    s->remote_seen = 0;
    if (s->touched) heap->tails++;   /* touched is the unit's: it stays */
    s->purged = 0;
    s->purged_blocks = 0;
    s->looked_free = 0;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->remote_a, HAK_REMOTE_NORMAL, memory_order_relaxed);
    atomic_store_explicit(&s->owner_a, heap->owner_tag, memory_order_release);
}

/* An empty slab leaves service: no owner, no class, no blocks, the state of
 * a slab in the pool or in a heap's spare slot, where a stray free into it
 * is refused. */
void _hak_slab_retire(hak_slab *s)
{
    s->block_size = 0;
    s->free = NULL;
    atomic_store_explicit(&s->owner_a, NULL, memory_order_relaxed);
}

/* ---- lists ------------------------------------------------------------ */

void _hak_slab_list_push(hak_slab_list *l, hak_slab *s)
{
    s->prev = NULL;
    s->next = l->first;
    if (l->first) l->first->prev = s;
    l->first = s;
}

void _hak_slab_list_remove(hak_slab_list *l, hak_slab *s)
{
    if (s->prev) s->prev->next = s->next;
    else l->first = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* ---- filling a slab's free list ---------------------------------------- */

#if HAK_SECURE
/* The order blocks of a fresh batch are handed out in: shuffled. */
static void carve_order(uint16_t *order, uint32_t n)
{
    static HAK_TLS uint64_t rng;
    if (rng == 0) rng = _hak_secret ^ (uintptr_t)&rng;
    for (uint32_t i = 0; i < n; i++) order[i] = (uint16_t)i;
    for (uint32_t i = n - 1; i > 0; i--) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        uint32_t j = (uint32_t)(rng % (i + 1));
        uint16_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}
#endif

/* Pages [first, last] of a slab as bits of hak_slab.purged. */
static inline uint32_t page_bits(size_t first, size_t last)
{
    return (uint32_t)((((uint64_t)2 << last) - 1) & ~(((uint64_t)1 << first) - 1));
}

/* The pages block i of s lies on. */
static inline uint32_t block_pages(const hak_slab *s, size_t i)
{
    size_t off = i * s->block_size;
    return page_bits(off / HAK_PAGE, (off + s->block_size - 1) / HAK_PAGE);
}

/* Pages of s from the start of its blocks that hold a carved block. */
static inline uint32_t carved_pages(const hak_slab *s)
{
    return (uint32_t)(hak_align_up((size_t)s->bump * s->block_size, HAK_PAGE) / HAK_PAGE);
}

/* Every block on a purged page goes back on the free list (it was free and
 * on no list), fresh as a carved one: the OS gives zero pages back. */
static bool slab_recarve(hak_slab *s)
{
    uint32_t purged = s->purged;
    if (purged == 0) return false;
    s->purged = 0;
    s->purged_blocks = 0;
    s->looked_free = 0;
    for (size_t i = s->bump; i-- > 0;) {
        if (!(block_pages(s, i) & purged)) continue;
        hak_block *b = (hak_block *)(hak_slab_start(s) + i * s->block_size);
        hak_dbg_fresh(s, b);
        hak_link_set(b, s->free);
        s->free = b;
    }
    return true;
}

/* Carves the next blocks of s, about a page's worth: returns the first
 * (counted in `used`, as a pop counts it) and pushes the rest onto the free
 * list, so that a class whose blocks are a page or larger takes its block
 * without a trip through the list. NULL when s has nothing left to carve. */
static void *slab_carve(hak_slab *s)
{
    uint32_t left = s->capacity - s->bump;
    if (left == 0) return slab_recarve(s) ? hak_slab_pop(s) : NULL;
    uint32_t n = s->block_size >= CARVE_BYTES ? 1 : CARVE_BYTES / s->block_size;
    if (n < CARVE_MIN_BLOCKS) n = CARVE_MIN_BLOCKS;
    if (n > left) n = left;
    char *base = hak_slab_start(s) + (size_t)s->bump * s->block_size;
    s->bump = (uint16_t)(s->bump + n);
    uint32_t pages = carved_pages(s);
    if (pages > s->touched) s->touched = (uint8_t)pages;
#if HAK_SECURE
    uint16_t order[CARVE_BYTES / HAK_ALIGN];
    carve_order(order, n);
#define CARVED(i) (base + (size_t)order[i] * s->block_size)
#else
#define CARVED(i) (base + (size_t)(i) * s->block_size)
#endif
    /* push in reverse, so the list pops in carving order after the first */
    for (uint32_t i = n; i-- > 1;) {
        hak_block *b = (hak_block *)CARVED(i);
        hak_dbg_fresh(s, b);
        hak_link_set(b, s->free);
        s->free = b;
    }
    hak_block *first = (hak_block *)CARVED(0);
#undef CARVED
    hak_dbg_fresh(s, first);
    s->used++;
    hak_dbg_alloc(s, first);
    return first;
}

static inline hak_block *remote_head(uintptr_t v)
{
    return (hak_block *)(v & HAK_REMOTE_HEAD_MASK);
}

/* Whether other threads freed blocks into s since it last collected them
 * (the refill's test, inline: most slabs it looks at have none). */
static inline bool slab_has_remote(const hak_slab *s)
{
    return (atomic_load_explicit(&s->remote_a, memory_order_relaxed) & HAK_REMOTE_HEAD_MASK) != 0;
}

/* Take every block other threads freed into s onto its local list. Called by
 * the owner, or under the pool lock for an abandoned slab. An empty local
 * list becomes the chain itself, unwalked, where remote and local links are
 * the same plain pointers (not the secure build; the debug build walks it to
 * check the count). */
void _hak_slab_collect_remote(hak_slab *s)
{
    uintptr_t v = atomic_load_explicit(&s->remote_a, memory_order_relaxed);
    if ((v & HAK_REMOTE_HEAD_MASK) == 0) return;
    hak_assert((v & HAK_REMOTE_STATE_MASK) == HAK_REMOTE_NORMAL);
    v = atomic_exchange_explicit(&s->remote_a, HAK_REMOTE_NORMAL, memory_order_acquire);
    hak_block *b = remote_head(v);
    uint32_t n = (uint32_t)(v >> HAK_REMOTE_COUNT_SHIFT);
    hak_assert(n > 0 && s->used >= n);
    s->used -= n;
    s->remote_seen = 1;
    if (!HAK_SECURE && !HAK_DEBUG && s->free == NULL) {
        s->free = b;
        return;
    }
    uint32_t walked = 0;
    while (b) {
        hak_block *next = b->next;
        hak_link_set(b, s->free);
        s->free = b;
        b = next;
        walked++;
    }
    hak_assert(walked == n);
    (void)walked;
}

/* Mark s NOTIFY before it goes on the full list; fails if remote frees
 * arrived meanwhile (then the slab is not full after all). A slab that left
 * the full list through its owner's frees kept the mark (slab_leave_full),
 * so one that keeps filling and draining without other threads' frees
 * takes no atomic operation here after the first time. */
static bool slab_mark_full(hak_slab *s)
{
    uintptr_t v = atomic_load_explicit(&s->remote_a, memory_order_relaxed);
    if (v == HAK_REMOTE_NOTIFY) return true;
    while ((v & HAK_REMOTE_HEAD_MASK) == 0) {
        if (atomic_compare_exchange_weak_explicit(&s->remote_a, &v, HAK_REMOTE_NOTIFY,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return true;
    }
    return false;
}

/* The next remote free into s goes onto its remote list again, not the
 * owner's delayed list. */
void _hak_slab_clear_notify(hak_slab *s)
{
    uintptr_t v = atomic_load_explicit(&s->remote_a, memory_order_relaxed);
    while ((v & HAK_REMOTE_STATE_MASK) != HAK_REMOTE_NORMAL) {
        uintptr_t nv = v & ~(uintptr_t)HAK_REMOTE_STATE_MASK;
        if (atomic_compare_exchange_weak_explicit(&s->remote_a, &v, nv,
                                                  memory_order_acq_rel, memory_order_relaxed))
            break;
    }
}

/* s leaves the full list. Its NOTIFY mark, if no remote free cleared it
 * yet, is cleared (a CAS) only if other threads have freed into s before:
 * a slab only its owner frees into keeps it, so that a slab of few big
 * blocks, which its owner's frees move between the lists all the time,
 * takes no atomic operation there (slab_mark_full); the first remote free
 * into it then hands its blocks to the delayed list, as into a full slab,
 * and the owner drains that list at its next refill. */
static void slab_leave_full(hak_heap *heap, hak_slab *s)
{
    _hak_slab_list_remove(&heap->full[s->cls], s);
    s->used &= ~HAK_USED_FULL;
    if (s->remote_seen) _hak_slab_clear_notify(s);
    _hak_slab_list_push(&heap->partial[s->cls], s);
}

/* ---- spare slabs --------------------------------------------------------- */

/* Takes the spare in slot i, unless another thread took it first. */
static hak_slab *spare_claim(hak_heap *heap, unsigned i)
{
    if (atomic_load_explicit(&heap->spare[i], memory_order_relaxed) == NULL) return NULL;
    return atomic_exchange_explicit(&heap->spare[i], NULL, memory_order_acquire);
}

static hak_slab *heap_take_spare(hak_heap *heap)
{
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++) {
        hak_slab *s = spare_claim(heap, i);
        if (s) return s;
    }
    return NULL;
}

/* ---- the heap's refill ------------------------------------------------- */

/* Before a heap takes another slab from the pool, the pages that are wholly
 * free inside its other slabs go back to the OS (_hak_heap_purge_pages) once
 * the heap has grown past its size at the last pass (pages_held: slabs
 * taken from the pool less those it gave back) by PAGES_PASS_SLABS, or by
 * one for every PAGES_PASS_WALK partial slabs that pass walked, so that the
 * walks cost each slab taken a bounded number of descriptor reads. Growth
 * past a mark, not takes: a heap whose slabs keep emptying into the pool
 * and coming back (blocks of 8-32 KiB, a few per slab) would otherwise give
 * back the free pages of its partial slabs every few slabs and fault them
 * in again (bench_mid_large_mt ran at a third of its speed). The trigger
 * counts the heap's own work, not time: the same program gives back the
 * same pages at the same points, however fast it runs. */
#define PAGES_PASS_SLABS 8      /* 1 MiB */
#define PAGES_PASS_WALK  8
static void heap_purge_pages_if_due(hak_heap *heap)
{
    if (heap->pages_held < heap->pages_mark) return;
    uint32_t walked = 0;
    _hak_heap_purge_pages(heap, false, &walked);
    uint32_t step = walked / PAGES_PASS_WALK > PAGES_PASS_SLABS ? walked / PAGES_PASS_WALK : PAGES_PASS_SLABS;
    heap->pages_mark = heap->pages_held + step;
}

/* A block of class cls for heap, after its current slab ran dry: the first
 * partial slab with a free or remote-freed block; else the first with a
 * block to carve; slabs found with neither move to the full list. Then a
 * slab from the pool. NULL only when out of memory. */
void *_hak_heap_refill_alloc(hak_heap *heap, unsigned cls)
{
    if (atomic_load_explicit(&heap->delayed_a, memory_order_relaxed) != NULL)
        _hak_heap_drain_delayed(heap);
    for (;;) {
        /* blocks the slabs already have first: carving touches new pages */
        for (hak_slab *s = heap->partial[cls].first; s; s = s->next) {
            if (s->free == NULL && slab_has_remote(s)) _hak_slab_collect_remote(s);
            if (s->free) {
                hak_heap_set_active(heap, cls, s);
                return hak_slab_pop(s);
            }
        }
        hak_slab *s = heap->partial[cls].first;
        while (s) {
            hak_slab *next = s->next;
            if (s->free == NULL && slab_has_remote(s)) _hak_slab_collect_remote(s);
            void *p = s->free ? hak_slab_pop(s) : slab_carve(s);
            if (p) {
                hak_heap_set_active(heap, cls, s);
                return p;
            }
            if (slab_mark_full(s)) {
                _hak_slab_list_remove(&heap->partial[cls], s);
                _hak_slab_list_push(&heap->full[cls], s);
                s->used |= HAK_USED_FULL;
            }
            else {
                continue;   /* remote frees just arrived: look again */
            }
            s = next;
        }
        hak_heap_set_active(heap, cls, &_hak_slab_empty);
        heap_purge_pages_if_due(heap);
        s = heap_take_spare(heap);
        if (s) {
            _hak_slab_init(s, heap, cls);
        } else {
            s = _hak_pool_take_slab(heap, cls);
            if (s == NULL) return NULL;
            heap->pages_held++;
        }
        _hak_slab_list_push(&heap->partial[cls], s);
    }
}

/* An empty slab leaves its class: into a free spare slot, or back to the
 * pool when the heap has enough spares. Only the owner fills a slot, so one
 * it sees empty stays empty until it fills it. */
static void heap_release_slab(hak_heap *heap, hak_slab *s)
{
    _hak_slab_list_remove(&heap->partial[s->cls], s);
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++) {
        if (atomic_load_explicit(&heap->spare[i], memory_order_relaxed) == NULL) {
            _hak_slab_retire(s);
            atomic_store_explicit(&heap->spare_parks, heap->spare_parks + 1, memory_order_relaxed);
            atomic_store_explicit(&heap->spare[i], s, memory_order_release);
            _hak_purge_watch_spares();
            return;
        }
    }
    if (heap->pages_held) heap->pages_held--;
    int saved = errno;
    _hak_pool_return_slab(s);
    errno = saved;
}

/* After a local free: the slab became empty, or it was on the full list. */
void _hak_slab_free_slow(hak_heap *heap, hak_slab *s)
{
    if (hak_slab_in_full(s)) slab_leave_full(heap, s);
    if (s->used == 0 && heap->active[s->cls] != s) heap_release_slab(heap, s);
}

/* The heap's spare slabs go back to the pool: thread exit and malloc_trim,
 * from the owner; a purge pass for a heap gone idle. Returns their
 * bytes. */
size_t _hak_heap_return_spares(hak_heap *heap)
{
    size_t bytes = 0;
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++) {
        hak_slab *s = spare_claim(heap, i);
        if (s == NULL) continue;
        bytes += hak_unit_bytes(s->unit);
        _hak_pool_return_slab(s);
    }
    return bytes;
}

/* ---- free pages inside slabs in use -------------------------------------- */

/* Give back to the OS every page of s whose blocks are all free, and take
 * those blocks off the free list: they come back, zeroed by the OS, when
 * the slab has carved everything else (slab_recarve). For a slab that is
 * in use and partly free, such as the slabs a program leaves after freeing
 * most of what it built; whole free slabs go back through the pool. Only
 * the owner may call it, since no one else touches the free list, or the
 * pool for an abandoned slab it took off its list. Returns the bytes given
 * back. */
static size_t slab_purge_pages(hak_slab *s)
{
    _hak_slab_collect_remote(s);
    if (s->free == NULL || hak_slab_used(s) == 0) return 0;   /* an empty slab goes back whole */
    uint64_t free_bits[HAK_MAX_SLAB_BLOCKS / 64] = { 0 };
    for (hak_block *b = s->free; b; b = hak_link_get(s, b)) {
        size_t i = hak_block_index(s, b);
        free_bits[i / 64] |= (uint64_t)1 << (i % 64);
    }
    /* A page can go if every block on it is free, and it holds no block
     * still to carve (carving would then not know which blocks were off the
     * list). */
    size_t carved = (size_t)s->bump * s->block_size;
    if (s->bump == s->capacity) carved = hak_align_up(carved, HAK_PAGE);
    uint32_t pages = 0;
    for (size_t pg = 0; (pg + 1) * HAK_PAGE <= carved; pg++) {
        if (s->purged & (1u << pg)) continue;
        size_t first = pg * HAK_PAGE / s->block_size;
        size_t last = ((pg + 1) * HAK_PAGE - 1) / s->block_size;
        if (last >= s->bump) last = (size_t)s->bump - 1;
        bool all_free = true;
        for (size_t i = first; i <= last && all_free; i++)
            all_free = (free_bits[i / 64] >> (i % 64)) & 1;
        if (all_free) pages |= 1u << pg;
    }
    if (pages == 0) return 0;
    /* the free list keeps its order, without the blocks on those pages (its
     * links are read before the pages go) */
    hak_block *head = NULL, *tail = NULL;
    uint32_t off = 0;
    for (hak_block *b = s->free; b;) {
        hak_block *next = hak_link_get(s, b);
        if (!(block_pages(s, hak_block_index(s, b)) & pages)) {
            if (tail) hak_link_set(tail, b);
            else head = b;
            tail = b;
        } else {
            off++;
        }
        b = next;
    }
    if (tail) hak_link_set(tail, NULL);
    s->free = head;
    s->purged_blocks = (uint16_t)(s->purged_blocks + off);
    /* each run of pages goes back; one the OS refuses stays resident, its
     * blocks still off the list until the slab carves them again */
    size_t bytes = 0;
    for (uint32_t left = pages; left;) {
        unsigned first = (unsigned)__builtin_ctz(left);
        unsigned end = first + (unsigned)__builtin_ctzll(~((uint64_t)left >> first));
        left &= ~page_bits(first, end - 1);
        if (_hak_os_decommit(hak_slab_start(s) + (size_t)first * HAK_PAGE, (size_t)(end - first) * HAK_PAGE) == 0)
            bytes += (size_t)(end - first) * HAK_PAGE;
    }
    s->purged |= pages;
    if (bytes) {
        _hak_stats_purged(bytes);
        _hak_pool_pages_purged(hak_ss_of_slab(s));
    }
    return bytes;
}

/* The tail of s: pages past its carved blocks that its unit's earlier use
 * left resident (`touched`), which this slab may never carve. They go back
 * to the OS. Returns their bytes. */
static size_t slab_trim_tail(hak_slab *s)
{
    uint32_t carved = carved_pages(s);
    if (s->touched <= carved) return 0;
    size_t bytes = (size_t)(s->touched - carved) * HAK_PAGE;
    char *from = (char *)hak_ss_of_slab(s) + hak_unit_offset(s->unit) + (size_t)carved * HAK_PAGE;
    if (_hak_os_decommit(from, bytes) != 0) return 0;   /* still resident: touched stays */
    s->touched = (uint8_t)carved;
    _hak_stats_purged(bytes);
    _hak_pool_pages_purged(hak_ss_of_slab(s));
    return bytes;
}

static inline bool slab_has_tail(const hak_slab *s)
{
    return s->touched > carved_pages(s);
}

/* A heap's tails go back at its thread's exit once they add up to this
 * many pages (512 KiB). Below it they stay: a unit that empties again
 * carries its resident pages to the next class that takes it, which saves
 * that class the page faults (with no threshold, thread churn faulted
 * twice as many pages in). */
#define TAIL_TRIM_PAGES 128

/* The tails of the slabs heap holds go back to the OS, if a slab was set
 * up on a resident unit since the last time: with `all` (malloc_trim)
 * every one, else (its thread's exit) only if they add up to
 * TAIL_TRIM_PAGES. Returns the bytes given back. */
size_t _hak_heap_trim_tails(hak_heap *heap, bool all)
{
    if (heap->tails == 0) return 0;
    if (!all) {
        uint32_t pages = 0;
        for (unsigned c = 0; c < HAK_CLASSES; c++)
            for (hak_slab *s = heap->partial[c].first; s; s = s->next)
                if (slab_has_tail(s)) pages += s->touched - carved_pages(s);
        if (pages < TAIL_TRIM_PAGES) return 0;
    }
    heap->tails = 0;
    size_t bytes = 0;
    int saved = errno;
    for (unsigned c = 0; c < HAK_CLASSES; c++)
        for (hak_slab *s = heap->partial[c].first; s; s = s->next) bytes += slab_trim_tail(s);
    errno = saved;
    return bytes;
}

size_t _hak_slab_purge_pages(hak_slab *s)
{
    size_t bytes = slab_trim_tail(s) + slab_purge_pages(s);
    s->looked_free = (uint16_t)(s->bump - hak_slab_used(s) - s->purged_blocks);
    return bytes;
}

/* Whether s is worth a look for pages to give back: if it has a tail; with
 * `all` (malloc_trim) if it has a page's worth of free blocks; otherwise if it has
 * PAGES_PASS_MIN_FREE bytes of them, and a page's worth more than when it
 * was last looked at, so that a slab whose free blocks are scattered is not
 * walked again and again for nothing. */
bool _hak_slab_pages_worth(const hak_slab *s, bool all)
{
    if (slab_has_tail(s)) return true;
    uint32_t free_blocks = s->bump - hak_slab_used(s) - s->purged_blocks;
    uint32_t page_blocks = HAK_PAGE / s->block_size + 1;
    if (all) return free_blocks >= page_blocks;
    return (size_t)free_blocks * s->block_size >= PAGES_PASS_MIN_FREE &&
           free_blocks >= (uint32_t)s->looked_free + page_blocks;
}

/* Pages free inside the heap's slabs in use go back to the OS, from the
 * partial slabs worth a look other than the ones their classes allocate
 * from (slabs on the full list have no free block). Returns the bytes given
 * back. */
size_t _hak_heap_purge_pages(hak_heap *heap, bool all, uint32_t *walked)
{
    size_t bytes = 0;
    uint32_t n = 0;
    int saved = errno;
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        for (hak_slab *s = heap->partial[c].first; s; s = s->next, n++)
            if (s != heap->active[c] && _hak_slab_pages_worth(s, all)) bytes += _hak_slab_purge_pages(s);
    }
    errno = saved;
    if (walked) *walked = n;
    return bytes;
}

/* ---- remote frees ------------------------------------------------------- */

static void heap_push_delayed(hak_heap *heap, hak_block *first, hak_block *last)
{
    hak_block *head = atomic_load_explicit(&heap->delayed_a, memory_order_relaxed);
    do {
        last->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&heap->delayed_a, &head, first,
                                                    memory_order_release, memory_order_relaxed));
}

/* A thread that does not own s frees the chain first..last of its n blocks
 * (linked by plain next pointers). No lock; one CAS for the chain. */
void _hak_slab_free_remote(hak_slab *s, hak_block *first, hak_block *last, uint32_t n)
{
    hak_assert(((uintptr_t)first & ~HAK_REMOTE_HEAD_MASK) == 0 && n > 0);
    uintptr_t v = atomic_load_explicit(&s->remote_a, memory_order_relaxed);
    for (;;) {
        if ((v & HAK_REMOTE_STATE_MASK) == HAK_REMOTE_NOTIFY) {
            /* s sits on its owner's full list: wake the owner with these blocks */
            if (!atomic_compare_exchange_weak_explicit(&s->remote_a, &v, HAK_REMOTE_NORMAL,
                                                       memory_order_acq_rel, memory_order_relaxed))
                continue;
            hak_heap *owner = atomic_load_explicit(&s->owner_a, memory_order_acquire);
            if (owner) {
                heap_push_delayed(hak_owner_heap(owner), first, last);
                return;
            }
            v = atomic_load_explicit(&s->remote_a, memory_order_relaxed);
            continue;   /* abandoned meanwhile: the slab's own list will do */
        }
        last->next = remote_head(v);
        uintptr_t nv = (v & ~HAK_REMOTE_HEAD_MASK) + ((uintptr_t)n << HAK_REMOTE_COUNT_SHIFT)
                     + (uintptr_t)first;
        if (atomic_compare_exchange_weak_explicit(&s->remote_a, &v, nv,
                                                  memory_order_release, memory_order_relaxed))
            return;
    }
}

/* ---- the foreign cache -------------------------------------------------- */

/* The cache of class cls is full: its blocks go back to their slabs. A
 * block of one of the heap's own slabs (its owner freed it while the cache
 * was what malloc popped, free.c) goes onto its slab's list; the others go
 * to their slabs' remote lists, one chain and one CAS per run of blocks
 * from the same slab (a slab is one unit, so "same slab" is "same
 * unit"). */
void _hak_heap_flush_foreign(hak_heap *heap, unsigned cls)
{
    hak_block *b = heap->foreign[cls].free;
    heap->foreign[cls].free = NULL;
    heap->foreign[cls].used = 0;
    heap->foreign[cls].pushed = 0;
    while (b) {
        hak_block *first = b, *last = b;
        uintptr_t unit = (uintptr_t)b >> HAK_UNIT_SHIFT;
        hak_slab *s = hak_slab_of(hak_ss_of(first), first);
        b = b->next;
        if (atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap->owner_tag) {
            hak_slab_push_local(heap, s, first);
            continue;
        }
        uint32_t n = 1;
        while (b && (uintptr_t)b >> HAK_UNIT_SHIFT == unit) {
            last = b;
            b = b->next;
            n++;
        }
        _hak_slab_free_remote(s, first, last, n);
    }
}

/* Thread exit, malloc_trim: every cached block goes back, and no slab stays
 * to_cache. */
void _hak_heap_flush_all_foreign(hak_heap *heap)
{
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        if (heap->cur[c] == &heap->foreign[c]) hak_heap_set_active(heap, c, heap->active[c]);
        if (heap->foreign[c].free) _hak_heap_flush_foreign(heap, c);
    }
}

/* Free the blocks other threads handed to this heap. A block whose slab this
 * heap no longer owns (possible only for a heap swept after its thread
 * exited) takes the ordinary free path. */
void _hak_heap_drain_delayed(hak_heap *heap)
{
    if (atomic_load_explicit(&heap->delayed_a, memory_order_relaxed) == NULL) return;
    hak_block *b = atomic_exchange_explicit(&heap->delayed_a, NULL, memory_order_acquire);
    while (b) {
        hak_block *next = b->next;
        hak_slab *s = hak_slab_of((hak_superslab *)hak_pagemap_get(b), b);
        if (atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap->owner_tag) {
            s->remote_seen = 1;
            hak_slab_push_local(heap, s, b);
        } else
            _hak_slab_free_remote(s, b, b, 1);
        b = next;
    }
}
