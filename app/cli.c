/*
 * cli.c - shared flags, value parsers and the embedded default broker of scansim.
 *
 * Flag names follow mosquitto_pub/mosquitto_sub wherever one exists, so a broker
 * engineer's muscle memory works. Values are checked here, once, with messages that name
 * the flag, what was expected and what was given (the password is never echoed).
 */
#include "cli.h"

#include "sim/mqtt.h"
#include "sim/transport.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

volatile int scansim_cli_stop_requested;

const char scansim_cli_common_help[] =
    "Broker and transport (names as in mosquitto_pub/sub):\n"
    "  --broker URI            tcp://host:port or ssl://host:port (default: start a private\n"
    "                          mosquitto on a free loopback port and stop it on exit)\n"
    "  -u, --username NAME     MQTT user name\n"
    "  -P, --password PASS     MQTT password (never printed; blanked in the process list;\n"
    "                          or set SCANSIM_MQTT_PASSWORD to keep it off the command line)\n"
    "  --cafile FILE           CA certificate(s) to check the broker's certificate (ssl://)\n"
    "  --cert FILE, --key FILE client certificate and key (mutual TLS)\n"
    "  --insecure              do not check the broker's certificate nor its host name\n"
    "  -k, --keepalive SECS    MQTT keep-alive (default 30; 0 disables)\n"
    "  -V, --protocol-version  311 (MQTT 3.1.1, default, what the board speaks) or 5\n"
    "  -q, --qos 0|1|2         QoS of subscriptions and publishes, devices and backend\n"
    "                          (default 1; 2: exactly once, docs/protocol.md \"QoS 2\")\n"
    "  --session clean|persistent   default persistent (items wait at the broker while offline)\n"
    "  --session-expiry SECS   MQTT 5 session expiry for persistent sessions (default 3600)\n"
    "  --layout seed|per-device     topic layout (docs/protocol.md)\n"
    "  --broker-log FILE       copy the embedded broker's log to FILE on exit\n"
    "  --broker-type mosquitto|rabbitmq   the broker started without --broker (default\n"
    "                          mosquitto; rabbitmq: RabbitMQ's MQTT plugin, ~15 s to start)\n"
    "  --transport mosquitto|paho   the MQTT client library (default mosquitto: libmosquitto\n"
    "                          on scansim's own event loops; paho: Eclipse Paho MQTTAsync)\n"
    "  --nagle                 leave Nagle's algorithm on in the TCP connections (by default\n"
    "                          scansim sets TCP_NODELAY, as mosquitto does, since with Nagle\n"
    "                          a small packet can wait up to 40 ms for the broker's delayed\n"
    "                          ACK, and that shows as latency; Paho cannot set it)\n"
    "  -v, --verbose           more output (repeat for more)\n";

void scansim_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "scansim %s: ", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void scansim_cli_common_defaults(struct scansim_cli_common *c)
{
    memset(c, 0, sizeof(*c));
    c->keepalive_s = 30;
    c->protocol_version = 311;
    c->qos = 1;
    c->session = SCANSIM_SESSION_PERSISTENT;
    c->session_expiry_s = 3600;
    c->layout = SCANSIM_LAYOUT_SEED;
    c->transport = SIM_MQTT_DEFAULT;
}

