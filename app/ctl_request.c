/*
 * ctl_request.c - the request of `scansim ctl`: command table, selector, args, cmd_ids.
 *
 * Sections: commands; selector (ids, ranges, lists, each id once); args (key=value into
 * JSON, the message's text, --force); cmd_ids and payloads.
 *
 * Only what is plainly malformed is refused here (an unknown command, a selector that names
 * no device, an arg without '='); values are the device's to range-check, so one place
 * (the firmware) says what a keepalive may be.
 */
#include "ctl_request.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CMD "ctl"

/* ---- commands ------------------------------------------------------------------------ */

const struct ctl_command ctl_commands[] = {
    {"identify", false, false, "[seconds=1..60]", "invert the OLED every 500 ms (default 5 s)"},
    {"message", true, false, "TEXT", "show TEXT (1..64 bytes) until a button is pressed"},
    {"status", false, false, "", "version, screen, queues, settings and counters"},
    {"config", false, false, "[keepalive=5..3600] [inventory_timeout=1..60] [contrast=0..255]",
     "change and persist settings"},
    {"reboot", false, true, "[--force]", "restart from flash (busy mid-registration)"},
    {"lock", false, false, "", "refuse every tag and button, also after a reboot"},
    {"unlock", false, false, "", "back to work"},
    {"clear_queue", false, true, "[--force]", "drop every pending item (busy mid-registration)"},
    {NULL, false, false, NULL, NULL},
};

const struct ctl_command *ctl_command_find(const char *word)
{
    for (const struct ctl_command *c = ctl_commands; c->name; c++)
        if (strcmp(c->name, word) == 0)
            return c;
    return NULL;
}

/* ---- selector ------------------------------------------------------------------------ */

/* A device id goes into a topic level: printable ASCII without '/', '+', '#' or ','. */
static bool ctl__id_ok(const char *s, size_t len)
{
    if (len == 0 || len >= CTL_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '/' || s[i] == '+' || s[i] == '#' || s[i] == ',')
            return false;
    return true;
}

static int ctl__add_id(struct ctl_request *r, size_t *cap, const char *s, size_t len)
{
    if (r->n_ids == CTL_DEVICES_MAX) {
        scansim_cli_error(CMD, "the selector names more than %d devices", CTL_DEVICES_MAX);
        return -1;
    }
    if (r->n_ids == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void *n = realloc(r->ids, ncap * sizeof *r->ids);
        if (!n) {
            scansim_cli_error(CMD, "out of memory for %zu device ids", ncap);
            return -1;
        }
        r->ids = n;
        *cap = ncap;
    }
    memcpy(r->ids[r->n_ids], s, len);
    r->ids[r->n_ids++][len] = '\0';
    return 0;
}

/* Split "scanner-17" into its prefix and number: the length of the prefix, or -1 when the
   text does not end in digits. */
static int ctl__split_number(const char *s, size_t len, unsigned long *num, int *width)
{
    size_t d = len;
    while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9')
        d--;
    if (d == len || len - d > 9)
        return -1;
    *num = strtoul(s + d, NULL, 10);
    *width = (s[d] == '0' && len - d > 1) ? (int)(len - d) : 0; /* scanner-01..10 keeps 2 */
    return (int)d;
}

/* PREFIX<A>..<B> or PREFIX<A>..PREFIX<B>. */
static int ctl__add_range(struct ctl_request *r, size_t *cap, const char *s, size_t len,
                          const char *dots)
{
    size_t left = (size_t)(dots - s), rlen = len - left - 2;
    const char *right = dots + 2;
    unsigned long a, b;
    int wa, wb;
    int pa = ctl__split_number(s, left, &a, &wa);
    int pb = ctl__split_number(right, rlen, &b, &wb);
    if (pa < 0 || pb < 0 || (pb > 0 && (pb != pa || memcmp(s, right, (size_t)pa) != 0)) || b < a)
        goto bad;
    if (b - a >= CTL_DEVICES_MAX) {
        scansim_cli_error(CMD, "'%.*s' names %lu devices, more than %d", (int)len, s, b - a + 1,
                      CTL_DEVICES_MAX);
        return -1;
    }
    for (unsigned long n = a; n <= b; n++) {
        char id[CTL_ID_MAX + 16];
        int k = snprintf(id, sizeof id, "%.*s%0*lu", pa, s, wa, n);
        if (k < 0 || !ctl__id_ok(id, (size_t)k) || ctl__add_id(r, cap, id, (size_t)k) != 0)
            goto bad;
    }
    return 0;
bad:
    scansim_cli_error(CMD, "bad range '%.*s': expected PREFIX<A>..<B> with A <= B, e.g. "
                  "scanner-1..100", (int)len, s);
    return -1;
}

