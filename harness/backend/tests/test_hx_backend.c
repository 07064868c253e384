/*
 * test_hx_backend.c - the backend role against a real mosquitto (hx_broker), with an MQTT
 * client on the MQTT edge playing the device (the tests' synchronous one, sim/test_mqtt.h).
 * Every test has its own broker, port and temp folder, so the suite runs in parallel with
 * others.
 */
#include "hx/backend.h"
#include "hx/broker.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sim/err.h"
#include "sim/test_mqtt.h"
#include "sim/clock.h"

#define WAIT_MS 10000

static int64_t now_ms(void)
{
    return (int64_t)sim_clock_ms();
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- a device */

#define DEV_INBOX 64 /* the most messages a test looks through for one */

/* A connected device client of id (user and pass NULL = none), clean session: the tests'
   MQTT client (sim/test_mqtt.h). */
static struct tmq *dev_connect_user(const char *uri, const char *id, const char *user,
                                    const char *pass)
{
    struct tmq_opts o;
    struct tmq *v = NULL;
    tmq_opts_defaults(&o);
    o.uri = uri;
    o.client_id = id;
    o.username = user;
    o.password = pass;
    o.wait_ms = WAIT_MS;
    ck_assert_int_eq(tmq_open(&o, &v), SIM_OK);
    return v;
}

static struct tmq *dev_connect(const char *uri, const char *id)
{
    return dev_connect_user(uri, id, NULL, NULL);
}

static void dev_subscribe(struct tmq *v, const char *topic)
{
    ck_assert_int_eq(tmq_subscribe(v, topic, 1, NULL), SIM_OK);
}

/* Publish QoS 1 and wait for the broker's PUBACK. */
static void dev_publish(struct tmq *v, const char *topic, const char *payload)
{
    ck_assert_int_eq(tmq_publish_text(v, topic, payload, 1, false), SIM_OK);
}

/* The k-th message received (0-based), waiting for it; false on time-out. */
static bool dev_message(struct tmq *v, int k, int timeout_ms, char *topic, size_t tn,
                        char *payload, size_t pn)
{
    const struct tmq_msg *m = tmq_wait_msg(v, k, timeout_ms);
    if (m) {
        snprintf(topic, tn, "%s", m->topic);
        snprintf(payload, pn, "%s", m->payload);
    }
    return m != NULL;
}

static void dev_close(struct tmq *v)
{
    ck_assert_int_eq(tmq_close(v), SIM_OK);
}

/* ---------------------------------------------------------------- fixtures */

struct rig {
    struct hx_broker *broker;
    struct hx_backend *backend;
};

static struct rig rig_up_with(struct hx_backend_opts *o)
{
    struct rig r = {0};
    int rc = hx_broker_start(NULL, &r.broker);
    ck_assert_msg(rc == HX_OK, "broker: %s", hx_broker_last_error());
    o->uri = hx_broker_uri(r.broker);
    rc = hx_backend_create(o, &r.backend);
    ck_assert_msg(rc == HX_OK, "create: %s", hx_backend_last_error());
    rc = hx_backend_start(r.backend);
    ck_assert_msg(rc == HX_OK, "start: %s", hx_backend_last_error());
    return r;
}

static struct rig rig_up(enum hx_backend_layout layout)
{
    struct hx_backend_opts o = {.layout = layout};
    return rig_up_with(&o);
}

static void rig_down(struct rig *r)
{
    hx_backend_free(r->backend);
    hx_broker_free(r->broker);
}

/* Poll the report until cond holds (a field reaches a value), up to WAIT_MS. */
#define WAIT_REPORT(b, rep, cond)                                                          \
    do {                                                                                   \
        int64_t deadline_ = now_ms() + WAIT_MS;                                            \
        for (;;) {                                                                         \
            hx_backend_report((b), &(rep));                                                \
            if ((cond) || now_ms() > deadline_)                                            \
                break;                                                                     \
            sleep_ms(5);                                                                   \
        }                                                                                  \
        ck_assert_msg((cond), "timed out waiting for " #cond);                             \
    } while (0)

static void registration(char *out, size_t n, int item, const char *tag, const char *dev,
                         int seq)
{
    snprintf(out, n,
             "{\"item_id\":%d,\"tag_quantity\":1,\"tag\":\"%s\",\"device_id\":\"%s\","
             "\"seq\":%d}", item, tag, dev, seq);
}

/* ---------------------------------------------------------------- tests */

START_TEST(a_published_item_reaches_a_device_as_the_exact_json)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "dev-1");
    dev_subscribe(d, "item_registration");
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 17, "Pallet jack", 2), HX_OK);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 18, "Box \"A\\B\"", 100000),
                     HX_OK);
    char t[128], p[512];
    ck_assert(dev_message(d, 0, WAIT_MS, t, sizeof t, p, sizeof p));
    ck_assert_str_eq(t, "item_registration");
    ck_assert_str_eq(p, "{\"item_id\":17,\"item_name\":\"Pallet jack\",\"tag_quantity\":2}");
    ck_assert(dev_message(d, 1, WAIT_MS, t, sizeof t, p, sizeof p));
    ck_assert_str_eq(p,
                     "{\"item_id\":18,\"item_name\":\"Box \\\"A\\\\B\\\"\",\"tag_quantity\":100000}");
    struct hx_ledger_report rep;
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.published, 2);
    ck_assert_uint_eq(rep.lost, 2);
    ck_assert_int_gt(hx_backend_next_item_id(r.backend), 18);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(a_registration_is_stored_once_and_shows_in_recent_rows)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-1");
    int32_t id = hx_backend_next_item_id(r.backend);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, id, "Drill", 1), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, id, "04A1B2C3", "scanner-1", 42);
    dev_publish(d, "item_registered", reg);
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, 1, WAIT_MS), HX_OK);
    struct hx_ledger_report rep;
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.published, 1);
    ck_assert_uint_eq(rep.registered, 1);
    ck_assert_uint_eq(rep.registered_once, 1);
    ck_assert_uint_eq(rep.registered_twice, 0);
    ck_assert_uint_eq(rep.lost, 0);
    ck_assert_uint_eq(rep.rows_stored, 1);
    ck_assert_uint_eq(rep.duplicate_deliveries, 0);
    ck_assert_int_eq(hx_backend_item_registrations(r.backend, id), 1);
    struct hx_backend_row rows[4];
    ck_assert_int_eq(hx_backend_recent(r.backend, rows, 4), 1);
    ck_assert_int_eq(rows[0].item_id, id);
    ck_assert_str_eq(rows[0].item_name, "Drill");
    ck_assert_str_eq(rows[0].tag, "04A1B2C3");
    ck_assert_str_eq(rows[0].device_id, "scanner-1");
    ck_assert_uint_eq(rows[0].count, 1);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(the_same_key_twice_is_one_row_and_one_duplicate_delivery)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-1");
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 5, "Saw", 1), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, 5, "04A1B2C3D4E5F6", "scanner-1", 7);
    dev_publish(d, "item_registered", reg);
    dev_publish(d, "item_registered", reg);
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.registrations_received == 2);
    ck_assert_uint_eq(rep.rows_stored, 1);
    ck_assert_uint_eq(rep.duplicate_deliveries, 1);
    ck_assert_uint_eq(rep.registered_once, 1);
    ck_assert_uint_eq(rep.registered_twice, 0);
    ck_assert_int_eq(hx_backend_item_registrations(r.backend, 5), 1);
    /* the same key with another item is a device bug, not a duplicate: counted apart */
    registration(reg, sizeof reg, 6, "04A1B2C3D4E5F6", "scanner-1", 7);
    dev_publish(d, "item_registered", reg);
    WAIT_REPORT(r.backend, rep, rep.registrations_received == 3);
    ck_assert_uint_eq(rep.key_reused, 1);
    ck_assert_uint_eq(rep.duplicate_deliveries, 1);
    ck_assert_uint_eq(rep.rows_stored, 1);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(two_keys_for_one_item_count_as_registered_twice)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *a = dev_connect(hx_broker_uri(r.broker), "scanner-a");
    struct tmq *b = dev_connect(hx_broker_uri(r.broker), "scanner-b");
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 9, "Ladder", 1), HX_OK);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 10, "Rope", 1), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, 9, "11223344", "scanner-a", 1);
    dev_publish(a, "item_registered", reg);
    registration(reg, sizeof reg, 9, "55667788", "scanner-b", 1);
    dev_publish(b, "item_registered", reg);
    registration(reg, sizeof reg, 10, "99AABBCC", "scanner-a", 2);
    dev_publish(a, "item_registered", reg);
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.registrations_received == 3);
    ck_assert_uint_eq(rep.registered, 2);
    ck_assert_uint_eq(rep.registered_twice, 1);
    ck_assert_uint_eq(rep.registered_once, 1);
    ck_assert_uint_eq(rep.rows_stored, 3);
    ck_assert_int_eq(hx_backend_item_registrations(r.backend, 9), 2);

    /* The item lists by state: newest first, and how many match in all. */
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 11, "Tape", 1), HX_OK);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 12, "Glue", 1), HX_OK);
    struct hx_backend_item it[4];
    uint64_t total = 99;
    ck_assert_int_eq(hx_backend_items_matching(r.backend, HX_ITEMS_TWICE, it, 4, &total), 1);
    ck_assert_int_eq(it[0].item_id, 9);
    ck_assert_uint_eq(total, 1);
    ck_assert_int_eq(hx_backend_items_matching(r.backend, HX_ITEMS_REGISTERED, it, 4, &total), 1);
    ck_assert_int_eq(it[0].item_id, 10);
    ck_assert_int_eq(hx_backend_items_matching(r.backend, HX_ITEMS_PENDING, it, 1, &total), 1);
    ck_assert_int_eq(it[0].item_id, 12);
    ck_assert_uint_eq(total, 2); /* counted past max */
    ck_assert_int_eq(hx_backend_items_matching(r.backend, HX_ITEMS_LOST, it, 4, &total), 0);
    ck_assert_uint_eq(total, 0);
    ck_assert_int_eq(hx_backend_items_matching(r.backend, HX_ITEMS_ALL, it, 4, &total), 4);
    ck_assert_int_eq(it[0].item_id, 12);
    ck_assert_int_eq(it[3].item_id, 9);
    ck_assert_uint_eq(total, 4);
    dev_close(a);
    dev_close(b);
    rig_down(&r);
}
END_TEST

