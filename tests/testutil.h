/* testutil.h: small helpers shared by the hakmem test programs.
 *
 * CHECK(cond, fmt, ...) prints "file:line: check failed: cond: message" on
 * stderr and ends the process with status 1.  A test that passes exits 0.
 *
 * test_init() finds out whether hakmem is the allocator of this process:
 * it looks up hak_owns and hak_live_blocks with dlsym(RTLD_DEFAULT), which
 * finds them whether hakmem is linked or preloaded, and fails the test when
 * they are missing or when malloc'd memory is not hakmem's.  Setting
 * HAKTEST_ALLOW_SYSTEM=1 turns that failure into a note, so the tests can
 * be tried against the system malloc (only for working on the tests).
 *
 * live_begin()/live_end() compare hakmem's count of live blocks at the start
 * and the end of a test.  The count exists in the debug build only (-1 in
 * release); the runner tells the test its variant in HAKTEST_VARIANT, and
 * in a debug run a missing count is a failure.  live_end() prints
 * "live-check: done" when it compared, which the runner looks for.
 *
 * The hakmem functions are reached only through dlsym so the same source
 * builds into a program linked with hakmem and into a plain one that runs
 * with LD_PRELOAD.
 */
#ifndef HAKMEM_TESTUTIL_H
#define HAKMEM_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define T_UNUSED __attribute__((unused))

static T_UNUSED void t_fail_at(const char *file, int line, const char *cond,
                               const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* Writes into a stack buffer and then with one write(), so a failing check
 * neither allocates nor interleaves with another thread's message. */
static T_UNUSED void t_fail_at(const char *file, int line, const char *cond,
                               const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s:%d: check failed: %s: ", file, line, cond);
    if (n < 0 || n >= (int)sizeof buf)
        n = (int)sizeof buf - 2;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    _exit(1);
}

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond))                                                         \
            t_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__);               \
    } while (0)

#define FAIL(...) t_fail_at(__FILE__, __LINE__, "failure", __VA_ARGS__)

/* ---- opaque values ------------------------------------------------------
 * glibc declares aligned_alloc, memalign and friends with alloc_align and
 * alloc_size attributes, and gcc knows malloc; left alone, the compiler may
 * assume a result is aligned (folding our alignment checks to "true"), warn
 * about or fold impossible sizes, or delete a malloc/free pair.  Passing
 * values through an empty asm hides them from the optimizer. */
static inline uintptr_t t_addr(const void *p)
{
    uintptr_t u = (uintptr_t)p;
    __asm__ volatile("" : "+r"(u));
    return u;
}
static inline void *t_hide(void *p)
{
    __asm__ volatile("" : "+r"(p));
    return p;
}
static inline size_t t_size(size_t s)
{
    __asm__ volatile("" : "+r"(s));
    return s;
}
#define IS_ALIGNED(p, a) ((t_addr(p) & ((uintptr_t)(a) - 1)) == 0)

/* ---- fast PRNG: xorshift64* seeded through splitmix64 -------------------- */
typedef struct { uint64_t s; } rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    r->s = z ? z : 0x1234567ull;
}
static inline uint64_t rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}
/* uniform in [0, n) for n > 0 (the tiny bias does not matter here) */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
    return rng_next(r) % n;
}

/* ---- patterns -------------------------------------------------------------
 * fill_pattern writes a byte sequence determined by (key, i) over [0, n);
 * check_pattern returns the first offset that differs, or n if none. */
static inline uint8_t pat_byte(uint64_t key, size_t i)
{
    uint64_t x = key ^ ((uint64_t)i * 0x9E3779B97F4A7C15ull);
    x ^= x >> 29;
    return (uint8_t)(x ^ (x >> 8) ^ (i >> 8));
}
static inline uint64_t pat_word(uint64_t key, size_t wi)
{
    uint64_t x = (key + wi) * 0xD6E8FEB86659FD93ull;
    return x ^ (x >> 32);
}
/* Whole 8-byte words with pat_word and a byte tail with pat_byte: fast enough
 * to fill and verify every byte of every block. */
