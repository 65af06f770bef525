/* test_deepbind: blocks that glibc's malloc really gave out go back to
 * glibc, whole (issue 13, item 1).
 *
 * A library opened with dlopen(..., RTLD_DEEPBIND) binds malloc to glibc's,
 * not hakmem's. Its blocks (from 1 byte to 1 MiB, 2,000 of them) are freed
 * by the program, which hakmem hands to glibc's free; realloc'ed by the
 * program, which moves them into hakmem blocks with their bytes; their
 * malloc_usable_size covers what was asked; and a block the library
 * realloc'ed itself is still glibc's and is freed by the program. No abort,
 * no fault, and every byte where it should be.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <libgen.h>
#include <limits.h>
#include <malloc.h>

typedef void *(*malloc_fn)(size_t);
typedef void *(*realloc_fn)(void *, size_t);

int main(void)
{
    test_init("test_deepbind");
    char exe[PATH_MAX], lib[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    CHECK(n > 0, "readlink /proc/self/exe");
    exe[n] = '\0';
    snprintf(lib, sizeof lib, "%s/libhak_deepbind.so", dirname(exe));
    void *h = dlopen(lib, RTLD_NOW | RTLD_DEEPBIND);
    CHECK(h != NULL, "dlopen %s: %s", lib, dlerror());
    malloc_fn db_malloc = (malloc_fn)dlsym(h, "db_malloc");
    realloc_fn db_realloc = (realloc_fn)dlsym(h, "db_realloc");
    CHECK(db_malloc && db_realloc, "dlsym");

    enum { N = 2000 };
    static void *blocks[N];
    static size_t sizes[N];
    for (int i = 0; i < N; i++) {
        sizes[i] = i % 100 == 0 ? ((size_t)1 << 20) : 1 + (size_t)(i * 37) % 3000;
        blocks[i] = db_malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "the library's malloc(%zu) failed", sizes[i]);
        CHECK(owned_raw(blocks[i]) == 0, "the library's block %p is hakmem's: RTLD_DEEPBIND did not bind to glibc",
              blocks[i]);
        CHECK(malloc_usable_size(blocks[i]) >= sizes[i], "malloc_usable_size(%p) = %zu < %zu", blocks[i],
              malloc_usable_size(blocks[i]), sizes[i]);
        fill_bytes(blocks[i], 0, sizes[i], (uint64_t)i);
    }
    /* every other one realloc'ed by the program: into hakmem, bytes kept */
    for (int i = 0; i < N; i += 2) {
        size_t grow = sizes[i] * 2 + 100;
        void *q = realloc(blocks[i], t_size(grow));
        CHECK(q != NULL && owned(q), "realloc of a glibc block: %p", q);
        CHECK(check_bytes(q, sizes[i], (uint64_t)i) == sizes[i], "realloc of glibc block %d lost its bytes", i);
        blocks[i] = q;
    }
    /* the library grows some of its own; still glibc's */
    for (int i = 1; i < N; i += 10) {
        void *q = db_realloc(blocks[i], sizes[i] + 5000);
        CHECK(q != NULL && owned_raw(q) == 0, "the library's realloc");
        CHECK(check_bytes(q, sizes[i], (uint64_t)i) == sizes[i], "the library's realloc lost bytes");
        blocks[i] = q;
    }
    for (int i = 0; i < N; i++) {
        if (i % 2) CHECK(check_bytes(blocks[i], sizes[i], (uint64_t)i) == sizes[i], "glibc block %d damaged", i);
        free(blocks[i]);
    }
    printf("test_deepbind: ok (%d blocks of glibc's freed or realloc'ed by the program)\n", N);
    return 0;
}
