/*
 * test_device.c - a sim_device (firmware_core + the Linux ports, on a loop thread)
 * against a real mosquitto (hx_broker) and real Paho clients.
 *
 * Covered: retained "online" on connect; a clean stop publishes "offline" itself and the
 * broker publishes no Will; a device process killed with SIGKILL gets its Will
 * ("offline") published by the broker; persistent sessions resume (3.1.1 and MQTT 5 with
 * session expiry) and clean sessions do not; an item published with mosquitto_pub
 * reaches the device and a tag + confirm produce a registration with the exact schema;
 * the outbox survives a restart in file storage; a traced device's trace file replays
 * with the same port calls (fw_replay); refused passwords and unreachable
 * brokers end up as words without the password.
 *
 * The Will test runs the device in a child process (this executable re-executed with
 * --device-child), so that SIGKILL takes the whole Paho client down like a power cut.
 */
#include <check.h>
#include <pthread.h>
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fw/fw_replay.h"
#include "hx/broker.h"
#include "sim/device.h"
#include "sim/err.h"
#include "sim/loop.h"
#include "sim/test_mqtt.h"
#include "sim_test_util.h"

static const char *self_exe;

/* ------------------------------------------------------------------ fixture */

struct fixture {
    struct hx_broker *broker;
    struct sim_loop *loop;
    struct sim_device *dev;
};

static void start_broker(struct fixture *f, const struct hx_broker_opts *bo)
{
    struct hx_broker_opts o = { 0 };

    memset(f, 0, sizeof(*f));
    if (!bo) {
        o.verbose_log = true;
        bo = &o;
    }
    ck_assert_msg(hx_broker_start(bo, &f->broker) == 0, "broker: %s", hx_broker_last_error());
    ck_assert_int_eq(sim_loop_create(NULL, &f->loop), SIM_OK);
    ck_assert_int_eq(sim_loop_start_thread(f->loop), SIM_OK);
}

static void make_device(struct fixture *f, struct sim_device_opts *o)
{
    ck_assert_int_eq(sim_device_create(f->loop, o, &f->dev), SIM_OK);
}

static void finish(struct fixture *f)
{
    sim_device_destroy(f->dev);
    sim_loop_free(f->loop);
    hx_broker_free(f->broker);
}

typedef bool (*snap_pred)(const struct sim_device_snapshot *s, const void *arg);

/* Poll snapshots until pred holds; the last snapshot is left in *s. */
static bool wait_snap(struct sim_device *dev, struct sim_device_snapshot *s, snap_pred pred,
                      const void *arg)
{
    uint64_t end = now_ms() + WAIT_MS;
    for (;;) {
        ck_assert_int_eq(sim_device_snapshot(dev, s), SIM_OK);
        if (pred(s, arg))
            return true;
        if (now_ms() >= end)
            return false;
        nap_ms(10);
    }
}

static bool is_online(const struct sim_device_snapshot *s, const void *arg)
{
    (void)arg;
    return s->status.online;
}

/* Connected that often and online again (its SUBACKs granted). */
static bool online_after_connects(const struct sim_device_snapshot *s, const void *arg)
{
    return s->stats.connects >= *(const uint32_t *)arg && s->status.online;
}

static bool failed_at_least(const struct sim_device_snapshot *s, const void *arg)
{
    return s->stats.connect_failures >= *(const uint32_t *)arg && s->last_words[0];
}

static void status_topic(char *out, size_t cap, const char *id)
{
    snprintf(out, cap, "scanners/%s/status", id);
}

/* ------------------------------------------------------------------ online / offline */

