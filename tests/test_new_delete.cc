// test_new_delete: C++'s operator new and delete, every form, answered by
// libhakmem directly (issue 16).
//
// - Each of the 20 operators (new, new[], nothrow, aligned, aligned
//   nothrow; delete, delete[], nothrow, sized, aligned, aligned nothrow,
//   aligned sized) is found in libhakmem, not libstdc++ (dladdr of the
//   symbol the process resolves).
// - Each form of new hands out a hakmem block, aligned as asked (up to
//   1 MiB), and moves mallinfo2's uordblks (or hblks) by it; each delete
//   gives it back. With HAKMEM_STATS=1 the class's allocs and frees count
//   every one of them (a child).
// - new of an impossible size calls the installed new_handler until it is
//   removed, then throws std::bad_alloc; the nothrow forms call it too and
//   return nullptr when it throws or is removed; a handler that makes room
//   (raises RLIMIT_AS) lets new succeed; a non-power-of-two alignment throws.
// - Sized delete with a wrong size: the debug build stops with one line,
//   the release build frees.
#include "hakmem.h"
#include "testutil.h"

#include <malloc.h>
#include <new>
#include <signal.h>
#include <sys/resource.h>

namespace {

typedef int (*stats_get_fn)(struct hak_stats *);
stats_get_fn stats_get;

const char *const kOperators[] = {
    "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv", "_ZdaPv", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvm", "_ZdaPvm",
    "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
};

void test_symbols()
{
    for (const char *name : kOperators) {
        void *f = dlsym(RTLD_DEFAULT, name);
        CHECK(f != nullptr, "%s not found", name);
        Dl_info di;
        CHECK(dladdr(f, &di) != 0 && di.dli_fname != nullptr, "dladdr(%s)", name);
        CHECK(strstr(di.dli_fname, "libhakmem.so") != nullptr, "%s resolves into %s, not libhakmem.so", name,
              di.dli_fname);
    }
}

const size_t kSize = 1000;   // class of 1024 bytes

// One allocation and its release, in one of the forms.
struct Form {
    const char *name;
    size_t align;   // 0: not an aligned form
    void *(*alloc)(size_t n, size_t al);
    void (*release)(void *p, size_t n, size_t al);
};

const Form kForms[] = {
    { "new / delete", 0, [](size_t n, size_t) { return ::operator new(n); },
      [](void *p, size_t, size_t) { ::operator delete(p); } },
    { "new[] / delete[]", 0, [](size_t n, size_t) { return ::operator new[](n); },
      [](void *p, size_t, size_t) { ::operator delete[](p); } },
    { "new / sized delete", 0, [](size_t n, size_t) { return ::operator new(n); },
      [](void *p, size_t n, size_t) { ::operator delete(p, n); } },
    { "new[] / sized delete[]", 0, [](size_t n, size_t) { return ::operator new[](n); },
      [](void *p, size_t n, size_t) { ::operator delete[](p, n); } },
    { "nothrow new / nothrow delete", 0, [](size_t n, size_t) { return ::operator new(n, std::nothrow); },
      [](void *p, size_t, size_t) { ::operator delete(p, std::nothrow); } },
    { "nothrow new[] / nothrow delete[]", 0,
      [](size_t n, size_t) { return ::operator new[](n, std::nothrow); },
      [](void *p, size_t, size_t) { ::operator delete[](p, std::nothrow); } },
    { "aligned new / aligned delete", 64,
      [](size_t n, size_t al) { return ::operator new(n, std::align_val_t(al)); },
      [](void *p, size_t, size_t al) { ::operator delete(p, std::align_val_t(al)); } },
    { "aligned new[] / aligned delete[]", 256,
      [](size_t n, size_t al) { return ::operator new[](n, std::align_val_t(al)); },
      [](void *p, size_t, size_t al) { ::operator delete[](p, std::align_val_t(al)); } },
    { "aligned new / aligned sized delete", 512,
      [](size_t n, size_t al) { return ::operator new(n, std::align_val_t(al)); },
      [](void *p, size_t n, size_t al) { ::operator delete(p, n, std::align_val_t(al)); } },
    { "aligned new[] / aligned sized delete[]", 128,
      [](size_t n, size_t al) { return ::operator new[](n, std::align_val_t(al)); },
      [](void *p, size_t n, size_t al) { ::operator delete[](p, n, std::align_val_t(al)); } },
    { "aligned nothrow new / aligned nothrow delete", 4096,
      [](size_t n, size_t al) { return ::operator new(n, std::align_val_t(al), std::nothrow); },
      [](void *p, size_t, size_t al) { ::operator delete(p, std::align_val_t(al), std::nothrow); } },
    { "aligned nothrow new[] / aligned nothrow delete[]", 32,
      [](size_t n, size_t al) { return ::operator new[](n, std::align_val_t(al), std::nothrow); },
      [](void *p, size_t, size_t al) { ::operator delete[](p, std::align_val_t(al), std::nothrow); } },
};
const size_t kForms_n = sizeof(kForms) / sizeof(kForms[0]);

void test_forms()
{
    for (const Form &f : kForms) {
        struct mallinfo2 m0 = mallinfo2();
        void *p = f.alloc(t_size(kSize), f.align);
        struct mallinfo2 m1 = mallinfo2();
        CHECK(p != nullptr && owned(p) == 1, "%s: %p is not hakmem's block", f.name, p);
        CHECK(IS_ALIGNED(p, f.align ? f.align : 16), "%s: %p not aligned to %zu", f.name, p, f.align);
        size_t u = malloc_usable_size(p);
        CHECK(u >= kSize, "%s: usable size %zu", f.name, u);
        CHECK(m1.uordblks - m0.uordblks == u, "%s: uordblks %zu -> %zu, the block has %zu bytes", f.name,
              m0.uordblks, m1.uordblks, u);
        memset(p, 0x5a, kSize);
        f.release(t_hide(p), kSize, f.align);
        struct mallinfo2 m2 = mallinfo2();
        CHECK(m2.uordblks == m0.uordblks, "%s: uordblks %zu after the delete, %zu before the new", f.name,
              m2.uordblks, m0.uordblks);
    }
    // alignments above a page: large blocks
    for (size_t al = 8192; al <= ((size_t)1 << 20); al *= 4) {
        struct mallinfo2 m0 = mallinfo2();
        void *p = ::operator new(t_size(300), std::align_val_t(al));
        struct mallinfo2 m1 = mallinfo2();
        CHECK(owned(p) == 1 && IS_ALIGNED(p, al), "operator new(300, align %zu) = %p", al, p);
        // up to 128 KiB of alignment: a run of SuperSlab units; above, a mapping
        bool run = al <= ((size_t)128 << 10);
        size_t u = malloc_usable_size(p);
        CHECK(m1.hblks == m0.hblks + (run ? 0 : 1), "operator new(300, align %zu): hblks %zu -> %zu", al, m0.hblks,
              m1.hblks);
        CHECK(m1.uordblks == m0.uordblks + (run ? u : 0), "operator new(300, align %zu): uordblks %zu -> %zu", al,
              m0.uordblks, m1.uordblks);
        memset(p, 1, 300);
        ::operator delete(t_hide(p), 300, std::align_val_t(al));
        struct mallinfo2 m2 = mallinfo2();
        CHECK(m2.hblks == m0.hblks && m2.uordblks == m0.uordblks,
              "aligned sized delete of a large block (align %zu): hblks %zu, uordblks %zu, before %zu, %zu", al,
              m2.hblks, m2.uordblks, m0.hblks, m0.uordblks);
    }
}

// HAKMEM_STATS=1: every form counted in its class
int child_stats()
{
    static struct hak_stats a, b;
    unsigned cls = 0;
    CHECK(stats_get(&a) == 0 && a.counting, "hak_stats_get: counting %d", a.counting);
    while (cls < a.n_classes && a.classes[cls].block_size < 1024) cls++;
    CHECK(cls < a.n_classes && a.classes[cls].block_size == 1024, "no class of 1024 bytes");
    for (const Form &f : kForms) {
        size_t n = t_size(kSize);
        if (f.align > 16) n = (n + f.align - 1) / f.align * f.align;   // still a class of 1024 bytes
        if (n > 1024) continue;
        f.release(t_hide(f.alloc(n, f.align)), n, f.align);
    }
    size_t counted = 0;
    for (const Form &f : kForms) counted += (f.align <= 16 || (kSize + f.align - 1) / f.align * f.align <= 1024);
    CHECK(stats_get(&b) == 0, "hak_stats_get");
    uint64_t allocs = b.classes[cls].allocs - a.classes[cls].allocs;
    uint64_t frees = b.classes[cls].frees - a.classes[cls].frees;
    CHECK(allocs == counted && frees == counted,
          "HAKMEM_STATS=1: %zu forms of new/delete of 1000 bytes, class 1024 counted %llu allocs, %llu frees",
          counted, (unsigned long long)allocs, (unsigned long long)frees);
    void *big = ::operator new(t_size(1 << 20), std::align_val_t(1 << 20));
    ::operator delete(t_hide(big), std::align_val_t(1 << 20));
    static struct hak_stats c;
    CHECK(stats_get(&c) == 0 && c.large_allocs == b.large_allocs + 1, "aligned new of 1 MiB: large_allocs %llu -> "
          "%llu", (unsigned long long)b.large_allocs, (unsigned long long)c.large_allocs);
    printf("child: %zu forms counted\n", counted);
    return 0;
}

// ---- failure ----------------------------------------------------------------

int handler_calls;
int handler_limit;   // calls after which the handler removes itself
void counting_handler()
{
    if (++handler_calls >= handler_limit) std::set_new_handler(nullptr);
}
void throwing_handler()
{
    if (++handler_calls >= handler_limit) throw std::bad_alloc();
}

const size_t kImpossible = SIZE_MAX / 4;

template <typename F> void expect_throw(const char *what, F alloc, int want_calls)
{
    handler_calls = 0;
    bool threw = false;
    try {
        void *p = alloc();
        ::operator delete(t_hide(p));
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw, "%s did not throw std::bad_alloc", what);
    CHECK(handler_calls == want_calls, "%s: the new_handler was called %d times, want %d", what, handler_calls,
          want_calls);
}

template <typename F> void expect_null(const char *what, F alloc, int want_calls)
{
    handler_calls = 0;
    void *p = alloc();
    CHECK(p == nullptr, "%s returned %p, not nullptr", what, p);
    CHECK(handler_calls == want_calls, "%s: the new_handler was called %d times, want %d", what, handler_calls,
          want_calls);
}

void test_failure()
{
    size_t big = t_size(kImpossible);
    std::set_new_handler(nullptr);
    expect_throw("new(SIZE_MAX/4), no handler", [=] { return ::operator new(big); }, 0);
    expect_null("new(SIZE_MAX/4, nothrow), no handler", [=] { return ::operator new(big, std::nothrow); }, 0);

    handler_limit = 3;
    std::set_new_handler(counting_handler);
    expect_throw("new(SIZE_MAX/4)", [=] { return ::operator new(big); }, 3);
    std::set_new_handler(counting_handler);
    expect_throw("new[](SIZE_MAX/4)", [=] { return ::operator new[](big); }, 3);
    std::set_new_handler(counting_handler);
    expect_throw("new(SIZE_MAX/4, align 64)", [=] { return ::operator new(big, std::align_val_t(64)); }, 3);
    std::set_new_handler(counting_handler);
    expect_throw("new[](SIZE_MAX/4, align 8192)", [=] { return ::operator new[](big, std::align_val_t(8192)); }, 3);
    std::set_new_handler(counting_handler);
    expect_null("new(SIZE_MAX/4, nothrow), handler removing itself",
                [=] { return ::operator new(big, std::nothrow); }, 3);

    handler_limit = 2;
    std::set_new_handler(throwing_handler);
    expect_null("new(SIZE_MAX/4, nothrow), handler throwing", [=] { return ::operator new(big, std::nothrow); }, 2);
    expect_null("new[](SIZE_MAX/4, nothrow), handler throwing",
                [=] { return ::operator new[](big, std::nothrow); }, 2);
    expect_null("new(SIZE_MAX/4, align 64, nothrow), handler throwing",
                [=] { return ::operator new(big, std::align_val_t(64), std::nothrow); }, 2);
    expect_null("new[](SIZE_MAX/4, align 64, nothrow), handler throwing",
                [=] { return ::operator new[](big, std::align_val_t(64), std::nothrow); }, 2);
    expect_throw("new(SIZE_MAX/4), handler throwing", [=] { return ::operator new(big); }, 2);
    std::set_new_handler(nullptr);

    expect_throw("new(100, align 48)", [] { return ::operator new(t_size(100), std::align_val_t(48)); }, 0);
    expect_null("new(100, align 48, nothrow)",
                [] { return ::operator new(t_size(100), std::align_val_t(48), std::nothrow); }, 0);
}

// A handler that makes room: new fails under RLIMIT_AS, the handler lifts
// the limit, and the retry succeeds.
rlimit saved_limit;
void lifting_handler()
{
    handler_calls++;
    CHECK(setrlimit(RLIMIT_AS, &saved_limit) == 0, "setrlimit back");
}

void room_body(void *)
{
    size_t vm, rss;
    t_statm(&vm, &rss);
    CHECK(getrlimit(RLIMIT_AS, &saved_limit) == 0, "getrlimit");
    rlimit tight = saved_limit;
    tight.rlim_cur = vm + ((size_t)64 << 20);
    CHECK(setrlimit(RLIMIT_AS, &tight) == 0, "setrlimit");
    handler_calls = 0;
    std::set_new_handler(lifting_handler);
    size_t n = t_size((size_t)512 << 20);
    char *p = static_cast<char *>(::operator new(n));
    CHECK(handler_calls == 1, "new(512 MiB) under a 64 MiB margin: handler called %d times, want 1", handler_calls);
    p[0] = 1;
    p[n - 1] = 2;
    ::operator delete(p, n);
}

void test_handler_makes_room()
{
    t_child r = t_run_child(room_body, nullptr);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "handler making room: status %d\n%s", r.status,
          r.err);
}

