/*
 * device.c - one simulated scanner: firmware_core + the Linux ports on a loop
 * (sim/device.h). Also the log port (to an observer or stderr).
 *
 * The struct fw_device lives inside struct sim_device (one allocation per device). The
 * fw_ports handed to the firmware all take the sim_device as ctx and forward to the port
 * modules (transport_paho.c, storage_*.c, display_headless.c, clock_posix.c), calling the
 * observer on the way so a UI sees frames, traffic and state changes. Everything here runs
 * on the loop's owning thread; the public entry points that may be called from elsewhere
 * go through sim_loop_call / sim_loop_push.
 *
 * Every call into the firmware goes through fw_traced_*() (fw/fw_trace_recorder.h): with
 * opts->trace_dir the device records its trace (docs/trace.md), otherwise the recorder is
 * NULL and they are the plain fw_device_*() calls.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fw/fw_trace_recorder.h"
#include "sim/clock.h"
#include "sim/device.h"
#include "sim/err.h"
#include "sim/storage.h"
#include "trace_file.h"

struct sim_device {
    struct sim_loop_target target;       /* what the loop ticks and sends events to */
    struct sim_loop *loop;
    struct sim_transport *transport;
    struct sim_storage *storage;
    struct sim_display *display;         /* NULL without a headless display */
    const struct sim_device_observer *obs;
    void *user;
    struct fw_ports ports;
    struct fw_device_config cfg;         /* strings point at the copies below */
    char *topics[5];                     /* copied topic overrides (usually all NULL) */
    char id[FW_DEVICE_ID_MAX];
    enum fw_log_level log_level;
    bool log_stderr;
    bool powered;                        /* started and not stopped / cut */
    bool started_once;                   /* a later start re-initialises (a reboot) */
    enum sim_conn_state conn_state;
    int last_failure_code;
    uint64_t frames, traffic_in, traffic_out;
    char last_words[SIM_WORDS_MAX];
    struct held_msg *held_head, *held_tail; /* items waiting for room in the firmware queue */
    uint32_t held_now;
    uint64_t held_total;
    struct sim_trace_file *trace_file;   /* with a trace dir: where the trace goes */
    struct fw_trace_recorder *rec;       /* NULL unless tracing */
    struct fw_device fw;                 /* the firmware's state, allocated with us */
};

/* An inbound item the firmware's queue had no room for yet (see hold_or_deliver). */
struct held_msg {
    struct held_msg *next;
    int qos;
    bool dup;
    size_t len;
    char *topic;        /* points into data, after the payload */
    char data[];
};

#define DEV_OF(t) ((struct sim_device *)((char *)(t) - offsetof(struct sim_device, target)))