START_TEST(a_started_device_announces_online_retained_on_its_status_topic)
{
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    struct tmq *w;
    const struct tmq_msg *m;
    char topic[96];

    start_broker(&f, NULL);
    sim_device_opts_defaults(&o, "dev-online", hx_broker_uri(f.broker));
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_ERR_STATE);
    ck_assert_msg(wait_snap(f.dev, &s, is_online, NULL), "not online: %s", s.last_words);
    ck_assert(s.connected);
    ck_assert_int_eq(s.conn_state, SIM_CONN_CONNECTED);
    ck_assert_uint_gt(s.frames, 0);
    /* Subscribed after the fact: a retained message is what a late subscriber gets. */
    status_topic(topic, sizeof(topic), "dev-online");
    w = watcher_start(hx_broker_uri(f.broker), "watch-online", topic);
    ck_assert_ptr_nonnull(w);
    ck_assert(tmq_wait_count_on(w, topic, "online", 1, WAIT_MS));
    m = tmq_find(w, topic, 0);
    ck_assert_ptr_nonnull(m);
    ck_assert(m->retain);
    tmq_free(w);
    finish(&f);
}
END_TEST

START_TEST(a_clean_stop_publishes_offline_itself_and_the_broker_sends_no_will)
{
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    struct tmq *w;
    char topic[96];

    start_broker(&f, NULL);
    status_topic(topic, sizeof(topic), "dev-stop");
    w = watcher_start(hx_broker_uri(f.broker), "watch-stop", topic);
    ck_assert_ptr_nonnull(w);
    sim_device_opts_defaults(&o, "dev-stop", hx_broker_uri(f.broker));
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, is_online, NULL));
    ck_assert(tmq_wait_count_on(w, topic, "online", 1, WAIT_MS));
    ck_assert_int_eq(sim_device_stop(f.dev), SIM_OK);
    ck_assert_int_eq(sim_device_stop(f.dev), SIM_ERR_STATE);
    ck_assert(tmq_wait_count_on(w, topic, "offline", 1, WAIT_MS));
    /* The broker got a DISCONNECT (mosquitto logs "disconnected", not "closed its
       connection"), so it drops the Will; the marker round trip proves nothing else was
       on its way to us when we count. */
    ck_assert(wait_file_contains(hx_broker_log_path(f.broker), "Client dev-stop disconnected",
                                 WAIT_MS));
    ck_assert(!file_contains(hx_broker_log_path(f.broker), "dev-stop closed its connection"));
    ck_assert(watcher_sync(w, "stop"));
    ck_assert_int_eq(tmq_count_on(w, topic, "offline"), 1);
    ck_assert_int_eq(sim_device_snapshot(f.dev, &s), SIM_OK);
    ck_assert(!s.powered);
    ck_assert(!s.status.online);
    ck_assert_int_eq(s.conn_state, SIM_CONN_DISCONNECTED);
    tmq_free(w);
    finish(&f);
}
END_TEST

/* The child: run one device until killed. */
static int device_child(const char *uri, const char *id)
{
    struct sim_loop *loop;
    struct sim_device *dev;
    struct sim_device_opts o;

    if (sim_loop_create(NULL, &loop) || sim_loop_start_thread(loop))
        return 2;
    sim_device_opts_defaults(&o, id, uri);
    if (sim_device_create(loop, &o, &dev) || sim_device_start(dev))
        return 3;
    for (;;)
        pause();
}

START_TEST(a_device_process_killed_with_sigkill_gets_its_will_offline_published_by_the_broker)
{
    struct fixture f;
    struct tmq *w;
    const struct tmq_msg *m;
    char topic[96];
    pid_t pid;
    int status;

    start_broker(&f, NULL);
    status_topic(topic, sizeof(topic), "dev-kill");
    w = watcher_start(hx_broker_uri(f.broker), "watch-kill", topic);
    ck_assert_ptr_nonnull(w);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(self_exe, self_exe, "--device-child", hx_broker_uri(f.broker), "dev-kill",
              (char *)NULL);
        _exit(127);
    }
    ck_assert_msg(tmq_wait_count_on(w, topic, "online", 1, WAIT_MS), "the child never came online");
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    /* The process is gone: an "offline" now can only be the broker's Will. */
    ck_assert_msg(tmq_wait_count_on(w, topic, "offline", 1, WAIT_MS), "no Will published");
    m = tmq_find(w, topic, 1);
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(m->payload, "offline");
    ck_assert(file_contains(hx_broker_log_path(f.broker), "dev-kill closed its connection") ||
              file_contains(hx_broker_log_path(f.broker), "Socket error on client dev-kill"));
    ck_assert(!file_contains(hx_broker_log_path(f.broker), "Client dev-kill disconnected"));
    tmq_free(w);
    finish(&f);
}
END_TEST

