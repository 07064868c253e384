/*
 * cmd_test.c - `scansim test [FILE|DIR]...`: run scenario files (scenarios/README.md) and
 * report each as PASS / FAIL, with a per-step timeline for failures, JUnit XML for CI, and
 * artefacts on request.
 *
 * Every file is parsed first; a file that does not parse is reported as
 * file:line:column: message and nothing runs (exit 2). Then each scenario runs in its own
 * child process (fork before any thread or Paho client exists in this process), so one
 * scenario cannot disturb another: each has its own broker, ports, proxies and devices, and
 * `-j N` runs N of them at once. A child writes its verdict and timeline into a result
 * file; the parent prints, collects the JUnit report and ends with the line
 * "N passed, M failed" that CI tooling reads.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hx/broker.h"
#include "hx/runner.h"
#include "hx/scenario.h"
#include "dash.h"
#include "sim/clock.h"
#include "sim/fs.h"

const char scansim_cmd_test_summary[] = "run scenario files (scripted faults and expectations) and report";

static const char test_help[] =
    "usage: scansim test [options] [FILE.scn | DIR]...\n"
    "\n"
    "Run scenarios: each starts its own private mosquitto, backend role, fault proxies and\n"
    "simulated scanners, runs its timed steps and checks its expectations\n"
    "(language: scenarios/README.md). A DIR means every *.scn in it, sorted by name; with no\n"
    "argument, scenarios/. Every file is parsed before anything runs.\n"
    "\n"
    "Options:\n"
    "  -j, --jobs N       run N scenarios at once (each has its own broker and ports; default 1);\n"
    "                     those on a shared broker (--broker, --broker-type rabbitmq) run\n"
    "                     one at a time beside the others\n"
    "      --junit FILE   write a JUnit XML report (one testcase per scenario)\n"
    "      --report FILE.html\n"
    "                     write one self-contained HTML report that opens offline: a\n"
    "                     timeline per scenario (steps, expectation results, the seed to\n"
    "                     replay it) and the summary\n"
    "      --keep DIR     keep artefacts in DIR/<scenario>/: mosquitto.conf + mosquitto.log,\n"
    "                     ledger.sqlite, timeline.txt, status.log, devices.log\n"
    "      --pcap         with --keep: record every proxied device link as\n"
    "                     DIR/<scenario>/pcap/<device>-link<N>.pcap\n"
    "                     (tshark -r F -d tcp.port==BROKER_PORT,mqtt)\n"
    "      --seed N       use seed N instead of each scenario's `seed` (replay a failure)\n"
    "      --trace DIR    record each device's trace as DIR/<scenario>/<device>.fwtrace\n"
    "                     (docs/trace.md; replay with fw_trace_replay)\n"
    "      --broker-type mosquitto|rabbitmq\n"
    "                     the broker scansim starts (default mosquitto, one per scenario);\n"
    "                     rabbitmq: one RabbitMQ for the whole run, a private one for a\n"
    "                     scenario that stops or kills its broker\n"
    "      --broker URI   run against your broker (tcp://host:port) instead; scansim clears\n"
    "                     the scenario's device ids' sessions and retained status there first\n"
    "      --broker-stop CMD, --broker-kill CMD, --broker-start CMD\n"
    "                     shell commands for `broker stop|kill|restart` on that broker\n"

    "  -v, --verbose      print every step as it happens (stderr)\n"
    "  -h, --help         this text\n"
    "\n"
    "A scenario that cannot run on the chosen broker (it configures its broker, stops it\n"
    "without a command, or needs MQTT 5 of RabbitMQ) is skipped with the reason, counted\n"
    "and reported as skipped in JUnit, never passed.\n"
    "\n"
    "Output: one line per scenario, `PASS name (3.2 s)` or `FAIL name (3.2 s)`, the step\n"
    "timeline of each failure with the seed to replay it, `SKIP name: reason` for a skipped\n"
    "one, and a last line `N passed, M failed` (`, K skipped` when any was).\n"
    "\n"
    "Exit codes: 0 every scenario that ran passed; 1 a scenario failed; 2 a scenario file did\n"
    "not parse or could not be read, or a usage error; 3 the broker of --broker-type did not\n"
    "start.\n";

struct test_case {
    char *path;
    struct scn_scenario *s;
    pid_t pid;
    int64_t started_ms;
    bool done;
    bool passed;
    int64_t duration_ms;
    uint64_t seed;
    char *failure;
    char *timeline;
    char result_path[512];
    bool skipped;
    char skip_why[256];
    bool on_shared; /* runs on a broker other scenarios use too: one such at a time */
};

