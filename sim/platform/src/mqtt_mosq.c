/*
 * mqtt_mosq.c - the MQTT edge on libmosquitto 2.0 (SIM_MQTT_MOSQUITTO, sim/mqtt.h).
 *
 * One struct mosquitto per client, driven by a struct sim_loop (opts->io, or one process-wide
 * io loop with its own thread) through a watch on its socket and a tick for keep-alive and
 * time-outs (mqtt_mosq_io.c). libmosquitto's own loops (select: fds >= 1024 fail) are never
 * used.
 *
 * Threading: every libmosquitto call on a client is made on its io loop's owning thread.
 * A call from another thread goes through sim_loop_call (a hand-over to the loop thread and
 * a wait: not measured yet); a call on the loop thread (a device transport, a handler) is
 * direct. So no
 * lock of ours, and the watch is always re-armed right after the call that queued data.
 * Handlers run on the io loop's thread, inside libmosquitto's callbacks.
 *
 * Sections: state, names and words, outstanding, callbacks, options, create / destroy,
 * connect, publish / subscribe, disconnect and state, the impl table.
 *
 * Choices and limits of libmosquitto 2.0.11 (measured here):
 *   - mosquitto_connect_async takes no MQTT 5 CONNECT properties. The blocking
 *     mosquitto_connect_bind_v5 stores its properties before it checks its arguments, so a
 *     call with an invalid keep-alive (1) only stores them (no socket); the async connect
 *     then sends them. This gives the Session Expiry Interval of a persistent v5 session.
 *   - Keep-alive below 5 s is refused by libmosquitto: 1..4 become 5.
 *   - The DUP flag of a received PUBLISH is not in its public message struct: dup = false.
 *   - Outstanding publishes at a loss: with a clean session they are reported lost
 *     (published with SIM_ERR_OFFLINE); with a persistent session libmosquitto resends
 *     them on the reconnect, so they stay outstanding and get their published() then.
 *     Subscribes are never resent: always reported lost.
 *   - A tcp:// host name is resolved once per distinct name (a process cache) and the
 *     numeric address is connected to, since mosquitto_connect_async calls a blocking
 *     getaddrinfo; TLS keeps the name (host name verification needs it).
 *   - A bind address (opts->bind_address, `--bind`) goes to mosquitto_connect_bind_async,
 *     which binds port 0 before connect(): the port is the address's alone, whatever the
 *     broker (2.0.11 sets no IP_BIND_ADDRESS_NO_PORT and offers no hook before its bind),
 *     and Linux's bind() slows down once half the ephemeral range of an address is taken.
 *   - mosquitto_subscribe_multiple takes one QoS for all its filters: a SUBSCRIBE whose
 *     filters ask different QoS goes at the highest of them.
 *   - A failed TLS handshake closes the socket without on_disconnect, and libmosquitto
 *     drains OpenSSL's error queue into its log: the attempt is ended from the watch, with
 *     the reason taken from the log line.
 *   - A clean disconnect whose DISCONNECT is not written within about 1 s is closed
 *     (a fresh struct mosquitto), and disconnected() follows.
 *   - After libmosquitto closed the socket itself (a loss), its epoll registration went
 *     with it: the watch is removed with fd -1 so that an fd number reused meanwhile is
 *     never taken off the epoll set.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <poll.h>
#include <sys/socket.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mqtt_mosq_internal.h"
#include "sim/clock.h"
#include "sim/err.h"

/* ------------------------------------------------------------------ state */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static atomic_int n_clients;

