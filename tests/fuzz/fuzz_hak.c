/* fuzz_hak.c: hakmem's fuzz harness (issue 6, "Fuzzing").
 *
 * The input is a program: a sequence of operations on the prefix API
 * (hak_malloc, hak_calloc, hak_realloc, hak_free, hak_posix_memalign,
 * hak_aligned_alloc, hak_memalign, hak_valloc, hak_pvalloc, hak_usable_size,
 * hak_trim), each with its arguments taken from the following bytes.  Every
 * byte string is a valid program: reading past the end gives zeros.  The
 * harness keeps a shadow model of the live blocks (64 slots) and checks every
 * result against it:
 *   - every block is 16-byte aligned, and aligned as asked;
 *   - hak_usable_size >= the size asked, and hak_owns says it is hakmem's;
 *   - no two live blocks overlap (over their whole usable size), including
 *     blocks handed to the second thread and not yet freed by it;
 *   - each block is filled, up to its usable size, with a pattern derived
 *     from its id and the offset (blocks over 256 KiB: both ends and a
 *     sample every 64 KiB); the pattern is verified before every free and
 *     realloc and by the usable-size operation, so a block that another
 *     allocation overlaps or that hakmem writes into is caught;
 *   - realloc keeps min(old size, new size) bytes; calloc memory is zero;
 *   - impossible requests fail with NULL and ENOMEM (EINVAL for bad
 *     alignments) and leave the old block of a realloc intact;
 *   - at the end of each input everything is freed and, in builds that count
 *     (debug, asan, tsan, fuzz), hak_live_blocks() is back where it started.
 * A second thread (the "worker") frees blocks handed to it, allocates blocks
 * for the main thread (which then frees them across threads), and can be
 * made to exit and be replaced, with its blocks still live.  Bursts of
 * thousands of small blocks empty whole slabs, which starts hakmem's purge
 * thread, so purging runs concurrently with everything else.
 *
 * Built three ways (tests/fuzz.mk):
 *   - with clang -fsanitize=fuzzer: libFuzzer's LLVMFuzzerTestOneInput;
 *   - with -DHAKFUZZ_MAIN (gcc or clang): a program that replays files and
 *     directories given as arguments (a corpus), or, with --random SECONDS,
 *     runs random programs for that long (a self-contained fuzzer without
 *     coverage feedback; a failing input is written to --save DIR).
 * On the first difference the harness prints "hakfuzz: op #N (name): what"
 * and aborts.  HAKFUZZ_TRACE=1 in the environment prints every operation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hakmem.h"

#define SLOTS      64
#define MAX_OPS    4096                 /* operations read from one input */
#define MAX_SIZE   ((size_t)6 << 20)    /* largest request */
#define LIVE_CAP   ((size_t)96 << 20)   /* requests that would pass this are skipped */
#define QCAP       256                  /* blocks in flight to the worker */
#define BURST_MAX  2048
#define ALIGN_MIN  16                   /* every hakmem block */

/* ---- failure ------------------------------------------------------------ */

static const char *cur_input = "(input)";   /* for the message: file or seed */
static unsigned long cur_op;
static const char *cur_name = "start";
static int trace;

static void fz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fz_fail(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "hakfuzz: %s: op #%lu (%s): ", cur_input, cur_op, cur_name);
    if (n < 0 || n >= (int)sizeof buf) n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    n += m;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    abort();
}

#define FZ_CHECK(cond, ...)          \
    do {                             \
        if (!(cond)) fz_fail(__VA_ARGS__); \
    } while (0)

/* Hide a value from the optimizer (gcc and clang know what malloc-like
 * functions return and would fold the checks). */
static inline size_t opaque(size_t v)
{
    __asm__ volatile("" : "+r"(v));
    return v;
}

/* ---- the pattern ----------------------------------------------------------
 * Byte i of a block with id `id` is byte (i % 8) of word(id, i / 8): a block
 * can be filled or checked from any offset, and a realloc'd block keeps its
 * id, so the bytes it kept are still right. */
static inline uint64_t pat_word(uint64_t id, uint64_t w)
{
    uint64_t x = (id + 1) * 0x9E3779B97F4A7C15ull ^ (w * 0xD6E8FEB86659FD93ull);
    x ^= x >> 31;
    return x * 0xBF58476D1CE4E5B9ull;
}
static inline unsigned char pat_byte(uint64_t id, size_t i)
{
    return (unsigned char)(pat_word(id, i >> 3) >> ((i & 7) * 8));
}

static void fill_range(unsigned char *p, size_t from, size_t to, uint64_t id)
{
    size_t i = from;
    for (; i < to && (i & 7); i++) p[i] = pat_byte(id, i);
    for (; i + 8 <= to; i += 8) {
        uint64_t v = pat_word(id, i >> 3);
        memcpy(p + i, &v, 8);
    }
    for (; i < to; i++) p[i] = pat_byte(id, i);
}