// ---- sized delete with a wrong size -----------------------------------------

void wrong_body(void *arg)
{
    int kind = *static_cast<int *>(arg);
    if (kind == 0) ::operator delete(::operator new(t_size(1000)), t_size(24));
    if (kind == 1) ::operator delete[](::operator new[](t_size(3000)), t_size(6000));
    if (kind == 2)
        ::operator delete(::operator new(t_size(200), std::align_val_t(64)), t_size(5000), std::align_val_t(64));
}

void test_wrong_size()
{
    static const char *const lines[] = {
        "hakmem: operator delete(): size 24 does not match block 0x",
        "hakmem: operator delete[](): size 6000 does not match block 0x",
        "hakmem: operator delete(): size 5000 does not match block 0x",
    };
    for (int k = 0; k < 3; k++) {
        t_child r = t_run_child(wrong_body, &k);
        if (t_debug) {
            CHECK(WIFSIGNALED(r.status) && WTERMSIG(r.status) == SIGABRT, "debug, wrong size %d: status %d\n%s", k,
                  r.status, r.err);
            CHECK(strncmp(r.err, lines[k], strlen(lines[k])) == 0 && strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
                  "debug, wrong size %d: stderr is not the one line \"%s...\":\n%s", k, lines[k], r.err);
        } else {
            CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 && r.err[0] == '\0',
                  "release, wrong size %d: status %d\n%s", k, r.status, r.err);
        }
    }
}

}  // namespace

int main(int argc, char **argv)
{
    test_init("test_new_delete");
    stats_get = (stats_get_fn)dlsym(RTLD_DEFAULT, "hak_stats_get");
    CHECK(stats_get != nullptr, "hak_stats_get not found");
    if (argc > 1 && strcmp(argv[1], "stats") == 0) return child_stats();
    test_symbols();
    test_forms();
    t_child r = t_rerun("stats", "HAKMEM_STATS=1");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "HAKMEM_STATS=1 child: status %d\n%s", r.status, r.err);
    test_failure();
    test_handler_makes_room();
    test_wrong_size();
    printf("test_new_delete: ok\n");
    return 0;
}
