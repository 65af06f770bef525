/* alloc.c: the allocation front end: malloc and its family (calloc,
 * realloc, the aligned allocators, usable size).
 *
 * The malloc fast path is a class lookup and a pop from the current slab of
 * the thread's heap; everything else (a thread's first call, an empty slab,
 * large sizes) is one unlikely branch into _hak_malloc_slow.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

static HAK_NOINLINE void *malloc_slow(size_t size)
{
    if (size > HAK_SMALL_MAX) return _hak_large_alloc(size, 0, false);
    hak_heap *heap = _hak_tl_heap;
    if (heap->is_empty_heap) {
        heap = _hak_heap_init_thread();
        if (heap == NULL) {
            errno = ENOMEM;
            return NULL;
        }
    }
    unsigned cls = hak_class_fast(size);   /* the table is filled once a heap exists */
    /* the foreign cache ran dry (or statistics mode): back to the slab */
    void *p = hak_freelist_pop(&heap->foreign[cls]);
    if (p == NULL) {
        hak_heap_set_active(heap, cls, heap->active[cls]);
        p = hak_slab_pop(heap->active[cls]);
    }
    if (p == NULL) p = _hak_heap_refill_alloc(heap, cls);
    if (p == NULL) errno = ENOMEM;
    else if (_hak_stats_on) _hak_stats_count_alloc(heap, cls);
    return p;
}

/* Fast-path budget: 17 instructions (size test, TLS load, class lookup,
 * pop, count), from the entry to the ret; `make bench-instr` counts them in
 * libhakmem.so's malloc and fails above this figure. (Issue 14's target is
 * 16: gcc spends one on a register move after the pop.) */
void *_hak_malloc(size_t size)
{
    if (likely(size <= HAK_SMALL_MAX)) {
        hak_freelist *f = _hak_tl_heap->cur[hak_class_fast(size)];
        void *b = hak_freelist_pop(f);
        if (likely(b != NULL)) return b;
    }
    return malloc_slow(size);
}