/* first offset in [from, to) that is wrong, or to */
static size_t check_range(const unsigned char *p, size_t from, size_t to, uint64_t id)
{
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (p[i] != pat_byte(id, i)) return i;
    for (; i + 8 <= to; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v != pat_word(id, i >> 3)) break;
    }
    for (; i < to; i++)
        if (p[i] != pat_byte(id, i)) return i;
    return to;
}

static size_t first_nonzero(const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        if (v) break;
    }
    for (; i < n; i++)
        if (p[i]) return i;
    return n;
}

/* Which bytes of a block carry the pattern: all of them up to SPARSE_MIN
 * bytes; in bigger blocks the first and last EDGE bytes and SAMPLE bytes
 * every STRIDE.  Every page touched costs a page fault, and faults are
 * most of the time of an input with big blocks; the sample still finds a
 * page lost or moved by realloc (mremap) or a cached mapping handed out
 * dirty, and overlaps are checked on the addresses anyway. */
#define SPARSE_MIN ((size_t)256 << 10)
#define EDGE       4096
#define STRIDE     ((size_t)64 << 10)
#define SAMPLE     64

/* the k-th range [*a, *b) of a block of `usable` bytes; 0 past the last */
static int region(size_t usable, size_t k, size_t *a, size_t *b)
{
    if (usable <= SPARSE_MIN) {
        *a = 0;
        *b = usable;
        return k == 0;
    }
    size_t samples = (usable - EDGE - SAMPLE) / STRIDE;   /* ranges k = 1 .. samples */
    if (k == 0) {
        *a = 0;
        *b = EDGE;
    } else if (k <= samples) {
        *a = k * STRIDE;
        *b = *a + SAMPLE;
    } else if (k == samples + 1) {
        *a = usable - EDGE;
        *b = usable;
    } else {
        return 0;
    }
    return 1;
}

/* fill the pattern over the block's ranges */
static void fill_block(unsigned char *p, size_t usable, uint64_t id)
{
    size_t a, b;
    for (size_t k = 0; region(usable, k, &a, &b); k++) fill_range(p, a, b, id);
}

/* first wrong offset below `limit` in the ranges of a block of `usable`
 * bytes, or limit */
static size_t check_block(const unsigned char *p, size_t usable, size_t limit, uint64_t id)
{
    size_t a, b;
    for (size_t k = 0; region(usable, k, &a, &b); k++) {
        if (b > limit) b = limit;
        if (a >= b) continue;
        size_t bad = check_range(p, a, b, id);
        if (bad != b) return bad;
    }
    return limit;
}

/* first non-zero offset below n in the ranges, or n */
static size_t check_zero(const unsigned char *p, size_t usable, size_t n)
{
    size_t a, b;
    for (size_t k = 0; region(usable, k, &a, &b); k++) {
        if (b > n) b = n;
        if (a >= b) continue;
        size_t nz = first_nonzero(p + a, b - a);
        if (nz != b - a) return a + nz;
    }
    return n;
}

/* ---- the shadow model ----------------------------------------------------- */

typedef struct {
    unsigned char *p;    /* NULL: empty slot */
    size_t req;          /* size asked for */
    size_t usable;       /* hak_usable_size at allocation (filled with the pattern) */
    size_t align;        /* alignment asked for (at least 16) */
    uint64_t id;
} blk;

static blk slots[SLOTS];
static size_t live_bytes;
static uint64_t next_id;

/* Blocks handed to the worker: a ring; state goes QUEUED -> the worker
 * takes it -> DONE just before the worker frees it (so a block is never
 * counted gone while it is still live; at worst a little too long). */
enum { REC_EMPTY, REC_QUEUED, REC_DONE };
typedef struct {
    blk b;
    _Atomic int state;
} rec;

enum { CMD_NONE, CMD_ALLOC, CMD_EXIT };
typedef struct {
    pthread_t th;
    int running;
    pthread_mutex_t lock;
    pthread_cond_t cv;         /* the worker waits on it */
    pthread_cond_t done_cv;    /* the main thread waits on it */
    rec ring[QCAP];
    unsigned head, tail;       /* ring[tail..head) handed over (lock) */
    int cmd;                   /* one command at a time (lock) */
    size_t cmd_size, cmd_align;
    unsigned cmd_kind;
    blk result;
    int busy;                  /* worker is working on something (lock) */
    uint64_t frees;
} worker_t;
static worker_t wk = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
};

static int overlaps(const blk *a, const unsigned char *p, size_t n)
{
    return a->p && p < a->p + a->usable && a->p < p + n;
}

