/* stats.c: statistics and the crash report.
 *
 * Statistics mode (HAKMEM_STATS=1) costs the fast paths nothing when it is
 * off: when it is on, every heap keeps its fast-path slabs empty (so each
 * malloc takes the slow path) and tags the slabs it owns with heap+1 (so each
 * free misses the owner compare and takes the remote path), and those paths
 * count. Per-class allocs and frees are per-heap, non-atomic, folded on
 * demand over every heap; live and peak are process-wide atomics.
 *
 * The crash report (HAKMEM_CRASH_REPORT=1, the default, in every build): a
 * SIGSEGV, SIGBUS or SIGABRT handler that says what hakmem knows of the fault
 * address, with async-signal-safe calls only, and then hands the signal to
 * the handler installed before it, or to the default action, so the exit
 * status and core dump are what they would have been.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

bool _hak_stats_on;

static _Atomic uint64_t orphan_frees[HAK_CLASSES];   /* frees by threads with no heap */
static _Atomic int64_t class_live[HAK_CLASSES];
static _Atomic int64_t class_peak[HAK_CLASSES];
/* Large blocks with their own mapping (map_) and runs inside SuperSlabs
 * (run_), whose bytes count among the SuperSlabs' already. */
static _Atomic int64_t map_live, map_bytes, run_live, run_bytes;
static _Atomic uint64_t large_allocs, purged_bytes;
static _Atomic int64_t map_peak, map_peak_bytes;   /* the most own mappings at once */

static void raise_peak(_Atomic int64_t *peak, int64_t now)
{
    int64_t was = atomic_load_explicit(peak, memory_order_relaxed);
    while (now > was && !atomic_compare_exchange_weak_explicit(peak, &was, now, memory_order_relaxed,
                                                               memory_order_relaxed)) {
    }
}

static void bump(uint64_t *counter)
{
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void _hak_stats_count_alloc(hak_heap *heap, unsigned cls)
{
    bump(&heap->st_allocs[cls]);
    int64_t live = atomic_fetch_add_explicit(&class_live[cls], 1, memory_order_relaxed) + 1;
    int64_t peak = atomic_load_explicit(&class_peak[cls], memory_order_relaxed);
    while (live > peak && !atomic_compare_exchange_weak(&class_peak[cls], &peak, live)) {
    }
}

void _hak_stats_count_free(hak_heap *heap, unsigned cls)
{
    if (heap->is_empty_heap) atomic_fetch_add_explicit(&orphan_frees[cls], 1, memory_order_relaxed);
    else bump(&heap->st_frees[cls]);
    atomic_fetch_sub_explicit(&class_live[cls], 1, memory_order_relaxed);
}

/* run: the block is a run of units inside a SuperSlab. */
void _hak_stats_large(long long blocks, long long bytes, bool run)
{
    if (blocks > 0) atomic_fetch_add_explicit(&large_allocs, 1, memory_order_relaxed);
    if (run) {
        atomic_fetch_add_explicit(&run_live, blocks, memory_order_relaxed);
        atomic_fetch_add_explicit(&run_bytes, bytes, memory_order_relaxed);
        return;
    }
    int64_t live = atomic_fetch_add_explicit(&map_live, blocks, memory_order_relaxed) + blocks;
    int64_t mapped = atomic_fetch_add_explicit(&map_bytes, bytes, memory_order_relaxed) + bytes;
    if (bytes > 0) {
        raise_peak(&map_peak, live);
        raise_peak(&map_peak_bytes, mapped);
    }
}

static uint64_t positive(_Atomic int64_t *v)
{
    int64_t n = atomic_load_explicit(v, memory_order_relaxed);
    return n > 0 ? (uint64_t)n : 0;
}

void _hak_stats_large_now(hak_large_figures *out)
{
    out->mapped = positive(&map_live);
    out->mapped_bytes = positive(&map_bytes);
    out->peak = positive(&map_peak);
    out->peak_bytes = positive(&map_peak_bytes);
    out->runs = positive(&run_live);
    out->run_bytes = positive(&run_bytes);
}

size_t _hak_stats_large_mapped(void)
{
    return (size_t)positive(&map_bytes);
}

void _hak_stats_purged(size_t bytes)
{
    atomic_fetch_add_explicit(&purged_bytes, bytes, memory_order_relaxed);
}

/* ---- reading them ------------------------------------------------------------ */

/* Resident and peak resident bytes, from /proc (no allocation). */
static void read_rss(uint64_t *rss, uint64_t *peak)
{
    *rss = *peak = 0;
    char buf[4096];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n > 0) {
            buf[n] = '\0';
            const char *p = strchr(buf, ' ');
            if (p) *rss = strtoull(p + 1, NULL, 10) * (uint64_t)HAK_PAGE;
        }
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) *peak = (uint64_t)ru.ru_maxrss * 1024;
    if (*peak < *rss) *peak = *rss;
}

