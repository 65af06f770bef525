/* test_large_reuse: freed large mappings are reused whole, not given back
 * and faulted in again (issue 14, large blocks).
 *
 * Under HAKMEM_FREE_POLICY=lazy (nothing goes back for 10 s), one thread,
 * with 100 MiB in use:
 * - a 20 MiB block, freed, then a 6 MiB block: the same mapping (the same
 *   address), its surplus chunks still cached, nothing given back (before:
 *   the surplus was unmapped, 14 MiB purged);
 * - a 12 MiB calloc then takes that surplus (an address inside the old
 *   mapping) and reads as zero, though the 20 MiB block was written whole;
 * - both freed, a 30 MiB block: the largest cached mapping grows to hold
 *   it, nothing given back, and it is zero where calloc asks;
 * - realloc of a large block up and down keeps its bytes (the growth code
 *   is shared with the cache's).
 */
#define _GNU_SOURCE
#include "hakmem.h"
#include "testutil.h"

typedef int (*stats_get_fn)(struct hak_stats *);
static stats_get_fn stats_get;

#define MB ((size_t)1 << 20)

static struct hak_stats now(void)
{
    struct hak_stats st;
    CHECK(stats_get(&st) == 0, "hak_stats_get");
    return st;
}

static void check_zero(const unsigned char *p, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i += 512)
        CHECK(p[i] == 0, "%s: byte %zu is %#x, not 0", what, i, p[i]);
    CHECK(p[n - 1] == 0, "%s: last byte is %#x, not 0", what, p[n - 1]);
}

static int child_reuse(void)
{
    /* live memory, never touched, so that what is freed stays below half of
     * what is mapped (above it, a free gives everything free back) */
    void *ballast = malloc(t_size(100 * MB));
    CHECK(ballast != NULL, "malloc(100 MiB)");
    struct hak_stats st0 = now();
    unsigned char *big = malloc(t_size(20 * MB));
    CHECK(big != NULL, "malloc(20 MiB)");
    memset(big, 0xaa, 20 * MB);
    free(big);
    struct hak_stats st1 = now();
    CHECK(st1.large_cached_bytes >= 20 * MB, "20 MiB freed: %llu bytes cached",
          (unsigned long long)st1.large_cached_bytes);

    unsigned char *a = malloc(t_size(6 * MB));
    struct hak_stats st2 = now();
    CHECK(a == big, "malloc(6 MiB) = %p, not the cached 20 MiB mapping's block %p", (void *)a, (void *)big);
    CHECK(st2.bytes_purged == st0.bytes_purged, "taking 6 MiB of a cached 20 MiB mapping gave back %llu bytes",
          (unsigned long long)(st2.bytes_purged - st0.bytes_purged));
    CHECK(st2.large_cached_bytes + 8 * MB == st1.large_cached_bytes,
          "cached bytes %llu -> %llu for a block of 6 MiB (8 MiB of chunks)",
          (unsigned long long)st1.large_cached_bytes, (unsigned long long)st2.large_cached_bytes);
    CHECK(a[0] == 0xaa && a[6 * MB - 1] == 0xaa, "the reused mapping's bytes changed");

    unsigned char *b = calloc(1, t_size(12 * MB));
    struct hak_stats st3 = now();
    CHECK(b != NULL && b > big && b < big + 20 * MB, "calloc(12 MiB) = %p, not inside the old mapping at %p",
          (void *)b, (void *)big);
    CHECK(st3.bytes_purged == st0.bytes_purged && st3.large_cached_bytes + 14 * MB == st2.large_cached_bytes,
          "the surplus was not reused: purged +%llu, cached %llu -> %llu",
          (unsigned long long)(st3.bytes_purged - st0.bytes_purged), (unsigned long long)st2.large_cached_bytes,
          (unsigned long long)st3.large_cached_bytes);
    check_zero(b, 12 * MB, "calloc(12 MiB) from the cached surplus");
    memset(b, 0x55, 12 * MB);
    free(a);
    free(b);

    struct hak_stats st4 = now();
    unsigned char *c = calloc(1, t_size(30 * MB));
    struct hak_stats st5 = now();
    CHECK(c != NULL, "calloc(30 MiB)");
    CHECK(st5.bytes_purged == st0.bytes_purged, "a 30 MiB block gave back %llu bytes",
          (unsigned long long)(st5.bytes_purged - st0.bytes_purged));
    CHECK(st5.large_cached_bytes + 14 * MB == st4.large_cached_bytes,
          "30 MiB from a cache of %llu bytes left %llu: the 14 MiB mapping did not grow into it",
          (unsigned long long)st4.large_cached_bytes, (unsigned long long)st5.large_cached_bytes);
    check_zero(c, 30 * MB, "calloc(30 MiB) grown from a cached mapping");
    free(c);

    /* realloc up (in place or moved) and down keeps the bytes */
    unsigned char *r = malloc(t_size(3 * MB));
    for (size_t i = 0; i < 3 * MB; i += 4096) r[i] = (unsigned char)(i >> 12);
    unsigned char *keep = malloc(t_size(3 * MB));   /* in the way of growth in place, perhaps */
    r = realloc(r, t_size(40 * MB));
    CHECK(r != NULL, "realloc to 40 MiB");
    for (size_t i = 0; i < 3 * MB; i += 4096)
        CHECK(r[i] == (unsigned char)(i >> 12), "realloc to 40 MiB: byte %zu changed", i);
    r = realloc(r, t_size(5 * MB));
    for (size_t i = 0; i < 3 * MB; i += 4096)
        CHECK(r[i] == (unsigned char)(i >> 12), "realloc down to 5 MiB: byte %zu changed", i);
    free(r);
    free(keep);
    free(ballast);
    return 0;
}

int main(int argc, char **argv)
{
    test_init("test_large_reuse");
    stats_get = (stats_get_fn)dlsym(RTLD_DEFAULT, "hak_stats_get");
    CHECK(stats_get != NULL, "hak_stats_get not found");
    if (argc > 1 && strcmp(argv[1], "reuse") == 0) return child_reuse();
    t_child r = t_rerun("reuse", "HAKMEM_FREE_POLICY=lazy");
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child: status %d\n%s", r.status, r.err);
    printf("test_large_reuse: ok\n");
    return 0;
}