/* A new block [p, p+n) must not overlap any live block. */
static void check_no_overlap(const unsigned char *p, size_t n, int except_slot)
{
    for (int i = 0; i < SLOTS; i++) {
        if (i == except_slot) continue;
        FZ_CHECK(!overlaps(&slots[i], p, n),
                 "new block %p+%zu overlaps live block %p+%zu (slot %d, id %llu)", (void *)p, n,
                 (void *)slots[i].p, slots[i].usable, i, (unsigned long long)slots[i].id);
    }
    for (unsigned i = 0; i < QCAP; i++) {
        rec *r = &wk.ring[i];
        if (atomic_load_explicit(&r->state, memory_order_acquire) != REC_QUEUED) continue;
        /* the worker may mark it DONE and free it now: check the state again
         * after the comparison */
        int ov = overlaps(&r->b, p, n);
        if (ov && atomic_load_explicit(&r->state, memory_order_acquire) == REC_QUEUED)
            fz_fail("new block %p+%zu overlaps block %p+%zu (id %llu) handed to the worker and not "
                    "yet freed", (void *)p, n, (void *)r->b.p, r->b.usable,
                    (unsigned long long)r->b.id);
    }
}

/* Checks on a block just returned by hakmem for a request of `req` bytes
 * aligned to `align`; fills in b (not the pattern). */
static void check_new(blk *b, void *p, size_t req, size_t align, const char *what)
{
    FZ_CHECK(p != NULL, "%s(%zu, align %zu) returned NULL, errno %d", what, req, align, errno);
    if (align < ALIGN_MIN) align = ALIGN_MIN;
    FZ_CHECK(((uintptr_t)p & (align - 1)) == 0, "%s(%zu)=%p is not %zu-byte aligned", what, req,
             p, align);
    FZ_CHECK(hak_owns(p) == 1, "%s(%zu)=%p: hak_owns says %d", what, req, p, hak_owns(p));
    size_t u = hak_usable_size(p);
    FZ_CHECK(u >= req, "%s(%zu)=%p: usable size %zu is smaller than asked", what, req, p, u);
    FZ_CHECK(u <= req + MAX_SIZE + ((size_t)4 << 20), "%s(%zu)=%p: usable size %zu is absurd",
             what, req, p, u);
    b->p = p;
    b->req = req;
    b->usable = u;
    b->align = align;
}

static void verify(const blk *b, const char *when)
{
    size_t bad = check_block(b->p, b->usable, b->usable, b->id);
    FZ_CHECK(bad == b->usable,
             "block %p (id %llu, %zu bytes asked, %zu usable) damaged at offset %zu %s: "
             "0x%02x instead of 0x%02x", (void *)b->p, (unsigned long long)b->id, b->req,
             b->usable, bad, when, b->p[bad], pat_byte(b->id, bad));
}

/* Slot i takes block b (already checked), which gets a fresh id and the
 * pattern over its usable size. */
static void slot_set(int i, blk b, int zeroed)
{
    if (zeroed) {
        size_t nz = check_zero(b.p, b.usable, b.req);
        FZ_CHECK(nz == b.req, "calloc'd block %p of %zu bytes has 0x%02x at offset %zu",
                 (void *)b.p, b.req, nz < b.req ? b.p[nz] : 0, nz);
    }
    check_no_overlap(b.p, b.usable, i);
    b.id = next_id++;
    fill_block(b.p, b.usable, b.id);
    slots[i] = b;
    live_bytes += b.usable;
}

static void slot_free(int i)
{
    blk *b = &slots[i];
    if (!b->p) return;
    verify(b, "before free");
    FZ_CHECK(hak_usable_size(b->p) == b->usable, "usable size of %p changed from %zu to %zu",
             (void *)b->p, b->usable, hak_usable_size(b->p));
    hak_free(b->p);
    live_bytes -= b->usable;
    b->p = NULL;
}

static int over_cap(size_t req)
{
    return live_bytes + req > LIVE_CAP;
}

/* ---- the worker thread ---------------------------------------------------- */