START_TEST(inventory_queries_are_answered_found_or_not_on_the_device_reply_topic)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-q");
    dev_subscribe(d, "scanners/scanner-q/inventory/reply");
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 17, "Pallet jack", 2), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, 17, "04A1B2C3", "scanner-q", 1);
    dev_publish(d, "item_registered", reg);
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, 1, WAIT_MS), HX_OK);
    dev_publish(d, "inventory/query",
                "{\"tag\":\"04A1B2C3\",\"device_id\":\"scanner-q\",\"seq\":2}");
    dev_publish(d, "inventory/query",
                "{\"tag\":\"DEADBEEF\",\"device_id\":\"scanner-q\",\"seq\":3}");
    char t[128], p[512];
    ck_assert(dev_message(d, 0, WAIT_MS, t, sizeof t, p, sizeof p));
    ck_assert_str_eq(t, "scanners/scanner-q/inventory/reply");
    ck_assert_str_eq(p, "{\"tag\":\"04A1B2C3\",\"found\":true,\"item_id\":17,"
                        "\"item_name\":\"Pallet jack\"}");
    ck_assert(dev_message(d, 1, WAIT_MS, t, sizeof t, p, sizeof p));
    ck_assert_str_eq(t, "scanners/scanner-q/inventory/reply");
    ck_assert_str_eq(p, "{\"tag\":\"DEADBEEF\",\"found\":false}");
    /* counted once its send returned: the device may see the answer a moment before */
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.inventory_answered == 2);
    ck_assert_uint_eq(rep.inventory_answered, 2);
    /* a bad query is counted, not answered */
    dev_publish(d, "inventory/query", "{\"tag\":\"nothex!!\",\"device_id\":\"scanner-q\"}");
    WAIT_REPORT(r.backend, rep, rep.malformed_queries == 1);
    ck_assert_uint_eq(rep.inventory_answered, 2);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(malformed_registrations_are_counted_and_the_backend_keeps_working)
{
    static const char *bad[] = {
        "not json",
        "",
        "[1,2,3]",
        "{}",
        "{\"item_id\":1}",
        "{\"item_id\":\"1\",\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":1}",
        "{\"item_id\":1.5,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":1}",
        "{\"item_id\":-1,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":1}",
        "{\"item_id\":1,\"tag_quantity\":0,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":1}",
        "{\"item_id\":1,\"tag_quantity\":1,\"tag\":\"04a1b2c3\",\"device_id\":\"d\","
        "\"seq\":1}",
        "{\"item_id\":1,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"\","
        "\"seq\":1}",
        "{\"item_id\":1,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"a/b\","
        "\"seq\":1}",
        "{\"item_id\":1,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":\"1\"}",
        "{\"item_id\":1,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":1} trailing",
        "{\"item_id\":99999999999,\"tag_quantity\":1,\"tag\":\"04A1B2C3\",\"device_id\":\"d\","
        "\"seq\":1}",
        "{\"item_id\":1,\"tag_quantity\":1,\"tag\":null,\"device_id\":\"d\",\"seq\":1}",
    };
    const int n_bad = (int)(sizeof bad / sizeof bad[0]);
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-m");
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 1, "Hammer", 1), HX_OK);
    for (int i = 0; i < n_bad; i++)
        dev_publish(d, "item_registered", bad[i]);
    /* a payload with a NUL byte and one far too big */
    static char big[8000];
    memset(big, '{', sizeof big - 1);
    dev_publish(d, "item_registered", big);
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.malformed == (uint64_t)n_bad + 1);
    ck_assert_uint_eq(rep.rows_stored, 0);
    ck_assert_uint_eq(rep.registered, 0);
    char reg[256];
    registration(reg, sizeof reg, 1, "04A1B2C3", "scanner-m", 1);
    dev_publish(d, "item_registered", reg);
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, 1, WAIT_MS), HX_OK);
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.malformed, (uint64_t)n_bad + 1);
    ck_assert_uint_eq(rep.registered_once, 1);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(items_never_registered_are_lost_and_unknown_items_are_counted)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-l");
    for (int id = 1; id <= 3; id++)
        ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, id, "Thing", 1), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, 2, "04A1B2C3", "scanner-l", 1);
    dev_publish(d, "item_registered", reg);
    registration(reg, sizeof reg, 777, "04A1B2C4", "scanner-l", 2);
    dev_publish(d, "item_registered", reg);
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.registrations_received == 2);
    ck_assert_uint_eq(rep.published, 3);
    ck_assert_uint_eq(rep.registered, 1);
    ck_assert_uint_eq(rep.lost, 2);
    ck_assert_uint_eq(rep.unknown_items, 1);
    ck_assert_int_eq(hx_backend_item_registrations(r.backend, 1), 0);
    ck_assert_int_eq(hx_backend_item_registrations(r.backend, 2), 1);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(a_file_ledger_holds_the_rows_after_stop)
{
    char dir[] = "/tmp/hx-backend-db-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/ledger.db", dir);
    struct hx_backend_opts o = {.db_path = path};
    struct rig r = rig_up_with(&o);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-f");
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 31, "Crate", 3), HX_OK);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 32, "Tape", 1), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, 31, "0A0B0C0D", "scanner-f", 11);
    dev_publish(d, "item_registered", reg);
    dev_publish(d, "item_registered", reg);
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, 1, WAIT_MS), HX_OK);
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.registrations_received == 2);
    dev_close(d);
    ck_assert_int_eq(hx_backend_stop(r.backend), HX_OK);

    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM items", -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_int_eq(sqlite3_column_int(st, 0), 2);
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT idem_key, item_id, tag, device_id, seq,"
                                            " registered_ms FROM tags", -1, &st, NULL),
                     SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "scanner-f:11");
    ck_assert_int_eq(sqlite3_column_int(st, 1), 31);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 2), "0A0B0C0D");
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 3), "scanner-f");
    ck_assert_int_eq(sqlite3_column_int(st, 4), 11);
    ck_assert_int_gt(sqlite3_column_int64(st, 5), 1600000000000LL);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE); /* the duplicate was not stored */
    sqlite3_finalize(st);
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT name, tag_quantity FROM items WHERE "
                                            "item_id = 31", -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    ck_assert_str_eq((const char *)sqlite3_column_text(st, 0), "Crate");
    ck_assert_int_eq(sqlite3_column_int(st, 1), 3);
    sqlite3_finalize(st);
    sqlite3_close(db);
    rig_down(&r);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(the_per_device_layout_uses_each_device_topics)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_PER_DEVICE);
    struct tmq *a = dev_connect(hx_broker_uri(r.broker), "dev-a");
    dev_subscribe(a, "scanners/dev-a/#");
    /* an item for dev-b must not reach dev-a; one for dev-a must */
    ck_assert_int_eq(hx_backend_publish_item(r.backend, "dev-b", 1, "For B", 1), HX_OK);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, "dev-a", 2, "For A", 1), HX_OK);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 3, "No target", 1), HX_ERR_INVAL);
    char t[128], p[512];
    ck_assert(dev_message(a, 0, WAIT_MS, t, sizeof t, p, sizeof p));
    ck_assert_str_eq(t, "scanners/dev-a/item_registration");
    ck_assert_str_eq(p, "{\"item_id\":2,\"item_name\":\"For A\",\"tag_quantity\":1}");

    char reg[256];
    /* a registration whose device id does not match its topic is refused */
    registration(reg, sizeof reg, 1, "0A0B0C0D", "dev-b", 1);
    dev_publish(a, "scanners/dev-a/item_registered", reg);
    /* the seed topic is not the per-device backend's business */
    registration(reg, sizeof reg, 2, "0A0B0C0E", "dev-a", 2);
    dev_publish(a, "item_registered", reg);
    registration(reg, sizeof reg, 2, "0A0B0C0E", "dev-a", 3);
    dev_publish(a, "scanners/dev-a/item_registered", reg);
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, 1, WAIT_MS), HX_OK);
    struct hx_ledger_report rep;
    WAIT_REPORT(r.backend, rep, rep.registrations_received == 2);
    ck_assert_uint_eq(rep.malformed, 1);
    ck_assert_uint_eq(rep.registered, 1);
    ck_assert_int_eq(hx_backend_item_registrations(r.backend, 2), 1);

    dev_publish(a, "scanners/dev-a/inventory/query",
                "{\"tag\":\"0A0B0C0E\",\"device_id\":\"dev-a\",\"seq\":4}");
    bool answered = false;
    for (int k = 1; k < DEV_INBOX && !answered; k++) { /* its own publishes come back too */
        ck_assert(dev_message(a, k, WAIT_MS, t, sizeof t, p, sizeof p));
        answered = strcmp(t, "scanners/dev-a/inventory/reply") == 0;
    }
    ck_assert(answered);
    ck_assert_str_eq(p, "{\"tag\":\"0A0B0C0E\",\"found\":true,\"item_id\":2,"
                        "\"item_name\":\"For A\"}");
    dev_close(a);
    rig_down(&r);
}
END_TEST

