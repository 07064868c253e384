/*
 * mqtt.c - the MQTT edge's common part (sim/mqtt.h): the choice of implementation, the
 * dispatch to it, and the words for people that both implementations give.
 *
 * The implementations (mqtt_mosq.c, mqtt_paho.c) translate their library's codes into the
 * codes of sim/mqtt.h and call sim_mqtt_describe_failure / sim_mqtt__describe_loss, so a
 * refused password or an unreachable broker reads the same on either client stack.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_internal.h"
#include "sim/err.h"

/* ------------------------------------------------------------------ kinds */

static atomic_int mqtt__default_kind = SIM_MQTT_DEFAULT; /* until set or read */
static atomic_bool mqtt__default_nodelay = true;

void sim_mqtt_set_default_nodelay(bool on)
{
    atomic_store(&mqtt__default_nodelay, on);
}

static const struct sim_mqtt_impl *mqtt__impl(enum sim_mqtt_kind kind)
{
    return kind == SIM_MQTT_PAHO ? &sim_mqtt__paho : &sim_mqtt__mosquitto;
}

const char *sim_mqtt_kind_name(enum sim_mqtt_kind kind)
{
    if (kind == SIM_MQTT_DEFAULT)
        kind = sim_mqtt_default_kind();
    return kind == SIM_MQTT_PAHO ? "paho" : "mosquitto";
}

int sim_mqtt_kind_parse(const char *s, enum sim_mqtt_kind *out)
{
    if (s && strcmp(s, "mosquitto") == 0)
        *out = SIM_MQTT_MOSQUITTO;
    else if (s && strcmp(s, "paho") == 0)
        *out = SIM_MQTT_PAHO;
    else
        return SIM_ERR_INVAL;
    return SIM_OK;
}

void sim_mqtt_set_default_kind(enum sim_mqtt_kind kind)
{
    if (kind == SIM_MQTT_MOSQUITTO || kind == SIM_MQTT_PAHO)
        atomic_store(&mqtt__default_kind, kind);
}

/* SCANSIM_TRANSPORT=mosquitto|paho sets the default of a process that sets none itself:
   how CI runs the whole suite under each client library. */
static void mqtt__read_env(void)
{
    const char *env = getenv("SCANSIM_TRANSPORT");
    enum sim_mqtt_kind k = SIM_MQTT_MOSQUITTO;
    int unset = SIM_MQTT_DEFAULT;

    if (env && *env && sim_mqtt_kind_parse(env, &k) != SIM_OK) {
        fprintf(stderr, "scansim: SCANSIM_TRANSPORT: expected mosquitto or paho, got '%s'; "
                        "using mosquitto\n", env);
        k = SIM_MQTT_MOSQUITTO;
    }
    atomic_compare_exchange_strong(&mqtt__default_kind, &unset, (int)k);
}

enum sim_mqtt_kind sim_mqtt_default_kind(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, mqtt__read_env);
    return (enum sim_mqtt_kind)atomic_load(&mqtt__default_kind);
}

/* ------------------------------------------------------------------ dispatch */

void sim_mqtt_opts_defaults(struct sim_mqtt_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->version = SIM_MQTT_OPTS_VERSION;
    opts->kind = SIM_MQTT_DEFAULT;
    opts->mqtt_version = 3;
    opts->session_expiry_s = 3600;
    opts->connect_timeout_s = 10;
    opts->tcp_nodelay = atomic_load(&mqtt__default_nodelay);
}

bool sim_mqtt_uri_is_tls(const char *uri)
{
    return uri && (strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0);
}

static bool mqtt__uri_ok(const char *uri)
{
    return uri && (strncmp(uri, "tcp://", 6) == 0 || strncmp(uri, "mqtt://", 7) == 0 ||
                   sim_mqtt_uri_is_tls(uri));
}

int sim_mqtt_create(const struct sim_mqtt_opts *opts, const struct sim_mqtt_handlers *h,
                    void *ctx, struct sim_mqtt **out)
{
    static const struct sim_mqtt_handlers none;
    struct sim_mqtt_opts o;

    *out = NULL;
    if (!opts || !mqtt__uri_ok(opts->uri) || !opts->client_id || !*opts->client_id)
        return SIM_ERR_INVAL;
    if (opts->mqtt_version != 3 && opts->mqtt_version != 4 && opts->mqtt_version != 5)
        return SIM_ERR_INVAL;
    o = *opts;
    if (o.version < 2)
        o.bind_address = NULL; /* not in a version 1 struct */
    if (o.kind == SIM_MQTT_DEFAULT)
        o.kind = sim_mqtt_default_kind();
    if (o.kind != SIM_MQTT_MOSQUITTO && o.kind != SIM_MQTT_PAHO)
        return SIM_ERR_INVAL;
    o.mqtt_version = o.mqtt_version == 5 ? 5 : 3;
    if (!o.session_expiry_s)
        o.session_expiry_s = 3600;
    if (o.connect_timeout_s <= 0)
        o.connect_timeout_s = 10;
    return mqtt__impl(o.kind)->create(&o, h ? h : &none, ctx, out);
}