static void lib_init(void)
{
    mosquitto_lib_init();
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ------------------------------------------------------------------ names and words */

/* scheme://host[:port] or scheme://[v6]:port into host and port. */
static int parse_uri(const char *uri, struct mosq_client *c)
{
    static const struct { const char *scheme; bool tls; } schemes[] = {
        { "tcp://", false }, { "mqtt://", false }, { "ssl://", true }, { "mqtts://", true },
    };
    const char *rest = NULL, *end, *colon;

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (!strncasecmp(uri, schemes[i].scheme, strlen(schemes[i].scheme))) {
            rest = uri + strlen(schemes[i].scheme);
            c->tls = schemes[i].tls;
        }
    if (!rest || !*rest)
        return SIM_ERR_INVAL;
    if (*rest == '[') {
        end = strchr(rest, ']');
        if (!end)
            return SIM_ERR_INVAL;
        c->host = strndup(rest + 1, (size_t)(end - rest - 1));
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strchr(rest, ':');
        end = colon ? colon : rest + strcspn(rest, "/");
        c->host = strndup(rest, (size_t)(end - rest));
    }
    if (!c->host)
        return SIM_ERR_NOMEM;
    c->port = colon ? atoi(colon + 1) : c->tls ? 8883 : 1883;
    return c->port > 0 && c->port < 65536 && *c->host ? SIM_OK : SIM_ERR_INVAL;
}

struct resolved {
    char *name;
    char addr[INET6_ADDRSTRLEN];
    struct resolved *next;
};

static pthread_mutex_t resolve_mu = PTHREAD_MUTEX_INITIALIZER;
static struct resolved *resolved_hosts;

/* The numeric address of host (cached per process); NULL when it does not resolve (the
   connect then gets the name and fails with libmosquitto's words). */
static const char *resolve(const char *host)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
    struct resolved *r;
    const char *out = NULL;

    pthread_mutex_lock(&resolve_mu);
    for (r = resolved_hosts; r && strcmp(r->name, host); r = r->next) {
    }
    if (!r && getaddrinfo(host, NULL, &hints, &ai) == 0 && ai && (r = calloc(1, sizeof(*r)))) {
        void *a = ai->ai_family == AF_INET6
                      ? (void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                      : (void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        inet_ntop(ai->ai_family, a, r->addr, sizeof(r->addr));
        r->name = strdup(host);
        r->next = resolved_hosts;
        resolved_hosts = r;
    }
    if (ai)
        freeaddrinfo(ai);
    out = r && r->name ? r->addr : NULL;
    pthread_mutex_unlock(&resolve_mu);
    return out;
}

/* libmosquitto drains OpenSSL's error queue into its log ("OpenSSL Error[0]: error:0A000086:
   SSL routines::certificate verify failed"): keep the first reason of a connect attempt. */
static void cb_log(struct mosquitto *m, void *obj, int level, const char *line)
{
    struct mosq_client *c = obj;
    const char *r;
    size_t i;

    (void)m;
    if (level != MOSQ_LOG_ERR || c->tls_reason[0] || !strstr(line, "OpenSSL Error"))
        return;
    r = strrchr(line, ':');
    r = r ? r + 1 : line;
    for (i = 0; r[i] && i + 1 < sizeof(c->tls_reason); i++)
        c->tls_reason[i] = (char)((r[i] >= 'A' && r[i] <= 'Z') ? r[i] - 'A' + 'a' : r[i]);
    c->tls_reason[i] = '\0';
}

/* The TLS reason of this attempt, or OpenSSL's queue when libmosquitto left it there. */
const char *mosq__tls_reason(struct mosq_client *c)
{
    unsigned long e;

    if (!c->tls)
        return NULL;
    if (!c->tls_reason[0] && (e = ERR_peek_last_error()) && ERR_reason_error_string(e))
        snprintf(c->tls_reason, sizeof(c->tls_reason), "%s", ERR_reason_error_string(e));
    return c->tls_reason[0] ? c->tls_reason : NULL;
}

static void send_disconnect(struct mosq_client *c);

/* ------------------------------------------------------------------ outstanding */

static void out_add(struct mosq_client *c, int mid, int n_filters)
{
    if (c->n_out == c->cap_out) {
        int cap = c->cap_out ? c->cap_out * 2 : 8;
        struct outstanding *no = realloc(c->out, (size_t)cap * sizeof(*no));
        if (!no)
            return; /* its answer will still come; only a loss would go unreported */
        c->out = no;
        c->cap_out = cap;
    }
    c->out[c->n_out++] = (struct outstanding){ mid, n_filters };
}

/* Forget mid; false when it was not outstanding. */
static bool out_take(struct mosq_client *c, int mid)
{
    for (int i = 0; i < c->n_out; i++)
        if (c->out[i].mid == mid) {
            c->out[i] = c->out[--c->n_out];
            return true;
        }
    return false;
}

/* At a loss: report what will not be answered (see the file header). */
static void out_report_lost(struct mosq_client *c)
{
    int i = 0;

    while (i < c->n_out) {
        struct outstanding o = c->out[i];
        if (o.n_filters == 0 && !c->clean) {
            i++;
            continue;
        }
        c->out[i] = c->out[--c->n_out];
        if (o.n_filters == 0 && c->h.published) {
            c->h.published(c->ctx, o.mid, SIM_ERR_OFFLINE);
        } else if (o.n_filters > 0 && c->h.subscribed) {
            int codes[o.n_filters];
            for (int k = 0; k < o.n_filters; k++)
                codes[k] = SIM_ERR_OFFLINE;
            c->h.subscribed(c->ctx, o.mid, o.n_filters, codes);
        }
    }
}

/* ------------------------------------------------------------------ callbacks */

void mosq__fail_connect(struct mosq_client *c, int code, const char *detail, const char *tls)
{
    char words[SIM_MQTT_WORDS_MAX];

    atomic_store(&c->state, ST_IDLE);
    sim_mqtt_describe_failure(words, sizeof(words), c->base.uri, code, detail, tls);
    if (c->h.connect_failed)
        c->h.connect_failed(c->ctx, code, words);
}

static void cb_connect(struct mosquitto *m, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct mosq_client *c = obj;
    uint16_t receive_max = 0;

    (void)m;
    if (rc == 0) {
        /* MQTT 5: the broker's Receive Maximum; 0 when absent or 3.1.1 (no window), as the
           Paho side reports it. */
        if (c->base.mqtt_version == 5)
            (void)mosquitto_property_read_int16(props, MQTT_PROP_RECEIVE_MAXIMUM, &receive_max,
                                                false);
        atomic_store(&c->base.receive_maximum, (int)receive_max);
        atomic_store(&c->state, ST_CONNECTED);
        if (c->h.connected)
            c->h.connected(c->ctx, (flags & 1) != 0);
    } else {
        mosq__fail_connect(c, rc, NULL, NULL); /* on_disconnect follows: state is idle then */
    }
}

static void cb_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
    struct mosq_client *c = obj;
    int was = atomic_load(&c->state), err = errno;
    char words[SIM_MQTT_WORDS_MAX];
    const char *detail;

    (void)m;
    (void)props;
    mosq__sync_watch(c); /* the socket is closed already */
    atomic_store(&c->state, ST_IDLE);
    detail = rc == MOSQ_ERR_ERRNO ? strerror(err) : mosquitto_strerror(rc);
    if (was == ST_CONNECTING) {
        atomic_store(&c->state, ST_CONNECTING); /* fail_connect sets idle */
        mosq__fail_connect(c, SIM_ERR_OFFLINE, detail, mosq__tls_reason(c));
        return;
    }
    if (was == ST_DISCONNECTING || (was == ST_CONNECTED && rc == 0)) {
        out_report_lost(c);
        if (c->h.disconnected)
            c->h.disconnected(c->ctx);
        return;
    }
    if (was != ST_CONNECTED)
        return;
    out_report_lost(c);
    snprintf(words, sizeof(words), "connection to %s lost: %s - the device will reconnect",
             c->base.uri, detail);
    if (c->h.connection_lost)
        c->h.connection_lost(c->ctx, words);
}

static void cb_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct mosq_client *c = obj;
    /* libmosquitto 2.0 does not expose the DUP flag of a received PUBLISH. */
    struct sim_mqtt_message sm = { msg->topic, msg->payload, (size_t)msg->payloadlen,
                                   msg->qos, false, msg->retain };

    (void)m;
    (void)props;
    if (c->h.message)
        c->h.message(c->ctx, &sm);
}

