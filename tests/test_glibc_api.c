/* test_glibc_api: glibc's malloc-introspection API and C23's sized frees,
 * answered by hakmem (issue 16).
 *
 * - mallinfo2: uordblks moves by exactly the usable bytes of 1,000 blocks
 *   of 1,000 bytes (within the size-class rounding of 1,000..1,125,000) and
 *   back when they are freed; hblks/hblkhd by the large blocks with their
 *   own mapping, uordblks by the usable bytes of runs (100..200 KB); arena,
 *   hblks and hblkhd equal hak_stats_get's figures; with HAKMEM_STATS=1,
 *   uordblks equals the bytes of the live blocks hak_stats_get counts;
 *   keepcost covers the cached large blocks and is 0 after malloc_trim.
 * - mallinfo: the same figures, saturated at INT_MAX (hblkhd above 3 GiB).
 * - malloc_stats: glibc's lines, in order, with mallinfo2's figures, then
 *   hakmem's.
 * - malloc_info: XML parsed by python3's xml.etree (check_malloc_info.py)
 *   and matched with mallinfo2; options 1 gives -1 and EINVAL.
 * - mallopt: glibc's return values; M_TRIM_THRESHOLD acts (freed large
 *   blocks stay cached below it, go back above it).
 * - free_sized / free_aligned_sized: free the block; a wrong size or
 *   alignment stops the debug build with one line, and is not looked at
 *   by the release build.
 * - mallinfo2 and malloc_info while 4 threads allocate and free each
 *   other's blocks: possible figures, no fault.
 * - operator new, called from this C program, which has no C++ runtime:
 *   a failure says so in one line and aborts.
 * This program uses no C++: run.sh checks that it and libhakmem.so need
 * no libstdc++.
 */
#define _GNU_SOURCE
#include "hakmem.h"
#include "testutil.h"

#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>

typedef int (*stats_get_fn)(struct hak_stats *);
typedef void (*free_sized_fn)(void *, size_t);
typedef void (*free_aligned_sized_fn)(void *, size_t, size_t);

static stats_get_fn stats_get;
static free_sized_fn free_sized_p;
static free_aligned_sized_fn free_aligned_sized_p;
static struct hak_stats st;

#define MB ((size_t)1 << 20)
#define N_BLOCKS 1000
#define BLOCK 1000

static void check_consistent(const struct mallinfo2 *m, const char *when)
{
    CHECK(stats_get(&st) == 0, "hak_stats_get");
    CHECK(m->arena == st.superslabs_mapped * 2 * MB, "%s: arena %zu, hak_stats_get: %llu SuperSlabs", when,
          m->arena, (unsigned long long)st.superslabs_mapped);
    CHECK(m->hblks == st.large_live, "%s: hblks %zu, large_live %llu", when, m->hblks,
          (unsigned long long)st.large_live);
    CHECK(m->hblkhd == st.large_live_bytes, "%s: hblkhd %zu, large_live_bytes %llu", when, m->hblkhd,
          (unsigned long long)st.large_live_bytes);
    CHECK(m->uordblks + m->fordblks <= m->arena, "%s: uordblks %zu + fordblks %zu > arena %zu", when,
          m->uordblks, m->fordblks, m->arena);
    CHECK(m->fsmblks <= m->fordblks && m->usmblks == 0, "%s: fsmblks %zu, fordblks %zu, usmblks %zu", when,
          m->fsmblks, m->fordblks, m->usmblks);
}