void sim_mqtt_destroy(struct sim_mqtt *c)
{
    if (c)
        c->impl->destroy(c);
}

int sim_mqtt_connect(struct sim_mqtt *c, const struct sim_mqtt_connect_params *p)
{
    return c && p ? c->impl->connect(c, p) : SIM_ERR_INVAL;
}

int sim_mqtt_publish(struct sim_mqtt *c, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *mid)
{
    if (mid)
        *mid = 0;
    if (!c || !topic || !*topic || qos < 0 || qos > 2 || (len && !payload) || len > INT32_MAX)
        return SIM_ERR_INVAL;
    return c->impl->publish(c, topic, payload, len, qos, retain, mid);
}

int sim_mqtt_subscribe(struct sim_mqtt *c, int n, const char *const *filters, const int *qos,
                       int *mid)
{
    if (mid)
        *mid = 0;
    if (!c || n <= 0 || !filters || !qos)
        return SIM_ERR_INVAL;
    for (int i = 0; i < n; i++)
        if (!filters[i] || !*filters[i] || qos[i] < 0 || qos[i] > 2)
            return SIM_ERR_INVAL;
    return c->impl->subscribe(c, n, filters, qos, mid);
}

void sim_mqtt_disconnect(struct sim_mqtt *c)
{
    if (c)
        c->impl->disconnect(c);
}

bool sim_mqtt_is_connected(const struct sim_mqtt *c)
{
    return c && c->impl->is_connected(c);
}

bool sim_mqtt_is_disconnecting(const struct sim_mqtt *c)
{
    return c && c->impl->is_disconnecting(c);
}

int sim_mqtt_receive_maximum(const struct sim_mqtt *c)
{
    return c ? atomic_load(&c->receive_maximum) : 0;
}

enum sim_mqtt_kind sim_mqtt_kind_of(const struct sim_mqtt *c)
{
    return c->kind;
}

const char *sim_mqtt_uri(const struct sim_mqtt *c)
{
    return c->uri;
}

int sim_mqtt_version(const struct sim_mqtt *c)
{
    return c->mqtt_version;
}

void sim_mqtt_stats(enum sim_mqtt_kind kind, struct sim_mqtt_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (kind == SIM_MQTT_DEFAULT)
        kind = sim_mqtt_default_kind();
    mqtt__impl(kind)->stats(out);
}

/* ------------------------------------------------------------------ helpers */

char *sim_mqtt__strdup(const char *s, bool *ok)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *ok = false;
    return d;
}

void sim_mqtt__free_secret(char *s)
{
    if (!s)
        return;
    /* Do not leave the secret in freed heap memory. */
    for (volatile char *p = s; *p; p++)
        *p = '\0';
    free(s);
}

/* ------------------------------------------------------------------ words */

struct reason {
    int code;
    const char *what;
    const char *todo;
};

static const struct reason connack3[] = {
    { 1, "unacceptable protocol version", "the broker does not speak MQTT 3.1.1: try MQTT 5" },
    { 2, "client identifier rejected", "use a shorter device id of letters and digits" },
    { 3, "server unavailable", "the broker cannot serve now: try again later" },
    { 4, "bad user name or password", "check the user name and password" },
    /* mosquitto answers a wrong password with this code too, hence the first hint. */
    { 5, "not authorised", "check the user name and password, and the user's rights (ACL)" },
};

static const struct reason reason5[] = {
    { 0x80, "unspecified error", "see the broker's log" },
    { 0x81, "malformed packet", "see the broker's log" },
    { 0x82, "protocol error", "see the broker's log" },
    { 0x83, "implementation specific error", "see the broker's log" },
    { 0x84, "unsupported protocol version", "the broker does not speak MQTT 5: try 3.1.1" },
    { 0x85, "client identifier not valid", "use a shorter device id of letters and digits" },
    { 0x86, "bad user name or password", "check the user name and password" },
    { 0x87, "not authorized", "check the user name and password, and the user's rights (ACL)" },
    { 0x88, "server unavailable", "try again later" },
    { 0x89, "server busy", "try again later" },
    { 0x8A, "banned", "ask the broker's administrator" },
    { 0x8B, "server shutting down", "try again later" },
    { 0x8C, "bad authentication method", "check the authentication settings" },
    { 0x8D, "keep alive timeout", "the device was silent too long; check the link" },
    { 0x8E, "session taken over", "another client connected with the same id" },
    { 0x95, "packet too large", "send smaller messages" },
    { 0x97, "quota exceeded", "slow down" },
    { 0x9C, "use another server", "connect to the server the broker names" },
    { 0x9D, "server moved", "connect to the server the broker names" },
    { 0x9F, "connection rate exceeded", "connect less often" },
};

static const struct reason *find_reason(const struct reason *tab, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (tab[i].code == code)
            return &tab[i];
    return NULL;
}

