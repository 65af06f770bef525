/* unit_internals.c: unit tests of hakmem's internal pieces: size classes,
 * the owned-range map, pointer-to-owner lookup, slab alignment, spare slabs
 * moving between classes and taken back from an idle thread, the foreign
 * cache, a remote-free chain and its count, a full slab's NOTIFY mark kept
 * while only its owner frees into it, the OS layer's failure path,
 * pages given back from slabs in use, the fork child's reset of its
 * parent's heaps. Linked with the static library; sees src/. */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static void test_size_classes(void)
{
    void *warm = hak_malloc(1);       /* start-up fills the class table */
    hak_free(warm);
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        CHECK(_hak_class_size[c] % HAK_ALIGN == 0, "class %u size %u not 16-aligned", c, _hak_class_size[c]);
        if (c) CHECK(_hak_class_size[c] > _hak_class_size[c - 1], "classes not increasing at %u", c);
    }
    CHECK(_hak_class_size[HAK_CLASSES - 1] == HAK_SMALL_MAX, "last class %u", _hak_class_size[HAK_CLASSES - 1]);
    for (size_t n = 0; n <= HAK_SMALL_MAX; n++) {
        unsigned c = _hak_class_of(n);
        CHECK(c < HAK_CLASSES, "size %zu class %u", n, c);
        CHECK(_hak_class_size[c] >= n, "size %zu in class of %u", n, _hak_class_size[c]);
        CHECK(c == 0 || _hak_class_size[c - 1] < n, "size %zu not in the smallest class", n);
        CHECK(hak_class_fast(n) == c, "fast lookup of %zu: %u != %u", n, hak_class_fast(n), c);
        /* waste: at most 12.5% above 128 bytes, under 16 bytes below */
        if (n > 128) CHECK((_hak_class_size[c] - n) * 8 <= n, "size %zu wastes too much", n);
        else CHECK(_hak_class_size[c] - n <= 16, "size %zu wastes too much", n);
    }
}

static void test_pagemap(void)
{
    /* foreign memory: stack, static data, glibc-independent mmap, NULL, top */
    int local;
    static int global;
    void *m = mmap(NULL, 1 << 22, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED, "mmap");
    const void *foreign[] = { &local, &global, m, (char *)m + (1 << 21), NULL, (void *)~(uintptr_t)0,
                              (void *)((uintptr_t)1 << 47) };
    for (size_t i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
        CHECK(hak_pagemap_get(foreign[i]) == 0, "foreign pointer %p mapped", foreign[i]);
        CHECK(!hak_owns(foreign[i]), "foreign pointer %p owned", foreign[i]);
    }
    munmap(m, 1 << 22);

    /* every byte of a small block maps to its SuperSlab, whose base masks */
    char *p = hak_malloc(100);
    uintptr_t v = hak_pagemap_get(p);
    CHECK(v == ((uintptr_t)p & ~HAK_SS_MASK), "small block %p maps to %#lx", (void *)p, (unsigned long)v);
    for (size_t i = 0; i < 100; i++) CHECK(hak_pagemap_get(p + i) == v, "byte %zu", i);
    CHECK(hak_owns(p), "small block not owned");
    CHECK(!hak_owns(p + 16), "interior pointer owned");
    hak_slab *s = hak_slab_of((hak_superslab *)v, p);
    CHECK(s->block_size == 112, "block size %u", s->block_size);
    CHECK((char *)p >= hak_slab_start(s) && (size_t)((char *)p - hak_slab_start(s)) % s->block_size == 0, "block start");
    hak_free(p);

    /* a large block maps, tagged, over its whole mapping, and unmaps */
    size_t big = 5u << 20;
    char *q = hak_malloc(big);
    v = hak_pagemap_get(q);
    CHECK(v & HAK_MAP_LARGE, "large block untagged");
    hak_large *h = (hak_large *)(v & ~HAK_MAP_LARGE);
    CHECK((char *)h + h->offset == q, "large header");
    CHECK(hak_pagemap_get(q + big - 1) == v, "large block's last byte");
    CHECK(hak_owns(q) && !hak_owns(q + 4096), "large ownership");
    hak_free(q);
    CHECK(!hak_owns(q), "freed (cached) large block still owned");
    hak_trim();
    CHECK(hak_pagemap_get(q) == 0, "large block still mapped after hak_trim");
}