static void test_mallinfo2(void)
{
    static void *b[N_BLOCKS];
    struct mallinfo2 m0 = mallinfo2();
    check_consistent(&m0, "at start");
    for (int i = 0; i < N_BLOCKS; i++) b[i] = malloc(t_size(BLOCK));
    struct mallinfo2 m1 = mallinfo2();
    size_t usable = 0;
    for (int i = 0; i < N_BLOCKS; i++) {
        CHECK(b[i] != NULL, "malloc(%d)", BLOCK);
        usable += malloc_usable_size(b[i]);
    }
    size_t grew = m1.uordblks - m0.uordblks;
    CHECK(m1.uordblks >= m0.uordblks && grew == usable,
          "uordblks went from %zu to %zu (+%zu) for %d blocks of %d bytes with %zu usable bytes", m0.uordblks,
          m1.uordblks, grew, N_BLOCKS, BLOCK, usable);
    CHECK(grew >= (size_t)N_BLOCKS * BLOCK && grew <= (size_t)N_BLOCKS * BLOCK * 9 / 8,
          "uordblks grew by %zu for %d x %d bytes: beyond the size-class rounding", grew, N_BLOCKS, BLOCK);
    CHECK(m1.arena >= m1.uordblks, "arena %zu < uordblks %zu", m1.arena, m1.uordblks);
    check_consistent(&m1, "with 1000 blocks");

    void *big[2];
    for (int i = 0; i < 2; i++) big[i] = malloc(t_size(MB));
    struct mallinfo2 m2 = mallinfo2();
    CHECK(m2.hblks == m1.hblks + 2, "hblks %zu -> %zu for 2 large blocks", m1.hblks, m2.hblks);
    CHECK(m2.hblkhd == m1.hblkhd + 4 * MB, "hblkhd %zu -> %zu for 2 large blocks of 1 MiB (2 MiB mapped each)",
          m1.hblkhd, m2.hblkhd);
    CHECK(m2.uordblks == m1.uordblks, "large blocks moved uordblks: %zu -> %zu", m1.uordblks, m2.uordblks);
    check_consistent(&m2, "with 2 large blocks");

    /* blocks of 32..256 KiB are runs of units inside SuperSlabs: arena's
     * bytes, counted in uordblks by their usable bytes, not in hblks */
    void *run[3];
    size_t run_usable = 0;
    for (int i = 0; i < 3; i++) {
        run[i] = malloc(t_size(100000 + (size_t)i * 50000));
        CHECK(run[i] != NULL, "malloc(%d)", 100000 + i * 50000);
        run_usable += malloc_usable_size(run[i]);
    }
    struct mallinfo2 mr = mallinfo2();
    CHECK(mr.hblks == m2.hblks && mr.hblkhd == m2.hblkhd, "3 blocks of 100..200 KB moved hblks %zu -> %zu, hblkhd %zu -> %zu",
          m2.hblks, mr.hblks, m2.hblkhd, mr.hblkhd);
    CHECK(mr.uordblks == m2.uordblks + run_usable, "uordblks %zu -> %zu for 3 blocks of 100..200 KB, %zu usable bytes",
          m2.uordblks, mr.uordblks, run_usable);
    CHECK(stats_get(&st) == 0 && mr.hblks + 3 == st.large_live, "hblks %zu with 3 runs live, large_live %llu", mr.hblks,
          (unsigned long long)st.large_live);
    CHECK(mr.uordblks + mr.fordblks <= mr.arena, "with 3 runs: uordblks %zu + fordblks %zu > arena %zu", mr.uordblks,
          mr.fordblks, mr.arena);
    for (int i = 0; i < 3; i++) free(run[i]);
    struct mallinfo2 mf = mallinfo2();
    CHECK(mf.uordblks == m2.uordblks, "uordblks %zu after freeing the runs, %zu before them", mf.uordblks, m2.uordblks);
    check_consistent(&mf, "after freeing the runs");

    for (int i = 0; i < N_BLOCKS; i++) free(b[i]);
    for (int i = 0; i < 2; i++) free(big[i]);
    struct mallinfo2 m3 = mallinfo2();
    CHECK(m3.uordblks == m0.uordblks, "uordblks %zu after freeing everything, %zu at the start", m3.uordblks,
          m0.uordblks);
    CHECK(m3.hblks == m0.hblks && m3.hblkhd == m0.hblkhd, "hblks %zu hblkhd %zu after freeing, %zu %zu before",
          m3.hblks, m3.hblkhd, m0.hblks, m0.hblkhd);
    check_consistent(&m3, "after the frees");
    CHECK(m3.keepcost > 0 && m3.keepcost >= st.large_cached_bytes,
          "keepcost %zu after freeing 1 MB of blocks and 2 large ones (large blocks cached: %llu bytes)",
          m3.keepcost, (unsigned long long)st.large_cached_bytes);
    malloc_trim(0);
    struct mallinfo2 m4 = mallinfo2();
    CHECK(m4.keepcost == 0, "keepcost %zu right after malloc_trim(0)", m4.keepcost);
    check_consistent(&m4, "after malloc_trim");
}