static int64_t test_now_ms(void)
{
    return (int64_t)sim_clock_ms();
}

/* ---------------------------------------------------------------- collecting files */

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path(char ***paths, size_t *n, size_t *cap, const char *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        char **np = realloc(*paths, ncap * sizeof *np);
        if (!np)
            return -1;
        *paths = np;
        *cap = ncap;
    }
    (*paths)[*n] = strdup(p);
    if (!(*paths)[*n])
        return -1;
    (*n)++;
    return 0;
}

/* Add FILE, or DIR's *.scn sorted. -1 after printing why. */
static int collect(const char *arg, char ***paths, size_t *n, size_t *cap)
{
    struct stat st;
    if (stat(arg, &st) != 0) {
        scansim_cli_error("test", "%s: %s; give a scenario file or a folder of *.scn files", arg,
                      strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return add_path(paths, n, cap, arg);
    DIR *d = opendir(arg);
    if (!d) {
        scansim_cli_error("test", "%s: %s", arg, strerror(errno));
        return -1;
    }
    size_t first = *n;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL && rc == 0) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".scn") == 0 && e->d_name[0] != '.') {
            char p[1024];
            size_t al = strlen(arg);
            snprintf(p, sizeof p, "%s%s%s", arg, al && arg[al - 1] == '/' ? "" : "/", e->d_name);
            rc = add_path(paths, n, cap, p);
        }
    }
    closedir(d);
    if (rc == 0 && *n == first) {
        scansim_cli_error("test", "%s holds no *.scn file", arg);
        return -1;
    }
    qsort(*paths + first, *n - first, sizeof **paths, str_cmp);
    return rc;
}

/* ---------------------------------------------------------------- child and results */

static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

static bool changes_broker(const struct scn_scenario *s)
{
    for (size_t i = 0; i < s->n_steps; i++)
        if (s->steps[i].action == SCN_ACT_BROKER_STOP || s->steps[i].action == SCN_ACT_BROKER_KILL ||
            s->steps[i].action == SCN_ACT_BROKER_RESTART)
            return true;
    return false;
}

/* The broker a scenario runs against: the user's, else the run's shared one unless the
   scenario stops or kills its broker (it then gets a private one), else its own. */
static void case_broker(const struct test_case *c, struct hx_runner_opts *o, const char *shared_uri)
{
    if (!o->broker_uri && shared_uri && !changes_broker(c->s) && !c->s->broker.kind_written)
        o->broker_uri = shared_uri;
}

/* Start the one broker of --broker-type rabbitmq for the whole run (RabbitMQ takes about
   15 s to start: once per run, not per scenario). 0, or SCANSIM_EXIT_BROKER with words. */
static int start_shared_broker(enum scn_broker_kind kind, struct hx_broker **out)
{
    struct hx_broker_opts bo = {0};
    bo.kind = (enum hx_broker_kind)kind;
    bo.persistence = true;
    printf("starting %s for the whole run...\n", scn_broker_kind_name(kind));
    fflush(stdout);
    if (hx_broker_start(&bo, out) != 0) {
        scansim_cli_error("test", "the %s broker did not start: %s", scn_broker_kind_name(kind),
                      hx_broker_last_error());
        return SCANSIM_EXIT_BROKER;
    }
    printf("%s at %s\n", scn_broker_kind_name(kind), hx_broker_uri(*out));
    return 0;
}