int scansim_cli_parse_int(const char *cmd, const char *flag, const char *arg, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end != '\0' || v < min || v > max) {
        scansim_cli_error(cmd, "%s: expected a whole number from %ld to %ld, got '%s'", flag, min, max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

int scansim_cli_parse_double(const char *cmd, const char *flag, const char *arg, double min, double max,
                         double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end != '\0' || !isfinite(v) || v < min || v > max) {
        scansim_cli_error(cmd, "%s: expected a number from %g to %g, got '%s'", flag, min, max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses "<number><unit>" with unit ms, s, m or none (seconds); 0 on success. */
static int cli__duration(const char *arg, uint64_t *out_ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || !isfinite(v) || v < 0)
        return -1;
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000.0;
    else if (strcmp(end, "ms") == 0)
        scale = 1.0;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        scale = 60000.0;
    else if (strcmp(end, "h") == 0)
        scale = 3600000.0;
    else
        return -1;
    double ms = v * scale;
    if (ms > 1e12)
        return -1;
    *out_ms = (uint64_t)llround(ms);
    return 0;
}

int scansim_cli_parse_duration_ms(const char *cmd, const char *flag, const char *arg, uint64_t *out_ms)
{
    if (cli__duration(arg, out_ms) != 0) {
        scansim_cli_error(cmd, "%s: expected a duration such as 250ms, 2s or 5m, got '%s'", flag, arg);
        return -1;
    }
    return 0;
}

int scansim_cli_parse_range_ms(const char *cmd, const char *flag, const char *arg, uint64_t *min_ms,
                           uint64_t *max_ms)
{
    char buf[64];
    const char *dash = strchr(arg, '-');
    if (strlen(arg) >= sizeof(buf))
        goto bad;
    if (!dash) {
        if (cli__duration(arg, min_ms) != 0)
            goto bad;
        *max_ms = *min_ms;
        return 0;
    }
    memcpy(buf, arg, (size_t)(dash - arg));
    buf[dash - arg] = '\0';
    if (cli__duration(buf, min_ms) != 0 || cli__duration(dash + 1, max_ms) != 0 || *max_ms < *min_ms)
        goto bad;
    return 0;
bad:
    scansim_cli_error(cmd, "%s: expected a duration or a range MIN-MAX such as 200ms-2s, got '%s'", flag, arg);
    return -1;
}

int scansim_cli_parse_rate(const char *cmd, const char *flag, const char *arg, double *per_second)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    double per = 1.0;
    if (errno || end == arg || !isfinite(v) || v <= 0)
        goto bad;
    if (*end == '\0' || strcmp(end, "/s") == 0)
        per = 1.0;
    else if (strcmp(end, "/m") == 0 || strcmp(end, "/min") == 0)
        per = 60.0;
    else
        goto bad;
    *per_second = v / per;
    return 0;
bad:
    scansim_cli_error(cmd, "%s: expected a positive rate such as 100/s or 600/m, got '%s'", flag, arg);
    return -1;
}

/* --broker URI: one more broker, the first also broker_uri. */
static int cli__opt_broker(const char *cmd, struct scansim_cli_common *c, const char *arg)
{
    if (strncmp(arg, "tcp://", 6) != 0 && strncmp(arg, "ssl://", 6) != 0 &&
        strncmp(arg, "mqtt://", 7) != 0 && strncmp(arg, "mqtts://", 8) != 0) {
        scansim_cli_error(cmd, "--broker: expected a URI such as tcp://localhost:1883 or "
                           "ssl://broker:8883, got '%s'", arg);
        return -1;
    }
    if (c->n_brokers == SCANSIM_CLI_BROKERS_MAX) {
        scansim_cli_error(cmd, "--broker: at most %d brokers", SCANSIM_CLI_BROKERS_MAX);
        return -1;
    }
    if (!c->broker_uri)
        c->broker_uri = arg;
    c->broker_uris[c->n_brokers++] = arg;
    return 1;
}

static int cli__opt_password(const char *cmd, struct scansim_cli_common *c, const char *arg)
{
    /* Keep a copy and blank the argument, so `ps` shows stars once we run. */
    static char saved[256];
    size_t n = strlen(arg);
    if (n >= sizeof(saved)) {
        scansim_cli_error(cmd, "-P/--password: longer than %zu bytes", sizeof(saved) - 1);
        return -1;
    }
    memcpy(saved, arg, n + 1);
    memset((char *)arg, '*', n);
    c->password = saved;
    return 1;
}

/* The words an option accepts and what each means. */
struct cli__word {
    const char *word;
    int value;
};

#define CLI__N(words) (sizeof(words) / sizeof(words)[0])

static const struct cli__word cli__protocol_words[] = {
    {"311", 311}, {"mqttv311", 311}, {"3.1.1", 311}, {"5", 5}, {"mqttv5", 5},
};
static const struct cli__word cli__session_words[] = {
    {"clean", SCANSIM_SESSION_CLEAN}, {"persistent", SCANSIM_SESSION_PERSISTENT},
};
static const struct cli__word cli__layout_words[] = {
    {"seed", SCANSIM_LAYOUT_SEED}, {"per-device", SCANSIM_LAYOUT_PER_DEVICE},
};

/* 0 with *out set when arg is one of the n words, else -1. */
static int cli__pick(const char *arg, const struct cli__word *words, size_t n, int *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(arg, words[i].word) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    return -1;
}

/* The options given by a word or a client library's name: 1, -1 (said), 0 if opt is none. */
static int cli__common_choice(const char *cmd, struct scansim_cli_common *c, int opt, const char *arg)
{
    int w;
    switch (opt) {
    case 0x100b: {
        enum hx_broker_kind k;
        if (hx_broker_kind_parse(arg, &k) != 0) {
            scansim_cli_error(cmd, "--broker-type: expected mosquitto or rabbitmq, got '%s'", arg);
            return -1;
        }
        c->broker_type = (int)k;
        return 1;
    }
    case 0x100c: {
        enum sim_mqtt_kind k;
        if (sim_mqtt_kind_parse(arg, &k) != 0) {
            scansim_cli_error(cmd, "--transport: expected mosquitto or paho, got '%s'", arg);
            return -1;
        }
        c->transport = k;
        return 1;
    }
    case 'V':
        if (cli__pick(arg, cli__protocol_words, CLI__N(cli__protocol_words), &c->protocol_version)) {
            scansim_cli_error(cmd, "--protocol-version: expected 311 (MQTT 3.1.1) or 5, got '%s'", arg);
            return -1;
        }
        return 1;
    case 0x1006:
        if (cli__pick(arg, cli__session_words, CLI__N(cli__session_words), &w)) {
            scansim_cli_error(cmd, "--session: expected clean or persistent, got '%s'", arg);
            return -1;
        }
        c->session = (enum scansim_cli_session)w;
        return 1;
    case 0x1008:
        if (cli__pick(arg, cli__layout_words, CLI__N(cli__layout_words), &w)) {
            scansim_cli_error(cmd, "--layout: expected seed or per-device, got '%s'", arg);
            return -1;
        }
        c->layout = (enum scansim_cli_layout)w;
        c->layout_set = true;
        return 1;
    default:
        return 0;
    }
}

/* The whole numbers: 1, -1 (said), 0 if opt is none of them. */
static int cli__common_number(const char *cmd, struct scansim_cli_common *c, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case 'k':
        if (scansim_cli_parse_int(cmd, "--keepalive", arg, 0, 65535, &v) != 0)
            return -1;
        c->keepalive_s = (int)v;
        return 1;
    case 'q':
        if (scansim_cli_parse_int(cmd, "--qos", arg, 0, 2, &v) != 0)
            return -1;
        c->qos = (int)v;
        return 1;
    case 0x1007:
        if (scansim_cli_parse_int(cmd, "--session-expiry", arg, 0, 0x7fffffffL, &v) != 0)
            return -1;
        c->session_expiry_s = (int)v;
        return 1;
    default:
        return 0;
    }
}

int scansim_cli_common_option(const char *cmd, struct scansim_cli_common *c, int opt, const char *arg)
{
    int r;
    switch (opt) {
    case 0x1001: return cli__opt_broker(cmd, c, arg);
    case 'P': return cli__opt_password(cmd, c, arg);
    case 'u':
        c->username = arg;
        if (!c->password && getenv(SCANSIM_CLI_PASSWORD_ENV) && *getenv(SCANSIM_CLI_PASSWORD_ENV))
            c->password = getenv(SCANSIM_CLI_PASSWORD_ENV);
        return 1;
    case 0x1002: c->cafile = arg; return 1;
    case 0x1003: c->cert = arg; return 1;
    case 0x1004: c->key = arg; return 1;
    case 0x1005: c->insecure = true; return 1;
    case 0x1009: c->broker_log = arg; return 1;
    case 0x100a: c->nagle = true; return 1;
    case 'v': c->verbose++; return 1;
    default:
        if ((r = cli__common_choice(cmd, c, opt, arg)) != 0)
            return r;
        return cli__common_number(cmd, c, opt, arg);
    }
}

int scansim_cli_common_check(const char *cmd, const struct scansim_cli_common *c)
{
    if ((c->cert == NULL) != (c->key == NULL)) {
        scansim_cli_error(cmd, "--cert and --key go together (the client certificate and its key)");
        return -1;
    }
    if (c->password && !c->username) {
        scansim_cli_error(cmd, "-P/--password needs -u/--username");
        return -1;
    }
    if (c->n_brokers > 1 && (!cmd || strcmp(cmd, "run") != 0)) {
        scansim_cli_error(cmd, "--broker once: only 'scansim run' spreads devices over several "
                           "brokers");
        return -1;
    }
    for (int i = 1; i < c->n_brokers; i++)
        if (sim_mqtt_uri_is_tls(c->broker_uris[i]) != sim_mqtt_uri_is_tls(c->broker_uri)) {
            scansim_cli_error(cmd, "--broker: '%s' and '%s' mix TLS and plain TCP: give brokers of "
                               "one kind", c->broker_uri, c->broker_uris[i]);
            return -1;
        }
    if (c->broker_uri && c->broker_type != HX_BROKER_MOSQUITTO) {
        scansim_cli_error(cmd, "--broker-type names the broker scansim starts; with --broker URI "
                           "it starts none: give one of the two");
        return -1;
    }
    if (!c->broker_uri && c->broker_type == HX_BROKER_RABBITMQ && c->protocol_version == 5) {
        scansim_cli_error(cmd, "RabbitMQ 3.10's MQTT plugin speaks MQTT 3.1.1 only: drop -V 5 or "
                           "use the embedded mosquitto");
        return -1;
    }
    if (!c->broker_uri && (c->cafile || c->cert || c->username)) {
        scansim_cli_error(cmd, "TLS and user options need --broker: the embedded broker is plain TCP "
                           "and anonymous");
        return -1;
    }
    bool tls = sim_mqtt_uri_is_tls(c->broker_uri);
    if (!tls && (c->cafile || c->cert)) {
        scansim_cli_error(cmd, "--cafile/--cert need an ssl:// broker URI, got '%s'", c->broker_uri);
        return -1;
    }
    /* A missing or unreadable file is a usage error, said now, not a TLS failure later. */
    const struct { const char *flag, *path; } files[] = {
        {"--cafile", c->cafile}, {"--cert", c->cert}, {"--key", c->key}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i].path && access(files[i].path, R_OK) != 0) {
            scansim_cli_error(cmd, "%s: cannot read '%s': %s", files[i].flag, files[i].path,
                          strerror(errno));
            return -1;
        }
    }
    return 0;
}

