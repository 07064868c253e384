/*
 * proxy_link.c - one proxied connection ("link") of the fault proxy: accepting the device
 * and connecting to the broker, reading and cutting the bytes into MQTT packets
 * (hx_mqtt_frame_parse), applying the proxy's faults to each packet (black-hole, drop,
 * duplicate, delay or hold), and writing what may leave now under a token bucket (throttle).
 *
 * Each link has two directions; each direction has an input buffer (bytes read, not yet a
 * whole packet) and an output queue of packets, each with a release time. Everything here
 * runs with the hub lock held.
 */
#include "proxy_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACCEPT_BATCH 64
#define THROTTLE_MIN_WRITE 512u

/* ------------------------------------------------------------------------------------------
 * Links
 * ---------------------------------------------------------------------------------------- */

static void set_reset_on_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static bool blackholed(const struct link *l)
{
    return l->proxy->blackhole;
}

static void flow_free(struct flow *f)
{
    struct chunk *c = f->head;
    while (c != NULL) {
        struct chunk *n = c->next;
        free(c);
        c = n;
    }
    free(f->in);
    memset(f, 0, sizeof(*f));
}

/* End the link: both sockets closed (RST or FIN), capture finished, to the graveyard. */
void link__close(struct link *l, enum close_how how, const char *why)
{
    struct hx_proxy *p = l->proxy;
    struct hx_proxy_hub *hub = p->hub;
    struct ev_args a = { .kind = HX_PROXY_EV_LINK_CLOSED, .link_id = l->id, .dir = -1, .type = -1 };

    if (l->dead)
        return;
    for (int s = 0; s < 2; s++) {
        if (l->fd[s] < 0)
            continue;
        if (how == CLOSE_RST)
            set_reset_on_close(l->fd[s]);
        else
            (void)shutdown(l->fd[s], SHUT_RDWR);
        proxy__ep_del_close(hub, &l->fd[s]);
    }
    proxy__pcap_close(l->pcap, how == CLOSE_RST);
    l->pcap = NULL;
    l->dead = true;
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        p->links = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
    l->next_dead = hub->dead_links;
    hub->dead_links = l;
    if (p->c.links_active > 0)
        p->c.links_active--;
    proxy__emit(p, &a, "link closed (%s, %s)", how == CLOSE_RST ? "RST" : "FIN", why);
}

void link__free(struct link *l)
{
    flow_free(&l->f[0]);
    flow_free(&l->f[1]);
    free(l);
}

/* A side failed or closed while the other must be held (black-hole), or the whole link ends. */
static void link__side_gone(struct link *l, int side, bool reset, const char *why)
{
    if (blackholed(l)) {
        proxy__ep_del_close(l->proxy->hub, &l->fd[side]);
        l->f[side].src_eof = true;
        if (l->fd[0] < 0 && l->fd[1] < 0)
            link__close(l, CLOSE_FIN, why);
        return;
    }
    link__close(l, reset ? CLOSE_RST : CLOSE_FIN, why);
}

static void pcap_error(struct link *l, const char *msg)
{
    struct ev_args a = { .kind = HX_PROXY_EV_PCAP_ERROR, .link_id = l->id, .dir = -1, .type = -1 };
    proxy__emit(l->proxy, &a, "capture stopped: %s", msg);
}

/* Refill the token bucket of a throttled flow; returns whole tokens available. */
static size_t flow_tokens(struct flow *f, uint32_t rate, int64_t now)
{
    double cap = (double)rate / 10.0 + 1024.0;
    if (f->tokens_us == 0) {
        f->tokens_us = now;
        f->tokens = cap;
    }
    f->tokens += (double)(now - f->tokens_us) * (double)rate / 1e6;
    f->tokens_us = now;
    if (f->tokens > cap)
        f->tokens = cap;
    return f->tokens < 0 ? 0 : (size_t)f->tokens;
}

