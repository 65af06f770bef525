/* free.c: where a freed pointer goes.
 *
 * The owned-range map says whose memory a pointer is in: a SuperSlab, a
 * large block, or not hakmem's at all. A block of a slab the calling thread
 * owns is pushed onto the slab's local list (the fast path: no lock, no
 * atomic read-modify-write); a block of another thread's slab goes into the
 * calling thread's foreign cache, also without an atomic, and from there
 * back to its slab's remote list when the cache is flushed (slab.c); a large
 * block is unmapped or cached (large.c). A pointer
 * hakmem does not own is never dropped: a block glibc handed out goes back to
 * glibc, and anything else stops the process with a message (diag.c).
 */
#include <errno.h>

#include "internal.h"

/* A block of another heap's slab goes into this heap's foreign cache of its
 * class, which the next mallocs of the class pop first (slab.c). */
static inline void push_foreign(hak_heap *heap, hak_slab *s, void *p)
{
    hak_dbg_route("foreign cache", p);
    unsigned cls = s->cls;
    hak_freelist *f = &heap->foreign[cls];
    hak_block *b = p;
    b->next = f->free;
    hak_mark_free(b);
    f->free = b;
    if (!_hak_stats_on) heap->cur[cls] = f;
    uint32_t pushed = ++heap->foreign_pushed[cls];
    if (unlikely((pushed - f->used > _hak_class_foreign_max[cls]) | (pushed > HAK_FOREIGN_PERIOD)))
        _hak_heap_flush_foreign(heap, cls);
}

/* The rest of the slab frees: statistics mode (every free comes here, see
 * stats.c), a pointer into a slab not in use, and threads with no heap yet,
 * which free straight to the slab's remote list. */
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
        push_foreign(heap, s, p);
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

/* p carries the free mark: a double free if p is on its slab's local list
 * (a slab of this thread's) or in this thread's foreign cache of its class,
 * among the first SUSPECT_SCAN blocks of either, the most recent frees
 * (glibc's tcache finds one in its bin of at most 7). Otherwise p is a live
 * block that happens to hold the mark, and its free goes on: a short scan
 * keeps that cheap. */
#define SUSPECT_SCAN 32

static bool on_list(hak_slab *s, hak_block *b, const void *p, bool encoded)
{
    for (unsigned n = 0; b && n < SUSPECT_SCAN; n++) {
        if (b == p) return true;
        b = encoded ? hak_link_get(s, b) : b->next;
    }
    return false;
}

/* A block of slab s goes back: onto the slab's list if the calling thread
 * owns it, else into the thread's foreign cache (or the remote path). */
static inline void free_block(hak_slab *s, void *p)
{
    hak_heap *heap = _hak_tl_heap;
    if (likely(atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap)) {
        hak_dbg_route("local", p);
        hak_slab_push_local(heap, s, p);
        return;
    }
    if (HAK_FOREIGN_CACHE && likely(heap->takes_foreign & (s->block_size != 0))) {
        push_foreign(heap, s, p);
        return;
    }
    free_remote(s, p);
}

/* Out of line, and a tail call from _hak_free, so that the fast path keeps
 * everything in registers. */
static HAK_COLD void free_marked(hak_slab *s, void *p)
{
    hak_heap *heap = _hak_tl_heap;
    if (!heap->is_empty_heap && s->block_size != 0) {
        bool mine = atomic_load_explicit(&s->owner_a, memory_order_relaxed) == heap->owner_tag;
        if ((mine && on_list(s, s->free, p, true)) || on_list(s, heap->foreign[s->cls].free, p, false))
            _hak_fatal_block("free(): double free detected", p, s->block_size);
    }
    free_block(s, p);
}

/* Budget: about 40 instructions on the fast path (map lookup, slab lookup,
 * free-mark test, owner compare, push and mark), and about as many for a
 * block of another thread's slab (the foreign cache), so that blocks which
 * keep circulating between threads cost no more than a thread's own. */
void _hak_free(void *p)
{
    uintptr_t v = hak_pagemap_get(p);
    if (likely(v != 0 && !(v & HAK_MAP_LARGE))) {
        hak_slab *s = hak_slab_of((hak_superslab *)v, p);
        hak_dbg_free(s, p);
        if (unlikely(hak_marked_free(p))) {
            free_marked(s, p);
            return;
        }
        free_block(s, p);
        return;
    }
    free_other(p, v);
}

HAK_PUBLIC_ALIAS(hak_free, _hak_free);