/* In the child: run, write "PASS|FAIL duration seed\nfailure\ntimeline". */
static int child_run(struct test_case *c, const struct hx_runner_opts *base, const char *keep_root,
                     const char *shared_uri)
{
    struct hx_runner_opts o = *base;
    case_broker(c, &o, shared_uri);
    char keep[1024], trace[1024];
    if (keep_root) {
        snprintf(keep, sizeof keep, "%s/%s", keep_root, c->s->name);
        o.keep_dir = keep;
    }
    if (base->trace_dir) {
        /* One folder per scenario: device ids repeat across scenarios. */
        snprintf(trace, sizeof trace, "%s/%s", base->trace_dir, c->s->name);
        o.trace_dir = trace;
    }
    struct hx_runner_result res;
    hx_runner_run(c->s, &o, &res);
    FILE *f = fopen(c->result_path, "w");
    if (f) {
        one_line(res.failure);
        fprintf(f, "%s %lld %llu\n%s\n%s", res.passed ? "PASS" : "FAIL", (long long)res.duration_ms,
                (unsigned long long)res.seed, res.failure, res.timeline);
        fclose(f);
    }
    bool passed = res.passed;
    hx_runner_result_free(&res);
    return passed ? 0 : 1;
}

static char *read_file_all(const char *path)
{
    char *text;
    return sim_fs_read_all(path, SIZE_MAX / 2, &text, NULL) == 0 ? text : NULL;
}

static void collect_result(struct test_case *c, int status, bool killed)
{
    c->done = true;
    c->duration_ms = test_now_ms() - c->started_ms;
    char *text = read_file_all(c->result_path);
    unlink(c->result_path);
    char verdict[8] = "";
    long long dur = 0;
    unsigned long long seed = c->s->seed;
    char *nl1 = text ? strchr(text, '\n') : NULL;
    char *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    if (text && nl1 && nl2 && sscanf(text, "%7s %lld %llu", verdict, &dur, &seed) == 3) {
        *nl2 = '\0';
        c->failure = strdup(nl1 + 1);
        c->timeline = strdup(nl2 + 1);
        c->duration_ms = dur;
        c->seed = seed;
        c->passed = strcmp(verdict, "PASS") == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!c->passed && strcmp(verdict, "PASS") == 0) {
            /* Every step held, but the process did not end cleanly: a sanitizer report
               (leak, use after free) on stderr above, or a crash in tear-down. */
            char why[256];
            if (WIFSIGNALED(status))
                snprintf(why, sizeof why, "%s: every step held, but the runner died of signal %d "
                         "afterwards (see stderr)", c->path, WTERMSIG(status));
            else
                snprintf(why, sizeof why, "%s: every step held, but the runner exited with %d "
                         "(a sanitizer report on stderr?)", c->path, WEXITSTATUS(status));
            free(c->failure);
            c->failure = strdup(why);
        }
    } else {
        char why[256];
        if (killed)
            snprintf(why, sizeof why, "%s: killed after running %.1f s, far past its timeout of %.1f s",
                     c->path, (double)c->duration_ms / 1000.0, (double)c->s->timeout_ms / 1000.0);
        else if (WIFSIGNALED(status))
            snprintf(why, sizeof why, "%s: the runner crashed (signal %d)", c->path, WTERMSIG(status));
        else
            snprintf(why, sizeof why, "%s: the runner exited with %d and left no result", c->path,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        c->failure = strdup(why);
        c->timeline = strdup(text ? text : "");
        c->passed = false;
        c->seed = seed;
    }
    free(text);
}

static void print_result(const struct test_case *c)
{
    if (c->skipped) {
        printf("SKIP %s: %s\n", c->s->name, c->skip_why);
        fflush(stdout);
        return;
    }
    printf("%s %s (%.1f s)\n", c->passed ? "PASS" : "FAIL", c->s->name, (double)c->duration_ms / 1000.0);
    if (!c->passed) {
        printf("  %s\n", c->failure ? c->failure : "");
        printf("  timeline (seed %llu):\n%s", (unsigned long long)c->seed, c->timeline ? c->timeline : "");
        printf("  replay: scansim test %s --seed %llu\n", c->path, (unsigned long long)c->seed);
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------- JUnit */

static void xml_escape(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if (ch < 0x20 && ch != '\n' && ch != '\t')
                fputc('?', f); /* not allowed in XML 1.0 */
            else
                fputc(ch, f);
        }
    }
}

