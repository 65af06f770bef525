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
 * And the purge thread never ends the process itself (issue 12, item 1):
 *   4. the main thread calls pthread_exit; a chain of short-lived detached
 *      threads, each allocating and starting the next, ends the process
 *      with exit(5) after 3 s: the status must be 5, after 3 s (hakmem's
 *      purge thread used to list /proc/self/task, miss a thread born after
 *      the listing and call exit(0));
 *   5. two threads, one descriptor left under RLIMIT_NOFILE: the process
 *      sleeps 2 s after freeing memory and exits with 6 (a failed open of
 *      /proc used to count as "every thread ended");
 *   6. the main thread and a worker end with pthread_exit, in a mount
 *      namespace without /proc where root can make one: the process must
 *      end with status 0, and its atexit handler, run by whichever thread
 *      is last, has a stack of at least the default size and SIGINT and
 *      SIGTERM unblocked (the purge thread's 64 KiB stack and full signal
 *      mask used to be what atexit handlers got). Run 4 times.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define N 20000

/* free whole slabs and a large block: what starts hakmem's purge thread */
static void churn(void)
{
    /* a table of its own: threads may churn at the same time */
    void **p = mmap(NULL, N * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
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
    munmap(p, N * sizeof(void *));
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


/* ---- 4: a chain of short threads outlives main -------------------------- */

#define CHAIN_SECONDS 3.0
static double chain_end;

static void *chain_link(void *arg)
{
    (void)arg;
    free(malloc(t_size(100)));
    if (t_now_s() >= chain_end) exit(5);
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    CHECK(pthread_create(&t, &a, chain_link, NULL) == 0, "pthread_create in the chain");
    pthread_attr_destroy(&a);
    return NULL;
}

static void *churn_thread(void *arg)
{
    (void)arg;
    churn();
    return NULL;
}

/* Two threads that used hakmem and memory to purge: the purge thread runs. */
static void start_purge_thread(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, churn_thread, NULL) == 0, "pthread_create");
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    churn();
}

static void scenario_chain(void)
{
    chain_end = t_now_s() + CHAIN_SECONDS;
    pthread_t keep;   /* keeps the process multi-threaded for hakmem while main churns */
    CHECK(pthread_create(&keep, NULL, churn_thread, NULL) == 0, "pthread_create");
    churn();
    pthread_join(keep, NULL);
    chain_link(NULL);
    pthread_exit(NULL);
}

/* ---- 5: no descriptor to spare ------------------------------------------- */

static void *sleeper(void *arg)
{
    (void)arg;
    free(malloc(t_size(100)));
    for (;;) pause();
    return NULL;
}

static void scenario_no_fds(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, sleeper, NULL) == 0, "pthread_create");
    churn();
    void *p = malloc(t_size(1 << 20));
    CHECK(p != NULL, "malloc(1 MiB)");
    memset(p, 1, 1 << 20);
    /* every descriptor but one in use */
    int fd;
    while ((fd = open("/dev/null", O_RDONLY)) >= 0 && fd < 4096) {
    }
    struct rlimit rl = { (rlim_t)fd + 1, (rlim_t)fd + 1 };
    if (fd >= 0) close(fd);
    CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "setrlimit: errno %d", errno);
    free(p);
    struct timespec ts = { 2, 0 };
    while (nanosleep(&ts, &ts) != 0) {
    }
    _exit(6);
}

/* ---- 6: atexit handlers on the last thread, without /proc ----------------- */

static void check_last_thread(void)
{
    pthread_attr_t a, def;
    size_t size = 0, def_size = 0;
    CHECK(pthread_getattr_np(pthread_self(), &a) == 0, "pthread_getattr_np");
    pthread_attr_getstacksize(&a, &size);
    pthread_attr_destroy(&a);
    CHECK(pthread_getattr_default_np(&def) == 0, "pthread_getattr_default_np");
    pthread_attr_getstacksize(&def, &def_size);
    pthread_attr_destroy(&def);
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    char name[32] = "";
    pthread_getname_np(pthread_self(), name, sizeof name);
    if (size < def_size) {
        fprintf(stderr, "atexit ran on thread \"%s\" with a stack of %zu bytes, default %zu\n", name, size, def_size);
        _exit(7);
    }
    if (sigismember(&now, SIGINT) || sigismember(&now, SIGTERM)) {
        fprintf(stderr, "atexit ran on thread \"%s\" with SIGINT or SIGTERM blocked\n", name);
        _exit(8);
    }
}

static void *ending_worker(void *arg)
{
    (void)arg;
    churn();
    struct timespec ts = { 0, 50 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    return NULL;
}

static void scenario_atexit(void)
{
    /* no /proc: root can hide it in a mount namespace of the child's own */
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0)
        umount2("/proc", MNT_DETACH);
    atexit(check_last_thread);
    start_purge_thread();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, ending_worker, NULL) == 0, "pthread_create");
    pthread_exit(NULL);
}

static int run(void (*fn)(void), const char *what, int want_status, double min_s)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork failed: errno %d", errno);
    if (pid == 0) {
        setpgid(0, 0);   /* a group of its own: a stuck grandchild is killed too */
        fn();
        _exit(2);
    }
    setpgid(pid, pid);
    double start = t_now_s(), end = start + 6;
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && t_now_s() < end) {
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
    if (!WIFEXITED(st) || WEXITSTATUS(st) != want_status) {
        fprintf(stderr, "%s: the process ended with %s %d after %.1f s, not status %d\n", what,
                WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
                t_now_s() - start, want_status);
        return 1;
    }
    if (t_now_s() - start < min_s) {
        fprintf(stderr, "%s: the process ended after %.1f s, before its own exit at %.1f s\n", what,
                t_now_s() - start, min_s);
        return 1;
    }
    printf("%s: exited with %d after %.1f s\n", what, want_status, t_now_s() - start);
    return 0;
}

int main(void)
{
    test_init("test_last_thread_exit");
    int bad = 0;
    bad += run(scenario_main_exits_alone, "main thread calls pthread_exit", 0, 0);
    bad += run(scenario_main_exits_first, "main thread calls pthread_exit before another thread ends", 0, 0);
    bad += run(scenario_fork_from_thread, "child forked from a thread, which calls pthread_exit", 0, 0);
    bad += run(scenario_chain, "a chain of short threads outlives main", 5, CHAIN_SECONDS - 0.5);
    bad += run(scenario_no_fds, "no descriptor to spare", 6, 1.9);
    for (int i = 0; i < 4; i++)
        bad += run(scenario_atexit, "atexit on the last thread, without /proc", 0, 0);
    CHECK(bad == 0, "%d scenarios did not end as they should (see above)", bad);
    printf("test_last_thread_exit: ok\n");
    return 0;
}