static void cb_publish(struct mosquitto *m, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
    struct mosq_client *c = obj;

    (void)m;
    (void)props;
    /* MQTT 5 success codes below 0x80 (0x10 "no matching subscribers", which mosquitto
       sends when nobody subscribed) are an acknowledgement like 0. */
    if (out_take(c, mid) && c->h.published) /* QoS 0 sends are not outstanding */
        c->h.published(c->ctx, mid, reason >= 0x80 ? reason : 0);
    if (c->disconnect_deferred && c->n_out == 0)
        send_disconnect(c);
}

static void cb_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
    struct mosq_client *c = obj;

    (void)m;
    (void)props;
    if (out_take(c, mid) && c->h.subscribed)
        c->h.subscribed(c->ctx, mid, n, granted);
}

/* ------------------------------------------------------------------ options */

/* Everything a fresh or reinitialised struct mosquitto needs. 0 or SIM_ERR_MQTT. */
static int apply_options(struct mosq_client *c)
{
    struct mosquitto *m = c->m;
    int rc = 0;

    mosquitto_connect_v5_callback_set(m, cb_connect);
    mosquitto_disconnect_v5_callback_set(m, cb_disconnect);
    mosquitto_message_v5_callback_set(m, cb_message);
    mosquitto_publish_v5_callback_set(m, cb_publish);
    mosquitto_subscribe_v5_callback_set(m, cb_subscribe);
    if (c->tls)
        mosquitto_log_callback_set(m, cb_log);
    rc |= mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
                               c->base.mqtt_version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    if (c->tcp_nodelay)
        rc |= mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
#ifdef SIM_HAVE_MOSQ_DISABLE_SOCKETPAIR
    rc |= mosquitto_int_option(m, MOSQ_OPT_DISABLE_SOCKETPAIR, 1);
#endif
    if (c->username)
        rc |= mosquitto_username_pw_set(m, c->username, c->password);
    if (c->tls) {
        rc |= mosquitto_tls_set(m, c->cafile, c->cafile ? NULL : "/etc/ssl/certs", c->certfile,
                                c->keyfile ? c->keyfile : c->certfile ? c->certfile : NULL,
                                NULL);
        if (c->insecure) {
            rc |= mosquitto_tls_opts_set(m, SSL_VERIFY_NONE, NULL, NULL);
            rc |= mosquitto_tls_insecure_set(m, true);
        }
    }
    return rc ? SIM_ERR_MQTT : SIM_OK;
}

