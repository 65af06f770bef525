/* test_single_thread: hakmem adds no thread to a single-threaded process,
 * and starts its purge thread only when the program has a second thread and
 * allows it (issue 12, item 2).
 *
 *  1. After freeing slabs and large blocks (what used to start the purge
 *     thread), a single-threaded process still has one thread, and
 *     unshare(CLONE_FS) and unshare(CLONE_NEWUSER) succeed (the kernel
 *     refuses both to a multi-threaded process with EINVAL).
 *  2. A single-threaded process whose seccomp filter kills it on clone
 *     frees all it likes.
 *  3. With two threads that used hakmem, the purge thread does start (so 1
 *     and 2 are not vacuous), and with HAKMEM_PURGE_THREAD=0 it does not.
 *  4. When its start fails (a seccomp filter answers clone with EAGAIN, and
 *     counts), 10,000 frees that leave memory to purge try it at most once
 *     per second.
 * The memory-return side (a single-threaded program that frees 1.5 GiB and
 * then makes no call gets its RSS back) is test_rss's first case. Thread
 * counts are read from /proc/self/status.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

static int threads_now(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    CHECK(fd >= 0, "open /proc/self/status");
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    CHECK(n > 0, "read /proc/self/status");
    buf[n] = '\0';
    const char *t = strstr(buf, "\nThreads:");
    CHECK(t != NULL, "no Threads: line");
    return atoi(t + 9);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Frees that give hakmem memory to purge: whole slabs of small blocks, and
 * large blocks into its cache. */
static void churn(void)
{
    enum { N = 20000 };
    void **p = mmap(NULL, N * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap");
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            p[i] = malloc(t_size(64 + (size_t)(i % 7) * 64));
            CHECK(p[i] != NULL, "malloc failed");
        }
        for (int i = 0; i < N; i++) free(p[i]);
    }
    munmap(p, N * sizeof(void *));
    for (int i = 0; i < 4; i++) {
        void *big = malloc(t_size((size_t)(1 + i) << 20));
        CHECK(big != NULL, "malloc of a large block");
        memset(big, 1, 4096);
        free(big);
    }
}

/* A second thread that used hakmem and stays. */
static void *parked_thread(void *arg)
{
    (void)arg;
    free(malloc(t_size(32)));
    for (;;) pause();
    return NULL;
}

static void start_parked(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, parked_thread, NULL) == 0, "pthread_create");
    sleep_ms(50);
}

/* ---- 1, 2 -------------------------------------------------------------------- */

static void single_threaded(void *arg)
{
    (void)arg;
    churn();
    sleep_ms(300);
    CHECK(threads_now() == 1, "a single-threaded process has %d threads after its frees", threads_now());
    CHECK(unshare(CLONE_FS) == 0, "unshare(CLONE_FS) failed: errno %d", errno);
    if (unshare(CLONE_NEWUSER) != 0) {
        CHECK(errno != EINVAL, "unshare(CLONE_NEWUSER) failed with EINVAL: the process is multi-threaded");
        printf("note: unshare(CLONE_NEWUSER) is not allowed here (errno %d)\n", errno);
    }
}

static int install_filter(unsigned action, unsigned flags)
{
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, action),
    };
    struct sock_fprog prog = { sizeof code / sizeof code[0], code };
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "prctl(PR_SET_NO_NEW_PRIVS)");
    int r = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    CHECK(r >= 0, "seccomp: errno %d", errno);
    return r;
}

static void no_clone_allowed(void *arg)
{
    (void)arg;
    install_filter(SECCOMP_RET_KILL_PROCESS, 0);
    churn();
    sleep_ms(200);
    churn();
}

/* ---- 3 ---------------------------------------------------------------------- */

static int wait_threads(int want, long ms)
{
    int n = threads_now();
    for (long t = 0; t < ms && n != want; t += 10) {
        sleep_ms(10);
        n = threads_now();
    }
    return n;
}

static void two_threads(void *arg)
{
    (void)arg;
    start_parked();
    churn();
    int n = wait_threads(3, 1000);
    CHECK(n == 3, "two threads that freed memory to purge: %d threads, not 3 (with the purge thread)", n);
}

