/*
 * proxy_fault.c - the fault commands of hx/proxy.h: drop, delay, hold, duplicate, cut,
 * black-hole, throttle, down, heal and inject, and the counters.
 *
 * Each command takes the hub lock from the caller's thread and changes the proxy's fault
 * settings, which proxy_link.c reads for every packet; a command that releases or closes
 * something (hold off, heal, cut, inject) acts on the proxy's links at once.
 */
#include "proxy_internal.h"

#include <string.h>

/* The arguments every per-direction command takes: a proxy, a direction, a packet type. */
static int check_args(const struct hx_proxy *p, enum hx_proxy_dir dir, int type, const char *fn)
{
    if (p == NULL)
        return proxy__fail(HX_ERR_INVAL, "%s: proxy is NULL", fn);
    if ((int)dir < 0 || (int)dir >= HX_PROXY_DIRS)
        return proxy__fail(HX_ERR_INVAL, "%s: direction %d is neither HX_PROXY_TO_BROKER nor "
                           "HX_PROXY_TO_DEVICE", fn, (int)dir);
    if (type < 0 || type >= HX_MQTT_TYPE_COUNT)
        return proxy__fail(HX_ERR_INVAL, "%s: packet type %d is not 0 (any) .. 15", fn, type);
    return HX_OK;
}

int hx_proxy_drop(struct hx_proxy *p, enum hx_proxy_dir dir, int type, int count)
{
    int rc = check_args(p, dir, type, "hx_proxy_drop");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) p->drop[dir][type] = count;
    return HX_OK;
}

int hx_proxy_delay(struct hx_proxy *p, enum hx_proxy_dir dir, int type, uint32_t ms)
{
    int rc = check_args(p, dir, type, "hx_proxy_delay");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) p->delay_ms[dir][type] = ms;
    return HX_OK;
}

int hx_proxy_hold(struct hx_proxy *p, enum hx_proxy_dir dir, int type, bool on)
{
    int rc = check_args(p, dir, type, "hx_proxy_hold");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) {
        int64_t now = proxy__now_us();
        p->delay_ms[dir][type] = on ? HOLD_MS : 0;
        if (!on) {
            for (struct link *l = p->links; l != NULL; l = l->next)
                for (struct chunk *c = l->f[dir].head; c != NULL; c = c->next)
                    if (c->release_us == HELD_US)
                        c->release_us = now;
            for (struct link *l = p->links, *next; l != NULL; l = next) {
                next = l->next;
                link__pump(l, now);
            }
        }
    }
    return HX_OK;
}

int hx_proxy_duplicate(struct hx_proxy *p, enum hx_proxy_dir dir, int count)
{
    int rc = check_args(p, dir, 0, "hx_proxy_duplicate");
    if (rc != HX_OK)
        return rc;
    if (count < 0)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_duplicate: count %d is negative", count);
    LOCKED(p) p->dup[dir] = count;
    return HX_OK;
}

int hx_proxy_cut(struct hx_proxy *p, enum hx_proxy_cut_mode how)
{
    int n = 0;

    if (p == NULL || (how != HX_PROXY_CUT_RST && how != HX_PROXY_CUT_FIN))
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_cut: a proxy and HX_PROXY_CUT_RST or _FIN "
                           "are required");
    LOCKED(p) {
        while (p->links != NULL) {
            struct link *l = p->links;
            struct ev_args a = { .kind = HX_PROXY_EV_CUT, .link_id = l->id, .dir = -1, .type = -1 };
            p->c.cuts++;
            n++;
            proxy__emit(p, &a, "cut the link with %s", how == HX_PROXY_CUT_RST ? "RST" : "FIN");
            link__close(l, how == HX_PROXY_CUT_RST ? CLOSE_RST : CLOSE_FIN, "cut");
        }
    }
    return n;
}

/* Close links that a black-hole held half-open; release the rest. Hub lock held. */
static void proxy__after_blackhole(struct hx_proxy *p)
{
    int64_t now = proxy__now_us();
    struct link *l = p->links;

    while (l != NULL) {
        struct link *next = l->next;
        if (l->fd[0] < 0 || l->fd[1] < 0 || l->f[0].src_eof || l->f[1].src_eof)
            link__close(l, CLOSE_FIN, "one side closed during the black-hole");
        else
            link__pump(l, now);
        l = next;
    }
}

