/* free.c: where a freed pointer goes.
 *
 * A pointer is in a SuperSlab (one byte of _hak_ss_chunks says so), in a
 * large block, or not in hakmem's memory at all (the owned-range map tells
 * those two apart). A block of a slab the calling thread
 * owns is pushed onto the slab's local list (the fast path: no lock, no
 * atomic read-modify-write); a block of another thread's slab goes into the
 * calling thread's foreign cache, also without an atomic, and from there
 * back to its slab's remote list when the cache is flushed (slab.c); a large
 * block (a run of units in a SuperSlab, or its own mapping) goes back to
 * the pool or the cache of mappings (large.c). A pointer
 * hakmem does not own is never dropped: a block glibc handed out goes back to
 * glibc, and anything else stops the process with a message (diag.c).
 */
#include <errno.h>

#include "internal.h"

/* A block of another heap's slab goes into this heap's foreign cache of its
 * class, which the next mallocs of the class pop first (slab.c). */
static inline void push_foreign(hak_heap *heap, hak_slab *s, void *p, bool point_cur)
{
    hak_dbg_route("foreign cache", p);
    unsigned cls = s->cls;
    hak_freelist *f = &heap->foreign[cls];
    hak_block *b = p;
    if (unlikely(b == f->free)) _hak_fatal_block("free(): double free detected", p, s->block_size);
    b->next = f->free;
    f->free = b;
    if (point_cur && heap->cur[cls] != f) {
        /* the cache becomes what malloc pops: the owner's frees into the
         * active slab join it (free_into_cache) until hak_heap_set_active */
        heap->cur[cls] = f;
        hak_slab *a = heap->active[cls];
        if (a != &_hak_slab_empty) a->to_cache = 1;
    }
    uint32_t pushed = ++f->pushed;
    if (unlikely((pushed - f->used > _hak_class_foreign_max[cls]) | (pushed > HAK_FOREIGN_PERIOD)))
        _hak_heap_flush_foreign(heap, cls);
}

/* The rest of the SuperSlab frees: statistics mode (every free comes here,
 * see stats.c), a unit that holds no slab (a large block's run, or a bad
 * pointer), and threads with no heap yet, which free straight to the
 * slab's remote list. */
static HAK_NOINLINE void free_remote(hak_slab *s, void *p)
{
    if (unlikely(s->block_size == 0)) {
        _hak_run_free(s, p);
        return;
    }
    hak_heap *heap = _hak_tl_heap;
    if (_hak_stats_on) {
        _hak_stats_count_free(heap, s->cls);
        if (!heap->is_empty_heap && atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap->owner_tag) {
            hak_dbg_route("local", p);
            hak_slab_push_local(heap, s, p);
            return;
        }
    }
    if (HAK_FOREIGN_CACHE && !heap->is_empty_heap) {
        push_foreign(heap, s, p, !_hak_stats_on);   /* statistics: every malloc counts */
        return;
    }
    hak_dbg_route("remote", p);
    _hak_slab_free_remote(s, p, p, 1);
}

/* NULL, large blocks, and pointers hakmem does not own. */
static HAK_NOINLINE void free_other(void *p)
{
    if (p == NULL) return;
    int saved = errno;
    uintptr_t v = hak_pagemap_get(p);
    if (v & HAK_MAP_LARGE) {
        hak_large *h = (hak_large *)(v & ~HAK_MAP_LARGE);
        if (!_hak_large_valid(h, p)) _hak_fatal_ptr("free(): invalid pointer", p);
        hak_dbg_route("large", p);
        hak_dbg_count(-1);
        _hak_large_free(h, p);
    } else {
        hak_dbg_route("foreign", p);
        _hak_glibc_free(p);
    }
    errno = saved;
}

/* p, a block of a slab this thread owns, carries the free mark: a double
 * free if p is among the first SUSPECT_SCAN blocks of the slab's local list,
 * the most recent frees (glibc's tcache finds one in its bin of at most 7).
 * Otherwise p is a live block that happens to hold the mark (its first word
 * was copied from a free block, or not written since its last free), and
 * its free goes on: a short scan keeps that cheap. */
#define SUSPECT_SCAN 32