/* Does the lower-case OpenSSL reason hold any of the words? */
static bool reason_has(const char *reason, const char *const *words)
{
    for (; *words; words++)
        if (strstr(reason, *words))
            return true;
    return false;
}

/* Words for a TLS failure OpenSSL named; false when the reason says nothing useful. */
static bool describe_tls_reason(char *out, size_t cap, const char *uri, const char *reason)
{
    static const char *const not_tls[] = { "wrong version number", "unknown protocol",
                                           "packet length too long", "http request", NULL };
    static const char *const cert_refused[] = { "alert bad certificate", "alert unknown ca",
                                                "alert certificate", "alert decrypt error",
                                                "alert access denied", NULL };
    static const char *const files[] = { "no such file", "system lib", "no start line",
                                         "pem lib", "key values mismatch", "bad end line",
                                         "ca md too weak", "ee key too small", NULL };

    if (!reason || !*reason)
        return false;
    if (strstr(reason, "certificate verify failed"))
        snprintf(out, cap, "connection to %s failed: the broker's certificate was not trusted "
                 "(%s) - check --cafile and the name and dates in the broker's certificate",
                 uri, reason);
    else if (reason_has(reason, not_tls))
        snprintf(out, cap, "connection to %s failed: the server did not answer in TLS (%s) - "
                 "is it a plain MQTT port? use tcp:// there, or the TLS port", uri, reason);
    else if (reason_has(reason, cert_refused))
        snprintf(out, cap, "connection to %s failed: the broker refused the device's "
                 "certificate (%s) - check --cert/--key, the CA that signed them and their "
                 "dates", uri, reason);
    else if (reason_has(reason, files))
        snprintf(out, cap, "connection to %s failed: the TLS files could not be used (%s) - "
                 "check that --cafile, --cert and --key exist, are PEM and that the key "
                 "matches", uri, reason);
    else
        snprintf(out, cap, "connection to %s failed: TLS handshake failed (%s) - check "
                 "--cafile, --cert/--key and their dates", uri, reason);
    return true;
}

void sim_mqtt_describe_failure(char *out, size_t cap, const char *uri, int code,
                               const char *detail, const char *tls_reason)
{
    const struct reason *r;
    char what[128];

    if (!uri)
        uri = "(no uri)";
    if (code > 0 && code < 0x80) {
        r = find_reason(connack3, sizeof(connack3) / sizeof(connack3[0]), code);
        snprintf(out, cap, "connection to %s refused: %s (CONNACK %d) - %s", uri,
                 r ? r->what : "unknown reason", code, r ? r->todo : "see the broker's log");
        return;
    }
    if (code >= 0x80) {
        r = find_reason(reason5, sizeof(reason5) / sizeof(reason5[0]), code);
        snprintf(out, cap, "connection to %s refused: %s (reason code 0x%02X) - %s", uri,
                 r ? r->what : "unknown reason", (unsigned)code,
                 r ? r->todo : "see the broker's log");
        return;
    }
    if (describe_tls_reason(out, cap, uri, tls_reason))
        return;
    if (detail && *detail)
        snprintf(what, sizeof(what), " (%s)", detail);
    else
        what[0] = '\0';
    if (sim_mqtt_uri_is_tls(uri))
        snprintf(out, cap, "connection to %s failed: no TCP or TLS session%s - check host, "
                 "port, that the broker runs, --cafile, --cert/--key and their dates", uri,
                 what);
    else
        snprintf(out, cap, "connection to %s failed: the broker cannot be reached%s - "
                 "check host and port and that the broker runs", uri, what);
}

void sim_mqtt__describe_loss(char *out, size_t cap, const char *uri, int reason_code,
                             const char *cause)
{
    const struct reason *r;

    if (reason_code >= 0x80) {
        r = find_reason(reason5, sizeof(reason5) / sizeof(reason5[0]), reason_code);
        snprintf(out, cap, "connection to %s closed by the broker: %s (reason code 0x%02X)",
                 uri, r ? r->what : "no reason given", (unsigned)reason_code);
        return;
    }
    snprintf(out, cap, "connection to %s lost: %s", uri,
             cause && *cause ? cause : "network failure, keep-alive time-out or broker gone");
}

void sim_mqtt__ssl_reason_of(const char *line, size_t len, char *out, size_t cap)
{
    const char *end = line + len;
    const char *p = NULL;
    size_t n = 0;

    for (const char *q = line; q + 6 <= end; q++) {
        if (memcmp(q, "error:", 6) == 0) {
            p = q + 6;
            break;
        }
    }
    for (int colons = 0; p && p < end && colons < 3; p++)
        if (*p == ':')
            colons++;
    while (p && p < end && *p != ':' && *p != '\n' && n + 1 < cap) {
        unsigned char ch = (unsigned char)*p++;
        out[n++] = isprint(ch) ? (char)tolower(ch) : ' ';
    }
    if (cap)
        out[n] = '\0';
}
