/* runstat.c: runs one command and reports its peak RSS and times.
 *
 *   bench_runstat [-p PRELOAD_LIB] [-t TIMEOUT_SEC] [-o STAT_FILE] -- PROGRAM [ARGS...]
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
 * Used by scripts/bench.sh; works without the `time` package.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
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
                    "[-o STAT_FILE] -- PROGRAM [ARGS...]\n");
    exit(2);
}

static double tv_sec(struct timeval tv)
{
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    const char *preload = NULL, *stat_path = NULL;
    unsigned timeout = 0;
    int opt;
    while ((opt = getopt(argc, argv, "+p:t:o:")) != -1) {
        switch (opt) {
        case 'p': preload = optarg; break;
        case 'o': stat_path = optarg; break;
        case 't': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v <= 0)
                usage();
            timeout = (unsigned)v;
            break;
        }
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
        pid_t r = wait4(pid, &wstatus, 0, &ru);
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
    double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;

    FILE *out = stderr;
    if (stat_path && !(out = fopen(stat_path, "w"))) {
        perror("bench_runstat: cannot open stat file");
        return 1;
    }
    fprintf(out, "RUNSTAT status=%d maxrss_kb=%ld wall_sec=%.3f user_sec=%.3f "
                 "sys_sec=%.3f timed_out=%d\n",
            status, ru.ru_maxrss, wall, tv_sec(ru.ru_utime), tv_sec(ru.ru_stime),
            timed_out);
    if (out != stderr)
        fclose(out);
    return status;
}
