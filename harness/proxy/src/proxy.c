/*
 * proxy.c - the MQTT-aware fault proxy hub (hx/proxy.h): the hub thread and its epoll loop,
 * the hub and proxy objects, errors and events.
 *
 * One thread per hub runs an epoll loop over every proxy's listening socket and every link's
 * two sockets (level-triggered, non-blocking); what a link does with its bytes is in
 * proxy_link.c, the fault commands in proxy_fault.c. The faults live in the proxy and are
 * read for every packet, so a command takes effect on the next packet.
 *
 * Locking: one mutex per hub ("the hub lock") guards everything. The hub thread holds it
 * except inside epoll_wait; commands take it from the scenario thread and act directly.
 * Objects closed while an epoll batch may still name them (links, proxies) go to a graveyard
 * freed only before the next epoll_wait.
 */
#include "proxy_internal.h"
#include "sim/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_FRAME (1u << 20)
#define DEFAULT_HIGH_WATER (4u << 20)
#define EPOLL_BATCH 128
#define MAX_WAIT_MS 60000

/* ------------------------------------------------------------------------------------------
 * Errors, time, events
 * ---------------------------------------------------------------------------------------- */

static _Thread_local char last_error[512];

int proxy__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof(last_error), fmt, ap);
    va_end(ap);
    return err;
}

const char *hx_proxy_last_error(void)
{
    return last_error[0] ? last_error : "no error";
}

const char *hx_proxy_dir_name(enum hx_proxy_dir dir)
{
    return dir == HX_PROXY_TO_BROKER ? "to broker" : "to device";
}

int64_t proxy__now_us(void)
{
    return (int64_t)sim_clock_us();
}

/* Format and deliver one event; verb is "dropped", "delayed 300 ms", ... */
void proxy__emit(struct hx_proxy *p, const struct ev_args *a, const char *fmt, ...)
{
    struct hx_proxy_hub *hub = p->hub;
    char what[160], text[320], id[32] = "";
    struct hx_proxy_event ev;
    va_list ap;

    if (hub->on_event == NULL && !hub->log_stderr)
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (a->frame != NULL && a->frame->has_packet_id)
        snprintf(id, sizeof(id), " id=%u", a->frame->packet_id);
    if (a->type >= 0 && a->dir >= 0)
        snprintf(text, sizeof(text), "proxy %s: %s %s%s %s (link %" PRIu64 ")", p->name, what,
                 hx_mqtt_type_name(a->type), id, hx_proxy_dir_name(a->dir), a->link_id);
    else
        snprintf(text, sizeof(text), "proxy %s: %s (link %" PRIu64 ")", p->name, what, a->link_id);

    ev = (struct hx_proxy_event){
        .kind = a->kind, .proxy = p, .proxy_name = p->name, .link_id = a->link_id,
        .dir = a->dir, .type = a->type, .bytes = a->bytes, .t_ms = proxy__now_us() / 1000,
        .text = text,
    };
    if (a->frame != NULL) {
        ev.has_packet_id = a->frame->has_packet_id;
        ev.packet_id = a->frame->packet_id;
    }
    if (hub->log_stderr)
        fprintf(stderr, "%s\n", text);
    if (hub->on_event != NULL)
        hub->on_event(hub->event_ctx, &ev);
}

/* ------------------------------------------------------------------------------------------
 * Sockets
 * ---------------------------------------------------------------------------------------- */

void proxy__ep_del_close(struct hx_proxy_hub *hub, int *fd)
{
    if (*fd < 0)
        return;
    (void)epoll_ctl(hub->epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
}

static int listen_on(uint16_t port, uint16_t *bound)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    socklen_t alen = sizeof(a);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return proxy__fail(HX_ERR_SYS, "cannot create a listening socket: %s (raise the "
                           "open-file limit?)", strerror(errno));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 512) != 0) {
        int e = errno;
        close(fd);
        return proxy__fail(HX_ERR_SYS, "cannot listen on 127.0.0.1:%u: %s (pick another port "
                           "or 0)", port, strerror(e));
    }
    if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        int e = errno;
        close(fd);
        return proxy__fail(HX_ERR_SYS, "getsockname on the listening socket failed: %s",
                           strerror(e));
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

