/* secure_check: what the secure build (out/secure) adds, run preloaded with
 * out/secure/libhakmem.so by tests/run.sh:
 *  - a forged free-list link (a freed block's link, its second word, since
 *    the first holds the free mark, overwritten with a pointer elsewhere)
 *    stops the process with "corrupted free list" instead of being handed
 *    out;
 *  - the last page of a SuperSlab is a guard page;
 *  - blocks of a fresh slab are not handed out in address order.
 */
#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"

static int forged_link(void)
{
    static char target[256];
    void **a = malloc(t_size(64));
    void **b = malloc(t_size(64));
    free(a);
    free(b);                  /* local list: b -> a */
    void **forge = t_hide(b); /* use after free: forge b's link */
    forge[1] = t_hide(target + 16);
    void *x = malloc(t_size(64));   /* b */
    void *y = malloc(t_size(64));   /* would be the forged pointer */
    printf("not detected: %p %p\n", x, y);
    return 0;
}

static void abort_body(void *fn)
{
    signal(SIGABRT, SIG_DFL);
    _exit(((int (*)(void))fn)());
}

static void expect_abort(int (*fn)(void), const char *what)
{
    t_child r = t_run_child(abort_body, (void *)fn);
    CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "%s: not aborted (status %#x): %s", what, r.status,
          r.err);
    CHECK(strstr(r.err, what) != NULL, "message lacks \"%s\": %s", what, r.err);
    printf("detected: %s", r.err);
}

static int touch_guard(void)
{
    char *p = malloc(t_size(64));
    char *end = (char *)(((uintptr_t)p | ((1u << 21) - 1)) + 1);   /* end of its SuperSlab */
    *(volatile char *)(end - 1) = 1;
    return 0;
}

int main(void)
{
    test_init("secure_check");
    expect_abort(forged_link, "corrupted free list");

    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);
        _exit(touch_guard());
    }
    int st;
    CHECK(waitpid(pid, &st, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV, "guard page not hit (status %#x)", st);

    /* a fresh slab (a class nothing else uses) in shuffled order */
    enum { N = 60 };
    char *b[N];
    int descents = 0;
    for (int i = 0; i < N; i++) b[i] = malloc(t_size(2900));
    for (int i = 1; i < N; i++) descents += b[i] < b[i - 1];
    CHECK(descents > 0, "%d blocks of a fresh slab came in address order", N);
    for (int i = 0; i < N; i++) free(b[i]);
    printf("secure_check: ok (%d of %d steps went down)\n", descents, N - 1);
    return 0;
}