int scansim_cli_connection_args(const struct scansim_cli_common *c, char **argv, size_t *n, size_t max,
                            char buf[24])
{
    char *add[20];
    size_t k = 0;

    if (c->username) {
        add[k++] = "-u";
        add[k++] = (char *)c->username;
    }
    if (c->password && setenv(SCANSIM_CLI_PASSWORD_ENV, c->password, 1) != 0)
        return -1;
    if (c->cafile) {
        add[k++] = "--cafile";
        add[k++] = (char *)c->cafile;
    }
    if (c->cert) {
        add[k++] = "--cert";
        add[k++] = (char *)c->cert;
    }
    if (c->key) {
        add[k++] = "--key";
        add[k++] = (char *)c->key;
    }
    if (c->insecure)
        add[k++] = "--insecure";
    snprintf(buf, 12, "%d", c->keepalive_s);
    snprintf(buf + 12, 12, "%d", c->protocol_version);
    add[k++] = "-k";
    add[k++] = buf;
    add[k++] = "-V";
    add[k++] = buf + 12;
    if (c->nagle)
        add[k++] = "--nagle";
    if (c->transport != SIM_MQTT_DEFAULT) {
        add[k++] = "--transport";
        add[k++] = (char *)sim_mqtt_kind_name((enum sim_mqtt_kind)c->transport);
    }
    if (*n + k >= max)
        return -1;
    for (size_t i = 0; i < k; i++)
        argv[(*n)++] = add[i];
    argv[*n] = NULL;
    return 0;
}

