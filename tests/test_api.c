/* test_api: API conformance of hakmem's malloc family (issue 2, "The API").
 *
 * Each point of the API paragraph is asserted here: unique malloc(0),
 * 16-byte alignment of every block, calloc zeroing and overflow, errno on
 * failure, posix_memalign's EINVAL and large alignments, aligned_alloc,
 * memalign, valloc, pvalloc, realloc's contents in every size range and its
 * failure leaving the block intact, reallocarray, malloc_usable_size,
 * impossible sizes from every entry point, free(NULL), free preserving
 * errno, and the __libc_malloc family.  Built linked with hakmem and plain
 * (run preloaded); the runner runs both against release and debug.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

static size_t page;

/* usable size of a block, checked against the request */
static size_t usable(void *p, size_t req, const char *what)
{
    size_t u = malloc_usable_size(p);
    CHECK(u >= req, "%s: malloc_usable_size(%p)=%zu < requested %zu", what, p, u, req);
    return u;
}

/* A block as every entry point must hand it out: non-NULL, ours, 16-byte
 * aligned (or more), usable size >= the request, all of it writable. */
static void check_block(void *p, size_t req, size_t align, const char *what)
{
    CHECK(p != NULL, "%s(%zu): NULL, errno %d", what, req, errno);
    CHECK(owned(p) == 1, "%s(%zu)=%p: hak_owns says it is not hakmem's", what, req, p);
    if (align < 16)
        align = 16;
    CHECK(IS_ALIGNED(p, align), "%s(%zu)=%p: not %zu-byte aligned", what, req, p, align);
    size_t u = usable(p, req, what);
    memset(p, 0x5A, u);
}

/* -------------------------------------------------------------------------- */

static void test_malloc_zero(void)
{
    enum { N = 1000 };
    static void *ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = malloc(t_size(0));
        check_block(ps[i], 0, 16, "malloc");
    }
    /* unique: no two live malloc(0) blocks share an address */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            CHECK(ps[i] != ps[j], "malloc(0) returned %p twice (calls %d and %d)", ps[i], i, j);
    for (int i = 0; i < N; i++)
        free(ps[i]);
    /* and from the other zero-size entry points */
    void *a = calloc(t_size(0), 1), *b = calloc(1, t_size(0)), *c = realloc(NULL, t_size(0));
    void *d = aligned_alloc(64, t_size(0)), *e = memalign(256, t_size(0));
    check_block(a, 0, 16, "calloc(0,1)");
    check_block(b, 0, 16, "calloc(1,0)");
    check_block(c, 0, 16, "realloc(NULL,0)");
    check_block(d, 0, 64, "aligned_alloc(64,0)");
    check_block(e, 0, 256, "memalign(256,0)");
    CHECK(a != b && a != c && b != c && d != e, "zero-size blocks not unique");
    free(a); free(b); free(c); free(d); free(e);
}

/* Every size from 0 to 4096, then a sweep to 256 KiB, then large ones: blocks
 * are 16-byte aligned, usable >= size, and the full usable size of each of
 * several neighbours can be written without touching another. */