/* --report: the summary and every scenario's timeline as the report's JSON. */
static int write_report(const char *path, const struct test_case *cs, size_t n)
{
    struct dash_buf b = { 0 };
    size_t passed = 0, failed = 0, skipped = 0;
    int rc;

    for (size_t i = 0; i < n; i++) {
        skipped += cs[i].skipped;
        passed += !cs[i].skipped && cs[i].done && cs[i].passed;
        failed += !cs[i].skipped && !(cs[i].done && cs[i].passed);
    }
    dash_buf_printf(&b, "{\"kind\":\"test\",\"table\":{\"scenarios\":%zu,\"passed\":%zu,"
                    "\"failed\":%zu,\"skipped\":%zu},\"scenarios\":[", n, passed, failed, skipped);
    for (size_t i = 0; i < n; i++) {
        const struct test_case *c = &cs[i];
        dash_buf_add(&b, i ? ",{\"name\":" : "{\"name\":", i ? 9 : 8);
        dash_buf_json_str(&b, c->s ? c->s->name : c->path);
        dash_buf_lit(&b, ",\"path\":");
        dash_buf_json_str(&b, c->path);
        dash_buf_printf(&b, ",\"passed\":%s,\"skipped\":%s,\"duration_ms\":%lld,\"seed\":\"%llu\","
                        "\"skip_why\":", c->done && c->passed ? "true" : "false",
                        c->skipped ? "true" : "false", (long long)c->duration_ms,
                        (unsigned long long)c->seed);
        dash_buf_json_str(&b, c->skip_why);
        dash_buf_lit(&b, ",\"failure\":");
        dash_buf_json_str(&b, c->failure ? c->failure : "");
        dash_buf_lit(&b, ",\"timeline\":");
        dash_buf_json_str(&b, c->timeline ? c->timeline : "");
        dash_buf_lit(&b, "}");
    }
    dash_buf_lit(&b, "]}");
    rc = b.failed ? DASH_ERR_NOMEM : dash_report_write(path, "scansim test", b.p);
    free(b.p);
    if (rc == DASH_OK)
        printf("report: %s\n", path);
    return rc;
}