/* hak_owns never faults (issue 13, item 6): the map may still name a
 * SuperSlab or large mapping that another thread has just unmapped. Here a
 * 2 MiB chunk is put in the map, as each kind, with nothing mapped there. */
static void test_owns_unmapped(void)
{
    char *raw = mmap(NULL, 2 * HAK_SS_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(raw != MAP_FAILED, "mmap");
    char *chunk = (char *)hak_align_up((uintptr_t)raw, HAK_SS_SIZE);
    CHECK(munmap(raw, 2 * HAK_SS_SIZE) == 0, "munmap");
    CHECK(_hak_pagemap_set(chunk, HAK_SS_SIZE, (uintptr_t)chunk), "pagemap_set");
    CHECK(hak_owns(chunk + HAK_UNIT_SIZE + 64) == 0, "hak_owns of an unmapped SuperSlab's block");
    _hak_pagemap_clear(chunk, HAK_SS_SIZE);
    CHECK(_hak_pagemap_set(chunk, HAK_SS_SIZE, (uintptr_t)chunk | HAK_MAP_LARGE), "pagemap_set");
    CHECK(hak_owns(chunk + 64) == 0, "hak_owns of an unmapped large block");
    _hak_pagemap_clear(chunk, HAK_SS_SIZE);
    printf("hak_owns on unmapped memory: ok\n");
}

static void test_alignment(void)
{
    for (size_t a = 16; a <= (1u << 21); a <<= 1) {
        for (size_t n = 1; n <= 70000; n = n * 3 + 1) {
            void *p = hak_aligned_alloc(a, n);
            CHECK(p && (uintptr_t)p % a == 0, "aligned_alloc(%zu, %zu) = %p", a, n, p);
            CHECK(hak_usable_size(p) >= n, "usable");
            CHECK(hak_owns(p), "aligned block %p not owned", p);
            memset(p, 0x5a, n);
            hak_free(p);
        }
    }
}

static void test_os_failure(void)
{
    /* a large allocation whose mapping fails, and fails again when retried
     * after hakmem gave back what it held: NULL, ENOMEM, nothing broken */
    hak_trim();   /* nothing cached to fall back on */
    atomic_store(&_hak_os_fail_maps, 2);
    errno = 0;
    void *p = hak_malloc(1 << 20);
    CHECK(p == NULL && errno == ENOMEM, "failed mapping: %p errno %d", p, errno);
    CHECK(atomic_load(&_hak_os_fail_maps) == 0, "no retry after a failed mapping");
    /* one failure only: the retry succeeds */
    atomic_store(&_hak_os_fail_maps, 1);
    p = hak_malloc(1 << 20);
    CHECK(p != NULL, "a mapping that failed once was not retried");
    hak_free(p);
    p = hak_malloc(1 << 20);
    CHECK(p != NULL, "allocator unusable after a failed mapping");
    hak_free(p);

    /* slab memory that cannot be mapped: fill the pool first, then fail */
    enum { N = 20000 };
    void **v = hak_malloc(N * sizeof(void *));
    atomic_store(&_hak_os_fail_maps, 1 << 20);
    size_t got = 0;
    for (; got < N; got++) {
        v[got] = hak_malloc(16000);
        if (v[got] == NULL) break;
    }
    CHECK(got < N && errno == ENOMEM, "mid-size allocations never failed (%zu)", got);
    atomic_store(&_hak_os_fail_maps, 0);
    for (size_t i = 0; i < got; i++) hak_free(v[i]);
    hak_free(v);
    p = hak_malloc(16000);
    CHECK(p != NULL, "allocator unusable after failures");
    hak_free(p);
}

static hak_slab *slab_of(void *p)
{
    return hak_slab_of((hak_superslab *)hak_pagemap_get(p), p);
}

/* The spare slabs of heap, copied into out (NULL for an empty slot);
 * returns how many there are. */
static unsigned spares_of(hak_heap *heap, hak_slab *out[HAK_HEAP_SPARE])
{
    unsigned n = 0;
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++) {
        out[i] = atomic_load(&heap->spare[i]);
        n += out[i] != NULL;
    }
    return n;
}

