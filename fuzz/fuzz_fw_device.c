/*
 * fuzz_fw_device.c - libFuzzer target for a whole scanner (firmware_core) driven by hostile
 * events: corrupt flash, arbitrary messages on its topics, acknowledgements of unknown
 * tokens, SUBACKs granted or refused, connection churn, wrong tags, random buttons, time jumps and reboots.
 *
 * The input is a flash image followed by a script. Bytes 0..1: length L of the stored
 * outbox, then L bytes of it; one byte: length S of the stored sequence record, then S
 * bytes; the rest is a list of events, one opcode byte each plus its arguments (see
 * run_event). The platform is firmware_core's own test double (fw_test_platform.c): a fake
 * clock, a recording network, a RAM "flash". After every event the device's promises are
 * checked: bounded queue and outbox, acknowledged <= sent, every registration it publishes
 * is a JSON object carrying its idempotency key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fw/fw_codec.h"
#include "fw/fw_device.h"
#include "fw_test_platform.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

struct reader {
    const uint8_t *p;
    size_t n;
};

static int rd_u8(struct reader *r)
{
    if (r->n == 0)
        return -1;
    r->n--;
    return *r->p++;
}

static size_t rd_bytes(struct reader *r, uint8_t *out, size_t want)
{
    size_t k = want < r->n ? want : r->n;
    memcpy(out, r->p, k);
    r->p += k;
    r->n -= k;
    return k;
}

/* Static: the platform double is large (it records 512 publishes). */
static struct fwt_platform plat;
static struct fw_device dev;
static struct fw_device_config cfg;
static int pubs_checked; /* recorded publishes already checked */

static void power_on(void)
{
    check(fw_device_init(&dev, &cfg, &plat.ports) == FW_OK);
    fw_device_start(&dev);
}

static void check_invariants(void)
{
    struct fw_status st;
    fw_device_status(&dev, &st);
    const struct fw_stats *s = fw_device_stats(&dev);
    check(st.pending <= FW_PENDING_ITEMS);
    check(st.outbox <= FW_OUTBOX_LEN);
    check(st.outbox_in_flight <= st.outbox);
    check(s->registrations_acked <= s->registrations_sent);
    check(s->items_queued <= s->items_received);
    const char *reg_topic = fw_device_topic_item_registered(&dev);
    for (int i = pubs_checked; i < plat.npubs; i++) {
        if (strcmp(plat.pubs[i].topic, reg_topic) != 0)
            continue;
        cJSON *j = cJSON_ParseWithLength(plat.pubs[i].payload, plat.pubs[i].len);
        check(j != NULL && cJSON_IsObject(j));
        check(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "item_id")));
        check(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "seq")));
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "device_id");
        check(cJSON_IsString(id) && strcmp(id->valuestring, cfg.device_id) == 0);
        cJSON_Delete(j);
    }
    pubs_checked = plat.npubs;
}

static void run_event(struct reader *r)
{
    int op = rd_u8(r);
    if (op < 0)
        return;
    uint8_t buf[1200];
    switch (op % 11) {
    case 0: /* connected, session present or not; its SUBACKs granted, refused or later */
        fw_device_on_connected(&dev, (op >> 4) & 1);
        if (op & 0x40)
            fwt_suback_all(&plat, &dev, op & 0x20 ? 0x80 : (op >> 7));
        break;
    case 1:
        fw_device_on_connection_lost(&dev, "fuzz: lost");
        break;
    case 2:
        fw_device_on_connect_failed(&dev, rd_u8(r) - 128, "fuzz: refused");
        break;
    case 3:   /* raw message on the item topic, the reply topic or any topic */
    case 4: {
        int sel = rd_u8(r), hi = rd_u8(r), lo = rd_u8(r);
        if (hi < 0 || lo < 0)
            return;
        size_t len = rd_bytes(r, buf, ((size_t)(hi & 0x07) << 8 | (size_t)lo) % sizeof buf);
        const char *topic = (sel & 3) == 0   ? fw_device_topic_item_registration(&dev)
                            : (sel & 3) == 1 ? fw_device_topic_inventory_reply(&dev)
                            : (sel & 3) == 2 ? "scanners/other/item_registration"
                                             : "";
        fw_device_on_message(&dev, topic, buf, len, (sel >> 2) & 1, (sel >> 3) & 1);
        break;
    }
    case 5: { /* a well-formed item with a small id (duplicates and a full queue happen) */
        int id = rd_u8(r), qty = rd_u8(r);
        if (id < 0 || qty < 0)
            return;
        char json[128];
        fwt_item_json(json, sizeof json, id % 24 + 1, "Fuzz item", qty % 3 + 1);
        fw_device_on_message(&dev, fw_device_topic_item_registration(&dev), json, strlen(json),
                             1, id & 0x80);
        break;
    }
    case 6: { /* acknowledge a recorded publish, or a token nobody issued */
        int k = rd_u8(r);
        if (k < 0)
            return;
        uint32_t token = plat.npubs > 0 && k < 200 ? plat.pubs[k % plat.npubs].token
                                                   : (uint32_t)k * 7919u;
        fw_device_on_published(&dev, token);
        break;
    }
    case 7: { /* a tag of any length 0..12 */
        int len = rd_u8(r);
        if (len < 0)
            return;
        size_t n = rd_bytes(r, buf, (size_t)len % 13);
        (void)fw_device_on_tag(&dev, buf, n);
        break;
    }
    case 8:
        fw_device_on_button(&dev, (enum fw_button)(op >> 4) % 3);
        break;
    case 9: { /* time passes: up to ~65 s */
        int t = rd_u8(r);
        if (t < 0)
            return;
        plat.now += (uint64_t)t * (op & 0x80 ? 256u : 10u);
        fw_device_tick(&dev, plat.now);
        break;
    }
    case 10: /* clean power-off and reboot: the flash survives */
        if (op & 0x80)
            fw_device_stop(&dev);
        power_on();
        break;
    }
    /* Keep the double's publish log from filling up (it would refuse publishes). */
    check_invariants();
    if (plat.npubs > FWT_MAX_PUBS - 64) {
        fwt_clear_calls(&plat);
        pubs_checked = 0;
    }
    if ((op & 0x30) == 0x30)
        fw_device_framebuffer(&dev); /* render now and then: the screens read the state */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    fwt_init(&plat, false);
    pubs_checked = 0;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "scanner-1";
    cfg.layout = (size > 0 && (data[0] & 0x80)) ? FW_LAYOUT_PER_DEVICE : FW_LAYOUT_SEED;

    /* Flash image: corrupt or not, the device must start. */
    uint8_t flash[1024];
    int hi = rd_u8(&r), lo = rd_u8(&r);
    if (hi >= 0 && lo >= 0) {
        size_t len = rd_bytes(&r, flash, ((size_t)(hi & 0x7f) << 8 | (size_t)lo) % 1024);
        if (len > 0)
            fwt_storage_put(&plat, "outbox", flash, len);
    }
    int slen = rd_u8(&r);
    if (slen > 0) {
        size_t len = rd_bytes(&r, flash, (size_t)slen % 16);
        if (len > 0)
            fwt_storage_put(&plat, "seq", flash, len);
    }
    power_on();
    check_invariants();
    for (int steps = 0; r.n > 0 && steps < 2000; steps++)
        run_event(&r);
    return 0;
}