static int write_junit(const char *path, const struct test_case *cs, size_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        scansim_cli_error("test", "--junit %s: %s", path, strerror(errno));
        return -1;
    }
    size_t failures = 0, skipped = 0;
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        failures += !cs[i].passed && !cs[i].skipped;
        skipped += cs[i].skipped;
        total += (double)cs[i].duration_ms / 1000.0;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n", n, failures, total);
    fprintf(f, "  <testsuite name=\"scansim.scenarios\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" "
               "skipped=\"%zu\" time=\"%.3f\">\n", n, failures, skipped, total);
    for (size_t i = 0; i < n; i++) {
        const struct test_case *c = &cs[i];
        fprintf(f, "    <testcase classname=\"scenarios\" name=\"");
        xml_escape(f, c->s->name);
        fprintf(f, "\" file=\"");
        xml_escape(f, c->path);
        fprintf(f, "\" time=\"%.3f\">\n", (double)c->duration_ms / 1000.0);
        if (c->skipped) {
            fprintf(f, "      <skipped message=\"");
            xml_escape(f, c->skip_why);
            fprintf(f, "\"/>\n    </testcase>\n");
            continue;
        }
        if (!c->passed) {
            fprintf(f, "      <failure message=\"");
            xml_escape(f, c->failure);
            fprintf(f, "\" type=\"scenario\">");
            xml_escape(f, c->failure);
            fprintf(f, "\ntimeline (seed %llu):\n", (unsigned long long)c->seed);
            xml_escape(f, c->timeline);
            fprintf(f, "replay: scansim test ");
            xml_escape(f, c->path);
            fprintf(f, " --seed %llu\n</failure>\n", (unsigned long long)c->seed);
        }
        fprintf(f, "      <system-out>");
        xml_escape(f, c->timeline);
        fprintf(f, "</system-out>\n    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    if (fclose(f) != 0) {
        scansim_cli_error("test", "--junit %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- the command */

/* One `scansim test` invocation: its options, the files and their cases, what it owns. */
struct test_cmd {
    long jobs;
    const char *junit, *keep, *report;
    struct hx_runner_opts ro;
    char **paths;
    size_t n_paths, cap_paths;
    struct test_case *cs;
    size_t to_run;
    char resdir[256];
    struct hx_broker *shared; /* --broker-type rabbitmq: one for the run */
};

/* Sentinel of test_parse: the options were good, go on. */
#define TEST_GO (-1)

static int test_parse_seed(struct hx_runner_opts *ro, const char *arg)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno || !end || *end || arg[0] == '-' || !arg[0]) {
        scansim_cli_error("test", "--seed: expected an integer 0 ... 18446744073709551615, got '%s'", arg);
        return -1;
    }
    ro->seed_set = true;
    ro->seed = v;
    return 0;
}

static int test_parse_broker_type(struct hx_runner_opts *ro, const char *arg)
{
    if (strcmp(arg, "mosquitto") == 0) {
        ro->broker_kind = SCN_BROKER_MOSQUITTO;
    } else if (strcmp(arg, "rabbitmq") == 0) {
        ro->broker_kind = SCN_BROKER_RABBITMQ;
    } else {
        scansim_cli_error("test", "--broker-type: expected mosquitto or rabbitmq, got '%s'", arg);
        return -1;
    }
    return 0;
}

/* Checks between options, once all are read. */
static int test_check_options(const struct test_cmd *t)
{
    const struct hx_runner_opts *ro = &t->ro;
    if (ro->pcap && !t->keep) {
        scansim_cli_error("test", "--pcap needs --keep DIR (the captures are kept there)");
        return -1;
    }
    if (ro->broker_uri && strncmp(ro->broker_uri, "tcp://", 6) != 0 &&
        strncmp(ro->broker_uri, "mqtt://", 7) != 0) {
        scansim_cli_error("test", "--broker %s: expected tcp://HOST:PORT (the fault proxy and the "
                      "scenarios' variants need plain TCP)", ro->broker_uri);
        return -1;
    }
    if (!ro->broker_uri && (ro->broker_stop_cmd || ro->broker_kill_cmd || ro->broker_start_cmd)) {
        scansim_cli_error("test", "--broker-stop/--broker-kill/--broker-start act on --broker URI: "
                      "give the broker too");
        return -1;
    }
    return 0;
}

/* The options into t; TEST_GO to go on, else the exit code (--help, a usage error). */
static int test_parse(struct test_cmd *t, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"jobs", required_argument, 0, 'j'},
        {"junit", required_argument, 0, 0x2001},
        {"report", required_argument, 0, 0x200b},
        {"keep", required_argument, 0, 0x2002},
        {"pcap", no_argument, 0, 0x2003},
        {"seed", required_argument, 0, 0x2004},
        {"broker", required_argument, 0, 0x2005},
        {"broker-type", required_argument, 0, 0x2006},
        {"broker-stop", required_argument, 0, 0x2007},
        {"broker-kill", required_argument, 0, 0x2008},
        {"broker-start", required_argument, 0, 0x2009},
        {"trace", required_argument, 0, 0x200a},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct hx_runner_opts *ro = &t->ro;
    size_t len;
    int opt;
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":j:vh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'j':
            if (scansim_cli_parse_int("test", "--jobs", optarg, 1, 64, &t->jobs) != 0)
                return SCANSIM_EXIT_USAGE;
            break;
        case 0x2001: t->junit = optarg; break;
        case 0x200b:
            t->report = optarg;
            if (!dash_chart_js(&len))
                return SCANSIM_EXIT_USAGE; /* said: better now than after the scenarios */
            break;
        case 0x2002: t->keep = optarg; break;
        case 0x2003: ro->pcap = true; break;
        case 0x2004:
            if (test_parse_seed(ro, optarg) != 0)
                return SCANSIM_EXIT_USAGE;
            break;
        case 0x2005: ro->broker_uri = optarg; break;
        case 0x2006:
            if (test_parse_broker_type(ro, optarg) != 0)
                return SCANSIM_EXIT_USAGE;
            break;
        case 0x2007: ro->broker_stop_cmd = optarg; break;
        case 0x2008: ro->broker_kill_cmd = optarg; break;
        case 0x2009: ro->broker_start_cmd = optarg; break;
        case 0x200a: ro->trace_dir = optarg; break;
        case 'v': ro->progress = stderr; break;
        case 'h': fputs(test_help, stdout); return SCANSIM_EXIT_OK;
        case ':':
            scansim_cli_error("test", "%s needs a value; see scansim test --help", argv[optind - 1]);
            return SCANSIM_EXIT_USAGE;
        default:
            scansim_cli_error("test", "unknown option '%s'; see scansim test --help", argv[optind - 1]);
            return SCANSIM_EXIT_USAGE;
        }
    }
    return test_check_options(t) == 0 ? TEST_GO : SCANSIM_EXIT_USAGE;
}

