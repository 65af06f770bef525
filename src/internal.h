/* internal.h: hakmem's types, build flags and cross-file declarations.
 *
 * Every struct shared between files is defined here, and every function one
 * file offers another is declared here under the name of the file that
 * defines it. Cross-file names start with _hak_ and are hidden from the
 * library's users by -fvisibility=hidden.
 */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hakmem.h"

#pragma GCC visibility push(hidden)

/* ------------------------------------------------------------------------
 * Build variants. HAKMEM_BUILD_RELEASE=1: no checks beyond the ones every
 * build keeps (foreign frees), no counters, no debug output.
 * HAKMEM_BUILD_DEBUG=1: internal asserts, double/interior free detection,
 * live-block counting, free-route tracing.
 * ---------------------------------------------------------------------- */
#if defined(HAKMEM_BUILD_DEBUG) && HAKMEM_BUILD_DEBUG
#define HAK_DEBUG 1
#else
#define HAK_DEBUG 0
#endif
/* HAKMEM_BUILD_SECURE=1 (out/secure): encoded free-list links, guard pages
 * between SuperSlabs, random block order in fresh slabs. */
#if defined(HAKMEM_BUILD_SECURE) && HAKMEM_BUILD_SECURE
#define HAK_SECURE 1
#else
#define HAK_SECURE 0
#endif
/* Blocks a thread frees from other threads' slabs are kept in a per-thread
 * cache for its own mallocs (slab.c); not in the secure build, whose free
 * lists are all encoded and checked. */
#define HAK_FOREIGN_CACHE (!HAK_SECURE)
/* ... and sent back to their slabs at least every this many pushes, so that
 * blocks do not circulate among foreign caches for ever (slab.c). */
#define HAK_FOREIGN_PERIOD 8192

#define HAK_API        __attribute__((visibility("default")))
#define HAK_NOINLINE   __attribute__((noinline))
#define HAK_COLD       __attribute__((cold, noinline))
#define likely(x)      __builtin_expect(!!(x), 1)
#define unlikely(x)    __builtin_expect(!!(x), 0)
#define HAK_TLS        __thread __attribute__((tls_model("initial-exec")))

#if HAK_DEBUG
#define hak_assert(c) ((c) ? (void)0 : _hak_assert_fail(#c, __FILE__, __LINE__))
#else
#define hak_assert(c) ((void)0)
#endif

/* hakmem's locks (heap.c's heap_lock, the pool's, the large-block cache's,
 * purge.c's pass lock) are taken through these. While a thread forks it
 * holds all of them (heap.c), and what it allocates meanwhile (in other
 * fork handlers, or in a signal handler) takes none of them again. */
extern HAK_TLS bool _hak_tl_forking;
static inline void hak_lock(pthread_mutex_t *m)
{
    if (!_hak_tl_forking) pthread_mutex_lock(m);
}
static inline void hak_unlock(pthread_mutex_t *m)
{
    if (!_hak_tl_forking) pthread_mutex_unlock(m);
}

/* ------------------------------------------------------------------------
 * Geometry
 * ---------------------------------------------------------------------- */
#define HAK_ALIGN          16                       /* every block */
#define HAK_PAGE           4096
#define HAK_SS_SHIFT       21
#define HAK_SS_SIZE        ((size_t)1 << HAK_SS_SHIFT)  /* SuperSlab: 2 MiB, aligned */
#define HAK_SS_MASK        (HAK_SS_SIZE - 1)
#define HAK_UNIT_SHIFT     17
#define HAK_UNIT_SIZE      ((size_t)1 << HAK_UNIT_SHIFT) /* slab unit: 128 KiB */
#define HAK_UNITS          (HAK_SS_SIZE / HAK_UNIT_SIZE) /* 16 units per SuperSlab */
#define HAK_UNIT_PAGES     (HAK_UNIT_SIZE / HAK_PAGE)   /* 32: one bit each in hak_slab.purged */
#define HAK_HEAP_SPARE     4                        /* empty slabs a heap keeps for any class */
#define HAK_SMALL_MAX      32768                    /* above: large blocks (mmap) */
#define HAK_CLASSES        72
#define HAK_MAX_REQUEST    ((size_t)1 << 46)        /* larger requests fail: ENOMEM */
#define HAK_MAX_SLAB_BLOCKS (HAK_UNIT_SIZE / HAK_ALIGN) /* most blocks one slab holds */

/* Largest alignment the slab path honours by itself: every slab starts on a
 * page boundary, and a class that is a multiple of the alignment then keeps
 * every block aligned. Larger alignments go to the large-block path. */
#define HAK_SLAB_ALIGN_MAX HAK_PAGE

static inline size_t hak_align_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* ------------------------------------------------------------------------
 * Blocks, slabs, SuperSlabs
 * ---------------------------------------------------------------------- */
/* A free block. In the release and secure builds its first word holds
 * HAK_FREE_MARK while it is free (the double-free check, below) and the link
 * is the second word; the debug build, which checks exactly, keeps only the
 * link. Every block is at least 16 bytes. */