/* HAKMEM_STATS=1: uordblks is the bytes of the live blocks counted */
static int child_stats(void)
{
    static void *b[300];
    for (int i = 0; i < 300; i++) b[i] = malloc(t_size(16 + (size_t)i * 97));
    for (int i = 0; i < 300; i += 3) free(b[i]);
    struct mallinfo2 m = mallinfo2();
    CHECK(stats_get(&st) == 0 && st.counting, "hak_stats_get, counting %d", st.counting);
    size_t live = 0;
    for (unsigned c = 0; c < st.n_classes; c++) live += st.classes[c].live * st.classes[c].block_size;
    CHECK(m.uordblks == live, "HAKMEM_STATS=1: uordblks %zu, live blocks of hak_stats_get %zu bytes",
          m.uordblks, live);
    check_consistent(&m, "statistics mode");
    return 0;
}

static int saturate(size_t v)
{
    return v > INT_MAX ? INT_MAX : (int)v;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void test_mallinfo(void)
{
    void *small = malloc(t_size(5000));
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo m = mallinfo();
    CHECK(m.arena == saturate(m2.arena) && m.uordblks == saturate(m2.uordblks) &&
              m.fordblks == saturate(m2.fordblks) && m.hblks == saturate(m2.hblks) &&
              m.hblkhd == saturate(m2.hblkhd) && m.keepcost == saturate(m2.keepcost) &&
              m.ordblks == saturate(m2.ordblks) && m.smblks == saturate(m2.smblks) &&
              m.fsmblks == saturate(m2.fsmblks) && m.usmblks == 0,
          "mallinfo differs from mallinfo2: arena %d/%zu uordblks %d/%zu fordblks %d/%zu", m.arena, m2.arena,
          m.uordblks, m2.uordblks, m.fordblks, m2.fordblks);
    /* more than INT_MAX bytes in large blocks: address space only */
    void *huge[3];
    for (int i = 0; i < 3; i++) {
        huge[i] = malloc(t_size((size_t)1 << 30));
        CHECK(huge[i] != NULL, "malloc(1 GiB) failed");
    }
    m2 = mallinfo2();
    m = mallinfo();
    CHECK(m2.hblkhd >= (size_t)3 << 30, "hblkhd %zu with 3 GiB in large blocks", m2.hblkhd);
    CHECK(m.hblkhd == INT_MAX, "mallinfo().hblkhd = %d with 3 GiB in large blocks, not INT_MAX", m.hblkhd);
    CHECK(m.hblks == (int)m2.hblks, "mallinfo().hblks %d, mallinfo2 %zu", m.hblks, m2.hblks);
    for (int i = 0; i < 3; i++) free(huge[i]);
    free(small);
}
#pragma GCC diagnostic pop

/* ---- malloc_stats ------------------------------------------------------------ */

static void stats_body(void *arg)
{
    void *big = malloc(t_size(3 * MB));
    struct mallinfo2 m = mallinfo2();
    malloc_stats();
    fprintf(stderr, "expect %zu %zu %zu\n", m.arena, m.uordblks, m.hblkhd);
    free(big);
}

static const char *after_line(const char *s, const char *prefix, unsigned long long *value)
{
    const char *at = strstr(s, prefix);
    CHECK(at != NULL, "malloc_stats: no line \"%s\" in order; output:\n%s", prefix, s);
    at += strlen(prefix);
    CHECK(sscanf(at, " %llu", value) == 1, "malloc_stats: no number after \"%s\"", prefix);
    return at;
}

static void test_malloc_stats(void)
{
    t_child r = t_run_child(stats_body, NULL);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "malloc_stats child: status %d, stderr:\n%s",
          r.status, r.err);
    unsigned long long arena, uord, hblkhd, v;
    const char *ex = strstr(r.err, "expect ");
    CHECK(ex && sscanf(ex, "expect %llu %llu %llu", &arena, &uord, &hblkhd) == 3, "no expect line:\n%s", r.err);
    const char *s = strstr(r.err, "Arena 0:\n");
    CHECK(s == r.err, "malloc_stats does not start with \"Arena 0:\":\n%s", r.err);
    s = after_line(s, "\nsystem bytes     =", &v);
    CHECK(v == arena, "Arena 0 system bytes %llu, mallinfo2 arena %llu", v, arena);
    s = after_line(s, "\nin use bytes     =", &v);
    CHECK(v <= arena && v + 64 * 1024 >= uord && v <= uord + 64 * 1024,
          "Arena 0 in use bytes %llu, mallinfo2 uordblks %llu", v, uord);
    s = strstr(s, "\nTotal (incl. mmap):\n");
    CHECK(s != NULL, "no \"Total (incl. mmap):\" line:\n%s", r.err);
    s = after_line(s, "\nsystem bytes     =", &v);
    CHECK(v == arena + hblkhd, "Total system bytes %llu, arena + hblkhd %llu", v, arena + hblkhd);
    s = after_line(s, "\nin use bytes     =", &v);
    CHECK(v >= hblkhd, "Total in use bytes %llu < hblkhd %llu", v, hblkhd);
    s = after_line(s, "\nmax mmap regions =", &v);
    CHECK(v >= 1, "max mmap regions %llu with a large block live", v);
    s = after_line(s, "\nmax mmap bytes   =", &v);
    CHECK(v >= 4 * MB, "max mmap bytes %llu with a 3 MiB block live", v);
    CHECK(strstr(s, "\nhakmem: ") != NULL && strstr(s, "hakmem statistics") != NULL,
          "malloc_stats: no hakmem lines after glibc's:\n%s", r.err);
}