static int ctl__ptr_cmp(const void *x, const void *y)
{
    const char *a = *(const char *const *)x, *b = *(const char *const *)y;
    int c = strcmp(a, b);
    return c ? c : (a < b ? -1 : a > b);
}

/* Keep the first of each id, in the order given. */
static int ctl__dedupe(struct ctl_request *r)
{
    if (r->n_ids < 2)
        return 0;
    char **sorted = malloc(r->n_ids * sizeof *sorted);
    if (!sorted) {
        scansim_cli_error(CMD, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < r->n_ids; i++)
        sorted[i] = r->ids[i];
    qsort(sorted, r->n_ids, sizeof *sorted, ctl__ptr_cmp);
    for (size_t i = 1; i < r->n_ids; i++)
        if (strcmp(sorted[i], sorted[i - 1]) == 0)
            sorted[i][0] = '\0'; /* a later copy: its first is sorted[i - 1] or before */
    free(sorted);
    size_t k = 0;
    for (size_t i = 0; i < r->n_ids; i++)
        if (r->ids[i][0] != '\0' && k++ != i)
            memcpy(r->ids[k - 1], r->ids[i], CTL_ID_MAX);
    r->n_ids = k;
    return 0;
}

static int ctl__parse_selector(struct ctl_request *r, const char *sel)
{
    size_t cap = 0;
    if (strcmp(sel, "all") == 0) {
        r->all = true;
        return 0;
    }
    for (const char *p = sel;; ) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *dots = NULL;
        for (size_t i = 0; i + 1 < len && !dots; i++)
            if (p[i] == '.' && p[i + 1] == '.')
                dots = p + i;
        if (len == 3 && memcmp(p, "all", 3) == 0) {
            scansim_cli_error(CMD, "'all' stands alone as a selector, got '%s'", sel);
            return -1;
        }
        if (dots) {
            if (ctl__add_range(r, &cap, p, len, dots) != 0)
                return -1;
        } else if (!ctl__id_ok(p, len)) {
            scansim_cli_error(CMD, "bad device id '%.*s' in selector '%s': expected 1..%d printable "
                          "characters without '/', '+', '#', ',' or spaces", (int)len, p, sel,
                          CTL_ID_MAX - 1);
            return -1;
        } else if (ctl__add_id(r, &cap, p, len) != 0) {
            return -1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return ctl__dedupe(r);
}

/* ---- args ---------------------------------------------------------------------------- */

/* A JSON number as a person types one: -?digits[.digits][e[+-]digits]. */
static bool ctl__is_number(const char *v, double *out)
{
    const char *p = v + (*v == '-');
    if (*p < '0' || *p > '9' || strpbrk(v, "xXiInN"))
        return false;
    char *end = NULL;
    errno = 0;
    *out = strtod(v, &end);
    return errno == 0 && end && *end == '\0';
}

static int ctl__add_arg(cJSON *args, const char *key, size_t klen, const char *value)
{
    char name[64];
    double num;
    if (klen == 0 || klen >= sizeof name) {
        scansim_cli_error(CMD, "bad argument '%s': expected key=value, e.g. keepalive=20", key);
        return -1;
    }
    memcpy(name, key, klen);
    name[klen] = '\0';
    if (cJSON_GetObjectItemCaseSensitive(args, name)) {
        scansim_cli_error(CMD, "argument '%s' is given twice", name);
        return -1;
    }
    cJSON *v;
    if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
        v = cJSON_CreateBool(value[0] == 't');
    else if (ctl__is_number(value, &num))
        v = cJSON_CreateNumber(num);
    else
        v = cJSON_CreateString(value);
    if (!v || !cJSON_AddItemToObject(args, name, v)) {
        cJSON_Delete(v);
        scansim_cli_error(CMD, "out of memory");
        return -1;
    }
    return 0;
}

static int ctl__parse_args(struct ctl_request *r, char **args, int n, bool force)
{
    const struct ctl_command *c = r->cmd;
    int i = 0;
    if (c->text) {
        if (n < 1 || args[0][0] == '\0') {
            scansim_cli_error(CMD, "%s needs its text, e.g. scansim ctl message scanner-7 "
                          "\"Go to dock 3\"", c->name);
            return -1;
        }
        if (!cJSON_AddStringToObject(r->args, "text", args[i++]))
            return -1;
    }
    for (; i < n; i++) {
        const char *eq = strchr(args[i], '=');
        if (!eq) {
            scansim_cli_error(CMD, "bad argument '%s': expected key=value, e.g. %s", args[i],
                          c->args[0] ? c->args : "none for this command");
            return -1;
        }
        if (ctl__add_arg(r->args, args[i], (size_t)(eq - args[i]), eq + 1) != 0)
            return -1;
    }
    if (force && !c->force) {
        scansim_cli_error(CMD, "--force is for reboot and clear_queue, not %s", c->name);
        return -1;
    }
    if (force && ctl__add_arg(r->args, "force", 5, "true") != 0)
        return -1;
    return 0;
}

static void ctl__unknown_command(const char *word)
{
    char list[256] = "";
    for (const struct ctl_command *c = ctl_commands; c->name; c++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", l ? ", " : "", c->name);
    }
    scansim_cli_error(CMD, "unknown command '%s': expected one of %s", word, list);
}

int ctl_request_parse(struct ctl_request *r, const char *cmd, const char *selector,
                      char **args, int n_args, bool force)
{
    memset(r, 0, sizeof *r);
    r->cmd = ctl_command_find(cmd);
    if (!r->cmd) {
        ctl__unknown_command(cmd);
        return -1;
    }
    r->args = cJSON_CreateObject();
    if (!r->args || ctl__parse_selector(r, selector) != 0 ||
        ctl__parse_args(r, args, n_args, force) != 0)
        return -1;
    r->args_json = cJSON_PrintUnformatted(r->args);
    if (!r->args_json)
        return -1;
    snprintf(r->cmd_id_base, sizeof r->cmd_id_base, "ctl-%x-%" PRIx32, (unsigned)getpid(),
             (uint32_t)time(NULL));
    return 0;
}

/* ---- cmd_ids and payloads ------------------------------------------------------------ */

void ctl_request_cmd_id(const struct ctl_request *r, size_t i, char *out)
{
    snprintf(out, CTL_CMD_ID_MAX, "%s-%zx", r->cmd_id_base, i);
}

int ctl_request_match(const struct ctl_request *r, const char *cmd_id, size_t *i)
{
    size_t bl = strlen(r->cmd_id_base);
    if (strncmp(cmd_id, r->cmd_id_base, bl) != 0 || cmd_id[bl] != '-')
        return -1;
    const char *hex = cmd_id + bl + 1;
    if (*hex == '\0' || strspn(hex, "0123456789abcdef") != strlen(hex) || strlen(hex) > 8)
        return -1;
    unsigned long n = strtoul(hex, NULL, 16);
    if (n >= (r->all ? 1 : r->n_ids))
        return -1;
    *i = (size_t)n;
    return 0;
}

size_t ctl_request_payload(const struct ctl_request *r, const char *cmd_id, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "{\"cmd_id\":\"%s\",\"cmd\":\"%s\",\"args\":%s}", cmd_id,
                     r->cmd->name, r->args_json);
    return (n < 0 || (size_t)n >= cap) ? 0 : (size_t)n;
}

void ctl_request_free(struct ctl_request *r)
{
    free(r->ids);
    cJSON_Delete(r->args);
    free(r->args_json);
    memset(r, 0, sizeof *r);
}
