/* free.c: where a freed pointer goes.
 *
 * The owned-range map says whose memory a pointer is in: a SuperSlab, a
 * large block, or not hakmem's at all. A block of a slab the calling thread
 * owns is pushed onto the slab's local list (the fast path: no lock, no
 * atomic read-modify-write); a block of another thread's slab goes onto that
 * slab's remote list (slab.c); a large block is unmapped (large.c). A pointer
 * hakmem does not own is never dropped: a block glibc handed out goes back to
 * glibc, and anything else stops the process with a message (diag.c).
 */
#include <errno.h>

#include "internal.h"

/* Another thread's slab; or, in statistics mode, any slab (see stats.c).
 * The block goes into this thread's foreign cache (slab.c), or straight to
 * the slab's remote list for a thread with no heap yet. */
static HAK_NOINLINE void free_remote(hak_slab *s, void *p)
{
    if (unlikely(s->block_size == 0)) _hak_fatal_ptr("free(): pointer into unused memory", p);
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
        hak_dbg_route("foreign cache", p);
        unsigned cls = s->cls;
        hak_freelist *f = &heap->foreign[cls];
        hak_block *b = p;
        b->next = f->free;
        f->free = b;
        if (unlikely(++heap->foreign_pushed[cls] - f->used > _hak_class_foreign_max[cls]))
            _hak_heap_flush_foreign(heap, cls);
        else if (!_hak_stats_on)
            heap->cur[cls] = f;   /* the next mallocs of the class take these first */
        return;
    }
    hak_dbg_route("remote", p);
    _hak_slab_free_remote(s, p, p);
}

/* NULL, large blocks, and pointers hakmem does not own. */
static HAK_NOINLINE void free_other(void *p, uintptr_t v)
{
    if (p == NULL) return;
    int saved = errno;
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

/* Budget: about 40 instructions on the fast path (map lookup, slab lookup,
 * owner compare, push). */
void _hak_free(void *p)
{
    uintptr_t v = hak_pagemap_get(p);
    if (likely(v != 0 && !(v & HAK_MAP_LARGE))) {
        hak_slab *s = hak_slab_of((hak_superslab *)v, p);
        hak_dbg_free(s, p);
        hak_heap *heap = _hak_tl_heap;
        if (likely(atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap)) {
            hak_dbg_route("local", p);
            hak_slab_push_local(heap, s, p);
            return;
        }
        free_remote(s, p);
        return;
    }
    free_other(p, v);
}

HAK_PUBLIC_ALIAS(hak_free, _hak_free);
