/*
 * cmd_ctl.c - `scansim ctl <cmd> <selector> [args...]`: send a remote command to
 * scanners and show what each answered (docs/protocol.md, "Commands").
 *
 * Sections: help; options; the table; the JSON document; the command.
 *
 * The request is worked out first (ctl_request.c: command, selector, args), so a usage
 * error never touches the network; then one exchange with the broker (ctl_session.c);
 * then a table or one JSON document, and an exit code from the answers: 0 every device
 * addressed answered ok, 1 some refused or did not answer, 2 usage, 3 the broker.
 */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ctl_request.h"
#include "ctl_session.h"

#define CMD "ctl"
#define CTL_DEFAULT_BROKER "tcp://localhost:1883"

const char scansim_cmd_ctl_summary[] =
    "send a remote command (status, message, config, reboot, ...) to scanners";

/* ---- help ---------------------------------------------------------------------------- */

static const char ctl_help[] =
    "usage: scansim ctl <command> <selector> [args...] [options]\n"
    "\n"
    "Send a remote command to scanners over MQTT (scanners/<id>/command, or command/all) and\n"
    "show each device's reply (scanners/<id>/command/reply): result, reason and data.\n"
    "\n"
    "Selector: a device id (scanner-3), a range (scanner-1..100), a comma-separated list of\n"
    "these (scanner-1..4,scanner-9), or all (one publish on command/all; every device that\n"
    "answers within the time-out is shown: who did not answer is not known).\n"
    "Args: key=value; numbers become JSON numbers, true/false booleans, the rest strings.\n"
    "The device checks the values and says which one it refused (docs/protocol.md).\n"
    "\n"
    "Commands:\n"
    "%s"
    "\n"
    "Examples:\n"
    "  scansim ctl status scanner-3\n"
    "  scansim ctl message scanner-7 \"Go to dock 3\"\n"
    "  scansim ctl config scanner-2 keepalive=20 contrast=80\n"
    "  scansim ctl identify all seconds=10\n"
    "  scansim ctl reboot 'scanner-1..100' --force\n"
    "\n"
    "Options:\n"
    "  --timeout SECS          wait this long for the replies (default 5)\n"
    "  --json                  print one JSON document instead of the table\n"
    "  --force                 reboot / clear_queue even in the middle of a registration\n"
    "  -q, --qos 0|1|2         QoS of the commands (default 1; replies are taken at 1)\n"
    "  -h, --help              this text\n"
    "  --broker URI            default " CTL_DEFAULT_BROKER " (no broker is started)\n"
    "\n"
    "%s"
    "\n"
    "Exit codes: 0 every device addressed answered ok (with all: at least one answered and\n"
    "none refused); 1 a device refused or did not answer; 2 usage error (bad flag, selector\n"
    "or command); 3 broker unreachable, connection refused or lost, subscription refused.\n";

static void ctl__help(void)
{
    char list[2048] = "";
    size_t l = 0;
    for (const struct ctl_command *c = ctl_commands; c->name && l < sizeof list; c++) {
        if (strlen(c->args) > 17) /* its own line, the words under the others' */
            l += (size_t)snprintf(list + l, sizeof list - l, "  %-12s %s\n  %-12s %-17s %s\n",
                                  c->name, c->args, "", "", c->what);
        else
            l += (size_t)snprintf(list + l, sizeof list - l, "  %-12s %-17s %s\n", c->name,
                                  c->args, c->what);
    }
    printf(ctl_help, list, scansim_cli_common_help);
}

/* ---- options ------------------------------------------------------------------------- */

struct ctl_opts {
    struct scansim_cli_common common;
    long timeout_ms;
    bool json;
    bool force;
    double timeout_s;          /* as given, for the summary line */
};

