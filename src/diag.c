/* diag.c: everything hakmem says, and how it treats pointers it does not own.
 *
 * All output is built in a stack buffer and written with one write(2): no
 * stdio, no allocation, so it is safe inside malloc and during start-up.
 *
 * Foreign pointers. A pointer that is in no hakmem mapping is either a block
 * glibc's malloc gave out (to a library bound to glibc's malloc directly, or,
 * with the prefix library, beside hakmem), which goes back to glibc's free,
 * or it is an invalid free, which stops the process with one line. How a
 * glibc block is recognised, and what that cannot tell, is written at
 * _hak_glibc_owns below.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* ---- output ------------------------------------------------------------- */

/* A small printf: %s %c %d %u %ld %lu %lld %llu %zu %x %lx %p and %%, no
 * widths. Never allocates and is async-signal-safe. Returns the length
 * written (truncated to cap - 1, always NUL-terminated). */
size_t _hak_vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    size_t n = 0;
#define PUT(ch) do { if (n + 1 < cap) buf[n++] = (ch); } while (0)
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') {
            PUT(*f);
            continue;
        }
        f++;
        int longs = 0;
        bool size = false;
        while (*f == 'l') {
            longs++;
            f++;
        }
        if (*f == 'z') {
            size = true;
            f++;
        }
        unsigned long long v = 0;
        bool neg = false;
        unsigned base = 10;
        switch (*f) {
        case 's': {
            const char *str = va_arg(ap, const char *);
            for (str = str ? str : "(null)"; *str; str++) PUT(*str);
            continue;
        }
        case 'c':
            PUT((char)va_arg(ap, int));
            continue;
        case '%':
            PUT('%');
            continue;
        case 'd': {
            long long sv = size ? (long long)va_arg(ap, ssize_t) : longs == 2 ? va_arg(ap, long long)
                         : longs == 1 ? va_arg(ap, long) : va_arg(ap, int);
            neg = sv < 0;
            v = neg ? 0ULL - (unsigned long long)sv : (unsigned long long)sv;
            break;
        }
        case 'p':
            v = (uintptr_t)va_arg(ap, void *);
            base = 16;
            PUT('0');
            PUT('x');
            break;
        case 'x':
        case 'u':
            v = size ? va_arg(ap, size_t) : longs == 2 ? va_arg(ap, unsigned long long)
              : longs == 1 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
            base = *f == 'x' ? 16 : 10;
            break;
        default:
            PUT('?');
            if (*f == '\0') f--;
            continue;
        }
        char tmp[24];
        int k = 0;
        do {
            tmp[k++] = "0123456789abcdef"[v % base];
            v /= base;
        } while (v);
        if (neg) PUT('-');
        while (k > 0) PUT(tmp[--k]);
    }
#undef PUT
    if (cap) buf[n] = '\0';
    return n;
}