int proxy__listen(struct hx_proxy *p, uint16_t port)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->lw };
    int fd = listen_on(port, &p->port);

    if (fd < 0)
        return fd;
    if (epoll_ctl(p->hub->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        close(fd);
        return proxy__fail(HX_ERR_SYS, "epoll_ctl on proxy port %u failed: %s", p->port,
                           strerror(e));
    }
    p->listen_fd = fd;
    p->accept_paused_until = 0;
    return HX_OK;
}

/* ------------------------------------------------------------------------------------------
 * The hub thread
 * ---------------------------------------------------------------------------------------- */

static void hub__bury(struct hx_proxy_hub *hub)
{
    while (hub->dead_links != NULL) {
        struct link *l = hub->dead_links;
        hub->dead_links = l->next_dead;
        link__free(l);
    }
    while (hub->dead_proxies != NULL) {
        struct hx_proxy *p = hub->dead_proxies;
        hub->dead_proxies = p->next_dead;
        free(p->pcap_dir);
        free(p);
    }
}

static void *hub__run(void *arg)
{
    struct hx_proxy_hub *hub = arg;
    struct epoll_event evs[EPOLL_BATCH];

    pthread_mutex_lock(&hub->mu);
    while (!hub->stopping) {
        int64_t now = proxy__now_us(), wake = 0;
        int timeout = -1, n;

        hub__bury(hub);
        for (struct hx_proxy *p = hub->proxies; p != NULL; p = p->next) {
            if (p->accept_paused_until != 0) {
                if (p->accept_paused_until <= now) {
                    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->lw };
                    p->accept_paused_until = 0;
                    if (p->listen_fd >= 0)
                        (void)epoll_ctl(hub->epfd, EPOLL_CTL_MOD, p->listen_fd, &ev);
                } else if (wake == 0 || p->accept_paused_until < wake) {
                    wake = p->accept_paused_until;
                }
            }
            for (struct link *l = p->links; l != NULL; l = l->next)
                if (l->wake_us != 0 && (wake == 0 || l->wake_us < wake))
                    wake = l->wake_us;
        }
        if (wake != 0)
            timeout = wake <= now ? 0
                    : (wake - now) / 1000 >= MAX_WAIT_MS ? MAX_WAIT_MS
                    : (int)((wake - now + 999) / 1000);
        pthread_mutex_unlock(&hub->mu);
        n = epoll_wait(hub->epfd, evs, EPOLL_BATCH, timeout);
        pthread_mutex_lock(&hub->mu);
        now = proxy__now_us();
        for (int i = 0; i < n && !hub->stopping; i++) {
            struct watch *w = evs[i].data.ptr;
            if (w->kind == WATCH_WAKE) {
                uint64_t v;
                (void)read(hub->wakefd, &v, sizeof(v));
            } else if (w->kind == WATCH_LISTEN) {
                struct hx_proxy *p = w->obj;
                if (!p->dead)
                    proxy__on_listen(p, now);
            } else {
                link__on_event(w->obj, w->side, evs[i].events, now);
            }
        }
        /* Timers: release delayed packets, refill throttles. */
        now = proxy__now_us();
        for (struct hx_proxy *p = hub->proxies; p != NULL; p = p->next) {
            struct link *l = p->links;
            while (l != NULL) {
                struct link *next = l->next; /* pump may close l */
                if (l->wake_us != 0 && l->wake_us <= now)
                    link__pump(l, now);
                l = next;
            }
        }
    }
    pthread_mutex_unlock(&hub->mu);
    return NULL;
}

static void hub__wake(struct hx_proxy_hub *hub)
{
    uint64_t one = 1;
    (void)!write(hub->wakefd, &one, sizeof(one));
}