START_TEST(latency_figures_are_positive_and_ordered)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-t");
    dev_subscribe(d, "item_registration");
    const int n = 40;
    for (int i = 1; i <= n; i++)
        ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, i, "Bolt", 1), HX_OK);
    /* the device answers each item as it arrives */
    for (int i = 0; i < n; i++) {
        char t[128], p[512], reg[256];
        ck_assert(dev_message(d, i, WAIT_MS, t, sizeof t, p, sizeof p));
        int id = 0;
        ck_assert_int_eq(sscanf(p, "{\"item_id\":%d", &id), 1);
        char tag[16];
        snprintf(tag, sizeof tag, "%08X", (unsigned)(0xA0000000u + (unsigned)id));
        registration(reg, sizeof reg, id, tag, "scanner-t", i);
        dev_publish(d, "item_registered", reg);
    }
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, (uint64_t)n, WAIT_MS), HX_OK);
    struct hx_ledger_report rep;
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.registered_once, (uint64_t)n);
    ck_assert(rep.latency_p50_ms > 0.0);
    ck_assert(rep.latency_p50_ms <= rep.latency_p90_ms);
    ck_assert(rep.latency_p90_ms <= rep.latency_p99_ms);
    ck_assert(rep.latency_p99_ms <= rep.latency_max_ms);
    /* the last item waited for all the others: the max is clearly above the first */
    ck_assert(rep.latency_max_ms > rep.latency_p50_ms);
    dev_close(d);
    rig_down(&r);
}
END_TEST

