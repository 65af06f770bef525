/* cxx.c: C++'s operator new and delete in all their forms, for libhakmem.so
 * and libhakmem.a (not the prefix libraries), so that a C++ program's new
 * is one call into hakmem instead of libstdc++'s wrapper around malloc.
 *
 * Written in C under the Itanium C++ ABI's mangled names (x86-64: size_t
 * is "m"), so the library needs no libstdc++ and a C program links and
 * runs without it. Only failure needs the C++ runtime, and only a C++
 * program, which has libstdc++ loaded, calls these: when an allocation
 * fails, new looks up std::get_new_handler and std::__throw_bad_alloc with
 * dlsym (once each, then cached) and does what libstdc++'s new does: call
 * the handler and try again while there is one, else throw std::bad_alloc.
 * The handler may throw; the exception unwinds through these frames (built
 * with -fexceptions, see the Makefile).
 *
 * The nothrow forms must return NULL when the handler throws, which C
 * cannot catch. With no handler installed they return NULL themselves;
 * with one, they hand the request to the next library's nothrow new
 * (libstdc++'s: a try block around the throwing new, which is hakmem's),
 * so the handler runs and its exception is caught exactly as without
 * hakmem.
 *
 * Deletes are hakmem's free; the sized ones have their size checked in the
 * debug build (sized.c).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

#include "internal.h"

typedef void (*new_handler)(void);

static void *_Atomic get_handler_fn;    /* std::get_new_handler, once found */
static void *_Atomic throw_fn;          /* std::__throw_bad_alloc */

static void *lookup(void *_Atomic *slot, void *where, const char *name)
{
    void *f = atomic_load_explicit(slot, memory_order_acquire);
    if (f == NULL) {
        f = dlsym(where, name);
        atomic_store_explicit(slot, f, memory_order_release);
    }
    return f;
}

/* The installed new-handler; NULL if none (or no C++ runtime at all). */
static new_handler current_handler(void)
{
    new_handler (*get)(void) = (new_handler (*)(void))lookup(&get_handler_fn, RTLD_DEFAULT,
                                                              "_ZSt15get_new_handlerv");
    return get ? get() : NULL;
}

static HAK_COLD __attribute__((noreturn)) void throw_bad_alloc(void)
{
    void (*thrower)(void) = (void (*)(void))lookup(&throw_fn, RTLD_DEFAULT, "_ZSt17__throw_bad_allocv");
    if (thrower) thrower();
    _hak_say("operator new: out of memory, and std::bad_alloc cannot be thrown: no libstdc++ in the process");
    _hak_fatal_said = 1;
    abort();
}

static void *try_alloc(size_t size, size_t align)
{
    return align ? _hak_aligned_alloc(align, size) : _hak_malloc(size);
}

/* libstdc++'s loop: while allocating fails, call the handler, or throw
 * when there is none. align 0: no alignment asked. */
static HAK_COLD void *new_failed(size_t size, size_t align)
{
    for (;;) {
        new_handler h = current_handler();
        if (h == NULL) throw_bad_alloc();
        h();
        void *p = try_alloc(size, align);
        if (p) return p;
    }
}

/* The nothrow forms' failure (see the top of the file). */
static HAK_COLD void *nothrow_failed(const char *next_name, size_t size, size_t align, const void *tag)
{
    if (current_handler() == NULL) return NULL;
    void *next = dlsym(RTLD_NEXT, next_name);
    if (next && align) return ((void *(*)(size_t, size_t, const void *))next)(size, align, tag);
    if (next) return ((void *(*)(size_t, const void *))next)(size, tag);
    /* no C++ runtime after hakmem: the loop here, a throwing handler's
     * exception then goes to the caller */
    for (;;) {
        new_handler h = current_handler();
        if (h == NULL) return NULL;
        h();
        void *p = try_alloc(size, align);
        if (p) return p;
    }
}

static bool is_pow2(size_t a) { return a != 0 && (a & (a - 1)) == 0; }

/* ---- new ------------------------------------------------------------------ */

#define CXX(mangled) __asm__(mangled) HAK_API

void *cxx_new(size_t n) CXX("_Znwm");
void *cxx_new_array(size_t n) CXX("_Znam");
void *cxx_new_nothrow(size_t n, const void *tag) CXX("_ZnwmRKSt9nothrow_t");
void *cxx_new_array_nothrow(size_t n, const void *tag) CXX("_ZnamRKSt9nothrow_t");
void *cxx_new_aligned(size_t n, size_t al) CXX("_ZnwmSt11align_val_t");
void *cxx_new_array_aligned(size_t n, size_t al) CXX("_ZnamSt11align_val_t");
void *cxx_new_aligned_nothrow(size_t n, size_t al, const void *tag) CXX("_ZnwmSt11align_val_tRKSt9nothrow_t");
void *cxx_new_array_aligned_nothrow(size_t n, size_t al, const void *tag) CXX("_ZnamSt11align_val_tRKSt9nothrow_t");