/* ---- malloc_info --------------------------------------------------------------- */

static void test_malloc_info(void)
{
    char path[] = "/tmp/hakmem-malloc-info.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    CHECK(f != NULL, "fdopen");
    errno = 0;
    int rc = malloc_info(1, f);
    CHECK(rc == -1 && errno == EINVAL, "malloc_info(1, fp) = %d, errno %d: not -1 and EINVAL", rc, errno);
    fflush(f);
    CHECK(lseek(fd, 0, SEEK_END) == 0, "malloc_info(1, fp) wrote something");

    static void *b[500];
    for (int i = 0; i < 500; i++) b[i] = malloc(t_size(700));   /* class of 704 bytes */
    for (int i = 0; i < 500; i += 2) free(b[i]);
    void *big = malloc(t_size(5 * MB));
    struct mallinfo2 m = mallinfo2();
    CHECK(malloc_info(0, f) == 0, "malloc_info(0, fp) failed");
    CHECK(fclose(f) == 0, "fclose");
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 tests/check_malloc_info.py %s %zu %zu %zu 704", path, m.arena, m.hblks,
             m.hblkhd);
    int st_ = system(cmd);
    unlink(path);
    CHECK(WIFEXITED(st_) && WEXITSTATUS(st_) == 0, "%s: status %d", cmd, st_);
    for (int i = 1; i < 500; i += 2) free(b[i]);
    free(big);
}

/* ---- mallopt ------------------------------------------------------------------ */