/* A fresh struct mosquitto for a clean-session flag (libmosquitto sets it at creation). */
static int renew(struct mosq_client *c, bool clean)
{
    mosq__unwatch_open(c);
    c->clean = true; /* a fresh struct resends nothing: what is outstanding is lost */
    out_report_lost(c);
    c->clean = clean;
    if (!c->m) {
        c->m = mosquitto_new(c->client_id, clean, c);
        if (!c->m)
            return SIM_ERR_NOMEM;
    } else if (mosquitto_reinitialise(c->m, c->client_id, clean, c) != MOSQ_ERR_SUCCESS) {
        return SIM_ERR_MQTT;
    }
    return apply_options(c);
}

/* ------------------------------------------------------------------ create / destroy */

/* Everything of c but the shell itself. */
static void free_client_parts(struct mosq_client *c)
{
    if (c->m)
        mosquitto_destroy(c->m);
    c->m = NULL;
    free(c->base.uri);
    free(c->host);
    free(c->client_id);
    free(c->username);
    free(c->password);
    free(c->cafile);
    free(c->certfile);
    free(c->keyfile);
    free(c->bind_address);
    free(c->out);
    c->out = NULL;
}

static void free_client(struct mosq_client *c)
{
    free_client_parts(c);
    free(c);
}

struct add_args {
    struct mosq_client *c;
    int rc;
};

static void create_on_owner(void *arg)
{
    struct add_args *a = arg;

    a->rc = renew(a->c, true);
    if (a->rc == 0)
        a->rc = mosq__io_add(a->c->io, a->c);
}

/* The options a client keeps (strings copied); false when out of memory. */
static bool copy_options(struct mosq_client *c, const struct sim_mqtt_opts *o)
{
    c->base = (struct sim_mqtt){ .impl = &sim_mqtt__mosquitto, .kind = SIM_MQTT_MOSQUITTO,
                                 .uri = strdup(o->uri), .mqtt_version = o->mqtt_version };
    c->client_id = strdup(o->client_id);
    c->username = dup_or_null(o->username);
    c->password = dup_or_null(o->password);
    c->cafile = dup_or_null(o->cafile);
    c->certfile = dup_or_null(o->certfile);
    c->keyfile = dup_or_null(o->keyfile);
    c->bind_address = dup_or_null(o->bind_address);
    c->insecure = o->insecure;
    c->tcp_nodelay = o->tcp_nodelay;
    c->session_expiry_s = o->session_expiry_s;
    c->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
    return c->base.uri && c->client_id && (!o->username || c->username) &&
           (!o->password || c->password) && (!o->cafile || c->cafile) &&
           (!o->certfile || c->certfile) && (!o->keyfile || c->keyfile) &&
           (!o->bind_address || c->bind_address);
}

