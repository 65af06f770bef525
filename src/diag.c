/* diag.c: everything hakmem says, and how it treats pointers it does not own.
 *
 * All output is built in a stack buffer and written with one write(2): no
 * stdio, no allocation, so it is safe inside malloc and during start-up.
 *
 * Foreign pointers. A pointer that is in no hakmem mapping is either a block
 * glibc's malloc handed out before hakmem took over (or, with the prefix
 * library, one that glibc's malloc gives out beside hakmem), which goes back
 * to glibc's free, or it is an invalid free, which stops the process. A glibc
 * block is recognised by /proc/self/maps plus glibc's chunk header: the
 * pointer lies in the [heap] (brk) area or an anonymous read-write mapping,
 * 16 bytes past a chunk whose size field is sane and fits the mapping. This
 * is a cold path; it runs only for pointers hakmem never handed out.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
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

void _hak_fatal_block(const char *what, const void *p, size_t block_size)
{
    if (block_size)
        _hak_say("%s %p (size class %u, %zu bytes)", what, p, _hak_class_of(block_size), block_size);
    else
        _hak_say("%s %p", what, p);
    _hak_fatal_said = 1;
    abort();
}

void _hak_assert_fail(const char *cond, const char *file, int line)
{
    _hak_say("internal assertion failed: %s at %s:%d", cond, file, line);
    _hak_fatal_said = 1;
    abort();
}

void _hak_trace_free(const char *route, const void *p)
{
    _hak_say("free %p -> %s", p, route);
}

/* ---- glibc's blocks ------------------------------------------------------ */

typedef struct { uintptr_t start, end; bool rw, heap, anon; } mapping;

static uintptr_t parse_hex(const char **s)
{
    uintptr_t v = 0;
    for (;;) {
        char c = **s;
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return v;
        v = v * 16 + (uintptr_t)d;
        (*s)++;
    }
}

/* One line of /proc/self/maps: "start-end perms offset dev inode   path". */
static bool parse_maps_line(const char *s, mapping *m)
{
    m->start = parse_hex(&s);
    if (*s++ != '-') return false;
    m->end = parse_hex(&s);
    if (*s++ != ' ') return false;
    m->rw = s[0] == 'r' && s[1] == 'w';
    for (int field = 0; field < 4 && *s; field++) {   /* perms offset dev inode */
        while (*s && *s != ' ') s++;
        while (*s == ' ') s++;
    }
    m->heap = strncmp(s, "[heap]", 6) == 0;
    m->anon = *s == '\0';
    return true;
}

/* The mapping holding addr, read from /proc/self/maps without allocating. */
static bool find_mapping(uintptr_t addr, mapping *out)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[4096];
    size_t len = 0;
    bool found = false;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            mapping m;
            if (parse_maps_line(line, &m) && addr >= m.start && addr < m.end) {
                *out = m;
                found = true;
                break;
            }
            line = nl + 1;
        }
        if (found) break;
        len = (size_t)(buf + len - line);
        memmove(buf, line, len);
        if (len == sizeof(buf) - 1) len = 0;   /* a line longer than the buffer */
    }
    close(fd);
    return found;
}

#define GLIBC_PREV_INUSE  1
#define GLIBC_IS_MMAPPED  2
#define GLIBC_NON_MAIN    4

bool _hak_glibc_owns(const void *ptr)
{
    uintptr_t p = (uintptr_t)ptr;
    mapping m;
    if (p & (HAK_ALIGN - 1)) return false;
    if (!find_mapping(p, &m) || !m.rw || p - 2 * sizeof(size_t) < m.start) return false;
    if (!m.heap && !m.anon) return false;
    size_t field = ((const size_t *)ptr)[-1];
    size_t csize = field & ~(size_t)7;
    uintptr_t chunk = p - 2 * sizeof(size_t);
    if (csize < 4 * sizeof(size_t) || csize % HAK_ALIGN) return false;
    if (field & GLIBC_IS_MMAPPED) {
        size_t pad = ((const size_t *)ptr)[-2];
        return m.anon && ((chunk - pad) & (HAK_PAGE - 1)) == 0 && chunk - pad >= m.start &&
               (csize + pad) % HAK_PAGE == 0 && chunk + csize <= m.end;
    }
    if (field & GLIBC_NON_MAIN) return m.anon && chunk + csize <= m.end;
    return m.heap && chunk + csize <= m.end;
}

static HAK_TLS bool in_glibc_call;

static void *glibc_symbol(const char *name)
{
    if (in_glibc_call) return NULL;   /* RTLD_NEXT led back into hakmem */
    return dlsym(RTLD_NEXT, name);
}

void _hak_glibc_free(void *p)
{
    void (*real_free)(void *) = NULL;
    if (_hak_glibc_owns(p)) real_free = (void (*)(void *))glibc_symbol("free");
    if (real_free == NULL) _hak_fatal_ptr("free(): invalid pointer (not allocated by hakmem or glibc)", p);
    in_glibc_call = true;
    real_free(p);
    in_glibc_call = false;
}

size_t _hak_glibc_usable_size(void *p)
{
    size_t (*real)(void *) = (size_t (*)(void *))glibc_symbol("malloc_usable_size");
    if (real == NULL) return 0;
    in_glibc_call = true;
    size_t n = real(p);
    in_glibc_call = false;
    return n;
}

#if HAK_SECURE
void _hak_bad_link(hak_slab *s, hak_block *b)
{
    _hak_say("corrupted free list: free block %p (size class %u, %u bytes) holds a link that is not a block of its slab",
             (void *)b, s->cls, s->block_size);
    _hak_fatal_said = 1;
    abort();
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
            _hak_fatal_said = 1;
            abort();
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
    if (bs == 0) _hak_fatal_ptr("free(): pointer into unused memory", p);
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