static int cmp_ms(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The device registers items [from, to) and the backend stores them. */
static void register_range(struct rig *r, struct tmq *d, int from, int to)
{
    for (int id = from; id < to; id++) {
        char reg[256], tag[16];
        snprintf(tag, sizeof tag, "%08X", (unsigned)(0xB0000000u + (unsigned)id));
        registration(reg, sizeof reg, id, tag, "scanner-w", id);
        dev_publish(d, "item_registered", reg);
    }
    ck_assert_int_eq(hx_backend_wait_registered(r->backend, (uint64_t)(to - 1), WAIT_MS), HX_OK);
}

/* Reports in between waves whose latencies interleave (a long-waiting wave, then quick
   ones): the percentiles, the latency list and the histogram still agree with each item's
   own latency, as if all were sorted at the end. */
START_TEST(latency_percentiles_stay_exact_across_reports_between_waves)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-w");
    struct hx_ledger_report rep;
    enum { WAVE = 15, WAVES = 4, N = WAVE * WAVES };
    for (int id = 1; id <= WAVE; id++) /* wave 0 waits longest */
        ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, id, "Nut", 1), HX_OK);
    sleep_ms(120);
    for (int w = 1; w < WAVES; w++) {
        for (int id = w * WAVE + 1; id <= (w + 1) * WAVE; id++)
            ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, id, "Nut", 1), HX_OK);
        sleep_ms(10 * (WAVES - w));
        if (w == 1)
            register_range(&r, d, 1, WAVE + 1);
        register_range(&r, d, w * WAVE + 1, (w + 1) * WAVE + 1);
        hx_backend_report(r.backend, &rep); /* sorts what came so far */
    }
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.registered_once, N);
    ck_assert_uint_eq(rep.registered_twice, 0);

    static struct hx_backend_item items[N];
    ck_assert_int_eq(hx_backend_items(r.backend, items, N), N);
    double want[N];
    for (int i = 0; i < N; i++) {
        ck_assert(items[i].latency_ms >= 0);
        want[i] = items[i].latency_ms;
    }
    qsort(want, N, sizeof want[0], cmp_ms);
    ck_assert_msg(want[N - 1] > want[0] + 50, "the waves should differ: %.1f..%.1f ms", want[0],
                  want[N - 1]);

    double *lat = NULL;
    ck_assert_uint_eq(hx_backend_latencies(r.backend, &lat), N);
    for (int i = 0; i < N; i++)
        ck_assert_msg(lat[i] == want[i], "latency %d: %.3f, item says %.3f", i, lat[i], want[i]);
    free(lat);
    ck_assert(rep.latency_p50_ms == want[(int)((N - 1) * 0.50 + 0.5)]);
    ck_assert(rep.latency_p90_ms == want[(int)((N - 1) * 0.90 + 0.5)]);
    ck_assert(rep.latency_p99_ms == want[(int)((N - 1) * 0.99 + 0.5)]);
    ck_assert(rep.latency_max_ms == want[N - 1]);

    const double bounds[] = {want[5], want[N / 2], want[N - 3]};
    uint64_t counts[4], total = 0;
    double sum = 0, want_sum = 0;
    hx_backend_latency_histogram(r.backend, bounds, 3, counts, &sum);
    for (int k = 0; k <= 3; k++) {
        uint64_t c = 0;
        for (int i = 0; i < N; i++)
            c += (k == 0 || want[i] > bounds[k - 1]) && (k == 3 || want[i] <= bounds[k]);
        ck_assert_uint_eq(counts[k], c);
        total += counts[k];
    }
    for (int i = 0; i < N; i++)
        want_sum += want[i];
    ck_assert_uint_eq(total, N);
    ck_assert_double_eq_tol(sum, want_sum, 1e-6);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(an_mqtt5_backend_with_a_password_works_and_a_wrong_one_is_refused)
{
    struct hx_broker_user users[] = {{"backend", "b-pass"}, {"scanner-5", "s-pass"}};
    struct hx_broker_opts bo = {.persistence = true, .users = users, .n_users = 2};
    struct hx_broker *broker = NULL;
    ck_assert_int_eq(hx_broker_start(&bo, &broker), HX_OK);

    struct hx_backend_opts o = {.uri = hx_broker_uri(broker), .mqtt_version = 5,
                                .username = "backend", .password = "wrong",
                                .connect_timeout_ms = 3000};
    struct hx_backend *b = NULL;
    ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
    ck_assert_int_lt(hx_backend_start(b), 0);
    ck_assert_ptr_null(strstr(hx_backend_last_error(), "wrong")); /* never print a password */
    hx_backend_free(b);

    o.password = "b-pass";
    ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
    ck_assert_msg(hx_backend_start(b) == HX_OK, "%s", hx_backend_last_error());
    ck_assert(hx_backend_connected(b));
    struct tmq *d = dev_connect_user(hx_broker_uri(broker), "scanner-5", "scanner-5", "s-pass");
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 1, "V5", 1), HX_OK);
    char reg[256];
    registration(reg, sizeof reg, 1, "0A0B0C0D", "scanner-5", 1);
    dev_publish(d, "item_registered", reg);
    ck_assert_int_eq(hx_backend_wait_registered(b, 1, WAIT_MS), HX_OK);
    dev_close(d);
    hx_backend_free(b);
    hx_broker_free(broker);
}
END_TEST