static void *alloc_kind(unsigned kind, size_t size, size_t align, size_t *req_align, int *zeroed);

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wk.lock);
    for (;;) {
        if (wk.tail != wk.head) {
            rec *r = &wk.ring[wk.tail % QCAP];
            wk.busy = 1;
            pthread_mutex_unlock(&wk.lock);
            verify(&r->b, "when the worker took it");
            unsigned char *p = r->b.p;
            atomic_store_explicit(&r->state, REC_DONE, memory_order_release);
            hak_free(p);
            pthread_mutex_lock(&wk.lock);
            wk.frees++;
            wk.tail++;
            wk.busy = 0;
            pthread_cond_broadcast(&wk.done_cv);
            continue;
        }
        if (wk.cmd == CMD_EXIT) {
            wk.cmd = CMD_NONE;
            pthread_cond_broadcast(&wk.done_cv);
            break;
        }
        if (wk.cmd == CMD_ALLOC) {
            size_t size = wk.cmd_size, align = wk.cmd_align;
            unsigned kind = wk.cmd_kind;
            wk.busy = 1;
            pthread_mutex_unlock(&wk.lock);
            size_t ra;
            int zeroed;
            errno = 0;
            void *p = alloc_kind(kind, size, align, &ra, &zeroed);
            blk b = { 0 };
            check_new(&b, p, size, ra, "worker allocation");
            if (zeroed) {
                size_t nz = check_zero(b.p, b.usable, b.req);
                FZ_CHECK(nz == b.req, "worker: calloc'd block %p of %zu bytes not zero at %zu",
                         (void *)b.p, b.req, nz);
            }
            pthread_mutex_lock(&wk.lock);
            wk.result = b;
            wk.cmd = CMD_NONE;
            wk.busy = 0;
            pthread_cond_broadcast(&wk.done_cv);
            continue;
        }
        pthread_cond_wait(&wk.cv, &wk.lock);
    }
    pthread_mutex_unlock(&wk.lock);
    return NULL;
}

static void worker_start(void)
{
    if (wk.running) return;
    int e = pthread_create(&wk.th, NULL, worker_main, NULL);
    FZ_CHECK(e == 0, "pthread_create: %d", e);
    wk.running = 1;
}

/* Wait until the worker has freed everything handed to it. */
static void worker_sync(void)
{
    pthread_mutex_lock(&wk.lock);
    pthread_cond_signal(&wk.cv);
    while (wk.tail != wk.head || wk.busy || wk.cmd != CMD_NONE)
        pthread_cond_wait(&wk.done_cv, &wk.lock);
    pthread_mutex_unlock(&wk.lock);
    for (unsigned i = 0; i < QCAP; i++) atomic_store(&wk.ring[i].state, REC_EMPTY);
}

static void worker_stop(void)
{
    if (!wk.running) return;
    pthread_mutex_lock(&wk.lock);
    while (wk.cmd != CMD_NONE) pthread_cond_wait(&wk.done_cv, &wk.lock);
    wk.cmd = CMD_EXIT;
    pthread_cond_signal(&wk.cv);
    pthread_mutex_unlock(&wk.lock);
    pthread_join(wk.th, NULL);
    wk.running = 0;
    for (unsigned i = 0; i < QCAP; i++) atomic_store(&wk.ring[i].state, REC_EMPTY);
}

/* The worker frees b (after checking its pattern). */
static void handoff(const blk *b)
{
    pthread_mutex_lock(&wk.lock);
    while (wk.head - wk.tail >= QCAP) {
        pthread_cond_signal(&wk.cv);
        pthread_cond_wait(&wk.done_cv, &wk.lock);
    }
    rec *r = &wk.ring[wk.head % QCAP];
    r->b = *b;
    atomic_store_explicit(&r->state, REC_QUEUED, memory_order_release);
    wk.head++;
    /* woken by batches (each wake-up is a context switch, and switches are
     * what the fuzzer's time would go to); worker_sync wakes it too */
    if (wk.head - wk.tail >= 8) pthread_cond_signal(&wk.cv);
    pthread_mutex_unlock(&wk.lock);
}

/* The worker allocates; the block comes back checked but without pattern. */
static blk worker_alloc(unsigned kind, size_t size, size_t align)
{
    pthread_mutex_lock(&wk.lock);
    while (wk.cmd != CMD_NONE) pthread_cond_wait(&wk.done_cv, &wk.lock);
    wk.cmd = CMD_ALLOC;
    wk.cmd_kind = kind;
    wk.cmd_size = size;
    wk.cmd_align = align;
    pthread_cond_signal(&wk.cv);
    while (wk.cmd != CMD_NONE) pthread_cond_wait(&wk.done_cv, &wk.lock);
    blk b = wk.result;
    pthread_mutex_unlock(&wk.lock);
    return b;
}

/* ---- reading the input -----------------------------------------------------
 * Page faults are most of the cost of an operation, so sizes of several MiB
 * are kept to about 1 in 40. */

typedef struct {
    const uint8_t *d;
    size_t n, i;
} reader;

static unsigned u8(reader *r)
{
    return r->i < r->n ? r->d[r->i++] : 0;
}
static unsigned u16(reader *r)
{
    unsigned a = u8(r);
    return a | u8(r) << 8;
}
static uint32_t u32(reader *r)
{
    uint32_t a = u16(r);
    return a | (uint32_t)u16(r) << 16;
}