static int mosq_create(const struct sim_mqtt_opts *o, const struct sim_mqtt_handlers *h,
                       void *ctx, struct sim_mqtt **out)
{
    struct mosq_client *c;
    struct add_args a = { NULL, SIM_ERR_NOMEM };
    struct sim_loop *loop;
    int rc;

    pthread_once(&lib_once, lib_init);
    if (o->mqtt_version != 3 && o->mqtt_version != 5)
        return SIM_ERR_INVAL;
    loop = o->io ? o->io : mosq__shared_loop();
    c = calloc(1, sizeof(*c));
    if (!c || !loop)
        goto fail;
    if (h)
        c->h = *h;
    c->ctx = ctx;
    if (!copy_options(c, o))
        goto fail;
    rc = parse_uri(o->uri, c);
    if (rc) {
        a.rc = rc;
        goto fail;
    }
    c->io = mosq__io_of(loop);
    if (!c->io)
        goto fail;
    a.c = c;
    sim_loop_call(loop, create_on_owner, &a);
    if (a.rc)
        goto fail;
    atomic_fetch_add(&n_clients, 1);
    *out = &c->base;
    return SIM_OK;

fail:
    if (c)
        free_client(c);
    return a.rc;
}

/* After DISCONNECT: stop sending and read until the broker closes (up to 200 ms), so the
   socket is not closed with unread data, which makes the kernel send a reset that the
   broker may read before the DISCONNECT. */
static void linger_close(struct mosq_client *c)
{
    int fd = mosquitto_socket(c->m);
    uint64_t end = sim_clock_ms() + 200;
    char buf[512];

    if (fd < 0 || mosquitto_want_write(c->m))
        return;
    (void)shutdown(fd, SHUT_WR);
    while (sim_clock_ms() < end) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 20) < 0 && errno != EINTR)
            break;
        if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) && recv(fd, buf, sizeof(buf), 0) <= 0)
            break; /* the broker closed */
    }
}

/* A clean disconnect under way: write what is queued (the DISCONNECT last) before the
   socket goes, for up to 1 s, so that the broker sees a clean disconnect and no Will.
   silent: no handler runs (the client is being destroyed). Owner thread. */
static void flush_disconnect(struct mosq_client *c, bool silent)
{
    uint64_t end = sim_clock_ms() + 1000;
    int fd = mosquitto_socket(c->m);

    if (atomic_load(&c->state) != ST_DISCONNECTING || fd < 0)
        return;
    if (silent)
        memset(&c->h, 0, sizeof(c->h));
    while (atomic_load(&c->state) == ST_DISCONNECTING && sim_clock_ms() < end) {
        bool out = mosquitto_want_write(c->m);
        struct pollfd pfd = { .fd = fd, .events = POLLIN | (out ? POLLOUT : 0) };
        int rc = MOSQ_ERR_SUCCESS;
        if (poll(&pfd, 1, 50) < 0 && errno != EINTR)
            break;
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
            rc = mosquitto_loop_read(c->m, 1); /* the acks: then DISCONNECT is queued */
        if (rc == MOSQ_ERR_SUCCESS && (pfd.revents & POLLOUT))
            rc = mosquitto_loop_write(c->m, 1);
        if (rc != MOSQ_ERR_SUCCESS || mosquitto_socket(c->m) < 0)
            break; /* written and closed (or the link failed): nothing more to do */
        if (c->disconnect_deferred && sim_clock_ms() + 200 >= end)
            send_disconnect(c); /* the acks are late: DISCONNECT anyway */
    }
    linger_close(c);
}

static void destroy_on_owner(void *arg)
{
    struct mosq_client *c = arg;

    c->closing = true;
    mosq__unwatch_open(c);
    flush_disconnect(c, true);
    mosq__io_remove(c->io, c);
    /* Unless a clean disconnect was under way (flushed above), mosquitto_destroy closes the
       socket without DISCONNECT, so the broker publishes the Will. */
    free_client_parts(c);
    mosq__bury(c->io, c, sim_clock_ms());
}