void scansim_cli_transport_setup(const struct scansim_cli_common *c)
{
    sim_mqtt_set_default_nodelay(!c->nagle);
    if (c->transport != SIM_MQTT_DEFAULT)
        sim_mqtt_set_default_kind((enum sim_mqtt_kind)c->transport);
}

void scansim_cli_mqtt_opts(const struct scansim_cli_common *c, const char *uri, const char *client_id,
                       struct sim_mqtt_opts *o)
{
    sim_mqtt_opts_defaults(o);
    o->uri = uri;
    o->client_id = client_id;
    o->username = c->username;
    o->password = c->password;
    o->cafile = c->cafile;
    o->certfile = c->cert;
    o->keyfile = c->key;
    o->insecure = c->insecure;
    o->mqtt_version = c->protocol_version == 5 ? 5 : 3;
}

int scansim_cli_broker_up(const char *cmd, const struct scansim_cli_common *c, struct hx_broker **embedded,
                      const char **uri)
{
    *embedded = NULL;
    if (c->broker_uri) {
        *uri = c->broker_uri;
        return 0;
    }
    struct hx_broker_opts opts;
    memset(&opts, 0, sizeof(opts));
    opts.persistence = true;
    opts.max_queued_messages = 0; /* unlimited: the embedded broker never drops silently */
    opts.kind = (enum hx_broker_kind)c->broker_type;
    int rc = hx_broker_start(&opts, embedded);
    if (rc != HX_OK) {
        scansim_cli_error(cmd, "could not start the embedded %s: %s (install it with "
                           "'apt-get install %s', or point at a broker with --broker URI)",
                      hx_broker_kind_name(opts.kind), hx_broker_last_error(),
                      opts.kind == HX_BROKER_RABBITMQ ? "rabbitmq-server" : "mosquitto");
        return -1;
    }
    *uri = hx_broker_uri(*embedded);
    return 0;
}