int hx_proxy_blackhole(struct hx_proxy *p, bool on)
{
    if (p == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_blackhole: proxy is NULL");
    LOCKED(p) {
        bool was = p->blackhole;
        p->blackhole = on;
        if (was && !on)
            proxy__after_blackhole(p);
    }
    return HX_OK;
}

int hx_proxy_throttle(struct hx_proxy *p, enum hx_proxy_dir dir, uint32_t bytes_per_s)
{
    int rc = check_args(p, dir, 0, "hx_proxy_throttle");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) {
        int64_t now = proxy__now_us();
        p->rate[dir] = bytes_per_s;
        for (struct link *l = p->links; l != NULL; l = l->next) {
            l->f[dir].tokens_us = 0; /* a fresh bucket */
        }
        for (struct link *l = p->links, *next; l != NULL; l = next) {
            next = l->next;
            link__pump(l, now);
        }
    }
    return HX_OK;
}

/* Set the down mode; hub lock held. */
static int proxy__set_down(struct hx_proxy *p, enum hx_proxy_down_mode mode)
{
    int rc = HX_OK;

    if (mode == HX_PROXY_DOWN_CLOSED && p->listen_fd >= 0)
        proxy__ep_del_close(p->hub, &p->listen_fd);
    if (mode != HX_PROXY_DOWN_CLOSED && p->listen_fd < 0)
        rc = proxy__listen(p, p->port);
    if (rc == HX_OK)
        p->down = mode;
    return rc;
}

int hx_proxy_down(struct hx_proxy *p, enum hx_proxy_down_mode mode)
{
    int rc = HX_OK;

    if (p == NULL || (int)mode < HX_PROXY_UP || mode > HX_PROXY_DOWN_CLOSED)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_down: a proxy and a valid mode are required");
    LOCKED(p) rc = proxy__set_down(p, mode);
    return rc;
}

int hx_proxy_heal(struct hx_proxy *p)
{
    int rc = HX_OK;

    if (p == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_heal: proxy is NULL");
    LOCKED(p) {
        bool was_hole = p->blackhole;
        memset(p->drop, 0, sizeof(p->drop));
        memset(p->delay_ms, 0, sizeof(p->delay_ms));
        memset(p->dup, 0, sizeof(p->dup));
        memset(p->rate, 0, sizeof(p->rate));
        p->blackhole = false;
        rc = proxy__set_down(p, HX_PROXY_UP);
        /* Release packets still held by a delay. */
        for (struct link *l = p->links; l != NULL; l = l->next)
            for (int d = 0; d < HX_PROXY_DIRS; d++)
                for (struct chunk *c = l->f[d].head; c != NULL; c = c->next)
                    c->release_us = 0;
        if (was_hole) {
            proxy__after_blackhole(p);
        } else {
            int64_t now = proxy__now_us();
            for (struct link *l = p->links, *next; l != NULL; l = next) {
                next = l->next;
                link__pump(l, now);
            }
        }
    }
    return rc;
}

int hx_proxy_inject(struct hx_proxy *p, enum hx_proxy_malformed what)
{
    static const uint8_t bad_len[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x01 };
    static const uint8_t truncated[] = { 0x30, 0x40, 0x00, 0x05, 't', 'o', 'p', 'i', 'c', 'x' };
    static const uint8_t oversize[] = { 0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x05, 't', 'o', 'p',
                                        'i', 'c', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x' };
    static const uint8_t type0[] = { 0x00, 0x00 };
    const uint8_t *b;
    size_t n;
    int count = 0;

    switch (what) {
    case HX_PROXY_BAD_REMAINING_LENGTH: b = bad_len; n = sizeof(bad_len); break;
    case HX_PROXY_TRUNCATED_THEN_CLOSE: b = truncated; n = sizeof(truncated); break;
    case HX_PROXY_OVERSIZE: b = oversize; n = sizeof(oversize); break;
    case HX_PROXY_UNKNOWN_TYPE0: b = type0; n = sizeof(type0); break;
    default:
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_inject: unknown malformed kind %d", (int)what);
    }
    if (p == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_inject: proxy is NULL");
    LOCKED(p) {
        int64_t now = proxy__now_us();
        for (struct link *l = p->links, *next; l != NULL; l = next) {
            struct ev_args a = { .kind = HX_PROXY_EV_INJECTED, .link_id = l->id,
                                 .dir = HX_PROXY_TO_DEVICE, .type = -1, .bytes = n };
            next = l->next;
            if (l->fd[0] < 0)
                continue;
            if (flow__push(&l->f[HX_PROXY_TO_DEVICE], b, n, now,
                           what == HX_PROXY_TRUNCATED_THEN_CLOSE) != HX_OK)
                continue;
            p->c.injected++;
            count++;
            proxy__emit(p, &a, "injected %zu malformed bytes (kind %d) to device", n, (int)what);
            link__pump(l, now);
        }
    }
    return count;
}

int hx_proxy_counters(struct hx_proxy *p, struct hx_proxy_counters *out)
{
    if (p == NULL || out == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_counters: proxy and out are required");
    LOCKED(p) *out = p->c;
    return HX_OK;
}