/* sizes where something changes: class and page boundaries, the small/large
 * limit (32 KiB), the 2 MiB chunk of large mappings (64-byte header) */
static const size_t interesting[] = {
    0, 1, 8, 15, 16, 17, 24, 31, 32, 48, 64, 100, 127, 128, 129, 144, 255, 256, 257, 500,
    512, 1000, 1023, 1024, 1025, 2048, 3000, 4095, 4096, 4097, 8192, 12288, 16384, 24576,
    32752, 32767, 32768, 32769, 32784, 40000, 65536, 131072, 1048576,
    (2u << 20) - 4096 - 64, (2u << 20) - 64, (2u << 20) - 63, 2u << 20, (2u << 20) + 1,
    (4u << 20) - 64, 4u << 20, (4u << 20) + 4096, 6u << 20,
};
#define N_INTERESTING (sizeof(interesting) / sizeof(interesting[0]))

static size_t get_size(reader *r)
{
    unsigned b = u8(r);
    size_t s;
    switch (b >> 5) {
    case 0: s = b & 31; break;                                        /* 0 .. 31 */
    case 1: s = (b & 31) << 8 | u8(r); break;                         /* .. 8 KiB */
    case 2: s = ((b & 31) << 10 | (u16(r) & 1023)) + 1; break;        /* .. 32 KiB */
    case 3:                                                           /* boundary +-4 */
        s = interesting[u8(r) % N_INTERESTING];
        s = s + (b & 7) >= 4 ? s + (b & 7) - 4 : 0;
        break;
    case 4: s = 32768 + u32(r) % (224u << 10); break;                /* 32 .. 256 KiB */
    case 5:                                                           /* .. 6 MiB, or .. 64 KiB */
        s = (b & 28) == 28 ? u32(r) % (MAX_SIZE + 1) : u32(r) % 65537;
        break;
    case 6: s = (size_t)u8(r) << 4; break;                            /* multiples of 16 */
    default: s = u16(r) % 1025; break;                                /* 0 .. 1 KiB */
    }
    return s > MAX_SIZE ? MAX_SIZE : s;
}

/* a power of two from 1 to 1 MiB, mostly small */
static size_t get_align(reader *r)
{
    unsigned b = u8(r);
    unsigned shift = b & 0x80 ? (b & 31) % 21 : (b & 15) % 13;
    return (size_t)1 << shift;
}

/* kind: 0 malloc, 1 calloc, 2 aligned_alloc, 3 posix_memalign, 4 memalign,
 * 5 valloc. *req_align: the alignment the result must have. */
static void *alloc_kind(unsigned kind, size_t size, size_t align, size_t *req_align, int *zeroed)
{
    void *p = NULL;
    *req_align = ALIGN_MIN;
    *zeroed = 0;
    switch (kind % 6) {
    case 0: return hak_malloc(opaque(size));
    case 1:
        *zeroed = 1;
        return hak_calloc(opaque(1), opaque(size));
    case 2:
        *req_align = align;
        return hak_aligned_alloc(opaque(align), opaque(size));
    case 3: {
        if (align < sizeof(void *)) align = sizeof(void *);
        *req_align = align;
        int e = hak_posix_memalign(&p, opaque(align), opaque(size));
        if (e != 0) {
            errno = e;
            return NULL;
        }
        return p;
    }
    case 4:
        *req_align = align;
        return hak_memalign(opaque(align), opaque(size));
    default:
        *req_align = 4096;
        return hak_valloc(opaque(size));
    }
}

/* ---- the operations ------------------------------------------------------- */

static blk burst[BURST_MAX];

static int cmp_blk(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const blk *)a)->p, y = (uintptr_t)((const blk *)b)->p;
    return x < y ? -1 : x > y;
}

static void op_burst(reader *r)
{
    unsigned n = 1 + u8(r) * 8;          /* 1 .. 2041 */
    size_t size = get_size(r) % 2049;    /* small blocks: whole slabs empty */
    unsigned how = u8(r);
    for (unsigned i = 0; i < n; i++) {
        void *p = (how & 4) ? hak_calloc(1, opaque(size)) : hak_malloc(opaque(size));
        check_new(&burst[i], p, size, ALIGN_MIN, "burst allocation");
        burst[i].id = next_id++;
        fill_block(burst[i].p, burst[i].usable, burst[i].id);
    }
    /* no overlap among them (sorted neighbours) or with the live blocks */
    qsort(burst, n, sizeof(blk), cmp_blk);
    for (unsigned i = 0; i + 1 < n; i++)
        FZ_CHECK(burst[i].p + burst[i].usable <= burst[i + 1].p,
                 "burst blocks %p+%zu and %p overlap", (void *)burst[i].p, burst[i].usable,
                 (void *)burst[i + 1].p);
    for (unsigned i = 0; i < n; i++) check_no_overlap(burst[i].p, burst[i].usable, -1);
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (how & 1) ? n - 1 - k : k;
        if ((how & 2) && (k & 1) && wk.running) {
            handoff(&burst[i]);
        } else {
            verify(&burst[i], "before the burst's free");
            hak_free(burst[i].p);
        }
    }
    if (how & 8) worker_sync();
}

