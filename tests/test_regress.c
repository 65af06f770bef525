/* test_regress: the regression cases from the original hakmem's notes.
 *
 *  1. the random-mixed workload of `bench_random_mixed 25000 2048 123`
 *     (and of the benchmark's own configuration, 2000000 8192 42): a working
 *     set of slots, each cycle picks a slot at random and frees its block if
 *     it has one, else mallocs 16 + (r & 0x3FF) bytes and writes them; at
 *     the end every remaining block is freed.  Contents are verified at free.
 *  2. 50,000 and then 1,000,000 live tiny objects of 16 to 1040 bytes, each
 *     filled with a pattern, all verified, then freed in random order.
 *
 * In the debug build hakmem's count of live blocks must be back to its value
 * at the start, so a free that goes missing fails the test.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdint.h>

static void random_mixed(uint64_t cycles, size_t ws, uint64_t seed)
{
    void **slot = calloc(ws, sizeof *slot);
    size_t *size = calloc(ws, sizeof *size);
    CHECK(slot && size, "calloc of the slot arrays");
    rng_t r;
    rng_seed(&r, seed);
    uint64_t mallocs = 0, frees = 0;
    for (uint64_t i = 0; i < cycles; i++) {
        uint64_t x = rng_next(&r);
        size_t idx = (size_t)((x >> 16) % ws);
        if (slot[idx]) {
            unsigned char *p = slot[idx];
            /* first and last bytes and a word in the middle carry the key */
            CHECK(p[0] == (unsigned char)idx && p[size[idx] - 1] == (unsigned char)(idx >> 3),
                  "random_mixed(%llu,%zu,%llu): block %p of slot %zu (%zu bytes) damaged",
                  (unsigned long long)cycles, ws, (unsigned long long)seed, (void *)p, idx,
                  size[idx]);
            free(p);
            slot[idx] = NULL;
            frees++;
        } else {
            size_t sz = 16 + (size_t)(x & 0x3FF);
            unsigned char *p = malloc(sz);
            CHECK(p != NULL, "random_mixed: malloc(%zu) failed", sz);
            CHECK(owned(p) == 1, "random_mixed: malloc(%zu)=%p not hakmem's", sz, (void *)p);
            memset(p, 0xEE, sz);
            p[0] = (unsigned char)idx;
            p[sz - 1] = (unsigned char)(idx >> 3);
            slot[idx] = p;
            size[idx] = sz;
            mallocs++;
        }
    }
    for (size_t i = 0; i < ws; i++) {
        if (slot[i]) {
            unsigned char *p = slot[i];
            CHECK(p[0] == (unsigned char)i && p[size[i] - 1] == (unsigned char)(i >> 3),
                  "random_mixed: block of slot %zu damaged at the end", i);
            for (size_t b = 1; b + 1 < size[i]; b++)
                CHECK(p[b] == 0xEE, "random_mixed: block of slot %zu damaged at byte %zu", i, b);
            free(p);
            frees++;
        }
    }
    CHECK(mallocs == frees, "random_mixed bookkeeping: %llu mallocs, %llu frees",
          (unsigned long long)mallocs, (unsigned long long)frees);
    free(slot);
    free(size);
    printf("random_mixed %llu %zu %llu: ok (%llu mallocs)\n", (unsigned long long)cycles, ws,
           (unsigned long long)seed, (unsigned long long)mallocs);
}

/* n live tiny objects of 16..1040 bytes, verified, freed in random order */
static void many_live(size_t n, uint64_t seed)
{
    void **ps = malloc(n * sizeof *ps);
    uint32_t *sz = malloc(n * sizeof *sz);
    size_t *order = malloc(n * sizeof *order);
    CHECK(ps && sz && order, "malloc of the bookkeeping arrays for %zu objects", n);
    rng_t r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        sz[i] = 16 + (uint32_t)rng_below(&r, 1025);
        ps[i] = malloc(sz[i]);
        CHECK(ps[i] != NULL, "many_live(%zu): malloc(%u) number %zu failed", n, sz[i], i);
        CHECK(IS_ALIGNED(ps[i], 16), "many_live: malloc(%u)=%p not 16-byte aligned", sz[i], ps[i]);
        fill_pattern(ps[i], sz[i], i);
    }
    /* every object intact while all are live */
    for (size_t i = 0; i < n; i++) {
        size_t bad = check_pattern(ps[i], sz[i], i);
        CHECK(bad == sz[i], "many_live(%zu): object %zu (%p, %u bytes) damaged at byte %zu", n, i,
              ps[i], sz[i], bad);
    }
    /* Fisher-Yates shuffle of the freeing order */
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)rng_below(&r, i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    /* free in random order; halfway, re-verify the survivors so a free that
     * damages other blocks is caught */
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (k == n / 2) {
            for (size_t m = k; m < n; m++) {
                size_t s = order[m];
                size_t bad = check_pattern(ps[s], sz[s], s);
                CHECK(bad == sz[s], "many_live(%zu): object %zu damaged at byte %zu after half "
                      "of the frees", n, s, bad);
            }
        }
        free(ps[i]);
    }
    free(order);
    free(sz);
    free(ps);
    printf("many_live %zu: ok\n", n);
}

int main(int argc, char **argv)
{
    test_init("test_regress");
    live_begin();
    random_mixed(25000, 2048, 123);
    random_mixed(2000000, 8192, 42);
    many_live(50000, 1);
    many_live(1000000, 2);
    /* and again, to reuse the memory the first rounds released */
    many_live(1000000, 3);
    live_end("test_regress");
    printf("test_regress: ok\n");
    return 0;
}
