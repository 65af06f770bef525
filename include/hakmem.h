/* hakmem.h: the public interface of the hakmem memory allocator.
 *
 * hakmem is used in one of two ways:
 *  - as a drop-in malloc: link with -lhakmem (libhakmem.so or libhakmem.a) or
 *    preload libhakmem.so; malloc, free, calloc, realloc and the rest of the
 *    C and POSIX family then come from hakmem for the whole process.
 *  - side by side with the system malloc: link with -lhakmem-prefix, which
 *    provides only the hak_ functions below and leaves malloc alone.
 *
 * The hak_ functions behave as their standard namesakes (see README.md).
 */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1

#if defined(__GNUC__)
#define HAKMEM_EXPORT __attribute__((visibility("default")))
#else
#define HAKMEM_EXPORT
#endif

HAKMEM_EXPORT void  *hak_malloc(size_t size);
HAKMEM_EXPORT void   hak_free(void *p);
HAKMEM_EXPORT void  *hak_calloc(size_t count, size_t size);
HAKMEM_EXPORT void  *hak_realloc(void *p, size_t size);
HAKMEM_EXPORT void  *hak_reallocarray(void *p, size_t count, size_t size);
HAKMEM_EXPORT void  *hak_aligned_alloc(size_t alignment, size_t size);
HAKMEM_EXPORT int    hak_posix_memalign(void **out, size_t alignment, size_t size);
HAKMEM_EXPORT void  *hak_memalign(size_t alignment, size_t size);
HAKMEM_EXPORT void  *hak_valloc(size_t size);
HAKMEM_EXPORT void  *hak_pvalloc(size_t size);
HAKMEM_EXPORT size_t hak_usable_size(const void *p);

/* 1 if p is the start of a live or free block in hakmem's memory, else 0.
 * Never faults, whatever p is. */
HAKMEM_EXPORT int hak_owns(const void *p);

/* Give every free page hakmem holds back to the OS now, as malloc_trim(0)
 * does; 1 if anything was released. */
HAKMEM_EXPORT int hak_trim(void);

/* Number of blocks handed out and not yet freed, over the whole process.
 * Counted only in builds with statistics (the debug build); -1 otherwise. */
HAKMEM_EXPORT long long hak_live_blocks(void);

#ifdef __cplusplus
}
#endif

#endif
