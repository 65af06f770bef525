/* superslab.c: SuperSlabs and the shared pool of slabs.
 *
 * A SuperSlab is a 2 MiB-aligned mapping of 32 units of 64 KiB. Its header
 * (the hak_superslab struct) sits in the first page(s) of unit 0, so the slab
 * starting at unit 0 is shorter than the others. A slab is 1 unit (tiny
 * classes, <= 1 KiB) or 8 aligned units (mid classes, <= 32 KiB).
 *
 * The pool hands slabs to heaps and takes them back when they are empty; a
 * returned slab can then serve any class. It also keeps the slabs abandoned
 * by exited threads, per class, until a live thread adopts them. Everything
 * here runs under one lock, on the slow path only: a heap comes here once per
 * slab, not per block.
 *
 * Lists (all under pool_lock): ss_partial holds SuperSlabs with some units
 * free and some in use; ss_empty holds wholly free ones, at most
 * HAKMEM_SS_RETAIN of them; a SuperSlab with no free unit is on no list.
 */
#include <pthread.h>
#include <string.h>

#include "internal.h"

#define ALL_UNITS 0xFFFFFFFFu

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_superslab *ss_partial;
static hak_superslab *ss_empty;
static long ss_empty_count;
static hak_slab_list abandoned[HAK_CLASSES];

void _hak_pool_lock(void) { pthread_mutex_lock(&pool_lock); }
void _hak_pool_unlock(void) { pthread_mutex_unlock(&pool_lock); }
void _hak_pool_after_fork_child(void) { pthread_mutex_init(&pool_lock, NULL); }

/* ---- SuperSlab lists ------------------------------------------------- */

static void ss_push(hak_superslab **list, hak_superslab *ss)
{
    ss->prev = NULL;
    ss->next = *list;
    if (*list) (*list)->prev = ss;
    *list = ss;
}

static void ss_remove(hak_superslab **list, hak_superslab *ss)
{
    if (ss->prev) ss->prev->next = ss->next;
    else *list = ss->next;
    if (ss->next) ss->next->prev = ss->prev;
    ss->next = ss->prev = NULL;
}

static hak_superslab *ss_map(void)
{
    hak_superslab *ss = _hak_os_map_aligned(HAK_SS_SIZE, HAK_SS_SIZE);
    if (ss == NULL) return NULL;
    if (!_hak_pagemap_set(ss, HAK_SS_SIZE, (uintptr_t)ss)) {
        _hak_os_unmap(ss, HAK_SS_SIZE);
        return NULL;
    }
    ss->free_units = ALL_UNITS;   /* the rest of the header is zero from mmap */
    for (unsigned u = 0; u < HAK_UNITS; u++) ss->head[u] = (uint8_t)u;
    return ss;
}

static void ss_unmap(hak_superslab *ss)
{
    _hak_pagemap_clear(ss, HAK_SS_SIZE);
    _hak_os_unmap(ss, HAK_SS_SIZE);
}

/* ---- taking and returning slabs -------------------------------------- */

/* First unit of a free run of `span` units (aligned to span), or -1. */
static int find_units(uint32_t free_units, unsigned span)
{
    if (span == 1) return free_units ? __builtin_ctz(free_units) : -1;
    for (unsigned u = 0; u < HAK_UNITS; u += span) {
        uint32_t mask = ((1u << span) - 1) << u;
        if ((free_units & mask) == mask) return (int)u;
    }
    return -1;
}

static hak_slab *claim_units(hak_superslab *ss, int unit, unsigned span)
{
    uint32_t was = ss->free_units;
    ss->free_units &= ~(((1u << span) - 1) << unit);
    if (was == ALL_UNITS) {
        ss_remove(&ss_empty, ss);
        ss_empty_count--;
        ss_push(&ss_partial, ss);
    }
    if (ss->free_units == 0) ss_remove(&ss_partial, ss);
    for (unsigned u = 0; u < span; u++) ss->head[unit + u] = (uint8_t)unit;
    hak_slab *s = &ss->slabs[unit];
    s->unit = (uint8_t)unit;
    s->span = (uint8_t)span;
    return s;
}