int hak_stats_get(struct hak_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->counting = _hak_stats_on;
    out->n_classes = HAK_CLASSES;
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        struct hak_class_stats *cs = &out->classes[c];
        cs->block_size = _hak_class_size[c];
        cs->frees = atomic_load_explicit(&orphan_frees[c], memory_order_relaxed);
        for (hak_heap *h = _hak_heap_first_of_all(); h; h = h->next_all) {
            cs->allocs += __atomic_load_n(&h->st_allocs[c], __ATOMIC_RELAXED);
            cs->frees += __atomic_load_n(&h->st_frees[c], __ATOMIC_RELAXED);
        }
        int64_t live = atomic_load_explicit(&class_live[c], memory_order_relaxed);
        cs->live = live > 0 ? (uint64_t)live : 0;
        cs->peak = (uint64_t)atomic_load_explicit(&class_peak[c], memory_order_relaxed);
    }
    _hak_pool_counts(&out->superslabs_mapped, &out->superslabs_retained);
    out->bytes_purged = atomic_load_explicit(&purged_bytes, memory_order_relaxed);
    out->large_live = positive(&map_live) + positive(&run_live);
    out->large_live_bytes = positive(&map_bytes) + positive(&run_bytes);
    out->large_allocs = atomic_load_explicit(&large_allocs, memory_order_relaxed);
    out->large_cached_bytes = _hak_large_cache_bytes();
    read_rss(&out->rss_bytes, &out->rss_peak_bytes);
    return 0;
}

/* Writes the summary line by line through emit (stdio or a raw fd). */
static void print_summary(void (*emit)(void *, const char *, size_t), void *arg)
{
    static struct hak_stats st;   /* large; summaries are rare, not concurrent */
    char line[256];
    hak_stats_get(&st);
#define LINE(...) emit(arg, line, _hak_format(line, sizeof(line), __VA_ARGS__))
    LINE("hakmem statistics\n");
    if (st.counting) {
        LINE("  class   block      allocs       frees        live        peak\n");
        for (unsigned c = 0; c < st.n_classes; c++) {
            struct hak_class_stats *cs = &st.classes[c];
            if (cs->allocs == 0 && cs->frees == 0) continue;
            LINE("  %u\t%zu\t%llu\t%llu\t%llu\t%llu\n", c, cs->block_size, (unsigned long long)cs->allocs,
                 (unsigned long long)cs->frees, (unsigned long long)cs->live, (unsigned long long)cs->peak);
        }
    } else {
        LINE("  per-class counts: off (run with HAKMEM_STATS=1)\n");
    }
    LINE("  superslabs: %llu mapped, %llu retained empty\n", (unsigned long long)st.superslabs_mapped,
         (unsigned long long)st.superslabs_retained);
    LINE("  purged: %llu KiB given back to the OS\n", (unsigned long long)(st.bytes_purged / 1024));
    LINE("  large blocks: %llu live (%llu KiB), %llu allocated in all, %llu KiB cached\n",
         (unsigned long long)st.large_live, (unsigned long long)(st.large_live_bytes / 1024),
         (unsigned long long)st.large_allocs, (unsigned long long)(st.large_cached_bytes / 1024));
    LINE("  rss: %llu KiB now, %llu KiB peak\n", (unsigned long long)(st.rss_bytes / 1024),
         (unsigned long long)(st.rss_peak_bytes / 1024));
#undef LINE
}

static void emit_file(void *f, const char *s, size_t n)
{
    fwrite(s, 1, n, f);
}

static void emit_fd(void *fd, const char *s, size_t n)
{
    ssize_t r = write((int)(intptr_t)fd, s, n);
    (void)r;
}

void hak_stats_print(FILE *out)
{
    print_summary(emit_file, out);
    fflush(out);
}

__attribute__((destructor)) static void stats_at_exit(void)
{
    if (_hak_opt.stats) print_summary(emit_fd, (void *)(intptr_t)STDERR_FILENO);
}

/* ---- the crash report ------------------------------------------------------ */

static const int crash_signals[] = { SIGSEGV, SIGBUS, SIGABRT };
static struct sigaction previous[3];

static int signal_slot(int sig)
{
    for (int i = 0; i < 3; i++)
        if (crash_signals[i] == sig) return i;
    return -1;
}

