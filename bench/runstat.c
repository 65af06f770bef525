/* runstat.c: runs one command and reports its peak RSS and times.
 *
 *   bench_runstat [-p PRELOAD_LIB] [-t TIMEOUT_SEC] [-o STAT_FILE]
 *                 [-s RSS_FILE [-i INTERVAL_MS]] -- PROGRAM [ARGS...]
 *
 * Forks, optionally sets LD_PRELOAD=PRELOAD_LIB in the child only (so the
 * helper itself never runs on the allocator under test), execs PROGRAM and
 * collects it with wait4, whose rusage gives the child's peak RSS. Writes one
 * line to STAT_FILE (default stderr):
 *
 *   RUNSTAT status=N maxrss_kb=N wall_sec=X user_sec=X sys_sec=X timed_out=0|1
 *
 * status is the exit status, or 128 + signal number if the child was killed.
 * The helper exits with that same status. With -t the child is killed
 * (SIGKILL) after TIMEOUT_SEC seconds. Usage errors exit with status 2;
 * failing to run PROGRAM gives 127.
 *
 * With -s the helper also samples the child's current RSS (the second field
 * of /proc/PID/statm: the whole process, every thread) every INTERVAL_MS
 * milliseconds (default 10, at most 60000) until it exits, and writes the
 * series to RSS_FILE, one sample a line after a '#' header:
 *
 *   SECONDS<TAB>RSS_KB      seconds since the fork, RSS in KiB
 *
 * The RUNSTAT line then also has
 *
 *   rss_samples=N rss_integral_mib_s=X rss_mean_kb=N rss_span_sec=X
 *
 * rss_integral_mib_s is the area under the series (trapezoids between
 * consecutive samples, MiB * seconds), rss_span_sec the time from the first
 * sample to the last and rss_mean_kb = integral / span, the time-weighted
 * mean RSS. Samples are kept in memory and written after the child ends, so
 * the helper does no file I/O while the child runs; reading statm takes no
 * lock the child needs. A sample that reads 0 (the child is exiting) is
 * dropped.
 * Used by scripts/bench.sh and scripts/bench-memory.sh; works without the
 * `time` package.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t alarm_fired;
static volatile pid_t child_pid;

/* SIGALRM: the timeout expired; kill the child right here (kill is
 * async-signal-safe), so there is no window where the wait could miss it. */
static void on_alarm(int sig)
{
    (void)sig;
    alarm_fired = 1;
    if (child_pid > 0)
        kill(child_pid, SIGKILL);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_runstat [-p PRELOAD_LIB] [-t TIMEOUT_SEC] "
                    "[-o STAT_FILE] [-s RSS_FILE [-i INTERVAL_MS]] -- PROGRAM [ARGS...]\n");
    exit(2);
}

static double tv_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static double ts_diff(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) * 1e-9;
}

/* Parses a positive decimal integer no larger than max; 0 if it is not one. */
static long parse_pos(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || v <= 0 || v > max)
        return 0;
    return v;
}

/* ---- RSS sampling ---------------------------------------------------------- */

typedef struct {
    double t;   /* seconds since the fork */
    long kb;
} sample;

static sample *samples;
static size_t n_samples, cap_samples;

/* Current RSS of the process whose statm is open as fd, in KiB; 0 if it
 * cannot be read (the process is gone or exiting). pread from offset 0
 * re-reads the file without reopening it. */
static long read_statm_kb(int fd, long page_kb)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long size_pages, resident_pages;
    if (sscanf(buf, "%ld %ld", &size_pages, &resident_pages) != 2)
        return 0;
    return resident_pages * page_kb;
}

static void add_sample(double t, long kb)
{
    if (kb <= 0)
        return;
    if (n_samples == cap_samples) {
        size_t cap = cap_samples ? 2 * cap_samples : 4096;
        sample *s = realloc(samples, cap * sizeof *s);
        if (!s)
            return;   /* out of memory: the series just ends early */
        samples = s;
        cap_samples = cap;
    }
    samples[n_samples].t = t;
    samples[n_samples].kb = kb;
    n_samples++;
}

/* Waits for pid like wait4, sampling its RSS every interval_ms meanwhile.
 * Returns wait4's result. */