/* ------------------------------------------------------------------ sessions */

static void session_case(int version, bool clean, bool want_present)
{
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    char id[32];
    uint32_t one = 1;

    snprintf(id, sizeof(id), "dev-s%d-%c", version, clean ? 'c' : 'p');
    start_broker(&f, NULL);
    sim_device_opts_defaults(&o, id, hx_broker_uri(f.broker));
    o.transport.mqtt_version = version;
    o.transport.session_expiry_s = 600;
    o.fw.clean_session = clean;
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, is_online, NULL));
    ck_assert_msg(!s.status.session_present, "first connection cannot resume a session");
    ck_assert_int_eq(sim_device_stop(f.dev), SIM_OK);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK); /* a reboot: figures start at 0 */
    ck_assert(wait_snap(f.dev, &s, online_after_connects, &one));
    ck_assert_int_eq(s.status.session_present, want_present);
    ck_assert_uint_eq(s.stats.sessions_present, want_present ? 1 : 0);
    finish(&f);
}

START_TEST(mqtt311_persistent_session_is_present_after_a_stop_and_start)
{
    session_case(3, false, true);
}
END_TEST

START_TEST(mqtt311_clean_session_is_never_present)
{
    session_case(3, true, false);
}
END_TEST

START_TEST(mqtt5_connects_and_session_expiry_keeps_the_session_across_a_stop_and_start)
{
    session_case(5, false, true);
}
END_TEST

START_TEST(mqtt5_clean_start_is_never_present)
{
    session_case(5, true, false);
}
END_TEST

/* ------------------------------------------------------------------ items and registrations */

struct want_item {
    uint32_t pending;
    int32_t head;
};

static bool has_item(const struct sim_device_snapshot *s, const void *arg)
{
    const struct want_item *w = arg;
    return s->status.pending == w->pending && s->status.head_item_id == w->head;
}

static bool acked(const struct sim_device_snapshot *s, const void *arg)
{
    return s->stats.registrations_acked >= *(const uint32_t *)arg && s->status.outbox == 0;
}

static bool screen_is(const struct sim_device_snapshot *s, const void *arg)
{
    return s->status.screen == *(const enum fw_screen *)arg;
}

/* Check a registration payload: exactly the five fields of docs/protocol.md. */
static void check_registration(const char *json, int item_id, int qty, const char *tag,
                               const char *device_id)
{
    cJSON *root = cJSON_Parse(json);
    cJSON *f;
    int n = 0;

    ck_assert_msg(root && cJSON_IsObject(root), "not a JSON object: %s", json);
    cJSON_ArrayForEach(f, root) n++;
    ck_assert_msg(n == 5, "expected 5 fields: %s", json);
    f = cJSON_GetObjectItemCaseSensitive(root, "item_id");
    ck_assert(cJSON_IsNumber(f) && f->valuedouble == item_id);
    f = cJSON_GetObjectItemCaseSensitive(root, "tag_quantity");
    ck_assert(cJSON_IsNumber(f) && f->valuedouble == qty);
    f = cJSON_GetObjectItemCaseSensitive(root, "tag");
    ck_assert(cJSON_IsString(f));
    ck_assert_str_eq(f->valuestring, tag);
    f = cJSON_GetObjectItemCaseSensitive(root, "device_id");
    ck_assert(cJSON_IsString(f));
    ck_assert_str_eq(f->valuestring, device_id);
    f = cJSON_GetObjectItemCaseSensitive(root, "seq");
    ck_assert(cJSON_IsNumber(f) && f->valuedouble >= 1 && f->valuedouble == (int)f->valuedouble);
    cJSON_Delete(root);
}

