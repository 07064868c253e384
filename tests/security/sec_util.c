/*
 * sec_util.c - helpers of the security tests (sec_util.h): PKI, broker variants, backend,
 * devices with captured output.
 */
#include "sec_util.h"
#include "sim/clock.h"
#include "sim/fs.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SCANSIM_MAKE_PKI
#error "SCANSIM_MAKE_PKI (path of ci/make-pki.sh) must be defined by CMake"
#endif

uint64_t sec_now_ms(void)
{
    return sim_clock_ms();
}

void sec_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---------------------------------------------------------------- PKI */

void sec_pki_make(char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/scansim-pki-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s: %s", out, strerror(errno));
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' '%s' %d >'%s/make-pki.log' 2>&1", SCANSIM_MAKE_PKI, out,
             SEC_DEVICES, out);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "ci/make-pki.sh failed (%d); see %s/make-pki.log", rc, out);
}

void sec_rm_rf(const char *dir)
{
    sim_fs_remove_tree(dir);
}

const char *sec_path(const char *dir, const char *name)
{
    static _Thread_local char bufs[8][512];
    static _Thread_local int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

const char *sec_device_password(int k)
{
    static const char *const pw[] = {"dev1-Pw-91c2", "dev2-Pw-3b7e", "dev3-Pw-c04d",
                                     "dev4-Pw-5a10"};
    ck_assert(k >= 1 && k <= 4);
    return pw[k - 1];
}

/* ---------------------------------------------------------------- broker */

/* %u: the user name, which is the certificate's CN under use_identity_as_username. The
   password broker's users are named like the devices, so one ACL serves both variants. */
const char sec_acl_text[] = "# each device only under its own topics; commands it reads\n"
                            HX_ACL_PER_DEVICE_RULES
                            "# the backend role: items out, registrations and queries in\n"
                            "user backend\n"
                            "topic readwrite scanners/#\n"
                            "topic write command/all\n";

static struct hx_broker *broker_start(enum sec_broker_kind kind, const char *pki, bool acl,
                                      const char *extra_user, const char *extra_password)
{
    struct hx_broker_user users[SEC_DEVICES + 2];
    char names[SEC_DEVICES][32];
    for (int k = 1; k <= SEC_DEVICES; k++) {
        snprintf(names[k - 1], sizeof names[0], "scanner-%d", k);
        users[k - 1].username = names[k - 1];
        users[k - 1].password = sec_device_password(k);
    }
    users[SEC_DEVICES].username = "backend";
    users[SEC_DEVICES].password = SEC_BACKEND_PASSWORD;
    int n_users = SEC_DEVICES + 1;
    if (extra_user) {
        users[n_users].username = extra_user;
        users[n_users++].password = extra_password;
    }

    struct hx_broker_opts o = {0};
    o.persistence = false;
    o.cafile = sec_path(pki, "ca.crt");
    o.certfile = sec_path(pki, "server.crt");
    o.keyfile = sec_path(pki, "server.key");
    o.acl = acl ? sec_acl_text : NULL;
    if (kind == SEC_BROKER_TLS_PASSWORD) {
        o.users = users;
        o.n_users = n_users;
    } else {
        o.require_certificate = true;
        o.use_identity_as_username = true;
    }
    struct hx_broker *b = NULL;
    int rc = hx_broker_start(&o, &b);
    ck_assert_msg(rc == 0, "broker did not start: %s", hx_broker_last_error());
    ck_assert_msg(strncmp(hx_broker_uri(b), "ssl://", 6) == 0, "TLS broker URI %s",
                  hx_broker_uri(b));
    return b;
}

struct hx_broker *sec_broker_start(enum sec_broker_kind kind, const char *pki)
{
    return broker_start(kind, pki, true, NULL, NULL);
}

struct hx_broker *sec_broker_start_open(enum sec_broker_kind kind, const char *pki,
                                        const char *extra_user, const char *extra_password)
{
    return broker_start(kind, pki, false, extra_user, extra_password);
}

static char *read_all(const char *path)
{
    char *text;
    return sim_fs_read_all(path, SIZE_MAX / 2, &text, NULL) == 0 ? text : NULL;
}

int sec_log_count(struct hx_broker *b, const char *needle)
{
    char *text = read_all(hx_broker_log_path(b));
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

int sec_log_connections(struct hx_broker *b)
{
    return sec_log_count(b, "New connection from") + sec_log_count(b, "Client connection from");
}

bool sec_file_contains(const char *path, const char *needle)
{
    char *text = read_all(path);
    bool found = text && strstr(text, needle);
    free(text);
    return found;
}

struct hx_backend *sec_backend_start(enum sec_broker_kind kind, const char *pki,
                                     const char *uri)
{
    struct hx_backend_opts o = {0};
    o.uri = uri;
    o.layout = HX_BACKEND_LAYOUT_PER_DEVICE;
    o.cafile = sec_path(pki, "ca.crt");
    if (kind == SEC_BROKER_TLS_PASSWORD) {
        o.username = "backend";
        o.password = SEC_BACKEND_PASSWORD;
    } else {
        o.certfile = sec_path(pki, "backend.crt");
        o.keyfile = sec_path(pki, "backend.key");
    }
    o.connect_timeout_ms = SEC_WAIT_MS;
    struct hx_backend *be = NULL;
    int rc = hx_backend_create(&o, &be);
    ck_assert_msg(rc == 0, "backend create: %s", hx_backend_last_error());
    rc = hx_backend_start(be);
    ck_assert_msg(rc == 0, "backend start over TLS: %s", hx_backend_last_error());
    return be;
}

/* ---------------------------------------------------------------- devices */

struct sec_capture {
    pthread_mutex_t mu;
    char *text;
    size_t len, cap;
};

static void cap_append(struct sec_capture *c, const char *id, const char *what, const char *line)
{
    pthread_mutex_lock(&c->mu);
    size_t need = strlen(id) + strlen(what) + strlen(line) + 8;
    if (c->len + need + 1 > c->cap) {
        size_t ncap = (c->cap + need) * 2;
        char *n = realloc(c->text, ncap);
        if (n) {
            c->text = n;
            c->cap = ncap;
        }
    }
    if (c->len + need + 1 <= c->cap)
        c->len += (size_t)snprintf(c->text + c->len, c->cap - c->len, "[%s] %s %s\n", id, what,
                                   line);
    pthread_mutex_unlock(&c->mu);
}

static void obs_log(void *ctx, struct sim_device *dev, enum fw_log_level level, const char *line)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    cap_append(ctx, sim_device_id(dev), names[level <= FW_LOG_ERROR ? level : 0], line);
}

static void obs_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    cap_append(ctx, sim_device_id(dev), sim_conn_state_name(s->state), s->words ? s->words : "");
}