static void op_impossible(reader *r, int slot)
{
    unsigned what = u8(r) % 7;
    void *p;
    errno = 0;
    switch (what) {
    case 0:
        p = hak_malloc(opaque(SIZE_MAX));
        FZ_CHECK(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX)=%p errno %d", p, errno);
        break;
    case 1:
        p = hak_malloc(opaque((size_t)1 << 47));
        FZ_CHECK(p == NULL && errno == ENOMEM, "malloc(2^47)=%p errno %d", p, errno);
        break;
    case 2:
        p = hak_calloc(opaque(SIZE_MAX / 2 + 2), opaque(2));
        FZ_CHECK(p == NULL && errno == ENOMEM, "calloc overflowing=%p errno %d", p, errno);
        break;
    case 3:
        p = hak_aligned_alloc(opaque(4096), opaque(SIZE_MAX - 100));
        FZ_CHECK(p == NULL && errno == ENOMEM, "aligned_alloc(4096, SIZE_MAX-100)=%p errno %d",
                 p, errno);
        break;
    case 4: {
        p = (void *)0x1234;
        int e = hak_posix_memalign(&p, opaque(24), 16);
        FZ_CHECK(e == EINVAL && p == (void *)0x1234, "posix_memalign(24): %d, %p", e, p);
        e = hak_posix_memalign(&p, opaque(4), 16);
        FZ_CHECK(e == EINVAL && p == (void *)0x1234, "posix_memalign(4): %d, %p", e, p);
        e = hak_posix_memalign(&p, opaque(64), opaque(SIZE_MAX - 10));
        FZ_CHECK(e == ENOMEM && p == (void *)0x1234, "posix_memalign(64, huge): %d, %p", e, p);
        break;
    }
    case 5:
        p = hak_aligned_alloc(opaque(48), 100);
        FZ_CHECK(p == NULL && errno == EINVAL, "aligned_alloc(48, 100)=%p errno %d", p, errno);
        break;
    default: {
        blk *b = &slots[slot];
        if (!b->p) break;
        p = hak_realloc(b->p, opaque(SIZE_MAX - 4096));
        FZ_CHECK(p == NULL && errno == ENOMEM, "realloc(%p, huge)=%p errno %d", (void *)b->p, p,
                 errno);
        verify(b, "after a failed realloc");
        break;
    }
    }
}

static void op_realloc(reader *r, int i)
{
    size_t size = get_size(r);
    blk *b = &slots[i];
    if (b->p && size > b->usable && over_cap(size)) return;
    if (!b->p && over_cap(size)) return;
    if (!b->p) {
        void *p = hak_realloc(NULL, opaque(size));
        blk nb;
        check_new(&nb, p, size, ALIGN_MIN, "realloc(NULL)");
        slot_set(i, nb, 0);
        return;
    }
    verify(b, "before realloc");
    if (size == 0) {              /* as glibc: frees, returns NULL */
        errno = 0;
        void *p = hak_realloc(b->p, opaque(0));
        FZ_CHECK(p == NULL, "realloc(%p, 0) returned %p, not NULL", (void *)b->p, p);
        live_bytes -= b->usable;
        b->p = NULL;
        return;
    }
    unsigned char *old = b->p;
    size_t old_req = b->req;
    void *p = hak_realloc(old, opaque(size));
    blk nb;
    check_new(&nb, p, size, ALIGN_MIN, "realloc");
    size_t keep = old_req < size ? old_req : size;
    size_t bad = check_block(nb.p, b->usable, keep, b->id);   /* what the old block had */
    FZ_CHECK(bad == keep, "realloc(%p, %zu -> %zu)=%p lost the contents at offset %zu of %zu",
             (void *)old, old_req, size, p, bad, keep);
    live_bytes -= b->usable;
    b->p = NULL;                 /* not compared with itself */
    check_no_overlap(nb.p, nb.usable, i);
    nb.id = b->id;               /* same pattern: the kept bytes are right */
    fill_block(nb.p, nb.usable, nb.id);   /* rewrites the kept bytes with the same values */
    slots[i] = nb;
    live_bytes += nb.usable;
}