static void test_sizes_alignment_usable(void)
{
    enum { K = 8 };
    void *ps[K];
    size_t us[K];
    size_t sz = 0;
    while (sz <= 16u << 20) {
        int k = sz <= 65536 ? K : 3;
        for (int i = 0; i < k; i++) {
            ps[i] = malloc(t_size(sz));
            CHECK(ps[i] != NULL, "malloc(%zu) failed, errno %d", sz, errno);
            CHECK(owned(ps[i]) == 1, "malloc(%zu)=%p not hakmem's", sz, ps[i]);
            CHECK(IS_ALIGNED(ps[i], 16), "malloc(%zu)=%p not 16-byte aligned", sz, ps[i]);
            us[i] = usable(ps[i], sz, "malloc");
            fill_pattern(ps[i], us[i], sz * 131 + (size_t)i);
        }
        for (int i = 0; i < k; i++) {
            size_t bad = check_pattern(ps[i], us[i], sz * 131 + (size_t)i);
            CHECK(bad == us[i], "malloc(%zu): byte %zu of block %d (%p, usable %zu) was "
                  "overwritten by a neighbour", sz, bad, i, ps[i], us[i]);
        }
        for (int i = 0; i < k; i++)
            free(ps[i]);
        if (sz < 4096)
            sz++;
        else if (sz < (256u << 10))
            sz += 509;
        else
            sz = sz * 2 + 4093;
    }
    /* large blocks at exact and odd sizes */
    static const size_t big[] = { 32768, 32769, 65536, 65537, 1u << 20, (1u << 20) + 1,
                                  (2u << 20) - 1, 2u << 20, (2u << 20) + 16, 64u << 20 };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        void *p = malloc(t_size(big[i]));
        check_block(p, big[i], 16, "malloc(large)");
        free(p);
    }
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu, not 0",
          malloc_usable_size(NULL));
}

static void test_calloc(void)
{
    static const size_t sizes[] = { 1, 8, 15, 16, 17, 64, 100, 512, 1000, 1024, 1025, 2048,
                                    4096, 10000, 32767, 32768, 32769, 65536, 200000,
                                    1u << 20, (3u << 20) + 5 };
    enum { N = 32 };
    void *ps[N];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t sz = sizes[s];
        int n = sz <= 65536 ? N : 4;
        for (int round = 0; round < 3; round++) {
            /* dirty blocks of this size, freed, so calloc can reuse them */
            for (int i = 0; i < n; i++) {
                ps[i] = malloc(t_size(sz));
                CHECK(ps[i] != NULL, "malloc(%zu) failed", sz);
                memset(ps[i], 0xA5, malloc_usable_size(ps[i]));
            }
            for (int i = n - 1; i >= 0; i--)
                free(ps[i]);
            for (int i = 0; i < n; i++) {
                /* vary the split of the product between the two arguments */
                if (i % 3 == 0)
                    ps[i] = calloc(1, t_size(sz));
                else if (i % 3 == 1)
                    ps[i] = calloc(t_size(sz), 1);
                else if (sz % 8 == 0)
                    ps[i] = calloc(t_size(sz / 8), 8);
                else
                    ps[i] = calloc(1, t_size(sz));
                check_block(ps[i], sz, 16, "calloc");
                /* check_block wrote 0x5A; redo: free and calloc again to
                 * check the zeroing of a block just dirtied */
                free(ps[i]);
                ps[i] = calloc(1, t_size(sz));
                CHECK(ps[i] != NULL, "calloc(1,%zu) failed", sz);
                const unsigned char *c = ps[i];
                for (size_t b = 0; b < sz; b++)
                    CHECK(c[b] == 0, "calloc(1,%zu)=%p: byte %zu is 0x%02x, not zero "
                          "(round %d, block %d)", sz, ps[i], b, c[b], round, i);
                memset(ps[i], 0xC3, sz);
            }
            for (int i = 0; i < n; i++)
                free(ps[i]);
        }
    }
    /* n*size overflow: NULL and ENOMEM */
    static const size_t ovf[][2] = {
        { SIZE_MAX / 2 + 1, 2 }, { 2, SIZE_MAX / 2 + 1 }, { (size_t)1 << 32, (size_t)1 << 32 },
        { SIZE_MAX, SIZE_MAX }, { 3, SIZE_MAX / 3 + 1 }, { 65537, SIZE_MAX / 65537 + 1 },
        { SIZE_MAX, 2 }, { (size_t)1 << 33, (size_t)1 << 31 },
    };
    for (size_t i = 0; i < sizeof ovf / sizeof ovf[0]; i++) {
        errno = 0;
        void *p = calloc(t_size(ovf[i][0]), t_size(ovf[i][1]));
        int e = errno;
        CHECK(p == NULL, "calloc(%zu, %zu) overflows but returned %p", ovf[i][0], ovf[i][1], p);
        CHECK(e == ENOMEM, "calloc(%zu, %zu) overflow: errno %d, not ENOMEM", ovf[i][0],
              ovf[i][1], e);
    }
}