/* Write what the flow may write now. Returns false when the link was closed. */
static bool flow_write(struct link *l, int dir, int64_t now)
{
    struct hx_proxy *p = l->proxy;
    struct flow *f = &l->f[dir];
    int dst = 1 - dir;
    uint32_t rate = p->rate[dir];

    /* A black-hole holds what was queued before it (TCP would deliver it after a partition
       heals); heal releases it. */
    if (l->fd[dst] < 0 || l->connecting || blackholed(l))
        return true;
    while (f->head != NULL && f->head->release_us <= now) {
        struct chunk *c = f->head;
        size_t want = c->len - c->off;
        ssize_t n;

        if (rate > 0) {
            size_t tok = flow_tokens(f, rate, now);
            size_t min = want < THROTTLE_MIN_WRITE ? want : THROTTLE_MIN_WRITE;
            if (tok < min)
                break;
            if (want > tok)
                want = tok;
        }
        n = send(l->fd[dst], c->data + c->off, want, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            link__side_gone(l, dst, true, strerror(errno));
            return false;
        }
        if (rate > 0)
            f->tokens -= (double)n;
        p->c.dir[dir].forwarded_bytes += (uint64_t)n;
        if (l->pcap != NULL &&
            proxy__pcap_data(l->pcap, dir == HX_PROXY_TO_BROKER, c->data + c->off, (size_t)n) != 0) {
            proxy__pcap_close(l->pcap, false);
            l->pcap = NULL;
            pcap_error(l, "write failed");
        }
        c->off += (size_t)n;
        f->queued -= (size_t)n;
        if (c->off < c->len)
            break; /* socket buffer full */
        f->head = c->next;
        if (f->head == NULL)
            f->tail = NULL;
        if (c->close_after) {
            free(c);
            link__close(l, CLOSE_FIN, "truncated packet injected");
            return false;
        }
        free(c);
    }
    /* Pass a FIN on once everything before it is written (not through a black-hole). */
    if (f->src_eof && f->head == NULL && !f->shut_sent && !blackholed(l)) {
        f->shut_sent = true;
        (void)shutdown(l->fd[dst], SHUT_WR);
        if (l->pcap != NULL)
            proxy__pcap_fin(l->pcap, dir == HX_PROXY_TO_BROKER);
    }
    if (l->f[0].shut_sent && l->f[1].shut_sent) {
        link__close(l, CLOSE_FIN, "both sides closed");
        return false;
    }
    return true;
}

/* Recompute epoll interest and the timer for the link. */
static void link__update(struct link *l, int64_t now)
{
    struct hx_proxy_hub *hub = l->proxy->hub;
    int64_t wake = 0;

    if (l->dead)
        return;
    for (int s = 0; s < 2; s++) {
        uint32_t m = 0;
        int out_dir = 1 - s; /* the flow written to side s */
        struct flow *of = &l->f[out_dir];

        if (l->fd[s] < 0)
            continue;
        if (s == 1 && l->connecting) {
            m = EPOLLOUT;
        } else {
            if (!l->f[s].src_eof && l->f[s].queued < hub->high_water)
                m |= EPOLLIN;
            if (of->head != NULL && !l->connecting && !blackholed(l)) {
                if (of->head->release_us == HELD_US) {
                    /* held: no timer, released by a command */
                } else if (of->head->release_us > now) {
                    if (wake == 0 || of->head->release_us < wake)
                        wake = of->head->release_us;
                } else {
                    uint32_t rate = l->proxy->rate[out_dir];
                    size_t rest = of->head->len - of->head->off;
                    size_t min = rest < THROTTLE_MIN_WRITE ? rest : THROTTLE_MIN_WRITE;
                    size_t tok = rate > 0 ? flow_tokens(of, rate, now) : min;
                    if (tok >= min) {
                        m |= EPOLLOUT;
                    } else {
                        int64_t t = now + (int64_t)((double)(min - tok) * 1e6 / rate) + 1000;
                        if (wake == 0 || t < wake)
                            wake = t;
                    }
                }
            }
        }
        if (m != l->mask[s]) {
            struct epoll_event ev = { .events = m, .data.ptr = &l->w[s] };
            (void)epoll_ctl(hub->epfd, EPOLL_CTL_MOD, l->fd[s], &ev);
            l->mask[s] = m;
        }
    }
    l->wake_us = wake;
}

/* Write both flows then refresh interest. */
void link__pump(struct link *l, int64_t now)
{
    if (l->dead)
        return;
    if (!flow_write(l, 0, now))
        return;
    if (!flow_write(l, 1, now))
        return;
    link__update(l, now);
}

