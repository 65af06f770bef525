/* vg_client: run under valgrind with the debug build preloaded (see
 * tests/run.sh). hakmem's debug build describes its blocks to memcheck, so
 * valgrind must report the read after free below and the leaked block, as it
 * would with glibc's malloc, and nothing else: no errors from hakmem's own
 * reads of free blocks, none for calloc or realloc'd memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    char *volatile leak = malloc(100);
    leak[0] = 1;
    leak = NULL;                            /* 1: a block lost */

    char *p = malloc(64);
    strcpy(p, "hello");
    free(p);
    volatile char c = ((char *volatile)p)[10];   /* 2: a read after free */
    (void)c;

    char *q = malloc(200000);               /* large: grown by realloc, contents read */
    memset(q, 1, 200000);
    q = realloc(q, 4 << 20);
    q[(4 << 20) - 1] = 2;
    int sum = q[0] + q[199999];
    free(q);

    char *r = calloc(10, 10);               /* calloc'd memory is defined */
    for (int i = 0; i < 100; i++) sum += r[i];
    free(r);
    char *s = malloc(50);                   /* a small block moved by realloc */
    memset(s, 3, 50);
    s = realloc(s, 5000);
    sum += s[49];
    free(s);
    printf("vg_client: sum %d\n", sum);
    return 0;
}
