/* sizeclass.c: the size classes of the slab path (16 B to 32 KiB).
 *
 * Classes 0-7 are 16..128 in steps of 16 (16-byte alignment sets the step).
 * Above 128, each doubling [2^k, 2^(k+1)) is split into 8 classes of step
 * 2^(k-3), so a request wastes at most 12.5% of its size. 72 classes in all,
 * every one a multiple of 16.
 *
 * _hak_class_of_bucket maps (size+15)/16 to its class: the fast path's one
 * lookup. It is filled at start-up; until then every entry is class 0, whose
 * slab in the empty heap sends the request to the slow path, which computes
 * the class with _hak_class_of.
 */
#include "internal.h"

uint8_t _hak_class_of_bucket[HAK_SMALL_MAX / HAK_ALIGN + 1];
uint32_t _hak_class_size[HAK_CLASSES];
/* Most blocks of a class a heap keeps in its foreign cache: about 2 KiB of
 * them, 1 to 64 blocks. Every block held there is one its owner may carve
 * again meanwhile, so what the caches cost in memory grows with this bound
 * times the classes in use times the threads: on larson with 4 threads,
 * 8 KiB per class meant about 0.4 MiB more peak RSS than 2 KiB, at the same
 * speed. */
uint8_t _hak_class_foreign_max[HAK_CLASSES];
#define FOREIGN_CACHE_BYTES 2048
#define FOREIGN_CACHE_BLOCKS 64

static size_t size_of_class(unsigned cls)
{
    if (cls < 8) return (size_t)(cls + 1) * 16;
    unsigned k = 7 + (cls - 8) / 8;        /* class lies in (2^k, 2^(k+1)] */
    unsigned j = (cls - 8) % 8;
    return (size_t)(9 + j) << (k - 3);
}

unsigned _hak_class_of(size_t size)
{
    if (size <= 128) return size == 0 ? 0 : (unsigned)((size - 1) >> 4);
    unsigned k = 63 - (unsigned)__builtin_clzl(size - 1);  /* 2^k <= size-1 < 2^(k+1) */
    return 8 + (k - 7) * 8 + (unsigned)((size - 1) >> (k - 3)) - 8;
}

void _hak_sizeclass_init(void)
{
    for (unsigned c = 0; c < HAK_CLASSES; c++) {
        _hak_class_size[c] = (uint32_t)size_of_class(c);
        size_t n = FOREIGN_CACHE_BYTES / _hak_class_size[c];
        _hak_class_foreign_max[c] = (uint8_t)(n < 1 ? 1 : n > FOREIGN_CACHE_BLOCKS ? FOREIGN_CACHE_BLOCKS : n);
    }
    for (size_t b = 0; b <= HAK_SMALL_MAX / HAK_ALIGN; b++)
        _hak_class_of_bucket[b] = (uint8_t)_hak_class_of(b * HAK_ALIGN);
}
