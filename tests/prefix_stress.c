/* prefix_stress: multi-threaded stress of the prefix API (issue 6,
 * "Sanitizers" and "Stress with many threads").
 *
 * Linked with a variant's libhakmem-prefix.a, so malloc stays glibc's and
 * every hakmem block here comes from a hak_ call; that is what lets the same
 * program run against the ASan+UBSan and TSan builds of hakmem (out/asan,
 * out/tsan), whose sanitizer runtimes keep their own malloc.
 *
 * HAKTEST_THREADS workers (default 4) allocate with hak_malloc, hak_calloc,
 * hak_aligned_alloc, hak_posix_memalign, hak_memalign and hak_realloc, from
 * 8 bytes to 256 KiB and now and then 1 to 4 MiB, fill every block with a
 * pattern derived from its address and size, check it before every free and
 * resize, and free their blocks themselves or pass them through a shared
 * queue to be freed, resized or kept by another thread.  Meanwhile the main
 * thread starts waves of short-lived threads (their blocks are handed over
 * and freed after they exit), frees bursts of many small blocks (emptied
 * slabs start hakmem's purge thread, which then runs alongside), calls
 * hak_trim (the workers now and then too), and asks hak_owns about
 * glibc's blocks.  The runner also runs it with HAKMEM_RSS_BUDGET_KB (the
 * freeing threads purge) and HAKMEM_FREE_POLICY=eager (no purge thread).
 * Runs HAKTEST_SECONDS (default 3).  At the end: everything is freed, the
 * live-block count (builds that keep it) is back to its start value, and the
 * purge thread ("hakmem-purge") exists.
 */
#define _GNU_SOURCE
#include "testutil.h"
#include "handoff.h"
#include "hakmem.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define MAX_THREADS 256
#define WAVE 4
#define LOCAL 192
#define BURST 20000

static atomic_int stop;
static double deadline;   /* every thread stops its work past it */
/* the workers start together once all exist: with 64 threads on 2 cores the
 * first ones would otherwise starve the main thread while it creates the rest */
static pthread_barrier_t start_line;
static atomic_ullong n_ops, n_remote, n_threads, n_reallocs, n_large, n_trims;

/* Under ThreadSanitizer every byte written is a checked access, and filling
 * whole blocks of up to 4 MiB would leave a few hundred operations per run:
 * there (HAKTEST_VARIANT=tsan) only the first and last SPARSE_EDGE bytes of
 * a block carry the pattern, which still puts the accesses TSan needs to
 * see (ours against hakmem's link words) at both ends of every block. */
#define SPARSE_EDGE 256
static int sparse;

/* the pattern over a block: pat_byte at each offset, so any part of it can
 * be checked; whole words through testutil's fill_pattern when not sparse */
static void fill_block(unsigned char *p, size_t sz, uint64_t key)
{
    if (!sparse || sz <= 2 * SPARSE_EDGE) {
        fill_pattern(p, sz, key);
        return;
    }
    fill_bytes(p, 0, SPARSE_EDGE, key);
    fill_bytes(p, sz - SPARSE_EDGE, sz, key);
}

/* first damaged offset among the first `n` bytes, or n */
static size_t check_block_pattern(const unsigned char *p, size_t sz, size_t n, uint64_t key)
{
    if (!sparse || sz <= 2 * SPARSE_EDGE) return check_pattern(p, n, key);
    size_t a = n < SPARSE_EDGE ? n : SPARSE_EDGE;
    for (size_t i = 0; i < a; i++)
        if (p[i] != pat_byte(key, i)) return i;
    for (size_t i = sz - SPARSE_EDGE; i < n; i++)
        if (p[i] != pat_byte(key, i)) return i;
    return n;
}

static void verify(const item_t *it, const char *when)
{
    size_t bad = check_block_pattern(it->p, it->sz, it->sz, key_of(it->p, it->sz));
    CHECK(bad == it->sz, "block %p of %zu bytes damaged at byte %zu (%s)", (void *)it->p, it->sz,
          bad, when);
}

