/* test_interpose: a program that replaces malloc, free, calloc and realloc
 * keeps them with hakmem loaded, and the functions hakmem builds on them
 * reach the program's own (issue 13, item 5).
 *
 * This program defines the four functions itself (a bump allocator over a
 * static arena, counting its calls), so it does not call test_init: malloc
 * is not hakmem's here on purpose. It checks that hakmem is loaded all the
 * same (linked or preloaded), that its own malloc serves malloc, and that
 * reallocarray, which hakmem defines, calls the program's realloc and keeps
 * the contents (hakmem's used to take the block itself and abort with
 * "realloc(): invalid pointer"), with overflow still refused with ENOMEM.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ARENA_BYTES ((size_t)32 << 20)

static _Alignas(16) char arena[ARENA_BYTES];
static size_t top;
static atomic_flag busy = ATOMIC_FLAG_INIT;
static volatile long mallocs, reallocs;   /* volatile: glibc declares reallocarray a leaf, which it is not here */

typedef struct {
    size_t size;
    size_t pad;
} hdr;

static int ours(const void *p)
{
    return (const char *)p >= arena && (const char *)p < arena + ARENA_BYTES;
}

void *malloc(size_t n)
{
    n = (n + 15) & ~(size_t)15;
    while (atomic_flag_test_and_set(&busy)) {
    }
    void *p = NULL;
    if (n <= ARENA_BYTES && top + sizeof(hdr) + n <= ARENA_BYTES) {
        hdr *h = (hdr *)(arena + top);
        h->size = n;
        p = h + 1;
        top += sizeof(hdr) + n;
        mallocs++;
    }
    atomic_flag_clear(&busy);
    if (p == NULL) errno = ENOMEM;
    return p;
}

void free(void *p)
{
    (void)p;   /* a bump allocator keeps everything */
}

void *calloc(size_t c, size_t n)
{
    size_t bytes;
    if (__builtin_mul_overflow(c, n, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

void *realloc(void *p, size_t n)
{
    reallocs++;
    void *q = malloc(n);
    if (q && p) {
        size_t old = ((hdr *)p - 1)->size;
        memcpy(q, p, old < n ? old : n);
    }
    return q;
}

static void check(int ok, const char *what)
{
    if (ok) return;
    char buf[256];
    int n = snprintf(buf, sizeof buf, "test_interpose: check failed: %s\n", what);
    ssize_t w = write(2, buf, (size_t)n);
    (void)w;
    _exit(1);
}

int main(void)
{
    check(dlsym(RTLD_DEFAULT, "hak_malloc") != NULL, "hakmem is not loaded");
    char *p = malloc(10);
    check(p != NULL && ours(p), "malloc is not the program's own");
    memcpy(p, "interpose", 10);
    long before = reallocs;
    char *q = reallocarray(p, 10, 100);
    check(reallocs == before + 1, "reallocarray did not call the program's realloc");
    check(q != NULL && ours(q), "reallocarray returned a block that is not the program's");
    check(memcmp(q, "interpose", 10) == 0, "reallocarray lost the contents");
    char *r = reallocarray(NULL, 4, 4);
    check(reallocs == before + 2 && r != NULL && ours(r), "reallocarray(NULL, ...) did not reach the program's realloc");
    size_t huge = SIZE_MAX;
    __asm__ volatile("" : "+r"(huge));   /* no compile-time size warning */
    errno = 0;
    check(reallocarray(q, huge, 2) == NULL && errno == ENOMEM, "an overflowing reallocarray did not fail with ENOMEM");
    check(reallocs == before + 2, "an overflowing reallocarray called realloc");
    printf("test_interpose: ok (%ld mallocs by the program's own malloc)\n", mallocs);
    return 0;
}
