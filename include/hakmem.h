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

#include <malloc.h>   /* struct mallinfo, struct mallinfo2 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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

/* C23's sized frees: size (and alignment) as given to the allocation. The
 * debug build stops the process on a size that cannot be the block's; the
 * release build frees without looking at them. */
HAKMEM_EXPORT void   hak_free_sized(void *p, size_t size);
HAKMEM_EXPORT void   hak_free_aligned_sized(void *p, size_t alignment, size_t size);

/* glibc's malloc-introspection API, answered with hakmem's figures (the
 * README says what each field means here). mallinfo's int fields stop at
 * INT_MAX. hak_malloc_stats prints to stderr; hak_malloc_info writes XML
 * in glibc's schema (options must be 0: else -1 with errno EINVAL). */
HAKMEM_EXPORT struct mallinfo2 hak_mallinfo2(void);
HAKMEM_EXPORT struct mallinfo  hak_mallinfo(void);
HAKMEM_EXPORT void hak_malloc_stats(void);
HAKMEM_EXPORT int  hak_malloc_info(int options, FILE *fp);
/* glibc's parameters (M_TRIM_THRESHOLD, ...): 1 if accepted, 0 if not. */
HAKMEM_EXPORT int  hak_mallopt(int param, int value);

/* 1 if p is the start of a live or free block in hakmem's memory, else 0.
 * Never faults, whatever p is. */
HAKMEM_EXPORT int hak_owns(const void *p);

/* Give every free page hakmem holds back to the OS now, as malloc_trim(0)
 * does; 1 if anything was released. */
HAKMEM_EXPORT int hak_trim(void);

/* Statistics. The per-class counts are kept only when the process runs with
 * HAKMEM_STATS=1 (counting is then set up for every thread, at the cost of
 * taking a slower path on each call); the rest is always there. */
#define HAKMEM_STATS_CLASSES 72

struct hak_class_stats {
    size_t block_size;           /* bytes per block of the class */
    uint64_t allocs, frees;      /* calls that returned / gave back a block */
    uint64_t live, peak;         /* blocks out now, and the most ever out at once */
};

struct hak_stats {
    int counting;                /* 1: classes[] was counted (HAKMEM_STATS=1) */
    unsigned n_classes;
    struct hak_class_stats classes[HAKMEM_STATS_CLASSES];
    uint64_t superslabs_mapped;  /* 2 MiB SuperSlabs mapped now */
    uint64_t superslabs_retained;/* of those, wholly empty ones kept for reuse */
    uint64_t bytes_purged;       /* free memory given back to the OS so far */
    uint64_t large_live;         /* large blocks (> 32 KiB) out now */
    uint64_t large_live_bytes;   /* their mapped bytes */
    uint64_t large_allocs;       /* large blocks handed out so far */
    uint64_t large_cached_bytes; /* freed large mappings kept for reuse */
    uint64_t rss_bytes;          /* resident set size now */
    uint64_t rss_peak_bytes;     /* highest resident set size so far */
};

/* Fill *out; 0 on success. */
HAKMEM_EXPORT int hak_stats_get(struct hak_stats *out);

/* Print the same as a readable summary (what HAKMEM_STATS=1 prints at exit). */
HAKMEM_EXPORT void hak_stats_print(FILE *out);

/* Number of blocks handed out and not yet freed, over the whole process.
 * Counted only in builds with statistics (the debug build); -1 otherwise. */
HAKMEM_EXPORT long long hak_live_blocks(void);

#ifdef __cplusplus
}
#endif

#endif