static void test_posix_memalign(void)
{
    /* EINVAL: not a power of two, or not a multiple of sizeof(void *) */
    static const size_t bad[] = { 0, 1, 2, 3, 4, 12, 24, 40, 48, 96, 4097, 3u << 20,
                                  SIZE_MAX, SIZE_MAX - 7 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *sentinel = (void *)0x1234;
        void *p = sentinel;
        int r = posix_memalign(&p, t_size(bad[i]), t_size(64));
        CHECK(r == EINVAL, "posix_memalign(alignment %zu) returned %d, not EINVAL", bad[i], r);
        CHECK(p == sentinel || p == NULL, "posix_memalign(alignment %zu) failed but set the "
              "pointer to %p", bad[i], p);
    }
    /* alignments 8 .. 1 MiB, and some beyond, at sizes around the alignment */
    for (size_t al = sizeof(void *); al <= (16u << 20); al *= 2) {
        const size_t sizes[] = { 0, 1, 8, 15, 16, al / 2, al - 1, al, al + 1, 2 * al + 3, 5000,
                                 40000, 300000 };
        /* beyond 1 MiB, fewer and smaller blocks: page faults cost time */
        size_t nsizes = al <= (1u << 20) ? sizeof sizes / sizeof sizes[0] : 5;
        for (size_t s = 0; s < nsizes; s++) {
            size_t sz = sizes[s];
            void *p = NULL;
            int r = posix_memalign(&p, t_size(al), t_size(sz));
            CHECK(r == 0, "posix_memalign(alignment %zu, size %zu) returned %d", al, sz, r);
            check_block(p, sz, al, "posix_memalign");
            free(p);
            p = aligned_alloc(t_size(al), t_size(sz));
            check_block(p, sz, al, "aligned_alloc");
            free(p);
            p = memalign(t_size(al), t_size(sz));
            check_block(p, sz, al, "memalign");
            free(p);
        }
    }
    /* aligned_alloc and memalign with small alignments still give 16 */
    for (size_t al = 1; al <= 8; al *= 2) {
        void *p = aligned_alloc(t_size(al), t_size(3));
        check_block(p, 3, 16, "aligned_alloc(small alignment)");
        free(p);
        p = memalign(t_size(al), t_size(5));
        check_block(p, 5, 16, "memalign(small alignment)");
        free(p);
    }
    /* many aligned blocks live together, each filled over its usable size,
     * must not overlap or disturb each other */
    enum { N = 200 };
    static void *ps[N];
    static size_t us[N];
    rng_t r;
    rng_seed(&r, 77);
    for (int i = 0; i < N; i++) {
        size_t al = (size_t)8 << rng_below(&r, 15);           /* 8 .. 128 KiB */
        size_t sz = rng_below(&r, 4) == 0 ? rng_below(&r, 200000) : rng_below(&r, 3000);
        switch (i % 3) {
        case 0: CHECK(posix_memalign(&ps[i], al, sz) == 0, "posix_memalign(%zu,%zu)", al, sz); break;
        case 1: ps[i] = aligned_alloc(al, sz); break;
        default: ps[i] = memalign(al, sz); break;
        }
        CHECK(ps[i] != NULL, "aligned allocation (%zu, %zu) failed", al, sz);
        CHECK(IS_ALIGNED(ps[i], al), "aligned allocation (%zu, %zu)=%p misaligned", al, sz, ps[i]);
        us[i] = usable(ps[i], sz, "aligned allocation");
        fill_pattern(ps[i], us[i], (uint64_t)i * 7919);
    }
    for (int i = 0; i < N; i++) {
        size_t b = check_pattern(ps[i], us[i], (uint64_t)i * 7919);
        CHECK(b == us[i], "aligned block %d (%p, usable %zu) overwritten at byte %zu", i, ps[i],
              us[i], b);
    }
    for (int i = 0; i < N; i++)
        free(ps[i]);
}