/* MQTT 5: the broker's PUBACK refuses items its ACL does not let the backend publish (0x87).
   Those, and only those, leave the unacked list as refused (lost, never re-sent); the
   allowed ones interleaved with them still go out and register. */
START_TEST(an_mqtt5_backend_counts_the_items_the_broker_refuses_and_only_those)
{
    struct hx_broker_opts bo = {.persistence = true,
                                .acl = "topic read scanners/#\n"
                                       "topic write scanners/+/item_registered\n"
                                       "topic write scanners/dev-ok/item_registration\n"};
    struct hx_broker *broker = NULL;
    ck_assert_msg(hx_broker_start(&bo, &broker) == HX_OK, "%s", hx_broker_last_error());
    struct hx_backend_opts o = {.uri = hx_broker_uri(broker), .mqtt_version = 5,
                                .layout = HX_BACKEND_LAYOUT_PER_DEVICE};
    struct hx_backend *b = NULL;
    ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
    ck_assert_msg(hx_backend_start(b) == HX_OK, "%s", hx_backend_last_error());
    struct tmq *d = dev_connect(hx_broker_uri(broker), "dev-ok");
    dev_subscribe(d, "scanners/dev-ok/item_registration");

    enum { N = 40 };
    for (int i = 1; i <= N; i++) /* odd ids to the allowed device, even ones refused */
        ck_assert_int_eq(hx_backend_publish_item(b, i % 2 ? "dev-ok" : "dev-no", i, "Item", 1),
                         HX_OK);
    struct hx_ledger_report rep;
    WAIT_REPORT(b, rep, rep.publish_refused == N / 2 && rep.unacked == 0);
    ck_assert_int_eq(rep.refused_reason, 0x87);
    for (int i = 1; i <= N; i++)
        ck_assert_msg(hx_backend_item_finished(b, i) == !(i % 2), "item %d", i);

    char t[128], p[512], reg[256];
    for (int k = 0; k < N / 2; k++) {
        ck_assert(dev_message(d, k, WAIT_MS, t, sizeof t, p, sizeof p));
        int id = atoi(p + strlen("{\"item_id\":"));
        ck_assert_msg(id % 2 == 1, "a refused item reached the device: %s", p);
        registration(reg, sizeof reg, id, "0A0B0C0D", "dev-ok", id);
        dev_publish(d, "scanners/dev-ok/item_registered", reg);
    }
    ck_assert_int_eq(hx_backend_wait_registered(b, N / 2, WAIT_MS), HX_OK);
    hx_backend_report(b, &rep);
    ck_assert_uint_eq(rep.published, N);
    ck_assert_uint_eq(rep.lost, N / 2);
    ck_assert_uint_eq(rep.publish_refused, N / 2);
    ck_assert_uint_eq(rep.republished, 0);
    for (int i = 1; i <= N; i++)
        ck_assert(hx_backend_item_finished(b, i));
    dev_close(d);
    hx_backend_free(b);
    hx_broker_free(broker);
}
END_TEST

/* MQTT 5: no more item publishes in flight than the broker's Receive Maximum (mosquitto's
   default max_inflight_messages, 20), the rest held in order and sent as PUBACKs come; MQTT
   3.1.1 has no such bound. Paho would otherwise queue the excess and send it about every
   50 ms. Every item still arrives, in publish order. */
START_TEST(an_mqtt5_backend_keeps_to_the_brokers_receive_maximum)
{
    struct hx_broker *broker = NULL;
    ck_assert_msg(hx_broker_start(NULL, &broker) == HX_OK, "%s", hx_broker_last_error());
    for (int version = 4; version <= 5; version++) {
        char dev_id[16], topic[64];
        snprintf(dev_id, sizeof dev_id, "dev-rm%d", version);
        snprintf(topic, sizeof topic, "scanners/%s/item_registration", dev_id);
        struct tmq *d = dev_connect(hx_broker_uri(broker), dev_id);
        dev_subscribe(d, topic);
        struct hx_backend_opts o = {.uri = hx_broker_uri(broker), .mqtt_version = version,
                                    .layout = HX_BACKEND_LAYOUT_PER_DEVICE};
        struct hx_backend *b = NULL;
        ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
        ck_assert_msg(hx_backend_start(b) == HX_OK, "%s", hx_backend_last_error());
        enum { N = 60 }; /* < DEV_INBOX */
        for (int i = 1; i <= N; i++)
            ck_assert_int_eq(hx_backend_publish_item(b, dev_id, i, "Item", 1), HX_OK);
        struct hx_ledger_report rep;
        WAIT_REPORT(b, rep, rep.unacked == 0);
        ck_assert_int_eq(rep.receive_maximum, version == 5 ? 20 : 0);
        ck_assert_uint_gt(rep.peak_inflight, 0);
        if (version == 5)
            ck_assert_uint_le(rep.peak_inflight, 20);
        char t[128], p[512], want[64];
        for (int i = 1; i <= N; i++) {
            ck_assert(dev_message(d, i - 1, WAIT_MS, t, sizeof t, p, sizeof p));
            snprintf(want, sizeof want, "{\"item_id\":%d,", i);
            ck_assert_msg(strncmp(p, want, strlen(want)) == 0, "message %d: %s", i, p);
        }
        hx_backend_free(b);
        dev_close(d);
    }
    hx_broker_free(broker);
}
END_TEST

START_TEST(the_backend_reconnects_and_resubscribes_after_a_broker_restart)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    ck_assert_int_eq(hx_backend_publish_item(r.backend, NULL, 1, "Before", 1), HX_OK);
    /* kill -9: no saved session, so only a fresh subscribe brings registrations back */
    ck_assert_int_eq(hx_broker_kill(r.broker), HX_OK);
    ck_assert_int_eq(hx_broker_restart(r.broker), HX_OK);
    int64_t deadline = now_ms() + 3 * WAIT_MS;
    struct hx_ledger_report rep;
    for (;;) {
        hx_backend_report(r.backend, &rep);
        if ((rep.reconnects >= 1 && hx_backend_connected(r.backend)) || now_ms() > deadline)
            break;
        sleep_ms(20);
    }
    ck_assert_uint_ge(rep.reconnects, 1);
    /* the re-subscribe is asynchronous: re-send until the backend sees it (new key each time,
       so each attempt is a fresh registration of the same item) */
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-r");
    deadline = now_ms() + WAIT_MS;
    int seq = 0;
    while (hx_backend_wait_registered(r.backend, 1, 200) != HX_OK && now_ms() < deadline) {
        char reg[256];
        registration(reg, sizeof reg, 1, "0A0B0C0D", "scanner-r", ++seq);
        dev_publish(d, "item_registered", reg);
    }
    ck_assert_int_eq(hx_backend_wait_registered(r.backend, 1, 10), HX_OK);
    dev_close(d);
    rig_down(&r);
}
END_TEST

