/* info.c: glibc's malloc-introspection API, answered with hakmem's own
 * figures: mallinfo2 and mallinfo, malloc_stats, malloc_info and mallopt
 * (as hak_ functions; override.c gives libhakmem glibc's names).
 *
 * Every figure comes from one snapshot: a walk over the units of every
 * SuperSlab under the pool's lock (superslab.c), then over every heap's
 * foreign cache, plus the large-block counters hak_stats_get reads too.
 * The walk only reads and adds; what prints comes after it, with no hakmem
 * lock held, so stdio may allocate. Other threads go on meanwhile, so with
 * several threads the figures are those of some moment during the walk
 * (each field of a slab read once). README.md has the table of what each
 * field means under hakmem.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* glibc's bound on M_MXFAST: MAX_FAST_SIZE, 80 * sizeof(size_t) / 4 */
#define GLIBC_MXFAST_MAX (80 * sizeof(size_t) / 4)

typedef struct snapshot {
    uint64_t out[HAK_CLASSES];      /* blocks handed out, per class */
    uint64_t free[HAK_CLASSES];     /* free blocks carved, per class (foreign caches too) */
    uint32_t slabs[HAK_CLASSES];    /* slabs in use, per class */
    uint64_t cached, cached_bytes;  /* of the free blocks, those in threads' foreign caches */
    uint64_t room_bytes;            /* in slabs in use: not carved yet, or pages given back */
    uint64_t free_units, free_unit_bytes;   /* units in no slab: the pool's, heaps' spares */
    uint64_t superslabs;
    uint64_t run_bytes;             /* usable bytes of large blocks that are runs of units */
    uint64_t in_use_bytes, free_blocks, free_block_bytes;   /* the sums */
    uint64_t keepcost;
    hak_large_figures large;
} snapshot;

#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Under the pool's lock: one unit. Slab fields its owner is changing may
 * be read half-changed; the clamps keep such a slab's figures possible. */
static void add_unit(void *arg, hak_superslab *ss, unsigned u)
{
    snapshot *sn = arg;
    hak_slab *s = &ss->slabs[u];
    uint32_t bs = LOAD(s->block_size);
    unsigned cls = LOAD(s->cls);
    unsigned run = LOAD(s->run);
    if (!(ss->free_units >> u & 1) && run != 0) {
        /* a large block over whole units, counted once, at its first */
        if (run != u + 1) return;
        uint64_t bytes = hak_run_bytes(s), usable = LOAD(s->run_usable);
        if (usable > bytes) usable = bytes;
        sn->run_bytes += usable;
        sn->room_bytes += bytes - usable;
        return;
    }
    if ((ss->free_units >> u & 1) || bs == 0) {
        sn->free_units++;
        sn->free_unit_bytes += hak_unit_bytes(u);
        return;
    }
    if (cls >= HAK_CLASSES || bs != _hak_class_size[cls]) return;   /* being set up */
    uint64_t cap = LOAD(s->capacity), bump = LOAD(s->bump), used = LOAD(s->used) & ~HAK_USED_FULL;
    uint64_t purged = LOAD(s->purged_blocks);
    if (bump > cap) bump = cap;
    if (used > bump) used = bump;
    if (purged > bump - used) purged = bump - used;
    sn->out[cls] += used;
    sn->free[cls] += bump - used - purged;
    sn->room_bytes += (cap - bump + purged) * bs;
    sn->slabs[cls]++;
}