static void test_valloc_pvalloc(void)
{
    const size_t sizes[] = { 0, 1, 100, page - 1, page, page + 1, 3 * page + 7, 65536,
                             (1u << 20) + 1, 5u << 20 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t sz = sizes[i];
        void *p = valloc(t_size(sz));
        check_block(p, sz, page, "valloc");
        free(p);
        p = pvalloc(t_size(sz));
        size_t want = (sz + page - 1) / page * page;
        if (want == 0 && !t_system)
            want = page;  /* pvalloc(0) gives one page (glibc gives less) */
        check_block(p, want, page, "pvalloc");
        free(p);
    }
}

/* Reference bytes for realloc checks: byte i of a block in chain `key` is
 * ref[key + i], so a prefix is checked with one memcmp. */
#define REF_MAX ((size_t)(64u << 20) + 4096)
static unsigned char *ref;

static void ref_init(void)
{
    ref = mmap(NULL, REF_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(ref != MAP_FAILED, "mmap of the reference buffer");
    fill_pattern(ref, REF_MAX, 0xFEEDF00D);
}

/* realloc chain through every size range, checking the contents survive
 * each growth and each shrink. */
static void realloc_chain(const size_t *sizes, size_t n, size_t key, const char *what)
{
    unsigned char *p = NULL;
    size_t cur = 0;
    const unsigned char *want = ref + key % 4096;
    for (size_t i = 0; i < n; i++) {
        size_t next = sizes[i];
        CHECK(next + 4096 <= REF_MAX, "realloc chain size %zu too large for the test", next);
        unsigned char *q = realloc(p, t_size(next));
        CHECK(q != NULL, "%s: realloc(%p, %zu -> %zu) failed, errno %d", what, (void *)p, cur,
              next, errno);
        CHECK(owned(q) == 1, "%s: realloc(%zu -> %zu) = %p not hakmem's", what, cur, next, (void *)q);
        CHECK(IS_ALIGNED(q, 16), "%s: realloc(%zu -> %zu) = %p not 16-byte aligned", what, cur,
              next, (void *)q);
        usable(q, next, what);
        size_t keep = cur < next ? cur : next;
        if (memcmp(q, want, keep) != 0) {
            size_t bad = 0;
            while (q[bad] == want[bad])
                bad++;
            FAIL("%s: realloc %zu -> %zu (%p -> %p) lost the contents at byte %zu", what, cur,
                 next, (void *)p, (void *)q, bad);
        }
        memcpy(q + keep, want + keep, next - keep);
        p = q;
        cur = next;
    }
    free(p);
}

static void test_realloc(void)
{
    /* up through tiny (<= 1 KiB), mid (<= 32 KiB) and large, and down again */
    static const size_t chain[] = {
        1, 8, 15, 16, 17, 24, 100, 255, 512, 1000, 1024, 1025, 2000, 4096, 8191, 16384, 32767,
        32768, 32769, 40000, 65536, 100000, 1u << 20, 64u << 20, 3u << 20, 1u << 20, 500000,
        65537, 32769, 32768, 20000, 4097, 1025, 1024, 777, 64, 16, 15, 1, 2, 33000, 1, 70000,
        5,
    };
    realloc_chain(chain, sizeof chain / sizeof chain[0], 1, "realloc chain");
    /* explicitly: a 1 MiB block grown to 64 MiB keeps its contents */
    static const size_t big[] = { 1u << 20, 64u << 20, 1u << 20 };
    realloc_chain(big, 3, 2, "realloc 1 MiB -> 64 MiB");
    /* growth by one byte at a time, where growing in place is likely */
    static size_t step[3000];
    for (size_t i = 0; i < 3000; i++)
        step[i] = i + 1;
    realloc_chain(step, 3000, 3, "realloc +1");
    /* large growth in 64 KiB steps (mremap territory), then shrink */
    static size_t lg[200];
    size_t n = 0;
    for (size_t s = 1u << 20; s <= (8u << 20); s += 65536)
        lg[n++] = s;
    for (size_t s = 8u << 20; s >= (1u << 20) && n < 200; s -= 300000)
        lg[n++] = s;
    realloc_chain(lg, n, 4, "realloc large steps");
    /* random walk over all ranges */
    static size_t rw[400];
    rng_t r;
    rng_seed(&r, 5);
    for (int i = 0; i < 400; i++) {
        int range = (int)rng_below(&r, 4);
        rw[i] = range == 0 ? rng_below(&r, 1025)
              : range == 1 ? 1025 + rng_below(&r, 32768 - 1024)
              : range == 2 ? 32769 + rng_below(&r, 1u << 20)
                           : rng_below(&r, 64);
    }
    realloc_chain(rw, 400, 6, "realloc random walk");

    /* realloc(NULL, n) is malloc(n) */
    for (size_t sz = 0; sz < 70000; sz = sz * 3 + 1) {
        void *p = realloc(NULL, t_size(sz));
        check_block(p, sz, 16, "realloc(NULL, n)");
        free(p);
    }
    /* realloc of memalign'd blocks keeps their contents too */
    for (size_t al = 32; al <= (1u << 20); al *= 4) {
        unsigned char *p = memalign(t_size(al), t_size(3000));
        CHECK(p != NULL, "memalign(%zu, 3000)", al);
        fill_bytes(p, 0, 3000, al);
        unsigned char *q = realloc(p, t_size(100000));
        CHECK(q != NULL, "realloc of a memalign(%zu) block failed", al);
        CHECK(check_bytes(q, 3000, al) == 3000, "realloc of memalign(%zu) block lost contents", al);
        q = realloc(q, t_size(10));
        CHECK(q != NULL && check_bytes(q, 10, al) == 10, "shrinking a realloc'd memalign block");
        free(q);
    }
    /* realloc(p, 0) as glibc: frees p and returns NULL (the debug build's
     * live count shows the block was freed) */
    static const size_t r0sizes[] = { 100, 5000, 100000 };
    for (int i = 0; i < 3; i++) {
        void *p = malloc(t_size(r0sizes[i]));
        CHECK(p != NULL, "malloc(%zu)", r0sizes[i]);
        long long before = live_now();
        void *q = realloc(p, t_size(0));
        long long after = live_now();
        CHECK(q == NULL, "realloc(%zu-byte block, 0) returned %p; glibc frees the block and "
              "returns NULL", r0sizes[i], q);
        if (before != -1)
            CHECK(after == before - 1, "realloc(%zu-byte block, 0): live blocks %lld -> %lld, "
                  "the block was not freed", r0sizes[i], before, after);
    }

    /* a failed realloc leaves the block intact and freeable, in every range */
    static const size_t keep_sizes[] = { 16, 100, 1024, 5000, 32768, 40000, 1u << 20, 3u << 20 };
    static const size_t impossible[] = { SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4095,
                                         (size_t)1 << 48, SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX };
    for (size_t k = 0; k < sizeof keep_sizes / sizeof keep_sizes[0]; k++) {
        size_t sz = keep_sizes[k];
        unsigned char *b = malloc(t_size(sz));
        CHECK(b != NULL, "malloc(%zu)", sz);
        fill_bytes(b, 0, sz, sz);
        for (size_t i = 0; i < sizeof impossible / sizeof impossible[0]; i++) {
            errno = 0;
            void *r2 = realloc(b, t_size(impossible[i]));
            int e = errno;
            CHECK(r2 == NULL, "realloc(%zu-byte block, %zu) returned %p", sz, impossible[i], r2);
            CHECK(e == ENOMEM, "realloc(%zu-byte block, %zu): errno %d, not ENOMEM", sz,
                  impossible[i], e);
            errno = 0;
            r2 = reallocarray(b, t_size(impossible[i]), 1);
            e = errno;
            CHECK(r2 == NULL && e == ENOMEM, "reallocarray(%zu-byte block, %zu, 1) = %p, errno %d",
                  sz, impossible[i], r2, e);
            size_t bad = check_bytes(b, sz, sz);
            CHECK(bad == sz, "failed realloc(%zu-byte block, %zu) damaged the block at byte %zu",
                  sz, impossible[i], bad);
        }
        /* the block is still usable: grow it for real, then free it */
        unsigned char *g = realloc(b, t_size(sz + 100));
        CHECK(g != NULL && check_bytes(g, sz, sz) == sz, "realloc after a failed realloc");
        free(g);
    }
}

static void test_reallocarray(void)
{
    unsigned char *p = reallocarray(NULL, t_size(10), t_size(10));
    check_block(p, 100, 16, "reallocarray(NULL, 10, 10)");
    fill_bytes(p, 0, 100, 9);
    p = reallocarray(p, t_size(100), t_size(100));
    CHECK(p != NULL, "reallocarray(p, 100, 100) failed");
    CHECK(check_bytes(p, 100, 9) == 100, "reallocarray lost contents");
    usable(p, 10000, "reallocarray");
    static const size_t ovf[][2] = { { SIZE_MAX / 2 + 1, 2 }, { (size_t)1 << 32, (size_t)1 << 32 },
                                     { SIZE_MAX, SIZE_MAX }, { 3, SIZE_MAX / 3 + 1 } };
    for (size_t i = 0; i < sizeof ovf / sizeof ovf[0]; i++) {
        errno = 0;
        void *q = reallocarray(NULL, t_size(ovf[i][0]), t_size(ovf[i][1]));
        int e = errno;
        CHECK(q == NULL && e == ENOMEM, "reallocarray(NULL, %zu, %zu) overflow: %p, errno %d",
              ovf[i][0], ovf[i][1], q, e);
        errno = 0;
        q = reallocarray(p, t_size(ovf[i][0]), t_size(ovf[i][1]));
        e = errno;
        CHECK(q == NULL && e == ENOMEM, "reallocarray(p, %zu, %zu) overflow: %p, errno %d",
              ovf[i][0], ovf[i][1], q, e);
        CHECK(check_bytes(p, 100, 9) == 100, "failed reallocarray damaged the block");
    }
    free(p);
}

/* An impossible size gives NULL and ENOMEM from every entry point. */
static void test_impossible(void)
{
    static const size_t sizes[] = {
        SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX - 4095, SIZE_MAX - 4096,
        SIZE_MAX - (1u << 20), SIZE_MAX - (2u << 20) + 1, SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX,
        (size_t)1 << 48, ((size_t)1 << 48) + 1, ((size_t)1 << 48) - 4096,
    };
    static const size_t aligns[] = { 16, 64, 4096, 1u << 20 };
#define EXPECT_ENOMEM(call, desc_fmt, ...)                                          \
    do {                                                                            \
        errno = 0;                                                                  \
        void *r_ = (call);                                                          \
        int e_ = errno;                                                             \
        CHECK(r_ == NULL, desc_fmt " returned %p, not NULL", __VA_ARGS__, r_);      \
        CHECK(e_ == ENOMEM, desc_fmt " set errno %d, not ENOMEM", __VA_ARGS__, e_); \
    } while (0)
    void *live = malloc(64);
    CHECK(live != NULL, "malloc(64)");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t s = t_size(sizes[i]);
        EXPECT_ENOMEM(malloc(s), "malloc(%zu)", s);
        EXPECT_ENOMEM(calloc(1, s), "calloc(1, %zu)", s);
        EXPECT_ENOMEM(calloc(s, 1), "calloc(%zu, 1)", s);
        EXPECT_ENOMEM(realloc(NULL, s), "realloc(NULL, %zu)", s);
        EXPECT_ENOMEM(realloc(live, s), "realloc(live block, %zu)", s);
        EXPECT_ENOMEM(reallocarray(NULL, s, 1), "reallocarray(NULL, %zu, 1)", s);
        EXPECT_ENOMEM(reallocarray(NULL, 1, s), "reallocarray(NULL, 1, %zu)", s);
        EXPECT_ENOMEM(valloc(s), "valloc(%zu)", s);
        EXPECT_ENOMEM(pvalloc(s), "pvalloc(%zu)", s);
        for (size_t a = 0; a < sizeof aligns / sizeof aligns[0]; a++) {
            size_t al = t_size(aligns[a]);
            EXPECT_ENOMEM(aligned_alloc(al, s), "aligned_alloc(%zu, %zu)", al, s);
            EXPECT_ENOMEM(memalign(al, s), "memalign(%zu, %zu)", al, s);
            void *p = (void *)0x1234;
            int r = posix_memalign(&p, al, s);
            CHECK(r == ENOMEM, "posix_memalign(%zu, %zu) returned %d, not ENOMEM", al, s, r);
            CHECK(p == (void *)0x1234 || p == NULL, "posix_memalign(%zu, %zu) failed but set "
                  "the pointer to %p", al, s, p);
        }
    }
    /* an alignment that cannot be satisfied, with a small size */
    size_t huge_al = t_size(SIZE_MAX / 2 + 1);
    EXPECT_ENOMEM(aligned_alloc(huge_al, 16), "aligned_alloc(%zu, 16)", huge_al);
    EXPECT_ENOMEM(memalign(huge_al, 16), "memalign(%zu, 16)", huge_al);
    void *p = (void *)0x1234;
    int r = posix_memalign(&p, huge_al, 16);
    CHECK(r == ENOMEM, "posix_memalign(2^63, 16) returned %d, not ENOMEM", r);
    free(live);
#undef EXPECT_ENOMEM
}