static size_t pick_size(rng_t *r)
{
    if (rng_below(r, 400) == 0) {   /* large: 1 .. 4 MiB */
        atomic_fetch_add_explicit(&n_large, 1, memory_order_relaxed);
        return ((size_t)1 << 20) + (size_t)rng_below(r, (uint64_t)3 << 20);
    }
    unsigned shift = 3 + (unsigned)rng_below(r, 15);   /* 8 .. 256 KiB, log-uniform */
    size_t s = ((size_t)1 << shift) + (size_t)rng_below(r, (uint64_t)1 << shift);
    return s > ((size_t)256 << 10) ? (size_t)256 << 10 : s;
}

static void check_block(const void *p, size_t sz, size_t align, const char *what)
{
    CHECK(p != NULL, "%s(%zu) failed, errno %d", what, sz, errno);
    CHECK(IS_ALIGNED(p, align < 16 ? 16 : align), "%s(%zu)=%p not %zu-aligned", what, sz, p,
          align);
    CHECK(hak_owns(p) == 1, "%s(%zu)=%p: hak_owns is %d", what, sz, p, hak_owns(p));
    CHECK(hak_usable_size(p) >= sz, "%s(%zu)=%p: usable size %zu", what, sz, p,
          hak_usable_size(p));
}

static item_t alloc_block(rng_t *r)
{
    item_t it;
    it.sz = pick_size(r);
    unsigned how = (unsigned)rng_below(r, 12);
    size_t al = (size_t)16 << rng_below(r, 9);   /* 16 .. 4096 */
    if (how < 6) {
        it.p = hak_malloc(t_size(it.sz));
        check_block(it.p, it.sz, 16, "hak_malloc");
    } else if (how < 8) {
        it.p = hak_calloc(t_size(1), t_size(it.sz));
        check_block(it.p, it.sz, 16, "hak_calloc");
        for (size_t i = 0; i < it.sz; i += 61)
            CHECK(it.p[i] == 0, "hak_calloc(%zu)=%p not zero at %zu", it.sz, (void *)it.p, i);
        CHECK(it.p[it.sz - 1] == 0, "hak_calloc(%zu) last byte not zero", it.sz);
    } else if (how < 9) {
        if (rng_below(r, 8) == 0) al = (size_t)8192 << rng_below(r, 7);   /* .. 512 KiB */
        it.p = hak_aligned_alloc(t_size(al), t_size(it.sz));
        check_block(it.p, it.sz, al, "hak_aligned_alloc");
    } else if (how < 10) {
        void *p = NULL;
        int e = hak_posix_memalign(&p, t_size(al), t_size(it.sz));
        CHECK(e == 0, "hak_posix_memalign(%zu, %zu) = %d", al, it.sz, e);
        it.p = p;
        check_block(it.p, it.sz, al, "hak_posix_memalign");
    } else if (how < 11) {
        it.p = hak_memalign(t_size(al), t_size(it.sz));
        check_block(it.p, it.sz, al, "hak_memalign");
    } else {
        it.p = hak_realloc(NULL, t_size(it.sz));
        check_block(it.p, it.sz, 16, "hak_realloc(NULL)");
    }
    fill_block(it.p, it.sz, key_of(it.p, it.sz));
    return it;
}

static void resize_block(item_t *it, rng_t *r)
{
    verify(it, "before realloc");
    size_t nsz = pick_size(r);
    uint64_t oldkey = key_of(it->p, it->sz);
    unsigned char *q = hak_realloc(it->p, t_size(nsz));
    check_block(q, nsz, 16, "hak_realloc");
    /* what must have survived: whole pattern words (testutil's word-wise
     * pattern ends in a byte tail that depends on the length) */
    size_t keep = (it->sz < nsz ? it->sz : nsz) & ~(size_t)7;
    if (sparse && it->sz > 2 * SPARSE_EDGE && keep > it->sz - SPARSE_EDGE)
        keep = it->sz - SPARSE_EDGE;   /* the old tail moved: not compared */
    size_t bad = check_block_pattern(q, it->sz, keep, oldkey);
    CHECK(bad == keep, "hak_realloc(%p -> %p, %zu -> %zu) lost contents at byte %zu",
          (void *)it->p, (void *)q, it->sz, nsz, bad);
    it->p = q;
    it->sz = nsz;
    fill_block(q, nsz, key_of(q, nsz));
    atomic_fetch_add_explicit(&n_reallocs, 1, memory_order_relaxed);
}

static void free_block(item_t *it, const char *when)
{
    verify(it, when);
    hak_free(it->p);
    it->p = NULL;
}