START_TEST(bad_arguments_and_an_absent_broker_give_errors_not_crashes)
{
    struct hx_backend *b = NULL;
    ck_assert_int_eq(hx_backend_create(NULL, &b), HX_ERR_INVAL);
    struct hx_backend_opts none = {0};
    ck_assert_int_eq(hx_backend_create(&none, &b), HX_ERR_INVAL);
    struct hx_backend_opts v = {.uri = "tcp://127.0.0.1:1", .mqtt_version = 3};
    ck_assert_int_eq(hx_backend_create(&v, &b), HX_ERR_INVAL);
    struct hx_backend_opts baddb = {.uri = "tcp://127.0.0.1:1",
                                    .db_path = "/nonexistent/dir/ledger.db"};
    ck_assert_int_eq(hx_backend_create(&baddb, &b), HX_ERR_SQL);
    ck_assert_ptr_nonnull(strstr(hx_backend_last_error(), "/nonexistent/dir/ledger.db"));

    uint16_t port = hx_free_port();
    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u", (unsigned)port);
    struct hx_backend_opts o = {.uri = uri, .connect_timeout_ms = 1500};
    ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
    ck_assert_int_lt(hx_backend_start(b), 0);
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 0, "x", 1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 1, "", 1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 1, "a name that is longer than 32 b",
                                             0), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 1, "0123456789012345678901234567890123",
                                             1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 1, "bad\xff", 1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 1, "ctl\n", 1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_item(b, "dev-1", 1, "ok", 1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_raw(b, NULL, "x", 1, 1), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_publish_raw(b, "t", "x", 1, 3), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_wait_registered(b, 1, 50), HX_ERR_TIMEOUT);
    ck_assert_int_eq(hx_backend_sync(b, 1000), HX_OK);
    struct hx_backend_row rows[2];
    ck_assert_int_eq(hx_backend_recent(b, rows, 2), 0);
    hx_backend_free(b);
    hx_backend_free(NULL);
    ck_assert_int_eq(hx_backend_start(NULL), HX_ERR_INVAL);
    ck_assert_int_eq(hx_backend_stop(NULL), HX_ERR_INVAL);
}
END_TEST

START_TEST(raw_payloads_reach_the_wire_unchanged)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    struct tmq *d = dev_connect(hx_broker_uri(r.broker), "scanner-raw");
    dev_subscribe(d, "item_registration");
    const char hostile[] = "{\"item_id\":1.5,\"item_name\":\"\",\"tag_quantity\":-1}";
    ck_assert_int_eq(hx_backend_publish_raw(r.backend, "item_registration", hostile,
                                            strlen(hostile), 1), HX_OK);
    char t[128], p[512];
    ck_assert(dev_message(d, 0, WAIT_MS, t, sizeof t, p, sizeof p));
    ck_assert_str_eq(p, hostile);
    struct hx_ledger_report rep;
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.published, 0);
    dev_close(d);
    rig_down(&r);
}
END_TEST


/* A throw-away CA and a server certificate for 127.0.0.1, made with the openssl command. */
static void make_certs(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/hx-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "(cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=hx-ca "
             "-keyout ca.key -out ca.crt && openssl req -new -newkey rsa:2048 -nodes "
             "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout server.key "
             "-out server.csr && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
             "-CAcreateserial -days 2 -copy_extensions copy -out server.crt) >/dev/null 2>&1",
             dir);
    ck_assert_int_eq(system(cmd), 0);
}

