/*
 * mqtt.c - the MQTT edge's common part (sim/mqtt.h): kinds, option defaults, dispatch to
 * the implementation a client was made with, and the words for failures. Nothing of a
 * client library here. (Minimal version: only the mosquitto kind is linked on this branch.)
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mqtt_internal.h"
#include "sim/err.h"

static enum sim_mqtt_kind default_kind = SIM_MQTT_MOSQUITTO;

static const struct sim_mqtt_impl *impl_of(enum sim_mqtt_kind kind)
{
    return kind == SIM_MQTT_MOSQUITTO ? &sim_mqtt__mosquitto : NULL;
}

const char *sim_mqtt_kind_name(enum sim_mqtt_kind kind)
{
    return kind == SIM_MQTT_PAHO ? "paho" : kind == SIM_MQTT_MOSQUITTO ? "mosquitto" : "default";
}

int sim_mqtt_kind_parse(const char *s, enum sim_mqtt_kind *out)
{
    if (s && !strcmp(s, "mosquitto"))
        *out = SIM_MQTT_MOSQUITTO;
    else if (s && !strcmp(s, "paho"))
        *out = SIM_MQTT_PAHO;
    else
        return SIM_ERR_INVAL;
    return SIM_OK;
}

void sim_mqtt_set_default_kind(enum sim_mqtt_kind kind) { default_kind = kind; }
enum sim_mqtt_kind sim_mqtt_default_kind(void) { return default_kind; }

void sim_mqtt_opts_defaults(struct sim_mqtt_opts *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->version = SIM_MQTT_OPTS_VERSION;
    opts->kind = SIM_MQTT_DEFAULT;
    opts->mqtt_version = 3;
    opts->session_expiry_s = 3600;
    opts->connect_timeout_s = 10;
    opts->tcp_nodelay = true;
}

bool sim_mqtt_uri_is_tls(const char *uri)
{
    return uri && (!strncasecmp(uri, "ssl://", 6) || !strncasecmp(uri, "mqtts://", 8));
}

int sim_mqtt_create(const struct sim_mqtt_opts *opts, const struct sim_mqtt_handlers *h,
                    void *ctx, struct sim_mqtt **out)
{
    enum sim_mqtt_kind kind;
    const struct sim_mqtt_impl *impl;

    *out = NULL;
    if (!opts || !opts->uri || !opts->client_id || !*opts->client_id)
        return SIM_ERR_INVAL;
    kind = opts->kind == SIM_MQTT_DEFAULT ? default_kind : opts->kind;
    impl = impl_of(kind);
    if (!impl)
        return SIM_ERR_INVAL;
    return impl->create(opts, h, ctx, out);
}

void sim_mqtt_destroy(struct sim_mqtt *c)
{
    if (c)
        c->impl->destroy(c);
}

int sim_mqtt_connect(struct sim_mqtt *c, const struct sim_mqtt_connect_params *p)
{
    return c->impl->connect(c, p);
}

int sim_mqtt_publish(struct sim_mqtt *c, const char *topic, const void *payload, size_t len,
                     int qos, bool retain, int *mid)
{
    return c->impl->publish(c, topic, payload, len, qos, retain, mid);
}

int sim_mqtt_subscribe(struct sim_mqtt *c, int n, const char *const *filters, const int *qos,
                       int *mid)
{
    return c->impl->subscribe(c, n, filters, qos, mid);
}

void sim_mqtt_disconnect(struct sim_mqtt *c) { c->impl->disconnect(c); }
bool sim_mqtt_is_connected(const struct sim_mqtt *c) { return c->impl->is_connected(c); }
bool sim_mqtt_is_disconnecting(const struct sim_mqtt *c) { return c->impl->is_disconnecting(c); }
enum sim_mqtt_kind sim_mqtt_kind_of(const struct sim_mqtt *c) { return c->kind; }
const char *sim_mqtt_uri(const struct sim_mqtt *c) { return c->uri; }
int sim_mqtt_version(const struct sim_mqtt *c) { return c->mqtt_version; }

void sim_mqtt_stats(enum sim_mqtt_kind kind, struct sim_mqtt_stats *out)
{
    const struct sim_mqtt_impl *impl = impl_of(kind == SIM_MQTT_DEFAULT ? default_kind : kind);

    memset(out, 0, sizeof(*out));
    if (impl)
        impl->stats(out);
}

/* Simple words; the common version with the full tables replaces this at merge. */
void sim_mqtt_describe_failure(char *out, size_t cap, const char *uri, int code,
                               const char *detail, const char *tls_reason)
{
    if (!uri)
        uri = "(no uri)";
    if (code == 4 || code == 0x86)
        snprintf(out, cap, "connection to %s refused: bad user name or password (code %d) - "
                 "check the user name and password", uri, code);
    else if (code == 5 || code == 0x87)
        snprintf(out, cap, "connection to %s refused: not authorised (code %d) - check the "
                 "user name and password, and the user's rights (ACL)", uri, code);
    else if (code > 0)
        snprintf(out, cap, "connection to %s refused (code %d) - see the broker's log", uri,
                 code);
    else if (tls_reason && *tls_reason)
        snprintf(out, cap, "connection to %s failed: TLS handshake failed (%s) - check "
                 "--cafile, --cert/--key and their dates", uri, tls_reason);
    else
        snprintf(out, cap, "connection to %s failed: the broker cannot be reached (%s) - "
                 "check host and port and that the broker runs", uri,
                 detail ? detail : "no answer");
}