static unsigned spare_count(hak_heap *heap)
{
    hak_slab *s[HAK_HEAP_SPARE];
    return spares_of(heap, s);
}

/* Allocates BIG_N blocks of 32 KiB (3 or 4 per 128 KiB slab, so 6 slabs or
 * more), checking each is a 32 KiB block; slabs gets their slabs. */
enum { BIG_N = 24, BIG_SIZE = 32768 };

static void alloc_big(void *big[BIG_N], hak_slab *slabs[BIG_N])
{
    for (int i = 0; i < BIG_N; i++) {
        big[i] = hak_malloc(BIG_SIZE);
        CHECK(big[i] != NULL, "malloc(%d)", BIG_SIZE);
        slabs[i] = slab_of(big[i]);
        CHECK(slabs[i]->block_size == BIG_SIZE, "block size %u", slabs[i]->block_size);
    }
}

/* A slab that empties becomes a spare of its heap, and the next class that
 * needs a slab takes it: memory moves between classes without the pool. */
static void test_spare_slabs(void)
{
    void *big[BIG_N];
    hak_slab *slabs[BIG_N];
    alloc_big(big, slabs);
    hak_heap *heap = _hak_tl_heap;
    unsigned spares_before = spare_count(heap);
    for (int i = 0; i < BIG_N; i++) hak_free(big[i]);
    hak_slab *spare[HAK_HEAP_SPARE];
    unsigned n = spares_of(heap, spare);
    CHECK(n == HAK_HEAP_SPARE, "spares after freeing %d slabs' worth: %u (had %u)", BIG_N, n, spares_before);
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++)
        CHECK(spare[i]->block_size == 0 && atomic_load(&spare[i]->owner_a) == NULL, "spare not in the pool's state");

    /* a class with no slab yet takes a spare, one of the 32 KiB slabs */
    CHECK(heap->active[_hak_class_of(3000)] == &_hak_slab_empty, "class of 3000 bytes already has a slab");
    void *small = hak_malloc(3000);
    hak_slab *s = slab_of(small);
    bool was_big = false;
    for (int i = 0; i < BIG_N; i++) was_big |= slabs[i] == s;
    CHECK(was_big, "3000-byte block %p not in a former 32 KiB slab", small);
    CHECK(spare_count(heap) == HAK_HEAP_SPARE - 1, "spares after reuse: %u", spare_count(heap));
    CHECK(s->block_size == _hak_class_size[_hak_class_of(3000)], "reused slab's block size %u", s->block_size);
    hak_free(small);

    /* malloc_trim gives the spares back to the pool */
    hak_trim();
    CHECK(spare_count(heap) == 0, "spares after trim: %u", spare_count(heap));
}

/* A thread that goes idle keeps no empty slab: the purge thread takes its
 * spares back once it has parked none for a second, and the pool gives
 * their pages to the OS after the purge delay. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    hak_heap *heap;   /* the idle thread's, once its spares are parked */
    bool done;
} idle = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false };

static void *idle_thread(void *arg)
{
    (void)arg;
    void *big[BIG_N];
    hak_slab *slabs[BIG_N];
    alloc_big(big, slabs);
    for (int i = 0; i < BIG_N; i++) memset(big[i], 0x5a, BIG_SIZE);
    for (int i = 0; i < BIG_N; i++) hak_free(big[i]);
    pthread_mutex_lock(&idle.lock);
    idle.heap = _hak_tl_heap;
    pthread_cond_broadcast(&idle.cond);
    while (!idle.done) pthread_cond_wait(&idle.cond, &idle.lock);
    pthread_mutex_unlock(&idle.lock);
    return NULL;
}

/* Whether none of the pages of s is resident. */
static bool slab_pages_gone(hak_slab *s)
{
    unsigned char vec[HAK_UNIT_PAGES];
    size_t pages = hak_unit_bytes(s->unit) / HAK_PAGE;
    CHECK(mincore(hak_slab_start(s), pages * HAK_PAGE, vec) == 0, "mincore");
    for (size_t i = 0; i < pages; i++)
        if (vec[i] & 1) return false;
    return true;
}