#define HAK_FREE_MARK_ON (!HAK_DEBUG)
typedef struct hak_block {
#if HAK_FREE_MARK_ON
    uintptr_t mark;
#endif
    struct hak_block *next;
} hak_block;

/* What the malloc fast path pops: a list of free blocks and a count of pops.
 * A slab begins with one (its local free list and `used`); a heap's foreign
 * cache of a class is one too (slab.c), which also counts its pushes in
 * the bytes a slab leaves as padding (pushed - used = blocks held). */
typedef struct hak_freelist {
    hak_block *free;
    uint32_t used;
    uint32_t pushed;                     /* foreign cache only */
} hak_freelist;

struct hak_heap;

/* State kept in the low bits of a slab's remote-free word. */
enum {
    HAK_REMOTE_NORMAL  = 0,  /* remote frees push onto the slab's own list */
    HAK_REMOTE_NOTIFY  = 1,  /* slab is on its owner's full list: the next
                                remote free hands its block to the owner heap */
    HAK_REMOTE_STATE_MASK = 3,
};
/* The rest of the word: the chain's first block in the low 48 bits (NULL:
 * no chain; blocks are 16-byte aligned, so the state bits are free, and
 * Linux maps a hint-less mmap below 2^47), and in the top 16 bits the
 * number of blocks on the chain, so that the owner takes the chain back
 * without walking its cold blocks. */
#define HAK_REMOTE_HEAD_MASK   ((((uintptr_t)1 << 48) - 1) & ~(uintptr_t)HAK_REMOTE_STATE_MASK)
#define HAK_REMOTE_COUNT_SHIFT 48
_Static_assert(sizeof(uintptr_t) == 8, "the remote-free word holds a count in its top 16 bits");
_Static_assert(HAK_MAX_SLAB_BLOCKS < ((size_t)1 << 16), "a slab's block count fits the remote-free word");

/* One slab: one unit serving one size class. Every class, up to 32 KiB, has
 * 1-unit slabs (at least 3 blocks), so a slab that empties can serve any
 * class next; larger slabs for the mid classes would hold on to more memory
 * per class. */
typedef struct hak_slab {
    /* The owner's line: only the owning thread reads or writes it. */
    union {
        hak_freelist fl;                 /* what the fast path pops (first: offset 0) */
        struct {
            hak_block *free;             /* local free list */
            uint32_t used;               /* blocks out: handed out, not back with the owner;
                                            | HAK_USED_FULL on the owner's full list */
        };
    };
    uint16_t bump;                       /* blocks carved from the fresh area so far */
    uint16_t capacity;                   /* blocks the slab holds (<= HAK_MAX_SLAB_BLOCKS) */
    uint8_t unit;                        /* index of its unit in its SuperSlab */
    uint8_t to_cache;                    /* the owner's frees go to its heap's foreign
                                            cache: set on the heap's active slab of the
                                            class while malloc pops that cache (free.c) */
    uint8_t touched;                     /* pages of the unit, from the start of its blocks,
                                            that may be resident: written since the unit
                                            was last given back to the OS whole (slab.c's
                                            tails); kept when the unit changes class */
    uint8_t remote_seen;                 /* other threads' frees reached it since it was
                                            set up (slab.c: whether leaving the full
                                            list clears NOTIFY) */
    uint32_t purged;                     /* pages given back to the OS while the slab was in
                                            use, one bit each (slab.c); their blocks are free
                                            and on no list */
    uint16_t purged_blocks;              /* those blocks */
    uint16_t looked_free;                /* free blocks it had when its pages were last
                                            looked at */
    struct hak_slab *next, *prev;        /* heap's partial/full list, or abandoned list */

    /* Read by every thread that frees into the slab; written only when the
     * slab changes owner or class, so other threads' frees never take this
     * line away from the owner's fast path, nor the owner's from theirs. */
    _Alignas(64) _Atomic(struct hak_heap *) owner_a;   /* owning heap; NULL when not owned */
    uint32_t block_size;                 /* 0 while the slab is in the pool, or in a run */
    uint8_t cls;                         /* size class */
    uint8_t run;                         /* in a run (one large block over whole units,
                                            large.c): its first unit + 1; else 0 */
    uint8_t run_units;                   /* first unit of a run: units in it */
    uint32_t run_usable;                 /* first unit of a run: bytes usable */
    uint32_t start_off;                  /* first block, from the SuperSlab base (an offset,
                                            so that no pointer to it stays behind for
                                            valgrind's leak check) */

    /* Written by other threads' frees. */
    _Alignas(64) _Atomic uintptr_t remote_a;   /* count | head offset | HAK_REMOTE_*, above */

    /* The pool's line (pool lock): in unit 0's descriptor its first bytes
     * hold the SuperSlab's own fields (hak_superslab); then, in every
     * descriptor, when the unit went back to the pool dirty. */
    _Alignas(64) uint8_t ss_fields_[48];
    uint64_t freed_ms;
} hak_slab;
/* A power of two, so that a pointer's descriptor is two masks and an add
 * (hak_slab_of), with its fields on lines apart. */
