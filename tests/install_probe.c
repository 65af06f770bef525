/* install_probe.c: the program tests/test_install.sh builds against an
 * installed hakmem, in four ways:
 *
 *   -DPROBE_LINKED   linked with -lhakmem: calls the hak_ functions directly
 *                    (add -DPROBE_STATIC when linked with libhakmem.a)
 *   -DPROBE_PREFIX   linked with -lhakmem-prefix: hak_ functions from hakmem,
 *                    malloc from glibc
 *   (neither)        plain; finds hak_owns with dlsym, as it is there only
 *                    when hakmem is preloaded
 *
 * It allocates, checks that hakmem owns the blocks (or, with the prefix
 * library, that it owns the hak_ blocks and not malloc's), and prints
 *   owner: PATH   the file the code of hak_owns is mapped from
 *                 (/proc/self/maps): which libhakmem is really in use
 *   live: N       hak_live_blocks(): -1 in the release build
 *   ok
 * Exit status 0 when all is well, 3 when hak_owns is not there at all (the
 * plain program run without hakmem), 1 on any other failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hakmem.h>

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "install_probe: check failed: %s (line %d)\n",  \
                    #cond, __LINE__);                                       \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

typedef int (*owns_fn)(const void *);
typedef long long (*live_fn)(void);

/* the path of the mapping that holds address a, or "?" */
static void print_owner(const void *a)
{
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    char line[4096];
    const char *found = "?";
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        int off = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2 || off == 0)
            continue;
        if ((uintptr_t)a < lo || (uintptr_t)a >= hi) continue;
        line[strcspn(line, "\n")] = '\0';
        found = line + off;
        break;
    }
    printf("owner: %s\n", found);
    fclose(f);
}

int main(void)
{
#if defined(PROBE_LINKED) || defined(PROBE_PREFIX)
    owns_fn owns = hak_owns;
    live_fn live = hak_live_blocks;
#else
    owns_fn owns = (owns_fn)dlsym(RTLD_DEFAULT, "hak_owns");
    live_fn live = (live_fn)dlsym(RTLD_DEFAULT, "hak_live_blocks");
    if (owns == NULL) {
        printf("no hak_owns: hakmem is not loaded\n");
        return 3;
    }
    CHECK(live != NULL);
#endif

    static const size_t sizes[] = { 0, 1, 16, 100, 1000, 4096, 30000, 200000 };
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    void *p[N];
#ifdef PROBE_PREFIX
    for (int i = 0; i < N; i++) {
        p[i] = hak_malloc(sizes[i]);
        CHECK(p[i] != NULL);
        CHECK(owns(p[i]));
        memset(p[i], 0x5a, sizes[i]);
    }
    /* malloc stays glibc's */
    void *q = malloc(100);
    CHECK(q != NULL);
    CHECK(!owns(q));
    free(q);
    for (int i = 0; i < N; i++) hak_free(p[i]);
#else
    for (int i = 0; i < N; i++) {
        p[i] = malloc(sizes[i]);
        CHECK(p[i] != NULL);
        CHECK(owns(p[i]));
        memset(p[i], 0x5a, sizes[i]);
    }
    char *c = calloc(1000, 3);
    CHECK(c != NULL && owns(c));
    for (int i = 0; i < 3000; i++) CHECK(c[i] == 0);
    c = realloc(c, 50000);
    CHECK(c != NULL && owns(c));
    free(c);
    for (int i = 0; i < N; i++) free(p[i]);
#endif
#ifdef PROBE_STATIC
    print_owner((const void *)owns);
#else
    /* where the dynamic linker really resolved it (in a position-dependent
     * program, &hak_owns could be a PLT entry in the program itself) */
    print_owner(dlsym(RTLD_DEFAULT, "hak_owns"));
#endif
    printf("live: %lld\n", live());
    printf("ok\n");
    return 0;
}
