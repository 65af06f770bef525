/* test_thp_large: large blocks follow HAKMEM_THP (issue 13, item 4).
 *
 * With the system's transparent-huge-page mode set to `always` (root can
 * write /sys/kernel/mm/transparent_hugepage/enabled; the old mode is put
 * back in every case, by the parent, whatever the child did), a 40 KiB
 * block whose one byte is touched must not bring in a 2 MiB huge page:
 * under the default HAKMEM_THP=auto and under never. (Large blocks are
 * 2 MiB-aligned mappings of 2 MiB and had no advice: the touch faulted in
 * a huge page.) Nor a 100-byte block: a new SuperSlab is advised before
 * its header is first written, which under `always` faulted in a huge page
 * for the whole SuperSlab. Under HAKMEM_THP=always a 4 MiB block that is written whole
 * gets huge pages, so the check can see them at all. Then, with the system
 * mode `madvise` and HAKMEM_THP=auto, the 8th 7 MiB block asked for in a
 * row gets huge pages (before: none; each block faulted in 4 KiB at a
 * time), and a single 7 MiB block asked for once gets none. Where the mode cannot
 * be set the test says why and passes without checking.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>

#define THP_MODE "/sys/kernel/mm/transparent_hugepage/enabled"

/* The current mode: the word in brackets. */
static int read_mode(char *out, size_t cap)
{
    char buf[128];
    int fd = open(THP_MODE, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
    if (!a || !b || (size_t)(b - a) >= cap) return -1;
    memcpy(out, a + 1, (size_t)(b - a - 1));
    out[b - a - 1] = '\0';
    return 0;
}

static int write_mode(const char *mode)
{
    int fd = open(THP_MODE, O_WRONLY);
    if (fd < 0) return -1;
    ssize_t n = write(fd, mode, strlen(mode));
    close(fd);
    return n == (ssize_t)strlen(mode) ? 0 : -1;
}

/* AnonHugePages of the mapping that holds p, in KiB, from /proc/self/smaps. */
static long huge_kib(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL, "open smaps");
    char line[512];
    int in = 0;
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            continue;
        }
        if (in && sscanf(line, "AnonHugePages: %ld kB", &kib) == 1) break;
    }
    fclose(f);
    CHECK(kib >= 0, "no AnonHugePages line for %p", p);
    return kib;
}

/* A block of n bytes, written whole. */
static char *written_block(size_t n, const char *what)
{
    char *p = malloc(t_size(n));
    CHECK(p != NULL, "malloc(%s)", what);
    memset(p, 1, n);
    return p;
}

static void small_block(void)
{
    char *p = malloc(t_size(40 << 10));
    CHECK(p != NULL, "malloc(40 KiB)");
    p[100] = 1;
    long kib = huge_kib(p);
    CHECK(kib == 0, "a 40 KiB block with one byte touched holds %ld KiB of huge pages", kib);
    char *q = malloc(t_size(100));
    CHECK(q != NULL, "malloc(100)");
    q[0] = 1;
    kib = huge_kib(q);
    CHECK(kib == 0, "a 100-byte block holds %ld KiB of huge pages", kib);
    free(q);
    free(p);
}

static void big_block(void)
{
    char *p = written_block((size_t)4 << 20, "4 MiB");
    long kib = huge_kib(p);
    printf("HAKMEM_THP=always: a 4 MiB block written whole holds %ld KiB of huge pages\n", kib);
    CHECK(kib > 0, "HAKMEM_THP=always: no huge page in a 4 MiB block written whole");
    free(p);
}

/* System mode `madvise`, HAKMEM_THP=auto: a program that keeps asking for
 * large blocks gets huge pages for them (their 4 KiB faults cost it more
 * than its writes); one 7 MiB block asked for once does not, since it may
 * be touched sparsely. (7 MiB: its last 2 MiB chunk is more than half
 * used, which the advice needs.) */
static void busy_blocks(void)
{
    char *p[8];
    for (int i = 0; i < 8; i++) p[i] = written_block((size_t)7 << 20, "7 MiB");
    long kib = huge_kib(p[7]);
    printf("HAKMEM_THP=auto: the 8th 7 MiB block in a row holds %ld KiB of huge pages\n", kib);
    CHECK(kib > 0, "HAKMEM_THP=auto: no huge page in the 8th 7 MiB block asked for in a row");
    for (int i = 0; i < 8; i++) free(p[i]);
}

static void one_block(void)
{
    char *p = written_block((size_t)7 << 20, "7 MiB");
    long kib = huge_kib(p);
    CHECK(kib == 0, "HAKMEM_THP=auto: one 7 MiB block asked for once holds %ld KiB of huge pages", kib);
    free(p);
}

/* 0 if this program run again with `setting` in its environment and
 * argv[1] = mode passes. */
static int check_in_child(const char *setting, const char *mode)
{
    t_child r = t_rerun(mode, setting);
    if (r.err[0]) fprintf(stderr, "%s", r.err);
    return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        if (strcmp(argv[1], "small") == 0) small_block();
        else if (strcmp(argv[1], "big") == 0) big_block();
        else if (strcmp(argv[1], "busy") == 0) busy_blocks();
        else if (strcmp(argv[1], "one") == 0) one_block();
        return 0;
    }
    test_init("test_thp_large");
    char old[32];
    if (read_mode(old, sizeof old) != 0) {
        printf("test_thp_large: skipped: %s cannot be read (no transparent huge pages here)\n", THP_MODE);
        return 0;
    }
    if (write_mode("always") != 0) {
        printf("test_thp_large: skipped: %s cannot be written (not root, or read-only sysfs)\n", THP_MODE);
        return 0;
    }
    int bad = check_in_child(NULL, "small") + check_in_child("HAKMEM_THP=never", "small") +
              check_in_child("HAKMEM_THP=always", "big");
    if (write_mode("madvise") == 0) {
        bad += check_in_child(NULL, "busy") + check_in_child(NULL, "one");
    } else {
        printf("test_thp_large: the system mode madvise cannot be set: its checks skipped\n");
    }
    CHECK(write_mode(old) == 0, "could not put the THP mode back to %s", old);
    CHECK(bad == 0, "%d of 5 checks failed (see above)", bad);
    printf("test_thp_large: ok\n");
    return 0;
}