/* Item 17 from mosquitto_pub, a tag and confirm: the registration reaches the broker and
   its PUBACK empties the outbox. trace_dir: record the device's trace there. */
static void register_item_17(const char *trace_dir)
{
    static const uint8_t uid[4] = { 0x04, 0xA1, 0xB2, 0xC3 };
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    struct tmq *w;
    const struct tmq_msg *m;
    struct want_item want = { 1, 17 };
    enum fw_screen confirm = FW_SCREEN_CONFIRM;
    uint32_t one = 1;

    start_broker(&f, NULL);
    w = watcher_start(hx_broker_uri(f.broker), "watch-reg", "item_registered");
    ck_assert_ptr_nonnull(w);
    sim_device_opts_defaults(&o, "dev-reg", hx_broker_uri(f.broker));
    o.trace_dir = trace_dir;
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, is_online, NULL));
    /* online is published after the SUBSCRIBE, so the subscription is in place once the
       broker has the retained online: wait for that before publishing the item. */
    {
        struct tmq *ws = watcher_start(hx_broker_uri(f.broker), "watch-reg-s",
                                           "scanners/dev-reg/status");
        ck_assert_ptr_nonnull(ws);
        ck_assert(tmq_wait_count_on(ws, "scanners/dev-reg/status", "online", 1, WAIT_MS));
        tmq_free(ws);
    }
    ck_assert_int_eq(run_mosquitto_pub(hx_broker_uri(f.broker), "item_registration",
                                       "{\"item_id\": 17, \"item_name\": \"Pallet jack\", "
                                       "\"tag_quantity\": 2}", 1, false), 0);
    ck_assert_msg(wait_snap(f.dev, &s, has_item, &want), "pending %u head %d",
                  s.status.pending, s.status.head_item_id);
    ck_assert_str_eq(s.status.head_item_name, "Pallet jack");
    ck_assert_int_eq(s.status.screen, FW_SCREEN_ITEM);
    ck_assert_uint_ge(s.traffic_in, 1);

    ck_assert_int_eq(sim_device_post_tag(f.dev, uid, sizeof(uid)), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, screen_is, &confirm));
    ck_assert_int_eq(sim_device_post_button(f.dev, FW_BUTTON_CONFIRM), SIM_OK);
    ck_assert(tmq_wait_count_on(w, "item_registered", NULL, 1, WAIT_MS));
    m = tmq_find(w, "item_registered", 0);
    ck_assert_ptr_nonnull(m);
    check_registration(m->payload, 17, 2, "04A1B2C3", "dev-reg");
    ck_assert_int_eq(m->qos, 1);
    /* The PUBACK came back through Paho's token and emptied the outbox. */
    ck_assert(wait_snap(f.dev, &s, acked, &one));
    ck_assert_uint_eq(s.stats.registrations_sent, 1);
    ck_assert_uint_eq(s.status.pending, 0);
    /* A clean power-off and on again: a reboot is part of a trace too. */
    ck_assert_int_eq(sim_device_stop(f.dev), SIM_OK);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, is_online, NULL));
    tmq_free(w);
    finish(&f);
}

START_TEST(an_item_from_mosquitto_pub_is_pending_and_a_tag_plus_confirm_registers_it)
{
    register_item_17(NULL);
}
END_TEST

static long file_read(void *ctx, void *buf, size_t cap)
{
    return (long)fread(buf, 1, cap, ctx);
}

