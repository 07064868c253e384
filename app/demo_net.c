/*
 * demo_net.c - the demo's cuttable network link on the harness fault proxy (demo_net.h).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_net.h"
#include "hx/proxy.h"

struct demo_net {
    struct hx_proxy_hub *hub;
    struct hx_proxy *proxy;   /* belongs to hub */
    char device_uri[64];
    bool cut;
};

int demo_net_parse_uri(const char *uri, char *host, size_t cap, unsigned *port)
{
    const char *rest, *colon, *end;
    char *stop;
    unsigned long p;

    if (strncmp(uri, "tcp://", 6) == 0)
        rest = uri + 6;
    else if (strncmp(uri, "mqtt://", 7) == 0)
        rest = uri + 7;
    else
        return 1;
    if (*rest == '[') { /* [v6]:port */
        end = strchr(rest, ']');
        if (!end || end[1] != ':')
            return -1;
        colon = end + 1;
        rest++;
    } else {
        colon = strrchr(rest, ':');
        if (!colon)
            return -1;
        end = colon;
    }
    if ((size_t)(end - rest) >= cap || end == rest)
        return -1;
    memcpy(host, rest, (size_t)(end - rest));
    host[end - rest] = '\0';
    p = strtoul(colon + 1, &stop, 10);
    if (stop == colon + 1 || (*stop && *stop != '/') || p == 0 || p > 65535)
        return -1;
    *port = (unsigned)p;
    return 0;
}

int demo_net_open(const char *broker_uri, struct demo_net **out, char *err, size_t cap)
{
    struct demo_net *n = NULL;
    char host[256];
    unsigned port = 0;
    int rc;

    *out = NULL;
    rc = demo_net_parse_uri(broker_uri, host, sizeof(host), &port);
    if (rc == 1) {
        snprintf(err, cap, "the network cut (n) needs a tcp:// broker: the fault proxy reads "
                 "MQTT frames, which %s hides; the device connects directly", broker_uri);
        return 1;
    }
    if (rc < 0) {
        snprintf(err, cap, "cannot read host and port in '%s' (expected tcp://host:port)",
                 broker_uri);
        return -1;
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        snprintf(err, cap, "out of memory");
        return -1;
    }
    if (hx_proxy_hub_create(NULL, &n->hub) != HX_OK ||
        hx_proxy_add(n->hub, host, (uint16_t)port, 0, &n->proxy) != HX_OK ||
        hx_proxy_set_name(n->proxy, "demo-link") != HX_OK ||
        hx_proxy_hub_start(n->hub) != HX_OK) {
        snprintf(err, cap, "could not start the fault proxy to %s: %s", broker_uri,
                 hx_proxy_last_error());
        demo_net_free(n);
        return -1;
    }
    snprintf(n->device_uri, sizeof(n->device_uri), "tcp://127.0.0.1:%u",
             (unsigned)hx_proxy_port(n->proxy));
    *out = n;
    return 0;
}

const char *demo_net_device_uri(const struct demo_net *n)
{
    return n->device_uri;
}

int demo_net_port(const struct demo_net *n)
{
    return (int)hx_proxy_port(n->proxy);
}

int demo_net_cut(struct demo_net *n, char *err, size_t cap)
{
    int cut;

    /* Refuse first, so the device cannot slip a reconnect in between the two steps. */
    if (hx_proxy_down(n->proxy, HX_PROXY_DOWN_CLOSED) != HX_OK) {
        snprintf(err, cap, "proxy refused to go down: %s", hx_proxy_last_error());
        return -1;
    }
    cut = hx_proxy_cut(n->proxy, HX_PROXY_CUT_RST);
    if (cut < 0) {
        snprintf(err, cap, "proxy could not cut the link: %s", hx_proxy_last_error());
        return -1;
    }
    n->cut = true;
    return cut;
}

int demo_net_restore(struct demo_net *n, char *err, size_t cap)
{
    if (hx_proxy_heal(n->proxy) != HX_OK) {
        snprintf(err, cap, "proxy could not heal the link: %s", hx_proxy_last_error());
        return -1;
    }
    n->cut = false;
    return 0;
}

bool demo_net_is_cut(const struct demo_net *n)
{
    return n->cut;
}

void demo_net_free(struct demo_net *n)
{
    if (!n)
        return;
    hx_proxy_hub_free(n->hub); /* stops the thread, frees the proxy */
    free(n);
}