static void test_idle_spares(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, idle_thread, NULL) == 0, "pthread_create");
    pthread_mutex_lock(&idle.lock);
    while (idle.heap == NULL) pthread_cond_wait(&idle.cond, &idle.lock);
    pthread_mutex_unlock(&idle.lock);
    hak_slab *spare[HAK_HEAP_SPARE];
    unsigned n = spares_of(idle.heap, spare);
    CHECK(n == HAK_HEAP_SPARE, "idle thread parked %u spares", n);
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++)
        CHECK(!slab_pages_gone(spare[i]), "spare %u of the idle thread: no page resident", i);
    /* the purge thread must take them within the second plus a pass;
     * nothing here allocates meanwhile, so no one can take them over */
    int waited_ms = 0;
    while (spare_count(idle.heap) > 0 && waited_ms < 5000) {
        usleep(10000);
        waited_ms += 10;
    }
    CHECK(spare_count(idle.heap) == 0, "idle thread still has %u spares after %d ms",
          spare_count(idle.heap), waited_ms);
    bool gone = false;
    for (int ms = 0; !gone && ms < 5000; ms += 10) {
        gone = true;
        for (unsigned i = 0; i < HAK_HEAP_SPARE; i++) gone &= slab_pages_gone(spare[i]);
        if (!gone) usleep(10000);
    }
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++)
        CHECK(spare[i]->block_size == 0 && slab_pages_gone(spare[i]),
              "spare %u of the idle thread: block size %u, pages resident", i, spare[i]->block_size);
    printf("unit_internals: idle thread's spares taken back after %d ms\n", waited_ms);
    pthread_mutex_lock(&idle.lock);
    idle.done = true;
    pthread_cond_broadcast(&idle.cond);
    pthread_mutex_unlock(&idle.lock);
    pthread_join(t, NULL);
}

/* Blocks freed by a thread that does not own their slab go into its foreign
 * cache: its next malloc of the class takes the last one; a cache past its
 * bound or its period, and the whole cache at thread exit, go back to the
 * owning slab, where the owner finds every block again. While the cache is
 * what malloc pops, the thread's frees of its own blocks go there too. */
enum { FOREIGN_N = 200, FOREIGN_SIZE = 100 };

static void *foreign_thread(void *arg)
{
    void **blocks = arg;
    void *mine = hak_malloc(FOREIGN_SIZE);   /* this thread gets a heap */
    hak_free(blocks[0]);
    void *again = hak_malloc(FOREIGN_SIZE);
    CHECK(again == blocks[0], "malloc after a foreign free: %p, not the freed %p", again, blocks[0]);

    /* a block freed and reused over and over is sent home before long (a
     * period is HAK_FOREIGN_PERIOD pushes) */
    void *x = again;
    int cycles = 0;
    while (x == blocks[0] && cycles++ < 16384) {
        hak_free(x);
        x = hak_malloc(FOREIGN_SIZE);
    }
    CHECK(x != blocks[0], "a recycled foreign block stayed foreign for %d cycles", cycles);
    hak_free(x);
    hak_heap *heap = _hak_tl_heap;
    unsigned cls = _hak_class_of(FOREIGN_SIZE);

    /* while malloc pops the cache, the owner's frees join it: the class
     * keeps one last-in first-out order over both kinds of block */
    void *own = hak_malloc(FOREIGN_SIZE);
    CHECK(atomic_load(&slab_of(own)->owner_a) == heap, "%p is not of this thread's slab", own);
    hak_free(blocks[1]);
    hak_free(own);
    void *first = hak_malloc(FOREIGN_SIZE), *second = hak_malloc(FOREIGN_SIZE);
    CHECK(first == own && second == blocks[1], "after freeing a foreign block, then its own %p: "
          "malloc gave %p, then %p", own, first, second);
    hak_free(first);
    for (int i = 1; i < FOREIGN_N; i++) {
        hak_free(blocks[i]);
        uint32_t held = heap->foreign[cls].pushed - heap->foreign[cls].used;
        CHECK(held <= _hak_class_foreign_max[cls], "foreign cache holds %u (bound %u)",
              held, _hak_class_foreign_max[cls]);
    }
    hak_free(mine);
    return NULL;   /* thread exit flushes the cache */
}