static struct sim_device_observer sec_observer = {
    .on_log = obs_log,
    .on_state = obs_state,
};

void sec_fleet_init(struct sec_fleet *f)
{
    memset(f, 0, sizeof *f);
    f->cap = calloc(1, sizeof *f->cap);
    ck_assert(f->cap != NULL);
    pthread_mutex_init(&f->cap->mu, NULL);
    struct sim_loop_opts lo;
    sim_loop_opts_defaults(&lo);
    lo.tick_ms = 20;
    lo.name = "sec-loop";
    ck_assert_int_eq(sim_loop_create(&lo, &f->loop), 0);
    ck_assert_int_eq(sim_loop_start_thread(f->loop), 0);
}

void sec_device_opts(struct sim_device_opts *o, const char *id, const char *uri,
                     const char *cafile, const char *cert, const char *key)
{
    sim_device_opts_defaults(o, id, uri);
    o->fw.layout = FW_LAYOUT_PER_DEVICE;
    o->fw.keepalive_s = 10;
    o->transport.cafile = cafile;
    o->transport.certfile = cert;
    o->transport.keyfile = key;
    o->transport.connect_timeout_s = 5;
    o->storage = SIM_STORAGE_MEMORY;
    o->log_level = FW_LOG_DEBUG; /* everything: the password must not be in any of it */
}

struct sim_device *sec_fleet_add(struct sec_fleet *f, struct sim_device_opts *opts)
{
    ck_assert(f->n < (int)(sizeof f->dev / sizeof f->dev[0]));
    sec_observer.ctx = f->cap; /* one fleet per test process at a time */
    opts->observer = &sec_observer;
    struct sim_device *d = NULL;
    int rc = sim_device_create(f->loop, opts, &d);
    ck_assert_msg(rc == 0, "sim_device_create %s: %d", opts->fw.device_id, rc);
    f->dev[f->n++] = d;
    ck_assert_int_eq(sim_device_start(d), 0);
    return d;
}