START_TEST(a_traced_device_records_a_trace_that_replays_with_the_same_calls)
{
    static struct fw_replay rp;
    char dir[] = "/tmp/sim-trace-XXXXXX", path[64], *text;
    struct fw_replay_result res;
    size_t len;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    register_item_17(dir);
    snprintf(path, sizeof(path), "%s/dev-reg.fwtrace", dir);
    /* The file holds the whole run: both power-ons, the item, the registration. */
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    text = calloc(1, 1 << 20);
    len = fread(text, 1, (1 << 20) - 1, fp);
    ck_assert_uint_gt(len, 100);
    ck_assert_ptr_nonnull(memmem(text, len, "Pallet jack", 11));
    ck_assert_ptr_nonnull(memmem(text, len, "\"tag\":\"04A1B2C3\"", 16));
    rewind(fp);
    struct fw_replay_source src = { file_read, fp };
    ck_assert_int_eq(fw_replay_run(&rp, &src, NULL, &res), FW_REPLAY_MATCH);
    ck_assert_uint_gt(res.events, 8);
    fclose(fp);
    free(text);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------------ observers */

struct seen_by_observer {
    pthread_t loop_thread;
    bool all_on_loop_thread;
    int frames, logs, states;
    int out_online_retained, in_item_qos1;
    enum sim_conn_state first_state, last_state;
    char first_log[FW_LOG_MAX];
};

static void obs_check_thread(struct seen_by_observer *o)
{
    if (!pthread_equal(pthread_self(), o->loop_thread))
        o->all_on_loop_thread = false;
}

static void obs_frame(void *ctx, struct sim_device *dev, const uint8_t *fb)
{
    (void)dev;
    (void)fb;
    obs_check_thread(ctx);
    ((struct seen_by_observer *)ctx)->frames++;
}

static void obs_log(void *ctx, struct sim_device *dev, enum fw_log_level level, const char *line)
{
    struct seen_by_observer *o = ctx;
    (void)dev;
    (void)level;
    obs_check_thread(o);
    if (o->logs++ == 0)
        snprintf(o->first_log, sizeof(o->first_log), "%s", line);
}

static void obs_traffic(void *ctx, struct sim_device *dev, const struct sim_traffic *t)
{
    struct seen_by_observer *o = ctx;
    (void)dev;
    obs_check_thread(o);
    if (t->dir == SIM_TRAFFIC_OUT && t->retain && t->len == 6 &&
        memcmp(t->payload, "online", 6) == 0 && t->result == 0)
        o->out_online_retained++;
    if (t->dir == SIM_TRAFFIC_IN && strcmp(t->topic, "item_registration") == 0 && t->qos == 1)
        o->in_item_qos1++;
}

static void obs_state(void *ctx, struct sim_device *dev, const struct sim_state_change *s)
{
    struct seen_by_observer *o = ctx;
    (void)dev;
    obs_check_thread(o);
    if (o->states++ == 0)
        o->first_state = s->state;
    o->last_state = s->state;
}

static void note_loop_thread(void *arg)
{
    ((struct seen_by_observer *)arg)->loop_thread = pthread_self();
}

static bool item_arrived(const struct sim_device_snapshot *s, const void *arg)
{
    (void)arg;
    return s->stats.items_received >= 1;
}

START_TEST(observers_see_frames_logs_traffic_both_ways_and_states_on_the_loop_thread)
{
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    struct seen_by_observer seen = { .all_on_loop_thread = true };
    struct sim_device_observer obs = { &seen, obs_frame, obs_log, obs_traffic, obs_state };

    start_broker(&f, NULL);
    ck_assert_int_eq(sim_loop_call(f.loop, note_loop_thread, &seen), SIM_OK);
    sim_device_opts_defaults(&o, "dev-obs", hx_broker_uri(f.broker));
    o.observer = &obs;
    o.log_level = FW_LOG_DEBUG;
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, is_online, NULL));
    {
        struct tmq *ws = watcher_start(hx_broker_uri(f.broker), "watch-obs-s",
                                           "scanners/dev-obs/status");
        ck_assert_ptr_nonnull(ws);
        ck_assert(tmq_wait_count_on(ws, "scanners/dev-obs/status", "online", 1, WAIT_MS));
        tmq_free(ws);
    }
    ck_assert_int_eq(run_mosquitto_pub(hx_broker_uri(f.broker), "item_registration",
                                       "{\"item_id\": 3, \"item_name\": \"Saw\", "
                                       "\"tag_quantity\": 1}", 1, false), 0);
    ck_assert(wait_snap(f.dev, &s, item_arrived, NULL));
    /* The snapshot ran on the loop thread after every callback so far: no race to read. */
    ck_assert(seen.all_on_loop_thread);
    ck_assert_int_eq(seen.frames, (int)s.frames);
    ck_assert_int_gt(seen.frames, 0);
    ck_assert_int_gt(seen.logs, 0);
    ck_assert_int_eq(seen.out_online_retained, 1);
    ck_assert_int_eq(seen.in_item_qos1, 1);
    ck_assert_int_eq(seen.first_state, SIM_CONN_CONNECTING);
    ck_assert_int_eq(seen.last_state, SIM_CONN_CONNECTED);
    ck_assert_str_eq(sim_conn_state_name(seen.last_state), "connected");
    finish(&f);
}
END_TEST