/* ------------------------------------------------------------------------------------------
 * Public API: hub
 * ---------------------------------------------------------------------------------------- */

int hx_proxy_hub_create(const struct hx_proxy_hub_opts *opts, struct hx_proxy_hub **out)
{
    struct hx_proxy_hub *hub = NULL;
    struct rlimit rl;
    int rc = HX_OK;

    if (out == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_hub_create: out is NULL");
    *out = NULL;
    hub = calloc(1, sizeof(*hub));
    if (hub == NULL)
        return proxy__fail(HX_ERR_NOMEM, "out of memory creating a proxy hub");
    hub->epfd = hub->wakefd = -1;
    pthread_mutex_init(&hub->mu, NULL);
    hub->max_frame = DEFAULT_MAX_FRAME;
    hub->high_water = DEFAULT_HIGH_WATER;
    if (opts != NULL) {
        if (opts->max_frame > 0)
            hub->max_frame = opts->max_frame;
        if (opts->high_water > 0)
            hub->high_water = opts->high_water;
        hub->on_event = opts->on_event;
        hub->event_ctx = opts->event_ctx;
        hub->log_stderr = opts->log_stderr;
        if (opts->pcap_dir != NULL && (hub->pcap_dir = strdup(opts->pcap_dir)) == NULL) {
            rc = proxy__fail(HX_ERR_NOMEM, "out of memory creating a proxy hub");
            goto exit;
        }
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
    hub->epfd = epoll_create1(EPOLL_CLOEXEC);
    hub->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hub->epfd < 0 || hub->wakefd < 0) {
        rc = proxy__fail(HX_ERR_SYS, "cannot create the proxy hub's epoll/eventfd: %s",
                         strerror(errno));
        goto exit;
    }
    hub->wake_w.kind = WATCH_WAKE;
    {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &hub->wake_w };
        if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, hub->wakefd, &ev) != 0) {
            rc = proxy__fail(HX_ERR_SYS, "epoll_ctl on the proxy hub's eventfd: %s",
                             strerror(errno));
            goto exit;
        }
    }
    *out = hub;
    hub = NULL;
exit:
    hx_proxy_hub_free(hub);
    return rc;
}

