/*
 * runner_actions.c - the scenario's action steps, each carried out where it belongs:
 * faults to the device's proxy, broker actions to hx_broker (or runner_broker.c for a
 * broker the runner did not start), operator and device actions onto the device's owning
 * thread (sim_device_post_* / sim_device_stop / start), publishes and commands to the
 * backend role.
 */
#include "runner_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int proxy_dirs(enum scn_direction d, enum hx_proxy_dir *out)
{
    if (d == SCN_DIR_TO_BROKER) {
        out[0] = HX_PROXY_TO_BROKER;
        return 1;
    }
    if (d == SCN_DIR_TO_DEVICE) {
        out[0] = HX_PROXY_TO_DEVICE;
        return 1;
    }
    out[0] = HX_PROXY_TO_BROKER;
    out[1] = HX_PROXY_TO_DEVICE;
    return 2;
}

static int fault_one(const struct scn_step *st, struct runner_dev *d, char *err, size_t cap)
{
    struct hx_proxy *p = d->proxy;
    enum hx_proxy_dir dirs[2];
    int nd, rc = 0;
    if (!p) {
        snprintf(err, cap, "%s is not behind a fault proxy (its group needs 'link proxy')", d->id);
        return HX_ERR_INVAL;
    }
    switch (st->action) {
    case SCN_ACT_DROP:
        nd = proxy_dirs(st->u.fault.dir, dirs);
        for (int i = 0; i < nd && rc == 0; i++)
            rc = hx_proxy_drop(p, dirs[i], (int)st->u.fault.packet,
                               st->u.fault.count ? (int)st->u.fault.count : -1);
        break;
    case SCN_ACT_DELAY:
        nd = proxy_dirs(st->u.fault.dir, dirs);
        for (int i = 0; i < nd && rc == 0; i++)
            rc = hx_proxy_delay(p, dirs[i], (int)st->u.fault.packet, (uint32_t)st->u.fault.delay_ms);
        break;
    case SCN_ACT_DUPLICATE:
        nd = proxy_dirs(st->u.fault.dir, dirs);
        for (int i = 0; i < nd && rc == 0; i++)
            rc = hx_proxy_duplicate(p, dirs[i], (int)st->u.fault.count);
        break;
    case SCN_ACT_CUT:
        rc = hx_proxy_cut(p, st->u.rst ? HX_PROXY_CUT_RST : HX_PROXY_CUT_FIN);
        rc = rc < 0 ? rc : 0;
        break;
    case SCN_ACT_BLACKHOLE:
    case SCN_ACT_NETWORK_DOWN: /* the network is gone: nothing passes, no FIN, no RST */
        rc = hx_proxy_blackhole(p, true);
        break;
    case SCN_ACT_NETWORK_UP:
        rc = hx_proxy_blackhole(p, false);
        break;
    case SCN_ACT_THROTTLE: {
        uint32_t bps = st->u.bytes_per_s > UINT32_MAX ? UINT32_MAX : (uint32_t)st->u.bytes_per_s;
        rc = hx_proxy_throttle(p, HX_PROXY_TO_BROKER, bps);
        if (rc == 0)
            rc = hx_proxy_throttle(p, HX_PROXY_TO_DEVICE, bps);
        break;
    }
    case SCN_ACT_REFUSE:
        rc = hx_proxy_down(p, HX_PROXY_DOWN_RESET);
        break;
    case SCN_ACT_HEAL:
        rc = hx_proxy_heal(p);
        break;
    case SCN_ACT_INJECT:
        rc = hx_proxy_inject(p, (enum hx_proxy_malformed)st->u.frame);
        if (rc == 0) {
            snprintf(err, cap, "%s has no open link to inject into", d->id);
            return HX_ERR_INVAL;
        }
        rc = rc < 0 ? rc : 0;
        break;
    default:
        break;
    }
    if (rc != 0)
        snprintf(err, cap, "proxy of %s: %s", d->id, hx_proxy_last_error());
    return rc;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

/* The broker's log from byte offset on (malloc'ed, NUL-terminated), or NULL. */
static char *log_tail(const char *path, long offset)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    long end = 0;
    if (fseek(f, 0, SEEK_END) == 0 && (end = ftell(f)) >= offset && fseek(f, offset, SEEK_SET) == 0) {
        buf = malloc((size_t)(end - offset) + 1);
        if (buf) {
            size_t n = fread(buf, 1, (size_t)(end - offset), f);
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/*
 * Clean power-off of the selected devices, finished only when the broker has seen each one
 * go. The firmware publishes "offline" and asks for a DISCONNECT, but Paho sends it only
 * after in-flight messages completed (up to 1 s; sim/transport.h): until then the broker
 * still delivers to the old connection, whose QoS 1 messages Paho acknowledges and the
 * stopped firmware never sees. A scenario that publishes right after `power off` means
 * "while it is off", so the step waits for mosquitto's "Client <id> disconnected." (a
 * notice, always logged) of every device that was online; on a broker the runner did not
 * start (no log to read), for the device's client to have sent its DISCONNECT. All devices
 * are stopped first, then waited for together.
 */
static int power_off_set(struct runner *r, const struct runner_sel *sel, char *info, size_t cap)
{
    const char *log = r->broker && hx_broker_running(r->broker) ? hx_broker_log_path(r->broker)
                                                                : NULL;
    long offset = log ? file_size(log) : 0;
    if (runner_refresh(r) != 0)
        return SIM_ERR_NOMEM;
    bool *wait = calloc(sel->n ? sel->n : 1, sizeof *wait);
    if (!wait)
        return SIM_ERR_NOMEM;
    size_t waiting = 0;
    int rc = 0;
    for (size_t i = 0; i < sel->n && rc == 0; i++) {
        struct runner_dev *d = &r->devs[sel->num[i] - 1];
        bool was_online = d->status.online;
        atomic_store(&d->clean_off, true); /* before: its own "offline" is not a Will */
        atomic_store(&d->powered, false);
        rc = sim_device_stop(d->dev);
        if (rc == SIM_ERR_STATE)
            rc = 0; /* already off */
        else if (rc == 0 && was_online) {
            wait[i] = true;
            waiting++;
        }
    }
    int64_t end = runner_now_ms() + 3000 + 5 * (int64_t)waiting;
    while (rc == 0 && waiting > 0) {
        char *tail = log ? log_tail(log, offset) : NULL;
        for (size_t i = 0; i < sel->n; i++) {
            struct runner_dev *d = &r->devs[sel->num[i] - 1];
            char needle[SCN_NAME_MAX + 32];
            snprintf(needle, sizeof needle, "Client %s disconnected", d->id);
            struct sim_device_snapshot snap;
            bool gone = log ? tail && strstr(tail, needle)
                            : sim_device_snapshot(d->dev, &snap) == 0 && !snap.disconnecting;
            if (wait[i] && gone) {
                wait[i] = false;
                waiting--;
            }
        }
        free(tail);
        if (waiting == 0)
            break;
        if (runner_now_ms() >= end) {
            snprintf(info, cap, "%s the disconnect of %zu device%s within %.1f s",
                     log ? "the broker did not log" : "the client did not finish", waiting,
                     waiting == 1 ? "" : "s", (double)(3000 + 5 * (int64_t)waiting) / 1000.0);
            break;
        }
        runner_sleep_ms(20);
    }
    free(wait);
    return rc;
}

int runner_power_on(struct runner *r, struct runner_dev *d)
{
    (void)r;
    int rc = sim_device_start(d->dev);
    if (rc == 0 || rc == SIM_ERR_STATE)
        atomic_store(&d->powered, true);
    return rc == SIM_ERR_STATE ? 0 : rc;
}

/* publish N items | malformed: to each selected device, or as the layout goes. */
static int publish_step(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                        char *err, size_t cap)
{
    int rc = 0;
    uint32_t n = st->u.publish.count;
    if (sel->n == 0) {
        /* As the layout goes: round-robin over per-device devices, else the shared topic. */
        for (uint32_t k = 0; k < n && rc == 0; k++) {
            uint32_t num = (uint32_t)(k % r->n_devs) + 1;
            if (r->devs[num - 1].group->layout != SCN_LAYOUT_PER_DEVICE)
                num = 0;
            rc = st->action == SCN_ACT_PUBLISH_ITEMS
                     ? runner_publish_item(r, num)
                     : runner_publish_malformed(r, num, st->u.publish.kind);
        }
    } else {
        /* N to each selected device. */
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            for (uint32_t k = 0; k < n && rc == 0; k++)
                rc = st->action == SCN_ACT_PUBLISH_ITEMS
                         ? runner_publish_item(r, sel->num[i])
                         : runner_publish_malformed(r, sel->num[i], st->u.publish.kind);
    }
    if (rc != 0)
        snprintf(err, cap, "the backend could not publish: %s", hx_backend_last_error());
    return rc;
}

/* scan tag | random tag | wrong tag on each selected device. */
static int scan_step(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                     char *info, size_t cap)
{
    int rc = 0;
    for (size_t i = 0; i < sel->n && rc == 0; i++) {
        uint8_t uid[SCN_TAG_MAX];
        size_t len;
        if (st->action == SCN_ACT_SCAN_TAG) {
            len = st->u.tag.len;
            memcpy(uid, st->u.tag.uid, len);
        } else if (st->action == SCN_ACT_SCAN_RANDOM) {
            uint64_t a = scn_rng_next(&r->rng), b = scn_rng_next(&r->rng);
            len = 10;
            uid[0] = 0x04;
            memcpy(uid + 1, &a, 8);
            uid[9] = (uint8_t)b;
        } else {
            len = 3;
            uid[0] = 0x04;
            uid[1] = 0xBA;
            uid[2] = 0xD0;
        }
        if (st->action == SCN_ACT_SCAN_RANDOM && sel->n == 1) {
            char hex[32];
            fw_tag_to_hex(uid, len, hex, sizeof hex);
            snprintf(info, cap, "tag %s", hex);
        }
        rc = sim_device_post_tag(r->devs[sel->num[i] - 1].dev, uid, len);
    }
    return rc;
}

/*
 * A power cut: the connection drops without DISCONNECT (the broker publishes the Will);
 * the firmware is not told, and comes back from flash at the next power on. Behind a
 * proxy the link is reset first, because Paho's MQTTAsync_destroy still writes a
 * DISCONNECT on an idle socket (sim/mqtt.h), which a board losing power never sends; on a
 * direct link with Paho the broker usually gets that DISCONNECT and publishes no Will.
 */
static int power_cut(struct runner_dev *d)
{
    atomic_store(&d->powered, false); /* clean_off stays clear: its "offline" is the Will */
    if (d->proxy)
        hx_proxy_cut(d->proxy, HX_PROXY_CUT_RST);
    int rc = sim_device_power_cut(d->dev);
    return rc == SIM_ERR_STATE ? 0 : rc;
}

/* Carry out an action step. Returns 0, or negative with err filled in. */
int runner_action_run(struct runner *r, const struct scn_step *st, const struct runner_sel *sel,
                      char *info, char *err, size_t cap)
{
    int rc = 0;
    switch (st->action) {
    case SCN_ACT_NOTHING:
    case SCN_ACT_EXPECT:
        return 0;
    case SCN_ACT_DROP: case SCN_ACT_DELAY: case SCN_ACT_DUPLICATE: case SCN_ACT_CUT:
    case SCN_ACT_BLACKHOLE: case SCN_ACT_THROTTLE: case SCN_ACT_REFUSE: case SCN_ACT_HEAL:
    case SCN_ACT_INJECT: case SCN_ACT_NETWORK_DOWN: case SCN_ACT_NETWORK_UP:
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = fault_one(st, &r->devs[sel->num[i] - 1], err, cap);
        return rc;
    case SCN_ACT_BROKER_STOP:
    case SCN_ACT_BROKER_KILL:
    case SCN_ACT_BROKER_RESTART:
        if (!r->broker)
            return runner_broker_command(r, st->action, err, cap);
        rc = st->action == SCN_ACT_BROKER_STOP   ? hx_broker_stop(r->broker)
             : st->action == SCN_ACT_BROKER_KILL ? hx_broker_kill(r->broker)
                                                 : hx_broker_restart(r->broker);
        break;
    case SCN_ACT_PUBLISH_ITEMS:
    case SCN_ACT_PUBLISH_MALFORMED:
        return publish_step(r, st, sel, err, cap);
    case SCN_ACT_SCAN_TAG: case SCN_ACT_SCAN_RANDOM: case SCN_ACT_SCAN_WRONG:
        rc = scan_step(r, st, sel, info, cap);
        break;
    case SCN_ACT_CONFIRM: case SCN_ACT_CANCEL: case SCN_ACT_MODE: {
        enum fw_button b = st->action == SCN_ACT_CONFIRM  ? FW_BUTTON_CONFIRM
                           : st->action == SCN_ACT_CANCEL ? FW_BUTTON_CANCEL
                                                          : FW_BUTTON_MODE;
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = sim_device_post_button(r->devs[sel->num[i] - 1].dev, b);
        break;
    }
    case SCN_ACT_OPERATOR_PAUSE:
    case SCN_ACT_OPERATOR_RESUME:
        for (size_t i = 0; i < sel->n; i++)
            atomic_store(&r->devs[sel->num[i] - 1].op_paused, st->action == SCN_ACT_OPERATOR_PAUSE);
        return 0;
    case SCN_ACT_POWER_OFF:
        rc = power_off_set(r, sel, info, cap);
        break;
    case SCN_ACT_POWER_ON:
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = runner_power_on(r, &r->devs[sel->num[i] - 1]);
        break;
    case SCN_ACT_POWER_CUT:
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = power_cut(&r->devs[sel->num[i] - 1]);
        break;
    case SCN_ACT_COMMAND:
    case SCN_ACT_FORGE_COMMAND:
        return runner_command_step(r, st, sel->num, sel->n, info, err, cap);
    case SCN_ACT_RESTART:
        rc = power_off_set(r, sel, info, cap);
        for (size_t i = 0; i < sel->n && rc == 0; i++)
            rc = runner_power_on(r, &r->devs[sel->num[i] - 1]);
        break;
    }
    if (rc != 0 && !*err) {
        if (st->action == SCN_ACT_BROKER_STOP || st->action == SCN_ACT_BROKER_KILL ||
            st->action == SCN_ACT_BROKER_RESTART)
            snprintf(err, cap, "%s", hx_broker_last_error());
        else
            snprintf(err, cap, "%s", sim_strerror(rc));
    }
    return rc;
}
