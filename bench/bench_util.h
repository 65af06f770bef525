/* bench_util.h: small helpers shared by the benchmark programs in bench/.
 *
 * Everything here is static inline so each benchmark stays one .c file plus
 * this header: a private PRNG (splitmix64 for seeding, xoshiro256** for the
 * stream), a monotonic clock, strict argument parsing (usage errors exit with
 * status 2), fatal errors (exit status 1) and RSS read-outs.
 *
 * Result lines printed by the programs follow one format (see
 * docs/BENCHMARKS.md):  RESULT bench=NAME key=value key=value ...
 */
#ifndef HAKMEM_BENCH_UTIL_H
#define HAKMEM_BENCH_UTIL_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- PRNG ---------------------------------------------------------------- */

/* splitmix64: turns any seed (even 0) into well-mixed 64-bit words. */
static inline uint64_t bu_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* xoshiro256**: the per-thread generator used in the hot loops. */
typedef struct {
    uint64_t s[4];
} bu_rng;

/* Seeds a generator from (seed, stream): different streams give independent
 * sequences for the same seed (one stream per thread). */
static inline void bu_rng_seed(bu_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t st = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = bu_splitmix64(&st);
}

static inline uint64_t bu_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static inline uint64_t bu_next(bu_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = bu_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = bu_rotl(s[3], 45);
    return result;
}

/* Uniform-enough value in [0, n) for n > 0 (multiply-shift, no division). */
static inline uint64_t bu_below(uint64_t r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* ---- time ---------------------------------------------------------------- */

/* Waits a little in a spin loop: a CPU pause for the first spins, then
 * gives the core away (threads outnumber cores on a small machine). */
static inline void bu_backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        atomic_signal_fence(memory_order_seq_cst);
#endif
    } else {
        sched_yield();
    }
}

static inline double bu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- errors and argument parsing ------------------------------------------ */

/* Set by each program before parsing: its usage text (without "usage: "). */
static const char *bu_usage_text = "";
static const char *bu_prog = "bench";

/* Records the program's name and usage text for error messages; -h or
 * --help as the only argument prints the usage on stdout and exits 0. */
static inline void bu_set_usage(const char *prog, const char *usage,
                                int argc, char **argv)
{
    bu_prog = prog;
    bu_usage_text = usage;
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        printf("usage: %s %s\n", prog, usage);
        exit(0);
    }
}

/* Prints a reason and the usage line to stderr, exits with status 2. */
__attribute__((noreturn, format(printf, 1, 2)))
static inline void bu_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", bu_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s %s\n", bu_prog, bu_usage_text);
    exit(2);
}

/* Runtime failure (allocation failed, pthread_create failed...): exit 1. */
__attribute__((noreturn, format(printf, 1, 2)))
static inline void bu_die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: error: ", bu_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Parses a plain decimal unsigned integer (digits only: no sign, no spaces,
 * no hex) in [min, max]; anything else is a usage error naming `what`. */
static inline uint64_t bu_parse_u64(const char *s, const char *what,
                                    uint64_t min, uint64_t max)
{
    uint64_t v = 0;
    if (*s == '\0')
        bu_usage_error("%s: empty argument", what);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            bu_usage_error("%s: '%s' is not a non-negative integer", what, s);
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            bu_usage_error("%s: '%s' is too large", what, s);
        v = v * 10 + d;
    }
    if (v < min || v > max)
        bu_usage_error("%s: %s is out of range [%llu, %llu]", what, s,
                       (unsigned long long)min, (unsigned long long)max);
    return v;
}

/* Parses a positive decimal number such as "10" or "0.5", at most max. */
static inline double bu_parse_seconds(const char *s, const char *what,
                                      double max)
{
    char *end;
    errno = 0;
    if (*s == '\0' || *s == '-' || *s == '+' || *s == ' ')
        bu_usage_error("%s: '%s' is not a positive number", what, s);
    for (const char *p = s; *p; p++)
        if ((*p < '0' || *p > '9') && *p != '.')
            bu_usage_error("%s: '%s' is not a positive number", what, s);
    double v = strtod(s, &end);
    if (errno || *end != '\0' || !(v > 0.0) || v > max)
        bu_usage_error("%s: '%s' must be a number in (0, %g]", what, s, max);
    return v;
}

/* Allocation wrapper for the benchmark's own bookkeeping (not measured). */
static inline void *bu_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p)
        bu_die("out of memory allocating %zu x %zu bytes of bookkeeping", n, size);
    return p;
}

/* ---- memory read-outs ---------------------------------------------------- */

/* Peak resident set size of this process so far, in KiB. */
static inline long bu_peak_rss_kb(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss; /* Linux reports KiB */
}

/* Current resident set size in KiB, from /proc/self/statm (-1 if unknown). */
static inline long bu_current_rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size_pages, resident_pages;
    if (!f)
        return -1;
    int n = fscanf(f, "%ld %ld", &size_pages, &resident_pages);
    fclose(f);
    if (n != 2)
        return -1;
    return resident_pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- output -------------------------------------------------------------- */

/* ops / seconds, guarding against a zero-length interval. */
static inline double bu_rate(double ops, double seconds)
{
    return seconds > 0.0 ? ops / seconds : 0.0;
}

#endif