static void mosq_destroy(struct sim_mqtt *base)
{
    struct mosq_client *c = (struct mosq_client *)base;

    /* No more callbacks: the watch is gone, the tick no longer sees it, and the shell is
       freed by the io loop later. */
    sim_loop_call(c->io->loop, destroy_on_owner, c);
    atomic_fetch_sub(&n_clients, 1);
}

/* ------------------------------------------------------------------ connect */

struct connect_args {
    struct mosq_client *c;
    const struct sim_mqtt_connect_params *p;
    int rc;
};

/* MQTT 5: the CONNECT properties for the async connect (see the file header). */
static int store_connect_properties(struct mosq_client *c, bool clean)
{
    mosquitto_property *props = NULL;
    int rc;

    if (c->base.mqtt_version != 5)
        return SIM_OK;
    if (!clean && mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                               c->session_expiry_s) != MOSQ_ERR_SUCCESS)
        return SIM_ERR_NOMEM;
    /* keep-alive 1 is refused after the properties are stored: nothing else happens */
    rc = mosquitto_connect_bind_v5(c->m, c->host, c->port, 1, NULL, props);
    mosquitto_property_free_all(&props);
    return rc == MOSQ_ERR_INVAL ? SIM_OK : SIM_ERR_MQTT;
}

static int set_will(struct mosq_client *c, const struct sim_mqtt_will *w)
{
    mosquitto_will_clear(c->m);
    if (!w)
        return SIM_OK;
    return mosquitto_will_set(c->m, w->topic, (int)w->len, w->payload, w->qos, w->retain)
               ? SIM_ERR_INVAL : SIM_OK;
}

/* Why a connect could not start, for people: a source address that is not this
   machine's is named as such (errno is read first, before anything can change it). */
static void connect_detail(const struct mosq_client *c, int rc, char *out, size_t cap)
{
    int e = errno;

    if (rc == MOSQ_ERR_ERRNO && c->bind_address && e == EADDRNOTAVAIL)
        snprintf(out, cap, "the source address %s is not one of this machine's", c->bind_address);
    else if (rc == MOSQ_ERR_ERRNO && c->bind_address && e == EADDRINUSE)
        snprintf(out, cap, "no ephemeral port left on the source address %s - give more "
                 "source addresses", c->bind_address);
    else if (rc == MOSQ_ERR_ERRNO && c->bind_address && (e == EAFNOSUPPORT || e == EINVAL))
        snprintf(out, cap, "the source address %s and the broker's address are not both "
                 "IPv4 or both IPv6", c->bind_address);
    else
        snprintf(out, cap, "%s", rc == MOSQ_ERR_ERRNO ? strerror(e) : mosquitto_strerror(rc));
}

static void connect_on_owner(void *arg)
{
    struct connect_args *a = arg;
    struct mosq_client *c = a->c;
    const char *addr = c->tls ? c->host : resolve(c->host);
    int keepalive = a->p->keepalive_s > 0 && a->p->keepalive_s < 5 ? 5 : a->p->keepalive_s;
    int rc, st = atomic_load(&c->state);

    a->rc = SIM_ERR_STATE;
    if (st == ST_DISCONNECTING) {
        /* A connect right after a clean disconnect (a device powered on again): finish
           that one first, as the Paho side waits for its own (up to 1 s). */
        flush_disconnect(c, false);
        if (atomic_load(&c->state) == ST_DISCONNECTING)
            (void)renew(c, c->clean);
        atomic_store(&c->state, ST_IDLE);
        mosq__sync_watch(c);
        st = ST_IDLE;
    }
    if (st != ST_IDLE)
        return;
    a->rc = (a->p->clean_session != c->clean) ? renew(c, a->p->clean_session) : SIM_OK;
    if (!a->rc)
        a->rc = set_will(c, a->p->will);
    if (!a->rc)
        a->rc = store_connect_properties(c, a->p->clean_session);
    if (a->rc)
        return;
    mosq__unwatch_open(c); /* a socket left from before is closed by the connect */
    atomic_store(&c->state, ST_CONNECTING);
    c->connect_deadline_ms = sim_clock_ms() + (uint64_t)c->connect_timeout_s * 1000u;
    ERR_clear_error();
    c->tls_reason[0] = '\0';
    /* bind_address NULL = the system's choice; libmosquitto binds it before connect() */
    rc = mosquitto_connect_bind_async(c->m, addr ? addr : c->host, c->port, keepalive,
                                      c->bind_address);
    if (rc != MOSQ_ERR_SUCCESS) {
        char detail[160];
        a->rc = SIM_ERR_MQTT;
        connect_detail(c, rc, detail, sizeof detail);
        mosq__fail_connect(c, SIM_ERR_OFFLINE, detail, mosq__tls_reason(c));
        return;
    }
    mosq__sync_watch(c);
}