static void test_mallopt(void)
{
    static const struct {
        int param, value, want;
    } cases[] = {
        { M_MXFAST, 0, 1 }, { M_MXFAST, 64, 1 }, { M_MXFAST, 160, 1 }, { M_MXFAST, 161, 0 },
        { M_MXFAST, -1, 0 }, { M_TRIM_THRESHOLD, 0, 1 }, { M_TRIM_THRESHOLD, INT_MAX, 1 },
        { M_TOP_PAD, 4096, 1 }, { M_MMAP_THRESHOLD, 128 * 1024, 1 }, { M_MMAP_THRESHOLD, -1, 1 },
        { M_MMAP_MAX, 0, 1 }, { M_MMAP_MAX, 65536, 1 }, { M_CHECK_ACTION, 3, 1 }, { M_PERTURB, 0, 1 },
        { M_ARENA_TEST, 8, 1 }, { M_ARENA_MAX, 1, 1 }, { M_ARENA_MAX, 0, 1 },
        { 0, 1, 0 }, { 99, 1, 0 }, { -99, 1, 0 }, { 2, 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = mallopt(cases[i].param, cases[i].value);
        CHECK(got == cases[i].want, "mallopt(%d, %d) = %d, want %d", cases[i].param, cases[i].value, got,
              cases[i].want);
    }
    mallopt(M_TRIM_THRESHOLD, -1);   /* no budget: the default */

    /* M_TRIM_THRESHOLD: freed large blocks (2 MiB mapped each) stay cached
     * while what is kept free is within it, and go back once it is not */
    malloc_trim(0);
    CHECK(mallopt(M_TRIM_THRESHOLD, 5 * MB) == 1, "mallopt(M_TRIM_THRESHOLD, 5 MiB)");
    void *big[3];
    for (int i = 0; i < 3; i++) big[i] = malloc(t_size(MB));
    size_t want[3] = { 2 * MB, 4 * MB, 0 };
    for (int i = 0; i < 3; i++) {
        free(big[i]);
        CHECK(stats_get(&st) == 0, "hak_stats_get");
        CHECK(st.large_cached_bytes == want[i], "M_TRIM_THRESHOLD 5 MiB: %llu bytes cached after %d frees of "
              "large blocks, want %zu", (unsigned long long)st.large_cached_bytes, i + 1, want[i]);
    }
    CHECK(mallopt(M_TRIM_THRESHOLD, -1) == 1, "mallopt(M_TRIM_THRESHOLD, -1)");
    for (int i = 0; i < 3; i++) big[i] = malloc(t_size(MB));
    for (int i = 0; i < 3; i++) free(big[i]);
    CHECK(stats_get(&st) == 0 && st.large_cached_bytes == 6 * MB,
          "M_TRIM_THRESHOLD -1: %llu bytes cached after 3 frees of large blocks, want 6 MiB",
          (unsigned long long)st.large_cached_bytes);
    malloc_trim(0);
}

/* ---- free_sized ------------------------------------------------------------------ */

static void test_free_sized_right(void)
{
    free_sized_p(NULL, 10);
    free_aligned_sized_p(NULL, 64, 10);
    /* the block is freed: the next malloc of its class gets it back */
    void *p = malloc(t_size(1000));
    free_sized_p(p, 1000);
    void *q = malloc(t_size(1000));
    CHECK(q == p, "free_sized(%p, 1000) did not free it (malloc then gave %p)", p, q);
    free(q);
    for (size_t n = 0; n < 200000; n = n < 600 ? n + 1 : n * 5 / 4) {
        void *a = malloc(t_size(n));
        free_sized_p(a, n);
        void *c = calloc(1, t_size(n));
        free_sized_p(c, n);
    }
    /* a realloc that kept the block in place: its new size */
    char *r = malloc(t_size(1000));
    char *r2 = realloc(r, t_size(600));
    free_sized_p(r2, 600);
    r = malloc(t_size(100000));
    r2 = realloc(r, t_size(300000));
    free_sized_p(r2, 300000);
    for (size_t al = 16; al <= 4 * MB; al *= 2) {
        for (size_t n = al / 2; n <= 3 * al; n += al / 2 + 1) {
            void *a = aligned_alloc(al, t_size(n));
            CHECK(a != NULL && IS_ALIGNED(a, al), "aligned_alloc(%zu, %zu)", al, n);
            free_aligned_sized_p(a, al, n);
        }
    }
}

typedef struct {
    int kind;
} wrong_arg;

static void wrong_body(void *arg)
{
    int kind = ((wrong_arg *)arg)->kind;
    if (kind == 0) free_sized_p(malloc(t_size(1000)), 100);
    if (kind == 1) free_sized_p(malloc(t_size(1000)), 2000);
    if (kind == 2) free_sized_p(malloc(t_size(100000)), 50000);
    if (kind == 3) {   /* a block of 64-byte alignment that is not 4096-aligned */
        void *p = aligned_alloc(64, t_size(640));
        while (IS_ALIGNED(p, 4096)) p = aligned_alloc(64, t_size(640));
        free_aligned_sized_p(p, 4096, 640);
    }
    if (kind == 4) free_aligned_sized_p(aligned_alloc(256, t_size(2048)), 256, 100);
    if (kind == 5) free_sized_p(malloc(t_size(MB)), 500000);   /* its own mapping; 100000 is a run */
}

static void test_free_sized_wrong(void)
{
    static const char *const lines[] = {
        "hakmem: free_sized(): size 100 does not match block 0x",
        "hakmem: free_sized(): size 2000 does not match block 0x",
        "hakmem: free_sized(): size 50000 does not match the large block of ",
        "hakmem: free_aligned_sized(): alignment 4096 does not match block 0x",
        "hakmem: free_aligned_sized(): size 100 does not match block 0x",
        "hakmem: free_sized(): size 500000 does not match the large block of ",
    };
    for (int k = 0; k < 6; k++) {
        wrong_arg a = { k };
        t_child r = t_run_child(wrong_body, &a);
        if (t_debug) {
            CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT,
                  "debug build, wrong size %d: status %d, not SIGABRT; stderr:\n%s", k, r.status, r.err);
            CHECK(strncmp(r.err, lines[k], strlen(lines[k])) == 0 && strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
                  "debug build, wrong size %d: stderr is not the one line \"%s...\":\n%s", k, lines[k], r.err);
        } else {
            CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.err[0] == '\0',
                  "release build, wrong size %d: status %d, stderr:\n%s (the size is not looked at)", k, r.status,
                  r.err);
        }
    }
}

/* ---- while other threads allocate ------------------------------------------------ */