static void scan_for(hak_slab *s, hak_freelist *f, void *p)
{
    hak_block *b = f->free;
    for (unsigned n = 0; b && n < SUSPECT_SCAN; n++, b = hak_link_get((hak_slab *)f, b))
        if (b == p) _hak_fatal_block("free(): double free detected", p, s->block_size);
}

/* The owner frees p into its heap's active slab of the class while malloc
 * pops from the heap's foreign cache of the class (another heap's blocks
 * came; the slab is marked to_cache meanwhile): p goes onto that cache
 * too, so the class keeps one last-in first-out order and the next malloc
 * gets the block freed last, still in this core's cache, whichever heap's
 * slab it is from. With two lists, the owner's frees waited under the
 * foreign blocks, and other threads often took their lines meanwhile
 * (larson with 1 and 2 threads: 10-25% slower). Only into the lower half
 * of the cache's bound: the foreign blocks sink under the owner's, and a
 * cache kept full by them sends many more home (DESIGN.md). p stays
 * counted in its slab's `used`, as a foreign block does, and carries the
 * free mark, so that a double free of it is found there (free_marked).
 * The flush sends it back to its slab's own list (slab.c). */
static HAK_NOINLINE void free_into_cache(hak_heap *heap, hak_slab *s, void *p)
{
    hak_freelist *f = &heap->foreign[s->cls];
    if (f->pushed - f->used >= _hak_class_foreign_max[s->cls] / 2u) {
        hak_slab_push_local(heap, s, p);   /* the upper half is for foreign blocks */
        return;
    }
    hak_mark_free(p);
    push_foreign(heap, s, p, false);
}

/* The owner's free blocks are on the slab's list or, for a while, on the
 * heap's foreign cache (free_into_cache): the first of both are looked at. */
static HAK_COLD void free_marked(hak_heap *heap, hak_slab *s, void *p)
{
    scan_for(s, &s->fl, p);
    if (HAK_FOREIGN_CACHE) scan_for(s, &heap->foreign[s->cls], p);
    if (s->to_cache) free_into_cache(heap, s, p);
    else hak_slab_push_local(heap, s, p);
}

/* Fast-path budget: 31 instructions from the entry to the first ret, of
 * which 30 run (the SuperSlab test 8, slab lookup 6, owner compare 5 with
 * the TLS load, free-mark test 2, to_cache test 2, push and mark 4, count
 * and its test 2, ret; gcc places the jump to free_other among them);
 * `make bench-instr` counts them in libhakmem.so's free and fails above
 * this figure. (Issue 14's target is 25: the release build's double-free
 * mark costs 3, the SuperSlab byte's atomic load 1, the to_cache test 2.)
 * About as many for a block of another thread's slab (the foreign cache,
 * whose double-free check is a compare with the list's head), so that
 * blocks which keep circulating between threads cost no more than a
 * thread's own. Only the local path reads the block (the mark): a block
 * freed by another thread is often cold in this core's cache, and a load
 * of it would stall the free where a store does not. */
void _hak_free(void *p)
{
    if (likely(hak_in_ss(p))) {
        hak_slab *s = hak_slab_of(hak_ss_of(p), p);
        hak_dbg_free(s, p);
        hak_heap *heap = _hak_tl_heap;
        if (likely(atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap)) {
            hak_dbg_route("local", p);
            if (unlikely(hak_marked_free(p))) {
                free_marked(heap, s, p);   /* a tail call: the fast path spills nothing */
                return;
            }
            if (unlikely(s->to_cache)) {
                free_into_cache(heap, s, p);
                return;
            }
            hak_slab_push_local(heap, s, p);
            return;
        }
        if (HAK_FOREIGN_CACHE && likely(heap->takes_foreign & (s->block_size != 0))) {
            push_foreign(heap, s, p, true);   /* takes_foreign: statistics are off */
            return;
        }
        free_remote(s, p);
        return;
    }
    free_other(p);
}

HAK_PUBLIC_ALIAS(hak_free, _hak_free);
HAK_STD_ALIAS(free, _hak_free);
HAK_STD_ALIAS(cfree, _hak_free);
HAK_STD_ALIAS(__libc_free, _hak_free);