_Static_assert(sizeof(hak_slab) == 256, "a slab descriptor is four cache lines");

/* A slab on its owner's full list has this bit set in `used`, so that one
 * signed test after the fast free's decrement (<= 0) catches both rare
 * cases: the slab emptied, or it leaves the full list. Only the owner
 * sets or clears it, on the full list's moves (slab.c). */
#define HAK_USED_FULL 0x80000000u
static inline bool hak_slab_in_full(const hak_slab *s) { return s->used & HAK_USED_FULL; }
/* Decrements a slab's `used`; true if the slab emptied or is on the full
 * list (the count was <= 1 as a signed value). gcc compiles the C form to a
 * load, subtract, store, test and branch; the flag output makes it one
 * subtract from memory and a branch. */
static inline bool hak_used_drop(uint32_t *used)
{
#if defined(__x86_64__) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    bool rare;
    __asm__("subl $1, %0" : "+m"(*used), "=@ccle"(rare));
    return rare;
#else
    return (int32_t)(*used)-- <= 1;
#endif
}
/* Blocks out of s. */
static inline uint32_t hak_slab_used(const hak_slab *s) { return s->used & ~HAK_USED_FULL; }

/* Header at the base of every SuperSlab, in its first page: the 16 slab
 * descriptors at offset 0, the SuperSlab's fields in the spare bytes of the
 * first one's last line. */
typedef struct hak_superslab {
    union {
        hak_slab slabs[HAK_UNITS];
        struct {
            uint8_t at_ss_fields_[offsetof(hak_slab, ss_fields_)];
            uint32_t free_units;         /* bitmap of units not in any slab (pool lock) */
            uint32_t dirty_units;        /* free units whose pages may be resident (pool lock) */
            struct hak_superslab *next, *prev;   /* pool's partial or empty list (pool lock) */
            struct hak_superslab *all_next, *all_prev;   /* every SuperSlab mapped (pool lock) */
            bool huge;                   /* MADV_HUGEPAGE asked for (pool lock) */
        };
    };
#if HAK_DEBUG
    /* one bit per block, set while the block is out: exact double-free check */
    _Atomic uint64_t out_bits[HAK_UNITS][HAK_MAX_SLAB_BLOCKS / 64];
#endif
} hak_superslab;

_Static_assert(offsetof(hak_superslab, huge) < offsetof(hak_slab, freed_ms),
               "the SuperSlab's fields fit in the first descriptor's spare bytes");

#define HAK_SS_HEADER_SIZE hak_align_up(sizeof(hak_superslab), HAK_PAGE)
/* secure build: the last page of every SuperSlab is inaccessible */
#define HAK_SS_GUARD (HAK_SECURE ? HAK_PAGE : 0)

static inline hak_slab *hak_slab_of(hak_superslab *ss, const void *p)
{
    return &ss->slabs[((uintptr_t)p & HAK_SS_MASK) >> HAK_UNIT_SHIFT];
}

static inline hak_superslab *hak_ss_of_slab(const hak_slab *s)
{
    return (hak_superslab *)((uintptr_t)s & ~HAK_SS_MASK);
}

static inline char *hak_slab_start(const hak_slab *s)
{
    return (char *)hak_ss_of_slab(s) + s->start_off;
}

/* Index in s of the block p lies in. */
static inline size_t hak_block_index(const hak_slab *s, const void *p)
{
    return (size_t)((const char *)p - hak_slab_start(s)) / s->block_size;
}

/* Where the blocks of unit u may go, and how many bytes: unit 0 starts after
 * the header, and in the secure build the last unit ends before the guard. */
static inline size_t hak_unit_offset(unsigned u)
{
    return (size_t)u * HAK_UNIT_SIZE + (u == 0 ? HAK_SS_HEADER_SIZE : 0);
}
static inline size_t hak_unit_bytes(unsigned u)
{
    return HAK_UNIT_SIZE - (u == 0 ? HAK_SS_HEADER_SIZE : 0) - (u == HAK_UNITS - 1 ? HAK_SS_GUARD : 0);
}

/* Large blocks up to this size are runs of whole units inside SuperSlabs
 * (large.c); larger ones have their own mapping. */
#define HAK_RUN_MAX        ((size_t)1 << 18)

/* The block of the run whose first unit is s, and its bytes. */
static inline char *hak_run_start(const hak_slab *s)
{
    return (char *)hak_ss_of_slab(s) + hak_unit_offset(s->unit);
}
static inline size_t hak_run_bytes(const hak_slab *s)
{
    unsigned end = (unsigned)s->unit + s->run_units;
    return (size_t)end * HAK_UNIT_SIZE - hak_unit_offset(s->unit) - (end == HAK_UNITS ? HAK_SS_GUARD : 0);
}
/* Whether p is the block of a live run that s, p's unit, belongs to. */
static inline bool hak_run_valid(const hak_slab *s, const void *p)
{
    return s->run == s->unit + 1 && s->run_units != 0 && (const char *)p == hak_run_start(s);
}

