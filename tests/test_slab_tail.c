/* test_slab_tail: pages a unit's earlier class left resident, which the
 * slab that took the unit over never carved, go back to the OS when its
 * thread exits (issue 15: thread churn held 26-35 MiB for 5 MiB of blocks).
 *
 * A thread writes 2 MiB of 64-byte blocks (16 slabs, every page touched)
 * and frees them all: the empty slabs become its heap's spares and dirty
 * units of the pool, their pages still resident. Then it mallocs one block
 * in each of 16 classes of 288..1024 B: each class takes one of those units
 * and carves a page or a few of it. The rest of each unit (its "tail") is
 * resident but holds no block. The thread checks that (at least 128 such
 * pages in all), keeps the blocks and exits; after the join every tail page
 * must be gone from the RSS (mincore), and the blocks must still hold their
 * bytes. Before the change the tails stayed resident as long as the slabs
 * were in use.
 *
 * Under HAKMEM_FREE_POLICY=lazy (a child run), so that the pool's passes
 * give back no dirty unit during the test.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <pthread.h>
#include <sys/mman.h>

#define UNIT ((uintptr_t)128 << 10)   /* a slab's unit (DESIGN.md) */
#define PAGE 4096u
#define SMALL 64
#define SMALL_COUNT ((2u << 20) / SMALL)
#define CLASSES 16
/* a slab's blocks start at most this far into its unit: the SuperSlab's
 * header in unit 0, and the first carve (16 blocks in the secure build) */
#define HEAD_PAGES 10

static void *blocks[CLASSES];
static size_t sizes[CLASSES];

/* Resident pages of the tail of the unit p lies in. */
static size_t tail_resident(const void *p)
{
    uintptr_t unit = (uintptr_t)p & ~(UNIT - 1);
    unsigned char vec[UNIT / PAGE];
    size_t n = UNIT / PAGE - HEAD_PAGES;
    CHECK(mincore((void *)(unit + HEAD_PAGES * PAGE), n * PAGE, vec) == 0, "mincore: errno %d", errno);
    size_t r = 0;
    for (size_t i = 0; i < n; i++) r += vec[i] & 1;
    return r;
}

static size_t tails_resident(void)
{
    size_t r = 0;
    for (int i = 0; i < CLASSES; i++) r += tail_resident(blocks[i]);
    return r;
}

static void *worker(void *arg)
{
    size_t *before = arg;
    void **small = malloc(SMALL_COUNT * sizeof(void *));
    CHECK(small != NULL, "malloc of the table");
    for (unsigned i = 0; i < SMALL_COUNT; i++) {
        small[i] = malloc(SMALL);
        CHECK(small[i] != NULL, "malloc(%d)", SMALL);
        memset(small[i], 0x5a, SMALL);
    }
    for (unsigned i = 0; i < SMALL_COUNT; i++) free(small[i]);
    free(small);
    /* classes 288, 320, ... 512, 576, 640, ... 1024 */
    for (int i = 0; i < CLASSES; i++) {
        sizes[i] = i < 8 ? 288 + 32 * (size_t)i : 576 + 64 * (size_t)(i - 8);
        blocks[i] = malloc(sizes[i]);
        CHECK(blocks[i] != NULL, "malloc(%zu)", sizes[i]);
        memset(blocks[i], i + 1, sizes[i]);
    }
    *before = tails_resident();
    return NULL;
}

static int child_work(void)
{
    size_t before = 0;
    pthread_t th;
    CHECK(pthread_create(&th, NULL, worker, &before) == 0, "pthread_create");
    CHECK(pthread_join(th, NULL) == 0, "pthread_join");
    size_t after = tails_resident();
    printf("test_slab_tail: resident tail pages %zu while the thread ran, %zu after its exit\n", before, after);
    CHECK(before >= 128, "only %zu tail pages resident: the units did not come from the 64-byte slabs", before);
    CHECK(after == 0, "%zu tail pages still resident after the thread's exit", after);
    for (int i = 0; i < CLASSES; i++) {
        const unsigned char *p = blocks[i];
        for (size_t j = 0; j < sizes[i]; j++)
            CHECK(p[j] == i + 1, "block %d byte %zu changed", i, j);
        free(blocks[i]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    test_init("test_slab_tail");
    if (argc > 1) return child_work();
    CHECK(setenv("HAKMEM_FREE_POLICY", "lazy", 1) == 0, "setenv");
    t_child r = t_rerun("child", NULL);
    fputs(r.err, stderr);
    CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0, "child: status %d", r.status);
    printf("test_slab_tail: ok\n");
    return 0;
}
