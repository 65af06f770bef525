/* unit_options.c: the HAKMEM_* options as read at start-up (src/options.c).
 *
 * The test includes src/options.c itself, so it walks the very table the
 * library is built from (every option there, also those added later) and
 * sees the values in force. Each case re-runs this program (/proc/self/exe
 * --child) with one environment; the child allocates and checks its memory,
 * then prints every option's value. Asserted, for every option:
 *   - no HAKMEM_ variable: no output on stderr, every option at its default;
 *   - good values (min, max, a middle value; every accepted word) are taken;
 *   - bad values (not a number, empty, trailing junk, out of range, overflow;
 *     an unknown word): exactly one line on stderr, naming the
 *     variable, the value, what is accepted and the default; the default is
 *     used, the other options are untouched, the program runs correctly;
 *   - unknown names (a known name with a letter added, dropped or changed at
 *     the end): one line naming the variable and the nearest known name; a
 *     name near none: one line naming it (a suggestion is optional);
 *     variables that only look alike (HAKMEMX_..., lower case) are ignored.
 *
 *   unit_options           run the test
 *   unit_options --dump    print the table, one option a line, tab-separated:
 *                          NAME DEFAULT MIN MAX WORDS DOC (DEFAULT is the
 *                          word for word options; WORDS is "-" or the words
 *                          joined by ","); used by tests/test_options_doc.sh
 */
#define _GNU_SOURCE
#include "options.c"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_OPTS (sizeof(options) / sizeof(options[0]))

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("unit_options: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* the default as the user writes it: the word, or the number */
static void default_text(const option_desc *o, char *buf, size_t n)
{
    if (o->words) snprintf(buf, n, "%s", o->words[o->def]);
    else snprintf(buf, n, "%ld", o->def);
}

static int dump(void)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        const option_desc *o = &options[i];
        char def[64];
        default_text(o, def, sizeof def);
        printf("%s\t%s\t%ld\t%ld\t", o->name, def, o->min, o->max);
        if (o->words) {
            for (long w = 0; o->words[w]; w++) printf("%s%s", w ? "," : "", o->words[w]);
        } else {
            printf("-");
        }
        printf("\t%s\n", o->doc);
    }
    return 0;
}

/* ---- the child: run correctly, then show the options in force ----------- */

static int child(void)
{
    enum { N = 1000 };
    static unsigned char *p[N];
    static size_t len[N];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            len[i] = (size_t)((i * 7919 + round * 131) % (i % 100 == 0 ? 100000 : 3000)) + 1;
            p[i] = malloc(len[i]);
            if (p[i] == NULL) {
                printf("malloc(%zu) failed\n", len[i]);
                return 1;
            }
            memset(p[i], (i + round) & 0xff, len[i]);
        }
        for (int i = 0; i < N; i += 3) {
            unsigned char *q = realloc(p[i], len[i] * 2);
            if (q == NULL) {
                printf("realloc failed\n");
                return 1;
            }
            p[i] = q;
        }
        for (int i = 0; i < N; i++) {
            for (size_t k = 0; k < len[i]; k += 97)
                if (p[i][k] != ((i + round) & 0xff)) {
                    printf("block %d corrupted\n", i);
                    return 1;
                }
            free(p[i]);
        }
    }
    for (size_t i = 0; i < N_OPTS; i++) printf("%s=%ld\n", options[i].name, *options[i].value);
    printf("done\n");
    return 0;
}

/* ---- the parent ------------------------------------------------------------ */

typedef struct {
    int status;             /* exit status, or -1 if it did not exit */
    char out[8192];
    char err[8192];
    long value[64];         /* each option's value, as the child printed it */
    bool have[64];
} run_result;

static void slurp(int fd, char *buf, size_t n)
{
    size_t len = 0;
    lseek(fd, 0, SEEK_SET);
    for (;;) {
        ssize_t r = read(fd, buf + len, n - 1 - len);
        if (r <= 0) break;
        len += (size_t)r;
        if (len == n - 1) break;
    }
    buf[len] = '\0';
    close(fd);
}

/* runs the child with the parent's environment minus every HAKMEM_ variable,
 * plus the NULL-terminated list vars */