static pid_t wait_sampling(pid_t pid, int *wstatus, struct rusage *ru,
                           struct timespec t0, long interval_ms)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    int fd = -1;
    long page_kb = sysconf(_SC_PAGESIZE) / 1024;
    struct timespec next = t0;
    for (;;) {
        pid_t r = wait4(pid, wstatus, WNOHANG, ru);
        if (r != 0) {
            if (r < 0 && errno == EINTR)
                continue;
            if (fd >= 0)
                close(fd);
            return r;
        }
        /* statm looks up the process's memory at each read, so the file
         * opened at the first tick (maybe before the exec) stays valid */
        if (fd < 0)
            fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            struct timespec now;
            long kb = read_statm_kb(fd, page_kb);
            clock_gettime(CLOCK_MONOTONIC, &now);
            add_sample(ts_diff(t0, now), kb);
        }
        /* next tick on an absolute schedule; if we fell behind, skip ahead */
        next.tv_nsec += interval_ms * 1000000L;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (ts_diff(next, now) > 0)
            next = now;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
}

/* Writes the series to path and sums it up; false if the file fails. */
static int write_series(const char *path, double *integral_mib_s, double *span)
{
    *integral_mib_s = 0;
    *span = 0;
    for (size_t i = 1; i < n_samples; i++) {
        double dt = samples[i].t - samples[i - 1].t;
        *integral_mib_s += dt * (double)(samples[i].kb + samples[i - 1].kb) / 2 / 1024;
    }
    if (n_samples > 1)
        *span = samples[n_samples - 1].t - samples[0].t;
    FILE *f = fopen(path, "w");
    if (!f)
        return 0;
    fprintf(f, "# seconds\trss_kb\n");
    for (size_t i = 0; i < n_samples; i++)
        fprintf(f, "%.4f\t%ld\n", samples[i].t, samples[i].kb);
    return fclose(f) == 0;
}

int main(int argc, char **argv)
{
    const char *preload = NULL, *stat_path = NULL, *rss_path = NULL;
    unsigned timeout = 0;
    long interval_ms = 10;
    int opt;
    while ((opt = getopt(argc, argv, "+p:t:o:s:i:")) != -1) {
        switch (opt) {
        case 'p': preload = optarg; break;
        case 'o': stat_path = optarg; break;
        case 's': rss_path = optarg; break;
        case 't':
            if (!(timeout = (unsigned)parse_pos(optarg, 1000000)))
                usage();
            break;
        case 'i':
            if (!(interval_ms = parse_pos(optarg, 60000)))
                usage();
            break;
        default: usage();
        }
    }
    if (optind >= argc)
        usage();

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench_runstat: fork");
        return 1;
    }
    if (pid == 0) {
        if (preload && setenv("LD_PRELOAD", preload, 1) != 0)
            _exit(127);
        execvp(argv[optind], &argv[optind]);
        fprintf(stderr, "bench_runstat: cannot run %s: %s\n", argv[optind],
                strerror(errno));
        _exit(127);
    }

    child_pid = pid;
    if (timeout) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sigaction(SIGALRM, &sa, NULL);
        alarm(timeout);
    }
    int wstatus = 0;
    struct rusage ru;
    for (;;) {
        pid_t r = rss_path ? wait_sampling(pid, &wstatus, &ru, t0, interval_ms)
                           : wait4(pid, &wstatus, 0, &ru);
        if (r == pid)
            break;
        if (r < 0 && errno == EINTR)
            continue;
        perror("bench_runstat: wait4");
        return 1;
    }
    alarm(0);
    int timed_out = alarm_fired;
    clock_gettime(CLOCK_MONOTONIC, &t1);

    int status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus)
               : WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : 1;
    double wall = ts_diff(t0, t1);

    double integral = 0, span = 0;
    if (rss_path && !write_series(rss_path, &integral, &span)) {
        perror("bench_runstat: cannot write the RSS series");
        return 1;
    }

    FILE *out = stderr;
    if (stat_path && !(out = fopen(stat_path, "w"))) {
        perror("bench_runstat: cannot open stat file");
        return 1;
    }
    fprintf(out, "RUNSTAT status=%d maxrss_kb=%ld wall_sec=%.3f user_sec=%.3f "
                 "sys_sec=%.3f timed_out=%d",
            status, ru.ru_maxrss, wall, tv_sec(ru.ru_utime), tv_sec(ru.ru_stime),
            timed_out);
    if (rss_path)
        fprintf(out, " rss_samples=%zu rss_integral_mib_s=%.3f rss_mean_kb=%.0f "
                     "rss_span_sec=%.3f",
                n_samples, integral, span > 0 ? integral * 1024 / span : 0.0, span);
    fprintf(out, "\n");
    if (out != stderr)
        fclose(out);
    return status;
}