static void test_foreign_cache(void)
{
    if (!HAK_FOREIGN_CACHE) return;
    void *blocks[FOREIGN_N];
    for (int i = 0; i < FOREIGN_N; i++) {
        blocks[i] = hak_malloc(FOREIGN_SIZE);
        CHECK(blocks[i] != NULL, "malloc");
    }
    CHECK(_hak_class_foreign_max[_hak_class_of(FOREIGN_SIZE)] < FOREIGN_N, "test needs a flush");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, foreign_thread, blocks) == 0, "pthread_create");
    pthread_join(t, NULL);

    /* every block the other thread freed comes back to this thread */
    enum { TRIES = 4 * FOREIGN_N + 4096 };
    void **got = hak_malloc(TRIES * sizeof(void *));
    int found = 0, n = 0;
    while (found < FOREIGN_N && n < TRIES) {
        void *p = hak_malloc(FOREIGN_SIZE);
        got[n++] = p;
        for (int i = 0; i < FOREIGN_N; i++) {
            if (blocks[i] == p) {
                blocks[i] = NULL;
                found++;
                break;
            }
        }
    }
    CHECK(found == FOREIGN_N, "only %d of %d blocks freed by another thread came back in %d mallocs",
          found, FOREIGN_N, n);
    for (int i = 0; i < n; i++) hak_free(got[i]);
    hak_free(got);
}

/* Blocks another thread frees into a slab reach its remote-free word with
 * their count, and the owner takes them back whole: used drops by that
 * count and the local list holds exactly those blocks. */
enum { REMOTE_SIZE = 1500, REMOTE_N = 5 };

static void *remote_free_thread(void *arg)
{
    void **b = arg;   /* blocks of one slab of another thread's */
    for (int i = 0; i < REMOTE_N; i++) hak_free(b[i]);
    return NULL;   /* thread exit flushes the foreign cache */
}

static void test_remote_chain(void)
{
    enum { MAX = 512 };
    void *mine[MAX], *theirs[REMOTE_N];
    int n = 0, in_s = 0;
    hak_slab *s = NULL;
    /* REMOTE_N blocks or more of slab s out, and its local list empty, so
     * that the chain becomes the list */
    do {
        CHECK(n < MAX, "no slab of class %d had an empty list after %d mallocs", REMOTE_SIZE, n);
        mine[n] = hak_malloc(REMOTE_SIZE);
        if (slab_of(mine[n]) != s) {
            s = slab_of(mine[n]);
            in_s = 0;
        }
        in_s++;
        n++;
    } while (in_s < REMOTE_N || s->free != NULL);
    for (int i = 0; i < REMOTE_N; i++) {
        theirs[i] = mine[n - 1 - i];
        mine[n - 1 - i] = NULL;
    }
    pthread_t t;
    CHECK(pthread_create(&t, NULL, remote_free_thread, theirs) == 0, "pthread_create");
    pthread_join(t, NULL);

    uintptr_t v = atomic_load(&s->remote_a);
    CHECK((v >> HAK_REMOTE_COUNT_SHIFT) == REMOTE_N, "remote-free word counts %lu blocks, not %d",
          (unsigned long)(v >> HAK_REMOTE_COUNT_SHIFT), REMOTE_N);
    CHECK((v & HAK_REMOTE_STATE_MASK) == HAK_REMOTE_NORMAL, "remote state %lu",
          (unsigned long)(v & HAK_REMOTE_STATE_MASK));
    uint32_t used = s->used;
    _hak_slab_collect_remote(s);
    CHECK(s->used == used - REMOTE_N, "used %u after collecting %d of %u", s->used, REMOTE_N, used);
    CHECK(atomic_load(&s->remote_a) == HAK_REMOTE_NORMAL, "remote-free word not cleared");
    int listed = 0;
    for (hak_block *b = s->free; b != NULL && listed <= REMOTE_N; b = hak_link_get(s, b)) {
        bool freed = false;
        for (int i = 0; i < REMOTE_N; i++) freed |= (void *)b == theirs[i];
        CHECK(freed, "%p on the local list was not freed", (void *)b);
        listed++;
    }
    CHECK(listed == REMOTE_N, "local list holds %d blocks, not %d", listed, REMOTE_N);
    for (int i = 0; i < n; i++) hak_free(mine[i]);
}

