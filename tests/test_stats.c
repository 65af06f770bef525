/* test_stats: statistics (HAKMEM_STATS=1) and the crash report.
 *
 * Statistics: a child process runs a known allocation sequence with
 * HAKMEM_STATS=1 and checks hak_stats_get's counts for it exactly, and that
 * the summary printed at exit has the same row; without HAKMEM_STATS the
 * per-class counts are off.
 * Crash report: a child faults inside a hakmem block (made PROT_NONE) and must
 * die by SIGSEGV after a report naming the SuperSlab, size class and block;
 * abort() gives a report and death by SIGABRT; with HAKMEM_CRASH_REPORT=0 or
 * a handler of the program's own, no report.
 * Options are read at start-up, so each child is this program run again.
 */
#include <signal.h>
#include <sys/wait.h>

#include "hakmem.h"
#include "testutil.h"

typedef int (*stats_get_fn)(struct hak_stats *);

#define N_BLOCKS 1000
#define N_FREED  400
#define SIZE     3000   /* class of 3072 bytes: nothing else here uses it */

static int child_stats(void)
{
    stats_get_fn get = (stats_get_fn)dlsym(RTLD_DEFAULT, "hak_stats_get");
    CHECK(get != NULL, "hak_stats_get not found");
    static void *b[N_BLOCKS];
    for (int i = 0; i < N_BLOCKS; i++) b[i] = malloc(t_size(SIZE));
    for (int i = 0; i < N_FREED; i++) free(b[i]);
    void *big[3];
    for (int i = 0; i < 3; i++) big[i] = malloc(t_size(1 << 20));
    free(big[0]);
    static struct hak_stats st;
    CHECK(get(&st) == 0, "hak_stats_get failed");
    const char *want = getenv("HAKMEM_STATS");
    if (want && strcmp(want, "1") == 0) {
        struct hak_class_stats *cs = NULL;
        for (unsigned c = 0; c < st.n_classes; c++)
            if (st.classes[c].block_size == 3072) cs = &st.classes[c];
        CHECK(st.counting == 1, "counting off with HAKMEM_STATS=1");
        CHECK(cs != NULL, "no 3072-byte class");
        CHECK(cs->allocs == N_BLOCKS && cs->frees == N_FREED && cs->live == N_BLOCKS - N_FREED &&
              cs->peak == N_BLOCKS, "class 3072: allocs %llu frees %llu live %llu peak %llu",
              (unsigned long long)cs->allocs, (unsigned long long)cs->frees,
              (unsigned long long)cs->live, (unsigned long long)cs->peak);
    } else {
        CHECK(st.counting == 0, "counting on without HAKMEM_STATS");
    }
    CHECK(st.large_live == 2 && st.large_allocs >= 3, "large: %llu live, %llu allocated",
          (unsigned long long)st.large_live, (unsigned long long)st.large_allocs);
    CHECK(st.superslabs_mapped >= 1, "no SuperSlab counted");
    CHECK(st.rss_bytes > 0 && st.rss_peak_bytes >= st.rss_bytes, "rss %llu peak %llu",
          (unsigned long long)st.rss_bytes, (unsigned long long)st.rss_peak_bytes);
    return 0;
}

static void own_handler(int sig)
{
    (void)sig;
    static const char msg[] = "own handler ran\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    _exit(42);
}

static int child_segv(int own)
{
    if (own) signal(SIGSEGV, own_handler);
    char *p = malloc(t_size(8192));
    /* the block's page(s) become inaccessible; touching them faults inside hakmem's memory */
    char *page = (char *)(((uintptr_t)p + 4095) & ~(uintptr_t)4095);
    CHECK(mprotect(page, 4096, PROT_NONE) == 0, "mprotect");
    *(volatile char *)(page + 100) = 1;
    return 0;
}

/* A stack overflow on a thread with an alternate signal stack: the report
 * runs there (SA_ONSTACK). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static int recurse(volatile char *up)
{
    volatile char pad[1024];
    pad[0] = up ? up[0] : 0;
    return recurse(pad) + pad[0];
}
#pragma GCC diagnostic pop

static int child_overflow(void)
{
    stack_t ss = { .ss_sp = malloc(t_size(64 << 10)), .ss_size = 64 << 10, .ss_flags = 0 };
    CHECK(ss.ss_sp != NULL && sigaltstack(&ss, NULL) == 0, "sigaltstack");
    return recurse(NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "stats") == 0) return child_stats();
        if (strcmp(argv[1], "segv") == 0) return child_segv(0);
        if (strcmp(argv[1], "segv-own") == 0) return child_segv(1);
        if (strcmp(argv[1], "abort") == 0) abort();
        if (strcmp(argv[1], "overflow") == 0) return child_overflow();
        return 2;
    }
    test_init("test_stats");

    t_child r = t_rerun("stats", "HAKMEM_STATS=1");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "stats child failed: %s", r.err);
    CHECK(strstr(r.err, "hakmem statistics") != NULL, "no summary at exit: %s", r.err);
    CHECK(strstr(r.err, "3072\t1000\t400\t600\t1000") != NULL, "summary lacks the 3072-byte row: %s", r.err);
    r = t_rerun("stats", NULL);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "stats child (off) failed: %s", r.err);
    CHECK(strstr(r.err, "hakmem statistics") == NULL, "summary printed without HAKMEM_STATS: %s", r.err);

    r = t_rerun("segv", NULL);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV, "segv child status %#x: %s", r.status, r.err);
    CHECK(strstr(r.err, "crash report: SIGSEGV at address") != NULL, "no report: %s", r.err);
    CHECK(strstr(r.err, "is in SuperSlab") && strstr(r.err, "(8192 bytes), block"), "report lacks the block: %s", r.err);
    printf("segv report:\n%s", r.err);

    r = t_rerun("abort", NULL);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "abort child status %#x: %s", r.status, r.err);
    CHECK(strstr(r.err, "crash report: SIGABRT") != NULL, "no abort report: %s", r.err);

    r = t_rerun("overflow", NULL);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV, "overflow child status %#x: %s", r.status, r.err);
    CHECK(strstr(r.err, "crash report: SIGSEGV at address") != NULL, "no report of a stack overflow: %s", r.err);

    r = t_rerun("segv", "HAKMEM_CRASH_REPORT=0");
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGSEGV, "segv child (off) status %#x", r.status);
    CHECK(strstr(r.err, "crash report") == NULL, "report printed though off: %s", r.err);

    r = t_rerun("segv-own", NULL);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 42, "own handler child status %#x: %s", r.status, r.err);
    CHECK(strstr(r.err, "crash report") == NULL, "report printed over the program's handler: %s", r.err);
    printf("test_stats: ok\n");
    return 0;
}