static void take_snapshot(snapshot *sn)
{
    memset(sn, 0, sizeof(*sn));
    sn->superslabs = _hak_pool_each_unit(add_unit, sn);
    /* a block in a foreign cache is free, though its slab counts it out */
    for (hak_heap *h = _hak_heap_first_of_all(); h; h = h->next_all) {
        for (unsigned c = 0; c < HAK_CLASSES; c++) {
            uint64_t held = (uint32_t)(LOAD(h->foreign[c].pushed) - LOAD(h->foreign[c].used));
            if (held > sn->out[c]) held = sn->out[c];
            sn->out[c] -= held;
            sn->free[c] += held;
            sn->cached += held;
            sn->cached_bytes += held * _hak_class_size[c];
        }
    }
    sn->in_use_bytes = sn->run_bytes;
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        sn->in_use_bytes += sn->out[c] * _hak_class_size[c];
        sn->free_blocks += sn->free[c];
        sn->free_block_bytes += sn->free[c] * _hak_class_size[c];
    }
    /* what malloc_trim would give back: the free units still resident, the
     * cached large blocks, this thread's spare slabs (not the free pages
     * inside slabs in use, which would need a walk of their free lists) */
    sn->keepcost = _hak_pool_dirty_bytes() + _hak_large_cache_bytes();
    hak_heap *me = _hak_tl_heap;
    for (unsigned i = 0; i < HAK_HEAP_SPARE; i++) {
        hak_slab *s = atomic_load_explicit(&me->spare[i], memory_order_relaxed);
        if (s) sn->keepcost += hak_unit_bytes(s->unit);
    }
    _hak_stats_large_now(&sn->large);
}

static struct mallinfo2 mallinfo_of(const snapshot *sn)
{
    struct mallinfo2 m;
    memset(&m, 0, sizeof(m));
    m.arena = sn->superslabs * HAK_SS_SIZE;
    m.ordblks = sn->free_blocks - sn->cached + sn->free_units;
    m.smblks = sn->cached;
    m.hblks = sn->large.mapped;
    m.hblkhd = sn->large.mapped_bytes;
    m.usmblks = 0;
    m.fsmblks = sn->cached_bytes;
    m.uordblks = sn->in_use_bytes;
    m.fordblks = sn->free_block_bytes + sn->room_bytes + sn->free_unit_bytes;
    m.keepcost = sn->keepcost;
    return m;
}

struct mallinfo2 _hak_mallinfo2(void)
{
    snapshot sn;
    take_snapshot(&sn);
    return mallinfo_of(&sn);
}

static int saturated(size_t v)
{
    return v > INT_MAX ? INT_MAX : (int)v;
}

struct mallinfo _hak_mallinfo(void)
{
    struct mallinfo2 m2 = _hak_mallinfo2();
    struct mallinfo m;
    m.arena = saturated(m2.arena);
    m.ordblks = saturated(m2.ordblks);
    m.smblks = saturated(m2.smblks);
    m.hblks = saturated(m2.hblks);
    m.hblkhd = saturated(m2.hblkhd);
    m.usmblks = saturated(m2.usmblks);
    m.fsmblks = saturated(m2.fsmblks);
    m.uordblks = saturated(m2.uordblks);
    m.fordblks = saturated(m2.fordblks);
    m.keepcost = saturated(m2.keepcost);
    return m;
}

/* glibc's lines first (its layout, the figures of mallinfo2, without its
 * truncation to 32 bits), then hakmem's: the same as hak_stats_print. */
void _hak_malloc_stats(void)
{
    snapshot sn;
    take_snapshot(&sn);
    struct mallinfo2 m = mallinfo_of(&sn);
    FILE *f = stderr;
    flockfile(f);
    fprintf(f, "Arena 0:\n");
    fprintf(f, "system bytes     = %10zu\n", m.arena);
    fprintf(f, "in use bytes     = %10zu\n", m.uordblks);
    fprintf(f, "Total (incl. mmap):\n");
    fprintf(f, "system bytes     = %10zu\n", m.arena + m.hblkhd);
    fprintf(f, "in use bytes     = %10zu\n", m.uordblks + m.hblkhd);
    fprintf(f, "max mmap regions = %10llu\n", (unsigned long long)sn.large.peak);
    fprintf(f, "max mmap bytes   = %10llu\n", (unsigned long long)sn.large.peak_bytes);
    fprintf(f, "hakmem: in SuperSlabs (blocks up to 256 KiB): %zu bytes in use, %llu bytes in free blocks (%llu in threads' "
               "caches of other threads' blocks), %zu bytes free in all\n",
            m.uordblks, (unsigned long long)sn.free_block_bytes, (unsigned long long)sn.cached_bytes, m.fordblks);
    fprintf(f, "hakmem: %llu SuperSlabs mapped (at most %llu), %llu large blocks live; malloc_trim would give "
               "back about %zu bytes\n",
            (unsigned long long)sn.superslabs, (unsigned long long)_hak_pool_peak(),
            (unsigned long long)(sn.large.mapped + sn.large.runs), m.keepcost);
    funlockfile(f);
    hak_stats_print(f);
}