/* free(NULL) is fine, and free keeps errno, whatever path the block takes */
static void *free_in_thread(void *arg)
{
    void **blocks = arg;
    for (int i = 0; blocks[i]; i++) {
        errno = 4321;
        free(blocks[i]);
        CHECK(errno == 4321, "cross-thread free of block %d changed errno to %d", i, errno);
    }
    return NULL;
}

static void test_free_errno(void)
{
    errno = 1234;
    free(NULL);
    CHECK(errno == 1234, "free(NULL) changed errno to %d", errno);
    void *blocks[] = {
        malloc(16), malloc(1000), malloc(1024), malloc(4000), malloc(20000), malloc(32768),
        malloc(100000), malloc(1u << 20), malloc(64u << 20), calloc(1, 5u << 20),
        memalign(4096, 100), memalign(1u << 20, 3u << 20), valloc(10), pvalloc(5000),
        aligned_alloc(64, 640), realloc(malloc(100), 3u << 20), malloc(0),
    };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        CHECK(blocks[i] != NULL, "allocation %zu failed", i);
        errno = 1234;
        free(blocks[i]);
        CHECK(errno == 1234, "free of block %zu (%p) changed errno to %d", i, blocks[i], errno);
    }
    /* many blocks of one size, so freeing them empties whole slabs */
    enum { N = 20000 };
    static void *many[N];
    static const size_t szs[] = { 24, 2000, 30000 };
    for (size_t s = 0; s < 3; s++) {
        int n = szs[s] > 10000 ? 500 : N;
        for (int i = 0; i < n; i++) {
            many[i] = malloc(t_size(szs[s]));
            CHECK(many[i] != NULL, "malloc(%zu)", szs[s]);
        }
        for (int i = 0; i < n; i++) {
            errno = 1234;
            free(many[i]);
            CHECK(errno == 1234, "free of %zu-byte block %d changed errno to %d", szs[s], i, errno);
        }
    }
    /* frees from another thread than the allocating one */
    static void *xs[64];
    for (int i = 0; i < 63; i++) {
        xs[i] = malloc(t_size((size_t)16 << (i % 14)));
        CHECK(xs[i] != NULL, "malloc for cross-thread free");
    }
    xs[63] = NULL;
    t_thread t;
    t_thread_start(&t, free_in_thread, xs);
    t_thread_join(&t);
}