/* Every file named (scenarios/ when none), parsed before anything runs, with the reason
 * each one that cannot run on the chosen broker is skipped. */
static int test_load(struct test_cmd *t, int argc, char **argv)
{
    if (optind >= argc && collect("scenarios", &t->paths, &t->n_paths, &t->cap_paths) != 0)
        return SCANSIM_EXIT_USAGE;
    for (int i = optind; i < argc; i++)
        if (collect(argv[i], &t->paths, &t->n_paths, &t->cap_paths) != 0)
            return SCANSIM_EXIT_USAGE;
    t->cs = calloc(t->n_paths ? t->n_paths : 1, sizeof *t->cs);
    if (!t->cs)
        return SCANSIM_EXIT_INTERNAL;
    int rc = SCANSIM_EXIT_OK;
    for (size_t i = 0; i < t->n_paths; i++) {
        struct scn_diag d;
        t->cs[i].path = t->paths[i];
        if (scn_parse_file(t->paths[i], &t->cs[i].s, &d) != SCN_OK) {
            char msg[SCN_PATH_MAX + SCN_MESSAGE_MAX + 32];
            scn_diag_format(&d, msg, sizeof msg);
            fprintf(stderr, "%s\n", msg);
            rc = SCANSIM_EXIT_USAGE;
        }
    }
    if (rc != SCANSIM_EXIT_OK) {
        fprintf(stderr, "scansim test: nothing was run: fix the scenario file(s) above\n");
        return rc;
    }
    for (size_t i = 0; i < t->n_paths; i++) {
        struct test_case *c = &t->cs[i];
        c->skipped = hx_runner_skip_reason(c->s, &t->ro, c->skip_why, sizeof c->skip_why);
        t->to_run += !c->skipped;
    }
    return SCANSIM_EXIT_OK;
}

/* What every scenario shares: the RabbitMQ of --broker-type rabbitmq (when a scenario that
 * runs uses it) and the folder of the children's result files. */