int flow__push(struct flow *f, const uint8_t *data, size_t len, int64_t release_us,
               bool close_after)
{
    struct chunk *c = malloc(sizeof(*c) + len);
    if (c == NULL)
        return HX_ERR_NOMEM;
    c->next = NULL;
    c->len = len;
    c->off = 0;
    c->close_after = close_after;
    /* Order is kept: nothing leaves before the packet queued ahead of it. */
    if (f->tail != NULL && f->tail->release_us > release_us)
        release_us = f->tail->release_us;
    c->release_us = release_us;
    memcpy(c->data, data, len);
    if (f->tail != NULL)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    f->queued += len;
    return HX_OK;
}

/* One whole packet read from the source of dir: count it, then apply the faults. */
static void link__packet(struct link *l, int dir, const uint8_t *b, const struct hx_mqtt_frame *fr,
                         int64_t now)
{
    struct hx_proxy *p = l->proxy;
    struct hx_proxy_dir_counters *dc = &p->c.dir[dir];
    struct ev_args a = { .link_id = l->id, .dir = dir, .type = fr->type, .frame = fr,
                         .bytes = fr->total_len };
    int t = fr->type;
    int *drop;
    uint32_t delay;
    int64_t release;
    int copies = 1;

    dc->packets[t]++;
    dc->bytes_by_type[t] += fr->total_len;
    if (t == HX_MQTT_PUBLISH && fr->dup)
        dc->publish_dup++;

    if (p->blackhole) {
        dc->blackholed_bytes += fr->total_len;
        a.kind = HX_PROXY_EV_BLACKHOLED;
        proxy__emit(p, &a, "black-holed");
        return;
    }
    drop = p->drop[dir][t] != 0 ? &p->drop[dir][t] : &p->drop[dir][HX_PROXY_ANY_TYPE];
    if (*drop != 0) {
        if (*drop > 0)
            (*drop)--;
        dc->dropped[t]++;
        a.kind = HX_PROXY_EV_DROPPED;
        proxy__emit(p, &a, "dropped");
        return;
    }
    if (t == HX_MQTT_PUBLISH && p->dup[dir] > 0) {
        p->dup[dir]--;
        copies = 2;
    }
    delay = p->delay_ms[dir][t] != 0 ? p->delay_ms[dir][t] : p->delay_ms[dir][HX_PROXY_ANY_TYPE];
    if (delay > 0) {
        dc->delayed[t]++;
        a.kind = HX_PROXY_EV_DELAYED;
        a.bytes = delay;
        if (delay == HOLD_MS)
            proxy__emit(p, &a, "held");
        else
            proxy__emit(p, &a, "delayed %u ms", delay);
    }
    release = delay == HOLD_MS ? HELD_US : now + (int64_t)delay * 1000;
    if (flow__push(&l->f[dir], b, fr->total_len, release, false) != HX_OK) {
        link__close(l, CLOSE_RST, "out of memory");
        return;
    }
    if (copies == 2) {
        if (flow__push(&l->f[dir], b, fr->total_len, release, false) != HX_OK) {
            link__close(l, CLOSE_RST, "out of memory");
            return;
        }
        if (fr->qos > 0)
            l->f[dir].tail->data[0] |= 0x08u; /* DUP on the copy */
        dc->duplicated[t]++;
        a.kind = HX_PROXY_EV_DUPLICATED;
        a.bytes = fr->total_len;
        proxy__emit(p, &a, "duplicated");
    }
}

static void link__malformed(struct link *l, int dir, uint8_t first, const char *why)
{
    struct hx_proxy *p = l->proxy;
    struct ev_args a = { .kind = HX_PROXY_EV_MALFORMED, .link_id = l->id, .dir = dir, .type = -1 };

    p->c.dir[dir].malformed++;
    p->c.cuts++;
    proxy__emit(p, &a, "malformed MQTT framing %s (first byte 0x%02x, %s); cutting the link",
                hx_proxy_dir_name(dir), first, why);
    link__close(l, CLOSE_RST, "malformed framing");
}

/* Read from side s (the source of flow s) and cut what arrived into packets. Reads land in
   the hub's scratch buffer; a link keeps memory only for a packet split across reads. */