const char *sim_conn_state_name(enum sim_conn_state s)
{
    switch (s) {
    case SIM_CONN_CONNECTING: return "connecting";
    case SIM_CONN_SUBSCRIBING: return "subscribing";
    case SIM_CONN_CONNECTED: return "connected";
    case SIM_CONN_FAILED: return "connect_failed";
    case SIM_CONN_LOST: return "connection_lost";
    case SIM_CONN_DISCONNECTED: return "disconnected";
    case SIM_CONN_POWER_CUT: return "power_cut";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------------ observer helpers */

static void state_change(struct sim_device *dev, enum sim_conn_state st, bool sp, int code,
                         const char *words)
{
    struct sim_state_change s = { st, sp, code, words ? words : "" };

    dev->conn_state = st;
    if (st == SIM_CONN_FAILED)
        dev->last_failure_code = code;
    if (words && *words)
        snprintf(dev->last_words, sizeof(dev->last_words), "%s", words);
    if (dev->obs && dev->obs->on_state)
        dev->obs->on_state(dev->obs->ctx, dev, &s);
}

/* ------------------------------------------------------------------ ports (owner thread) */

static int port_net_connect(void *ctx, const struct fw_connect_params *p)
{
    struct sim_device *dev = ctx;

    state_change(dev, SIM_CONN_CONNECTING, false, 0, NULL);
    return sim_transport_connect(dev->transport, p);
}

static int port_net_publish(void *ctx, const struct fw_publish *msg, uint32_t *token)
{
    struct sim_device *dev = ctx;
    uint32_t tok = 0;
    int rc = sim_transport_publish(dev->transport, msg, &tok);

    if (token)
        *token = tok;
    if (rc == 0)
        dev->traffic_out++;
    if (dev->obs && dev->obs->on_traffic) {
        struct sim_traffic t = { SIM_TRAFFIC_OUT, msg->topic, msg->payload, msg->len,
                                 msg->qos, false, msg->retain, rc, tok };
        dev->obs->on_traffic(dev->obs->ctx, dev, &t);
    }
    return rc;
}

static int port_net_subscribe(void *ctx, const char *filter, int qos, uint32_t *token)
{
    return sim_transport_subscribe(((struct sim_device *)ctx)->transport, filter, qos, token);
}

static int port_net_subscribe_many(void *ctx, const char *const *filters, int n, int qos,
                                   uint32_t *token)
{
    return sim_transport_subscribe_many(((struct sim_device *)ctx)->transport, filters, n, qos,
                                        token);
}

static void port_net_disconnect(void *ctx)
{
    struct sim_device *dev = ctx;

    sim_transport_disconnect(dev->transport);
    state_change(dev, SIM_CONN_DISCONNECTED, false, 0, NULL);
}

static void port_display_flush(void *ctx, const uint8_t *fb)
{
    struct sim_device *dev = ctx;

    dev->frames++;
    if (dev->display)
        sim_display_flush(dev->display, fb);
    if (dev->obs && dev->obs->on_frame)
        dev->obs->on_frame(dev->obs->ctx, dev, fb);
}

static uint64_t port_clock_ms(void *ctx)
{
    (void)ctx;
    return sim_clock_ms();
}

static int port_storage_read(void *ctx, const char *key, void *buf, size_t cap, size_t *len)
{
    return sim_storage_read(((struct sim_device *)ctx)->storage, key, buf, cap, len);
}

static int port_storage_write(void *ctx, const char *key, const void *buf, size_t len)
{
    return sim_storage_write(((struct sim_device *)ctx)->storage, key, buf, len);
}

static const char *level_name(enum fw_log_level l)
{
    switch (l) {
    case FW_LOG_DEBUG: return "DEBUG";
    case FW_LOG_INFO: return "INFO";
    case FW_LOG_WARN: return "WARN";
    default: return "ERROR";
    }
}

/* The log port: to the observer, else to stderr with the device id in front. */
static void port_log(void *ctx, enum fw_log_level level, const char *line)
{
    struct sim_device *dev = ctx;

    if (level < dev->log_level)
        return;
    if (dev->obs && dev->obs->on_log)
        dev->obs->on_log(dev->obs->ctx, dev, level, line);
    else if (dev->log_stderr)
        fprintf(stderr, "[%s] %s %s\n", dev->id, level_name(level), line);
}

/* ------------------------------------------------------------------ inbound back-pressure */

/*
 * Paho acknowledges a QoS 1 PUBLISH before the application sees it (REFERENCE.md,
 * paho.mqtt.c #522), so an item handed to a firmware whose pending queue is full would be
 * acknowledged and then refused: lost at the business level. A board's MQTT client reads
 * its socket only when the application has room, and TCP flow control holds the broker
 * back; the broker keeps the rest. Here the items Paho already took wait in this FIFO
 * instead (in order, behind any earlier held item) and are handed over as the queue drains.
 * Only the item topic is held; everything else goes straight through. Held items are RAM:
 * a power cut or a reboot loses them, as it would lose a board's socket buffer.
 */
static bool fw_queue_full(const struct sim_device *dev)
{
    struct fw_status st;

    fw_device_status(&dev->fw, &st);
    return st.pending >= FW_PENDING_ITEMS;
}

static void held_drop_all(struct sim_device *dev)
{
    while (dev->held_head) {
        struct held_msg *m = dev->held_head;
        dev->held_head = m->next;
        free(m);
    }
    dev->held_tail = NULL;
    dev->held_now = 0;
}

static void held_release(struct sim_device *dev)
{
    while (dev->held_head && dev->powered && !fw_queue_full(dev)) {
        struct held_msg *m = dev->held_head;
        dev->held_head = m->next;
        if (!dev->held_head)
            dev->held_tail = NULL;
        dev->held_now--;
        fw_traced_on_message(dev->rec, &dev->fw, m->topic, m->data, m->len, m->qos, m->dup);
        free(m);
    }
}

static void hold_or_deliver(struct sim_device *dev, const struct sim_event *ev)
{
    const char *item_topic = fw_device_topic_item_registration(&dev->fw);
    struct held_msg *m;
    size_t tlen;

    if (strcmp(ev->topic, item_topic) != 0 || (!dev->held_head && !fw_queue_full(dev))) {
        fw_traced_on_message(dev->rec, &dev->fw, ev->topic, ev->payload, ev->len, ev->qos, ev->dup);
        return;
    }
    tlen = strlen(ev->topic);
    m = malloc(sizeof(*m) + ev->len + tlen + 1);
    if (!m) {
        /* Out of memory: hand it over anyway; the firmware counts queue_full, visibly. */
        fw_traced_on_message(dev->rec, &dev->fw, ev->topic, ev->payload, ev->len, ev->qos, ev->dup);
        return;
    }
    m->next = NULL;
    m->qos = ev->qos;
    m->dup = ev->dup;
    m->len = ev->len;
    memcpy(m->data, ev->payload, ev->len);
    m->topic = m->data + ev->len;
    memcpy(m->topic, ev->topic, tlen + 1);
    if (dev->held_tail)
        dev->held_tail->next = m;
    else
        dev->held_head = m;
    dev->held_tail = m;
    dev->held_now++;
    dev->held_total++;
}

/* ------------------------------------------------------------------ loop target */

/* SIM_CONN_CONNECTED once the firmware is online (every SUBACK granted), once per
   connection: observers count a device as connected only when items can reach it. */
static void report_ready(struct sim_device *dev)
{
    struct fw_status st;

    if (dev->conn_state != SIM_CONN_SUBSCRIBING)
        return;
    fw_device_status(&dev->fw, &st);
    if (st.online)
        state_change(dev, SIM_CONN_CONNECTED, st.session_present, 0, NULL);
}

static void dev_on_event(struct sim_loop_target *t, const struct sim_event *ev)
{
    struct sim_device *dev = DEV_OF(t);

    if (ev->kind == SIM_EV_TAG || ev->kind == SIM_EV_BUTTON) {
        if (!dev->powered)
            return; /* nobody there to press a button */
        if (ev->kind == SIM_EV_TAG)
            (void)fw_traced_on_tag(dev->rec, &dev->fw, ev->payload, ev->len);
        else
            fw_traced_on_button(dev->rec, &dev->fw, (enum fw_button)ev->code);
        held_release(dev);
        return;
    }
    if (!sim_transport_handle_event(dev->transport, ev))
        return; /* stale (before a power cut) or a repeated loss */
    if (ev->kind == SIM_EV_MESSAGE) {
        dev->traffic_in++;
        if (dev->obs && dev->obs->on_traffic) {
            struct sim_traffic tr = { SIM_TRAFFIC_IN, ev->topic, ev->payload, ev->len,
                                      ev->qos, ev->dup, ev->retain, 0, 0 };
            dev->obs->on_traffic(dev->obs->ctx, dev, &tr);
        }
    }
    if (!dev->powered)
        return;
    switch (ev->kind) {
    case SIM_EV_CONNECTED:
        fw_traced_on_connected(dev->rec, &dev->fw, ev->session_present);
        state_change(dev, SIM_CONN_SUBSCRIBING, ev->session_present, 0, NULL);
        break;
    case SIM_EV_SUBSCRIBED:
        fw_traced_on_subscribed(dev->rec, &dev->fw, ev->token, ev->code);
        report_ready(dev);
        break;
    case SIM_EV_CONNECT_FAILED:
        fw_traced_on_connect_failed(dev->rec, &dev->fw, ev->code, ev->words);
        state_change(dev, SIM_CONN_FAILED, false, ev->code, ev->words);
        break;
    case SIM_EV_CONNECTION_LOST:
        fw_traced_on_connection_lost(dev->rec, &dev->fw, ev->words);
        state_change(dev, SIM_CONN_LOST, false, 0, ev->words);
        break;
    case SIM_EV_MESSAGE:
        hold_or_deliver(dev, ev);
        break;
    case SIM_EV_PUBLISHED:
        fw_traced_on_published(dev->rec, &dev->fw, ev->token);
        break;
    case SIM_EV_PUBLISH_REFUSED:
        fw_traced_on_publish_refused(dev->rec, &dev->fw, ev->token, ev->code);
        break;
    default:
        break;
    }
}

static void dev_on_tick(struct sim_loop_target *t, uint64_t now_ms)
{
    struct sim_device *dev = DEV_OF(t);

    if (dev->powered) {
        sim_transport_poll(dev->transport); /* a connect waiting for a throttle slot */
        fw_traced_tick(dev->rec, &dev->fw, now_ms);
        report_ready(dev); /* a refused subscription asked again may be granted later */
        if (dev->held_head)
            held_release(dev);
    }
}

/* ------------------------------------------------------------------ create / destroy */

void sim_device_opts_defaults(struct sim_device_opts *opts, const char *device_id,
                              const char *uri)
{
    memset(opts, 0, sizeof(*opts));
    opts->version = SIM_DEVICE_OPTS_VERSION;
    fw_device_config_defaults(&opts->fw);
    opts->fw.device_id = device_id;
    sim_transport_opts_defaults(&opts->transport);
    opts->transport.uri = uri;
    opts->storage = SIM_STORAGE_MEMORY;
    opts->display_frames = 1;
    opts->log_level = FW_LOG_INFO;
}

static void free_device(struct sim_device *dev)
{
    held_drop_all(dev);
    sim_trace_file_close(dev->trace_file);
    free(dev->rec);
    sim_transport_destroy(dev->transport);
    sim_storage_free(dev->storage);
    sim_display_free(dev->display);
    for (int i = 0; i < 5; i++)
        free(dev->topics[i]);
    free(dev);
}

static int copy_topic(struct sim_device *dev, int i, const char **field)
{
    if (!*field)
        return SIM_OK;
    dev->topics[i] = strdup(*field);
    if (!dev->topics[i])
        return SIM_ERR_NOMEM;
    *field = dev->topics[i];
    return SIM_OK;
}

int sim_device_create(struct sim_loop *loop, const struct sim_device_opts *opts,
                      struct sim_device **out)
{
    struct sim_device *dev;
    size_t idlen;
    int rc;

    *out = NULL;
    if (!loop || !opts || !opts->fw.device_id)
        return SIM_ERR_INVAL;
    idlen = strlen(opts->fw.device_id);
    if (idlen == 0 || idlen >= FW_DEVICE_ID_MAX)
        return SIM_ERR_INVAL;
    dev = calloc(1, sizeof(*dev));
    if (!dev)
        return SIM_ERR_NOMEM;
    memcpy(dev->id, opts->fw.device_id, idlen + 1);
    dev->loop = loop;
    dev->obs = opts->observer;
    dev->user = opts->user;
    dev->log_level = opts->log_level;
    dev->log_stderr = opts->log_stderr;
    dev->target.on_event = dev_on_event;
    dev->target.on_tick = dev_on_tick;
    dev->cfg = opts->fw;
    dev->cfg.device_id = dev->id;
    if ((rc = copy_topic(dev, 0, &dev->cfg.topic_item_registration)) ||
        (rc = copy_topic(dev, 1, &dev->cfg.topic_item_registered)) ||
        (rc = copy_topic(dev, 2, &dev->cfg.topic_inventory_query)) ||
        (rc = copy_topic(dev, 3, &dev->cfg.topic_inventory_reply)) ||
        (rc = copy_topic(dev, 4, &dev->cfg.topic_status)))
        goto fail;

    switch (opts->storage) {
    case SIM_STORAGE_FILE: {
        char dir[4096];
        if (!opts->storage_dir) {
            rc = SIM_ERR_INVAL;
            goto fail;
        }
        snprintf(dir, sizeof(dir), "%s/%s", opts->storage_dir, dev->id);
        rc = sim_storage_file_open(dir, opts->storage_fsync, &dev->storage);
        break;
    }
    case SIM_STORAGE_MEMORY: rc = sim_storage_memory_open(&dev->storage); break;
    default: rc = sim_storage_none_open(&dev->storage); break;
    }
    if (rc)
        goto fail;
    if (opts->display_frames &&
        (rc = sim_display_headless_create(opts->display_frames, &dev->display)))
        goto fail;
    /* At QoS 2 on a persistent session the client keeps its handshakes across a loss and
       completes them; the firmware then leaves them to it (exactly once). */
    struct sim_transport_opts to = opts->transport;
    to.keep_session_state = dev->cfg.qos == 2 && !dev->cfg.clean_session;
    dev->cfg.resume_in_flight = to.keep_session_state && to.version >= 4;
    rc = sim_transport_create(&to, dev->id, loop, &dev->target, &dev->transport);
    if (rc)
        goto fail;

    dev->ports = (struct fw_ports){
        .ctx = dev,
        .net_connect = port_net_connect,
        .net_publish = port_net_publish,
        .net_subscribe = port_net_subscribe,
        .net_subscribe_many = port_net_subscribe_many,
        .net_disconnect = port_net_disconnect,
        .display_flush = port_display_flush,
        .clock_ms = port_clock_ms,
        .storage_read = port_storage_read,
        .storage_write = port_storage_write,
        .log = port_log,
    };
    if (opts->trace_dir) {
        if ((rc = sim_trace_file_open(opts->trace_dir, dev->id, &dev->trace_file)))
            goto fail;
        if (!(dev->rec = malloc(sizeof(*dev->rec)))) {
            rc = SIM_ERR_NOMEM;
            goto fail;
        }
        fw_trace_recorder_init(dev->rec, sim_trace_file_write, dev->trace_file);
    }
    if (fw_traced_init(dev->rec, &dev->fw, &dev->cfg, &dev->ports) != FW_OK) {
        if (dev->log_stderr)
            fprintf(stderr, "[%s] the device configuration was refused (device id of "
                    "1..%d bytes without '+', '#', '/'; qos 0 or 1) - fix the options\n",
                    dev->id, FW_DEVICE_ID_MAX - 1);
        rc = SIM_ERR_INVAL;
        goto fail;
    }
    rc = sim_loop_attach(loop, &dev->target);
    if (rc)
        goto fail;
    *out = dev;
    return SIM_OK;
fail:
    free_device(dev);
    return rc;
}

static void destroy_on_owner(void *arg)
{
    struct sim_device *dev = arg;

    /* Transport first: after MQTTAsync_destroy no callback pushes events for us, so the
       detach below drops the last ones. */
    sim_transport_destroy(dev->transport);
    dev->transport = NULL;
    sim_loop_detach(dev->loop, &dev->target);
}

void sim_device_destroy(struct sim_device *dev)
{
    if (!dev)
        return;
    sim_loop_call(dev->loop, destroy_on_owner, dev);
    free_device(dev);
}

/* ------------------------------------------------------------------ power */

struct power_args {
    struct sim_device *dev;
    int rc;
};

static void start_on_owner(void *arg)
{
    struct power_args *a = arg;
    struct sim_device *dev = a->dev;

    if (dev->powered) {
        a->rc = SIM_ERR_STATE;
        return;
    }
    /* A reboot: RAM (queue, screens, figures) starts afresh; flash (outbox, seq) stays. */
    if (dev->started_once &&
        fw_traced_init(dev->rec, &dev->fw, &dev->cfg, &dev->ports) != FW_OK) {
        a->rc = SIM_ERR_INVAL;
        return;
    }
    held_drop_all(dev); /* RAM does not survive a reboot */
    dev->started_once = true;
    dev->powered = true;
    fw_traced_start(dev->rec, &dev->fw);
    a->rc = SIM_OK;
}

static void stop_on_owner(void *arg)
{
    struct power_args *a = arg;

    if (!a->dev->powered) {
        a->rc = SIM_ERR_STATE;
        return;
    }
    fw_traced_stop(a->dev->rec, &a->dev->fw);
    a->dev->powered = false;
    held_drop_all(a->dev);
    a->rc = SIM_OK;
}

static void cut_on_owner(void *arg)
{
    struct power_args *a = arg;

    sim_transport_power_cut(a->dev->transport);
    a->dev->powered = false;
    held_drop_all(a->dev);
    state_change(a->dev, SIM_CONN_POWER_CUT, false, 0, NULL);
    a->rc = SIM_OK;
}

static int power(struct sim_device *dev, sim_loop_fn fn)
{
    struct power_args a = { dev, SIM_OK };
    int rc = sim_loop_call(dev->loop, fn, &a);

    return rc ? rc : a.rc;
}

int sim_device_start(struct sim_device *dev)
{
    return power(dev, start_on_owner);
}

int sim_device_stop(struct sim_device *dev)
{
    return power(dev, stop_on_owner);
}

int sim_device_power_cut(struct sim_device *dev)
{
    return power(dev, cut_on_owner);
}

/* ------------------------------------------------------------------ inputs */

int sim_device_post_tag(struct sim_device *dev, const uint8_t *uid, size_t len)
{
    struct sim_event *ev;

    if (!dev || !uid || len == 0 || len > FW_TAG_UID_MAX)
        return SIM_ERR_INVAL;
    ev = sim_event_new(SIM_EV_TAG, &dev->target, NULL, uid, len, NULL);
    if (!ev)
        return SIM_ERR_NOMEM;
    sim_loop_push(dev->loop, ev);
    return SIM_OK;
}

int sim_device_post_button(struct sim_device *dev, enum fw_button button)
{
    struct sim_event *ev;

    if (!dev)
        return SIM_ERR_INVAL;
    ev = sim_event_new(SIM_EV_BUTTON, &dev->target, NULL, NULL, 0, NULL);
    if (!ev)
        return SIM_ERR_NOMEM;
    ev->code = (int)button;
    sim_loop_push(dev->loop, ev);
    return SIM_OK;
}

int sim_device_scan(struct sim_device *dev, const uint8_t *uid, size_t len)
{
    return fw_traced_on_tag(dev->rec, &dev->fw, uid, len);
}

void sim_device_press(struct sim_device *dev, enum fw_button button)
{
    fw_traced_on_button(dev->rec, &dev->fw, button);
}

struct with_args {
    struct sim_device *dev;
    void (*fn)(struct sim_device *dev, struct fw_device *fw, void *arg);
    void *arg;
};

static void with_on_owner(void *arg)
{
    struct with_args *a = arg;

    a->fn(a->dev, &a->dev->fw, a->arg);
}

int sim_device_with(struct sim_device *dev,
                    void (*fn)(struct sim_device *dev, struct fw_device *fw, void *arg),
                    void *arg)
{
    struct with_args a = { dev, fn, arg };

    return sim_loop_call(dev->loop, with_on_owner, &a);
}

struct snap_args {
    struct sim_device *dev;
    struct sim_device_snapshot *out;
};

static void snapshot_on_owner(void *arg)
{
    struct snap_args *a = arg;
    struct sim_device *dev = a->dev;
    struct sim_device_snapshot *s = a->out;

    memset(s, 0, sizeof(*s));
    s->stats = *fw_device_stats(&dev->fw);
    fw_device_status(&dev->fw, &s->status);
    snprintf(s->head_item_name, sizeof(s->head_item_name), "%s",
             s->status.head_item_name ? s->status.head_item_name : "");
    s->status.head_item_name = s->head_item_name;
    s->powered = dev->powered;
    s->connected = sim_transport_connected(dev->transport);
    s->disconnecting = sim_transport_disconnecting(dev->transport);
    s->frames = dev->frames;
    s->traffic_in = dev->traffic_in;
    s->traffic_out = dev->traffic_out;
    s->conn_state = dev->conn_state;
    s->last_failure_code = dev->last_failure_code;
    s->inbound_held = dev->held_now;
    s->inbound_held_total = dev->held_total;
    memcpy(s->last_words, dev->last_words, sizeof(s->last_words));
}

int sim_device_snapshot(struct sim_device *dev, struct sim_device_snapshot *out)
{
    struct snap_args a = { dev, out };

    return sim_loop_call(dev->loop, snapshot_on_owner, &a);
}

/* ------------------------------------------------------------------ accessors */

const char *sim_device_id(const struct sim_device *dev) { return dev->id; }
void *sim_device_user(const struct sim_device *dev) { return dev->user; }
struct sim_loop *sim_device_loop(const struct sim_device *dev) { return dev->loop; }
struct sim_display *sim_device_display(const struct sim_device *dev) { return dev->display; }
struct fw_device *sim_device_fw(struct sim_device *dev) { return &dev->fw; }
struct sim_transport *sim_device_transport(struct sim_device *dev) { return dev->transport; }
const struct fw_ports *sim_device_ports(const struct sim_device *dev) { return &dev->ports; }