/* 0 and *first (the first positional in argv), 1 for --help, or -1 (said why). */
static int ctl__parse_options(int argc, char **argv, struct ctl_opts *o, int *first)
{
    static const struct option longopts[] = {
        {"timeout", required_argument, 0, 0x3001},
        {"json", no_argument, 0, 0x3002},
        {"force", no_argument, 0, 0x3003},
        {"help", no_argument, 0, 'h'},
        SCANSIM_CLI_COMMON_OPTIONS,
        {0, 0, 0, 0},
    };
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h" SCANSIM_CLI_COMMON_SHORT, longopts, NULL)) != -1) {
        switch (opt) {
        case 0x3001:
            if (scansim_cli_parse_double(CMD, "--timeout", optarg, 0.1, 3600, &o->timeout_s) != 0)
                return -1;
            o->timeout_ms = lround(o->timeout_s * 1000.0);
            break;
        case 0x3002: o->json = true; break;
        case 0x3003: o->force = true; break;
        case 'h': return 1;
        case ':':
            scansim_cli_error(CMD, "%s needs a value; see scansim ctl --help", argv[optind - 1]);
            return -1;
        case '?':
            scansim_cli_error(CMD, "unknown option '%s'; see scansim ctl --help", argv[optind - 1]);
            return -1;
        default:
            if (scansim_cli_common_option(CMD, &o->common, opt, optarg) != 1)
                return -1;
        }
    }
    if (!o->common.broker_uri) {
        o->common.broker_uri = CTL_DEFAULT_BROKER;
        o->common.broker_uris[0] = CTL_DEFAULT_BROKER;
        o->common.n_brokers = 1;
    }
    if (scansim_cli_common_check(CMD, &o->common) != 0)
        return -1;
    if (argc - optind < 2) {
        scansim_cli_error(CMD, "expected <command> <selector> [args...]; see scansim ctl --help");
        return -1;
    }
    *first = optind;
    return 0;
}

/* ---- the table ----------------------------------------------------------------------- */

struct ctl_counts {
    size_t ok, refused, silent;
};

static const char *ctl__str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* One data field as key=value; false when it does not fit. */
static bool ctl__field(char *out, size_t cap, size_t *l, const cJSON *v)
{
    char val[96];
    if (cJSON_IsString(v))
        snprintf(val, sizeof val, "%s", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(val, sizeof val, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNumber(v))
        snprintf(val, sizeof val, "%.15g", v->valuedouble);
    else
        snprintf(val, sizeof val, "%s", cJSON_IsNull(v) ? "null" : "{...}");
    int n = snprintf(out + *l, cap - *l, "%s%s=%s", *l ? " " : "", v->string, val);
    if (n < 0 || (size_t)n >= cap - *l) {
        out[*l] = '\0';
        return false;
    }
    *l += (size_t)n;
    return true;
}

/* A compact summary of data: for status its key fields, else every field. */
static void ctl__summary(const char *cmd, const cJSON *data, char *out, size_t cap)
{
    static const char *const status_keys[] = {"version", "online", "screen", "locked", "pending",
                                              "outbox", "uptime_s", "boot_count", "keepalive",
                                              "last_error", NULL};
    size_t l = 0;
    out[0] = '\0';
    if (strcmp(cmd, "status") == 0 && cJSON_GetObjectItemCaseSensitive(data, "version")) {
        for (int k = 0; status_keys[k]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(data, status_keys[k]);
            if (v && !(cJSON_IsString(v) && !v->valuestring[0]) && !ctl__field(out, cap, &l, v))
                return;
        }
        return;
    }
    for (const cJSON *v = data ? data->child : NULL; v; v = v->next)
        if (!ctl__field(out, cap, &l, v))
            return;
}

static void ctl__count(const struct ctl_answers *a, struct ctl_counts *n)
{
    memset(n, 0, sizeof *n);
    for (size_t i = 0; i < a->n; i++) {
        if (!a->v[i].reply)
            n->silent++;
        else if (strcmp(ctl__str(a->v[i].reply, "result"), "ok") == 0)
            n->ok++;
        else
            n->refused++;
    }
}

static void ctl__print_table(const struct ctl_request *r, const struct ctl_answers *a,
                             const struct ctl_opts *o, const struct ctl_counts *n)
{
    printf("%-20s %-6s %-16s %s\n", "device", "result", "reason", "data");
    for (size_t i = 0; i < a->n; i++) {
        const cJSON *rep = a->v[i].reply;
        char data[256];
        if (!rep) {
            printf("%-20s %-6s %-16s\n", a->v[i].id, "-", "no answer");
            continue;
        }
        ctl__summary(r->cmd->name, cJSON_GetObjectItemCaseSensitive(rep, "data"), data, sizeof data);
        printf("%-20s %-6s %-16s %s\n", a->v[i].id, ctl__str(rep, "result"),
               ctl__str(rep, "reason"), data);
    }
    if (r->all)
        printf("%zu ok, %zu refused, %zu answered within %g s (all: devices that did not "
               "answer are not known)\n", n->ok, n->refused, n->ok + n->refused, o->timeout_s);
    else
        printf("%zu ok, %zu refused, %zu did not answer within %g s\n", n->ok, n->refused,
               n->silent, o->timeout_s);
}

/* ---- the JSON document --------------------------------------------------------------- */

static cJSON *ctl__json_entry(const struct ctl_answer *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "device_id", e->id);
    cJSON_AddStringToObject(j, "cmd_id", e->cmd_id);
    cJSON_AddBoolToObject(j, "answered", e->reply != NULL);
    if (!e->reply) {
        cJSON_AddNullToObject(j, "result");
        return j;
    }
    cJSON_AddStringToObject(j, "result", ctl__str(e->reply, "result"));
    cJSON_AddStringToObject(j, "reason", ctl__str(e->reply, "reason"));
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(e->reply, "data");
    cJSON_AddItemToObject(j, "data", data ? cJSON_Duplicate(data, 1) : cJSON_CreateObject());
    return j;
}