/* Header at the base of a large block's mapping. */
typedef struct hak_large {
    size_t map_size;                     /* bytes mapped, a multiple of HAK_SS_SIZE */
    size_t offset;                       /* user pointer - base; 0 while cached */
    size_t usable;                       /* bytes usable from the user pointer */
    size_t dirty_end;                    /* bytes from base the user may have written */
    int thp;                             /* huge-page advice given: 1 yes, -1 no, 0 none */
} hak_large;

/* ------------------------------------------------------------------------
 * Per-thread heap
 * ---------------------------------------------------------------------- */
typedef struct hak_slab_list { hak_slab *first; } hak_slab_list;

typedef struct hak_heap {
    hak_freelist *cur[HAK_CLASSES];      /* what the fast path pops: the foreign cache
                                            while it has blocks, else active[]'s list;
                                            the empty slab's in statistics mode */
    hak_slab *active[HAK_CLASSES];       /* slab the heap allocates from */
    hak_slab_list partial[HAK_CLASSES];  /* owned slabs with room (active among them) */
    hak_slab_list full[HAK_CLASSES];     /* owned slabs with no room when last seen */
    _Atomic(hak_slab *) spare[HAK_HEAP_SPARE]; /* empty slabs kept for any class, in the
                                            pool's state; a purge pass takes back
                                            those of an idle heap (slab.c) */
    _Atomic uint32_t spare_parks;        /* spares parked so far (owner) */
    uint32_t sweep_parks;                /* spare_parks when a purge pass last saw a
                                            change, at sweep_ms (passes only: pass lock) */
    uint64_t sweep_ms;
    hak_freelist foreign[HAK_CLASSES];   /* blocks of other heaps' slabs this thread
                                            freed, for its own mallocs (plain links);
                                            `used` counts the pops, `pushed` the
                                            pushes: pushed - used = blocks held, at
                                            most _hak_class_foreign_max */
    _Atomic(hak_block *) delayed_a;      /* blocks other threads freed into our full slabs */
    struct hak_heap *owner_tag;          /* what owned slabs store as owner: the heap, or
                                            heap+1 in statistics mode (see stats.c) */
    struct hak_heap *next_free;          /* heap pool's list of unowned heaps */
    struct hak_heap *next_all;           /* every heap ever made (for statistics) */
    uint32_t pages_held;                 /* slabs it took from the pool and has not
                                            given back itself */
    uint32_t pages_mark;                 /* pages_held that makes the next pass over
                                            the free pages inside its slabs due (slab.c) */
    uint32_t tails;                      /* slabs set up on resident units since its
                                            tails were last trimmed (slab.c) */
    bool is_empty_heap;                  /* the static heap of uninitialised threads */
    bool owned;                          /* a thread owns it (not on the free-heap list) */
    bool parked;                         /* on the free-heap list with its slabs, as its
                                            exited thread left them (heap.c; heap_lock) */
    uint64_t parked_ms;                  /* when it was parked */
    bool late;                           /* taken after its thread's exit handler ran, or
                                            without one: `alive` tells when the thread is
                                            gone (heap.c) */
    pthread_mutex_t alive;               /* robust; held by the owner of a late heap */
    bool takes_foreign;                  /* free may push into the foreign cache at once:
                                            not the empty heap, not statistics mode */
    uint64_t st_allocs[HAK_CLASSES];     /* statistics mode: counted by the owner only */
    uint64_t st_frees[HAK_CLASSES];
} hak_heap;

/* The heap a slab's owner field names (owner tags may carry bit 0). */
static inline hak_heap *hak_owner_heap(hak_heap *tag)
{
    return (hak_heap *)((uintptr_t)tag & ~(uintptr_t)1);
}

/* Make s the slab heap allocates class cls from. */
static inline void hak_heap_set_active(hak_heap *heap, unsigned cls, hak_slab *s);

/* ------------------------------------------------------------------------
 * Cross-file functions
 * ---------------------------------------------------------------------- */

/* os.c: the contract with the kernel. Each returns NULL / -1 on failure with
 * errno set, and never prints. */
void *_hak_os_map(size_t size);
void *_hak_os_map_aligned(size_t size, size_t align);
int   _hak_os_unmap(void *p, size_t size);
int   _hak_os_decommit(void *p, size_t size);
int   _hak_os_protect_none(void *p, size_t size);
void  _hak_os_huge_pages(void *p, size_t size, bool want);
void *_hak_os_remap_fixed(void *old, size_t old_size, size_t new_size, void *dest);
bool  _hak_os_grow_in_place(void *p, size_t old_size, size_t new_size);
extern _Atomic int _hak_os_fail_maps;   /* tests: make the next N mappings fail */