/* glibc's schema: one heap (all of hakmem's), a <size> per class in use
 * with its free blocks (glibc's lists the free chunks of its bins), then
 * the totals. */
int _hak_malloc_info(int options, FILE *fp)
{
    if (options != 0) {
        errno = EINVAL;
        return -1;
    }
    snapshot sn;
    take_snapshot(&sn);
    struct mallinfo2 m = mallinfo_of(&sn);
    unsigned long long arena = m.arena, peak = _hak_pool_peak() * HAK_SS_SIZE;
    unsigned long long rest_count = m.ordblks, rest_size = m.fordblks - m.fsmblks;
    if (peak < arena) peak = arena;
    fprintf(fp, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        if (sn.slabs[c] == 0 && sn.free[c] == 0) continue;
        fprintf(fp, "  <size from=\"%u\" to=\"%u\" total=\"%llu\" count=\"%llu\"/>\n",
                c ? _hak_class_size[c - 1] + 1 : 0, _hak_class_size[c],
                (unsigned long long)(sn.free[c] * _hak_class_size[c]), (unsigned long long)sn.free[c]);
    }
    fprintf(fp, "</sizes>\n");
    for (int outer = 0; outer < 2; outer++) {
        if (outer) fprintf(fp, "</heap>\n");
        fprintf(fp, "<total type=\"fast\" count=\"%zu\" size=\"%zu\"/>\n", m.smblks, m.fsmblks);
        fprintf(fp, "<total type=\"rest\" count=\"%llu\" size=\"%llu\"/>\n", rest_count, rest_size);
        if (outer) fprintf(fp, "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n", m.hblks, m.hblkhd);
        fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n", arena);
        fprintf(fp, "<system type=\"max\" size=\"%llu\"/>\n", peak);
        fprintf(fp, "<aspace type=\"total\" size=\"%llu\"/>\n", arena);
        fprintf(fp, "<aspace type=\"mprotect\" size=\"%llu\"/>\n", arena);
    }
    fprintf(fp, "</malloc>\n");
    return 0;
}

/* glibc's parameters. Those with a meaning here act; the rest are accepted
 * as glibc accepts them and change nothing (README.md lists which). */
int _hak_mallopt(int param, int value)
{
    switch (param) {
    case M_TRIM_THRESHOLD: {
        /* free memory kept resident beyond this goes back at the next free
         * that returns a slab or a large block: HAKMEM_RSS_BUDGET_KB. A
         * negative value is glibc's "never": no budget. */
        long kb = value < 0 ? 0 : ((long)value + 1023) / 1024;
        if (value >= 0 && kb == 0) kb = 1;
        __atomic_store_n(&_hak_opt.rss_budget_kb, kb, __ATOMIC_RELAXED);
        return 1;
    }
    case M_MXFAST:
        return value >= 0 && (size_t)value <= GLIBC_MXFAST_MAX;
    case M_TOP_PAD:
    case M_MMAP_THRESHOLD:
    case M_MMAP_MAX:
    case M_CHECK_ACTION:
    case M_PERTURB:
    case M_ARENA_TEST:
    case M_ARENA_MAX:
        return 1;
    default:
        return 0;
    }
}

HAK_PUBLIC_ALIAS(hak_mallinfo2, _hak_mallinfo2);
HAK_PUBLIC_ALIAS(hak_mallinfo, _hak_mallinfo);
HAK_PUBLIC_ALIAS(hak_malloc_stats, _hak_malloc_stats);
HAK_PUBLIC_ALIAS(hak_malloc_info, _hak_malloc_info);
HAK_PUBLIC_ALIAS(hak_mallopt, _hak_mallopt);