void *_hak_calloc(size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    if (bytes > HAK_SMALL_MAX) return _hak_large_alloc(bytes, 0, true);
    void *p = _hak_malloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

/* Alignment a (a power of two). Small requests whose size rounded up to a
 * are exactly a size class, which keeps every block a-aligned (slabs start
 * on page boundaries); the rest go to the large path. */
static void *alloc_aligned(size_t a, size_t size)
{
    if (a <= HAK_ALIGN) return _hak_malloc(size);
    if (size > HAK_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    if (a <= HAK_SLAB_ALIGN_MAX) {
        size_t n = hak_align_up(size ? size : 1, a);
        if (n <= HAK_SMALL_MAX) return _hak_malloc(n);
    }
    return _hak_large_alloc(size, a, false);
}

static bool is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

int _hak_posix_memalign(void **out, size_t alignment, size_t size)
{
    if (!is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(alignment, size);
    errno = saved;
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

void *_hak_aligned_alloc(size_t alignment, size_t size)
{
    if (!is_pow2(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(alignment, size);
}

/* As glibc: an alignment that is not a power of two is rounded up to one. */
void *_hak_memalign(size_t alignment, size_t size)
{
    if (alignment > ((size_t)1 << 63)) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = HAK_ALIGN;
    while (a < alignment) a <<= 1;
    return alloc_aligned(a, size);
}

void *_hak_valloc(size_t size)
{
    return alloc_aligned(HAK_PAGE, size);
}

void *_hak_pvalloc(size_t size)
{
    if (size > HAK_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    return alloc_aligned(HAK_PAGE, hak_align_up(size ? size : 1, HAK_PAGE));
}

/* ---- realloc ------------------------------------------------------------ */

static void *move_block(void *p, size_t old_usable, size_t size)
{
    void *q = _hak_malloc(size);
    if (q == NULL) return NULL;
    memcpy(q, p, old_usable < size ? old_usable : size);
    _hak_free(p);
    return q;
}

void *_hak_realloc(void *p, size_t size)
{
    if (p == NULL) return _hak_malloc(size);
    if (size == 0) {                  /* as glibc: free and return NULL */
        _hak_free(p);
        return NULL;
    }
    if (size > HAK_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t v = hak_pagemap_get(p);
    if (v && !(v & HAK_MAP_LARGE)) {
        hak_slab *s = hak_slab_of((hak_superslab *)v, p);
        size_t usable = s->block_size;
        if (usable == 0) {            /* a large block's run */
            usable = _hak_run_usable(s, p);
            if (usable == 0) _hak_fatal_ptr("realloc(): invalid pointer", p);
            if (size > HAK_SMALL_MAX && _hak_run_resize(s, p, size)) return p;
            return move_block(p, usable, size);
        }
        /* stay in place unless it would waste more than half the block */
        if (size <= usable && size >= usable / 2) return p;
        return move_block(p, usable, size);
    }
    if (v) {
        hak_large *h = (hak_large *)(v & ~HAK_MAP_LARGE);
        if (!_hak_large_valid(h, p)) _hak_fatal_ptr("realloc(): invalid pointer", p);
        if (size <= HAK_SMALL_MAX) return move_block(p, _hak_large_usable(h, p), size);
        return _hak_large_realloc(h, p, size);
    }
    if (_hak_glibc_owns(p)) return move_block(p, _hak_glibc_usable_size(p), size);
    _hak_fatal_ptr("realloc(): invalid pointer", p);
}

void *_hak_reallocarray(void *p, size_t count, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return _hak_realloc(p, bytes);
}

size_t _hak_usable_size(const void *p)
{
    uintptr_t v = hak_pagemap_get(p);
    if (v && !(v & HAK_MAP_LARGE)) {
        hak_slab *s = hak_slab_of((hak_superslab *)v, p);
        return s->block_size ? s->block_size : _hak_run_usable(s, p);
    }
    if (v) return _hak_large_usable((hak_large *)(v & ~HAK_MAP_LARGE), p);
    if (p && _hak_glibc_owns(p)) return _hak_glibc_usable_size((void *)p);
    return 0;
}

/* Copies n bytes from src; false if they are not mapped. */
static bool read_safely(void *dst, const void *src, size_t n)
{
    struct iovec local = { dst, n }, remote = { (void *)src, n };
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n;
}

/* Never faults: the SuperSlab or large mapping the map names may be
 * unmapped by another thread after the map was read, so its header is
 * read with process_vm_readv (a system call: hak_owns is for checks, not
 * for hot paths). */
int hak_owns(const void *p)
{
    uintptr_t v = hak_pagemap_get(p);
    if (v == 0) return 0;
    if (v & HAK_MAP_LARGE) {
        hak_large h;
        char *base = (char *)(v & ~HAK_MAP_LARGE);
        return read_safely(&h, base, sizeof h) && h.offset != 0 && base + h.offset == (const char *)p;
    }
    hak_slab s;
    if (!read_safely(&s, hak_slab_of((hak_superslab *)v, p), sizeof s)) return 0;
    if (s.block_size == 0)   /* a large block's run, if p is its start */
        return s.run == s.unit + 1 && s.run_units != 0 && (const char *)p == (const char *)v + hak_unit_offset(s.unit);
    const char *start = (const char *)v + s.start_off;
    if ((const char *)p < start) return 0;
    size_t off = (size_t)((const char *)p - start);
    return off % s.block_size == 0 && off / s.block_size < s.capacity;
}

int hak_trim(void)
{
    return _hak_trim();
}

long long hak_live_blocks(void)
{
#if HAK_DEBUG
    return atomic_load(&_hak_live_blocks);
#else
    return -1;
#endif
}

HAK_PUBLIC_ALIAS(hak_malloc, _hak_malloc);
HAK_PUBLIC_ALIAS(hak_calloc, _hak_calloc);
HAK_PUBLIC_ALIAS(hak_realloc, _hak_realloc);
HAK_PUBLIC_ALIAS(hak_reallocarray, _hak_reallocarray);
HAK_PUBLIC_ALIAS(hak_aligned_alloc, _hak_aligned_alloc);
HAK_PUBLIC_ALIAS(hak_posix_memalign, _hak_posix_memalign);
HAK_PUBLIC_ALIAS(hak_memalign, _hak_memalign);
HAK_PUBLIC_ALIAS(hak_valloc, _hak_valloc);
HAK_PUBLIC_ALIAS(hak_pvalloc, _hak_pvalloc);
HAK_PUBLIC_ALIAS(hak_usable_size, _hak_usable_size);

HAK_STD_ALIAS(malloc, _hak_malloc);
HAK_STD_ALIAS(calloc, _hak_calloc);
HAK_STD_ALIAS(realloc, _hak_realloc);
HAK_STD_ALIAS(memalign, _hak_memalign);
HAK_STD_ALIAS(valloc, _hak_valloc);
HAK_STD_ALIAS(pvalloc, _hak_pvalloc);
HAK_STD_ALIAS(__libc_malloc, _hak_malloc);
HAK_STD_ALIAS(__libc_calloc, _hak_calloc);
HAK_STD_ALIAS(__libc_realloc, _hak_realloc);
HAK_STD_ALIAS(__libc_memalign, _hak_memalign);
HAK_STD_ALIAS(__libc_valloc, _hak_valloc);
HAK_STD_ALIAS(__libc_pvalloc, _hak_pvalloc);