#define CHURN_THREADS 4
#define CHURN_BLOCKS 100
static void *_Atomic mailbox[CHURN_THREADS];
static _Atomic int churn_stop;

/* allocates batches and frees the batches of its neighbour: blocks of
 * other threads' slabs, into its foreign cache and their remote lists */
static void *churn(void *arg)
{
    int me = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, (uint64_t)me + 1);
    while (!atomic_load(&churn_stop)) {
        void **batch = malloc(CHURN_BLOCKS * sizeof(void *));
        for (int i = 0; i < CHURN_BLOCKS; i++) batch[i] = malloc(t_size(1 + rng_below(&r, 6000)));
        void **got = atomic_exchange(&mailbox[(me + 1) % CHURN_THREADS], batch);
        if (got) {
            for (int i = 0; i < CHURN_BLOCKS; i++) free(got[i]);
            free(got);
        }
    }
    return NULL;
}

static void test_with_threads(void)
{
    pthread_t th[CHURN_THREADS];
    for (int t = 0; t < CHURN_THREADS; t++)
        CHECK(pthread_create(&th[t], NULL, churn, (void *)(intptr_t)t) == 0, "pthread_create");
    FILE *null = fopen("/dev/null", "w");
    CHECK(null != NULL, "fopen /dev/null");
    for (int i = 0; i < 300; i++) {
        struct mallinfo2 m = mallinfo2();
        CHECK(m.arena % (2 * MB) == 0 && m.uordblks + m.fordblks <= m.arena && m.fsmblks >= 16 * m.smblks,
              "mallinfo2 with threads running: arena %zu uordblks %zu fordblks %zu smblks %zu fsmblks %zu", m.arena,
              m.uordblks, m.fordblks, m.smblks, m.fsmblks);
        if (i % 30 == 0) CHECK(malloc_info(0, null) == 0, "malloc_info with threads running");
        usleep(1000);
    }
    fclose(null);
    atomic_store(&churn_stop, 1);
    for (int t = 0; t < CHURN_THREADS; t++) pthread_join(th[t], NULL);
    for (int t = 0; t < CHURN_THREADS; t++) {
        void **got = atomic_exchange(&mailbox[t], NULL);
        if (!got) continue;
        for (int i = 0; i < CHURN_BLOCKS; i++) free(got[i]);
        free(got);
    }
}

/* operator new is libhakmem's even in a C program, which has no C++
 * runtime to throw with: a failing one says so and aborts */
static void cxx_new_body(void *arg)
{
    void *(*op_new)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "_Znwm");
    CHECK(op_new != NULL, "_Znwm not found in a C program");
    void *p = op_new(t_size(100));
    CHECK(p != NULL && owned(p), "operator new(100) = %p, not hakmem's", p);
    free(p);
    op_new(t_size(SIZE_MAX / 4));
}

static void test_cxx_new_from_c(void)
{
    CHECK(dlsym(RTLD_DEFAULT, "_ZSt17__throw_bad_allocv") == NULL, "libstdc++ is loaded in this C program");
    t_child r = t_run_child(cxx_new_body, NULL);
    const char *want = "hakmem: operator new: out of memory, and std::bad_alloc cannot be thrown";
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT && strncmp(r.err, want, strlen(want)) == 0,
          "operator new(SIZE_MAX/4) from C: status %d, stderr:\n%s", r.status, r.err);
}

int main(int argc, char **argv)
{
    test_init("test_glibc_api");
    stats_get = (stats_get_fn)dlsym(RTLD_DEFAULT, "hak_stats_get");
    free_sized_p = (free_sized_fn)dlsym(RTLD_DEFAULT, "free_sized");
    free_aligned_sized_p = (free_aligned_sized_fn)dlsym(RTLD_DEFAULT, "free_aligned_sized");
    CHECK(stats_get && free_sized_p && free_aligned_sized_p, "hak_stats_get, free_sized or free_aligned_sized "
          "not found");
    if (argc > 1 && strcmp(argv[1], "stats") == 0) return child_stats();

    test_mallinfo2();
    t_child r = t_rerun("stats", "HAKMEM_STATS=1");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "HAKMEM_STATS=1 child: status %d\n%s", r.status,
          r.err);
    test_mallinfo();
    test_malloc_stats();
    test_malloc_info();
    test_mallopt();
    test_free_sized_right();
    test_free_sized_wrong();
    test_cxx_new_from_c();
    test_with_threads();
    printf("test_glibc_api: ok\n");
    return 0;
}