size_t _hak_format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = _hak_vformat(buf, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* One line to stderr, "hakmem: " first, in one write. */
void _hak_say(const char *fmt, ...)
{
    char buf[512] = "hakmem: ";
    va_list ap;
    va_start(ap, fmt);
    size_t n = 8 + _hak_vformat(buf + 8, sizeof(buf) - 9, fmt, ap);
    va_end(ap);
    buf[n++] = '\n';
    ssize_t r = write(STDERR_FILENO, buf, n);
    (void)r;
}

void _hak_fatal_ptr(const char *what, const void *p)
{
    _hak_fatal_block(what, p, 0);
}

/* Set before hakmem's own abort: its message is the whole report. */
volatile sig_atomic_t _hak_fatal_said;

/* Every fatal error ends here, after its one line. */
static HAK_COLD __attribute__((noreturn)) void fatal_abort(void)
{
    _hak_fatal_said = 1;
    abort();
}

void _hak_fatal_block(const char *what, const void *p, size_t block_size)
{
    if (block_size)
        _hak_say("%s %p (size class %u, %zu bytes)", what, p, _hak_class_of(block_size), block_size);
    else
        _hak_say("%s %p", what, p);
    fatal_abort();
}

void _hak_assert_fail(const char *cond, const char *file, int line)
{
    _hak_say("internal assertion failed: %s at %s:%d", cond, file, line);
    fatal_abort();
}

void _hak_trace_free(const char *route, const void *p)
{
    _hak_say("free %p -> %s", p, route);
}

/* ---- glibc's blocks ------------------------------------------------------ *
 *
 * A pointer in no hakmem mapping is glibc's block only if it passes these
 * checks, and then it goes to glibc's free; anything else stops the process.
 *  - Main arena (both libraries): p is 16-aligned; its chunk (p - 16) lies
 *    in the program break, from its start (start_brk, read once from
 *    /proc/self/stat the first time a foreign pointer comes) to the current
 *    break (sbrk(0)); the chunk's size field has neither IS_MMAPPED nor
 *    NON_MAIN_ARENA, is at least 32 and a multiple of 16, the chunk ends
 *    inside the break, and the next chunk's PREV_INUSE bit says it is in use.
 *  - When hakmem is the process's malloc (libhakmem), that is all: its
 *    constructor has glibc's malloc, which then serves only code bound to it
 *    directly (a library opened with RTLD_DEEPBIND), keep every block in its
 *    main arena (_hak_glibc_confine).
 *  - The prefix library, beside glibc's malloc, also takes mmapped chunks
 *    (IS_MMAPPED: the mapping starts page-aligned prev_size bytes before
 *    the chunk, size plus prev_size is a multiple of the page, and those
 *    pages are mapped: mincore) and chunks of glibc's other arenas
 *    (NON_MAIN_ARENA: the 64 MiB-aligned heap they lie in is mapped, names
 *    an arena, and its size covers the chunk).
 * What this cannot tell: a forged chunk header inside the break (for
 * example in memory the program took with sbrk itself), and, in the prefix
 * library, a mapping or arena-sized region of the program's whose first
 * words forge a chunk. After the first foreign pointer, a check reads no
 * file and allocates nothing: sbrk(0) and a few loads (in the prefix
 * library, outside the break, up to four mincore calls).
 */
#define GLIBC_PREV_INUSE  1
#define GLIBC_IS_MMAPPED  2
#define GLIBC_NON_MAIN    4
#define GLIBC_FLAGS       7
#define GLIBC_HEAP_MAX    ((uintptr_t)64 << 20)   /* a non-main arena's heap, aligned */

bool _hak_is_malloc;                    /* libhakmem: hakmem is the process's malloc */
static _Atomic uintptr_t start_brk;     /* 0: not read yet */

/* Field 47 of /proc/self/stat: where the program break started. */
static uintptr_t read_start_brk(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char *s = strrchr(buf, ')');   /* the fields after the command name */
    if (s == NULL) return 0;
    for (int field = 2; field < 47 && *s; s++)
        if (*s == ' ') field++;
    return (uintptr_t)strtoull(s, NULL, 10);
}

static bool mapped(uintptr_t addr)
{
    unsigned char vec;
    return mincore((void *)(addr & ~(uintptr_t)(HAK_PAGE - 1)), HAK_PAGE, &vec) == 0;
}

/* The program break: [*lo, *hi). */
static bool brk_range(uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t start = atomic_load_explicit(&start_brk, memory_order_relaxed);
    if (start == 0) {
        start = read_start_brk();
        if (start == 0) return false;
        atomic_store_explicit(&start_brk, start, memory_order_relaxed);
    }
    *lo = start;
    *hi = (uintptr_t)sbrk(0);
    return true;
}

/* chunk lies in the break [lo, hi), so its header can be read. */
static bool main_arena_chunk(uintptr_t chunk, uintptr_t hi)
{
    size_t field = *(const size_t *)(chunk + sizeof(size_t));
    size_t csize = field & ~(size_t)GLIBC_FLAGS;
    if (field & (GLIBC_IS_MMAPPED | GLIBC_NON_MAIN)) return false;
    if (csize < 4 * sizeof(size_t) || csize % HAK_ALIGN || csize > hi - chunk - 2 * sizeof(size_t)) return false;
    size_t next = *(const size_t *)(chunk + csize + sizeof(size_t));
    return next & GLIBC_PREV_INUSE;
}

static bool mmapped_chunk(uintptr_t chunk, size_t field)
{
    size_t csize = field & ~(size_t)GLIBC_FLAGS, pad = *(const size_t *)chunk;
    uintptr_t base = chunk - pad;
    return (field & GLIBC_FLAGS) == GLIBC_IS_MMAPPED && pad % HAK_ALIGN == 0 && pad < HAK_MAX_REQUEST &&
           csize < HAK_MAX_REQUEST && base % HAK_PAGE == 0 && (csize + pad) % HAK_PAGE == 0 &&
           csize >= HAK_PAGE && mapped(base) && mapped(chunk + csize - 1);
}

static bool other_arena_chunk(uintptr_t chunk, size_t field)
{
    uintptr_t heap = chunk & ~(GLIBC_HEAP_MAX - 1);
    size_t csize = field & ~(size_t)GLIBC_FLAGS;
    if ((field & GLIBC_IS_MMAPPED) || !(field & GLIBC_NON_MAIN) || !mapped(heap)) return false;
    const uintptr_t *info = (const uintptr_t *)heap;   /* ar_ptr, prev, size, ... */
    return info[0] != 0 && mapped(info[0]) && csize >= 4 * sizeof(size_t) && csize % HAK_ALIGN == 0 &&
           chunk + csize <= heap + info[2];
}

bool _hak_glibc_owns(const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr, chunk = p - 2 * sizeof(size_t), lo, hi;
    if (p & (HAK_ALIGN - 1) || p < HAK_PAGE) return false;
    if (brk_range(&lo, &hi) && chunk >= lo && chunk + 2 * sizeof(size_t) <= hi) return main_arena_chunk(chunk, hi);
    if (_hak_is_malloc) return false;
    /* the prefix library: the header is read only where it is mapped */
    if (!mapped(chunk)) return false;
    size_t field = ((const size_t *)ptr)[-1];
    return mmapped_chunk(chunk, field) || other_arena_chunk(chunk, field);
}

/* glibc's bytes of a block it gave out (as its malloc_usable_size says). */
size_t _hak_glibc_usable_size(void *p)
{
    size_t field = ((const size_t *)p)[-1], csize = field & ~(size_t)GLIBC_FLAGS;
    return field & GLIBC_IS_MMAPPED ? csize - 2 * sizeof(size_t) : csize - sizeof(size_t);
}

/* libhakmem's constructor: glibc's malloc keeps every block it gives out
 * in its main arena, where _hak_glibc_owns can tell them. Through glibc's
 * own name for mallopt: the plain name is hakmem's in libhakmem. */
extern int __libc_mallopt(int param, int value);

void _hak_glibc_confine(void)
{
    _hak_is_malloc = true;
    __libc_mallopt(M_MMAP_MAX, 0);
    __libc_mallopt(M_ARENA_MAX, 1);
}

static HAK_TLS bool in_glibc_call;
static void (*_Atomic real_free)(void *);

void _hak_glibc_free(void *p)
{
    if (!_hak_glibc_owns(p)) _hak_fatal_ptr("free(): invalid pointer", p);
    void (*f)(void *) = atomic_load_explicit(&real_free, memory_order_acquire);
    if (f == NULL && !in_glibc_call) {   /* in_glibc_call: RTLD_NEXT led back here */
        f = (void (*)(void *))dlsym(RTLD_NEXT, "free");
        atomic_store_explicit(&real_free, f, memory_order_release);
    }
    if (f == NULL) _hak_fatal_ptr("free(): glibc's free cannot be found for its block", p);
    in_glibc_call = true;
    f(p);
    in_glibc_call = false;
}

#if HAK_SECURE
void _hak_bad_link(hak_slab *s, hak_block *b)
{
    _hak_say("corrupted free list: free block %p (size class %u, %u bytes) holds a link that is not a block of its slab",
             (void *)b, s->cls, s->block_size);
    fatal_abort();
}
#endif

/* ---- debug build: exact double and interior free detection ---------------- */

/* For the crash report: whether block `index` of s is out. */
const char *_hak_block_state(hak_slab *s, size_t index)
{
#if HAK_DEBUG
    uint64_t word = atomic_load(&hak_ss_of_slab(s)->out_bits[s->unit][index / 64]);
    return word >> (index % 64) & 1 ? "in use" : "free";
#else
    (void)s;
    (void)index;
    return "in use or free (tracked only in the debug build)";
#endif
}

#if HAK_DEBUG
_Atomic long long _hak_live_blocks;
HAK_TLS bool _hak_dbg_internal_alloc;

static _Atomic uint64_t *out_word(hak_slab *s, size_t index)
{
    return &hak_ss_of_slab(s)->out_bits[s->unit][index / 64];
}

/* Valgrind. When memcheck's header is there, the debug build describes its
 * blocks to memcheck: handed out (MALLOCLIKE), given back (FREELIKE). A free
 * block's link word stays readable for hakmem's lists; the rest of it is
 * off limits (NOACCESS) except while hakmem fills or checks it. Outside
 * valgrind each request is a few instructions that do nothing. */
#if defined(__has_include) && __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define VG_ALLOC(p, n)  VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0)
#define VG_FREE(p)      VALGRIND_FREELIKE_BLOCK(p, 0)
#define VG_OPEN(p, n)   VALGRIND_MAKE_MEM_DEFINED(p, n)
#define VG_CLOSE(p, n)  VALGRIND_MAKE_MEM_NOACCESS(p, n)
#else
#define VG_ALLOC(p, n)  ((void)0)
#define VG_FREE(p)      ((void)0)
#define VG_OPEN(p, n)   ((void)0)
#define VG_CLOSE(p, n)  ((void)0)
#endif

/* A large block: old (if any) goes, p (if any) comes; in a realloc the
 * bytes kept count as written. */
void _hak_debug_large(void *old, size_t old_usable, void *p, size_t usable)
{
    if (old) VG_FREE(old);
    if (p) {
        VG_ALLOC(p, usable);
        if (old) VG_OPEN(p, old_usable < usable ? old_usable : usable);
    }
}

/* Free blocks are filled with this byte past their link word; a block whose
 * fill changed while it was free was written after free. */
#define FREE_FILL 0xdf

void _hak_debug_fill_free(hak_slab *s, void *p)
{
    char *body = (char *)p + sizeof(hak_block);
    size_t n = s->block_size - sizeof(hak_block);
    VG_OPEN(p, s->block_size);
    memset(body, FREE_FILL, n);
    VG_CLOSE(body, n);
}

static void check_fill(hak_slab *s, void *p)
{
    const unsigned char *c = (const unsigned char *)p + sizeof(hak_block);
    size_t n = s->block_size - sizeof(hak_block);
    for (size_t i = 0; i < n; i++) {
        if (c[i] != FREE_FILL) {
            _hak_say("write after free: block %p (size class %u, %u bytes) changed at offset %zu while free",
                     p, s->cls, s->block_size, i + sizeof(hak_block));
            fatal_abort();
        }
    }
}

void _hak_debug_on_alloc(hak_slab *s, void *p)
{
    VG_OPEN(p, s->block_size);
    check_fill(s, p);
    if (!_hak_dbg_internal_alloc) VG_ALLOC(p, s->block_size);   /* not the program's */
    size_t index = hak_block_index(s, p);
    uint64_t bit = (uint64_t)1 << (index % 64);
    uint64_t was = atomic_fetch_or(out_word(s, index), bit);
    hak_assert(!(was & bit));
    hak_dbg_count(1);
}

void _hak_debug_on_free(hak_slab *s, void *p)
{
    size_t bs = s->block_size;
    if (bs == 0) return;   /* a large block's run, or a bad pointer: _hak_run_free */
    size_t off = (size_t)((char *)p - hak_slab_start(s));
    if ((char *)p < hak_slab_start(s) || off % bs != 0 || off / bs >= s->capacity)
        _hak_fatal_block("free(): interior pointer", p, bs);
    uint64_t bit = (uint64_t)1 << ((off / bs) % 64);
    uint64_t was = atomic_fetch_and(out_word(s, off / bs), ~bit);
    if (!(was & bit)) _hak_fatal_block("free(): double free", p, bs);
    atomic_fetch_sub_explicit(&_hak_live_blocks, 1, memory_order_relaxed);   /* every free counts */
    VG_FREE(p);
    _hak_debug_fill_free(s, p);
}
#endif
