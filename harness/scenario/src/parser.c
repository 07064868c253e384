/*
 * parser.c - the scenario language parser: words of a line -> struct scn_scenario.
 *
 * Recursive descent over lines, without recursion: every line starts with a keyword that
 * says what it is (`scenario`, `broker`, `group`, `at`, `expect`, ...), blocks are the
 * indented lines under a `broker`, `group` or `backend` line, and each line form is one
 * function below. Declarations come before the first step, so a step is validated as it
 * is read (selectors in range, faults only behind a proxy, keepalive defined) and errors
 * point at the exact word. The first error stops the parse; its message says what was
 * expected and what was found. Reference: scenarios/README.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_internal.h"

/* ================================================================ state */

enum section { SEC_TOP = 0, SEC_BROKER, SEC_GROUP, SEC_BACKEND };

struct parser {
    struct scn_scenario *s;
    struct scn_diag *diag;
    struct scn__line *ln;   /* the line being parsed */
    uint32_t i;             /* next word of ln */
    enum section sec;
    uint32_t seen;          /* settings seen in the open block (bit per keyword index) */
    uint32_t name_line, timeout_line, seed_line, broker_line, backend_line;
    uint32_t first_step_line;
    int64_t last_at_ms;     /* the latest `at` time so far */
    uint32_t last_at_line;
    size_t cap_groups, cap_steps;
    size_t desc_len, desc_cap;
    bool nomem;
};

#define MAX_DURATION_MS (24LL * 3600 * 1000)
#define MAX_COUNT 1000000000u

/* ================================================================ errors */

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c)
        memcpy(c, s, n);
    return c;
}