static int mosq_connect(struct sim_mqtt *base, const struct sim_mqtt_connect_params *p)
{
    struct mosq_client *c = (struct mosq_client *)base;
    struct connect_args a = { c, p, SIM_ERR_NOMEM };
    int rc = sim_loop_call(c->io->loop, connect_on_owner, &a);

    return rc ? rc : a.rc;
}

/* Keep-alive and the connect time-out, about once a second (io_tick). */
void mosq__client_misc(struct mosq_client *c, uint64_t now_ms)
{
    int st = atomic_load(&c->state);
    char words[64];

    if (st == ST_CONNECTING && now_ms >= c->connect_deadline_ms) {
        snprintf(words, sizeof(words), "no CONNACK within %d s", c->connect_timeout_s);
        /* a fresh struct closes the socket without callbacks */
        if (renew(c, c->clean) == 0)
            mosq__fail_connect(c, SIM_ERR_TIMEOUT, words, NULL);
        return;
    }
    if (st == ST_DISCONNECTING && c->disconnect_deferred && now_ms >= c->connect_deadline_ms) {
        c->connect_deadline_ms = now_ms + 1000; /* acks did not come: DISCONNECT anyway */
        send_disconnect(c);
        return;
    }
    if (st == ST_DISCONNECTING && now_ms >= c->connect_deadline_ms) {
        /* DISCONNECT could not be written in time: close (the broker will see a loss) */
        if (renew(c, c->clean) == 0) {
            atomic_store(&c->state, ST_IDLE);
            if (c->h.disconnected)
                c->h.disconnected(c->ctx);
        }
        return;
    }
    if (st == ST_CONNECTED || st == ST_DISCONNECTING) {
        mosquitto_loop_misc(c->m);
        mosq__sync_watch(c);
    }
}

/* ------------------------------------------------------------------ publish / subscribe */

struct send_args {
    struct mosq_client *c;
    const char *topic;
    const void *payload;
    size_t len;
    int qos;
    bool retain;
    int n;
    const char *const *filters;
    const int *qos_list;
    int mid;
    int rc;
};

static int mosq_rc(int rc)
{
    switch (rc) {
    case MOSQ_ERR_SUCCESS: return SIM_OK;
    case MOSQ_ERR_NOMEM: return SIM_ERR_NOMEM;
    case MOSQ_ERR_INVAL: case MOSQ_ERR_MALFORMED_UTF8: case MOSQ_ERR_QOS_NOT_SUPPORTED:
    case MOSQ_ERR_OVERSIZE_PACKET: return SIM_ERR_INVAL;
    case MOSQ_ERR_NO_CONN: return SIM_ERR_OFFLINE;
    default: return SIM_ERR_MQTT;
    }
}

static void publish_on_owner(void *arg)
{
    struct send_args *a = arg;
    struct mosq_client *c = a->c;

    a->rc = SIM_ERR_OFFLINE;
    if (atomic_load(&c->state) != ST_CONNECTED)
        return;
    if (a->qos < 0 || a->qos > 2 || a->len > INT32_MAX) {
        a->rc = SIM_ERR_INVAL;
        return;
    }
    a->rc = mosq_rc(mosquitto_publish_v5(c->m, &a->mid, a->topic, (int)a->len, a->payload,
                                         a->qos, a->retain, NULL));
    if (a->rc == 0 && a->qos > 0)
        out_add(c, a->mid, 0);
    if (a->qos == 0)
        a->mid = 0;
    mosq__sync_watch(c);
}

static int mosq_publish(struct sim_mqtt *base, const char *topic, const void *payload,
                        size_t len, int qos, bool retain, int *mid)
{
    struct mosq_client *c = (struct mosq_client *)base;
    struct send_args a = { .c = c, .topic = topic, .payload = payload, .len = len, .qos = qos,
                           .retain = retain, .rc = SIM_ERR_NOMEM };
    int rc = sim_loop_call(c->io->loop, publish_on_owner, &a);

    if (mid)
        *mid = a.mid;
    return rc ? rc : a.rc;
}