static void two_threads_no_purge_thread(void *arg)
{
    (void)arg;
    char *argv[] = { "/proc/self/exe", "no-purge-thread", NULL };
    setenv("HAKMEM_PURGE_THREAD", "0", 1);
    execv("/proc/self/exe", argv);
    FAIL("execv: errno %d", errno);
}

static void no_purge_thread_child(void)
{
    start_parked();
    churn();
    sleep_ms(300);
    CHECK(threads_now() == 2, "HAKMEM_PURGE_THREAD=0: %d threads, not 2", threads_now());
}

/* ---- 4 ---------------------------------------------------------------------- */

static atomic_int clone_tries;
static atomic_int listener = -1;

/* Answers every clone of the filtered thread with EAGAIN, and counts. */
static void *clone_refuser(void *arg)
{
    (void)arg;
    free(malloc(t_size(32)));   /* a second thread that used hakmem */
    int fd;
    while ((fd = atomic_load(&listener)) < 0) sleep_ms(1);
    struct seccomp_notif_sizes sz;
    CHECK(syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sz) == 0, "SECCOMP_GET_NOTIF_SIZES");
    static char reqbuf[4096], respbuf[4096];
    CHECK(sz.seccomp_notif <= sizeof reqbuf && sz.seccomp_notif_resp <= sizeof respbuf, "notification sizes");
    struct seccomp_notif *req = (void *)reqbuf;
    struct seccomp_notif_resp *resp = (void *)respbuf;
    for (;;) {
        memset(reqbuf, 0, sizeof reqbuf);
        if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) != 0) continue;
        atomic_fetch_add(&clone_tries, 1);
        memset(respbuf, 0, sizeof respbuf);
        resp->id = req->id;
        resp->error = -EAGAIN;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    return NULL;
}

static void start_fails(void *arg)
{
    (void)arg;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, clone_refuser, NULL) == 0, "pthread_create");
    sleep_ms(50);
    /* only this thread is filtered: the refuser answers for it */
    atomic_store(&listener, install_filter(SECCOMP_RET_USER_NOTIF, SECCOMP_FILTER_FLAG_NEW_LISTENER));
    double t0 = t_now_s();
    for (int i = 0; i < 10000; i++) {
        char *p = malloc(t_size(64 << 10));
        CHECK(p != NULL, "malloc(64 KiB) %d", i);
        p[0] = 1;
        free(p);
    }
    double secs = t_now_s() - t0;
    int tries = atomic_load(&clone_tries);
    printf("10,000 frees in %.2f s: %d attempts to start the purge thread\n", secs, tries);
    CHECK(tries >= 1, "no attempt to start the purge thread was seen: the test saw nothing");
    CHECK(tries <= 1 + (int)secs, "%d attempts to start the purge thread in %.2f s (at most one a second)", tries, secs);
}

/* ---- driver ------------------------------------------------------------------ */

static const char *only;   /* argv[1]: run only the case whose name starts so */

static void expect_ok(void (*fn)(void *), const char *what)
{
    if (only && strncmp(what, only, strlen(only)) != 0) return;
    t_child r = t_run_child(fn, NULL);
    if (r.err[0]) fprintf(stderr, "%s", r.err);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "%s: the child ended with %s %d", what,
          WIFEXITED(r.status) ? "status" : "signal", WIFEXITED(r.status) ? WEXITSTATUS(r.status) : WTERMSIG(r.status));
    printf("%s: ok\n", what);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "no-purge-thread") == 0) {
        no_purge_thread_child();
        return 0;
    }
    only = argc > 1 ? argv[1] : NULL;
    test_init("test_single_thread");
    expect_ok(single_threaded, "single-threaded: one thread, unshare works");
    expect_ok(no_clone_allowed, "single-threaded under a filter that kills on clone");
    expect_ok(two_threads, "two threads: the purge thread starts");
    expect_ok(two_threads_no_purge_thread, "two threads, HAKMEM_PURGE_THREAD=0: no purge thread");
    expect_ok(start_fails, "failed starts back off");
    printf("test_single_thread: ok\n");
    return 0;
}