/* A slab that leaves the full list through its owner's frees keeps its
 * NOTIFY mark while no other thread has freed into it (no CAS for a slab
 * of few big blocks that keeps filling and draining); the first remote
 * free into it then goes to the owner's delayed list and comes back from
 * there; once remote frees were seen, leaving the full list clears the
 * mark. */
enum { NOTIFY_SIZE = 20000, NOTIFY_MAX = 64 };

static void *free_one_thread(void *arg)
{
    hak_free(arg);
    return NULL;   /* thread exit flushes the foreign cache */
}

/* Mallocs of NOTIFY_SIZE into b[*n..] until slab s is on the full list. */
static void fill_until_full(void **b, int *n, hak_slab *s)
{
    while (!hak_slab_in_full(s)) {
        CHECK(*n < NOTIFY_MAX, "slab not full after %d mallocs", *n);
        b[(*n)++] = hak_malloc(NOTIFY_SIZE);
    }
}

/* Frees, and clears, the first block of b[0..n) in slab s. */
static void *free_one_in(void **b, int n, hak_slab *s)
{
    for (int i = 0; i < n; i++) {
        if (b[i] && slab_of(b[i]) == s) {
            void *p = b[i];
            b[i] = NULL;
            hak_free(p);
            return p;
        }
    }
    CHECK(0, "no block of the slab left");
    return NULL;
}

static void test_kept_notify(void)
{
    void *b[NOTIFY_MAX];
    int n = 0;
    b[n++] = hak_malloc(NOTIFY_SIZE);
    hak_slab *s = slab_of(b[0]);
    hak_heap *heap = _hak_tl_heap;
    fill_until_full(b, &n, s);
    CHECK(atomic_load(&s->remote_a) == HAK_REMOTE_NOTIFY, "full slab not NOTIFY");

    free_one_in(b, n, s);
    CHECK(!hak_slab_in_full(s), "slab still on the full list after a free");
    CHECK(atomic_load(&s->remote_a) == HAK_REMOTE_NOTIFY, "mark not kept: word %#lx",
          (unsigned long)atomic_load(&s->remote_a));

    /* another thread's free: handed to the delayed list, the mark cleared */
    void *theirs = NULL;
    for (int i = 0; i < n && !theirs; i++)
        if (b[i] && slab_of(b[i]) == s) {
            theirs = b[i];
            b[i] = NULL;
        }
    CHECK(theirs != NULL, "no block left to free remotely");
    uint32_t used = hak_slab_used(s);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, free_one_thread, theirs) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(atomic_load(&s->remote_a) == HAK_REMOTE_NORMAL, "remote free left word %#lx",
          (unsigned long)atomic_load(&s->remote_a));
    CHECK(atomic_load(&heap->delayed_a) == theirs, "block not on the owner's delayed list");
    CHECK(hak_slab_used(s) == used, "used changed before the drain");
    _hak_heap_drain_delayed(heap);
    CHECK(hak_slab_used(s) == used - 1, "used %u after the drain, not %u", hak_slab_used(s), used - 1);
    CHECK(s->remote_seen, "remote free not seen");

    /* full again, then an owner's free: the mark goes */
    fill_until_full(b, &n, s);
    free_one_in(b, n, s);
    CHECK(atomic_load(&s->remote_a) == HAK_REMOTE_NORMAL, "mark kept after remote frees: word %#lx",
          (unsigned long)atomic_load(&s->remote_a));
    for (int i = 0; i < n; i++) hak_free(b[i]);
}

/* Pages whose blocks are all free go back to the OS from a slab in use;
 * their blocks leave the free list and come back, each once, when the slab
 * has nothing else to give. */
static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* The page of slab s that p lies on. */
static size_t page_in_slab(hak_slab *s, const void *p)
{
    return (size_t)((const char *)p - hak_slab_start(s)) / HAK_PAGE;
}

/* Free (and clear) every block of b[0..n) that lies on pages 2 to 5 of s,
 * or is block `also` of s; returns how many. */
static int free_pages_2_to_5(void **b, int n, hak_slab *s, size_t also)
{
    int freed = 0;
    for (int i = 0; i < n; i++) {
        if (b[i] == NULL || slab_of(b[i]) != s) continue;
        size_t page = page_in_slab(s, b[i]);
        if ((page >= 2 && page <= 5) || hak_block_index(s, b[i]) == also) {
            hak_free(b[i]);
            b[i] = NULL;
            freed++;
        }
    }
    return freed;
}