static void subscribe_on_owner(void *arg)
{
    struct send_args *a = arg;
    struct mosq_client *c = a->c;
    int rc = MOSQ_ERR_SUCCESS;

    a->rc = SIM_ERR_OFFLINE;
    if (atomic_load(&c->state) != ST_CONNECTED)
        return;
    /* mosquitto_subscribe_multiple takes one QoS for all filters: group by QoS would
       need several SUBSCRIBEs, so all filters go at the highest QoS asked when they differ. */
    int q = 0;
    for (int i = 0; i < a->n; i++)
        q = a->qos_list[i] > q ? a->qos_list[i] : q;
    rc = mosquitto_subscribe_multiple(c->m, &a->mid, a->n, (char *const *)a->filters, q, 0,
                                      NULL);
    a->rc = mosq_rc(rc);
    if (a->rc == 0)
        out_add(c, a->mid, a->n);
    mosq__sync_watch(c);
}

static int mosq_subscribe(struct sim_mqtt *base, int n, const char *const *filters,
                          const int *qos, int *mid)
{
    struct mosq_client *c = (struct mosq_client *)base;
    struct send_args a = { .c = c, .n = n, .filters = filters, .qos_list = qos,
                           .rc = SIM_ERR_NOMEM };
    int rc;

    if (n <= 0 || !filters || !qos)
        return SIM_ERR_INVAL;
    rc = sim_loop_call(c->io->loop, subscribe_on_owner, &a);
    if (mid)
        *mid = a.mid;
    return rc ? rc : a.rc;
}

/* ------------------------------------------------------------------ disconnect, state */

/* Queue DISCONNECT; written, it closes the socket and on_disconnect (rc 0) reports
   disconnected. Owner thread. */
static void send_disconnect(struct mosq_client *c)
{
    c->disconnect_deferred = false;
    if (mosquitto_disconnect(c->m) != MOSQ_ERR_SUCCESS) {
        atomic_store(&c->state, ST_IDLE);
        if (c->h.disconnected)
            c->h.disconnected(c->ctx);
        return;
    }
    mosq__sync_watch(c);
}

/* A clean disconnect waits (up to 1 s) for the acknowledgements of what is outstanding, as
   Paho's does: closing the socket with a PUBACK unread makes the kernel answer with a
   reset, and a broker that reads the reset first never sees the DISCONNECT before it (it
   then publishes the Will, and logs "closed its connection"). */
static void disconnect_on_owner(void *arg)
{
    struct mosq_client *c = arg;

    if (atomic_load(&c->state) != ST_CONNECTED)
        return;
    atomic_store(&c->state, ST_DISCONNECTING);
    c->connect_deadline_ms = sim_clock_ms() + 1000; /* then client_misc goes on */
    if (c->n_out > 0) {
        c->disconnect_deferred = true;
        return;
    }
    send_disconnect(c);
}

static void mosq_disconnect(struct sim_mqtt *base)
{
    struct mosq_client *c = (struct mosq_client *)base;

    sim_loop_call(c->io->loop, disconnect_on_owner, c);
}

static bool mosq_is_connected(const struct sim_mqtt *base)
{
    return atomic_load(&((const struct mosq_client *)base)->state) == ST_CONNECTED;
}

static bool mosq_is_disconnecting(const struct sim_mqtt *base)
{
    return atomic_load(&((const struct mosq_client *)base)->state) == ST_DISCONNECTING;
}

static void mosq_stats(struct sim_mqtt_stats *out)
{
    out->clients = atomic_load(&n_clients);
#ifdef SIM_HAVE_MOSQ_DISABLE_SOCKETPAIR
    out->fds_per_client = 1;
#else
    out->fds_per_client = 3;
#endif
}

const struct sim_mqtt_impl sim_mqtt__mosquitto = {
    .create = mosq_create,
    .destroy = mosq_destroy,
    .connect = mosq_connect,
    .publish = mosq_publish,
    .subscribe = mosq_subscribe,
    .disconnect = mosq_disconnect,
    .is_connected = mosq_is_connected,
    .is_disconnecting = mosq_is_disconnecting,
    .stats = mosq_stats,
};

