/* large.c: blocks above the slab range (> 32 KiB), each in its own mapping.
 *
 * A large mapping is 2 MiB aligned and a whole number of 2 MiB chunks, like
 * a SuperSlab, so the owned-range map can name it exactly. Its header
 * (hak_large) sits at the base; the user pointer is `offset` bytes further
 * (64, or the requested alignment). Only the pages written are backed by
 * memory, so the rounding costs address space, not RSS. realloc grows in
 * place when the mapping has room or the kernel can extend it, and otherwise
 * moves the pages with mremap: nothing is copied.
 */
#include <errno.h>

#include "internal.h"

#define LARGE_OFFSET 64

static size_t map_align(size_t offset)
{
    return offset > HAK_SS_SIZE ? offset : HAK_SS_SIZE;
}

static void set_usable(hak_large *h, size_t size)
{
    h->usable = hak_align_up(h->offset + size, HAK_PAGE) - h->offset;
}

void *_hak_large_alloc(size_t size, size_t align)
{
    if (size > HAK_MAX_REQUEST || align > HAK_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    size_t offset = align > LARGE_OFFSET ? align : LARGE_OFFSET;
    if (size == 0) size = 1;   /* the block must lie inside its mapping */
    size_t map = hak_align_up(offset + size, HAK_SS_SIZE);
    hak_large *h = _hak_os_map_aligned(map, map_align(offset));
    if (h == NULL) return NULL;
    if (!_hak_pagemap_set(h, map, (uintptr_t)h | HAK_MAP_LARGE)) {
        _hak_os_unmap(h, map);
        errno = ENOMEM;
        return NULL;
    }
    h->map_size = map;
    h->offset = offset;
    set_usable(h, size);
    hak_dbg_count(1);
    return (char *)h + offset;
}

bool _hak_large_valid(hak_large *h, const void *p)
{
    return (const char *)h + h->offset == (const char *)p;
}

size_t _hak_large_usable(hak_large *h, const void *p)
{
    return _hak_large_valid(h, p) ? h->usable : 0;
}

void _hak_large_free(hak_large *h, void *p)
{
    size_t map = h->map_size;
    _hak_pagemap_clear(h, map);
    _hak_os_unmap(h, map);
}

void *_hak_large_realloc(hak_large *h, void *p, size_t size)
{
    size_t old_map = h->map_size;
    size_t new_map = hak_align_up(h->offset + size, HAK_SS_SIZE);
    if (new_map <= old_map) {
        if (new_map < old_map) {         /* give back whole chunks at the end */
            _hak_pagemap_clear((char *)h + new_map, old_map - new_map);
            _hak_os_unmap((char *)h + new_map, old_map - new_map);
            h->map_size = new_map;
        }
        set_usable(h, size);
        return p;
    }
    if (_hak_os_grow_in_place(h, old_map, new_map)) {
        if (!_hak_pagemap_set((char *)h + old_map, new_map - old_map, (uintptr_t)h | HAK_MAP_LARGE)) {
            _hak_os_unmap((char *)h + old_map, new_map - old_map);
            errno = ENOMEM;
            return NULL;
        }
        h->map_size = new_map;
        set_usable(h, size);
        return p;
    }
    char *dest = _hak_os_map_aligned(new_map, map_align(h->offset));
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
    nh->map_size = new_map;
    set_usable(nh, size);
    return (char *)nh + nh->offset;
}
