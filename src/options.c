/* options.c: hakmem's HAKMEM_* environment options.
 *
 * One table: each option's name (the variable is HAKMEM_ + name), default,
 * range or accepted words, and one-line description. The environment is read
 * once, at process start, straight from `environ` (no allocation). A bad
 * value or an unknown HAKMEM_ variable gets one line on stderr and changes
 * nothing. README.md lists the same table; tests/test_options_doc.sh checks
 * that the two agree, and tests/unit_options.c the handling of bad values.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

extern char **environ;

hak_options _hak_opt;

typedef struct {
    const char *name;
    long *value;
    long def, min, max;
    const char *const *words;   /* word-valued option: the value is the word's index */
    const char *doc;
} option_desc;

static const char *const policy_words[] = { "adaptive", "eager", "lazy", NULL };
static const char *const thp_words[] = { "auto", "always", "never", NULL };

static const option_desc options[] = {
    { "FREE_POLICY", &_hak_opt.free_policy, HAK_POLICY_ADAPTIVE, 0, 2, policy_words,
      "when free memory goes back to the OS: adaptive (after the observed reuse interval), eager (at once), lazy (after 10 s)" },
    { "RSS_BUDGET_KB", &_hak_opt.rss_budget_kb, 0, 0, 1L << 40, NULL,
      "soft cap on free memory kept resident, in KiB; 0 = no cap" },
    { "LARGE_CACHE_KB", &_hak_opt.large_cache_kb, 65536, 0, 1L << 40, NULL,
      "freed large blocks kept mapped for reuse, in KiB" },
    { "THP", &_hak_opt.thp, HAK_THP_AUTO, 0, 2, thp_words,
      "transparent huge pages for SuperSlabs and large blocks: auto (SuperSlabs, with the large blocks of up to 256 KiB inside them, once the heap is busy; larger blocks below 2 MiB never; from 2 MiB, while large blocks are asked for often, those that fill half of their last 2 MiB), always, never" },
    { "SS_RETAIN", &_hak_opt.ss_retain, 16, 0, 1 << 20, NULL,
      "wholly empty SuperSlabs (2 MiB each) kept mapped for reuse" },
    { "STATS", &_hak_opt.stats, 0, 0, 1, NULL,
      "count allocations per size class and print a summary at exit (slower: every call takes the counting path)" },
    { "VERBOSE", &_hak_opt.verbose, 0, 0, 1, NULL,
      "print the options in force at start-up" },
    { "CRASH_REPORT", &_hak_opt.crash_report, 1, 0, 1, NULL,
      "on SIGSEGV, SIGBUS or SIGABRT, report what hakmem knows of the fault address" },
    { "PURGE_THREAD", &_hak_opt.purge_thread, 1, 0, 1, NULL,
      "1: once a second thread uses hakmem, purge passes run on a thread of their own; 0: never start one (passes run inside frees)" },
    { "FREE_ROUTE_TRACE", &_hak_opt.free_route_trace, 0, 0, 1, NULL,
      "debug builds: print where each free is routed" },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static bool parse_value(const option_desc *o, const char *s, long *out)
{
    if (o->words) {
        for (long i = 0; o->words[i]; i++)
            if (strcmp(o->words[i], s) == 0) {
                *out = i;
                return true;
            }
        return false;
    }
    char *end;
    if (!(*s >= '0' && *s <= '9') && !(*s == '-' && s[1] >= '0' && s[1] <= '9')) return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE) return false;
    if (*end != '\0' || v < o->min || v > o->max) return false;
    *out = v;
    return true;
}

/* The accepted words of o, as "a|b|c". */
static const char *word_list(const option_desc *o, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (long i = 0; o->words[i]; i++) {
        size_t w = strlen(o->words[i]);
        if (n + w + 2 > cap) break;
        if (i) buf[n++] = '|';
        memcpy(buf + n, o->words[i], w + 1);
        n += w;
    }
    return buf;
}

static void bad_value(const option_desc *o, const char *value)
{
    char words[96];
    if (o->words)
        _hak_say("HAKMEM_%s=\"%s\" is not one of %s; using the default, %s", o->name, value,
                 word_list(o, words, sizeof(words)), o->words[o->def]);
    else
        _hak_say("HAKMEM_%s=\"%s\" is not an integer in [%ld, %ld]; using the default, %ld", o->name,
                 value, o->min, o->max, o->def);
}

/* HAKMEM_VERBOSE=1: the options in force, one line each. */
static void print_options(void)
{
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_desc *o = &options[i];
        if (o->words) _hak_say("HAKMEM_%s=%s", o->name, o->words[*o->value]);
        else _hak_say("HAKMEM_%s=%ld", o->name, *o->value);
    }
}

/* Edit distance between a and b[0..blen), ignoring case (names are short). */
static size_t edit_distance(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a);
    size_t row[64];
    if (alen >= 64 || blen >= 64) return 64;
    for (size_t j = 0; j <= blen; j++) row[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

static void set_option(const char *name, size_t name_len, const char *value)
{
    const option_desc *best = NULL;
    size_t best_dist = SIZE_MAX;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_desc *o = &options[i];
        if (strlen(o->name) == name_len && strncmp(o->name, name, name_len) == 0) {
            if (!parse_value(o, value, o->value)) bad_value(o, value);
            return;
        }
        size_t d = edit_distance(o->name, name, name_len);
        if (d < best_dist) {
            best_dist = d;
            best = o;
        }
    }
    char shown[64];
    size_t n = name_len < sizeof(shown) - 1 ? name_len : sizeof(shown) - 1;
    memcpy(shown, name, n);
    shown[n] = '\0';
    /* suggest only a name close enough to be the one meant */
    if (best && best_dist <= (strlen(best->name) < 6 ? 1 : strlen(best->name) / 3))
        _hak_say("unknown option HAKMEM_%s; did you mean HAKMEM_%s?", shown, best->name);
    else
        _hak_say("unknown option HAKMEM_%s (see the options table in README.md)", shown);
}

void _hak_options_init(void)
{
    for (size_t i = 0; i < N_OPTIONS; i++) *options[i].value = options[i].def;
    if (environ == NULL) return;
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, "HAKMEM_", 7) != 0) continue;
        const char *name = *e + 7;
        const char *eq = strchr(name, '=');
        if (eq == NULL) continue;
        set_option(name, (size_t)(eq - name), eq + 1);
    }
    if (_hak_opt.verbose) print_options();
}