static const char *const op_names[16] = {
    "malloc", "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc",
    "usable_size", "handoff", "worker_alloc", "sync", "worker_restart", "burst", "trim",
    "impossible", "memalign/valloc/pvalloc",
};

static void run_op(reader *r)
{
    unsigned op = u8(r) % 16;
    int i = (int)(u8(r) % SLOTS);
    cur_name = op_names[op];
    if (trace) fprintf(stderr, "hakfuzz: op #%lu %s slot %d\n", cur_op, cur_name, i);
    blk nb;
    void *p;
    switch (op) {
    case 0:
    case 1: {
        size_t size = get_size(r);
        slot_free(i);
        if (over_cap(size)) break;
        p = hak_malloc(opaque(size));
        check_new(&nb, p, size, ALIGN_MIN, "malloc");
        slot_set(i, nb, 0);
        break;
    }
    case 2: {
        size_t count = 1 + u8(r) % 16;
        size_t size = get_size(r) / count;
        slot_free(i);
        if (over_cap(size * count)) break;
        p = hak_calloc(opaque(count), opaque(size));
        check_new(&nb, p, count * size, ALIGN_MIN, "calloc");
        slot_set(i, nb, 1);
        break;
    }
    case 3: op_realloc(r, i); break;
    case 4: slot_free(i); break;
    case 5:
    case 6: {
        size_t align = get_align(r);
        size_t size = get_size(r);
        slot_free(i);
        if (over_cap(size + align)) break;
        size_t ra;
        int z;
        errno = 0;
        if (op == 5 && align < sizeof(void *)) {
            p = (void *)0x5678;
            int e = hak_posix_memalign(&p, opaque(align), opaque(size));
            FZ_CHECK(e == EINVAL && p == (void *)0x5678,
                     "posix_memalign(align %zu): %d, %p instead of EINVAL", align, e, p);
            break;
        }
        p = alloc_kind(op == 5 ? 3 : 2, size, align, &ra, &z);
        check_new(&nb, p, size, ra, op == 5 ? "posix_memalign" : "aligned_alloc");
        slot_set(i, nb, 0);
        break;
    }
    case 7: {
        blk *b = &slots[i];
        if (!b->p) break;
        verify(b, "at a usable-size check");
        size_t u = hak_usable_size(b->p);
        FZ_CHECK(u == b->usable, "usable size of %p changed from %zu to %zu", (void *)b->p,
                 b->usable, u);
        FZ_CHECK(hak_owns(b->p) == 1, "hak_owns(%p) of a live block is %d", (void *)b->p,
                 hak_owns(b->p));
        break;
    }
    case 8: {
        blk *b = &slots[i];
        if (!b->p || !wk.running) break;
        verify(b, "before the hand-off");
        handoff(b);
        live_bytes -= b->usable;
        b->p = NULL;
        break;
    }
    case 9: {
        unsigned kind = u8(r);
        size_t align = get_align(r);
        size_t size = get_size(r);
        slot_free(i);
        if (!wk.running || over_cap(size + align)) break;
        nb = worker_alloc(kind, size, align);
        slot_set(i, nb, 0);
        break;
    }
    case 10: worker_sync(); break;
    case 11: {
        /* the worker exits with the blocks it allocated still live; mostly a
         * new one starts at once, else hand-offs wait for a later restart */
        unsigned again = u8(r) & 7;
        worker_stop();
        if (again) worker_start();
        break;
    }
    case 12: op_burst(r); break;
    case 13: hak_trim(); break;
    case 14: op_impossible(r, i); break;
    default: {
        unsigned kind = u8(r) % 3;
        size_t align = get_align(r);
        size_t size = get_size(r);
        slot_free(i);
        if (over_cap(size + align + 4096)) break;
        if (kind == 0) {
            p = hak_memalign(opaque(align), opaque(size));
            check_new(&nb, p, size, align, "memalign");
        } else if (kind == 1) {
            p = hak_valloc(opaque(size));
            check_new(&nb, p, size, 4096, "valloc");
        } else {
            p = hak_pvalloc(opaque(size));
            size_t want = (size + 4095) & ~(size_t)4095;
            check_new(&nb, p, want ? want : 4096, 4096, "pvalloc");
        }
        slot_set(i, nb, 0);
        break;
    }
    }
}