static void run_child(const char *const *vars, run_result *r)
{
    extern char **environ;
    static char *env[4096];
    size_t n = 0;
    for (char **e = environ; *e && n < 4000; e++)
        if (strncmp(*e, "HAKMEM_", 7) != 0) env[n++] = *e;
    for (size_t i = 0; vars[i]; i++) env[n++] = (char *)vars[i];
    env[n] = NULL;

    char out_name[] = "/tmp/unit_options.out.XXXXXX", err_name[] = "/tmp/unit_options.err.XXXXXX";
    int out = mkstemp(out_name), err = mkstemp(err_name);
    if (out < 0 || err < 0) {
        perror("mkstemp");
        exit(2);
    }
    unlink(out_name);
    unlink(err_name);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        char *argv[] = { "unit_options", "--child", NULL };
        execve("/proc/self/exe", argv, env);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
    memset(r->have, 0, sizeof r->have);
    for (const char *line = r->out; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        for (size_t i = 0; i < N_OPTS; i++) {
            size_t n = strlen(options[i].name);
            if (strncmp(line, options[i].name, n) == 0 && line[n] == '=') {
                r->value[i] = strtol(line + n + 1, NULL, 10);
                r->have[i] = true;
            }
        }
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        if (*s == '\n') n++;
    return n;
}

/* s contains word as a whole name (not followed by another name character) */
static bool has_name(const char *s, const char *word)
{
    size_t n = strlen(word);
    for (const char *at = strstr(s, word); at; at = strstr(at + 1, word)) {
        char c = at[n];
        bool more = (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        char b = at == s ? ' ' : at[-1];
        bool before = (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') || b == '_';
        if (!more && !before) return true;
    }
    return false;
}

/* the child ran correctly and printed every option */
static bool ran_ok(const char *what, const run_result *r)
{
    if (r->status != 0 || strstr(r->out, "\ndone\n") == NULL) {
        fail("%s: the program did not run correctly (status %d): %s%s", what, r->status, r->out, r->err);
        return false;
    }
    for (size_t i = 0; i < N_OPTS; i++)
        if (!r->have[i]) {
            fail("%s: the child did not print %s", what, options[i].name);
            return false;
        }
    return true;
}

static long baseline[64];

/* every option but `except` is at its baseline value */
static void others_untouched(const char *what, const run_result *r, size_t except)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (i != except && r->value[i] != baseline[i])
            fail("%s: HAKMEM_%s changed to %ld (default %ld)", what, options[i].name, r->value[i], baseline[i]);
}

static void case_default(void)
{
    const char *vars[] = { NULL };
    run_result r;
    run_child(vars, &r);
    if (!ran_ok("no HAKMEM_ variable", &r)) exit(1);
    if (r.err[0]) fail("no HAKMEM_ variable: output on stderr: %s", r.err);
    for (size_t i = 0; i < N_OPTS; i++) {
        baseline[i] = r.value[i];
        if (r.value[i] != options[i].def)
            fail("no HAKMEM_ variable: HAKMEM_%s is %ld, its default is %ld", options[i].name, r.value[i],
                 options[i].def);
    }
}

static void case_good(size_t i, const char *value, long expect)
{
    char var[256], what[300];
    snprintf(var, sizeof var, "HAKMEM_%s=%s", options[i].name, value);
    snprintf(what, sizeof what, "%s (good)", var);
    const char *vars[] = { var, NULL };
    run_result r;
    run_child(vars, &r);
    if (!ran_ok(what, &r)) return;
    if (r.value[i] != expect) fail("%s: the value in force is %ld, not %ld", what, r.value[i], expect);
    others_untouched(what, &r, i);
}

static void case_bad(size_t i, const char *value)
{
    const option_desc *o = &options[i];
    char var[256], what[300], name[80], def[64];
    snprintf(name, sizeof name, "HAKMEM_%s", o->name);
    snprintf(var, sizeof var, "%s=%s", name, value);
    snprintf(what, sizeof what, "%s (bad)", var);
    const char *vars[] = { var, NULL };
    run_result r;
    run_child(vars, &r);
    if (!ran_ok(what, &r)) return;
    if (r.value[i] != o->def) fail("%s: the value in force is %ld, not the default %ld", what, r.value[i], o->def);
    others_untouched(what, &r, i);
    /* one line, "hakmem: ...", naming the variable, the value (bare or
     * quoted), what is accepted and the default */
    if (count_lines(r.err) != 1 || strncmp(r.err, "hakmem: ", 8) != 0) {
        fail("%s: expected one line from hakmem on stderr, got: \"%s\"", what, r.err);
        return;
    }
    char bare[300], dq[300], sq[300];
    snprintf(bare, sizeof bare, "%s=%s", name, value);
    snprintf(dq, sizeof dq, "%s=\"%s\"", name, value);
    snprintf(sq, sizeof sq, "%s='%s'", name, value);
    if (!strstr(r.err, dq) && !strstr(r.err, sq) && !(value[0] && strstr(r.err, bare)))
        fail("%s: the warning does not show the variable and its value: %s", what, r.err);
    if (o->words) {
        for (long w = 0; o->words[w]; w++)
            if (!strstr(r.err, o->words[w]))
                fail("%s: the warning does not list the accepted word %s: %s", what, o->words[w], r.err);
    } else {
        char lo[32], hi[32];
        snprintf(lo, sizeof lo, "%ld", o->min);
        snprintf(hi, sizeof hi, "%ld", o->max);
        if (!strstr(r.err, lo) || !strstr(r.err, hi))
            fail("%s: the warning does not give the range %s .. %s: %s", what, lo, hi, r.err);
    }
    default_text(o, def, sizeof def);
    const char *d = strstr(r.err, "default");
    if (d == NULL || !strstr(d, def))
        fail("%s: the warning does not say the default, %s: %s", what, def, r.err);
}

static size_t test_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[128];
    if (lb >= 128) return 1000;
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static bool is_option(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(options[i].name, name) == 0) return true;
    return false;
}

/* HAKMEM_<typo>=1, where typo is close to option `near`: one line naming
 * both, and nothing changes; near = SIZE_MAX: close to none, so the line
 * need only name the variable */
static void case_unknown(const char *typo, size_t near)
{
    char var[256], what[300], full[200];
    snprintf(full, sizeof full, "HAKMEM_%s", typo);
    snprintf(var, sizeof var, "%s=1", full);
    snprintf(what, sizeof what, "%s (unknown name)", var);
    const char *vars[] = { var, NULL };
    run_result r;
    run_child(vars, &r);
    if (!ran_ok(what, &r)) return;
    others_untouched(what, &r, SIZE_MAX);
    if (count_lines(r.err) != 1 || strncmp(r.err, "hakmem: ", 8) != 0) {
        fail("%s: expected one line from hakmem on stderr, got: \"%s\"", what, r.err);
        return;
    }
    if (!has_name(r.err, full)) fail("%s: the warning does not name %s: %s", what, full, r.err);
    if (near != SIZE_MAX) {
        char want[80];
        snprintf(want, sizeof want, "HAKMEM_%s", options[near].name);
        if (!has_name(r.err, want)) fail("%s: the warning does not suggest %s: %s", what, want, r.err);
    }
}

/* a typo of option i, if that option is clearly the nearest name to it */
static void typo_case(size_t i, const char *typo)
{
    if (typo[0] == '\0' || is_option(typo)) return;
    size_t d = test_distance(typo, options[i].name);
    for (size_t j = 0; j < N_OPTS; j++)
        if (j != i && test_distance(typo, options[j].name) <= d) return;
    case_unknown(typo, i);
}

/* names that only look like options: no warning, nothing changes */
static void case_ignored(const char *var)
{
    const char *vars[] = { var, NULL };
    run_result r;
    run_child(vars, &r);
    if (!ran_ok(var, &r)) return;
    others_untouched(var, &r, SIZE_MAX);
    if (r.err[0]) fail("%s: not a HAKMEM_ variable, but stderr has: %s", var, r.err);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--dump") == 0) return dump();
    if (argc > 1 && strcmp(argv[1], "--child") == 0) return child();
    if (N_OPTS > 64) {
        fail("more than 64 options: raise the limit in this test");
        return 1;
    }

    case_default();
    for (size_t i = 0; i < N_OPTS; i++) {
        const option_desc *o = &options[i];
        char buf[128];
        if (o->words) {
            for (long w = 0; o->words[w]; w++) case_good(i, o->words[w], w);
            case_bad(i, "bogus");
            case_bad(i, "");
            case_bad(i, "1");
            snprintf(buf, sizeof buf, "%sx", o->words[0]);
            case_bad(i, buf);
        } else {
            snprintf(buf, sizeof buf, "%ld", o->min);
            case_good(i, buf, o->min);
            snprintf(buf, sizeof buf, "%ld", o->max);
            case_good(i, buf, o->max);
            long mid = o->min + (o->max - o->min) / 2;
            snprintf(buf, sizeof buf, "%ld", mid);
            case_good(i, buf, mid);
            case_bad(i, "abc");
            case_bad(i, "");
            case_bad(i, "12abc");
            case_bad(i, "1.5");
            case_bad(i, "0x10");
            case_bad(i, "-");
            case_bad(i, "99999999999999999999999999");
            if (o->max < LONG_MAX) {
                snprintf(buf, sizeof buf, "%ld", o->max + 1);
                case_bad(i, buf);
            }
            if (o->min > LONG_MIN) {
                snprintf(buf, sizeof buf, "%ld", o->min - 1);
                case_bad(i, buf);
            }
        }
        /* typos at the end of the name */
        char typo[128];
        snprintf(typo, sizeof typo, "%sX", o->name);
        typo_case(i, typo);
        snprintf(typo, sizeof typo, "%s", o->name);
        typo[strlen(typo) - 1] = '\0';
        typo_case(i, typo);
        snprintf(typo, sizeof typo, "%s", o->name);
        char *last = typo + strlen(typo) - 1;
        *last = *last == 'Q' ? 'Z' : 'Q';
        typo_case(i, typo);
    }
    case_unknown("ZZZZZZ", SIZE_MAX);
    case_ignored("HAKMEMX_SS_RETAIN=3");
    case_ignored("HAKMEM=1");
    char lower[128];
    snprintf(lower, sizeof lower, "hakmem_%s=1", options[0].name);
    case_ignored(lower);

    if (failures) {
        fprintf(stderr, "unit_options: %d failure(s)\n", failures);
        return 1;
    }
    printf("unit_options: %zu options, all checks passed\n", N_OPTS);
    return 0;
}