void *cxx_new(size_t n)
{
    void *p = _hak_malloc(n);
    return likely(p != NULL) ? p : new_failed(n, 0);
}

void *cxx_new_array(size_t n)
{
    void *p = _hak_malloc(n);
    return likely(p != NULL) ? p : new_failed(n, 0);
}

void *cxx_new_nothrow(size_t n, const void *tag)
{
    void *p = _hak_malloc(n);
    return likely(p != NULL) ? p : nothrow_failed("_ZnwmRKSt9nothrow_t", n, 0, tag);
}

void *cxx_new_array_nothrow(size_t n, const void *tag)
{
    void *p = _hak_malloc(n);
    return likely(p != NULL) ? p : nothrow_failed("_ZnamRKSt9nothrow_t", n, 0, tag);
}

/* An alignment that is not a power of two throws, as libstdc++'s does. */
void *cxx_new_aligned(size_t n, size_t al)
{
    if (unlikely(!is_pow2(al))) throw_bad_alloc();
    void *p = _hak_aligned_alloc(al, n);
    return likely(p != NULL) ? p : new_failed(n, al);
}

void *cxx_new_array_aligned(size_t n, size_t al)
{
    if (unlikely(!is_pow2(al))) throw_bad_alloc();
    void *p = _hak_aligned_alloc(al, n);
    return likely(p != NULL) ? p : new_failed(n, al);
}

void *cxx_new_aligned_nothrow(size_t n, size_t al, const void *tag)
{
    if (unlikely(!is_pow2(al))) return NULL;
    void *p = _hak_aligned_alloc(al, n);
    return likely(p != NULL) ? p : nothrow_failed("_ZnwmSt11align_val_tRKSt9nothrow_t", n, al, tag);
}

void *cxx_new_array_aligned_nothrow(size_t n, size_t al, const void *tag)
{
    if (unlikely(!is_pow2(al))) return NULL;
    void *p = _hak_aligned_alloc(al, n);
    return likely(p != NULL) ? p : nothrow_failed("_ZnamSt11align_val_tRKSt9nothrow_t", n, al, tag);
}

/* ---- delete --------------------------------------------------------------- */

void cxx_delete(void *p) CXX("_ZdlPv");
void cxx_delete_array(void *p) CXX("_ZdaPv");
void cxx_delete_nothrow(void *p, const void *tag) CXX("_ZdlPvRKSt9nothrow_t");
void cxx_delete_array_nothrow(void *p, const void *tag) CXX("_ZdaPvRKSt9nothrow_t");
void cxx_delete_sized(void *p, size_t n) CXX("_ZdlPvm");
void cxx_delete_array_sized(void *p, size_t n) CXX("_ZdaPvm");
void cxx_delete_aligned(void *p, size_t al) CXX("_ZdlPvSt11align_val_t");
void cxx_delete_array_aligned(void *p, size_t al) CXX("_ZdaPvSt11align_val_t");
void cxx_delete_aligned_nothrow(void *p, size_t al, const void *tag) CXX("_ZdlPvSt11align_val_tRKSt9nothrow_t");
void cxx_delete_array_aligned_nothrow(void *p, size_t al, const void *tag) CXX("_ZdaPvSt11align_val_tRKSt9nothrow_t");
void cxx_delete_aligned_sized(void *p, size_t n, size_t al) CXX("_ZdlPvmSt11align_val_t");
void cxx_delete_array_aligned_sized(void *p, size_t n, size_t al) CXX("_ZdaPvmSt11align_val_t");

void cxx_delete(void *p) { _hak_free(p); }
void cxx_delete_array(void *p) { _hak_free(p); }
void cxx_delete_nothrow(void *p, const void *tag) { _hak_free(p); }
void cxx_delete_array_nothrow(void *p, const void *tag) { _hak_free(p); }
void cxx_delete_aligned(void *p, size_t al) { _hak_free(p); }
void cxx_delete_array_aligned(void *p, size_t al) { _hak_free(p); }
void cxx_delete_aligned_nothrow(void *p, size_t al, const void *tag) { _hak_free(p); }
void cxx_delete_array_aligned_nothrow(void *p, size_t al, const void *tag) { _hak_free(p); }

void cxx_delete_sized(void *p, size_t n)
{
    hak_dbg_sized("operator delete()", p, 1, n);
    _hak_free(p);
}

void cxx_delete_array_sized(void *p, size_t n)
{
    hak_dbg_sized("operator delete[]()", p, 1, n);
    _hak_free(p);
}

void cxx_delete_aligned_sized(void *p, size_t n, size_t al)
{
    hak_dbg_sized("operator delete()", p, al, n);
    _hak_free(p);
}

void cxx_delete_array_aligned_sized(void *p, size_t n, size_t al)
{
    hak_dbg_sized("operator delete[]()", p, al, n);
    _hak_free(p);
}