static int test_prepare(struct test_cmd *t)
{
    bool shared_used = false;
    for (size_t i = 0; i < t->n_paths; i++) {
        const struct test_case *c = &t->cs[i];
        shared_used |= !c->skipped && !changes_broker(c->s) && !c->s->broker.kind_written;
    }
    int rc;
    if (!t->ro.broker_uri && t->ro.broker_kind == SCN_BROKER_RABBITMQ && shared_used &&
        (rc = start_shared_broker(t->ro.broker_kind, &t->shared)) != 0)
        return rc;
    /* Scenarios on one broker would take over each other's client ids and receive each
     * other's items (the one-topic layout): they run one after another. */
    for (size_t i = 0; i < t->n_paths; i++) {
        struct test_case *c = &t->cs[i];
        struct hx_runner_opts o = t->ro;
        case_broker(c, &o, t->shared ? hx_broker_uri(t->shared) : NULL);
        c->on_shared = o.broker_uri != NULL;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(t->resdir, sizeof t->resdir, "%s/scansim-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->resdir)) {
        scansim_cli_error("test", "cannot create a temporary folder: %s", strerror(errno));
        t->resdir[0] = '\0';
        return SCANSIM_EXIT_INTERNAL;
    }
    return SCANSIM_EXIT_OK;
}

static void test_free_cases(struct test_cmd *t)
{
    for (size_t i = 0; t->cs && i < t->n_paths; i++) {
        scn_free(t->cs[i].s);
        free(t->cs[i].failure);
        free(t->cs[i].timeline);
    }
    for (size_t i = 0; i < t->n_paths; i++)
        free(t->paths[i]);
    free(t->paths);
    free(t->cs);
    t->paths = NULL;
    t->cs = NULL;
}

/* Fork the child of case i; in the child, run it and exit with its verdict. */
static int test_start(struct test_cmd *t, size_t i)
{
    struct test_case *c = &t->cs[i];
    snprintf(c->result_path, sizeof c->result_path, "%s/%zu.result", t->resdir, i);
    fflush(stdout);
    fflush(stderr);
    c->started_ms = test_now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        scansim_cli_error("test", "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int crc = child_run(c, &t->ro, t->keep, t->shared ? hx_broker_uri(t->shared) : NULL);
        test_free_cases(t); /* what the child inherited, so a leak check sees only its own */
        exit(crc);
    }
    c->pid = pid;
    return 0;
}

/* Stop the children far past their scenario's time-out; the number stopped. */
static size_t test_stop_stuck(struct test_cmd *t, bool *shared_busy)
{
    size_t stopped = 0;
    for (size_t i = 0; i < t->n_paths; i++) {
        struct test_case *c = &t->cs[i];
        if (!c->done && c->pid > 0 && test_now_ms() - c->started_ms > c->s->timeout_ms + 60000) {
            int status = 0;
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            collect_result(c, status, true);
            print_result(c);
            *shared_busy &= !c->on_shared;
            stopped++;
        }
    }
    return stopped;
}

/* The case whose child `pid` ended; 1 when it was one of ours. */
static size_t test_reap(struct test_cmd *t, pid_t pid, int status, bool *shared_busy)
{
    for (size_t i = 0; i < t->n_paths; i++) {
        struct test_case *c = &t->cs[i];
        if (c->pid == pid && !c->done) {
            collect_result(c, status, false);
            print_result(c);
            *shared_busy &= !c->on_shared;
            return 1;
        }
    }
    return 0;
}

/* Up to `jobs` children at once, taken in file order (a scenario on the shared broker
 * waits while another runs there and lets later ones by), until every case is done. */
static int test_run_all(struct test_cmd *t)
{
    size_t running = 0, finished = 0;
    bool shared_busy = false;
    while (finished < t->n_paths) {
        for (size_t i = 0; i < t->n_paths && running < (size_t)t->jobs; i++) {
            struct test_case *c = &t->cs[i];
            if (c->done || c->pid > 0 || (c->on_shared && shared_busy && !c->skipped))
                continue;
            if (c->skipped) {
                c->done = true;
                print_result(c);
                finished++;
                continue;
            }
            if (test_start(t, i) != 0)
                return SCANSIM_EXIT_INTERNAL;
            running++;
            shared_busy |= c->on_shared;
        }
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno != EINTR)
            break;
        size_t ended = pid > 0 ? test_reap(t, pid, status, &shared_busy)
                               : test_stop_stuck(t, &shared_busy);
        running -= ended;
        finished += ended;
        if (pid <= 0) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return SCANSIM_EXIT_OK;
}

/* The reports and the last line; the exit code of the whole. */
static int test_finish(const struct test_cmd *t)
{
    int rc = SCANSIM_EXIT_OK;
    if (t->junit && write_junit(t->junit, t->cs, t->n_paths) != 0)
        rc = SCANSIM_EXIT_USAGE;
    if (t->report && write_report(t->report, t->cs, t->n_paths) != DASH_OK)
        rc = SCANSIM_EXIT_USAGE;
    size_t passed = 0, n = t->n_paths;
    for (size_t i = 0; i < n; i++)
        passed += t->cs[i].done && t->cs[i].passed && !t->cs[i].skipped;
    if (t->to_run < n)
        printf("%zu passed, %zu failed, %zu skipped\n", passed, t->to_run - passed, n - t->to_run);
    else
        printf("%zu passed, %zu failed\n", passed, n - passed);
    if (passed != t->to_run)
        rc = SCANSIM_EXIT_FAILED;
    return rc;
}

int scansim_cmd_test(int argc, char **argv)
{
    struct test_cmd t = {.jobs = 1};
    int rc = test_parse(&t, argc, argv);
    if (rc != TEST_GO)
        return rc;
    if ((rc = test_load(&t, argc, argv)) == SCANSIM_EXIT_OK &&
        (rc = test_prepare(&t)) == SCANSIM_EXIT_OK &&
        (rc = test_run_all(&t)) == SCANSIM_EXIT_OK)
        rc = test_finish(&t);
    hx_broker_free(t.shared);
    if (t.resdir[0])
        rmdir(t.resdir);
    test_free_cases(&t);
    return rc;
}