/* The __libc_malloc family is hakmem's as well */
static void test_libc_symbols(void)
{
    void *(*lmalloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "__libc_malloc");
    void (*lfree)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "__libc_free");
    void *(*lcalloc)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_calloc");
    void *(*lrealloc)(void *, size_t) = (void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "__libc_realloc");
    void *(*lmemalign)(size_t, size_t) = (void *(*)(size_t, size_t))dlsym(RTLD_DEFAULT, "__libc_memalign");
    CHECK(lmalloc, "__libc_malloc not found by dlsym");
    CHECK(lfree, "__libc_free not found by dlsym");
    CHECK(lcalloc, "__libc_calloc not found by dlsym");
    CHECK(lrealloc, "__libc_realloc not found by dlsym");
    CHECK(lmemalign, "__libc_memalign not found by dlsym");

    unsigned char *a = lmalloc(t_size(100));
    check_block(a, 100, 16, "__libc_malloc");
    unsigned char *b = lcalloc(10, t_size(30));
    CHECK(b != NULL && owned(b) == 1, "__libc_calloc(10, 30)=%p not hakmem's", (void *)b);
    for (int i = 0; i < 300; i++)
        CHECK(b[i] == 0, "__libc_calloc block not zeroed at %d", i);
    fill_bytes(a, 0, 100, 11);
    unsigned char *c = lrealloc(a, t_size(50000));
    CHECK(c != NULL && owned(c) == 1, "__libc_realloc(p, 50000)=%p not hakmem's", (void *)c);
    CHECK(check_bytes(c, 100, 11) == 100, "__libc_realloc lost contents");
    void *d = lmemalign(t_size(4096), t_size(100));
    check_block(d, 100, 4096, "__libc_memalign");
    /* the two families mix: free what the other allocated */
    free(c);
    lfree(b);
    lfree(d);
    void *e = malloc(t_size(200));
    CHECK(e != NULL, "malloc");
    lfree(e);
    void *f = lmalloc(t_size(3u << 20));
    check_block(f, 3u << 20, 16, "__libc_malloc(3 MiB)");
    free(f);
    lfree(NULL);
}