START_TEST(the_backend_works_over_tls)
{
    char dir[64], ca[128], crt[128], key[128];
    make_certs(dir, sizeof dir);
    snprintf(ca, sizeof ca, "%s/ca.crt", dir);
    snprintf(crt, sizeof crt, "%s/server.crt", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    struct hx_broker_opts bo = {.cafile = ca, .certfile = crt, .keyfile = key};
    struct hx_broker *broker = NULL;
    ck_assert_msg(hx_broker_start(&bo, &broker) == HX_OK, "%s", hx_broker_last_error());
    struct hx_backend_opts o = {.uri = hx_broker_uri(broker), .cafile = ca};
    struct hx_backend *b = NULL;
    ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
    ck_assert_msg(hx_backend_start(b) == HX_OK, "%s", hx_backend_last_error());
    ck_assert_int_eq(hx_backend_publish_item(b, NULL, 3, "Secure", 1), HX_OK);
    char reg[256], cmd[1024];
    registration(reg, sizeof reg, 3, "0A0B0C0D", "scanner-tls", 1);
    snprintf(cmd, sizeof cmd, "timeout 20 %s -h 127.0.0.1 -p %u --cafile '%s' -q 1 -t "
             "item_registered -m '%s'", MOSQUITTO_PUB, (unsigned)hx_broker_port(broker), ca,
             reg);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(hx_backend_wait_registered(b, 1, WAIT_MS), HX_OK);
    hx_backend_free(b);
    hx_broker_free(broker);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST


struct publisher_arg {
    struct hx_backend *b;
    int failures;
};

static void *publish_many(void *arg)
{
    struct publisher_arg *a = arg;
    for (int i = 0; i < 250; i++) {
        int32_t id = hx_backend_next_item_id(a->b);
        if (id <= 0 || hx_backend_publish_item(a->b, NULL, id, "Parallel", 1) != HX_OK)
            a->failures++;
    }
    return NULL;
}

START_TEST(items_published_from_four_threads_are_all_recorded_with_distinct_ids)
{
    struct rig r = rig_up(HX_BACKEND_LAYOUT_SEED);
    pthread_t th[4];
    struct publisher_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct publisher_arg){.b = r.backend};
        ck_assert_int_eq(pthread_create(&th[i], NULL, publish_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
    struct hx_ledger_report rep;
    hx_backend_report(r.backend, &rep);
    ck_assert_uint_eq(rep.published, 1000);
    ck_assert_uint_eq(rep.republished, 0);
    ck_assert_uint_eq(rep.lost, 1000);
    ck_assert_int_eq(hx_backend_next_item_id(r.backend), 1001);
    rig_down(&r);
}
END_TEST

START_TEST(injected_messages_are_processed_without_a_broker)
{
    uint16_t port = hx_free_port();
    char uri[64];
    snprintf(uri, sizeof uri, "tcp://127.0.0.1:%u", (unsigned)port);
    struct hx_backend_opts o = {.uri = uri, .layout = HX_BACKEND_LAYOUT_PER_DEVICE};
    struct hx_backend *b = NULL;
    ck_assert_int_eq(hx_backend_create(&o, &b), HX_OK);
    char reg[256];
    for (int i = 1; i <= 100; i++) {
        registration(reg, sizeof reg, i, "0A0B0C0D", "dev-x", i);
        ck_assert_int_eq(hx_backend_inject(b, "scanners/dev-x/item_registered", reg,
                                           strlen(reg)), HX_OK);
    }
    ck_assert_int_eq(hx_backend_inject(b, "scanners/dev-x/item_registered", reg, strlen(reg)),
                     HX_OK);
    ck_assert_int_eq(hx_backend_inject(b, "scanners/dev-y/item_registered", reg, strlen(reg)),
                     HX_OK);
    ck_assert_int_eq(hx_backend_sync(b, WAIT_MS), HX_OK);
    struct hx_ledger_report rep;
    hx_backend_report(b, &rep);
    ck_assert_uint_eq(rep.registrations_received, 102);
    ck_assert_uint_eq(rep.unknown_items, 100);
    ck_assert_uint_eq(rep.rows_stored, 100);
    ck_assert_uint_eq(rep.duplicate_deliveries, 1);
    ck_assert_uint_eq(rep.malformed, 1); /* device id and topic disagree */
    ck_assert_uint_eq(rep.published, 0);
    ck_assert_int_eq(hx_backend_item_registrations(b, 100), 1);
    ck_assert_int_eq(hx_backend_inject(b, NULL, "x", 1), HX_ERR_INVAL);
    hx_backend_free(b);
}
END_TEST


/* ---------------------------------------------------------------- a broker crash */

/* A subscriber with a persistent session that keeps every copy it gets: the tests' MQTT
   client (sim/test_mqtt.h), and a thread that reconnects it. */
#define SINK_MAX 1024

struct sink {
    struct tmq *c;
    pthread_t reconnector;
    atomic_bool stop;
};

/* The sink's reconnects (the edge makes none, and a handler may not connect its own
   client): once a second while not connected. The persistent session keeps the
   subscription and the copies queued meanwhile. */
static void *sink_reconnect(void *arg)
{
    struct sink *k = arg;
    int64_t next = now_ms() + 1000;
    while (!atomic_load(&k->stop)) {
        sleep_ms(20);
        if (tmq_is_connected(k->c) || now_ms() < next)
            continue;
        next = now_ms() + 1000;
        tmq_connect(k->c); /* waits for the attempt's outcome; a failed one is retried */
    }
    return NULL;
}

static void sink_open(struct sink *k, const char *uri, int version)
{
    struct tmq_opts o;
    memset(k, 0, sizeof *k);
    tmq_opts_defaults(&o);
    o.uri = uri;
    o.client_id = "crash-sink";
    o.mqtt_version = version == 5 ? 5 : 3;
    o.session_expiry_s = 3600;
    o.persistent = true;
    o.wait_ms = WAIT_MS;
    ck_assert_int_eq(tmq_create(&o, &k->c), SIM_OK);
    ck_assert_int_eq(tmq_connect(k->c), SIM_OK);
    ck_assert_int_eq(pthread_create(&k->reconnector, NULL, sink_reconnect, k), 0);
    ck_assert_int_eq(tmq_subscribe(k->c, "scanners/+/item_registration", 1, NULL), SIM_OK);
}

static void sink_close(struct sink *k)
{
    atomic_store(&k->stop, true);
    pthread_join(k->reconnector, NULL);
    tmq_close(k->c);
}

static void crash_item(int id, char *topic, size_t tn, char *payload, size_t pn)
{
    snprintf(topic, tn, "scanners/scanner-%d/item_registration", 1 + id % 2);
    snprintf(payload, pn, "{\"item_id\":%d,\"item_name\":\"Crash %d\",\"tag_quantity\":%d}", id,
             id, 1 + id % 7);
}

/* Every item 1..n at least once, and every copy exactly as published. */
static bool sink_has_all(struct sink *k, int n, char *why, size_t wn)
{
    static bool seen[SINK_MAX];
    memset(seen, 0, sizeof seen);
    why[0] = '\0';
    int copies = tmq_count(k->c);
    for (int i = 0; i < copies && i < SINK_MAX; i++) {
        const struct tmq_msg *m = tmq_msg(k->c, i);
        int id = 0;
        char topic[64], payload[128];
        if (sscanf(m->payload, "{\"item_id\":%d", &id) != 1 || id < 1 || id > n) {
            snprintf(why, wn, "copy %d is no item of this run: %s on %s", i, m->payload,
                     m->topic);
            break;
        }
        crash_item(id, topic, sizeof topic, payload, sizeof payload);
        if (strcmp(topic, m->topic) != 0 || strcmp(payload, m->payload) != 0) {
            snprintf(why, wn, "item %d arrived as %s on %s, published as %s on %s", id,
                     m->payload, m->topic, payload, topic);
            break;
        }
        seen[id] = true;
    }
    if (why[0])
        return false;
    for (int id = 1; id <= n; id++) {
        if (!seen[id]) {
            snprintf(why, wn, "item %d never arrived", id);
            return false;
        }
    }
    return true;
}

static void wait_broker_stopped(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *paren = strrchr(buf, ')');
        if ((paren && paren[1] == ' ' && paren[2] == 'T') || now_ms() > deadline)
            break;
        sleep_ms(5);
    }
    ck_assert_msg(strstr(buf, ") T") != NULL, "mosquitto did not stop: %s", buf);
}

#define CRASH_N 20 /* items per phase */

/*
 * mosquitto with persistence saved on every change; 20 items go through; then the broker is
 * frozen (SIGSTOP) so the next 20 are sent but never acknowledged, killed (-9) and, while it
 * is down, 20 more are published; then it restarts. Every item must reach the persistent
 * subscriber exactly as published (a Paho re-send would carry another item's topic or
 * payload), the 20 unacknowledged ones re-sent by the backend itself.
 */
START_TEST(every_item_survives_a_broker_kill_and_restart_intact)
{
    int version = _i == 0 ? 4 : 5;
    struct hx_broker_opts bo = {.persistence = true, .autosave_interval_s = 1,
                                .autosave_on_changes = true};
    struct hx_broker *broker = NULL;
    ck_assert_msg(hx_broker_start(&bo, &broker) == HX_OK, "%s", hx_broker_last_error());
    static struct sink k;
    sink_open(&k, hx_broker_uri(broker), version);
    struct hx_backend_opts o = {.uri = hx_broker_uri(broker), .mqtt_version = version,
                                .layout = HX_BACKEND_LAYOUT_PER_DEVICE};
    struct hx_backend *b = NULL;
    ck_assert_msg(hx_backend_create(&o, &b) == HX_OK, "%s", hx_backend_last_error());
    ck_assert_msg(hx_backend_start(b) == HX_OK, "%s", hx_backend_last_error());

    char why[512];
    int id = 0;
    for (int i = 0; i < CRASH_N; i++) {
        char dev[16];
        ++id;
        snprintf(dev, sizeof dev, "scanner-%d", 1 + id % 2);
        char name[16];
        snprintf(name, sizeof name, "Crash %d", id);
        ck_assert_int_eq(hx_backend_publish_item(b, dev, id, name, 1 + id % 7), HX_OK);
    }
    struct hx_ledger_report rep;
    WAIT_REPORT(b, rep, rep.unacked == 0);
    int64_t deadline = now_ms() + WAIT_MS;
    while (!sink_has_all(&k, CRASH_N, why, sizeof why) && now_ms() < deadline)
        sleep_ms(10);
    ck_assert_msg(sink_has_all(&k, CRASH_N, why, sizeof why), "before the crash: %s", why);

    /* frozen: these are sent, never acknowledged */
    pid_t pid = hx_broker_pid(broker);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    wait_broker_stopped(pid);
    for (int i = 0; i < CRASH_N; i++) {
        char dev[16], name[16];
        ++id;
        snprintf(dev, sizeof dev, "scanner-%d", 1 + id % 2);
        snprintf(name, sizeof name, "Crash %d", id);
        ck_assert_int_eq(hx_backend_publish_item(b, dev, id, name, 1 + id % 7), HX_OK);
    }
    hx_backend_report(b, &rep);
    ck_assert_uint_eq(rep.unacked, CRASH_N);
    ck_assert_int_eq(hx_broker_kill(broker), HX_OK);
    deadline = now_ms() + WAIT_MS;
    while (hx_backend_connected(b) && now_ms() < deadline)
        sleep_ms(5);
    ck_assert(!hx_backend_connected(b));

    /* down: held by the backend, not failed */
    for (int i = 0; i < CRASH_N; i++) {
        char dev[16], name[16];
        ++id;
        snprintf(dev, sizeof dev, "scanner-%d", 1 + id % 2);
        snprintf(name, sizeof name, "Crash %d", id);
        ck_assert_msg(hx_backend_publish_item(b, dev, id, name, 1 + id % 7) == HX_OK, "%s",
                      hx_backend_last_error());
    }
    hx_backend_report(b, &rep);
    ck_assert_uint_eq(rep.held_offline, CRASH_N);
    ck_assert_uint_eq(rep.unacked, 2 * CRASH_N);
    ck_assert_uint_eq(rep.publish_failed, 0);

    ck_assert_msg(hx_broker_restart(broker) == HX_OK, "%s", hx_broker_last_error());
    deadline = now_ms() + 3 * WAIT_MS;
    while (!sink_has_all(&k, 3 * CRASH_N, why, sizeof why) && now_ms() < deadline)
        sleep_ms(10);
    ck_assert_msg(sink_has_all(&k, 3 * CRASH_N, why, sizeof why), "after the crash: %s", why);
    WAIT_REPORT(b, rep, rep.unacked == 0);
    ck_assert_uint_eq(rep.published, 3 * CRASH_N);
    ck_assert_uint_eq(rep.republished, CRASH_N); /* exactly the frozen ones */
    ck_assert_uint_ge(rep.reconnects, 1);
    ck_assert_uint_eq(rep.publish_failed, 0);
    ck_assert(hx_backend_connected(b));

    hx_backend_free(b);
    sink_close(&k);
    hx_broker_free(broker);
}
END_TEST

static Suite *backend_suite(void)
{
    Suite *s = suite_create("hx_backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_published_item_reaches_a_device_as_the_exact_json);
    tcase_add_test(tc, a_registration_is_stored_once_and_shows_in_recent_rows);
    tcase_add_test(tc, latency_percentiles_stay_exact_across_reports_between_waves);
    tcase_add_test(tc, the_same_key_twice_is_one_row_and_one_duplicate_delivery);
    tcase_add_test(tc, two_keys_for_one_item_count_as_registered_twice);
    tcase_add_test(tc, inventory_queries_are_answered_found_or_not_on_the_device_reply_topic);
    tcase_add_test(tc, malformed_registrations_are_counted_and_the_backend_keeps_working);
    tcase_add_test(tc, items_never_registered_are_lost_and_unknown_items_are_counted);
    tcase_add_test(tc, a_file_ledger_holds_the_rows_after_stop);
    tcase_add_test(tc, the_per_device_layout_uses_each_device_topics);
    tcase_add_test(tc, latency_figures_are_positive_and_ordered);
    tcase_add_test(tc, an_mqtt5_backend_with_a_password_works_and_a_wrong_one_is_refused);
    tcase_add_test(tc, an_mqtt5_backend_counts_the_items_the_broker_refuses_and_only_those);
    tcase_add_test(tc, an_mqtt5_backend_keeps_to_the_brokers_receive_maximum);
    tcase_add_test(tc, the_backend_reconnects_and_resubscribes_after_a_broker_restart);
    tcase_add_test(tc, bad_arguments_and_an_absent_broker_give_errors_not_crashes);
    tcase_add_test(tc, raw_payloads_reach_the_wire_unchanged);
    tcase_add_test(tc, the_backend_works_over_tls);
    tcase_add_test(tc, items_published_from_four_threads_are_all_recorded_with_distinct_ids);
    tcase_add_test(tc, injected_messages_are_processed_without_a_broker);
    tcase_add_loop_test(tc, every_item_survives_a_broker_kill_and_restart_intact, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backend_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