static void step(rng_t *r, item_t *local, int *nlocal)
{
    unsigned op = (unsigned)rng_below(r, 100);
    if (op < 35) {
        if (*nlocal < LOCAL) local[(*nlocal)++] = alloc_block(r);
    } else if (op < 55) {
        if (*nlocal > 0) {
            int i = (int)rng_below(r, (uint64_t)*nlocal);
            free_block(&local[i], "local free");
            local[i] = local[--*nlocal];
        }
    } else if (op < 70) {
        if (*nlocal > 0) {
            int i = (int)rng_below(r, (uint64_t)*nlocal);
            if (q_push(local[i])) local[i] = local[--*nlocal];
        }
    } else if (op < 93) {
        item_t it;
        if (q_pop(&it)) {
            verify(&it, "taken from the queue");
            unsigned what = (unsigned)rng_below(r, 10);
            if (what < 7 || *nlocal >= LOCAL) {
                free_block(&it, "cross-thread free");
                atomic_fetch_add_explicit(&n_remote, 1, memory_order_relaxed);
            } else {
                if (what == 9) resize_block(&it, r);
                local[(*nlocal)++] = it;
            }
        }
    } else if (op < 98) {
        if (*nlocal > 0) resize_block(&local[rng_below(r, (uint64_t)*nlocal)], r);
    } else if (rng_below(r, 40) == 0) {
        /* trim while the other threads allocate and free (and free into
         * this thread's slabs) */
        hak_trim();
        atomic_fetch_add_explicit(&n_trims, 1, memory_order_relaxed);
    } else {
        if (*nlocal > 0) {
            item_t *it = &local[rng_below(r, (uint64_t)*nlocal)];
            CHECK(hak_usable_size(it->p) >= it->sz, "hak_usable_size(%p) = %zu < %zu",
                  (void *)it->p, hak_usable_size(it->p), it->sz);
            verify(it, "at a usable-size check");
        }
    }
    atomic_fetch_add_explicit(&n_ops, 1, memory_order_relaxed);
}

static void *worker(void *arg)
{
    rng_t r;
    rng_seed(&r, 1000 + (uint64_t)(uintptr_t)arg);
    static __thread item_t local[LOCAL];
    int nlocal = 0;
    pthread_barrier_wait(&start_line);
    while (!atomic_load_explicit(&stop, memory_order_relaxed) && t_now_s() < deadline)
        for (int k = 0; k < 32; k++) step(&r, local, &nlocal);
    for (int i = 0; i < nlocal; i++) free_block(&local[i], "worker exit");
    return NULL;
}

static void *ephemeral(void *arg)
{
    rng_t r;
    rng_seed(&r, (uint64_t)(uintptr_t)arg);
    static __thread item_t local[LOCAL];
    int nlocal = 0;
    int steps = 200 + (int)rng_below(&r, 1500);
    for (int k = 0; k < steps; k++) {
        if (k % 64 == 63 && t_now_s() > deadline) break;
        step(&r, local, &nlocal);
    }
    while (nlocal < 48) local[nlocal++] = alloc_block(&r);
    for (int i = 0; i < nlocal; i++)
        if (!q_push(local[i])) free_block(&local[i], "ephemeral exit, queue full");
    return NULL;
}

/* Many small blocks, then all freed (in a shuffled order): whole slabs go
 * back to the pool, which is what starts and feeds the purge thread. */
static void burst(rng_t *r)
{
    static item_t b[BURST];
    size_t sz = 16 + (size_t)rng_below(r, 300);
    int n = BURST;
    for (int i = 0; i < n; i++) {
        if (i % 1024 == 1023 && t_now_s() > deadline) n = i + 1;   /* a short one */
        b[i].p = hak_malloc(t_size(sz));
        check_block(b[i].p, sz, 16, "hak_malloc (burst)");
        b[i].sz = sz;
        fill_block(b[i].p, sz, key_of(b[i].p, sz));
    }
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1);
        item_t t = b[i];
        b[i] = b[j];
        b[j] = t;
    }
    for (int i = 0; i < n; i++) free_block(&b[i], "burst free");
}

