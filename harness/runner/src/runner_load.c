/*
 * runner_load.c - what the backend publishes: the `backend` block's load (a thread that
 * starts at time zero) and the items / malformed items of `publish` steps.
 *
 * Load: `items N` good items in total (per-device layout: round-robin over the devices) or
 * `items N per device`, at `rate` messages per second (as fast as possible without one),
 * with `malformed M` hostile payloads spread evenly among them, the kinds taken in turn.
 * Good items go through hx_backend_publish_item (so the ledger knows them); malformed ones
 * through hx_backend_publish_raw (never recorded as items).
 *
 * Malformed payloads: one per enum scn_reject kind, each built to trip exactly that check
 * of the device's decoder, in the order the decoder checks (docs/protocol.md "Item").
 */
#include "runner_internal.h"

#include <stdlib.h>
#include <string.h>

static int item_topic(const struct runner *r, uint32_t num, char *buf, size_t cap)
{
    if (num == 0)
        return snprintf(buf, cap, "item_registration");
    return snprintf(buf, cap, "scanners/%s/item_registration", r->devs[num - 1].id);
}

int runner_publish_item(struct runner *r, uint32_t num)
{
    int32_t id = hx_backend_next_item_id(r->backend);
    char name[32];
    snprintf(name, sizeof name, "Item %d", (int)id);
    int rc = hx_backend_publish_item(r->backend, num ? r->devs[num - 1].id : NULL, id, name,
                                     1 + (int32_t)(id % 3));
    if (rc == 0)
        atomic_fetch_add(&r->load_published, 1);
    return rc;
}

int runner_publish_malformed(struct runner *r, uint32_t num, enum scn_reject kind)
{
    char topic[160];
    item_topic(r, num, topic, sizeof topic);
    char buf[1300];
    size_t len = 0;
    switch (kind) {
    case SCN_REJECT_OVERSIZE: /* valid JSON, but over FW_INBOUND_MAX (1024) bytes */
        len = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":7,\"item_name\":\"x\","
                                                "\"tag_quantity\":1,\"pad\":\"");
        memset(buf + len, 'p', 1100);
        len += 1100;
        len += (size_t)snprintf(buf + len, sizeof buf - len, "\"}");
        break;
    case SCN_REJECT_NOT_UTF8: /* an overlong encoding of '/' */
        len = (size_t)snprintf(buf, sizeof buf,
                               "{\"item_id\":7,\"item_name\":\"a\xC0\xAF\",\"tag_quantity\":1}");
        break;
    case SCN_REJECT_INVALID_JSON:
        len = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":7,\"item_name\":");
        break;
    case SCN_REJECT_TRAILING_GARBAGE:
        len = (size_t)snprintf(buf, sizeof buf,
                               "{\"item_id\":7,\"item_name\":\"x\",\"tag_quantity\":1} xyz");
        break;
    case SCN_REJECT_NOT_OBJECT:
        len = (size_t)snprintf(buf, sizeof buf, "[7,\"x\",1]");
        break;
    case SCN_REJECT_MISSING_FIELD:
        len = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":7,\"item_name\":\"x\"}");
        break;
    case SCN_REJECT_WRONG_TYPE:
        len = (size_t)snprintf(buf, sizeof buf,
                               "{\"item_id\":\"7\",\"item_name\":\"x\",\"tag_quantity\":1}");
        break;
    case SCN_REJECT_OUT_OF_RANGE:
        len = (size_t)snprintf(buf, sizeof buf,
                               "{\"item_id\":0,\"item_name\":\"x\",\"tag_quantity\":1}");
        break;
    case SCN_REJECT_NAME_TOO_LONG:
        len = (size_t)snprintf(buf, sizeof buf,
                               "{\"item_id\":7,\"item_name\":\"%s\",\"tag_quantity\":1}",
                               "a name that is far longer than thirty-two bytes");
        break;
    case SCN_REJECT_TOO_DEEP: /* a valid item (under 1 KiB) with a field 450 arrays deep */
        len = (size_t)snprintf(buf, sizeof buf, "{\"item_id\":7,\"item_name\":\"x\","
                                                "\"tag_quantity\":1,\"p\":");
        memset(buf + len, '[', 450);
        memset(buf + len + 450, ']', 450);
        len += 900;
        buf[len++] = '}';
        break;
    case SCN_REJECT_UNKNOWN_TOPIC: /* a well-formed item where the device listens to nothing */
        item_topic(r, num, topic, sizeof topic);
        strncat(topic, "/stray", sizeof topic - strlen(topic) - 1);
        len = (size_t)snprintf(buf, sizeof buf,
                               "{\"item_id\":7,\"item_name\":\"x\",\"tag_quantity\":1}");
        break;
    default:
        return HX_ERR_INVAL;
    }
    return hx_backend_publish_raw(r->backend, topic, buf, len, 1);
}

/* The kinds `malformed M [kinds]` uses, in order. */
static size_t load_kinds(const struct scn_backend *b, enum scn_reject *out)
{
    size_t n = 0;
    uint32_t mask = b->malformed_kinds;
    if (mask == 0)
        mask = (1u << SCN_REJECT_UNKNOWN_TOPIC) - 1u; /* all ten payload kinds */
    for (int k = 0; k < SCN_REJECT_COUNT; k++)
        if (mask & (1u << k))
            out[n++] = (enum scn_reject)k;
    return n;
}

/* Round-robin over the devices; a device of a seed-layout group means the shared topic. */
static uint32_t load_target(const struct runner *r, uint64_t k)
{
    uint32_t num = (uint32_t)(k % r->n_devs) + 1;
    return r->devs[num - 1].group->layout == SCN_LAYOUT_PER_DEVICE ? num : 0;
}

static void *load_main(void *arg)
{
    struct runner *r = arg;
    const struct scn_backend *b = &r->s->backend;
    uint64_t good = b->per_device ? b->items * r->n_devs : b->items;
    uint64_t bad = b->malformed;
    uint64_t total = good + bad;
    enum scn_reject kinds[SCN_REJECT_COUNT];
    size_t n_kinds = load_kinds(b, kinds);
    uint64_t g = 0, m = 0;
    int64_t t0 = runner_now_ms();
    for (uint64_t j = 0; j < total && !atomic_load(&r->load_stop); j++) {
        if (b->rate_per_s > 0) {
            int64_t due = t0 + (int64_t)(j * 1000u / b->rate_per_s);
            while (!atomic_load(&r->load_stop) && runner_now_ms() < due)
                runner_sleep_ms(due - runner_now_ms() < 20 ? due - runner_now_ms() : 20);
        }
        /* Malformed ones at evenly spaced positions among the good ones. */
        bool is_bad = bad > 0 && (j + 1) * bad / total > j * bad / total;
        if (is_bad) {
            runner_publish_malformed(r, load_target(r, m), kinds[m % n_kinds]);
            m++;
        } else {
            runner_publish_item(r, load_target(r, g));
            g++;
        }
    }
    return NULL;
}

int runner_load_start(struct runner *r)
{
    const struct scn_backend *b = &r->s->backend;
    if (b->items == 0 && b->malformed == 0)
        return 0;
    atomic_store(&r->load_stop, false);
    if (pthread_create(&r->load_thread, NULL, load_main, r) != 0)
        return HX_ERR_SYS;
    r->load_started = true;
    return 0;
}

void runner_load_stop(struct runner *r)
{
    if (!r->load_started)
        return;
    atomic_store(&r->load_stop, true);
    pthread_join(r->load_thread, NULL);
    r->load_started = false;
}