/* One input: run it, then free everything and compare the live count. */
static void run_input(const uint8_t *data, size_t size)
{
    static int started;
    if (!started) {
        started = 1;
        trace = getenv("HAKFUZZ_TRACE") && atoi(getenv("HAKFUZZ_TRACE")) > 0;
    }
    worker_start();
    long long live0 = hak_live_blocks();
    reader r = { data, size, 0 };
    cur_op = 0;
    while (r.i < r.n && cur_op < MAX_OPS) {
        run_op(&r);
        cur_op++;
    }
    cur_name = "end of input";
    if (!wk.running) worker_start();
    for (int i = 0; i < SLOTS; i++) {
        /* half of what is left goes across threads */
        if (slots[i].p && (i & 1)) {
            verify(&slots[i], "at the end");
            handoff(&slots[i]);
            live_bytes -= slots[i].usable;
            slots[i].p = NULL;
        } else {
            slot_free(i);
        }
    }
    worker_sync();
    FZ_CHECK(live_bytes == 0, "shadow model: %zu live bytes left", live_bytes);
    long long live1 = hak_live_blocks();
    FZ_CHECK(live0 == live1, "hak_live_blocks() is %lld after freeing everything, %lld before",
             live1, live0);
}

#ifndef HAKFUZZ_MAIN
/* ---- libFuzzer ---------------------------------------------------------- */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run_input(data, size);
    return 0;
}
#else
/* ---- replay and random driver --------------------------------------------- */
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

static unsigned long n_inputs;

static void replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hakfuzz: cannot open %s: %s\n", path, strerror(errno));
        exit(2);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "hakfuzz: out of memory reading %s\n", path);
        exit(2);
    }
    cur_input = path;
    run_input(buf, n);
    free(buf);
    n_inputs++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "hakfuzz: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (!S_ISDIR(st.st_mode)) {
        replay_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "hakfuzz: cannot open directory %s\n", path);
        exit(2);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);   /* same order every time */
    for (size_t i = 0; i < n; i++) {
        struct stat s2;
        if (stat(names[i], &s2) == 0 && S_ISREG(s2.st_mode)) replay_file(names[i]);
        free(names[i]);
    }
    free(names);
}

static uint64_t rnd_state;
static uint64_t rnd(void)
{
    uint64_t z = (rnd_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A random program: random bytes (every byte string is a program). */
static size_t random_input(uint8_t *buf, size_t cap)
{
    size_t n = 64 + rnd() % (cap - 64);
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)rnd();
    return n;
}

static char *save_dir;
static uint8_t *rand_buf;
static size_t rand_len;
static char rand_name[64];

/* If a random input fails, keep it for the corpus: the failure message goes
 * first (from fz_fail), then this runs from the SIGABRT handler. */
static void save_failing(int sig)
{
    (void)sig;
    if (save_dir && rand_buf) {
        char path[4096];
        snprintf(path, sizeof path, "%s/crash-%s", save_dir, rand_name);
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(rand_buf, 1, rand_len, f);
            fclose(f);
            fprintf(stderr, "hakfuzz: failing input written to %s\n", path);
        }
    }
    signal(SIGABRT, SIG_DFL);
    abort();
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fuzz_replay FILE|DIR...            replay inputs (a corpus)\n"
            "       fuzz_replay --random SECONDS [--seed N] [--save DIR]\n"
            "                                          random inputs for that long\n");
    exit(2);
}

int main(int argc, char **argv)
{
    double seconds = -1;
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
    int npaths = 0;
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--random") == 0 && a + 1 < argc) {
            seconds = atof(argv[++a]);
        } else if (strcmp(argv[a], "--seed") == 0 && a + 1 < argc) {
            seed = strtoull(argv[++a], NULL, 0);
        } else if (strcmp(argv[a], "--save") == 0 && a + 1 < argc) {
            save_dir = argv[++a];
        } else if (argv[a][0] == '-') {
            usage();
        } else {
            npaths++;
        }
    }
    if (seconds < 0 && npaths == 0) usage();
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--random") == 0 || strcmp(argv[a], "--seed") == 0 ||
            strcmp(argv[a], "--save") == 0) {
            a++;
            continue;
        }
        replay_path(argv[a]);
    }
    if (npaths) printf("hakfuzz: replayed %lu inputs\n", n_inputs);
    if (seconds >= 0) {
        printf("hakfuzz: random inputs for %.0f s, seed %llu\n", seconds,
               (unsigned long long)seed);
        signal(SIGABRT, save_failing);
        size_t cap = 4096;
        rand_buf = malloc(cap);
        double end = now_s() + seconds;
        unsigned long runs = 0;
        do {
            uint64_t s = seed + runs;
            rnd_state = s;
            rand_len = random_input(rand_buf, cap);
            snprintf(rand_name, sizeof rand_name, "seed-%llu", (unsigned long long)s);
            cur_input = rand_name;
            run_input(rand_buf, rand_len);
            runs++;
        } while (now_s() < end);
        printf("hakfuzz: %lu random inputs passed (seeds %llu..%llu)\n", runs,
               (unsigned long long)seed, (unsigned long long)(seed + runs - 1));
    }
    worker_stop();
    return 0;
}
#endif