void sec_fleet_free(struct sec_fleet *f)
{
    for (int i = 0; i < f->n; i++)
        sim_device_destroy(f->dev[i]);
    if (f->loop) {
        sim_loop_stop(f->loop);
        sim_loop_free(f->loop);
    }
    if (f->cap) {
        pthread_mutex_destroy(&f->cap->mu);
        free(f->cap->text);
        free(f->cap);
    }
    memset(f, 0, sizeof *f);
}

char *sec_fleet_text(struct sec_fleet *f)
{
    pthread_mutex_lock(&f->cap->mu);
    char *copy = strdup(f->cap->text ? f->cap->text : "");
    pthread_mutex_unlock(&f->cap->mu);
    ck_assert(copy != NULL);
    return copy;
}

struct sim_device_snapshot sec_snap(struct sim_device *d)
{
    struct sim_device_snapshot s;
    ck_assert_int_eq(sim_device_snapshot(d, &s), 0);
    return s;
}

bool sec_wait_connected(struct sim_device *d, int timeout_ms)
{
    uint64_t end = sec_now_ms() + (uint64_t)timeout_ms;
    do {
        struct sim_device_snapshot s = sec_snap(d);
        if (s.connected && s.status.online)
            return true;
        sec_nap_ms(20);
    } while (sec_now_ms() < end);
    return false;
}

bool sec_wait_failures(struct sim_device *d, uint32_t n, int timeout_ms)
{
    uint64_t end = sec_now_ms() + (uint64_t)timeout_ms;
    do {
        if (sec_snap(d).stats.connect_failures >= n)
            return true;
        sec_nap_ms(20);
    } while (sec_now_ms() < end);
    return false;
}

void sec_register_item(struct hx_backend *be, struct sim_device *d, int32_t item_id,
                       uint32_t tag_seed)
{
    char name[32];
    snprintf(name, sizeof name, "Item %d", (int)item_id);
    /* Right after a first connect the device may not have subscribed yet, and an item
       published before that is (correctly) not delivered: publish again every 2 s until
       the device shows it. The device drops re-sends of an item it already has. */
    uint64_t end = sec_now_ms() + SEC_WAIT_MS, next_publish = 0;
    struct sim_device_snapshot s;
    for (;;) {
        uint64_t now = sec_now_ms();
        if (now >= next_publish) {
            int rc = hx_backend_publish_item(be, sim_device_id(d), item_id, name, 1);
            ck_assert_msg(rc == 0, "publish item %d: %s", (int)item_id, hx_backend_last_error());
            next_publish = now + 2000;
        }
        s = sec_snap(d);
        if ((s.status.screen == FW_SCREEN_ITEM && s.status.head_item_id == item_id) ||
            now >= end)
            break;
        sec_nap_ms(20);
    }
    ck_assert_msg(s.status.screen == FW_SCREEN_ITEM && s.status.head_item_id == item_id,
                  "%s never showed item %d (screen %d, head %d, items_received %u)",
                  sim_device_id(d), (int)item_id, (int)s.status.screen,
                  (int)s.status.head_item_id, s.stats.items_received);
    uint8_t uid[4] = {0x04, (uint8_t)(tag_seed >> 16), (uint8_t)(tag_seed >> 8),
                      (uint8_t)tag_seed};
    ck_assert_int_eq(sim_device_post_tag(d, uid, sizeof uid), 0);
    end = sec_now_ms() + SEC_WAIT_MS;
    do {
        s = sec_snap(d);
        if (s.status.screen == FW_SCREEN_CONFIRM)
            break;
        sec_nap_ms(10);
    } while (sec_now_ms() < end);
    ck_assert_msg(s.status.screen == FW_SCREEN_CONFIRM, "%s: tag not taken (screen %d)",
                  sim_device_id(d), (int)s.status.screen);
    ck_assert_int_eq(sim_device_post_button(d, FW_BUTTON_CONFIRM), 0);
}
