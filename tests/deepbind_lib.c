/* deepbind_lib.c: a library that test_deepbind opens with RTLD_DEEPBIND, so
 * that its malloc, realloc and free bind to glibc's (its own dependency)
 * instead of hakmem's. */
#include <stdlib.h>

void *db_malloc(size_t n) { return malloc(n); }
void *db_realloc(void *p, size_t n) { return realloc(p, n); }
void db_free(void *p) { free(p); }