static inline void fill_pattern(void *p, size_t n, uint64_t key)
{
    unsigned char *c = (unsigned char *)p;
    size_t words = n / 8;
    for (size_t w = 0; w < words; w++) {
        uint64_t v = pat_word(key, w);
        memcpy(c + w * 8, &v, 8);
    }
    for (size_t i = words * 8; i < n; i++)
        c[i] = pat_byte(key, i);
}
static inline size_t check_pattern(const void *p, size_t n, uint64_t key)
{
    const unsigned char *c = (const unsigned char *)p;
    size_t words = n / 8;
    for (size_t w = 0; w < words; w++) {
        uint64_t v;
        memcpy(&v, c + w * 8, 8);
        if (v != pat_word(key, w)) {
            uint64_t e = pat_word(key, w);
            for (size_t b = 0; b < 8; b++)
                if (((unsigned char *)&v)[b] != ((unsigned char *)&e)[b])
                    return w * 8 + b;
        }
    }
    for (size_t i = words * 8; i < n; i++)
        if (c[i] != pat_byte(key, i))
            return i;
    return n;
}
/* byte-wise pattern, for checks where a block's prefix must survive a move
 * (realloc) and be compared at an arbitrary length */
static inline void fill_bytes(void *p, size_t from, size_t to, uint64_t key)
{
    unsigned char *c = (unsigned char *)p;
    for (size_t i = from; i < to; i++)
        c[i] = pat_byte(key, i);
}
static inline size_t check_bytes(const void *p, size_t n, uint64_t key)
{
    const unsigned char *c = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat_byte(key, i))
            return i;
    return n;
}

/* ---- hakmem presence and the live-block count ---------------------------- */
typedef int (*t_owns_fn)(const void *);
typedef long long (*t_live_fn)(void);

static T_UNUSED t_owns_fn t_hak_owns;
static T_UNUSED t_live_fn t_hak_live;
static T_UNUSED int t_system;   /* 1: hakmem absent, allowed by the env var */
static T_UNUSED int t_debug;    /* 1: the runner says this is the debug build */
static T_UNUSED long long t_live_start = -1;

static T_UNUSED int t_env_is(const char *name, const char *value)
{
    const char *v = getenv(name);
    return v && strcmp(v, value) == 0;
}

/* 1 if p is hakmem's, or always 1 when testing the system malloc */
static T_UNUSED int owned(const void *p)
{
    return t_system ? 1 : t_hak_owns(p);
}
/* 0 if p is not hakmem's, or always 0 when testing the system malloc */
static T_UNUSED int owned_raw(const void *p)
{
    return t_system ? 0 : t_hak_owns(p);
}

static T_UNUSED void test_init(const char *name)
{
    /* stdout unbuffered: no buffer gets allocated later, in the middle of a
     * live-block count, and output is not lost if a test dies. */
    setvbuf(stdout, NULL, _IONBF, 0);
    t_debug = t_env_is("HAKTEST_VARIANT", "debug");
    t_hak_owns = (t_owns_fn)dlsym(RTLD_DEFAULT, "hak_owns");
    t_hak_live = (t_live_fn)dlsym(RTLD_DEFAULT, "hak_live_blocks");
    if (!t_hak_owns || !t_hak_live) {
        if (t_env_is("HAKTEST_ALLOW_SYSTEM", "1")) {
            t_system = 1;
            fprintf(stderr, "%s: note: hakmem not loaded, testing the system malloc\n", name);
            return;
        }
        FAIL("%s: hakmem is not loaded: dlsym(RTLD_DEFAULT, \"%s\") found nothing",
             name, t_hak_owns ? "hak_live_blocks" : "hak_owns");
    }
    void *p = malloc(t_size(24));
    CHECK(p != NULL, "%s: malloc(24) failed", name);
    CHECK(t_hak_owns(p) == 1, "%s: hakmem is loaded but malloc(24)=%p is not hakmem's "
          "(hak_owns returned %d)", name, p, t_hak_owns(p));
    free(p);
    if (t_debug)
        CHECK(t_hak_live() != -1, "%s: debug build but hak_live_blocks() returns -1", name);
    if (t_env_is("HAKTEST_VARIANT", "release"))
        CHECK(t_hak_live() == -1, "%s: release build but hak_live_blocks() returns %lld, not -1 "
              "(statistics should be compiled out)", name, t_hak_live());
}

static T_UNUSED long long live_now(void)
{
    return t_hak_live ? t_hak_live() : -1;
}

static T_UNUSED void live_begin(void)
{
    t_live_start = live_now();
}

