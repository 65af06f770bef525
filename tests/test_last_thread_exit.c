/* test_last_thread_exit: a process whose threads have all called
 * pthread_exit ends, under hakmem as without it (issue 6; found by
 * CPython's test_threading, test_3_join_in_forked_from_thread).
 *
 * POSIX: the process exits with status 0 when its last thread terminates,
 * and a main thread may end with pthread_exit while other threads go on.
 * A helper thread of the allocator (hakmem starts a purge thread the first
 * time memory comes back to it) must not count as one of the program's
 * threads: if it keeps running, a process whose own threads have all
 * exited lives on forever, and since that helper blocks every signal, the
 * process then ignores SIGTERM and SIGINT too (only SIGKILL ends it).
 *
 * Each scenario runs in a child process that frees enough memory for the
 * purge thread to start and then ends its threads with pthread_exit; the
 * parent gives it 5 seconds to exit with status 0, then kills it.
 *   1. the main thread calls pthread_exit, no other thread left;
 *   2. the main thread calls pthread_exit while a second thread still runs;
 *      the second thread returns a moment later;
 *   3. as 1, in a child forked from a non-main thread (what CPython does).
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define N 20000

/* free whole slabs and a large block: what starts hakmem's purge thread */
static void churn(void)
{
    static void *p[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = malloc(t_size(64 + (size_t)(i % 7) * 64));
            CHECK(p[i] != NULL, "malloc failed");
        }
        for (int i = 0; i < N; i++)
            free(p[i]);
    }
    void *big = malloc(t_size((size_t)3 << 20));
    CHECK(big != NULL, "malloc(3 MiB) failed");
    memset(big, 1, (size_t)3 << 20);
    free(big);
}

static void *late_thread(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    churn();
    return NULL;
}

static void scenario_main_exits_alone(void)
{
    churn();
    pthread_exit(NULL);
}

static void scenario_main_exits_first(void)
{
    churn();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, late_thread, NULL) == 0, "pthread_create");
    pthread_exit(NULL);
}

static void *fork_from_thread(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed: errno %d", errno);
    if (pid == 0) {
        /* the child's only thread is this one, not its main thread */
        churn();
        pthread_exit(NULL);
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static void scenario_fork_from_thread(void)
{
    churn();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fork_from_thread, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    _exit(3);   /* not reached: the thread ends the process */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(void (*fn)(void), const char *what)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed: errno %d", errno);
    if (pid == 0) {
        setpgid(0, 0);   /* a group of its own: a stuck grandchild is killed too */
        fn();
        _exit(2);
    }
    setpgid(pid, pid);
    double end = now_s() + 5;
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && now_s() < end) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (r == 0) {
        /* what is left of it: tell which threads (names from /proc) */
        char comm[128] = "";
        fprintf(stderr, "%s: the process has not exited 5 s after its threads called "
                "pthread_exit; threads still there:", what);
        FILE *ls;
        char cmd[128];
        snprintf(cmd, sizeof cmd, "cat /proc/%d/task/*/comm 2>/dev/null | tr '\\n' ' '", (int)pid);
        ls = popen(cmd, "r");
        if (ls) {
            if (fgets(comm, sizeof comm, ls))
                fprintf(stderr, " %s", comm);
            pclose(ls);
        }
        fprintf(stderr, "\n");
        kill(pid, SIGTERM);
        struct timespec ts = { 0, 300 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        if (waitpid(pid, &st, WNOHANG) == 0) {
            fprintf(stderr, "%s: and SIGTERM did not end it either; killed with SIGKILL\n", what);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        kill(-pid, SIGKILL);   /* anything left in its group */
        return 1;
    }
    CHECK(r == pid, "waitpid: errno %d", errno);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: the process ended with %s %d, not status 0\n", what,
                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return 1;
    }
    printf("%s: exited\n", what);
    return 0;
}

int main(void)
{
    test_init("test_last_thread_exit");
    int bad = 0;
    bad += run(scenario_main_exits_alone, "main thread calls pthread_exit");
    bad += run(scenario_main_exits_first, "main thread calls pthread_exit before another thread ends");
    bad += run(scenario_fork_from_thread, "child forked from a thread, which calls pthread_exit");
    CHECK(bad == 0, "%d of 3 scenarios did not end (see above)", bad);
    printf("test_last_thread_exit: ok\n");
    return 0;
}
