/* override.c: the standard allocation symbols, for libhakmem.so and
 * libhakmem.a (not built into the prefix libraries). malloc, free, calloc,
 * realloc, memalign, valloc, pvalloc, cfree and their __libc_ names (so
 * that code calling glibc's internal names directly also lands in hakmem)
 * are aliases of the implementation itself, in libhakmem's copies of
 * alloc.c and free.c (HAK_STD_ALIAS); the rest are here, each one call
 * into the front end; glibc's introspection API (mallinfo2, malloc_stats, malloc_info,
 * mallopt) is answered by info.c under its plain names only, since hakmem
 * itself reaches glibc's mallopt as __libc_mallopt (diag.c). C++'s
 * operator new and delete are cxx.c's, exported directly.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>

#include "internal.h"

/* When libhakmem is the process's malloc it sets itself up before main (the
 * prefix library waits for its first call) and installs the crash report. */
__attribute__((constructor)) static void hak_library_init(void)
{
    _hak_glibc_confine();
    _hak_heap_process_start();
    _hak_crash_report_install();
}

/* Built on realloc as glibc's is, and through the symbol, not hakmem's
 * own: a program that replaces malloc, free, calloc and realloc gets its own
 * realloc here too, with hakmem loaded as without it. */
HAK_API void *reallocarray(void *p, size_t c, size_t n)
{
    size_t bytes;
    if (__builtin_mul_overflow(c, n, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, bytes);
}
HAK_API int posix_memalign(void **out, size_t a, size_t n) { return _hak_posix_memalign(out, a, n); }
HAK_API void *aligned_alloc(size_t a, size_t n) { return _hak_aligned_alloc(a, n); }
HAK_API size_t malloc_usable_size(void *p) { return _hak_usable_size(p); }
HAK_API int malloc_trim(size_t pad) { (void)pad; return _hak_trim(); }

/* C23 */
HAK_API void free_sized(void *p, size_t n) { _hak_free_sized(p, n); }
HAK_API void free_aligned_sized(void *p, size_t a, size_t n) { _hak_free_aligned_sized(p, a, n); }

/* glibc's introspection API */
HAK_API struct mallinfo2 mallinfo2(void) { return _hak_mallinfo2(); }
HAK_API struct mallinfo mallinfo(void) { return _hak_mallinfo(); }
HAK_API void malloc_stats(void) { _hak_malloc_stats(); }
HAK_API int malloc_info(int options, FILE *fp) { return _hak_malloc_info(options, fp); }
HAK_API int mallopt(int param, int value) { return _hak_mallopt(param, value); }