/* pagemap.c: which 2 MiB chunks of the address space are hakmem's. */
#define HAK_MAP_LARGE ((uintptr_t)1)    /* value tag: chunk belongs to a large block */
bool  _hak_pagemap_set(void *base, size_t size, uintptr_t value);
void  _hak_pagemap_clear(void *base, size_t size);
extern _Atomic(uintptr_t *) _hak_pagemap_root[];
#define HAK_PAGEMAP_LEAF_BITS 16
#define HAK_ADDR_BITS         47

/* Owner of the chunk holding p: the SuperSlab base, the large block's base
 * tagged HAK_MAP_LARGE, or 0 for memory hakmem does not own. Exact: never a
 * miss for hakmem's memory, never a hit for anyone else's. */
static inline uintptr_t hak_pagemap_get(const void *p)
{
    uintptr_t chunk = (uintptr_t)p >> HAK_SS_SHIFT;
    if (unlikely(chunk >> (HAK_ADDR_BITS - HAK_SS_SHIFT))) return 0;
    uintptr_t *leaf = atomic_load_explicit(&_hak_pagemap_root[chunk >> HAK_PAGEMAP_LEAF_BITS],
                                           memory_order_acquire);
    if (unlikely(leaf == NULL)) return 0;
    return __atomic_load_n(&leaf[chunk & ((1u << HAK_PAGEMAP_LEAF_BITS) - 1)], __ATOMIC_ACQUIRE);
}

/* One byte per chunk of the address space, 1 where a SuperSlab is mapped
 * (set and cleared with its pagemap entries): the free fast path's test, one
 * load and a compare where the pagemap takes two dependent loads. 64 MiB of
 * zero pages in .bss, of which a page is touched per 8 GiB of address space
 * hakmem or a freed pointer uses. */
#define HAK_CHUNKS ((uintptr_t)1 << (HAK_ADDR_BITS - HAK_SS_SHIFT))
extern uint8_t _hak_ss_chunks[HAK_CHUNKS];

/* Whether p is in a SuperSlab (not a large block, not another's memory).
 * Exact, as the pagemap is. */
static inline bool hak_in_ss(const void *p)
{
    uintptr_t chunk = (uintptr_t)p >> HAK_SS_SHIFT;
    /* Atomic (relaxed: a load and a test): a plain load would be one
     * compare with memory, but the byte may have been cleared by the unmap
     * of an earlier SuperSlab at this address in a thread with no
     * happens-before edge to this one, a data race in C11 that
     * ThreadSanitizer reports. */
    return chunk < HAK_CHUNKS && __atomic_load_n(&_hak_ss_chunks[chunk], __ATOMIC_RELAXED);
}

/* The SuperSlab of p, when hak_in_ss(p). */
static inline hak_superslab *hak_ss_of(const void *p)
{
    return (hak_superslab *)((uintptr_t)p & ~HAK_SS_MASK);
}

/* sizeclass.c */
extern uint8_t _hak_class_of_bucket[HAK_SMALL_MAX / HAK_ALIGN + 1];
extern uint32_t _hak_class_size[HAK_CLASSES];
extern uint8_t _hak_class_foreign_max[HAK_CLASSES];
void _hak_sizeclass_init(void);
unsigned _hak_class_of(size_t size);   /* computes; valid before init too */
static inline unsigned hak_class_fast(size_t size)
{
    return _hak_class_of_bucket[(size + HAK_ALIGN - 1) / HAK_ALIGN];
}

/* superslab.c: SuperSlabs and the shared pool of slabs. */
hak_slab *_hak_pool_take_slab(hak_heap *heap, unsigned cls);
void  _hak_pool_return_slab(hak_slab *s);
uint64_t _hak_pool_purge(uint64_t now, uint64_t delay_ms);
size_t _hak_pool_trim(void);
size_t _hak_pool_dirty_bytes(void);
void  _hak_pool_counts(uint64_t *mapped, uint64_t *retained);
void  _hak_pool_abandon_slab(hak_slab *s);
void  _hak_pool_pages_purged(hak_superslab *ss);
void  _hak_pool_lock(void);
void  _hak_pool_unlock(void);
void  _hak_pool_after_fork_child(void);
void  _hak_pool_orphan_slabs(hak_heap *keep);
hak_slab *_hak_pool_take_run(size_t size, bool unit_aligned, uint32_t *dirty);
bool  _hak_pool_return_run(hak_slab *s);
uint64_t _hak_pool_peak(void);
uint64_t _hak_pool_each_unit(void (*fn)(void *arg, hak_superslab *ss, unsigned unit), void *arg);

