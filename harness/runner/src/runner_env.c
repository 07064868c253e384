/*
 * runner_env.c - what a scenario runs in: the work folder, the broker (and its test PKI
 * for tls / mtls), the status watcher, the backend role, the fault proxy hub, the event
 * loops and the devices, set up in that order, and torn down again with what --keep
 * keeps (broker config and log, status and command write-ups, device log).
 *
 * Devices are spread over a bounded number of event loops; each device's figures are
 * copied on its owning thread (runner_refresh).
 */
#include "runner_internal.h"
#include "sim/fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Devices per event loop, and the most loops: a bounded number of threads. */
#define DEVS_PER_LOOP 250
#define MAX_LOOPS 4

/* ================================================================ files */

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return;
    FILE *out = fopen(to, "wb");
    if (out) {
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, in)) > 0)
            fwrite(buf, 1, n, out);
        fclose(out);
    }
    fclose(in);
}

void runner_remove_dir(struct runner *r)
{
    if (r->remove_dir)
        sim_fs_remove_tree(r->dir);
}

/* ================================================================ devices' figures */

static void refresh_on_owner(void *arg)
{
    struct runner_loop *l = arg;
    for (size_t i = 0; i < l->n_devs; i++) {
        struct runner_dev *d = l->devs[i];
        struct fw_device *fw = sim_device_fw(d->dev);
        d->stats = *fw_device_stats(fw);
        fw_device_status(fw, &d->status);
        d->status.head_item_name = NULL; /* points into the device: not ours to keep */
        if (!atomic_load(&d->powered)) {
            /* After a power cut the firmware was not told: its RAM still says online. */
            d->status.online = false;
            d->status.connected = false;
        }
    }
}