void scansim_cli_broker_down(const struct scansim_cli_common *c, struct hx_broker *embedded)
{
    if (!embedded)
        return;
    hx_broker_stop(embedded);
    if (c && c->broker_log) {
        FILE *in = fopen(hx_broker_log_path(embedded), "rb");
        FILE *out = fopen(c->broker_log, "wb");
        char buf[8192];
        size_t n;
        if (in && out) {
            while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
                fwrite(buf, 1, n, out);
        } else {
            scansim_cli_error(NULL, "could not copy the broker log to %s: %s", c->broker_log, strerror(errno));
        }
        if (in)
            fclose(in);
        if (out)
            fclose(out);
    }
    hx_broker_free(embedded);
}

static void cli__on_signal(int sig)
{
    (void)sig;
    scansim_cli_stop_requested = 1;
}

void scansim_cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = cli__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int scansim_cli_parse_field(const char *cmd, const struct scansim_cli_field *fields, size_t n,
                            void *base, int opt, const char *arg)
{
    for (size_t i = 0; i < n; i++) {
        const struct scansim_cli_field *f = &fields[i];
        if (f->opt != opt)
            continue;
        void *p = (char *)base + f->off;
        int rc = 0;
        switch (f->kind) {
        case SCANSIM_CLI_INT: rc = scansim_cli_parse_int(cmd, f->flag, arg, f->min, f->max, p); break;
        case SCANSIM_CLI_RATE: rc = scansim_cli_parse_rate(cmd, f->flag, arg, p); break;
        case SCANSIM_CLI_DURATION: rc = scansim_cli_parse_duration_ms(cmd, f->flag, arg, p); break;
        case SCANSIM_CLI_PROBABILITY: rc = scansim_cli_parse_double(cmd, f->flag, arg, 0.0, 1.0, p); break;
        case SCANSIM_CLI_TEXT: *(const char **)p = arg; break;
        case SCANSIM_CLI_FLAG: *(bool *)p = true; break;
        }
        return rc ? -1 : 1;
    }
    return 0;
}
