/* sized.c: frees that are told the block's size: C23's free_sized and
 * free_aligned_sized here, C++'s sized operator delete in cxx.c.
 *
 * The release build frees without looking at the size. It could save
 * nothing safely: the owned-range map lookup that finds the slab is also
 * what tells a small block from a large one and hakmem's memory from
 * anyone else's, so trusting the size instead would let a foreign or bad
 * pointer through. The debug build checks that the size can be the
 * block's and stops the process with one line when it cannot.
 */
#include "internal.h"

void _hak_free_sized(void *p, size_t size)
{
    hak_dbg_sized("free_sized()", p, 1, size);
    _hak_free(p);
}

void _hak_free_aligned_sized(void *p, size_t alignment, size_t size)
{
    hak_dbg_sized("free_aligned_sized()", p, alignment, size);
    _hak_free(p);
}

HAK_PUBLIC_ALIAS(hak_free_sized, _hak_free_sized);
HAK_PUBLIC_ALIAS(hak_free_aligned_sized, _hak_free_aligned_sized);

#if HAK_DEBUG
/* Whether a small block of slab s can have been asked for with size and
 * alignment: what the allocation would have chosen (alloc.c rounds an
 * alignment of up to a page into the size), or a realloc that kept the
 * block in place (it does down to half the block). */
static bool small_size_fits(const hak_slab *s, size_t alignment, size_t size)
{
    if (size > s->block_size) return false;
    size_t n = size;
    if (alignment > HAK_ALIGN) n = hak_align_up(size ? size : 1, alignment);
    if (n <= HAK_SMALL_MAX && _hak_class_of(n) == s->cls) return true;
    return size >= s->block_size / 2;
}

/* A large block's usable bytes follow its last requested size (large.c). */
static bool large_size_fits(const hak_large *h, size_t size)
{
    return hak_align_up(h->offset + (size ? size : 1), HAK_PAGE) - h->offset == h->usable;
}

/* So do a run's: its size rounded up to a page, at most the run. */
static bool run_size_fits(const hak_slab *s, size_t size)
{
    size_t usable = hak_align_up(size ? size : 1, HAK_PAGE), bytes = hak_run_bytes(s);
    return (usable < bytes ? usable : bytes) == s->run_usable;
}

void _hak_check_size(const char *who, const void *p, size_t alignment, size_t size)
{
    uintptr_t v = hak_pagemap_get(p);
    if (v == 0) return;   /* NULL, glibc's block or a bad pointer: free decides */
    char what[160];
    if (alignment == 0 || alignment & (alignment - 1) || (uintptr_t)p % alignment) {
        _hak_format(what, sizeof(what), "%s: alignment %zu does not match block", who, alignment);
        _hak_fatal_ptr(what, p);
    }
    if (v & HAK_MAP_LARGE) {
        hak_large *h = (hak_large *)(v & ~HAK_MAP_LARGE);
        if (!_hak_large_valid(h, p) || large_size_fits(h, size)) return;
        _hak_format(what, sizeof(what), "%s: size %zu does not match the large block of %zu usable bytes at", who,
                    size, h->usable);
        _hak_fatal_ptr(what, p);
    }
    hak_slab *s = hak_slab_of((hak_superslab *)v, p);
    if (s->block_size == 0) {
        /* a run, or a bad pointer: free decides */
        if (!hak_run_valid(s, p) || run_size_fits(s, size)) return;
        _hak_format(what, sizeof(what), "%s: size %zu does not match the large block of %u usable bytes at", who,
                    size, s->run_usable);
        _hak_fatal_ptr(what, p);
    }
    if (small_size_fits(s, alignment, size)) return;
    _hak_format(what, sizeof(what), "%s: size %zu does not match block", who, size);
    _hak_fatal_block(what, p, s->block_size);
}
#endif