int hx_proxy_hub_start(struct hx_proxy_hub *hub)
{
    int rc = HX_OK, e;

    if (hub == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_hub_start: hub is NULL");
    pthread_mutex_lock(&hub->mu);
    if (hub->running)
        goto exit;
    hub->stopping = false;
    e = pthread_create(&hub->thread, NULL, hub__run, hub);
    if (e != 0) {
        rc = proxy__fail(HX_ERR_SYS, "cannot start the proxy hub thread: %s", strerror(e));
        goto exit;
    }
    hub->running = true;
exit:
    pthread_mutex_unlock(&hub->mu);
    return rc;
}

int hx_proxy_hub_stop(struct hx_proxy_hub *hub)
{
    bool was_running;

    if (hub == NULL)
        return HX_OK;
    pthread_mutex_lock(&hub->mu);
    was_running = hub->running;
    hub->stopping = true;
    hub->running = false;
    pthread_mutex_unlock(&hub->mu);
    if (was_running) {
        hub__wake(hub);
        pthread_join(hub->thread, NULL);
    }
    pthread_mutex_lock(&hub->mu);
    for (struct hx_proxy *p = hub->proxies; p != NULL; p = p->next)
        while (p->links != NULL)
            link__close(p->links, CLOSE_FIN, "hub stopped");
    hub__bury(hub);
    pthread_mutex_unlock(&hub->mu);
    return HX_OK;
}

static void proxy__destroy_locked(struct hx_proxy *p)
{
    struct hx_proxy_hub *hub = p->hub;

    while (p->links != NULL)
        link__close(p->links, CLOSE_FIN, "proxy removed");
    proxy__ep_del_close(hub, &p->listen_fd);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        hub->proxies = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    p->dead = true;
    p->next_dead = hub->dead_proxies;
    hub->dead_proxies = p;
}

void hx_proxy_hub_free(struct hx_proxy_hub *hub)
{
    if (hub == NULL)
        return;
    hx_proxy_hub_stop(hub);
    pthread_mutex_lock(&hub->mu);
    while (hub->proxies != NULL)
        proxy__destroy_locked(hub->proxies);
    hub__bury(hub);
    pthread_mutex_unlock(&hub->mu);
    if (hub->epfd >= 0)
        close(hub->epfd);
    if (hub->wakefd >= 0)
        close(hub->wakefd);
    pthread_mutex_destroy(&hub->mu);
    free(hub->pcap_dir);
    free(hub);
}

/* ------------------------------------------------------------------------------------------
 * Public API: proxies
 * ---------------------------------------------------------------------------------------- */

int hx_proxy_add(struct hx_proxy_hub *hub, const char *upstream_host, uint16_t upstream_port,
                 uint16_t listen_port, struct hx_proxy **out)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    struct hx_proxy *p = NULL;
    char port_s[8];
    int rc = HX_OK, gai;

    if (hub == NULL || upstream_host == NULL || upstream_port == 0 || out == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_add: hub, upstream_host, upstream_port and "
                           "out are required");
    *out = NULL;
    snprintf(port_s, sizeof(port_s), "%u", upstream_port);
    gai = getaddrinfo(upstream_host, port_s, &hints, &ai);
    if (gai != 0 || ai == NULL)
        return proxy__fail(HX_ERR_INVAL, "cannot resolve the broker host '%s': %s (use an IP "
                           "address or a name in /etc/hosts)", upstream_host, gai_strerror(gai));
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = proxy__fail(HX_ERR_NOMEM, "out of memory adding a proxy");
        goto exit;
    }
    p->hub = hub;
    p->listen_fd = -1;
    memcpy(&p->up_addr, ai->ai_addr, ai->ai_addrlen);
    p->up_len = ai->ai_addrlen;
    p->up_port = upstream_port;
    p->lw = (struct watch){ .kind = WATCH_LISTEN, .obj = p };

    pthread_mutex_lock(&hub->mu);
    rc = proxy__listen(p, listen_port);
    if (rc == HX_OK) {
        snprintf(p->name, sizeof(p->name), "proxy-%u", p->port);
        p->next = hub->proxies;
        if (hub->proxies != NULL)
            hub->proxies->prev = p;
        hub->proxies = p;
        *out = p;
        p = NULL;
    }
    pthread_mutex_unlock(&hub->mu);
exit:
    free(p);
    freeaddrinfo(ai);
    return rc;
}

void hx_proxy_remove(struct hx_proxy *p)
{
    struct hx_proxy_hub *hub;

    if (p == NULL)
        return;
    hub = p->hub;
    pthread_mutex_lock(&hub->mu);
    proxy__destroy_locked(p);
    if (!hub->running)
        hub__bury(hub);
    pthread_mutex_unlock(&hub->mu);
}

uint16_t hx_proxy_port(const struct hx_proxy *p)
{
    return p != NULL ? p->port : 0;
}

int hx_proxy_set_name(struct hx_proxy *p, const char *name)
{
    if (p == NULL || name == NULL || name[0] == '\0' || strchr(name, '/') != NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_set_name: a non-empty name without '/' is "
                           "required");
    LOCKED(p) snprintf(p->name, sizeof(p->name), "%s", name);
    return HX_OK;
}

int hx_proxy_set_pcap_dir(struct hx_proxy *p, const char *dir)
{
    char *copy = NULL;

    if (p == NULL)
        return proxy__fail(HX_ERR_INVAL, "hx_proxy_set_pcap_dir: proxy is NULL");
    if (dir != NULL && (copy = strdup(dir)) == NULL)
        return proxy__fail(HX_ERR_NOMEM, "out of memory setting the pcap folder");
    LOCKED(p) {
        free(p->pcap_dir);
        p->pcap_dir = copy;
        p->pcap_off = (dir == NULL);
    }
    return HX_OK;
}