/* Of the first 8 pages of s, exactly pages 2 to 5 are not resident. */
static void check_pages_2_to_5_gone(hak_slab *s)
{
    unsigned char vec[8];
    CHECK(mincore(hak_slab_start(s), 8 * HAK_PAGE, vec) == 0, "mincore");
    for (int pg = 0; pg < 8; pg++)
        CHECK(((vec[pg] & 1) == 0) == (pg >= 2 && pg <= 5), "page %d resident: %d", pg, vec[pg] & 1);
}

static void test_purge_pages(void)
{
    enum { N = 1200, SIZE = 256, PER_PAGE = HAK_PAGE / SIZE };
    void **b = hak_malloc(N * sizeof(void *));
    for (int i = 0; i < N; i++) {
        b[i] = hak_malloc(SIZE);
        CHECK(b[i] != NULL, "malloc(%d)", SIZE);
        memset(b[i], 0x5a, SIZE);
    }
    hak_slab *s = slab_of(b[0]);
    CHECK(s->block_size == SIZE && s->bump == s->capacity, "first slab of %d-byte blocks not carved out", SIZE);
    /* free every block on pages 2 to 5 of the slab, and one on page 7 */
    int freed = free_pages_2_to_5(b, N, s, 7 * PER_PAGE);
    CHECK(freed == 4 * PER_PAGE + 1, "freed %d blocks", freed);
    size_t bytes = _hak_slab_purge_pages(s);
    CHECK(bytes == 4 * HAK_PAGE && s->purged == 0x3c, "purged %zu bytes, pages %#x", bytes, s->purged);
    check_pages_2_to_5_gone(s);
    int on_list = 0;
    for (hak_block *f = s->free; f; f = hak_link_get(s, f)) on_list++;
    CHECK(on_list == 1, "%d blocks on the free list, not the one on page 7", on_list);
    CHECK(_hak_slab_purge_pages(s) == 0, "purged again");

    /* malloc hands out every block again, each once */
    void **extra = hak_malloc(4 * N * sizeof(void *));
    int back = 0, n_extra = 0;
    for (int i = 0; i < N + 4 * N && back < 4 * PER_PAGE; i++) {
        void *p = hak_malloc(SIZE);
        CHECK(p != NULL, "malloc(%d)", SIZE);
        memset(p, 0x5b, SIZE);
        if (slab_of(p) == s && page_in_slab(s, p) - 2 < 4) back++;
        if (i < N && b[i] == NULL) b[i] = p;
        else if (n_extra < 4 * N) extra[n_extra++] = p;
    }
    CHECK(back == 4 * PER_PAGE, "%d of the %d blocks on given-back pages came back", back, 4 * PER_PAGE);
    CHECK(s->purged == 0, "pages still marked purged: %#x", s->purged);
    void **all = hak_malloc(5 * N * sizeof(void *));
    int n = 0;
    for (int i = 0; i < N; i++)
        if (b[i]) all[n++] = b[i];
    for (int i = 0; i < n_extra; i++) all[n++] = extra[i];
    qsort(all, (size_t)n, sizeof(void *), cmp_ptr);
    for (int i = 1; i < n; i++) CHECK(all[i] != all[i - 1], "block %p handed out twice", all[i]);
    for (int i = 0; i < n; i++) hak_free(all[i]);
    hak_free(all);
    hak_free(extra);
    hak_free(b);
}

/* A thread leaves a slab with free pages and exits: its heap is parked
 * with the slab; malloc_trim unparks it (the slab is abandoned) and gives
 * those pages back, and the slab's other blocks still work. */
enum { LEFT_N = 1200, LEFT_SIZE = 256 };
static void *left_blocks[LEFT_N];

static void *leave_free_pages(void *arg)
{
    hak_slab **out = arg;
    for (int i = 0; i < LEFT_N; i++) {
        left_blocks[i] = hak_malloc(LEFT_SIZE);
        CHECK(left_blocks[i] != NULL, "malloc(%d)", LEFT_SIZE);
        memset(left_blocks[i], 0x6c, LEFT_SIZE);
    }
    hak_slab *s = slab_of(left_blocks[0]);
    free_pages_2_to_5(left_blocks, LEFT_N, s, SIZE_MAX);
    *out = s;
    return NULL;
}