/* What hakmem knows of addr: one line. */
static void describe_address(const void *addr)
{
    uintptr_t v = hak_pagemap_get(addr);
    if (v == 0) {
        _hak_say("fault address %p is not in hakmem's memory", addr);
        return;
    }
    if (v & HAK_MAP_LARGE) {
        hak_large *h = (hak_large *)(v & ~HAK_MAP_LARGE);
        if (h->offset == 0)
            _hak_say("fault address %p is in a freed large block (mapping %p, cached for reuse)", addr, (void *)h);
        else
            _hak_say("fault address %p is in large block %p (%zu usable bytes, mapping %p of %zu bytes)", addr,
                     (void *)((char *)h + h->offset), h->usable, (void *)h, h->map_size);
        return;
    }
    hak_superslab *ss = (hak_superslab *)v;
    size_t unit = ((uintptr_t)addr & HAK_SS_MASK) >> HAK_UNIT_SHIFT;
    hak_slab *s = hak_slab_of(ss, addr);
    /* the slab may change class or retire meanwhile: each field read once */
    uint32_t bs = __atomic_load_n(&s->block_size, __ATOMIC_RELAXED);
    const char *start = (const char *)ss + __atomic_load_n(&s->start_off, __ATOMIC_RELAXED);
    uint8_t run = __atomic_load_n(&s->run, __ATOMIC_RELAXED);
    if (bs == 0 && run != 0 && run <= HAK_UNITS) {
        hak_slab *first = &ss->slabs[run - 1];
        _hak_say("fault address %p is in large block %p (a run of %u units of SuperSlab %p, %u usable bytes)",
                 addr, (void *)hak_run_start(first), (unsigned)__atomic_load_n(&first->run_units, __ATOMIC_RELAXED),
                 (void *)ss, (unsigned)__atomic_load_n(&first->run_usable, __ATOMIC_RELAXED));
        return;
    }
    if (bs == 0 || (const char *)addr < start) {
        _hak_say("fault address %p is in SuperSlab %p, unit %zu, %s", addr, (void *)ss, unit,
                 (const char *)addr < (const char *)ss + HAK_SS_HEADER_SIZE ? "its header" : "not in use by any slab");
        return;
    }
    size_t index = (size_t)((const char *)addr - start) / bs;
    const char *block = start + index * bs;
    const char *state = index >= s->capacity ? "past the slab's last block"
                      : index >= s->bump ? "never handed out"
                      : _hak_block_state(s, index);
    _hak_say("fault address %p is in SuperSlab %p, slab at unit %u, size class %u (%u bytes), block %p (+%zu): %s",
             addr, (void *)ss, s->unit, s->cls, bs, (const void *)block,
             (size_t)((const char *)addr - block), state);
}

static void crash_handler(int sig, siginfo_t *si, void *uc)
{
    int saved = errno;   /* the interrupted code, or the next handler, sees its own */
    int slot = signal_slot(sig);
    const char *name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGBUS ? "SIGBUS" : "SIGABRT";
    if (!(sig == SIGABRT && _hak_fatal_said)) {   /* hakmem's own abort said it all */
        if (sig == SIGABRT) _hak_say("crash report: %s", name);
        else _hak_say("crash report: %s at address %p", name, si->si_addr);
        if (sig != SIGABRT) describe_address(si->si_addr);
        uint64_t mapped, retained;
        _hak_pool_counts(&mapped, &retained);
        _hak_say("crash report: %llu SuperSlabs mapped, %lld large blocks live, %llu KiB purged so far",
                 (unsigned long long)mapped, (long long)(atomic_load(&map_live) + atomic_load(&run_live)),
                 (unsigned long long)(atomic_load(&purged_bytes) / 1024));
    }

    /* hand over: to the handler before ours, or to the default action */
    struct sigaction *prev = &previous[slot];
    if (prev->sa_flags & SA_SIGINFO) {
        sigaction(sig, prev, NULL);
        errno = saved;
        prev->sa_sigaction(sig, si, uc);
        return;
    }
    if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        sigaction(sig, prev, NULL);
        errno = saved;
        prev->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
    if (sig == SIGABRT || si->si_code <= 0) raise(sig);   /* sent, not a fault: send again */
    /* a fault: returning re-runs the instruction, which faults under SIG_DFL */
    errno = saved;
}

/* Installed by libhakmem (override.c), never by the prefix library, which
 * leaves the process's signals alone. SA_ONSTACK: on the thread's
 * alternate stack if it has one, so a stack overflow is reported too. */
void _hak_crash_report_install(void)
{
    if (!_hak_opt.crash_report) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaction(crash_signals[i], &sa, &previous[i]);
}

void _hak_stats_init(void)
{
    _hak_stats_on = _hak_opt.stats != 0;
}