static int fail_at(struct parser *p, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct parser *p, uint32_t col, const char *fmt, ...)
{
    if (p->diag) {
        p->diag->line = p->ln ? p->ln->lineno : 1;
        p->diag->col = col ? col : 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->diag->message, sizeof p->diag->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A word quoted for a message: at most 32 bytes, unprintable bytes as '?'. */
static void quote(const struct scn__tok *t, char *out, size_t cap)
{
    size_t n = 0;
    uint32_t max = t->len > 32 ? 29 : t->len;
    if (cap < 40)
        return;
    out[n++] = '\'';
    for (uint32_t k = 0; k < max; k++) {
        unsigned char c = (unsigned char)t->s[k];
        out[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (max < t->len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n++] = '\'';
    out[n] = '\0';
}

static const struct scn__tok *peek(struct parser *p)
{
    return p->i < p->ln->n ? &p->ln->toks[p->i] : NULL;
}

static uint32_t here_col(struct parser *p)
{
    const struct scn__tok *t = peek(p);
    return t ? t->col : p->ln->end_col;
}

/* "expected <what>, found 'word'" (or "found end of line") at the next word. */
static int expected(struct parser *p, const char *what)
{
    const struct scn__tok *t = peek(p);
    char found[48];
    if (t)
        quote(t, found, sizeof found);
    else
        snprintf(found, sizeof found, "end of line");
    return fail_at(p, here_col(p), "expected %s, found %s", what, found);
}

/* As expected(), plus "; did you mean 'x'?" when a candidate is close to the word. */
static int expected_one_of(struct parser *p, const char *what, const char *const *cands)
{
    const struct scn__tok *t = peek(p);
    if (t && t->len <= 40) {
        const char *best = NULL;
        unsigned best_d = 3;
        for (size_t k = 0; cands[k]; k++) {
            unsigned d = scn__distance(t->s, t->len, cands[k], 2);
            size_t longest = strlen(cands[k]) > t->len ? strlen(cands[k]) : t->len;
            if (d < best_d && (d <= 1 || longest >= 5)) {
                best_d = d;
                best = cands[k];
            }
        }
        if (best) {
            char found[48];
            quote(t, found, sizeof found);
            return fail_at(p, t->col, "expected %s, found %s; did you mean '%s'?", what,
                           found, best);
        }
    }
    return expected(p, what);
}

/* ================================================================ words */

static bool at_end(struct parser *p)
{
    return p->i >= p->ln->n;
}

static bool next_is(struct parser *p, const char *word)
{
    const struct scn__tok *t = peek(p);
    return t && scn__tok_is(t, word);
}

static bool accept(struct parser *p, const char *word)
{
    if (next_is(p, word)) {
        p->i++;
        return true;
    }
    return false;
}

static int want(struct parser *p, const char *word)
{
    if (accept(p, word))
        return 0;
    char what[64];
    snprintf(what, sizeof what, "'%s'", word);
    const char *cands[] = {word, NULL};
    return expected_one_of(p, what, cands);
}

static int want_end(struct parser *p)
{
    return at_end(p) ? 0 : expected(p, "end of line");
}

/* Index of the next word in a NULL-terminated keyword list, or -1 (nothing consumed). */
static int match(struct parser *p, const char *const *words)
{
    const struct scn__tok *t = peek(p);
    if (!t)
        return -1;
    for (int k = 0; words[k]; k++)
        if (scn__tok_is(t, words[k])) {
            p->i++;
            return k;
        }
    return -1;
}

/* The next word must be one of words: its index, or -1 with "expected <what>". */
static int want_one_of(struct parser *p, const char *const *words, const char *what)
{
    int k = match(p, words);
    if (k < 0)
        expected_one_of(p, what, words);
    return k;
}

/* ================================================================ values */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits [. digits] at s[0..len) as value x 10^scale. Returns bytes used, 0 if none, or
   -1 if it has more than scale decimals or exceeds max. */
static int scan_decimal(const char *s, uint32_t len, int scale, int64_t max, int64_t *out)
{
    uint32_t k = 0;
    int64_t v = 0;
    int decimals = -1; /* -1: no '.' seen yet */
    while (k < len) {
        if (is_digit(s[k])) {
            if (decimals >= 0 && decimals++ == scale)
                return -1;
            if (v > (INT64_MAX - 9) / 10)
                return -1;
            v = v * 10 + (s[k] - '0');
        } else if (s[k] == '.' && decimals < 0 && k > 0 && k + 1 < len && is_digit(s[k + 1])) {
            decimals = 0;
        } else {
            break;
        }
        k++;
    }
    if (k == 0)
        return 0;
    for (int d = decimals < 0 ? 0 : decimals; d < scale; d++) {
        if (v > INT64_MAX / 10)
            return -1;
        v *= 10;
    }
    if (v > max)
        return -1;
    *out = v;
    return (int)k;
}

static bool tok_suffix_is(const struct scn__tok *t, uint32_t from, const char *suffix)
{
    size_t n = strlen(suffix);
    return t->len - from == n && memcmp(t->s + from, suffix, n) == 0;
}

/* A whole non-negative integer word, at most max. */
static int want_uint(struct parser *p, uint64_t max, const char *what, uint64_t *out)
{
    const struct scn__tok *t = peek(p);
    if (!t || !is_digit(t->s[0]))
        return expected(p, what);
    uint64_t v = 0;
    for (uint32_t k = 0; k < t->len; k++) {
        if (!is_digit(t->s[k]))
            return expected(p, what);
        unsigned d = (unsigned)(t->s[k] - '0');
        if (v > (max - d) / 10)
            return fail_at(p, t->col, "number is too large here (at most %" PRIu64 ")", max);
        v = v * 10 + d;
    }
    p->i++;
    *out = v;
    return 0;
}

static int want_u32(struct parser *p, uint32_t min, uint32_t max, const char *what,
                    uint32_t *out)
{
    uint32_t col = here_col(p);
    uint64_t v;
    if (want_uint(p, max, what, &v) < 0)
        return -1;
    if (v < min)
        return fail_at(p, col, "expected %s, found %" PRIu64 " (at least %u)", what, v, min);
    *out = (uint32_t)v;
    return 0;
}

#define DURATION_WHAT "a duration such as 500ms or 2s"

/* Parse a duration in t[from..to) (a part of a word): number + ms|s|min|h, whole ms. */
static bool scan_duration(const struct scn__tok *t, uint32_t from, uint32_t to, int64_t *ms)
{
    int64_t milli;
    int used = scan_decimal(t->s + from, to - from, 3, MAX_DURATION_MS * 1000, &milli);
    if (used <= 0)
        return false;
    struct scn__tok unit = {t->s + from + used, to - from - (uint32_t)used, 0};
    int64_t per;
    if (scn__tok_is(&unit, "ms"))
        per = 1;
    else if (scn__tok_is(&unit, "s"))
        per = 1000;
    else if (scn__tok_is(&unit, "min"))
        per = 60000;
    else if (scn__tok_is(&unit, "h"))
        per = 3600000;
    else
        return false;
    /* milli is value x 1000; value x per must be whole milliseconds */
    int64_t v = milli * per;
    if (v % 1000 != 0 || v / 1000 > MAX_DURATION_MS)
        return false;
    *ms = v / 1000;
    return true;
}

static int want_duration(struct parser *p, bool allow_zero, int64_t *ms)
{
    const struct scn__tok *t = peek(p);
    if (!t || !scan_duration(t, 0, t->len, ms))
        return expected(p, DURATION_WHAT);
    if (!allow_zero && *ms == 0)
        return fail_at(p, t->col, "expected a positive duration, found '0'");
    p->i++;
    return 0;
}

/* `think 200ms..800ms` */
static int want_duration_range(struct parser *p, int64_t *lo, int64_t *hi)
{
    const struct scn__tok *t = peek(p);
    const char *what = "a duration range such as 200ms..800ms";
    if (!t)
        return expected(p, what);
    const char *dots = NULL;
    for (uint32_t k = 0; k + 1 < t->len; k++)
        if (t->s[k] == '.' && t->s[k + 1] == '.') {
            dots = t->s + k;
            break;
        }
    if (!dots)
        return expected(p, what);
    uint32_t cut = (uint32_t)(dots - t->s);
    if (!scan_duration(t, 0, cut, lo) || !scan_duration(t, cut + 2, t->len, hi))
        return expected(p, what);
    if (*lo > *hi)
        return fail_at(p, t->col, "the range %.*s runs backwards (write the shorter time first)",
                       (int)t->len, t->s);
    p->i++;
    return 0;
}

/* `5%` or `2.5%` in basis points (0..10000). */
static int want_percent(struct parser *p, uint32_t *bp)
{
    const struct scn__tok *t = peek(p);
    int64_t v;
    int used = t ? scan_decimal(t->s, t->len, 2, 10000, &v) : 0;
    if (used <= 0 || !tok_suffix_is(t, (uint32_t)used, "%"))
        return expected(p, "a percentage from 0% to 100% such as 5% or 2.5%");
    *bp = (uint32_t)v;
    p->i++;
    return 0;
}

/* `10kB/s` -> bytes per second */
static int want_byte_rate(struct parser *p, uint64_t *bps)
{
    static const struct { const char *unit; int64_t mult; } units[] = {
        {"B/s", 1}, {"kB/s", 1000}, {"KiB/s", 1024}, {"MB/s", 1000000}, {"MiB/s", 1048576},
    };
    const struct scn__tok *t = peek(p);
    int64_t milli;
    int used = t ? scan_decimal(t->s, t->len, 3, 1000000000LL * 1000, &milli) : 0;
    if (used > 0) {
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
            if (!tok_suffix_is(t, (uint32_t)used, units[k].unit))
                continue;
            int64_t v = milli * units[k].mult / 1000;
            if (v <= 0 || milli / 1000 > 1000000000LL)
                break;
            if (v > (int64_t)10 * 1000 * 1000 * 1000)
                break;
            *bps = (uint64_t)v;
            p->i++;
            return 0;
        }
    }
    return expected(p, "a positive byte rate such as 10kB/s (units B/s, kB/s, KiB/s, MB/s, MiB/s)");
}

/* `50/s` -> items per second */
static int want_item_rate(struct parser *p, uint32_t *per_s)
{
    const struct scn__tok *t = peek(p);
    int64_t v;
    int used = t ? scan_decimal(t->s, t->len, 0, 1000000, &v) : 0;
    if (used <= 0 || v == 0 || !tok_suffix_is(t, (uint32_t)used, "/s"))
        return expected(p, "a rate such as 50/s (items per second, 1 to 1000000)");
    *per_s = (uint32_t)v;
    p->i++;
    return 0;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* `04A1B2C3`: 8, 14 or 20 hex digits. */
static int want_tag(struct parser *p, uint8_t *uid, uint32_t *len)
{
    const struct scn__tok *t = peek(p);
    const char *what = "an RFID tag UID in hex with 8, 14 or 20 digits such as 04A1B2C3";
    if (!t || (t->len != 8 && t->len != 14 && t->len != 20))
        return expected(p, what);
    for (uint32_t k = 0; k < t->len; k += 2) {
        int hi = hex_val(t->s[k]), lo = hex_val(t->s[k + 1]);
        if (hi < 0 || lo < 0)
            return expected(p, what);
        uid[k / 2] = (uint8_t)(hi << 4 | lo);
    }
    *len = t->len / 2;
    p->i++;
    return 0;
}

static int want_on_off(struct parser *p, bool *v)
{
    static const char *const words[] = {"on", "off", NULL};
    int k = want_one_of(p, words, "'on' or 'off'");
    if (k < 0)
        return -1;
    *v = k == 0;
    return 0;
}

static bool name_byte_ok(char c, bool prefix)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
           c == '-' || (c == '.' && !prefix);
}

/* An identifier: letters, digits, '_', '-' (and '.' unless prefix), starting with a letter
   unless prefix; copied into out. */
static int want_name(struct parser *p, const char *what, bool prefix, size_t maxlen, char *out)
{
    const struct scn__tok *t = peek(p);
    if (!t || (!prefix && !((t->s[0] >= 'a' && t->s[0] <= 'z') || (t->s[0] >= 'A' && t->s[0] <= 'Z'))))
        return expected(p, what);
    for (uint32_t k = 0; k < t->len; k++)
        if (!name_byte_ok(t->s[k], prefix))
            return expected(p, what);
    if (t->len > maxlen)
        return fail_at(p, t->col, "%.*s... is too long (at most %zu bytes)", 16, t->s, maxlen);
    memcpy(out, t->s, t->len);
    out[t->len] = '\0';
    p->i++;
    return 0;
}

static const char *const CMP_WORDS[] = {"==", "!=", "<", "<=", ">", ">=", NULL};

static int want_cmp(struct parser *p, enum scn_cmp *cmp)
{
    int k = match(p, CMP_WORDS);
    if (k < 0) {
        if (next_is(p, "="))
            return fail_at(p, here_col(p), "expected a comparison (== != < <= > >=), found '='; "
                                           "write '==' to compare");
        return expected(p, "a comparison (== != < <= > >=)");
    }
    *cmp = (enum scn_cmp)k;
    return 0;
}

/* ================================================================ devices */

/* The first group of a selector that fails a test, or NULL. */
static const struct scn_group *sel_find_group(const struct scn_scenario *s,
                                              const struct scn_selector *sel,
                                              bool (*bad)(const struct scn_group *))
{
    if (sel->kind == SCN_SEL_NONE)
        return NULL;
    for (size_t k = 0; k < s->n_groups; k++) {
        const struct scn_group *g = &s->groups[k];
        if (g->first + g->count - 1 < sel->first || g->first > sel->last)
            continue;
        if (bad(g))
            return g;
    }
    return NULL;
}

/* The largest keep-alive among the selected devices (all devices for NONE), and whether
   one of them has none. */
static uint32_t sel_keepalive(const struct scn_scenario *s, const struct scn_selector *sel,
                              const struct scn_group **without)
{
    uint32_t first = sel->kind == SCN_SEL_NONE ? 1 : sel->first;
    uint32_t last = sel->kind == SCN_SEL_NONE ? s->n_devices : sel->last;
    uint32_t max = 0;
    *without = NULL;
    for (size_t k = 0; k < s->n_groups; k++) {
        const struct scn_group *g = &s->groups[k];
        if (g->first + g->count - 1 < first || g->first > last)
            continue;
        if (g->keepalive_s == 0 && !*without)
            *without = g;
        if (g->keepalive_s > max)
            max = g->keepalive_s;
    }
    return max;
}

static const char *const SELECTOR_WHAT =
    "a selector (device 3, device scanner-3, devices 1..10, all devices, random 5 devices, "
    "group <name>)";

/* device <n|id>: a device by id is its group's prefix + its number in the group. */
static int want_device(struct parser *p, struct scn_selector *sel)
{
    struct scn_scenario *s = p->s;
    const struct scn__tok *t = peek(p);
    if (!t)
        return expected(p, "a device number or id such as 3 or scanner-3");
    if (is_digit(t->s[0])) {
        uint32_t col = t->col, n = 0;
        if (want_u32(p, 1, UINT32_MAX, "a device number such as 3", &n) < 0)
            return -1;
        if (n > s->n_devices)
            return fail_at(p, col, "there is no device %u: the scenario declares devices 1..%u",
                           n, s->n_devices);
        sel->first = sel->last = n;
        return 0;
    }
    for (size_t k = 0; k < s->n_groups; k++) {
        const struct scn_group *g = &s->groups[k];
        size_t pl = strlen(g->id_prefix);
        if (t->len <= pl || t->len - pl > 9 || memcmp(t->s, g->id_prefix, pl) != 0)
            continue;
        uint32_t n = 0;
        bool digits = t->s[pl] != '0';
        for (uint32_t j = (uint32_t)pl; j < t->len && digits; j++) {
            if (!is_digit(t->s[j]))
                digits = false;
            else
                n = n * 10 + (uint32_t)(t->s[j] - '0');
        }
        if (!digits)
            continue;
        if (n < 1 || n > g->count)
            return fail_at(p, t->col, "there is no device %.*s: group '%s' has %s1..%s%u",
                           (int)(t->len > 40 ? 40 : t->len), t->s, g->name, g->id_prefix,
                           g->id_prefix, g->count);
        sel->first = sel->last = g->first + n - 1;
        memcpy(sel->id, t->s, t->len);
        sel->id[t->len] = '\0';
        p->i++;
        return 0;
    }
    char found[48];
    quote(t, found, sizeof found);
    const struct scn_group *g0 = &s->groups[0];
    return fail_at(p, t->col,
                   "expected a device number or id such as 3 or %s1, found %s (no group has "
                   "that id)",
                   g0->id_prefix, found);
}

static int want_selector(struct parser *p, struct scn_selector *sel)
{
    static const char *const words[] = {"device", "devices", "all", "random", "group", NULL};
    struct scn_scenario *s = p->s;
    memset(sel, 0, sizeof *sel);
    sel->group = -1;
    int k = want_one_of(p, words, SELECTOR_WHAT);
    if (k < 0)
        return -1;
    switch (k) {
    case 0:
        sel->kind = SCN_SEL_DEVICE;
        if (want_device(p, sel) < 0)
            return -1;
        break;
    case 1: {
        sel->kind = SCN_SEL_RANGE;
        const struct scn__tok *t = peek(p);
        const char *what = "a device range such as 1..10";
        if (!t)
            return expected(p, what);
        int64_t a, b;
        int ua = scan_decimal(t->s, t->len, 0, UINT32_MAX, &a);
        if (ua <= 0 || (uint32_t)ua + 2 >= t->len || t->s[ua] != '.' || t->s[ua + 1] != '.')
            return expected(p, what);
        int ub = scan_decimal(t->s + ua + 2, t->len - (uint32_t)ua - 2, 0, UINT32_MAX, &b);
        if (ub <= 0 || (uint32_t)(ua + 2 + ub) != t->len)
            return expected(p, what);
        if (a < 1 || a > b)
            return fail_at(p, t->col, "expected a device range first..last with 1 <= first <= "
                                      "last, found '%.*s'", (int)t->len, t->s);
        if (b > s->n_devices)
            return fail_at(p, t->col, "the range %.*s goes past the last device: the scenario "
                                      "declares devices 1..%u", (int)t->len, t->s, s->n_devices);
        sel->first = (uint32_t)a;
        sel->last = (uint32_t)b;
        p->i++;
        break;
    }
    case 2:
        sel->kind = SCN_SEL_ALL;
        if (want(p, "devices") < 0)
            return -1;
        sel->first = 1;
        sel->last = s->n_devices;
        break;
    case 3: {
        sel->kind = SCN_SEL_RANDOM;
        uint32_t col = here_col(p), n = 0;
        if (want_u32(p, 1, UINT32_MAX, "how many devices to draw, such as 5", &n) < 0)
            return -1;
        if (n > s->n_devices)
            return fail_at(p, col, "cannot draw %u devices: the scenario declares %u", n,
                           s->n_devices);
        if (n == 1 ? !accept(p, "device") && want(p, "devices") < 0 : want(p, "devices") < 0)
            return -1;
        sel->first = 1;
        sel->last = s->n_devices;
        sel->count = n;
        return 0;
    }
    default: {
        sel->kind = SCN_SEL_GROUP;
        const struct scn__tok *t = peek(p);
        if (!t)
            return expected(p, "a group name");
        for (size_t g = 0; g < s->n_groups; g++)
            if (scn__tok_is(t, s->groups[g].name)) {
                sel->group = (int)g;
                snprintf(sel->id, sizeof sel->id, "%s", s->groups[g].name);
                sel->first = s->groups[g].first;
                sel->last = s->groups[g].first + s->groups[g].count - 1;
                p->i++;
                break;
            }
        if (sel->group < 0) {
            char found[48];
            quote(t, found, sizeof found);
            return fail_at(p, t->col, "expected the name of a declared group, found %s", found);
        }
        break;
    }
    }
    sel->count = sel->last - sel->first + 1;
    return 0;
}

/* [prep] <selector>, or nothing (then kind dflt: ALL or NONE). Stops before `within`. */
static int opt_selector(struct parser *p, const char *prep, enum scn_selector_kind dflt,
                        struct scn_selector *sel)
{
    memset(sel, 0, sizeof *sel);
    sel->group = -1;
    if (at_end(p) || next_is(p, "within")) {
        sel->kind = dflt;
        if (dflt == SCN_SEL_ALL) {
            sel->first = 1;
            sel->last = sel->count = p->s->n_devices;
        }
        return 0;
    }
    if (prep)
        accept(p, prep);
    return want_selector(p, sel);
}

/* `within <duration expression>`: terms of duration | keepalive | number * either,
   joined by + and -. keepalive is resolved against the selector. */
static int want_time_expr(struct parser *p, const struct scn_selector *sel,
                          struct scn_time_expr *te)
{
    const char *what = "a duration such as 500ms or 2s, 'keepalive', 'startup', or a number "
                       "such as 1.5";
    int64_t ms = 0, ka = 0, su = 0;
    int sign = 1;
    uint32_t first_col = here_col(p), ka_col = 0, su_col = 0;
    for (int terms = 0;; terms++) {
        int64_t factor = 1000; /* x 1000 */
        uint32_t term_col = here_col(p);
        int64_t t_ms = 0;
        bool t_ka = false, t_su = false, have_factor = false, have_unit = false;
        for (int part = 0; part < 2; part++) {
            const struct scn__tok *t = peek(p);
            if (!t)
                return expected(p, what);
            int64_t v;
            if (scn__tok_is(t, "keepalive") && !have_unit) {
                t_ka = true;
                have_unit = true;
                if (!ka_col)
                    ka_col = t->col;
                p->i++;
            } else if (scn__tok_is(t, "startup") && !have_unit) {
                t_su = true;
                have_unit = true;
                if (!su_col)
                    su_col = t->col;
                p->i++;
            } else if (!have_unit && scan_duration(t, 0, t->len, &t_ms)) {
                have_unit = true;
                p->i++;
            } else if (!have_factor && scan_decimal(t->s, t->len, 3, 1000000000, &v) ==
                                           (int)t->len) {
                factor = v;
                have_factor = true;
                p->i++;
            } else {
                return expected(p, have_factor ? "a duration, 'keepalive' or 'startup' after '*'"
                                               : what);
            }
            if (part == 0 && accept(p, "*"))
                continue;
            break;
        }
        if (!have_unit)
            return fail_at(p, term_col, "expected a duration such as 2s, 'keepalive' or "
                                        "'startup', found a number without a unit");
        if (t_ka)
            ka += sign * factor;
        else if (t_su)
            su += sign * factor;
        else
            ms += sign * (t_ms * factor / 1000);
        if (terms > 16)
            return fail_at(p, first_col, "duration expression has too many terms");
        if (accept(p, "+"))
            sign = 1;
        else if (accept(p, "-"))
            sign = -1;
        else
            break;
    }
    te->ms = ms;
    te->keepalive_milli = ka;
    te->startup_milli = su;
    te->resolved_ms = ms;
    if (su < 0)
        return fail_at(p, su_col, "'startup' can only be added (a window that shrinks as the "
                                     "broker is slower would fail on the slow one)");
    if (ka != 0) {
        const struct scn_group *without = NULL;
        uint32_t ka_s = sel_keepalive(p->s, sel, &without);
        if (without)
            return fail_at(p, ka_col, "'keepalive' is not defined here: group '%s' has "
                                      "keep-alive off (set 'keepalive 10s' in it)", without->name);
        te->resolved_ms = ms + ka * (int64_t)ka_s;
    }
    if (te->resolved_ms <= 0 && su == 0)
        return fail_at(p, first_col, "the duration must be positive, but this comes to %" PRId64
                                     "ms", te->resolved_ms);
    return 0;
}

/* ================================================================ names */

static const char *const PACKET_WORDS[] = {
    "all", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
    "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
    "AUTH", NULL};

static const char *const REJECT_WORDS[] = {
    "oversize", "not_utf8", "invalid_json", "trailing_garbage", "not_object", "missing_field",
    "wrong_type", "out_of_range", "name_too_long", "too_deep", "unknown_topic", NULL};

static const char *const FRAME_WORDS[] = {"bad_length", "truncated", "oversize",
                                           "reserved_type", NULL};

static const char *const LEDGER_WORDS[] = {
    "published", "registered", "registered_once", "registered_twice", "lost",
    "duplicate_deliveries", "malformed", "latency_p50", "latency_p99", "latency_max",
    "unknown_items", "latency_p90", NULL};

#define COUNTER_WORDS scn__counter_words
#define SCREEN_WORDS scn__screen_words

/* A packet type, case-insensitive (PUBACK or puback), or `all` when allow_all. */
static int want_packet(struct parser *p, bool allow_all, enum scn_packet *pkt)
{
    const struct scn__tok *t = peek(p);
    if (t && t->len <= 12) {
        char up[13];
        for (uint32_t k = 0; k < t->len; k++)
            up[k] = (t->s[k] >= 'a' && t->s[k] <= 'z') ? (char)(t->s[k] - 32) : t->s[k];
        up[t->len] = '\0';
        if (allow_all && scn__tok_is(t, "all")) {
            *pkt = SCN_PKT_ANY;
            p->i++;
            return 0;
        }
        for (int k = 1; PACKET_WORDS[k]; k++)
            if (strcmp(up, PACKET_WORDS[k]) == 0) {
                *pkt = (enum scn_packet)k;
                p->i++;
                return 0;
            }
    }
    return expected_one_of(p, allow_all ? "an MQTT packet type such as PUBLISH or PUBACK, or 'all'"
                                        : "an MQTT packet type such as PUBLISH or PUBACK",
                           PACKET_WORDS + 1);
}

/* to broker | to device | both ways */
static int want_direction(struct parser *p, enum scn_direction *dir)
{
    const char *what = "a direction ('to broker', 'to device' or 'both ways')";
    if (accept(p, "to")) {
        static const char *const w[] = {"broker", "device", NULL};
        int k = want_one_of(p, w, "'broker' or 'device' after 'to'");
        if (k < 0)
            return -1;
        *dir = k == 0 ? SCN_DIR_TO_BROKER : SCN_DIR_TO_DEVICE;
        return 0;
    }
    if (accept(p, "both")) {
        *dir = SCN_DIR_BOTH;
        return want(p, "ways");
    }
    return expected(p, what);
}

/* ================================================================ expectations */

static int parse_value(struct parser *p, bool is_bool, bool is_duration, int64_t *v)
{
    if (is_duration)
        return want_duration(p, true, v);
    if (is_bool) {
        static const char *const w[] = {"true", "false", "yes", "no", NULL};
        int k = match(p, w);
        if (k >= 0) {
            *v = (k % 2) == 0;
            return 0;
        }
    }
    uint64_t u;
    if (want_uint(p, 1000000000000ULL, is_bool ? "true, false or a number" : "a number",
                  &u) < 0)
        return -1;
    *v = (int64_t)u;
    return 0;
}

/* The tail shared by every expectation: [within T], then the end of the line. */
static int expect_tail(struct parser *p, struct scn_step *st, bool within_required)
{
    struct scn_expect *e = &st->u.expect;
    if (accept(p, "within")) {
        e->has_within = true;
        if (want_time_expr(p, &st->sel, &e->within) < 0)
            return -1;
    } else if (within_required) {
        return expected(p, "'within <duration>' (how long to wait, such as within 10s)");
    }
    return want_end(p);
}

/* ================================================================ commands */

static const char *const COMMAND_WORDS[] = {"identify", "message", "status", "config", "reboot",
                                            "lock", "unlock", "clear_queue", NULL};

/* The reasons a device answers a command with (docs/protocol.md, "Commands"). */
static const char *const REPLY_REASON_WORDS[] = {
    "oversize", "not_utf8", "invalid_json", "trailing_garbage", "not_object", "missing_field",
    "wrong_type", "out_of_range", "too_deep", "bad_cmd_id", "unknown_command", "missing_arg",
    "unknown_arg", "busy", "flash_error", NULL};

/* <key>=<value>: a number, true/false, "quoted text" or a bare word. */
static int want_cmd_arg(struct parser *p, struct scn_cmd_arg *a)
{
    if (want_name(p, "an argument name such as seconds", false, sizeof a->key - 1, a->key) < 0)
        return -1;
    if (!accept(p, "="))
        return fail_at(p, here_col(p), "expected '=' and a value after the argument '%s' (such "
                                       "as %s=5 or text=\"Go to dock 3\")", a->key, a->key);
    const struct scn__tok *v = peek(p);
    if (!v)
        return expected(p, "a value (a number, true, false or \"quoted text\")");
    const char *s = v->s;
    uint32_t len = v->len;
    a->type = SCN_ARG_STRING;
    if (s[0] == '"') {
        if (len < 2 || s[len - 1] != '"')
            return fail_at(p, v->col, "quoted text needs a closing '\"' on the same line");
        s++;
        len -= 2;
    } else if (scn__tok_is(v, "true") || scn__tok_is(v, "false")) {
        a->type = SCN_ARG_BOOL;
    } else if (scan_decimal(s, len, 0, 1000000000000LL, &(int64_t){0}) == (int)len) {
        a->type = SCN_ARG_NUMBER;
    }
    if (len >= sizeof a->value)
        return fail_at(p, v->col, "the value of '%s' is longer than %zu bytes", a->key,
                       sizeof a->value - 1);
    memcpy(a->value, s, len);
    a->value[len] = '\0';
    p->i++;
    return 0;
}

/* as <cmd_id>: 1..32 printable ASCII bytes, as the device requires. */
static int want_cmd_id(struct parser *p, char *out)
{
    const struct scn__tok *t = peek(p);
    if (!t)
        return expected(p, "a cmd_id such as reboot-1 after 'as'");
    bool ok = t->len >= 1 && t->len < SCN_CMD_ID_MAX && t->s[0] != '"';
    for (uint32_t k = 0; k < t->len && ok; k++)
        ok = (unsigned char)t->s[k] > 0x20 && (unsigned char)t->s[k] < 0x7f;
    if (!ok)
        return fail_at(p, t->col, "a cmd_id is 1..%d printable ASCII bytes without spaces",
                       SCN_CMD_ID_MAX - 1);
    memcpy(out, t->s, t->len);
    out[t->len] = '\0';
    p->i++;
    return 0;
}

/* <cmd> [k=v ...] [as <id>] [to <selector>] [as <id>] */
static int parse_command_body(struct parser *p, struct scn_step *st)
{
    struct scn_command_step *c = &st->u.command;
    int k = want_one_of(p, COMMAND_WORDS, "a command (identify, message, status, config, "
                                          "reboot, lock, unlock, clear_queue)");
    if (k < 0)
        return -1;
    c->cmd = (enum scn_command)k;
    while (!at_end(p) && !next_is(p, "as") && !next_is(p, "to")) {
        if (c->n_args == SCN_CMD_ARGS_MAX)
            return fail_at(p, here_col(p), "a command takes at most %d arguments",
                           SCN_CMD_ARGS_MAX);
        struct scn_cmd_arg *a = &c->args[c->n_args];
        uint32_t col = here_col(p);
        if (want_cmd_arg(p, a) < 0)
            return -1;
        for (uint32_t j = 0; j < c->n_args; j++)
            if (strcmp(c->args[j].key, a->key) == 0)
                return fail_at(p, col, "the argument '%s' is given twice", a->key);
        c->n_args++;
    }
    if (accept(p, "as") && want_cmd_id(p, c->cmd_id) < 0)
        return -1;
    if (opt_selector(p, "to", SCN_SEL_ALL, &st->sel) < 0)
        return -1;
    if (!c->cmd_id[0] && accept(p, "as") && want_cmd_id(p, c->cmd_id) < 0)
        return -1;
    return want_end(p);
}

/* command <cmd> ...: the harness, as the backend, sends it. */
static int parse_command(struct parser *p, struct scn_step *st)
{
    st->action = SCN_ACT_COMMAND;
    return parse_command_body(p, st);
}

/* device <n|id> publishes command <cmd> ...: a device's credentials send it (ACL tests). */
static int parse_forged_command(struct parser *p, struct scn_step *st)
{
    struct scn_selector from;
    memset(&from, 0, sizeof from);
    st->action = SCN_ACT_FORGE_COMMAND;
    if (want_device(p, &from) < 0 || want(p, "publishes") < 0 || want(p, "command") < 0)
        return -1;
    st->u.command.from = from.first;
    return parse_command_body(p, st);
}

/* command replies [ok|error] [duplicate] [reason <r>] <cmp> <n> [from|on <selector>] */
static int parse_replies(struct parser *p, struct scn_step *st, bool within_required)
{
    static const char *const results[] = {"ok", "error", NULL};
    struct scn_expect *e = &st->u.expect;
    e->kind = SCN_EXP_REPLIES;
    if (want(p, "replies") < 0)
        return -1;
    int r = match(p, results);
    e->reply = r < 0 ? SCN_REPLY_ANY : (enum scn_reply_result)(r + 1);
    e->reply_duplicate = accept(p, "duplicate");
    if (accept(p, "reason")) {
        int w = want_one_of(p, REPLY_REASON_WORDS, "a reply reason such as out_of_range, "
                                                   "busy or unknown_arg");
        if (w < 0)
            return -1;
        snprintf(e->reply_reason, sizeof e->reply_reason, "%s", REPLY_REASON_WORDS[w]);
        if (e->reply == SCN_REPLY_OK)
            return fail_at(p, p->ln->toks[p->i - 1].col, "an ok reply has no reason: write "
                                                         "'command replies error reason ...'");
    }
    uint64_t n;
    if (want_cmp(p, &e->cmp) < 0 || want_uint(p, 1000000000, "a number of replies", &n) < 0)
        return -1;
    e->value = (int64_t)n;
    memset(&st->sel, 0, sizeof st->sel);
    st->sel.group = -1;
    st->sel.kind = SCN_SEL_ALL;
    st->sel.first = 1;
    st->sel.last = st->sel.count = p->s->n_devices;
    if ((accept(p, "from") || accept(p, "on")) && want_selector(p, &st->sel) < 0)
        return -1;
    return expect_tail(p, st, within_required);
}

/* forged commands refused|accepted <cmp> <n> */
static int parse_forged(struct parser *p, struct scn_step *st, bool within_required)
{
    static const char *const w[] = {"refused", "accepted", NULL};
    struct scn_expect *e = &st->u.expect;
    e->kind = SCN_EXP_FORGED;
    if (want(p, "commands") < 0)
        return -1;
    int k = want_one_of(p, w, "'refused' (by the broker: MQTT 5 PUBACK >= 0x80) or 'accepted'");
    if (k < 0)
        return -1;
    e->forged_refused = k == 0;
    uint64_t n;
    if (want_cmp(p, &e->cmp) < 0 || want_uint(p, 1000000000, "a number of publishes", &n) < 0)
        return -1;
    e->value = (int64_t)n;
    st->sel.kind = SCN_SEL_NONE;
    st->sel.group = -1;
    return expect_tail(p, st, within_required);
}

/* After `screen`: == or != and a screen's name. */
static int want_screen_cmp(struct parser *p, struct scn_expect *e)
{
    uint32_t col = p->ln->toks[p->i - 1].col;
    if (e->sum)
        return fail_at(p, col, "'sum screen' has no meaning: write 'screen == item on ...'");
    if (want_cmp(p, &e->cmp) < 0)
        return -1;
    if (e->cmp != SCN_CMP_EQ && e->cmp != SCN_CMP_NE)
        return fail_at(p, p->ln->toks[p->i - 1].col, "a screen compares with == or != only");
    int v = want_one_of(p, SCREEN_WORDS, "a screen (idle, item, confirm, registered, "
                                         "inventory_scan, inventory_wait, inventory_result, "
                                         "error, cancelled, message, locked)");
    if (v < 0)
        return -1;
    e->value = v;
    return 0;
}

static int parse_expectation(struct parser *p, struct scn_step *st, bool within_required)
{
    static const char *const starts[] = {"ledger", "will", "no", "retained", "registrations",
                                         "sum", "command", "forged", NULL};
    struct scn_expect *e = &st->u.expect;
    st->action = SCN_ACT_EXPECT;
    memset(e, 0, sizeof *e);
    int k = match(p, starts);
    switch (k) {
    case 6:
        return parse_replies(p, st, within_required);
    case 7:
        return parse_forged(p, st, within_required);
    case 0: { /* ledger <field> <cmp> <value> */
        int f = want_one_of(p, LEDGER_WORDS, "a ledger figure (published, registered, "
                                             "registered_once, registered_twice, lost, "
                                             "duplicate_deliveries, malformed, unknown_items, "
                                             "latency_p50, latency_p90, latency_p99, "
                                             "latency_max)");
        if (f < 0)
            return -1;
        e->kind = SCN_EXP_LEDGER;
        e->ledger = (enum scn_ledger_field)f;
        if (want_cmp(p, &e->cmp) < 0 ||
            parse_value(p, false, scn_ledger_field_is_duration(e->ledger), &e->value) < 0)
            return -1;
        st->sel.kind = SCN_SEL_NONE;
        st->sel.group = -1;
        return expect_tail(p, st, within_required);
    }
    case 1: /* will published for <sel> */
        e->kind = SCN_EXP_WILL;
        if (want(p, "published") < 0 || want(p, "for") < 0 || want_selector(p, &st->sel) < 0)
            return -1;
        return expect_tail(p, st, within_required);
    case 2: /* no will for <sel> */
        e->kind = SCN_EXP_NO_WILL;
        if (want(p, "will") < 0 || want(p, "for") < 0 || want_selector(p, &st->sel) < 0)
            return -1;
        return expect_tail(p, st, within_required);
    case 3: { /* retained status of <sel> == online|offline */
        static const char *const w[] = {"online", "offline", NULL};
        e->kind = SCN_EXP_RETAINED;
        e->cmp = SCN_CMP_EQ;
        if (want(p, "status") < 0 || want(p, "of") < 0 || want_selector(p, &st->sel) < 0 ||
            want(p, "==") < 0)
            return -1;
        int v = want_one_of(p, w, "'online' or 'offline'");
        if (v < 0)
            return -1;
        e->online = v == 0;
        return expect_tail(p, st, within_required);
    }
    case 4: /* registrations of <sel> arrive in order */
        e->kind = SCN_EXP_ORDER;
        if (want(p, "of") < 0 || want_selector(p, &st->sel) < 0 || want(p, "arrive") < 0 ||
            want(p, "in") < 0 || want(p, "order") < 0)
            return -1;
        return expect_tail(p, st, within_required);
    default:
        break;
    }
    /* [sum] <counter> [<reason>] <cmp> <value> [on <sel>] */
    e->kind = SCN_EXP_COUNTER;
    e->sum = k == 5;
    int c = match(p, COUNTER_WORDS);
    if (c < 0) {
        const char *cands[SCN_CTR_COUNT + 1 + 6];
        size_t n = 0;
        for (size_t j = 0; j < 5 && !e->sum; j++)
            cands[n++] = starts[j];
        for (size_t j = 0; COUNTER_WORDS[j]; j++)
            cands[n++] = COUNTER_WORDS[j];
        cands[n] = NULL;
        return expected_one_of(p, e->sum ? "a device counter such as rejects_total"
                                         : "an expectation (ledger ..., will published for ..., "
                                           "no will for ..., retained status of ..., "
                                           "registrations of ..., [sum] <device counter> ...)",
                               cands);
    }
    e->counter = (enum scn_counter)c;
    if (e->counter == SCN_CTR_REJECTS) {
        int r = want_one_of(p, REJECT_WORDS, "a reject reason such as missing_field after "
                                             "'rejects' (or write rejects_total)");
        if (r < 0)
            return -1;
        e->reason = (enum scn_reject)r;
    }
    if (e->counter == SCN_CTR_SCREEN) {
        if (want_screen_cmp(p, e) < 0)
            return -1;
    } else if (want_cmp(p, &e->cmp) < 0 ||
               parse_value(p, scn_counter_is_bool(e->counter) && !e->sum, false, &e->value) < 0) {
        return -1;
    }
    if (opt_selector(p, "on", SCN_SEL_ALL, &st->sel) < 0)
        return -1;
    return expect_tail(p, st, within_required);
}

/* ================================================================ actions */

static bool needs_proxy(const struct scn_group *g)
{
    return g->link != SCN_LINK_PROXY;
}

static bool needs_per_device(const struct scn_group *g)
{
    return g->layout != SCN_LAYOUT_PER_DEVICE;
}

/* Faults act on the proxy of each selected device's link. */
static int check_proxy(struct parser *p, const struct scn_step *st, uint32_t col)
{
    const struct scn_group *g = sel_find_group(p->s, &st->sel, needs_proxy);
    if (g)
        return fail_at(p, col, "%s needs a fault proxy, but group '%s' (line %u) has 'link "
                               "direct'; add 'link proxy' to it",
                       scn_action_name(st->action), g->name, g->pos.line);
    return 0;
}

static int parse_fault_tail(struct parser *p, struct scn_step *st, uint32_t col)
{
    if (opt_selector(p, "on", SCN_SEL_ALL, &st->sel) < 0 || want_end(p) < 0)
        return -1;
    return check_proxy(p, st, col);
}

/* Each action form below parses the words after its keyword (col: the keyword's column). */

/* drop next N <pkt> <dir> | drop all <pkt> <dir>; duplicate next N PUBLISH <dir> */
static int act_drop_or_duplicate(struct parser *p, struct scn_step *st, uint32_t col, bool drop)
{
    st->action = drop ? SCN_ACT_DROP : SCN_ACT_DUPLICATE;
    if (drop && accept(p, "all")) {
        st->u.fault.count = 0;
    } else if (want(p, "next") < 0 ||
               want_u32(p, 1, 1000000, "how many packets, such as 1", &st->u.fault.count) < 0) {
        return -1;
    }
    uint32_t pcol = here_col(p);
    if (want_packet(p, false, &st->u.fault.packet) < 0)
        return -1;
    if (!drop && st->u.fault.packet != SCN_PKT_PUBLISH)
        return fail_at(p, pcol, "the fault proxy duplicates PUBLISH packets only; write "
                                "'duplicate next %u PUBLISH ...'", st->u.fault.count);
    if (want_direction(p, &st->u.fault.dir) < 0)
        return -1;
    return parse_fault_tail(p, st, col);
}

static int act_drop(struct parser *p, struct scn_step *st, uint32_t col)
{
    return act_drop_or_duplicate(p, st, col, true);
}

static int act_duplicate(struct parser *p, struct scn_step *st, uint32_t col)
{
    return act_drop_or_duplicate(p, st, col, false);
}

/* delay <pkt|all> <dir> by <duration> */
static int act_delay(struct parser *p, struct scn_step *st, uint32_t col)
{
    st->action = SCN_ACT_DELAY;
    if (want_packet(p, true, &st->u.fault.packet) < 0 ||
        want_direction(p, &st->u.fault.dir) < 0 || want(p, "by") < 0 ||
        want_duration(p, false, &st->u.fault.delay_ms) < 0)
        return -1;
    return parse_fault_tail(p, st, col);
}

/* cut link rst|fin */
static int act_cut(struct parser *p, struct scn_step *st, uint32_t col)
{
    static const char *const w[] = {"rst", "fin", NULL};
    st->action = SCN_ACT_CUT;
    if (want(p, "link") < 0)
        return -1;
    int r = want_one_of(p, w, "'rst' (reset) or 'fin' (orderly close)");
    if (r < 0)
        return -1;
    st->u.rst = r == 0;
    return parse_fault_tail(p, st, col);
}

static int act_blackhole(struct parser *p, struct scn_step *st, uint32_t col)
{
    st->action = SCN_ACT_BLACKHOLE;
    if (want(p, "link") < 0)
        return -1;
    return parse_fault_tail(p, st, col);
}

static int act_throttle(struct parser *p, struct scn_step *st, uint32_t col)
{
    st->action = SCN_ACT_THROTTLE;
    if (want_byte_rate(p, &st->u.bytes_per_s) < 0)
        return -1;
    return parse_fault_tail(p, st, col);
}

static int act_refuse(struct parser *p, struct scn_step *st, uint32_t col)
{
    st->action = SCN_ACT_REFUSE;
    if (want(p, "connections") < 0)
        return -1;
    return parse_fault_tail(p, st, col);
}

static int act_heal(struct parser *p, struct scn_step *st, uint32_t col)
{
    st->action = SCN_ACT_HEAL;
    return parse_fault_tail(p, st, col);
}

/* inject malformed <frame> [to <sel>] */
static int act_inject(struct parser *p, struct scn_step *st, uint32_t col)
{
    st->action = SCN_ACT_INJECT;
    if (want(p, "malformed") < 0)
        return -1;
    int f = want_one_of(p, FRAME_WORDS, "a malformed frame kind (bad_length, truncated, "
                                        "oversize, reserved_type)");
    if (f < 0)
        return -1;
    st->u.frame = (enum scn_frame)f;
    if (opt_selector(p, "to", SCN_SEL_ALL, &st->sel) < 0 || want_end(p) < 0)
        return -1;
    return check_proxy(p, st, col);
}

/* broker stop|kill|restart */
static int act_broker(struct parser *p, struct scn_step *st, uint32_t col)
{
    static const char *const w[] = {"stop", "kill", "restart", NULL};
    (void)col;
    int b = want_one_of(p, w, "'stop', 'kill' or 'restart' after 'broker'");
    if (b < 0)
        return -1;
    st->action = (enum scn_action)(SCN_ACT_BROKER_STOP + b);
    return want_end(p);
}

/* publish [N] items|malformed <kind>: the count and the kind */
static int publish_what(struct parser *p, struct scn_step *st)
{
    uint32_t n = 1;
    bool counted = false;
    if (!at_end(p) && is_digit(peek(p)->s[0])) {
        if (want_u32(p, 1, MAX_COUNT, "how many items, such as 20", &n) < 0)
            return -1;
        counted = true;
    }
    static const char *const w[] = {"items", "malformed", "item", NULL};
    int m = want_one_of(p, w, counted ? "'items' or 'malformed'"
                                      : "how many items (such as 20 items) or 'malformed'");
    if (m < 0)
        return -1;
    uint32_t mcol = p->ln->toks[p->i - 1].col;
    if (m == 2 && n != 1)
        return fail_at(p, mcol, "expected 'items' after %u, found 'item'", n);
    st->u.publish.count = n;
    if (m != 1) {
        if (!counted)
            return fail_at(p, mcol, "expected how many items before 'items', such as "
                                    "'publish 20 items'");
        st->action = SCN_ACT_PUBLISH_ITEMS;
        return 0;
    }
    st->action = SCN_ACT_PUBLISH_MALFORMED;
    int r = want_one_of(p, REJECT_WORDS, "a malformed item kind such as invalid_json "
                                         "or missing_field");
    if (r < 0)
        return -1;
    if (r == SCN_REJECT_UNKNOWN_TOPIC)
        return fail_at(p, p->ln->toks[p->i - 1].col, "unknown_topic is not a payload "
                                                    "the backend can publish");
    st->u.publish.kind = (enum scn_reject)r;
    return 0;
}

/* publish [N] items|malformed <kind> [to <sel>] */
static int act_publish(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    if (publish_what(p, st) < 0)
        return -1;
    uint32_t scol = here_col(p);
    if (opt_selector(p, "to", SCN_SEL_NONE, &st->sel) < 0 || want_end(p) < 0)
        return -1;
    const struct scn_group *g = sel_find_group(p->s, &st->sel, needs_per_device);
    if (g)
        return fail_at(p, scol, "publishing to chosen devices needs 'layout per-device', but "
                                "group '%s' (line %u) uses the seed layout, where every "
                                "device sees every item", g->name, g->pos.line);
    return 0;
}

/* The tail of operator and device actions: [on] <selector>, end of line. */
static int device_tail(struct parser *p, struct scn_step *st)
{
    if (opt_selector(p, "on", SCN_SEL_ALL, &st->sel) < 0)
        return -1;
    return want_end(p);
}

/* scan tag HEX | scan random tag | scan wrong tag */
static int act_scan(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    if (accept(p, "tag")) {
        st->action = SCN_ACT_SCAN_TAG;
        if (want_tag(p, st->u.tag.uid, &st->u.tag.len) < 0)
            return -1;
        return device_tail(p, st);
    }
    static const char *const w[] = {"random", "wrong", NULL};
    int r = want_one_of(p, w, "'tag <HEX>', 'random tag' or 'wrong tag' after 'scan'");
    if (r < 0)
        return -1;
    st->action = r == 0 ? SCN_ACT_SCAN_RANDOM : SCN_ACT_SCAN_WRONG;
    if (want(p, "tag") < 0)
        return -1;
    return device_tail(p, st);
}

static int act_confirm(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    st->action = SCN_ACT_CONFIRM;
    return device_tail(p, st);
}

static int act_cancel(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    st->action = SCN_ACT_CANCEL;
    return device_tail(p, st);
}

static int act_mode(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    st->action = SCN_ACT_MODE;
    return device_tail(p, st);
}

static int act_restart(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    st->action = SCN_ACT_RESTART;
    return device_tail(p, st);
}

/* <keyword> <one of words>: actions[k] for the k-th word, then the device tail. */
static int act_choice(struct parser *p, struct scn_step *st, const char *const *words,
                      const char *what, const enum scn_action *actions)
{
    int r = want_one_of(p, words, what);
    if (r < 0)
        return -1;
    st->action = actions[r];
    return device_tail(p, st);
}

static int act_operator(struct parser *p, struct scn_step *st, uint32_t col)
{
    static const char *const w[] = {"pause", "resume", NULL};
    static const enum scn_action a[] = {SCN_ACT_OPERATOR_PAUSE, SCN_ACT_OPERATOR_RESUME};
    (void)col;
    return act_choice(p, st, w, "'pause' or 'resume' after 'operator'", a);
}

static int act_power(struct parser *p, struct scn_step *st, uint32_t col)
{
    static const char *const w[] = {"off", "on", "cut", NULL};
    static const enum scn_action a[] = {SCN_ACT_POWER_OFF, SCN_ACT_POWER_ON, SCN_ACT_POWER_CUT};
    (void)col;
    return act_choice(p, st, w, "'off', 'on' or 'cut' after 'power'", a);
}

static int act_network(struct parser *p, struct scn_step *st, uint32_t col)
{
    static const char *const w[] = {"down", "up", NULL};
    static const enum scn_action a[] = {SCN_ACT_NETWORK_DOWN, SCN_ACT_NETWORK_UP};
    (void)col;
    return act_choice(p, st, w, "'down' or 'up' after 'network'", a);
}

static int act_command(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    return parse_command(p, st);
}

static int act_device(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    return parse_forged_command(p, st);
}

static int act_expect(struct parser *p, struct scn_step *st, uint32_t col)
{
    (void)col;
    return parse_expectation(p, st, false);
}

/* The actions: the word that starts each, and the function that parses the rest. */
static const struct {
    const char *word;
    int (*parse)(struct parser *p, struct scn_step *st, uint32_t col);
} ACTIONS[] = {
    {"drop", act_drop},         {"delay", act_delay},       {"duplicate", act_duplicate},
    {"cut", act_cut},           {"blackhole", act_blackhole}, {"throttle", act_throttle},
    {"refuse", act_refuse},     {"heal", act_heal},         {"inject", act_inject},
    {"broker", act_broker},     {"publish", act_publish},   {"scan", act_scan},
    {"confirm", act_confirm},   {"cancel", act_cancel},     {"mode", act_mode},
    {"inventory", act_mode},    {"operator", act_operator}, {"power", act_power},
    {"restart", act_restart},   {"network", act_network},   {"command", act_command},
    {"device", act_device},     {"expect", act_expect},
};
#define N_ACTIONS (sizeof ACTIONS / sizeof ACTIONS[0])

/* Index of the action the next word starts (consumed), or -1 (nothing consumed). */
static int match_action(struct parser *p)
{
    const struct scn__tok *t = peek(p);
    for (size_t k = 0; t && k < N_ACTIONS; k++)
        if (scn__tok_is(t, ACTIONS[k].word)) {
            p->i++;
            return (int)k;
        }
    return -1;
}

static int parse_action(struct parser *p, struct scn_step *st)
{
    const char *words[N_ACTIONS + 1];
    for (size_t k = 0; k < N_ACTIONS; k++)
        words[k] = ACTIONS[k].word;
    words[N_ACTIONS] = NULL;
    /* The hint names every action of the table, so the two cannot drift apart. */
    char hint[512];
    size_t n = (size_t)snprintf(hint, sizeof hint, "an action (");
    for (size_t k = 0; k < N_ACTIONS; k++) {
        if (strcmp(ACTIONS[k].word, "expect") == 0)
            continue;
        n += (size_t)snprintf(hint + n, n < sizeof hint ? sizeof hint - n : 0, "%s%s",
                              k ? ", " : "", ACTIONS[k].word);
    }
    if (n < sizeof hint)
        snprintf(hint + n, sizeof hint - n, ") or 'expect'");
    uint32_t col = here_col(p);
    int k = want_one_of(p, words, hint);
    if (k < 0)
        return -1;
    st->sel.group = -1;
    return ACTIONS[k].parse(p, st, col);
}

/* ================================================================ steps */

static struct scn_step *new_step(struct parser *p)
{
    struct scn_scenario *s = p->s;
    if (s->n_steps == p->cap_steps) {
        size_t cap = p->cap_steps ? p->cap_steps * 2 : 16;
        struct scn_step *st = realloc(s->steps, cap * sizeof *st);
        if (!st) {
            p->nomem = true;
            return NULL;
        }
        s->steps = st;
        p->cap_steps = cap;
    }
    struct scn_step *st = &s->steps[s->n_steps++];
    memset(st, 0, sizeof *st);
    st->sel.group = -1;
    return st;
}

static int check_declared(struct parser *p)
{
    if (p->s->n_groups == 0)
        return fail_at(p, 1, "steps need devices: declare a group before the first step "
                             "(for example 'group fleet of 10 devices')");
    return 0;
}

/* No group's id prefix may start another's ("scanner-" and "scanner-1x"): every device id
   must name one device. Checked once, when the declarations are complete. */
static int check_prefixes(struct parser *p)
{
    const struct scn_scenario *s = p->s;
    for (size_t a = 0; a < s->n_groups; a++)
        for (size_t b = 0; b < s->n_groups; b++) {
            const char *pa = s->groups[a].id_prefix, *pb = s->groups[b].id_prefix;
            if (a != b && strncmp(pa, pb, strlen(pa)) == 0) {
                struct scn__line *keep = p->ln, at;
                memset(&at, 0, sizeof at);
                at.lineno = s->groups[b].pos.line;
                p->ln = &at;
                fail_at(p, 1, "group '%s' has the id prefix '%s', which starts with the prefix "
                              "'%s' of group '%s' (line %u): device ids would be ambiguous; set a "
                              "distinct 'id_prefix'", s->groups[b].name, pb, pa,
                        s->groups[a].name, s->groups[a].pos.line);
                p->ln = keep;
                return -1;
            }
        }
    return 0;
}

/* at | after | wait | expect */
static int parse_step(struct parser *p, int kind)
{
    const struct scn__tok *first = peek(p);
    if (check_declared(p) < 0)
        return -1;
    if (p->s->n_steps == SCN_MAX_STEPS)
        return fail_at(p, first->col, "too many steps (at most %d)", SCN_MAX_STEPS);
    struct scn_step *st = new_step(p);
    if (!st)
        return -1;
    if (!p->first_step_line) {
        p->first_step_line = p->ln->lineno;
        if (check_prefixes(p) < 0)
            return -1;
    }
    st->pos.file = p->s->file;
    st->pos.line = p->ln->lineno;
    st->pos.col = first->col;
    p->i++;
    switch (kind) {
    case 0: { /* at <dur> <action> */
        uint32_t col = here_col(p);
        st->timing = SCN_AT;
        if (want_duration(p, true, &st->time_ms) < 0)
            return -1;
        if (st->time_ms < p->last_at_ms)
            return fail_at(p, col, "'at %.3fs' comes before the time of the step on line %u "
                                   "(at %.3fs): steps run in file order, so 'at' times must not "
                                   "go backwards",
                           (double)st->time_ms / 1000, p->last_at_line,
                           (double)p->last_at_ms / 1000);
        p->last_at_ms = st->time_ms;
        p->last_at_line = p->ln->lineno;
        return parse_action(p, st);
    }
    case 1: /* after <dur> <action> */
        st->timing = SCN_AFTER;
        if (want_duration(p, true, &st->time_ms) < 0)
            return -1;
        return parse_action(p, st);
    case 2: /* wait <dur> | wait until <condition> within <expr> */
        if (accept(p, "until")) {
            st->timing = SCN_WAIT_UNTIL;
            return parse_expectation(p, st, true);
        }
        st->timing = SCN_WAIT;
        st->action = SCN_ACT_NOTHING;
        if (at_end(p) || !is_digit(peek(p)->s[0]))
            return expected(p, "a duration such as 2s, or 'until <condition> within <duration>'");
        if (want_duration(p, false, &st->time_ms) < 0)
            return -1;
        return want_end(p);
    default: /* expect ... */
        st->timing = SCN_THEN;
        return parse_expectation(p, st, false);
    }
}

/* ================================================================ blocks */

/* A setting may appear once per block. */
static int once(struct parser *p, int bit, const struct scn__tok *kw)
{
    if (p->seen & (1u << bit))
        return fail_at(p, kw->col, "'%.*s' is set twice in this block", (int)kw->len, kw->s);
    p->seen |= 1u << bit;
    return 0;
}

static const char *const BROKER_SETTINGS[] = {"persistence", "autosave_interval",
                                              "autosave_on_changes", "max_queued_messages", NULL};

static int parse_broker_setting(struct parser *p)
{
    struct scn_broker *b = &p->s->broker;
    const struct scn__tok *kw = peek(p);
    int k = want_one_of(p, BROKER_SETTINGS, "a broker setting (persistence, autosave_interval, "
                                            "autosave_on_changes, max_queued_messages)");
    if (k < 0 || once(p, k, kw) < 0)
        return -1;
    int rc = 0;
    switch (k) {
    case 0:
        rc = want_on_off(p, &b->persistence);
        break;
    case 1:
        rc = want_u32(p, 1, 86400 * 365, "a number of seconds (or changes) such as 1",
                      &b->autosave_interval);
        break;
    case 2:
        rc = want_on_off(p, &b->autosave_on_changes);
        break;
    default:
        rc = want_u32(p, 0, UINT32_MAX, "a number of messages (0 = unlimited)",
                      &b->max_queued_messages);
        break;
    }
    if (rc < 0)
        return rc;
    /* The defaults (persistence on, nothing dropped) are what any broker is taken to do;
       any other value configures mosquitto. */
    bool is_default = (k == 0 && b->persistence) || (k == 2 && !b->autosave_on_changes) ||
                      (k == 3 && b->max_queued_messages == 0);
    if (!is_default && b->kind == SCN_BROKER_RABBITMQ)
        return fail_at(p, kw->col, "'%.*s' with this value is a mosquitto setting that broker "
                                   "rabbitmq cannot honour; remove it or use 'broker mosquitto'",
                       (int)kw->len, kw->s);
    if (!is_default && !b->settings_written) {
        b->settings_written = true;
        b->settings_line = p->ln->lineno;
    }
    return want_end(p);
}

static const char *const GROUP_SETTINGS[] = {"id_prefix", "session", "qos", "mqtt", "keepalive",
                                             "layout", "link", "flash", "operator", NULL};

static int parse_operator(struct parser *p, struct scn_operator *op)
{
    static const char *const modes[] = {"auto", "manual", NULL};
    static const char *const opts[] = {"think", "wrong_tags", "cancels", NULL};
    int m = want_one_of(p, modes, "'auto' or 'manual'");
    if (m < 0)
        return -1;
    op->mode = (enum scn_operator_mode)m;
    uint32_t seen = 0;
    while (!at_end(p)) {
        if (m == 1)
            return expected(p, "end of line (a manual operator has no settings)");
        const struct scn__tok *kw = peek(p);
        int o = want_one_of(p, opts, "an operator setting (think, wrong_tags, cancels)");
        if (o < 0)
            return -1;
        if (seen & (1u << o))
            return fail_at(p, kw->col, "'%.*s' is set twice on this line", (int)kw->len, kw->s);
        seen |= 1u << o;
        int rc = o == 0 ? want_duration_range(p, &op->think_min_ms, &op->think_max_ms)
               : o == 1 ? want_percent(p, &op->wrong_tag_bp)
                        : want_percent(p, &op->cancel_bp);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int parse_group_setting(struct parser *p)
{
    struct scn_group *g = &p->s->groups[p->s->n_groups - 1];
    const struct scn__tok *kw = peek(p);
    int k = want_one_of(p, GROUP_SETTINGS, "a group setting (id_prefix, session, qos, mqtt, "
                                           "keepalive, layout, link, flash, operator)");
    if (k < 0 || once(p, k, kw) < 0)
        return -1;
    int rc = 0, v;
    switch (k) {
    case 0: {
        uint32_t col = here_col(p);
        rc = want_name(p, "an id prefix such as scanner- (letters, digits, '_' and '-')", true,
                       SCN_NAME_MAX - 11, g->id_prefix);
        if (rc == 0 && is_digit(g->id_prefix[strlen(g->id_prefix) - 1]))
            return fail_at(p, col, "an id prefix must not end with a digit (scanner-1 would then "
                                   "be ambiguous); add a '-' such as '%s-'", g->id_prefix);
        if (rc == 0)
            for (size_t j = 0; j + 1 < p->s->n_groups; j++)
                if (strcmp(p->s->groups[j].id_prefix, g->id_prefix) == 0)
                    return fail_at(p, col, "group '%s' (line %u) already uses the id prefix '%s'; "
                                           "device ids must be unique", p->s->groups[j].name,
                                   p->s->groups[j].pos.line, g->id_prefix);
        break;
    }
    case 1: {
        static const char *const w[] = {"persistent", "clean", NULL};
        if ((v = want_one_of(p, w, "'persistent' or 'clean'")) < 0)
            return -1;
        g->session = (enum scn_session)v;
        break;
    }
    case 2: {
        static const char *const w[] = {"0", "1", "2", NULL};
        if ((v = want_one_of(p, w, "QoS 0, 1 or 2")) < 0)
            return -1;
        g->qos = v;
        break;
    }
    case 3: {
        static const char *const w[] = {"3.1.1", "5", NULL};
        if ((v = want_one_of(p, w, "an MQTT version: 3.1.1 or 5")) < 0)
            return -1;
        g->mqtt = (enum scn_mqtt)v;
        break;
    }
    case 4: {
        if (accept(p, "off")) {
            g->keepalive_s = 0;
            break;
        }
        const struct scn__tok *t = peek(p);
        int64_t ms;
        if (!t || !scan_duration(t, 0, t->len, &ms) || ms % 1000 != 0 || ms == 0 ||
            ms > 65535000)
            return expected(p, "a keep-alive in whole seconds such as 10s (1s to 65535s), or 'off'");
        g->keepalive_s = (uint32_t)(ms / 1000);
        p->i++;
        break;
    }
    case 5: {
        static const char *const w[] = {"seed", "per-device", NULL};
        if ((v = want_one_of(p, w, "'seed' or 'per-device'")) < 0)
            return -1;
        g->layout = (enum scn_layout)v;
        break;
    }
    case 6: {
        static const char *const w[] = {"direct", "proxy", NULL};
        if ((v = want_one_of(p, w, "'direct' or 'proxy'")) < 0)
            return -1;
        g->link = (enum scn_link)v;
        break;
    }
    case 7:
        rc = want_on_off(p, &g->flash);
        break;
    default:
        rc = parse_operator(p, &g->op);
        break;
    }
    return rc < 0 ? rc : want_end(p);
}

static const char *const BACKEND_SETTINGS[] = {"items", "rate", "malformed", NULL};

static int parse_backend_setting(struct parser *p)
{
    struct scn_backend *b = &p->s->backend;
    const struct scn__tok *kw = peek(p);
    int k = want_one_of(p, BACKEND_SETTINGS, "a backend setting (items, rate, malformed)");
    if (k < 0 || once(p, k, kw) < 0)
        return -1;
    if (k == 0) {
        uint64_t n;
        if (want_uint(p, MAX_COUNT, "how many items, such as 200", &n) < 0)
            return -1;
        b->items = n;
        if (accept(p, "per")) {
            if (want(p, "device") < 0)
                return -1;
            b->per_device = true;
        }
    } else if (k == 1) {
        if (want_item_rate(p, &b->rate_per_s) < 0)
            return -1;
    } else {
        if (want_u32(p, 1, MAX_COUNT, "how many malformed items, such as 6", &b->malformed) < 0)
            return -1;
        while (!at_end(p)) {
            int r = want_one_of(p, REJECT_WORDS, "a malformed item kind such as invalid_json");
            if (r < 0)
                return -1;
            if (r == SCN_REJECT_UNKNOWN_TOPIC)
                return fail_at(p, p->ln->toks[p->i - 1].col,
                               "unknown_topic is not a payload the backend can publish");
            b->malformed_kinds |= 1u << r;
            if (!at_end(p) && want(p, ",") < 0)
                return -1;
            if (p->ln->toks[p->i - 1].len == 1 && p->ln->toks[p->i - 1].s[0] == ',' && at_end(p))
                return expected(p, "a malformed item kind after ','");
        }
        if (b->malformed_kinds == 0)
            b->malformed_kinds = ((1u << SCN_REJECT_COUNT) - 1) & ~(1u << SCN_REJECT_UNKNOWN_TOPIC);
    }
    return want_end(p);
}

/* ================================================================ top level */

static int before_steps(struct parser *p, const struct scn__tok *kw)
{
    if (p->first_step_line)
        return fail_at(p, kw->col, "'%.*s' must come before the first step (line %u): "
                                   "declarations first, then steps",
                       (int)kw->len, kw->s, p->first_step_line);
    return 0;
}

static int single(struct parser *p, uint32_t *line, const struct scn__tok *kw)
{
    if (*line)
        return fail_at(p, kw->col, "'%.*s' is already given on line %u", (int)kw->len, kw->s,
                       *line);
    *line = p->ln->lineno;
    return 0;
}

static int append_description(struct parser *p)
{
    const struct scn__line *ln = p->ln;
    if (at_end(p))
        return expected(p, "a description (words up to the end of the line)");
    const char *from = ln->toks[p->i].s;
    const struct scn__tok *last = &ln->toks[ln->n - 1];
    size_t n = (size_t)(last->s + last->len - from);
    size_t need = p->desc_len + n + 2;
    if (need > p->desc_cap) {
        size_t cap = p->desc_cap ? p->desc_cap : 64;
        while (cap < need)
            cap *= 2;
        char *d = realloc(p->s->description, cap);
        if (!d) {
            p->nomem = true;
            return -1;
        }
        p->s->description = d;
        p->desc_cap = cap;
    }
    if (p->desc_len)
        p->s->description[p->desc_len++] = ' ';
    memcpy(p->s->description + p->desc_len, from, n);
    p->desc_len += n;
    p->s->description[p->desc_len] = '\0';
    p->i = ln->n;
    return 0;
}

static int parse_group_line(struct parser *p)
{
    struct scn_scenario *s = p->s;
    uint32_t col = here_col(p);
    if (s->n_groups == SCN_MAX_GROUPS)
        return fail_at(p, col, "too many groups (at most %d)", SCN_MAX_GROUPS);
    if (s->n_groups == p->cap_groups) {
        size_t cap = p->cap_groups ? p->cap_groups * 2 : 4;
        struct scn_group *g = realloc(s->groups, cap * sizeof *g);
        if (!g) {
            p->nomem = true;
            return -1;
        }
        s->groups = g;
        p->cap_groups = cap;
    }
    struct scn_group *g = &s->groups[s->n_groups];
    memset(g, 0, sizeof *g);
    uint32_t name_col = here_col(p);
    if (want_name(p, "a group name such as fleet", false, SCN_NAME_MAX - 1, g->name) < 0)
        return -1;
    for (size_t j = 0; j < s->n_groups; j++)
        if (strcmp(s->groups[j].name, g->name) == 0)
            return fail_at(p, name_col, "group '%s' is already declared on line %u", g->name,
                           s->groups[j].pos.line);
    uint32_t count_col = here_col(p);
    if (want(p, "of") < 0 ||
        want_u32(p, 1, SCN_MAX_DEVICES, "how many devices, such as 10", &g->count) < 0)
        return -1;
    if (g->count == 1 ? !accept(p, "device") && want(p, "devices") < 0 : want(p, "devices") < 0)
        return -1;
    if (want_end(p) < 0)
        return -1;
    if (s->n_devices + g->count > SCN_MAX_DEVICES)
        return fail_at(p, count_col, "too many devices: at most %d in a scenario",
                       SCN_MAX_DEVICES);
    /* defaults: docs/protocol.md and fw_device_config_defaults() */
    /* the first group's devices are scanner-N; later groups default to <name>-N */
    if (s->n_groups == 0)
        snprintf(g->id_prefix, sizeof g->id_prefix, "scanner-");
    else
        snprintf(g->id_prefix, sizeof g->id_prefix, "%.*s-", SCN_NAME_MAX - 12, g->name);
    g->first = s->n_devices + 1;
    g->session = SCN_SESSION_PERSISTENT;
    g->qos = 1;
    g->mqtt = SCN_MQTT_311;
    g->keepalive_s = 30;
    g->layout = SCN_LAYOUT_SEED;
    g->link = SCN_LINK_DIRECT;
    g->flash = true;
    g->op.mode = SCN_OPERATOR_AUTO;
    g->op.think_min_ms = 100;
    g->op.think_max_ms = 300;
    g->pos.file = s->file;
    g->pos.line = p->ln->lineno;
    g->pos.col = p->ln->toks[0].col;
    s->n_groups++;
    s->n_devices += g->count;
    return 0;
}

static const char *const TOP_WORDS[] = {"scenario", "description", "seed", "timeout", "broker",
                                        "group", "backend", "at", "after", "wait", "expect",
                                        NULL};

static int parse_top_line(struct parser *p)
{
    struct scn_scenario *s = p->s;
    const struct scn__tok *kw = peek(p);
    int k = match(p, TOP_WORDS);
    if (k < 0) {
        if (match(p, GROUP_SETTINGS) >= 0 || match(p, BROKER_SETTINGS) >= 0 ||
            match(p, BACKEND_SETTINGS) >= 0) {
            p->i--;
            return fail_at(p, kw->col, "'%.*s' is a block setting: indent it under its "
                                       "'broker', 'group' or 'backend' line",
                           (int)kw->len, kw->s);
        }
        /* a step action written without its timing */
        if (match_action(p) >= 0) {
            p->i--;
            return fail_at(p, kw->col, "a step starts with its timing: write 'at 2s %.*s ...' "
                                       "or 'after 500ms %.*s ...'",
                           (int)kw->len, kw->s, (int)kw->len, kw->s);
        }
        return expected_one_of(p, "a line starting with scenario, description, seed, timeout, "
                                  "broker, group, backend, at, after, wait or expect",
                               TOP_WORDS);
    }
    if (k <= 6 && before_steps(p, kw) < 0)
        return -1;
    p->sec = SEC_TOP;
    p->seen = 0;
    switch (k) {
    case 0:
        if (single(p, &p->name_line, kw) < 0 ||
            want_name(p, "a scenario name such as happy_path", false, SCN_NAME_MAX - 1,
                      s->name) < 0)
            return -1;
        return want_end(p);
    case 1:
        return append_description(p);
    case 2: {
        if (single(p, &p->seed_line, kw) < 0 ||
            want_uint(p, UINT64_MAX, "a seed: a number from 0 to 18446744073709551615",
                      &s->seed) < 0)
            return -1;
        return want_end(p);
    }
    case 3:
        if (single(p, &p->timeout_line, kw) < 0 || want_duration(p, false, &s->timeout_ms) < 0)
            return -1;
        return want_end(p);
    case 4: {
        static const char *const w[] = {"plain", "password", "acl", "tls", "mtls", NULL};
        if (single(p, &p->broker_line, kw) < 0)
            return -1;
        s->broker.pos.file = s->file;
        s->broker.pos.line = p->ln->lineno;
        s->broker.pos.col = kw->col;
        static const char *const kinds[] = {"mosquitto", "rabbitmq", NULL};
        const struct scn__tok *word;
        int k = match(p, kinds);
        if (k >= 0) {
            s->broker.kind = (enum scn_broker_kind)k;
            s->broker.kind_written = true;
        }
        if (!at_end(p)) {
            word = peek(p);
            int v = want_one_of(p, w, k >= 0 ? "a broker variant (plain, password, acl, tls, mtls)"
                                             : "a broker (mosquitto, rabbitmq) or a variant (plain, "
                                               "password, acl, tls, mtls)");
            if (v < 0)
                return -1;
            if (v != SCN_BROKER_PLAIN && s->broker.kind == SCN_BROKER_RABBITMQ)
                return fail_at(p, word->col, "broker rabbitmq runs plain only (anonymous, plain "
                                             "TCP); '%.*s' needs 'broker mosquitto'",
                               (int)word->len, word->s);
            s->broker.variant = (enum scn_broker_variant)v;
            s->broker.settings_written |= v != SCN_BROKER_PLAIN;
        }
        p->sec = SEC_BROKER;
        return want_end(p);
    }
    case 5:
        if (parse_group_line(p) < 0)
            return -1;
        p->sec = SEC_GROUP;
        return 0;
    case 6:
        if (single(p, &p->backend_line, kw) < 0)
            return -1;
        s->backend.pos.file = s->file;
        s->backend.pos.line = p->ln->lineno;
        s->backend.pos.col = kw->col;
        p->sec = SEC_BACKEND;
        return want_end(p);
    default:
        p->i--;
        return parse_step(p, k - 7);
    }
}

static int parse_line(struct parser *p)
{
    if (!p->ln->indented)
        return parse_top_line(p);
    switch (p->sec) {
    case SEC_BROKER:
        return parse_broker_setting(p);
    case SEC_GROUP:
        return parse_group_setting(p);
    case SEC_BACKEND:
        return parse_backend_setting(p);
    default:
        return fail_at(p, p->ln->toks[0].col, "this line is indented, but no 'broker', 'group' "
                                              "or 'backend' block is open (steps and other lines "
                                              "start in column 1)");
    }
}

/* Whole-file rules, checked at the end. */
static int check_scenario(struct parser *p)
{
    struct scn_scenario *s = p->s;
    struct scn__line none;
    memset(&none, 0, sizeof none);
    none.lineno = 1;
    p->ln = &none;
    p->i = 0;
    if (!p->name_line)
        return fail_at(p, 1, "the file has no 'scenario <name>' line (add one such as "
                             "'scenario happy_path' at the top)");
    if (!p->timeout_line)
        return fail_at(p, 1, "the file has no 'timeout <duration>' line (add one such as "
                             "'timeout 30s'; a scenario that runs longer fails)");
    if (s->n_groups == 0)
        return fail_at(p, 1, "the file declares no devices (add a group such as "
                             "'group fleet of 10 devices')");
    if (!p->first_step_line && check_prefixes(p) < 0)
        return -1;
    if (!s->broker.persistence && (s->broker.autosave_interval || s->broker.autosave_on_changes)) {
        none.lineno = s->broker.pos.line;
        return fail_at(p, s->broker.pos.col, "autosave_interval and autosave_on_changes need "
                                             "'persistence on'");
    }
    for (size_t g = 0; s->broker.kind == SCN_BROKER_RABBITMQ && g < s->n_groups; g++) {
        if (s->groups[g].mqtt != SCN_MQTT_5)
            continue;
        none.lineno = s->groups[g].pos.line;
        return fail_at(p, s->groups[g].pos.col, "group '%s' has 'mqtt 5', but broker rabbitmq "
                       "(line %u) speaks MQTT 3.1.1 only; use 'mqtt 3.1.1'", s->groups[g].name,
                       s->broker.pos.line);
    }
    if (s->broker.autosave_on_changes && !s->broker.autosave_interval) {
        none.lineno = s->broker.pos.line;
        return fail_at(p, s->broker.pos.col, "autosave_on_changes needs autosave_interval (the "
                                             "number of changes between saves, such as 1)");
    }
    return 0;
}

/* ================================================================ API */

int scn_parse_buffer(const char *name, const char *text, size_t len,
                     struct scn_scenario **out, struct scn_diag *diag)
{
    int rc = SCN_ERR_SYNTAX;
    struct parser p;
    struct scn__line *line = NULL;
    struct scn_scenario *s = NULL;
    memset(&p, 0, sizeof p);
    if (out)
        *out = NULL;
    if (!name)
        name = "<buffer>";
    if (diag) {
        memset(diag, 0, sizeof *diag);
        snprintf(diag->file, sizeof diag->file, "%s", name);
    }
    if (!out || (!text && len)) {
        rc = SCN_ERR_INVAL;
        if (diag)
            snprintf(diag->message, sizeof diag->message, "bad argument to scn_parse_buffer");
        goto exit;
    }
    s = calloc(1, sizeof *s);
    line = malloc(sizeof *line);
    if (!s || !line || !(s->file = copy_string(name))) {
        p.nomem = true;
        goto exit;
    }
    s->seed = 1;
    s->broker.persistence = true;
    p.s = s;
    p.diag = diag;

    struct scn__reader r;
    scn__reader_init(&r, text, len);
    for (;;) {
        uint32_t col = 0;
        char msg[SCN_MESSAGE_MAX];
        int got = scn__next_line(&r, line, &col, msg, sizeof msg);
        if (got == 0)
            break;
        p.ln = line;
        p.i = 0;
        if (got < 0) {
            fail_at(&p, col, "%s", msg);
            goto exit;
        }
        if (line->n > 0 && parse_line(&p) < 0)
            goto exit;
    }
    if (check_scenario(&p) < 0)
        goto exit;
    if (!s->description && !(s->description = copy_string(""))) {
        p.nomem = true;
        goto exit;
    }
    rc = SCN_OK;
    *out = s;
    s = NULL;
exit:
    if (rc == SCN_ERR_SYNTAX && p.nomem) {
        rc = SCN_ERR_NOMEM;
        if (diag) {
            diag->line = 0;
            snprintf(diag->message, sizeof diag->message, "out of memory while parsing");
        }
    }
    free(line);
    scn_free(s);
    return rc;
}

int scn_parse_file(const char *path, struct scn_scenario **out, struct scn_diag *diag)
{
    const size_t max = 16u << 20;
    int rc = SCN_OK, err = 0;
    char *buf = NULL;
    size_t cap = 4096, len = 0;
    FILE *f = NULL;
    if (out)
        *out = NULL;
    if (!path || !out) {
        if (diag) {
            memset(diag, 0, sizeof *diag);
            snprintf(diag->message, sizeof diag->message, "bad argument to scn_parse_file");
        }
        return SCN_ERR_INVAL;
    }
    f = fopen(path, "rb");
    if (!f) {
        rc = SCN_ERR_IO;
        err = errno;
        goto exit;
    }
    for (;;) {
        if (!buf || len == cap) {
            size_t want = buf ? cap * 2 : cap;
            char *b = realloc(buf, want);
            if (!b) {
                rc = SCN_ERR_NOMEM;
                err = ENOMEM;
                goto exit;
            }
            buf = b;
            cap = want;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (len > max) {
            rc = SCN_ERR_IO;
            err = EFBIG;
            goto exit;
        }
        if (n == 0) {
            if (ferror(f)) {
                rc = SCN_ERR_IO;
                err = errno ? errno : EIO;
                goto exit;
            }
            break;
        }
    }
    rc = scn_parse_buffer(path, buf, len, out, diag);
exit:
    if (rc != SCN_OK && err && diag) {
        memset(diag, 0, sizeof *diag);
        snprintf(diag->file, sizeof diag->file, "%s", path);
        snprintf(diag->message, sizeof diag->message, "cannot read the scenario file: %s%s",
                 strerror(err), err == EFBIG ? " (at most 16 MiB)" : "");
    }
    if (f)
        fclose(f);
    free(buf);
    return rc;
}

void scn_free(struct scn_scenario *s)
{
    if (!s)
        return;
    free(s->file);
    free(s->description);
    free(s->groups);
    free(s->steps);
    free(s);
}