static void link__read(struct link *l, int s, int64_t now)
{
    struct hx_proxy_hub *hub = l->proxy->hub;
    struct flow *f = &l->f[s];
    bool scratch = f->in_len == 0;
    uint8_t *buf;
    size_t len, off = 0;
    ssize_t n;

    if (scratch) {
        buf = hub->scratch;
        n = recv(l->fd[s], buf, READ_CHUNK, MSG_DONTWAIT);
    } else {
        if (f->in_cap - f->in_len < READ_CHUNK) {
            size_t cap = f->in_len + READ_CHUNK;
            uint8_t *nb = realloc(f->in, cap);
            if (nb == NULL) {
                link__close(l, CLOSE_RST, "out of memory");
                return;
            }
            f->in = nb;
            f->in_cap = cap;
        }
        buf = f->in;
        n = recv(l->fd[s], f->in + f->in_len, f->in_cap - f->in_len, MSG_DONTWAIT);
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        link__side_gone(l, s, true, strerror(errno));
        return;
    }
    if (n == 0) {
        if (f->src_eof) { /* hang-up reported again: the side is finished */
            link__side_gone(l, s, false, "peer closed");
            return;
        }
        f->src_eof = true;
        f->in_len = 0; /* a partial packet at EOF is never delivered */
        if (blackholed(l) && l->fd[1 - s] >= 0)
            proxy__ep_del_close(hub, &l->fd[s]); /* hold the other side; this one is done */
        if (l->fd[0] < 0 && l->fd[1] < 0)
            link__close(l, CLOSE_FIN, "both sides closed");
        return;
    }
    l->proxy->c.dir[s].bytes += (uint64_t)n;
    len = scratch ? (size_t)n : f->in_len + (size_t)n;

    for (;;) {
        struct hx_mqtt_frame fr;
        int r = hx_mqtt_frame_parse(buf + off, len - off, &fr);
        if (r == HX_MQTT_FRAME_MALFORMED) {
            link__malformed(l, s, buf[off], hx_mqtt_frame_strerror(fr.error));
            return;
        }
        if (r == HX_MQTT_FRAME_NEED_MORE) {
            if (fr.total_len > hub->max_frame) {
                char why[96];
                snprintf(why, sizeof(why), "a %zu-byte packet exceeds max_frame %zu",
                         fr.total_len, hub->max_frame);
                link__malformed(l, s, buf[off], why);
                return;
            }
            break;
        }
        link__packet(l, s, buf + off, &fr, now);
        if (l->dead)
            return;
        off += fr.total_len;
    }
    len -= off;
    if (scratch) {
        if (len > 0) { /* keep the start of a packet split across reads */
            size_t cap = len + READ_CHUNK;
            uint8_t *nb = realloc(f->in, cap);
            if (nb == NULL) {
                link__close(l, CLOSE_RST, "out of memory");
                return;
            }
            f->in = nb;
            f->in_cap = cap;
            memcpy(f->in, buf + off, len);
        }
    } else if (off > 0) {
        memmove(f->in, f->in + off, len);
    }
    f->in_len = len;
    if (f->in_len == 0 && f->in != NULL) {
        free(f->in);
        f->in = NULL;
        f->in_cap = 0;
    }
}

static uint32_t ipv4_of(const struct sockaddr_storage *ss, uint16_t *port, uint32_t fallback)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (port != NULL)
            *port = ntohs(a->sin_port);
        return ntohl(a->sin_addr.s_addr);
    }
    return fallback;
}

static void link__open_pcap(struct link *l)
{
    struct hx_proxy *p = l->proxy;
    const char *dir = p->pcap_off ? NULL : (p->pcap_dir != NULL ? p->pcap_dir : p->hub->pcap_dir);
    struct sockaddr_storage peer;
    socklen_t plen = sizeof(peer);
    uint16_t cport = 0, sport = p->up_port;
    uint32_t cip, sip;
    char path[1024], err[512];

    if (dir == NULL)
        return;
    (void)mkdir(dir, 0755); /* a missing folder is made; other failures show on open */
    memset(&peer, 0, sizeof(peer));
    (void)getpeername(l->fd[0], (struct sockaddr *)&peer, &plen);
    cip = ipv4_of(&peer, &cport, 0x7f000001u);
    if (cport == 0)
        cport = (uint16_t)(40000u + (l->id % 20000u));
    sip = ipv4_of(&p->up_addr, NULL, 0x7f000002u);
    if (cip == sip && cport == sport)
        cport++;
    snprintf(path, sizeof(path), "%s/%s-link%" PRIu64 ".pcap", dir, p->name, l->id);
    l->pcap = proxy__pcap_open(path, cip, cport, sip, sport, err, sizeof(err));
    if (l->pcap == NULL)
        pcap_error(l, err);
}