static int ctl__print_json(const struct ctl_request *r, const char *uri, const struct ctl_answers *a,
                           const struct ctl_opts *o, const struct ctl_counts *n, int exit_code)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "command", r->cmd->name);
    cJSON_AddItemToObject(doc, "args", cJSON_Duplicate(r->args, 1));
    cJSON_AddBoolToObject(doc, "all", r->all);
    cJSON_AddStringToObject(doc, "broker", uri);
    cJSON_AddNumberToObject(doc, "timeout_s", o->timeout_s);
    cJSON *devs = cJSON_AddArrayToObject(doc, "devices");
    for (size_t i = 0; i < a->n; i++)
        cJSON_AddItemToArray(devs, ctl__json_entry(&a->v[i]));
    cJSON *sum = cJSON_AddObjectToObject(doc, "summary");
    if (r->all)
        cJSON_AddNullToObject(sum, "addressed");
    else
        cJSON_AddNumberToObject(sum, "addressed", (double)a->n);
    cJSON_AddNumberToObject(sum, "ok", (double)n->ok);
    cJSON_AddNumberToObject(sum, "refused", (double)n->refused);
    cJSON_AddNumberToObject(sum, "no_answer", (double)n->silent);
    cJSON_AddNumberToObject(doc, "exit_code", exit_code);
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    if (!text) {
        scansim_cli_error(CMD, "out of memory printing the JSON document");
        return SCANSIM_EXIT_INTERNAL;
    }
    puts(text);
    free(text);
    return exit_code;
}

/* ---- the command --------------------------------------------------------------------- */

static int ctl__exit_code(const struct ctl_request *r, const struct ctl_counts *n)
{
    if (n->refused || n->silent || (r->all && n->ok == 0))
        return SCANSIM_EXIT_FAILED;
    return SCANSIM_EXIT_OK;
}

static int ctl__report(const struct ctl_request *r, const char *uri, const struct ctl_answers *a,
                       const struct ctl_opts *o, int session_rc)
{
    struct ctl_counts n;
    ctl__count(a, &n);
    int rc = session_rc != SCANSIM_EXIT_OK ? session_rc : ctl__exit_code(r, &n);
    if (a->publish_refused)
        scansim_cli_error(CMD, "the broker %s refused %d of the commands (MQTT 5 reason 0x%02x): "
                      "check that this user may write scanners/<id>/command (ACL)", uri,
                      a->publish_refused, (unsigned)a->publish_code);
    if (a->interrupted)
        scansim_cli_error(CMD, "interrupted: showing the replies so far");
    if (o->json)
        return ctl__print_json(r, uri, a, o, &n, rc);
    ctl__print_table(r, a, o, &n);
    return rc;
}

int scansim_cmd_ctl(int argc, char **argv)
{
    struct ctl_opts o = {.timeout_ms = 5000, .timeout_s = 5};
    struct ctl_request r;
    struct ctl_answers a = {0};
    int first;
    scansim_cli_common_defaults(&o.common);
    int p = ctl__parse_options(argc, argv, &o, &first);
    if (p != 0) {
        if (p > 0)
            ctl__help();
        return p > 0 ? SCANSIM_EXIT_OK : SCANSIM_EXIT_USAGE;
    }
    if (ctl_request_parse(&r, argv[first], argv[first + 1], argv + first + 2, argc - first - 2,
                          o.force) != 0) {
        ctl_request_free(&r);
        return SCANSIM_EXIT_USAGE;
    }
    scansim_cli_transport_setup(&o.common);
    scansim_cli_install_signals();
    int rc = ctl_session_run(&o.common, o.common.broker_uri, &r, o.timeout_ms, &a);
    if (rc == SCANSIM_EXIT_OK || (rc == SCANSIM_EXIT_BROKER && a.sent))
        rc = ctl__report(&r, o.common.broker_uri, &a, &o, rc);
    ctl_answers_free(&a);
    ctl_request_free(&r);
    return rc;
}
