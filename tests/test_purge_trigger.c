/* test_purge_trigger: the free pages inside a heap's partly used slabs go
 * back to the OS on a trigger that follows the heap's work, not the clock
 * (issue 15): the same program gives back the same pages however fast it
 * runs.
 *
 * A child grows 24 MiB of blocks of 16-512 B (sizes and order from a fixed
 * seed), frees 90% of them at random, then allocates 24 MiB of blocks of
 * 520-4096 B, which need slabs of their own. Under
 * HAKMEM_FREE_POLICY=lazy nothing else goes back within the test (free
 * units wait 10 s), so hak_stats' bytes_purged counts only the pages given
 * back inside slabs. It runs three ways:
 * - as fast as it can;
 * - slowly: a 300 ms pause before the regrow and 1 ms every 500 mallocs
 *   of it;
 * - with HAKMEM_STATS=1 (every call through the counting paths).
 * The three must give back the same number of bytes, and at least 4 MiB of
 * them (before: the pass ran at most once per purge delay, so under the
 * lazy policy none ran after the first, and none was given back).
 */
#define _GNU_SOURCE
#include "hakmem.h"
#include "testutil.h"

#include <sys/mman.h>

#define MB ((size_t)1 << 20)
#define TARGET (24 * MB)
#define MAX_BLOCKS (TARGET / 16 + 1)

typedef int (*stats_get_fn)(struct hak_stats *);

/* Blocks of min..min+span-1 bytes (sizes from rng), each filled with fill,
 * into out[] until they add up to TARGET bytes or cap blocks; with pause,
 * 1 ms every 500 blocks. Returns how many. */
static size_t grow(void **out, size_t cap, size_t min, uint64_t span, int fill, rng_t *rng, int pause)
{
    size_t n = 0, bytes = 0;
    while (bytes < TARGET && n < cap) {
        size_t size = min + (size_t)rng_below(rng, span);
        out[n] = malloc(size);
        CHECK(out[n] != NULL, "malloc(%zu)", size);
        memset(out[n], fill, size);
        bytes += size;
        n++;
        if (pause && n % 500 == 0) usleep(1000);
    }
    return n;
}

static int child_work(const char *mode)
{
    stats_get_fn stats_get = (stats_get_fn)dlsym(RTLD_DEFAULT, "hak_stats_get");
    CHECK(stats_get != NULL, "hak_stats_get not found");
    int slow = strcmp(mode, "slow") == 0;
    /* the pointer table comes from the OS, so the allocator sees only the
     * workload's blocks */
    void **blocks = mmap(NULL, MAX_BLOCKS * sizeof(void *), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(blocks != MAP_FAILED, "mmap of the pointer table");
    rng_t rng;
    rng_seed(&rng, 15);
    size_t n = grow(blocks, MAX_BLOCKS, 16, 497, 0x5a, &rng, 0);
    size_t live = n;
    for (size_t i = 0; i < n; i++) {
        if (rng_below(&rng, 10) != 0) {
            free(blocks[i]);
            blocks[i] = NULL;
            live--;
        }
    }
    if (slow) usleep(300 * 1000);
    struct hak_stats before;
    CHECK(stats_get(&before) == 0, "hak_stats_get");
    size_t m = grow(blocks + n, MAX_BLOCKS - n, 520, 3577, 0xa5, &rng, slow);
    struct hak_stats after;
    CHECK(stats_get(&after) == 0, "hak_stats_get");
    fprintf(stderr, "purged %llu\n", (unsigned long long)(after.bytes_purged - before.bytes_purged));
    for (size_t i = 0; i < n + m; i++) free(blocks[i]);
    CHECK(live > 0, "no block left after the free");
    return 0;
}

static unsigned long long run(const char *mode, const char *env)
{
    t_child r = t_rerun(mode, env);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child %s (%s): status %d\n%s",
          mode, env, r.status, r.err);
    unsigned long long purged;
    const char *line = strstr(r.err, "purged ");
    CHECK(line && sscanf(line, "purged %llu", &purged) == 1, "child %s: no figure in\n%s", mode, r.err);
    return purged;
}

int main(int argc, char **argv)
{
    test_init("test_purge_trigger");
    if (argc > 1) return child_work(argv[1]);
    CHECK(setenv("HAKMEM_FREE_POLICY", "lazy", 1) == 0, "setenv");   /* the children's */
    unsigned long long fast = run("fast", NULL);
    unsigned long long slow = run("slow", NULL);
    unsigned long long stats = run("fast", "HAKMEM_STATS=1");
    printf("test_purge_trigger: given back during the regrow: %llu KiB fast, %llu KiB slow, %llu KiB with statistics\n",
           fast >> 10, slow >> 10, stats >> 10);
    CHECK(fast >= 4 * MB, "only %llu KiB of free pages inside slabs given back", fast >> 10);
    CHECK(slow == fast, "a slower run gave back %llu KiB, not %llu KiB", slow >> 10, fast >> 10);
    CHECK(stats == fast, "with statistics %llu KiB were given back, not %llu KiB", stats >> 10, fast >> 10);
    printf("test_purge_trigger: ok\n");
    return 0;
}