int runner_refresh(struct runner *r)
{
    for (size_t i = 0; i < r->n_loops; i++) {
        int rc = sim_loop_call(r->loops[i].loop, refresh_on_owner, &r->loops[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ================================================================ set-up */

static void obs_log(void *ctx, struct sim_device *dev, enum fw_log_level level, const char *line)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    struct runner *r = ctx;
    if (!r->devlog)
        return;
    pthread_mutex_lock(&r->devlog_lock);
    fprintf(r->devlog, "%8.3fs [%s] %s %s\n", (double)(runner_now_ms() - r->t_start) / 1000.0,
            sim_device_id(dev), names[level <= FW_LOG_ERROR ? level : 0], line);
    pthread_mutex_unlock(&r->devlog_lock);
}

static void obs_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    struct runner *r = ctx;
    if (!r->devlog)
        return;
    pthread_mutex_lock(&r->devlog_lock);
    fprintf(r->devlog, "%8.3fs [%s] STATE %s%s%s\n", (double)(runner_now_ms() - r->t_start) / 1000.0,
            sim_device_id(dev), sim_conn_state_name(s->state), s->words && *s->words ? ": " : "",
            s->words ? s->words : "");
    pthread_mutex_unlock(&r->devlog_lock);
}

#ifndef SCANSIM_MAKE_PKI
#define SCANSIM_MAKE_PKI "ci/make-pki.sh"
#endif

/*
 * tls / mtls brokers: a throw-away PKI in the work folder made by ci/make-pki.sh
 * ($SCANSIM_MAKE_PKI overrides the path): a CA, the broker's certificate, and for mTLS one
 * client certificate per device whose CN is the device id (the script names them
 * scanner-1..N, so mTLS needs the default id prefix), plus the backend's.
 */
static int make_pki(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    bool mtls = s->broker.variant == SCN_BROKER_MTLS;
    for (size_t g = 0; g < s->n_groups; g++) {
        if (s->groups[g].link == SCN_LINK_PROXY) {
            snprintf(err, cap, "group '%s' has 'link proxy', but the fault proxy reads MQTT and "
                     "cannot see inside TLS: use 'link direct' with broker %s",
                     s->groups[g].name, scn_broker_variant_name(s->broker.variant));
            return HX_ERR_INVAL;
        }
    }
    for (uint32_t i = 0; mtls && i < r->n_devs; i++) {
        char want[32];
        snprintf(want, sizeof want, "scanner-%u", i + 1);
        if (strcmp(r->devs[i].id, want) != 0) {
            snprintf(err, cap, "broker mtls gives devices certificates named scanner-1..N, but device "
                     "%u is '%s': use the default id_prefix in a single group", i + 1, r->devs[i].id);
            return HX_ERR_INVAL;
        }
    }
    const char *script = getenv("SCANSIM_MAKE_PKI");
    if (!script || !*script)
        script = SCANSIM_MAKE_PKI;
    snprintf(r->pki, sizeof r->pki, "%s/pki", r->dir);
    char cmd[3 * RUNNER_PATH_MAX];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' %u >'%s.log' 2>&1", script, r->pki,
             mtls ? r->n_devs : 1u, r->pki); /* the script wants at least one */
    int rc = -1;
    if (hx_run_shell(cmd, &rc) != HX_OK || rc != 0) {
        snprintf(err, cap, "could not make the test PKI with %s (status %d; see %s.log); set "
                 "SCANSIM_MAKE_PKI to the path of ci/make-pki.sh", script, rc, r->pki);
        return HX_ERR_SYS;
    }
    return 0;
}

/* The broker's address, for the devices, proxies, watcher and backend. */
static int broker_address(struct runner *r, const char *uri, char *err, size_t cap)
{
    const char *hp = strstr(uri, "://");
    hp = hp ? hp + 3 : uri;
    const char *colon = strrchr(hp, ':');
    unsigned port = 0;
    if (!colon || (size_t)(colon - hp) >= sizeof r->broker_host || sscanf(colon + 1, "%u", &port) != 1 ||
        port == 0 || port > 65535) {
        snprintf(err, cap, "broker %s: expected tcp://HOST:PORT", uri);
        return HX_ERR_INVAL;
    }
    snprintf(r->broker_uri, sizeof r->broker_uri, "%s", uri);
    snprintf(r->broker_host, sizeof r->broker_host, "%.*s", (int)(colon - hp), hp);
    r->broker_port = (uint16_t)port;
    return 0;
}

static int setup_broker(struct runner *r, char *err, size_t cap)
{
    const struct scn_broker *sb = &r->s->broker;
    struct hx_broker_opts o = {0};
    if (r->opts.broker_uri) {
        int rc = broker_address(r, r->opts.broker_uri, err, cap);
        return rc != 0 ? rc : runner_broker_wipe(r, err, cap);
    }
    o.kind = sb->kind_written ? (enum hx_broker_kind)sb->kind
                              : (enum hx_broker_kind)r->opts.broker_kind;
    o.persistence = sb->persistence;
    o.autosave_interval_s = (int)sb->autosave_interval;
    o.autosave_on_changes = sb->autosave_on_changes;
    o.max_queued_messages = sb->max_queued_messages;
    o.verbose_log = r->opts.keep_dir != NULL;
    char ca[RUNNER_PATH_MAX + 32], crt[RUNNER_PATH_MAX + 32], key[RUNNER_PATH_MAX + 32];
    if (sb->variant == SCN_BROKER_TLS || sb->variant == SCN_BROKER_MTLS) {
        int rc = make_pki(r, err, cap);
        if (rc != 0)
            return rc;
        snprintf(ca, sizeof ca, "%s/ca.crt", r->pki);
        snprintf(crt, sizeof crt, "%s/server.crt", r->pki);
        snprintf(key, sizeof key, "%s/server.key", r->pki);
        o.cafile = ca;
        o.certfile = crt;
        o.keyfile = key;
        /* mTLS: the certificate's CN is the user name (the device id; "backend" for the
           backend and the watcher). */
        o.require_certificate = sb->variant == SCN_BROKER_MTLS;
        o.use_identity_as_username = sb->variant == SCN_BROKER_MTLS;
    }
    if (sb->variant == SCN_BROKER_PASSWORD || sb->variant == SCN_BROKER_ACL) {
        /* One user per device (its id, a password derived from the seed), plus the harness
           (backend and watcher), which may use every topic. */
        r->users = calloc(r->n_devs + 1, sizeof *r->users);
        if (!r->users)
            return HX_ERR_NOMEM;
        for (uint32_t i = 0; i < r->n_devs; i++) {
            snprintf(r->devs[i].password, sizeof r->devs[i].password, "pw-%016llx",
                     (unsigned long long)runner_mix(r->seed, i + 1));
            r->users[i].username = r->devs[i].id;
            r->users[i].password = r->devs[i].password;
        }
        r->users[r->n_devs].username = "harness";
        r->users[r->n_devs].password = "harness-pw";
        r->n_users = (int)r->n_devs + 1;
        o.users = r->users;
        o.n_users = r->n_users;
        if (sb->variant == SCN_BROKER_ACL) {
            /* Each device only its own per-device topics (reading its commands, never
               sending them) and the shared seed topics; the harness everything. */
            o.acl = HX_ACL_PER_DEVICE_RULES
                    "pattern read item_registration\n"
                    "pattern write item_registered\n"
                    "pattern write inventory/query\n"
                    "user harness\n"
                    "topic readwrite #\n";
        }
    }
    int rc = hx_broker_start(&o, &r->broker);
    if (rc != 0) {
        snprintf(err, cap, "the broker did not start: %s", hx_broker_last_error());
        return rc;
    }
    return broker_address(r, hx_broker_uri(r->broker), err, cap);
}

/* The fault proxy hub (when a group has `link proxy`) and the event loops, started. */
static int setup_loops(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    bool any_proxy = false;
    for (size_t g = 0; g < s->n_groups; g++)
        any_proxy |= s->groups[g].link == SCN_LINK_PROXY;
    if (any_proxy) {
        char pcap_dir[RUNNER_PATH_MAX];
        struct hx_proxy_hub_opts ho = {0};
        if (r->opts.keep_dir && r->opts.pcap) {
            snprintf(pcap_dir, sizeof pcap_dir, "%s/pcap", r->dir);
            sim_fs_mkdir_p(pcap_dir);
            ho.pcap_dir = pcap_dir;
        }
        int rc = hx_proxy_hub_create(&ho, &r->hub);
        if (rc == 0)
            rc = hx_proxy_hub_start(r->hub);
        if (rc != 0) {
            snprintf(err, cap, "the fault proxy hub did not start: %s", hx_proxy_last_error());
            return rc;
        }
    }

    r->n_loops = (r->n_devs + DEVS_PER_LOOP - 1) / DEVS_PER_LOOP;
    if (r->n_loops > MAX_LOOPS)
        r->n_loops = MAX_LOOPS;
    if (r->n_loops == 0)
        r->n_loops = 1;
    r->loops = calloc(r->n_loops, sizeof *r->loops);
    if (!r->loops)
        return HX_ERR_NOMEM;
    for (size_t i = 0; i < r->n_loops; i++) {
        struct runner_loop *l = &r->loops[i];
        l->r = r;
        l->cap_devs = r->n_devs / r->n_loops + 1;
        l->devs = calloc(l->cap_devs, sizeof *l->devs);
        struct sim_loop_opts lo;
        sim_loop_opts_defaults(&lo);
        lo.tick_ms = r->n_devs > 200 ? 50 : 20;
        char name[32];
        snprintf(name, sizeof name, "scn-loop-%zu", i);
        lo.name = name;
        if (!l->devs || sim_loop_create(&lo, &l->loop) != 0 || sim_loop_start_thread(l->loop) != 0) {
            snprintf(err, cap, "could not start event loop %zu", i);
            return HX_ERR_SYS;
        }
        l->op_target.on_event = runner_operator_event;
        l->op_target.on_tick = runner_operator_tick;
    }

    return 0;
}


/* Every device created on its loop, the operators attached, every device powered on. */
static int setup_devices(struct runner *r, char *err, size_t cap)
{
    int rc0 = setup_loops(r, err, cap);
    if (rc0 != 0)
        return rc0;
    r->observer.ctx = r;
    r->observer.on_log = obs_log;
    r->observer.on_state = obs_state;
    char flash[RUNNER_PATH_MAX];
    snprintf(flash, sizeof flash, "%s/flash", r->dir);
    const char *broker_host = r->broker_host;
    for (uint32_t i = 0; i < r->n_devs; i++) {
        struct runner_dev *d = &r->devs[i];
        struct runner_loop *l = &r->loops[i % r->n_loops];
        d->loop = l;
        l->devs[l->n_devs++] = d;
        char uri[128];
        snprintf(uri, sizeof uri, "%s", r->broker_uri);
        if (d->group->link == SCN_LINK_PROXY) {
            int rc = hx_proxy_add(r->hub, broker_host, r->broker_port, 0, &d->proxy);
            if (rc != 0) {
                snprintf(err, cap, "proxy for %s: %s", d->id, hx_proxy_last_error());
                return rc;
            }
            hx_proxy_set_name(d->proxy, d->id);
            snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u", (unsigned)hx_proxy_port(d->proxy));
        }
        struct sim_device_opts o;
        sim_device_opts_defaults(&o, d->id, uri);
        o.fw.layout = d->group->layout == SCN_LAYOUT_PER_DEVICE ? FW_LAYOUT_PER_DEVICE : FW_LAYOUT_SEED;
        o.fw.clean_session = d->group->session == SCN_SESSION_CLEAN;
        o.fw.keepalive_s = (uint16_t)d->group->keepalive_s;
        o.fw.qos = d->group->qos;
        o.fw.seed = (uint32_t)runner_mix(r->seed, 0x5eed0000u + d->num) | 1u; /* jitter */
        o.transport.mqtt_version = d->group->mqtt == SCN_MQTT_5 ? 5 : 3;
        o.transport.connect_timeout_s = 5;
        if (d->password[0]) {
            o.transport.username = d->id;
            o.transport.password = d->password;
        }
        char ca[RUNNER_PATH_MAX + 32], crt[RUNNER_PATH_MAX + 64], key[RUNNER_PATH_MAX + 64];
        if (r->pki[0]) {
            snprintf(ca, sizeof ca, "%s/ca.crt", r->pki);
            o.transport.cafile = ca;
            if (r->s->broker.variant == SCN_BROKER_MTLS) {
                snprintf(crt, sizeof crt, "%s/%s.crt", r->pki, d->id);
                snprintf(key, sizeof key, "%s/%s.key", r->pki, d->id);
                o.transport.certfile = crt;
                o.transport.keyfile = key;
            }
        }
        o.storage = d->group->flash ? SIM_STORAGE_FILE : SIM_STORAGE_NONE;
        o.storage_dir = flash;
        o.display_frames = 0; /* headless: screens are read from fw_device_status */
        o.log_level = r->devlog ? FW_LOG_INFO : FW_LOG_ERROR;
        o.observer = &r->observer;
        o.user = d;
        o.trace_dir = r->opts.trace_dir;
        uint64_t op_seed = runner_mix(r->seed, 0x0be7a70000ull + d->num);
        fleet_operator_init(&d->op, (uint32_t)(op_seed ^ (op_seed >> 32)));
        int rc = sim_device_create(l->loop, &o, &d->dev);
        if (rc != 0) {
            snprintf(err, cap, "device %s could not be created: %s", d->id, sim_strerror(rc));
            return runner_hx_err(rc);
        }
    }
    for (size_t i = 0; i < r->n_loops; i++) {
        if (sim_loop_attach(r->loops[i].loop, &r->loops[i].op_target) != 0)
            return HX_ERR_NOMEM;
        r->loops[i].op_attached = true;
    }
    for (uint32_t i = 0; i < r->n_devs; i++) {
        int rc = runner_power_on(r, &r->devs[i]);
        if (rc != 0) {
            snprintf(err, cap, "device %s did not power on: %s", r->devs[i].id, sim_strerror(rc));
            return runner_hx_err(rc);
        }
    }
    return 0;
}

/* ================================================================ tear-down */

void runner_teardown(struct runner *r)
{
    runner_load_stop(r);
    /* Operators first (they tick devices), then the devices (their Paho clients), then
       the loops. */
    for (size_t i = 0; r->loops && i < r->n_loops; i++)
        if (r->loops[i].op_attached) {
            sim_loop_detach(r->loops[i].loop, &r->loops[i].op_target);
            r->loops[i].op_attached = false;
        }
    if (r->devs)
        for (uint32_t i = 0; i < r->n_devs; i++)
            if (r->devs[i].dev) {
                atomic_store(&r->devs[i].clean_off, true);
                sim_device_destroy(r->devs[i].dev);
                r->devs[i].dev = NULL;
            }
    for (size_t i = 0; r->loops && i < r->n_loops; i++) {
        struct runner_loop *l = &r->loops[i];
        if (l->loop) {
            sim_loop_stop(l->loop);
            sim_loop_free(l->loop);
        }
        free(l->devs);
    }
    free(r->loops);
    r->loops = NULL;
    hx_proxy_hub_free(r->hub);
    r->hub = NULL;
    if (r->backend) {
        hx_backend_stop(r->backend);
        hx_backend_free(r->backend);
        r->backend = NULL;
    }
    runner_watch_stop(r);
    if (r->broker) {
        if (r->opts.keep_dir) {
            char to[RUNNER_PATH_MAX + 32], from[RUNNER_PATH_MAX + 32];
            bool mosq = hx_broker_kind(r->broker) == HX_BROKER_MOSQUITTO;
            snprintf(from, sizeof from, "%s/mosquitto.conf", hx_broker_dir(r->broker));
            snprintf(to, sizeof to, "%s/mosquitto.conf", r->dir);
            if (mosq)
                copy_file(from, to);
            snprintf(to, sizeof to, "%s/%s.log", r->dir, mosq ? "mosquitto" : "rabbitmq");
            if (hx_broker_running(r->broker))
                hx_broker_stop(r->broker); /* flush the log */
            copy_file(hx_broker_log_path(r->broker), to);
        }
        hx_broker_free(r->broker);
        r->broker = NULL;
    }
    if (r->opts.keep_dir) {
        char path[RUNNER_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/status.log", r->dir);
        FILE *f = fopen(path, "w");
        if (f) {
            runner_watch_dump(r, f);
            fclose(f);
        }
        snprintf(path, sizeof path, "%s/commands.log", r->dir);
        if (r->n_cmd_ids > 0 && (f = fopen(path, "w")) != NULL) {
            runner_command_dump(r, f);
            fclose(f);
        }
    }
    if (r->devlog) {
        fclose(r->devlog);
        r->devlog = NULL;
    }
}

/* ================================================================ backend and devices */

struct backend_start {
    struct hx_backend *b;
    int rc;
    char err[512];
};

static void *backend_start_main(void *arg)
{
    struct backend_start *bs = arg;
    bs->rc = hx_backend_start(bs->b);
    if (bs->rc != 0) /* the words are thread-local: copy them here */
        snprintf(bs->err, sizeof bs->err, "%s", hx_backend_last_error());
    return NULL;
}

/* Devices and their ids, and the work folder (the keep dir, or a temporary one). */
int runner_setup_work(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    int rc = 0;
    /* Devices and their ids. */
    r->n_devs = s->n_devices;
    r->devs = calloc(r->n_devs ? r->n_devs : 1, sizeof *r->devs);
    r->status_last = malloc(r->n_devs ? r->n_devs : 1);
    if (!r->devs || !r->status_last) {
        rc = HX_ERR_NOMEM;
        snprintf(err, cap, "out of memory for %u devices", r->n_devs);
        return rc;
    }
    memset(r->status_last, -1, r->n_devs);
    for (uint32_t i = 0; i < r->n_devs; i++) {
        struct runner_dev *d = &r->devs[i];
        d->num = i + 1;
        d->group = scn_device_group(s, d->num);
        scn_device_id(s, d->num, d->id, sizeof d->id);
        atomic_init(&d->op_paused, false);
        atomic_init(&d->powered, false);
        atomic_init(&d->clean_off, false);
    }
    if ((rc = runner_ids_index(r)) != 0) {
        snprintf(err, cap, "out of memory");
        return rc;
    }

    /* Work folder: the keep dir, or a temporary one removed at the end. */
    if (r->opts.keep_dir) {
        snprintf(r->dir, sizeof r->dir, "%s", r->opts.keep_dir);
        if (sim_fs_mkdir_p(r->dir) != 0) {
            rc = HX_ERR_SYS;
            snprintf(err, cap, "cannot create %s: %s", r->dir, strerror(errno));
            return rc;
        }
        char path[RUNNER_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/devices.log", r->dir);
        r->devlog = fopen(path, "w");
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(r->dir, sizeof r->dir, "%s/scansim-scn-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(r->dir)) {
            rc = HX_ERR_SYS;
            snprintf(err, cap, "cannot create a temporary folder: %s", strerror(errno));
            return rc;
        }
        r->remove_dir = true;
    }
    snprintf(r->ledger_path, sizeof r->ledger_path, "%s/ledger.sqlite", r->dir);
    runner_note(r, "start", NULL, s->name, NULL);
    return 0;
}

/* The broker, the watcher, the backend role and the devices, up to time zero. */
int runner_setup_harness(struct runner *r, char *err, size_t cap)
{
    const struct scn_scenario *s = r->s;
    int rc = 0;
    if ((rc = setup_broker(r, err, cap)) != 0)
        return rc;
    const char *h_user = r->users ? "harness" : NULL, *h_pw = r->users ? "harness-pw" : NULL;
    char h_ca[RUNNER_PATH_MAX + 32], h_crt[RUNNER_PATH_MAX + 32], h_key[RUNNER_PATH_MAX + 32];
    const char *ca = NULL, *crt = NULL, *key = NULL;
    if (r->pki[0]) {
        snprintf(h_ca, sizeof h_ca, "%s/ca.crt", r->pki);
        ca = h_ca;
        if (s->broker.variant == SCN_BROKER_MTLS) {
            snprintf(h_crt, sizeof h_crt, "%s/backend.crt", r->pki);
            snprintf(h_key, sizeof h_key, "%s/backend.key", r->pki);
            crt = h_crt;
            key = h_key;
        }
    }
    if ((rc = runner_watch_start(r, r->broker_uri, h_user, h_pw, ca, crt, key)) != 0) {
        snprintf(err, cap, "the status watcher could not subscribe to %s", r->broker_uri);
        return rc;
    }
    bool any_per_device = false, any_qos2 = false;
    for (size_t g = 0; g < s->n_groups; g++) {
        any_per_device |= s->groups[g].layout == SCN_LAYOUT_PER_DEVICE;
        any_qos2 |= s->groups[g].qos == 2;
    }
    bool any_seed = false;
    for (size_t g = 0; g < s->n_groups; g++)
        any_seed |= s->groups[g].layout == SCN_LAYOUT_SEED;
    if (any_per_device && any_seed) {
        rc = HX_ERR_INVAL;
        snprintf(err, cap, "groups mix the seed and per-device layouts; the backend "
                 "role serves one layout: give every group the same layout");
        return rc;
    }
    struct hx_backend_opts bo = {0};
    bo.uri = r->broker_uri;
    bo.layout = any_per_device ? HX_BACKEND_LAYOUT_PER_DEVICE : HX_BACKEND_LAYOUT_SEED;
    bo.qos = any_qos2 ? 2 : 1; /* exactly once end to end when a group speaks QoS 2 */
    bo.db_path = r->ledger_path;
    bo.username = h_user;
    bo.password = h_pw;
    bo.cafile = ca;
    bo.certfile = crt;
    bo.keyfile = key;
    if ((rc = hx_backend_create(&bo, &r->backend)) != 0) {
        snprintf(err, cap, "the backend role could not be made: %s", hx_backend_last_error());
        return rc;
    }
    /* The backend connects while the devices power on (each connect takes Paho a second or
       two); it is subscribed before time zero, and nothing registers before time zero. */
    struct backend_start bs = {r->backend, 0, ""};
    pthread_t bt;
    bool bt_started = pthread_create(&bt, NULL, backend_start_main, &bs) == 0;
    if (!bt_started)
        backend_start_main(&bs);
    rc = setup_devices(r, err, cap);
    if (bt_started)
        pthread_join(bt, NULL);
    if (rc != 0)
        return rc;
    if ((rc = bs.rc) != 0) {
        snprintf(err, cap, "the backend role did not start: %s", bs.err);
        return rc;
    }
    return 0;
}