static hak_slab *take_units_locked(unsigned span)
{
    for (hak_superslab *ss = ss_partial; ss; ss = ss->next) {
        int u = find_units(ss->free_units, span);
        if (u >= 0) return claim_units(ss, u, span);
    }
    if (ss_empty) return claim_units(ss_empty, 0, span);
    return NULL;
}

/* Give a slab's units back; returns a SuperSlab to unmap once unlocked. */
static hak_superslab *release_units_locked(hak_slab *s)
{
    hak_superslab *ss = hak_ss_of_slab(s);
    uint32_t was = ss->free_units;
    s->block_size = 0;
    s->free = NULL;
    atomic_store_explicit(&s->owner_a, NULL, memory_order_relaxed);
    ss->free_units |= ((1u << s->span) - 1) << s->unit;
    for (unsigned u = s->unit; u < s->unit + s->span; u++) ss->head[u] = (uint8_t)u;
    if (was == 0) ss_push(&ss_partial, ss);
    if (ss->free_units != ALL_UNITS) return NULL;
    ss_remove(&ss_partial, ss);
    if (ss_empty_count < _hak_opt.ss_retain) {
        ss_push(&ss_empty, ss);
        ss_empty_count++;
        return NULL;
    }
    return ss;
}

/* Collect what other threads freed into abandoned slabs and give the empty
 * ones back, so memory of exited threads returns to the pool. */
static hak_superslab *sweep_abandoned_locked(void)
{
    hak_superslab *to_unmap = NULL;
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        hak_slab *s = abandoned[c].first;
        while (s) {
            hak_slab *next = s->next;
            _hak_slab_collect_remote(s);
            if (s->used == 0) {
                _hak_slab_list_remove(&abandoned[c], s);
                hak_superslab *ss = release_units_locked(s);
                if (ss) {           /* unmap later, outside the lock */
                    ss->next = to_unmap;
                    to_unmap = ss;
                }
            }
            s = next;
        }
    }
    return to_unmap;
}

static void unmap_list(hak_superslab *ss)
{
    while (ss) {
        hak_superslab *next = ss->next;
        ss_unmap(ss);
        ss = next;
    }
}

/* A slab for class cls owned by heap: an abandoned one of that class if any
 * (its blocks still out stay counted in used), else fresh units. NULL when
 * out of memory. */
hak_slab *_hak_pool_take_slab(hak_heap *heap, unsigned cls)
{
    unsigned span = hak_class_span(cls);
    hak_slab *s;
    _hak_pool_lock();
    s = abandoned[cls].first;
    if (s) {
        _hak_slab_list_remove(&abandoned[cls], s);
        atomic_store_explicit(&s->owner_a, heap, memory_order_release);
        _hak_pool_unlock();
        return s;
    }
    s = take_units_locked(span);
    _hak_pool_unlock();
    if (s == NULL) {
        /* Before mapping more, reclaim what exited threads left behind. */
        _hak_heap_sweep_unowned();
        _hak_pool_lock();
        hak_superslab *dead = sweep_abandoned_locked();
        s = take_units_locked(span);
        _hak_pool_unlock();
        unmap_list(dead);
        while (s == NULL) {
            hak_superslab *ss = ss_map();
            if (ss == NULL) return NULL;
            _hak_pool_lock();
            ss_push(&ss_empty, ss);
            ss_empty_count++;
            s = take_units_locked(span);
            _hak_pool_unlock();
        }
    }
    hak_superslab *ss = hak_ss_of_slab(s);
    size_t off = s->unit == 0 ? HAK_SS_HEADER_SIZE : 0;
    _hak_slab_init(s, heap, cls, (char *)ss + (size_t)s->unit * HAK_UNIT_SIZE + off,
                   (size_t)s->span * HAK_UNIT_SIZE - off);
    return s;
}

/* An empty slab (used == 0, on no heap list) goes back to the pool. */
void _hak_pool_return_slab(hak_slab *s)
{
    _hak_pool_lock();
    hak_superslab *dead = release_units_locked(s);
    _hak_pool_unlock();
    if (dead) ss_unmap(dead);
}

/* A slab with blocks still out whose owner thread exits. */
void _hak_pool_abandon_slab(hak_slab *s)
{
    _hak_pool_lock();
    atomic_store_explicit(&s->owner_a, NULL, memory_order_release);
    _hak_slab_list_push(&abandoned[s->cls], s);
    _hak_pool_unlock();
}
