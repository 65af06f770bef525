/* pagemap.c: the map of hakmem's own address ranges.
 *
 * A two-level table over the 47-bit user address space at 2 MiB granularity
 * (one "chunk"). Every mapping hakmem hands blocks out of (a SuperSlab or a
 * large block) is 2 MiB aligned and a whole number of chunks, so a chunk
 * belongs to at most one of them. The entry of each chunk holds the mapping's
 * base (tagged HAK_MAP_LARGE for large blocks), or 0 if hakmem does not own
 * it. Lookup is two loads and cannot miss.
 *
 * Beside it, _hak_ss_chunks has one byte per chunk saying whether a
 * SuperSlab is there, for the free fast path (internal.h).
 *
 * Root: 1024 entries (static). Leaf: 65536 entries of 8 bytes (512 KiB of
 * address space, touched only where hakmem has memory), created on demand
 * and never freed.
 */
#include <errno.h>

#include "internal.h"

#define ROOT_ENTRIES (1u << (HAK_ADDR_BITS - HAK_SS_SHIFT - HAK_PAGEMAP_LEAF_BITS))
#define LEAF_ENTRIES (1u << HAK_PAGEMAP_LEAF_BITS)

_Atomic(uintptr_t *) _hak_pagemap_root[ROOT_ENTRIES];
uint8_t _hak_ss_chunks[HAK_CHUNKS];

static uintptr_t *leaf_for(uintptr_t chunk)
{
    _Atomic(uintptr_t *) *slot = &_hak_pagemap_root[chunk >> HAK_PAGEMAP_LEAF_BITS];
    uintptr_t *leaf = atomic_load_explicit(slot, memory_order_acquire);
    if (leaf) return leaf;
    uintptr_t *fresh = _hak_os_map(LEAF_ENTRIES * sizeof(uintptr_t));
    if (fresh == NULL) return NULL;
    if (!atomic_compare_exchange_strong(slot, &leaf, fresh)) {
        _hak_os_unmap(fresh, LEAF_ENTRIES * sizeof(uintptr_t));
        return leaf;
    }
    return fresh;
}

/* Mark [base, base+size) as hakmem's with the given value. Returns false
 * (errno ENOMEM, nothing marked) if a leaf cannot be mapped. */
bool _hak_pagemap_set(void *base, size_t size, uintptr_t value)
{
    uintptr_t first = (uintptr_t)base >> HAK_SS_SHIFT;
    uintptr_t end = ((uintptr_t)base + size + HAK_SS_MASK) >> HAK_SS_SHIFT;
    if (end > ((uintptr_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT))) {
        errno = ENOMEM;
        return false;
    }
    for (uintptr_t c = first; c < end; c++)
        if (leaf_for(c) == NULL) return false;
    for (uintptr_t c = first; c < end; c++) {
        uintptr_t *leaf = atomic_load_explicit(&_hak_pagemap_root[c >> HAK_PAGEMAP_LEAF_BITS],
                                               memory_order_acquire);
        __atomic_store_n(&leaf[c & (LEAF_ENTRIES - 1)], value, __ATOMIC_RELEASE);
        __atomic_store_n(&_hak_ss_chunks[c], value != 0 && !(value & HAK_MAP_LARGE), __ATOMIC_RELAXED);
    }
    return true;
}

void _hak_pagemap_clear(void *base, size_t size)
{
    uintptr_t first = (uintptr_t)base >> HAK_SS_SHIFT;
    uintptr_t end = ((uintptr_t)base + size + HAK_SS_MASK) >> HAK_SS_SHIFT;
    for (uintptr_t c = first; c < end; c++) {
        __atomic_store_n(&_hak_ss_chunks[c], 0, __ATOMIC_RELAXED);
        uintptr_t *leaf = atomic_load_explicit(&_hak_pagemap_root[c >> HAK_PAGEMAP_LEAF_BITS],
                                               memory_order_acquire);
        if (leaf) __atomic_store_n(&leaf[c & (LEAF_ENTRIES - 1)], 0, __ATOMIC_RELEASE);
    }
}