/* ------------------------------------------------------------------ errors in words */

START_TEST(a_refused_password_reaches_the_device_as_words_with_the_code_and_no_password)
{
    static const struct hx_broker_user users[] = { { "scanner", "good-one" } };
    struct hx_broker_opts bo = { 0 };
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    uint32_t one = 1;

    bo.users = users;
    bo.n_users = 1;
    start_broker(&f, &bo);
    sim_device_opts_defaults(&o, "dev-pw", hx_broker_uri(f.broker));
    o.transport.username = "scanner";
    o.transport.password = "Not-The-Good-One";
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, failed_at_least, &one));
    ck_assert(!s.status.online);
    ck_assert_int_eq(s.last_failure_code, 5); /* mosquitto: not authorised */
    ck_assert_msg(strstr(s.last_words, "refused: not authorised (CONNACK 5)"), "%s",
                  s.last_words);
    ck_assert_msg(strstr(s.last_words, hx_broker_uri(f.broker)), "%s", s.last_words);
    ck_assert_msg(!strstr(s.last_words, "Not-The-Good-One"), "password leaked: %s",
                  s.last_words);
    ck_assert_int_eq(s.conn_state, SIM_CONN_FAILED);
    finish(&f);
}
END_TEST

START_TEST(an_unreachable_broker_reaches_the_device_as_words_and_it_keeps_trying)
{
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    char uri[64];
    uint32_t two = 2;

    memset(&f, 0, sizeof(f));
    ck_assert_int_eq(sim_loop_create(NULL, &f.loop), SIM_OK);
    ck_assert_int_eq(sim_loop_start_thread(f.loop), SIM_OK);
    snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%u", hx_free_port());
    sim_device_opts_defaults(&o, "dev-unreach", uri);
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    /* Two failures: the firmware's back-off (1 s +/- 25 %) tried again on the same handle. */
    ck_assert(wait_snap(f.dev, &s, failed_at_least, &two));
    ck_assert_int_eq(s.last_failure_code, FW_ERR_IO);
    ck_assert_msg(strstr(s.last_words, uri) && strstr(s.last_words, "cannot be reached"), "%s",
                  s.last_words);
    finish(&f);
}
END_TEST

/* ------------------------------------------------------------------ flash */

static bool offline_now(const struct sim_device_snapshot *s, const void *arg)
{
    (void)arg;
    return !s->status.online && s->stats.connection_losses >= 1;
}

static bool outbox_is(const struct sim_device_snapshot *s, const void *arg)
{
    return s->status.outbox == *(const uint32_t *)arg;
}

