/* os.c: the OS layer. hakmem's only contact with the kernel's memory calls
 * (mmap, munmap, mremap). Each function reports failure by its return value
 * with errno set and never prints; callers decide what a failure means.
 * Tests can make mappings fail through _hak_os_fail_maps. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "internal.h"

_Atomic int _hak_os_fail_maps;

static bool inject_failure(void)
{
    int n = atomic_load_explicit(&_hak_os_fail_maps, memory_order_relaxed);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&_hak_os_fail_maps, &n, n - 1)) {
            errno = ENOMEM;
            return true;
        }
    }
    return false;
}

/* Fresh zeroed read-write memory, page aligned. */
void *_hak_os_map(size_t size)
{
    if (inject_failure()) return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        errno = ENOMEM;
        return NULL;
    }
    return p;
}

/* Fresh zeroed memory whose base is a multiple of align (a power of two, at
 * least a page): map size + align, then give back the slack on both sides. */
void *_hak_os_map_aligned(size_t size, size_t align)
{
    if (size + align < size) {
        errno = ENOMEM;
        return NULL;
    }
    char *raw = _hak_os_map(size + align);
    if (raw == NULL) return NULL;
    char *base = (char *)hak_align_up((uintptr_t)raw, align);
    size_t head = (size_t)(base - raw);
    size_t tail = align - head;
    if (head) munmap(raw, head);
    if (tail) munmap(base + size, tail);
    return base;
}

int _hak_os_unmap(void *p, size_t size)
{
    return munmap(p, size);
}

/* Give the pages back; the range stays mapped and reads as zero after. */
int _hak_os_decommit(void *p, size_t size)
{
    return madvise(p, size, MADV_DONTNEED);
}

/* Make a range inaccessible (guard pages). */
int _hak_os_protect_none(void *p, size_t size)
{
    return mprotect(p, size, PROT_NONE);
}

/* Ask for (or against) transparent huge pages on a range. Advice only. */
void _hak_os_huge_pages(void *p, size_t size, bool want)
{
    madvise(p, size, want ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
}

/* Move the pages of [old, old+old_size) to dest, which must be a mapping of
 * new_size bytes that is replaced; no bytes are copied. */
void *_hak_os_remap_fixed(void *old, size_t old_size, size_t new_size, void *dest)
{
    if (inject_failure()) return NULL;
    void *p = mremap(old, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, dest);
    return p == MAP_FAILED ? NULL : p;
}

/* Grow a mapping where it stands; false if the address range after it is taken. */
bool _hak_os_grow_in_place(void *p, size_t old_size, size_t new_size)
{
    if (inject_failure()) return false;
    return mremap(p, old_size, new_size, 0) != MAP_FAILED;
}