/* Compare the live-block count with the one at live_begin(). */
static T_UNUSED void live_end(const char *what)
{
    long long now = live_now();
    if (now == -1 || t_live_start == -1) {
        CHECK(!t_debug || t_system, "%s: no live-block count in a debug build", what);
        return;
    }
    CHECK(now == t_live_start, "%s: %lld live blocks at the end, %lld at the start "
          "(%lld %s)", what, now, t_live_start,
          now > t_live_start ? now - t_live_start : t_live_start - now,
          now > t_live_start ? "lost frees" : "too many frees counted");
    printf("live-check: done (%s: %lld blocks)\n", what, now);
}


/* ---- a child process with its stderr captured ---------------------------
 * t_run_child forks; the child sends its stderr into a pipe, runs fn(arg)
 * and exits 0 if fn returns. The parent collects everything the child wrote
 * and its wait status. */
typedef struct {
    int status;
    char err[8192];
} t_child;

static T_UNUSED t_child t_run_child(void (*fn)(void *), void *arg)
{
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    t_child r;
    r.status = 0;
    size_t len = 0;
    ssize_t n;
    while ((n = read(fds[0], r.err + len, sizeof(r.err) - 1 - len)) > 0)
        len += (size_t)n;
    r.err[len] = '\0';
    close(fds[0]);
    CHECK(waitpid(pid, &r.status, 0) == pid, "waitpid");
    return r;
}

/* ---- the test's own process ---------------------------------------------
 * t_statm: address space and resident bytes, from /proc/self/statm with
 * open and read (no allocation); t_rss_bytes: the resident part only;
 * t_now_s: the monotonic clock in seconds. */
static T_UNUSED void t_statm(size_t *size, size_t *rss)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    CHECK(fd >= 0, "open /proc/self/statm");
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    CHECK(n > 0, "read /proc/self/statm");
    buf[n] = '\0';
    unsigned long s, r;
    CHECK(sscanf(buf, "%lu %lu", &s, &r) == 2, "statm: %s", buf);
    *size = s * (size_t)sysconf(_SC_PAGESIZE);
    *rss = r * (size_t)sysconf(_SC_PAGESIZE);
}

static T_UNUSED size_t t_rss_bytes(void)
{
    size_t size, rss;
    t_statm(&size, &rss);
    return rss;
}

static T_UNUSED double t_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* t_rerun: this program again, as a child with its stderr captured, with
 * argv[1] = mode and one more environment setting (NAME=VALUE, or NULL). */
typedef struct {
    const char *mode, *setting;
} t_rerun_args;

static T_UNUSED void t_rerun_body(void *p)
{
    t_rerun_args *a = (t_rerun_args *)p;
    if (a->setting) putenv((char *)a->setting);
    execl("/proc/self/exe", "/proc/self/exe", a->mode, (char *)NULL);
    _exit(127);
}

static T_UNUSED t_child t_rerun(const char *mode, const char *setting)
{
    t_rerun_args a = { mode, setting };
    return t_run_child(t_rerun_body, &a);
}

/* ---- threads with stacks of our own --------------------------------------
 * glibc keeps the stacks of finished threads in a cache, and with each cached
 * stack the thread's DTV, a block it got from malloc; those blocks stay live
 * after the join and would upset an exact live-block count.  A thread given
 * its own stack (pthread_attr_setstack) has its DTV freed when it is joined,
 * so tests that count live blocks start their threads with these. */
typedef struct {
    pthread_t th;
    void *stack;
    size_t size;
} t_thread;

static T_UNUSED void t_thread_start(t_thread *t, void *(*fn)(void *), void *arg)
{
    t->size = (size_t)1 << 20;
    t->stack = mmap(NULL, t->size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(t->stack != MAP_FAILED, "mmap of a thread stack failed: errno %d", errno);
    pthread_attr_t a;
    CHECK(pthread_attr_init(&a) == 0, "pthread_attr_init");
    CHECK(pthread_attr_setstack(&a, t->stack, t->size) == 0, "pthread_attr_setstack");
    int e = pthread_create(&t->th, &a, fn, arg);
    pthread_attr_destroy(&a);
    CHECK(e == 0, "pthread_create failed: %d", e);
}

static T_UNUSED void *t_thread_join(t_thread *t)
{
    void *ret = NULL;
    int e = pthread_join(t->th, &ret);
    CHECK(e == 0, "pthread_join failed: %d", e);
    munmap(t->stack, t->size);
    t->stack = NULL;
    return ret;
}

#ifdef __cplusplus
}
#endif

#endif