/* hak_owns: foreign addresses are not hakmem's, and it never faults */
static int static_arr[64];
static void test_owns(void)
{
    if (t_system)
        return;
    int local = 0;
    void *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    const void *foreign[] = { NULL, &local, static_arr, &static_arr[5], m, (char *)m + page + 64,
                              (void *)1, (void *)16, (void *)4096, (void *)(uintptr_t)-1,
                              (void *)(uintptr_t)-16, (void *)0xFFFF800000000000ull,
                              (void *)0x00007FFFFFFFF000ull, (void *)test_owns };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        CHECK(t_hak_owns(foreign[i]) == 0, "hak_owns(%p) = %d for memory hakmem does not own",
              foreign[i], t_hak_owns(foreign[i]));
    munmap(m, 2 * page);
    /* not the start of a block: a misaligned address inside one */
    static const size_t szs[] = { 16, 100, 5000, 40000, 2u << 20 };
    for (size_t i = 0; i < 5; i++) {
        char *p = malloc(t_size(szs[i]));
        CHECK(p && t_hak_owns(p) == 1, "malloc(%zu)=%p not owned", szs[i], (void *)p);
        CHECK(t_hak_owns(p + 1) == 0, "hak_owns(%p + 1) = 1 inside a %zu-byte block: it is not "
              "the start of a block", (void *)p, szs[i]);
        free(p);
    }
}

int main(void)
{
    test_init("test_api");
    page = (size_t)sysconf(_SC_PAGESIZE);
    ref_init();
    live_begin();
    test_malloc_zero();
    test_sizes_alignment_usable();
    test_calloc();
    test_posix_memalign();
    test_valloc_pvalloc();
    test_realloc();
    test_reallocarray();
    test_impossible();
    test_free_errno();
    test_libc_symbols();
    test_owns();
    live_end("test_api");
    printf("test_api: ok\n");
    return 0;
}