/* A device connected: open the broker side. */
static void proxy__accept_one(struct hx_proxy *p, int dfd, int64_t now)
{
    struct hx_proxy_hub *hub = p->hub;
    struct link *l;
    struct ev_args a = { .link_id = 0, .dir = -1, .type = -1 };
    int one = 1;
    int bfd;

    p->c.links_accepted++;
    if (p->down == HX_PROXY_DOWN_RESET) {
        p->c.refused++;
        set_reset_on_close(dfd);
        close(dfd);
        a.kind = HX_PROXY_EV_REFUSED;
        proxy__emit(p, &a, "refused a connection (down)");
        return;
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        close(dfd);
        return;
    }
    l->proxy = p;
    l->id = ++p->next_link_id;
    l->fd[0] = dfd;
    l->fd[1] = -1;
    l->w[0] = (struct watch){ .kind = WATCH_LINK, .side = 0, .obj = l };
    l->w[1] = (struct watch){ .kind = WATCH_LINK, .side = 1, .obj = l };
    l->next = p->links;
    if (p->links != NULL)
        p->links->prev = l;
    p->links = l;
    p->c.links_active++;
    (void)setsockopt(dfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    a.link_id = l->id;

    bfd = socket(p->up_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (bfd >= 0) {
        (void)setsockopt(bfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(bfd, (struct sockaddr *)&p->up_addr, p->up_len) != 0) {
            if (errno == EINPROGRESS) {
                l->connecting = true;
            } else {
                close(bfd);
                bfd = -1;
            }
        }
    }
    l->fd[1] = bfd;
    {
        struct epoll_event ev0 = { .events = EPOLLIN, .data.ptr = &l->w[0] };
        struct epoll_event ev1 = { .events = l->connecting ? EPOLLOUT : EPOLLIN, .data.ptr = &l->w[1] };
        if (bfd < 0 || epoll_ctl(hub->epfd, EPOLL_CTL_ADD, dfd, &ev0) != 0 ||
            epoll_ctl(hub->epfd, EPOLL_CTL_ADD, bfd, &ev1) != 0) {
            p->c.upstream_failures++;
            a.kind = HX_PROXY_EV_UPSTREAM_FAILED;
            proxy__emit(p, &a, "cannot reach the broker: %s", strerror(errno));
            link__close(l, CLOSE_RST, "broker unreachable");
            return;
        }
        l->mask[0] = ev0.events;
        l->mask[1] = ev1.events;
    }
    link__open_pcap(l);
    a.kind = HX_PROXY_EV_LINK_OPEN;
    proxy__emit(p, &a, "link opened");
    link__update(l, now);
}

void proxy__on_listen(struct hx_proxy *p, int64_t now)
{
    for (int i = 0; i < ACCEPT_BATCH && p->listen_fd >= 0 && !p->dead; i++) {
        int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Level-triggered: the socket stays readable, so pause it instead of spinning. */
                struct ev_args a = { .kind = HX_PROXY_EV_REFUSED, .dir = -1, .type = -1 };
                struct epoll_event ev = { .events = 0, .data.ptr = &p->lw };
                (void)epoll_ctl(p->hub->epfd, EPOLL_CTL_MOD, p->listen_fd, &ev);
                p->accept_paused_until = now + 100000;
                proxy__emit(p, &a, "cannot accept a connection: %s (raise ulimit -n); "
                            "retrying in 100 ms", strerror(errno));
            }
            return;
        }
        proxy__accept_one(p, fd, now);
    }
}

void link__on_event(struct link *l, int side, uint32_t events, int64_t now)
{
    if (l->dead || l->fd[side] < 0)
        return;
    if (side == 1 && l->connecting) {
        int err = 0;
        socklen_t el = sizeof(err);
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        if (getsockopt(l->fd[1], SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            err = errno;
        if (err != 0) {
            struct ev_args a = { .kind = HX_PROXY_EV_UPSTREAM_FAILED, .link_id = l->id,
                                 .dir = -1, .type = -1 };
            l->proxy->c.upstream_failures++;
            proxy__emit(l->proxy, &a, "cannot reach the broker: %s", strerror(err));
            link__close(l, CLOSE_RST, "broker unreachable");
            return;
        }
        l->connecting = false;
        link__pump(l, now);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        link__read(l, side, now);
        if (l->dead)
            return;
    }
    link__pump(l, now);
}