static void test_purge_abandoned_pages(void)
{
    hak_slab *s = NULL;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, leave_free_pages, &s) == 0, "pthread_create");
    pthread_join(t, NULL);
    CHECK(atomic_load(&s->owner_a) != NULL && s->used > 0, "the exited thread's slab left its parked heap");
    hak_trim();
    CHECK(atomic_load(&s->owner_a) == NULL && s->used > 0, "malloc_trim: the slab was not abandoned with blocks out");
    CHECK(s->purged == 0x3c, "pages given back from the abandoned slab: %#x", s->purged);
    check_pages_2_to_5_gone(s);
    for (int i = 0; i < LEFT_N; i++) {
        if (left_blocks[i] == NULL) continue;
        CHECK(((unsigned char *)left_blocks[i])[LEFT_SIZE - 1] == 0x6c, "block %d lost its bytes", i);
        hak_free(left_blocks[i]);
    }
}

/* The fork child: a heap its parent's thread held, with its slabs and its
 * counts of them, waits for the child's threads with none of either (the
 * slabs were abandoned, so the count of slabs held must say 0, or the next
 * owner's first pass over its pages comes early or late). */
#define FORKED_N 3000
#define FORKED_SIZE 1000
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    hak_heap *heap;
    bool done;
} forked = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, false };

static void *hold_slabs(void *arg)
{
    void **blocks = arg;
    for (int i = 0; i < FORKED_N; i++) {
        blocks[i] = hak_malloc(FORKED_SIZE);
        CHECK(blocks[i] != NULL, "hak_malloc");
    }
    pthread_mutex_lock(&forked.lock);
    forked.heap = _hak_tl_heap;
    pthread_cond_broadcast(&forked.cond);
    while (!forked.done) pthread_cond_wait(&forked.cond, &forked.lock);
    pthread_mutex_unlock(&forked.lock);
    for (int i = 0; i < FORKED_N; i++) hak_free(blocks[i]);
    return NULL;
}

static void *child_heap(void *arg)
{
    (void)arg;
    hak_free(hak_malloc(16));
    return _hak_tl_heap;
}

static void test_fork_heap_reset(void)
{
    static void *blocks[FORKED_N];
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hold_slabs, blocks) == 0, "pthread_create");
    pthread_mutex_lock(&forked.lock);
    while (forked.heap == NULL) pthread_cond_wait(&forked.cond, &forked.lock);
    pthread_mutex_unlock(&forked.lock);
    CHECK(forked.heap->pages_held >= 20, "the thread holds only %u slabs", forked.heap->pages_held);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        pthread_t c;
        void *h = NULL;
        if (pthread_create(&c, NULL, child_heap, NULL) != 0 || pthread_join(c, &h) != 0) _exit(2);
        hak_heap *heap = h;
        if (heap != forked.heap) _exit(3);   /* the child's thread took another heap */
        uint32_t slabs = 0;
        for (unsigned c = 0; c < HAK_CLASSES; c++) {
            for (hak_slab *s = heap->partial[c].first; s; s = s->next) slabs++;
            for (hak_slab *s = heap->full[c].first; s; s = s->next) slabs++;
        }
        slabs += spare_count(heap);
        if (heap->pages_held != slabs || heap->tails > slabs) {
            fprintf(stderr, "FAIL: the fork child's reused heap holds %u slabs: pages_held %u tails %u\n",
                    slabs, heap->pages_held, heap->tails);
            _exit(1);
        }
        _exit(0);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork child: status %#x", status);
    pthread_mutex_lock(&forked.lock);
    forked.done = true;
    pthread_cond_broadcast(&forked.cond);
    pthread_mutex_unlock(&forked.lock);
    pthread_join(t, NULL);
}

int main(void)
{
    test_size_classes();
    test_pagemap();
    test_owns_unmapped();
    test_alignment();
    test_spare_slabs();
    test_idle_spares();
    test_foreign_cache();
    test_purge_pages();
    test_purge_abandoned_pages();
    test_remote_chain();
    test_kept_notify();
    test_fork_heap_reset();
    test_os_failure();
    printf("unit_internals: ok\n");
    return 0;
}