/* slab.c: the slab-level slow paths of one heap. */
void *_hak_heap_refill_alloc(hak_heap *heap, unsigned cls);
void  _hak_slab_free_slow(hak_heap *heap, hak_slab *s);
void  _hak_slab_free_remote(hak_slab *s, hak_block *first, hak_block *last, uint32_t n);
void  _hak_heap_flush_foreign(hak_heap *heap, unsigned cls);
void  _hak_heap_flush_all_foreign(hak_heap *heap);
void  _hak_slab_collect_remote(hak_slab *s);
void  _hak_slab_clear_notify(hak_slab *s);
void  _hak_heap_drain_delayed(hak_heap *heap);
void  _hak_slab_list_push(hak_slab_list *l, hak_slab *s);
void  _hak_slab_list_remove(hak_slab_list *l, hak_slab *s);
void  _hak_slab_init(hak_slab *s, hak_heap *heap, unsigned cls);
void  _hak_slab_retire(hak_slab *s);
size_t _hak_heap_return_spares(hak_heap *heap);
uint64_t _hak_heap_sweep_spares(uint64_t now, uint64_t idle_ms);
uint64_t _hak_heap_unpark_idle(uint64_t now, uint64_t idle_ms);
size_t _hak_slab_purge_pages(hak_slab *s);
bool  _hak_slab_pages_worth(const hak_slab *s, bool all);
size_t _hak_heap_purge_pages(hak_heap *heap, bool all, uint32_t *walked);
size_t _hak_heap_trim_tails(hak_heap *heap, bool all);
extern hak_slab _hak_slab_empty;

/* heap.c: per-thread heaps, process start, thread exit, fork. */
extern HAK_TLS hak_heap *_hak_tl_heap;
hak_heap *_hak_heap_first_of_all(void);
hak_heap *_hak_heap_init_thread(void);     /* NULL if out of memory */
void  _hak_heap_process_start(void);
long  _hak_heap_count(void);               /* heaps owned by threads: program threads
                                              that called into hakmem and have not ended */
void  _hak_heap_sweep_unowned(void);
void  _hak_heap_reap_late(void);
size_t _hak_heap_trim_thread(hak_heap *heap);

/* alloc.c / free.c: the front end. override.c calls these hidden names, so
 * that malloc is one direct jump into hakmem; the public hak_ names are
 * aliases of the same functions. */
