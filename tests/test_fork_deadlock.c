/* test_fork_deadlock: fork never deadlocks in hakmem (issue 12, item 3).
 *
 *  1. fork from a signal handler while the process is inside fork (the
 *     scenario of glibc's tst-mallocfork, bug 838): the process forks a
 *     child that at once sends it SIGALRM, whose handler forks again; 500
 *     times per run, 6 runs (hakmem's fork handlers used to take a lock the
 *     interrupted fork already held: the thread waited on itself). Only in
 *     a single-threaded process: with a second thread, glibc's own fork
 *     holds its lock of fork handlers across fork, and a fork inside fork
 *     waits for it under any malloc.
 *  2. fork against stdio (glibc's tst-malloc-fork-deadlock, bug 19431): one
 *     thread forks in a loop while others read long lines with getline
 *     (which reallocates under the FILE's lock, into large blocks) and one
 *     calls fflush(NULL) (the stdio list lock, then each FILE's); for 2 s.
 *     hakmem's handlers used to hold hakmem's locks while glibc's fork
 *     waited for the stdio list lock: a three-way deadlock.
 * Each run is a child process in a group of its own, killed if it has not
 * ended within 20 s; a hang fails the test.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>

#define RUN_LIMIT_S 20.0

/* Runs fn in a child of its own group; 0 if it exited 0 in time. */
static int run(void (*fn)(void), const char *what)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: errno %d", errno);
    if (pid == 0) {
        setpgid(0, 0);
        fn();
        _exit(0);
    }
    setpgid(pid, pid);
    double end = t_now_s() + RUN_LIMIT_S;
    int st = 0;
    pid_t r;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && t_now_s() < end) {
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (r == 0) {
        fprintf(stderr, "%s: still running after %.0f s: deadlocked\n", what, RUN_LIMIT_S);
        kill(-pid, SIGKILL);
        waitpid(pid, &st, 0);
        return 1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: ended with %s %d\n", what, WIFEXITED(st) ? "status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        return 1;
    }
    return 0;
}

/* ---- 1 ------------------------------------------------------------------------ */

static void alarm_forks(int sig)
{
    (void)sig;
    int saved = errno;
    pid_t child = fork();
    if (child == 0) exit(0);   /* exit, not _exit: atexit handlers and stdio run in it */
    if (child > 0)
        while (waitpid(child, NULL, 0) < 0 && errno == EINTR) {
        }
    errno = saved;
}

static void forks_under_alarm(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = alarm_forks;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
    pid_t parent = getpid();
    free(malloc(t_size(sizeof(int))));
    for (int i = 0; i < 500; i++) {
        pid_t sender = fork();
        CHECK(sender >= 0, "fork: errno %d", errno);
        if (sender == 0) {
            kill(parent, SIGALRM);   /* lands while the parent may still be in fork */
            _exit(0);
        }
        int st;
        while (waitpid(sender, &st, 0) < 0) CHECK(errno == EINTR, "waitpid: errno %d", errno);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the signalling child failed");
    }
}

/* ---- 2 ------------------------------------------------------------------------ */

#define READERS 3
#define LINE_BYTES (100 * 1024)
#define LINES 6

static atomic_int stop;

static void *reader(void *arg)
{
    char *text = arg;
    FILE *f = fmemopen(text, (size_t)LINES * (LINE_BYTES + 1), "r");
    CHECK(f != NULL, "fmemopen: errno %d", errno);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        char *line = NULL;   /* a fresh buffer each time: getline grows it with realloc */
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        if (n < 0) rewind(f);
        else CHECK(n == LINE_BYTES + 1, "getline read %zd bytes", n);
        free(line);
    }
    fclose(f);
    return NULL;
}

static void *flusher(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) fflush(NULL);
    return NULL;
}

static void fork_against_stdio(void)
{
    size_t len = (size_t)LINES * (LINE_BYTES + 1);
    char *text = malloc(len);
    CHECK(text != NULL, "malloc");
    for (int l = 0; l < LINES; l++) {
        memset(text + (size_t)l * (LINE_BYTES + 1), 'a' + l, LINE_BYTES);
        text[(size_t)l * (LINE_BYTES + 1) + LINE_BYTES] = '\n';
    }
    pthread_t r[READERS], fl;
    for (int i = 0; i < READERS; i++) CHECK(pthread_create(&r[i], NULL, reader, text) == 0, "pthread_create");
    CHECK(pthread_create(&fl, NULL, flusher, NULL) == 0, "pthread_create");
    double end = t_now_s() + 2;
    int forks = 0;
    while (t_now_s() < end) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork: errno %d", errno);
        if (pid == 0) {
            free(malloc(t_size(40000)));   /* the child can allocate */
            _exit(0);
        }
        int st;
        CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a forked child failed");
        forks++;
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < READERS; i++) pthread_join(r[i], NULL);
    pthread_join(fl, NULL);
    free(text);
    printf("fork against stdio: %d forks\n", forks);
}

int main(void)
{
    test_init("test_fork_deadlock");
    int bad = 0;
    for (int i = 0; i < 6; i++) bad += run(forks_under_alarm, "fork in a signal handler during fork");
    bad += run(fork_against_stdio, "fork against getline and fflush(NULL)");
    CHECK(bad == 0, "%d runs deadlocked or failed (see above)", bad);
    printf("test_fork_deadlock: ok\n");
    return 0;
}