START_TEST(a_registration_confirmed_offline_survives_a_restart_in_file_storage_and_is_sent)
{
    static const uint8_t uid[7] = { 0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66 };
    struct fixture f;
    struct sim_device_opts o;
    struct sim_device_snapshot s;
    struct tmq *w;
    const struct tmq_msg *m;
    struct want_item want = { 1, 5 };
    enum fw_screen confirm = FW_SCREEN_CONFIRM;
    char dir[] = "/tmp/sim-flash-XXXXXX", cmd[80];
    uint32_t one = 1;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    start_broker(&f, NULL);
    sim_device_opts_defaults(&o, "dev-flash", hx_broker_uri(f.broker));
    o.storage = SIM_STORAGE_FILE;
    o.storage_dir = dir;
    o.fw.keepalive_s = 5;
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, is_online, NULL));
    {
        struct tmq *ws = watcher_start(hx_broker_uri(f.broker), "watch-flash-s",
                                           "scanners/dev-flash/status");
        ck_assert_ptr_nonnull(ws);
        ck_assert(tmq_wait_count_on(ws, "scanners/dev-flash/status", "online", 1, WAIT_MS));
        tmq_free(ws);
    }
    ck_assert_int_eq(run_mosquitto_pub(hx_broker_uri(f.broker), "item_registration",
                                       "{\"item_id\": 5, \"item_name\": \"Drill\", "
                                       "\"tag_quantity\": 1}", 1, false), 0);
    ck_assert(wait_snap(f.dev, &s, has_item, &want));
    /* The broker goes away (saving its state); the device notices the loss. */
    ck_assert_int_eq(hx_broker_stop(f.broker), 0);
    ck_assert(wait_snap(f.dev, &s, offline_now, NULL));
    ck_assert_int_eq(sim_device_post_tag(f.dev, uid, sizeof(uid)), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, screen_is, &confirm));
    ck_assert_int_eq(sim_device_post_button(f.dev, FW_BUTTON_CONFIRM), SIM_OK);
    ck_assert(wait_snap(f.dev, &s, outbox_is, &one));
    /* Power off for good: a new device object starts from the same folder. */
    ck_assert_int_eq(sim_device_power_cut(f.dev), SIM_OK);
    sim_device_destroy(f.dev);
    f.dev = NULL;
    ck_assert_int_eq(hx_broker_restart(f.broker), 0);
    w = watcher_start(hx_broker_uri(f.broker), "watch-flash", "item_registered");
    ck_assert_ptr_nonnull(w);
    make_device(&f, &o);
    ck_assert_int_eq(sim_device_start(f.dev), SIM_OK);
    ck_assert(tmq_wait_count_on(w, "item_registered", NULL, 1, WAIT_MS));
    m = tmq_find(w, "item_registered", 0);
    ck_assert_ptr_nonnull(m);
    check_registration(m->payload, 5, 1, "04112233445566", "dev-flash");
    ck_assert(wait_snap(f.dev, &s, acked, &one));
    tmq_free(w);
    finish(&f);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s;
    TCase *tc;
    SRunner *sr;
    int failed;

    if (argc == 4 && strcmp(argv[1], "--device-child") == 0)
        return device_child(argv[2], argv[3]);
    self_exe = "/proc/self/exe"; /* robust against a relative argv[0] */
    s = suite_create("sim_device");
    tc = tcase_create("device");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_started_device_announces_online_retained_on_its_status_topic);
    tcase_add_test(tc, a_clean_stop_publishes_offline_itself_and_the_broker_sends_no_will);
    tcase_add_test(tc, a_device_process_killed_with_sigkill_gets_its_will_offline_published_by_the_broker);
    tcase_add_test(tc, mqtt311_persistent_session_is_present_after_a_stop_and_start);
    tcase_add_test(tc, mqtt311_clean_session_is_never_present);
    tcase_add_test(tc, mqtt5_connects_and_session_expiry_keeps_the_session_across_a_stop_and_start);
    tcase_add_test(tc, mqtt5_clean_start_is_never_present);
    tcase_add_test(tc, an_item_from_mosquitto_pub_is_pending_and_a_tag_plus_confirm_registers_it);
    tcase_add_test(tc, a_traced_device_records_a_trace_that_replays_with_the_same_calls);
    tcase_add_test(tc, observers_see_frames_logs_traffic_both_ways_and_states_on_the_loop_thread);
    tcase_add_test(tc, a_refused_password_reaches_the_device_as_words_with_the_code_and_no_password);
    tcase_add_test(tc, an_unreachable_broker_reaches_the_device_as_words_and_it_keeps_trying);
    tcase_add_test(tc, a_registration_confirmed_offline_survives_a_restart_in_file_storage_and_is_sent);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
