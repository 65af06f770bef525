/* options.c: hakmem's HAKMEM_* environment options.
 *
 * One table: each option's name (the variable is HAKMEM_ + name), default,
 * range and one-line description. The environment is read once, at process
 * start, straight from `environ` (no allocation). A bad value or an unknown
 * HAKMEM_ variable gets one line on stderr and changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

extern char **environ;

hak_options _hak_opt;

typedef struct {
    const char *name;
    long *value;
    long def, min, max;
    const char *doc;
} option_desc;

static const option_desc options[] = {
    { "SS_RETAIN", &_hak_opt.ss_retain, 4, 0, 1 << 20,
      "wholly empty SuperSlabs (2 MiB each) kept mapped for reuse" },
    { "FREE_ROUTE_TRACE", &_hak_opt.free_route_trace, 0, 0, 1,
      "debug builds: print where each free is routed" },
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

static bool parse_long(const char *s, long *out)
{
    char *end;
    if (*s == '\0') return false;
    long v = strtol(s, &end, 10);
    if (*end != '\0') return false;
    *out = v;
    return true;
}

/* Length of the common prefix: crude, but enough to suggest a name. */
static size_t shared_prefix(const char *a, const char *b)
{
    size_t n = 0;
    while (a[n] && a[n] == b[n]) n++;
    return n;
}

static void set_option(const char *name, size_t name_len, const char *value)
{
    const option_desc *best = &options[0];
    size_t best_len = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_desc *o = &options[i];
        if (strlen(o->name) == name_len && strncmp(o->name, name, name_len) == 0) {
            long v;
            if (parse_long(value, &v) && v >= o->min && v <= o->max) {
                *o->value = v;
                return;
            }
            _hak_warn_bad_option(o->name, value, o->min, o->max, o->def);
            return;
        }
        size_t n = shared_prefix(o->name, name);
        if (n > best_len) {
            best_len = n;
            best = o;
        }
    }
    char shown[64];
    size_t n = name_len < sizeof(shown) - 1 ? name_len : sizeof(shown) - 1;
    memcpy(shown, name, n);
    shown[n] = '\0';
    _hak_warn("unknown option HAKMEM_", shown, "; did you mean HAKMEM_", best->name);
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
}