void  *_hak_malloc(size_t size);
void   _hak_free(void *p);
void  *_hak_calloc(size_t count, size_t size);
void  *_hak_realloc(void *p, size_t size);
void  *_hak_reallocarray(void *p, size_t count, size_t size);
void  *_hak_aligned_alloc(size_t alignment, size_t size);
int    _hak_posix_memalign(void **out, size_t alignment, size_t size);
void  *_hak_memalign(size_t alignment, size_t size);
void  *_hak_valloc(size_t size);
void  *_hak_pvalloc(size_t size);
size_t _hak_usable_size(const void *p);
#define HAK_PUBLIC_ALIAS(pub, internal) \
    extern __typeof(internal) pub __attribute__((alias(#internal), visibility("default")))
/* A standard name (malloc, free, ...) given where its function is defined,
 * so that malloc is the implementation itself, not a jump to it. Only
 * libhakmem's copies of alloc.c and free.c are compiled with HAK_STD_NAMES;
 * the prefix libraries build the same files without it. */
#ifdef HAK_STD_NAMES
#define HAK_STD_ALIAS(pub, internal) HAK_PUBLIC_ALIAS(pub, internal)
#else
#define HAK_STD_ALIAS(pub, internal) _Static_assert(1, #pub)
#endif

/* purge.c: when free memory goes back to the OS. */
uint64_t _hak_now_ms(void);
uint64_t _hak_purge_delay_ms(void);
void  _hak_purge_note_reuse(uint64_t idle_ms);
void  _hak_purge_after_free(void);
void  _hak_purge_watch_spares(void);
void  _hak_purge_note_mapped(void);
void  _hak_purge_threads_gone(void);
void  _hak_purge_release_all(void);
void  _hak_purge_pass_lock(void);
void  _hak_purge_pass_unlock(void);
void  _hak_purge_after_fork_child(void);
int   _hak_trim(void);

/* large.c */
void  *_hak_large_alloc(size_t size, size_t align, bool zero);
uint64_t _hak_large_cache_purge(uint64_t now, uint64_t delay_ms);
size_t _hak_large_cache_bytes(void);
void   _hak_large_lock(void);
void   _hak_large_unlock(void);
void   _hak_large_after_fork_child(void);
void   _hak_large_free(hak_large *h, void *p);
void  *_hak_large_realloc(hak_large *h, void *p, size_t size);
size_t _hak_large_usable(hak_large *h, const void *p);
bool   _hak_large_valid(hak_large *h, const void *p);
void   _hak_run_free(hak_slab *s, void *p);
size_t _hak_run_usable(hak_slab *s, const void *p);
bool   _hak_run_resize(hak_slab *s, void *p, size_t size);

/* stats.c: statistics (HAKMEM_STATS=1) and the crash report. */
extern bool _hak_stats_on;
void _hak_stats_count_alloc(hak_heap *heap, unsigned cls);
void _hak_stats_count_free(hak_heap *heap, unsigned cls);
void _hak_stats_large(long long blocks, long long bytes, bool run);
size_t _hak_stats_large_mapped(void);  /* bytes of live large blocks' own mappings */
typedef struct hak_large_figures {
    uint64_t mapped, mapped_bytes;   /* large blocks with their own mapping now, its bytes */
    uint64_t peak, peak_bytes;       /* the most of each at once */
    uint64_t runs, run_bytes;        /* large blocks that are runs in SuperSlabs, their bytes */
} hak_large_figures;
void _hak_stats_large_now(hak_large_figures *out);
void _hak_stats_purged(size_t bytes);
void _hak_stats_init(void);
void _hak_crash_report_install(void);
const char *_hak_block_state(hak_slab *s, size_t index);   /* diag.c */

static inline void hak_heap_set_active(hak_heap *heap, unsigned cls, hak_slab *s)
{
    hak_slab *was = heap->active[cls];
    if (was->to_cache) was->to_cache = 0;   /* never written on the empty slab */
    heap->active[cls] = s;
    if (!_hak_stats_on) heap->cur[cls] = &s->fl;
}

/* info.c: glibc's introspection API (mallinfo2, malloc_stats, malloc_info,
 * mallopt) with hakmem's figures; override.c gives them glibc's names. */
struct mallinfo2 _hak_mallinfo2(void);
struct mallinfo _hak_mallinfo(void);
void _hak_malloc_stats(void);
int  _hak_malloc_info(int options, FILE *fp);
int  _hak_mallopt(int param, int value);

/* sized.c: free_sized and free_aligned_sized (C23), and the debug build's
 * check of a size given back (those two and C++'s sized deletes, cxx.c):
 * who names the call in the message; alignment 1 for none. */
void _hak_free_sized(void *p, size_t size);
void _hak_free_aligned_sized(void *p, size_t alignment, size_t size);
#if HAK_DEBUG
void _hak_check_size(const char *who, const void *p, size_t alignment, size_t size);
#endif
static inline void hak_dbg_sized(const char *who, const void *p, size_t alignment, size_t size)
{
#if HAK_DEBUG
    _hak_check_size(who, p, alignment, size);
#else
    (void)who; (void)p; (void)alignment; (void)size;
#endif
}

/* options.c */
enum { HAK_POLICY_ADAPTIVE, HAK_POLICY_EAGER, HAK_POLICY_LAZY };
enum { HAK_THP_AUTO, HAK_THP_ALWAYS, HAK_THP_NEVER };
typedef struct hak_options {   /* see the table in options.c */
    long free_policy;          /* HAK_POLICY_* */
    long rss_budget_kb;
    long large_cache_kb;
    long thp;                  /* HAK_THP_* */
    long ss_retain;
    long free_route_trace;
    long stats;
    long verbose;
    long crash_report;
    long purge_thread;
} hak_options;
extern hak_options _hak_opt;
void _hak_options_init(void);

/* diag.c: errors, debug checks and counters. All output goes through here. */
size_t _hak_vformat(char *buf, size_t cap, const char *fmt, va_list ap);
size_t _hak_format(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void _hak_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern volatile sig_atomic_t _hak_fatal_said;   /* a fatal error was reported */
HAK_COLD void _hak_fatal_ptr(const char *what, const void *p) __attribute__((noreturn));
HAK_COLD void _hak_fatal_block(const char *what, const void *p, size_t block_size) __attribute__((noreturn));
HAK_COLD void _hak_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));
void _hak_trace_free(const char *route, const void *p);
void _hak_glibc_free(void *p);             /* foreign-free path: glibc block or abort */
bool _hak_glibc_owns(const void *p);
size_t _hak_glibc_usable_size(void *p);
void _hak_glibc_confine(void);             /* libhakmem: glibc's malloc in its main arena */
extern bool _hak_is_malloc;
#if HAK_DEBUG
extern _Atomic long long _hak_live_blocks;
extern HAK_TLS bool _hak_dbg_internal_alloc;
void _hak_debug_on_alloc(hak_slab *s, void *p);
void _hak_debug_on_free(hak_slab *s, void *p);
void _hak_debug_fill_free(hak_slab *s, void *p);
void _hak_debug_large(void *old, size_t old_usable, void *p, size_t usable);
#endif

/* A freshly carved block gets the fill free blocks have (debug builds). */
static inline void hak_dbg_fresh(hak_slab *s, void *p)
{
#if HAK_DEBUG
    _hak_debug_fill_free(s, p);
#else
    (void)s; (void)p;
#endif
}

/* A large block handed out (old NULL), freed (p NULL), resized or moved:
 * the debug build tells valgrind. */
static inline void hak_dbg_large(void *old, size_t old_usable, void *p, size_t usable)
{
#if HAK_DEBUG
    _hak_debug_large(old, old_usable, p, usable);
#else
    (void)old; (void)old_usable; (void)p; (void)usable;
#endif
}

/* Route tracing of frees, debug builds only. */
static inline void hak_dbg_route(const char *route, const void *p)
{
#if HAK_DEBUG
    if (_hak_opt.free_route_trace) _hak_trace_free(route, p);
#else
    (void)route; (void)p;
#endif
}

/* Hooks for the debug build's bookkeeping: nothing at all in release. */
static inline void hak_dbg_alloc(hak_slab *s, void *p)
{
#if HAK_DEBUG
    _hak_debug_on_alloc(s, p);
#else
    (void)s; (void)p;
#endif
}
static inline void hak_dbg_free(hak_slab *s, void *p)
{
#if HAK_DEBUG
    _hak_debug_on_free(s, p);
#else
    (void)s; (void)p;
#endif
}
static inline void hak_dbg_count(long long delta)
{
#if HAK_DEBUG
    if (!_hak_dbg_internal_alloc)
        atomic_fetch_add_explicit(&_hak_live_blocks, delta, memory_order_relaxed);
#else
    (void)delta;
#endif
}

/* Blocks glibc takes for hakmem's own purposes (the purge thread's) are not
 * the program's: the debug build leaves them out of the live count. */
static inline void hak_dbg_internal(bool on)
{
#if HAK_DEBUG
    _hak_dbg_internal_alloc = on;
#else
    (void)on;
#endif
}


/* ------------------------------------------------------------------------
 * The two fast operations on a slab owned by the calling thread.
 * ---------------------------------------------------------------------- */

/* The link a free block holds to the next one on its slab's local list. In
 * the secure build it is stored xor-ed with a per-process secret and the
 * block's own address, and checked to land inside the carved part of the
 * same slab when read, so a forged or overwritten link stops the process
 * (forging one that passes needs the secret). */
#if HAK_SECURE
extern uintptr_t _hak_secret;
HAK_COLD void _hak_bad_link(hak_slab *s, hak_block *b) __attribute__((noreturn));
static inline void hak_link_set(hak_block *b, hak_block *next)
{
    b->next = (hak_block *)((uintptr_t)next ^ _hak_secret ^ ((uintptr_t)b >> 4));
}
static inline hak_block *hak_link_get(hak_slab *s, hak_block *b)
{
    hak_block *next = (hak_block *)((uintptr_t)b->next ^ _hak_secret ^ ((uintptr_t)b >> 4));
    if (next != NULL && (size_t)((char *)next - hak_slab_start(s)) >= (size_t)s->bump * s->block_size)
        _hak_bad_link(s, b);
    return next;
}
#else
static inline void hak_link_set(hak_block *b, hak_block *next) { b->next = next; }
static inline hak_block *hak_link_get(hak_slab *s, hak_block *b) { (void)s; return b->next; }
#endif

/* The release build's double-free check. The owner's free writes this mark
 * into the first word of every block it puts on its slab's list, and an
 * owner's free that finds it there looks whether the block is on the list
 * already (free.c): a double free stops the process, and a live block whose
 * first word merely holds the mark (copied from a free block, or never
 * written since its last free) goes on. The first word, since programs
 * write the start of what they allocate: the mark rarely survives into a
 * live block, and malloc need not clear it. A sign-extended 32-bit
 * constant: one instruction to store, two to test. The debug build checks
 * exactly instead. */
#define HAK_FREE_MARK ((uintptr_t)(intptr_t)(int32_t)0x8d4c7a93)
static inline void hak_mark_free(void *p)
{
#if HAK_FREE_MARK_ON
    ((hak_block *)p)->mark = HAK_FREE_MARK;
#else
    (void)p;
#endif
}
/* Whether p holds the mark (read on the owner's free only: see free.c). */
static inline bool hak_marked_free(const void *p)
{
#if HAK_FREE_MARK_ON
    return ((const hak_block *)p)->mark == HAK_FREE_MARK;
#else
    (void)p;
    return false;
#endif
}

/* Budget: 4 loads, 2 stores and one branch on the common path. In the
 * secure build f is always a slab's list (no foreign cache there). */
static inline void *hak_freelist_pop(hak_freelist *f)
{
    hak_block *b = f->free;
    if (unlikely(b == NULL)) return NULL;
    f->free = hak_link_get((hak_slab *)f, b);
    f->used++;
#if HAK_DEBUG
    hak_dbg_alloc(hak_slab_of((hak_superslab *)hak_pagemap_get(b), b), b);
#endif
    return b;
}

static inline void *hak_slab_pop(hak_slab *s) { return hak_freelist_pop(&s->fl); }

/* The owner gives a block back. The rare cases (slab now empty, or leaving
 * the full list) share one branch into the slow path. */
static inline void hak_slab_push_local(hak_heap *heap, hak_slab *s, void *p)
{
    hak_block *b = p;
    hak_link_set(b, s->free);
    hak_mark_free(b);
    s->free = b;
    if (unlikely(hak_used_drop(&s->used))) _hak_slab_free_slow(heap, s);
}

#pragma GCC visibility pop

#endif