/* glibc's blocks are not hakmem's, and never become so */
static void foreign_checks(void)
{
    void *g = malloc(t_size(100));
    CHECK(g != NULL, "malloc(100)");
    CHECK(hak_owns(g) == 0, "hak_owns(glibc block %p) = %d", g, hak_owns(g));
    int on_stack;
    CHECK(hak_owns(&on_stack) == 0, "hak_owns(stack) != 0");
    free(g);
}

static int purge_thread_exists(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d) return -1;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d)) && !found) {
        if (e->d_name[0] == '.') continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        if (n > 0 && strncmp(comm, "hakmem-purge", 12) == 0) found = 1;
    }
    closedir(d);
    return found;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    double seconds = 3;
    const char *env = getenv("HAKTEST_SECONDS");
    if (env && atof(env) > 0) seconds = atof(env);
    int nthreads = 4;
    env = getenv("HAKTEST_THREADS");
    if (env && atoi(env) > 0) nthreads = atoi(env);
    CHECK(nthreads <= MAX_THREADS, "HAKTEST_THREADS=%d: at most %d", nthreads, MAX_THREADS);

    sparse = t_env_is("HAKTEST_VARIANT", "tsan");
    long long live0 = hak_live_blocks();
    /* the debug build and the sanitizer builds (made from it) count */
    if (t_env_is("HAKTEST_VARIANT", "debug") || t_env_is("HAKTEST_VARIANT", "asan") ||
        t_env_is("HAKTEST_VARIANT", "tsan"))
        CHECK(live0 != -1, "a %s build without a live-block count", getenv("HAKTEST_VARIANT"));
    static pthread_t workers[MAX_THREADS];
    double start = t_now_s(), end = start + seconds;
    deadline = end;
    CHECK(pthread_barrier_init(&start_line, NULL, (unsigned)nthreads + 1) == 0, "barrier");
    for (int i = 0; i < nthreads; i++) {
        int e = pthread_create(&workers[i], NULL, worker, (void *)(uintptr_t)i);
        CHECK(e == 0, "pthread_create: %d", e);
    }
    pthread_barrier_wait(&start_line);

    rng_t r;
    rng_seed(&r, 77);
    uint64_t seed = 1;
    unsigned long long waves = 0, bursts = 0, trims = 0;
    while (t_now_s() < end) {
        pthread_t eph[WAVE];
        for (int i = 0; i < WAVE; i++) {
            int e = pthread_create(&eph[i], NULL, ephemeral, (void *)(uintptr_t)(seed++));
            CHECK(e == 0, "pthread_create: %d", e);
        }
        if (waves % 4 == 0) {
            burst(&r);
            bursts++;
        }
        foreign_checks();
        for (int i = 0; i < WAVE; i++) pthread_join(eph[i], NULL);
        atomic_fetch_add(&n_threads, WAVE);
        hak_trim();
        trims++;
        waves++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nthreads; i++) pthread_join(workers[i], NULL);

    item_t it;
    size_t drained = 0;
    while (q_pop(&it)) {
        free_block(&it, "final drain");
        drained++;
    }
    long long live1 = hak_live_blocks();
    CHECK(live0 == live1, "hak_live_blocks() is %lld at the end, %lld at the start", live1, live0);
    if (live0 != -1) printf("live-check: done (prefix_stress: %lld blocks)\n", live1);
    CHECK(atomic_load(&n_remote) > 0, "no cross-thread frees happened");
    CHECK(waves > 0 && bursts > 0, "no wave of short-lived threads ran");
    const char *pol = getenv("HAKMEM_FREE_POLICY");
    if (!pol || strcmp(pol, "eager") != 0)
        CHECK(purge_thread_exists() == 1, "no hakmem-purge thread after %llu bursts of frees",
              bursts);
    printf("prefix_stress: ok (%d threads, %.1f s: %llu ops, %llu cross-thread frees, %llu "
           "reallocs, %llu large, %llu short-lived threads, %llu bursts, %llu trims, %zu drained)\n",
           nthreads, t_now_s() - start, (unsigned long long)atomic_load(&n_ops),
           (unsigned long long)atomic_load(&n_remote), (unsigned long long)atomic_load(&n_reallocs),
           (unsigned long long)atomic_load(&n_large), (unsigned long long)atomic_load(&n_threads),
           bursts, trims + (unsigned long long)atomic_load(&n_trims), drained);
    return 0;
}
