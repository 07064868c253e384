/*
 * proxy.c - the MQTT-aware fault proxy hub (hx/proxy.h).
 *
 * One thread per hub runs an epoll loop over every proxy's listening socket and every link's
 * two sockets (level-triggered, non-blocking). Each link has two directions; each direction
 * has an input buffer (bytes read, cut into packets by hx_mqtt_frame_parse) and an output
 * queue of packets, each with a release time (delay) and drained under a token bucket
 * (throttle). The faults live in the proxy and are read for every packet, so a command takes
 * effect on the next packet.
 *
 * Locking: one mutex per hub ("the hub lock") guards everything. The hub thread holds it
 * except inside epoll_wait; commands take it from the scenario thread and act directly.
 * Objects closed while an epoll batch may still name them (links, proxies) go to a graveyard
 * freed only before the next epoll_wait.
 */
#include "hx/proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proxy_pcap.h"

#define DEFAULT_MAX_FRAME (1u << 20)
#define DEFAULT_HIGH_WATER (4u << 20)
#define READ_CHUNK 65536u
#define EPOLL_BATCH 128
#define ACCEPT_BATCH 64
#define THROTTLE_MIN_WRITE 512u
#define HOLD_MS UINT32_MAX          /* delay_ms value meaning "hold until released" */
#define HELD_US INT64_MAX           /* release time of a held packet */
#define MAX_WAIT_MS 60000

/* ------------------------------------------------------------------------------------------
 * Types
 * ---------------------------------------------------------------------------------------- */

enum watch_kind { WATCH_WAKE, WATCH_LISTEN, WATCH_LINK };

/* What an epoll event points at. */
struct watch {
    enum watch_kind kind;
    int side;   /* WATCH_LINK: 0 device socket, 1 broker socket */
    void *obj;  /* struct hx_proxy (LISTEN) or struct link (LINK) */
};

/* One packet (or injected bytes) waiting to be written. */
struct chunk {
    struct chunk *next;
    int64_t release_us;  /* not before this monotonic time */
    size_t len, off;     /* off bytes already written */
    bool close_after;    /* injected truncation: FIN both sides once written */
    uint8_t data[];
};

/* One direction of a link: source side = dir, destination side = 1 - dir. */
struct flow {
    uint8_t *in;          /* bytes read, not yet a whole packet */
    size_t in_len, in_cap;
    struct chunk *head, *tail;
    size_t queued;        /* bytes in the chunks */
    double tokens;        /* throttle bucket */
    int64_t tokens_us;
    bool src_eof;         /* the source side sent FIN (or is gone) */
    bool shut_sent;       /* FIN passed on to the destination */
};

struct link {
    struct hx_proxy *proxy;
    struct link *prev, *next;   /* the proxy's links */
    struct link *next_dead;     /* graveyard */
    uint64_t id;
    int fd[2];                  /* [0] device, [1] broker; -1 when closed */
    uint32_t mask[2];           /* epoll interest registered */
    struct watch w[2];
    bool connecting;            /* broker connect() in progress */
    bool dead;
    int64_t wake_us;            /* 0 = no timer; else pump at this time */
    struct flow f[HX_PROXY_DIRS];
    struct proxy__pcap *pcap;
};

struct hx_proxy {
    struct hx_proxy_hub *hub;
    struct hx_proxy *prev, *next;   /* the hub's proxies */
    struct hx_proxy *next_dead;
    bool dead;
    char name[64];
    char *pcap_dir;                 /* NULL = hub default */
    bool pcap_off;                  /* set_pcap_dir(NULL) */
    struct sockaddr_storage up_addr;
    socklen_t up_len;
    uint16_t up_port;
    int listen_fd;
    uint16_t port;
    int64_t accept_paused_until;    /* EMFILE: listening paused until this time (0 = not) */
    struct watch lw;
    struct link *links;
    uint64_t next_link_id;
    /* faults */
    int drop[HX_PROXY_DIRS][HX_MQTT_TYPE_COUNT];      /* [0] = any type; <0 = all */
    uint32_t delay_ms[HX_PROXY_DIRS][HX_MQTT_TYPE_COUNT];
    int dup[HX_PROXY_DIRS];
    bool blackhole;
    uint32_t rate[HX_PROXY_DIRS];
    enum hx_proxy_down_mode down;
    struct hx_proxy_counters c;
};

struct hx_proxy_hub {
    pthread_mutex_t mu;
    pthread_t thread;
    bool running, stopping;
    int epfd, wakefd;
    struct watch wake_w;
    char *pcap_dir;
    size_t max_frame, high_water;
    hx_proxy_event_fn on_event;
    void *event_ctx;
    bool log_stderr;
    struct hx_proxy *proxies;
    struct hx_proxy *dead_proxies;
    struct link *dead_links;
    uint8_t scratch[READ_CHUNK];    /* every read lands here first (hub thread only) */
};

/* ------------------------------------------------------------------------------------------
 * Errors, time, events
 * ---------------------------------------------------------------------------------------- */

static _Thread_local char last_error[512];

static int fail(int err, const char *fmt, ...)
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

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct ev_args {
    enum hx_proxy_event_kind kind;
    uint64_t link_id;
    int dir, type;
    const struct hx_mqtt_frame *frame;
    uint64_t bytes;
};

/* Format and deliver one event; verb is "dropped", "delayed 300 ms", ... */
static void emit(struct hx_proxy *p, const struct ev_args *a, const char *fmt, ...)
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
        .dir = a->dir, .type = a->type, .bytes = a->bytes, .t_ms = now_us() / 1000, .text = text,
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

static void set_reset_on_close(int fd)
{
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void ep_del_close(struct hx_proxy_hub *hub, int *fd)
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
        return fail(HX_ERR_SYS, "cannot create a listening socket: %s (raise the open-file "
                    "limit?)", strerror(errno));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 512) != 0) {
        int e = errno;
        close(fd);
        return fail(HX_ERR_SYS, "cannot listen on 127.0.0.1:%u: %s (pick another port or 0)",
                    port, strerror(e));
    }
    if (getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        int e = errno;
        close(fd);
        return fail(HX_ERR_SYS, "getsockname on the listening socket failed: %s", strerror(e));
    }
    *bound = ntohs(a.sin_port);
    return fd;
}

static int proxy__listen(struct hx_proxy *p, uint16_t port)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &p->lw };
    int fd = listen_on(port, &p->port);

    if (fd < 0)
        return fd;
    if (epoll_ctl(p->hub->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        int e = errno;
        close(fd);
        return fail(HX_ERR_SYS, "epoll_ctl on proxy port %u failed: %s", p->port, strerror(e));
    }
    p->listen_fd = fd;
    p->accept_paused_until = 0;
    return HX_OK;
}

/* ------------------------------------------------------------------------------------------
 * Links
 * ---------------------------------------------------------------------------------------- */

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

enum close_how { CLOSE_FIN, CLOSE_RST };

/* End the link: both sockets closed (RST or FIN), capture finished, to the graveyard. */
static void link__close(struct link *l, enum close_how how, const char *why)
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
        ep_del_close(hub, &l->fd[s]);
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
    emit(p, &a, "link closed (%s, %s)", how == CLOSE_RST ? "RST" : "FIN", why);
}

static void link__free(struct link *l)
{
    flow_free(&l->f[0]);
    flow_free(&l->f[1]);
    free(l);
}

/* A side failed or closed while the other must be held (black-hole), or the whole link ends. */
static void link__side_gone(struct link *l, int side, bool reset, const char *why)
{
    if (blackholed(l)) {
        ep_del_close(l->proxy->hub, &l->fd[side]);
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
    emit(l->proxy, &a, "capture stopped: %s", msg);
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
static void link__pump(struct link *l, int64_t now)
{
    if (l->dead)
        return;
    if (!flow_write(l, 0, now))
        return;
    if (!flow_write(l, 1, now))
        return;
    link__update(l, now);
}

static int chunk_push(struct flow *f, const uint8_t *data, size_t len, int64_t release_us,
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
        emit(p, &a, "black-holed");
        return;
    }
    drop = p->drop[dir][t] != 0 ? &p->drop[dir][t] : &p->drop[dir][HX_PROXY_ANY_TYPE];
    if (*drop != 0) {
        if (*drop > 0)
            (*drop)--;
        dc->dropped[t]++;
        a.kind = HX_PROXY_EV_DROPPED;
        emit(p, &a, "dropped");
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
            emit(p, &a, "held");
        else
            emit(p, &a, "delayed %u ms", delay);
    }
    release = delay == HOLD_MS ? HELD_US : now + (int64_t)delay * 1000;
    if (chunk_push(&l->f[dir], b, fr->total_len, release, false) != HX_OK) {
        link__close(l, CLOSE_RST, "out of memory");
        return;
    }
    if (copies == 2) {
        if (chunk_push(&l->f[dir], b, fr->total_len, release, false) != HX_OK) {
            link__close(l, CLOSE_RST, "out of memory");
            return;
        }
        if (fr->qos > 0)
            l->f[dir].tail->data[0] |= 0x08u; /* DUP on the copy */
        dc->duplicated[t]++;
        a.kind = HX_PROXY_EV_DUPLICATED;
        a.bytes = fr->total_len;
        emit(p, &a, "duplicated");
    }
}

static void link__malformed(struct link *l, int dir, uint8_t first, const char *why)
{
    struct hx_proxy *p = l->proxy;
    struct ev_args a = { .kind = HX_PROXY_EV_MALFORMED, .link_id = l->id, .dir = dir, .type = -1 };

    p->c.dir[dir].malformed++;
    p->c.cuts++;
    emit(p, &a, "malformed MQTT framing %s (first byte 0x%02x, %s); cutting the link",
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
            ep_del_close(hub, &l->fd[s]); /* hold the other side; this one is done */
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
        emit(p, &a, "refused a connection (down)");
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
            emit(p, &a, "cannot reach the broker: %s", strerror(errno));
            link__close(l, CLOSE_RST, "broker unreachable");
            return;
        }
        l->mask[0] = ev0.events;
        l->mask[1] = ev1.events;
    }
    link__open_pcap(l);
    a.kind = HX_PROXY_EV_LINK_OPEN;
    emit(p, &a, "link opened");
    link__update(l, now);
}

static void proxy__on_listen(struct hx_proxy *p, int64_t now)
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
                emit(p, &a, "cannot accept a connection: %s (raise ulimit -n); retrying in "
                     "100 ms", strerror(errno));
            }
            return;
        }
        proxy__accept_one(p, fd, now);
    }
}

static void link__on_event(struct link *l, int side, uint32_t events, int64_t now)
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
            emit(l->proxy, &a, "cannot reach the broker: %s", strerror(err));
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
        int64_t now = now_us(), wake = 0;
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
        now = now_us();
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
        now = now_us();
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
        return fail(HX_ERR_INVAL, "hx_proxy_hub_create: out is NULL");
    *out = NULL;
    hub = calloc(1, sizeof(*hub));
    if (hub == NULL)
        return fail(HX_ERR_NOMEM, "out of memory creating a proxy hub");
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
            rc = fail(HX_ERR_NOMEM, "out of memory creating a proxy hub");
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
        rc = fail(HX_ERR_SYS, "cannot create the proxy hub's epoll/eventfd: %s", strerror(errno));
        goto exit;
    }
    hub->wake_w.kind = WATCH_WAKE;
    {
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &hub->wake_w };
        if (epoll_ctl(hub->epfd, EPOLL_CTL_ADD, hub->wakefd, &ev) != 0) {
            rc = fail(HX_ERR_SYS, "epoll_ctl on the proxy hub's eventfd: %s", strerror(errno));
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
        return fail(HX_ERR_INVAL, "hx_proxy_hub_start: hub is NULL");
    pthread_mutex_lock(&hub->mu);
    if (hub->running)
        goto exit;
    hub->stopping = false;
    e = pthread_create(&hub->thread, NULL, hub__run, hub);
    if (e != 0) {
        rc = fail(HX_ERR_SYS, "cannot start the proxy hub thread: %s", strerror(e));
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
    ep_del_close(hub, &p->listen_fd);
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
 * Public API: proxies and faults
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
        return fail(HX_ERR_INVAL, "hx_proxy_add: hub, upstream_host, upstream_port and out "
                    "are required");
    *out = NULL;
    snprintf(port_s, sizeof(port_s), "%u", upstream_port);
    gai = getaddrinfo(upstream_host, port_s, &hints, &ai);
    if (gai != 0 || ai == NULL)
        return fail(HX_ERR_INVAL, "cannot resolve the broker host '%s': %s (use an IP address "
                    "or a name in /etc/hosts)", upstream_host, gai_strerror(gai));
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        rc = fail(HX_ERR_NOMEM, "out of memory adding a proxy");
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

#define LOCKED(p) for (int once_ = (pthread_mutex_lock(&(p)->hub->mu), 1); once_; \
                       once_ = (pthread_mutex_unlock(&(p)->hub->mu), 0))

int hx_proxy_set_name(struct hx_proxy *p, const char *name)
{
    if (p == NULL || name == NULL || name[0] == '\0' || strchr(name, '/') != NULL)
        return fail(HX_ERR_INVAL, "hx_proxy_set_name: a non-empty name without '/' is required");
    LOCKED(p) snprintf(p->name, sizeof(p->name), "%s", name);
    return HX_OK;
}

int hx_proxy_set_pcap_dir(struct hx_proxy *p, const char *dir)
{
    char *copy = NULL;

    if (p == NULL)
        return fail(HX_ERR_INVAL, "hx_proxy_set_pcap_dir: proxy is NULL");
    if (dir != NULL && (copy = strdup(dir)) == NULL)
        return fail(HX_ERR_NOMEM, "out of memory setting the pcap folder");
    LOCKED(p) {
        free(p->pcap_dir);
        p->pcap_dir = copy;
        p->pcap_off = (dir == NULL);
    }
    return HX_OK;
}

static int check_dir_type(enum hx_proxy_dir dir, int type, const char *fn)
{
    if ((int)dir < 0 || (int)dir >= HX_PROXY_DIRS)
        return fail(HX_ERR_INVAL, "%s: direction %d is neither HX_PROXY_TO_BROKER nor "
                    "HX_PROXY_TO_DEVICE", fn, (int)dir);
    if (type < 0 || type >= HX_MQTT_TYPE_COUNT)
        return fail(HX_ERR_INVAL, "%s: packet type %d is not 0 (any) .. 15", fn, type);
    return HX_OK;
}

int hx_proxy_drop(struct hx_proxy *p, enum hx_proxy_dir dir, int type, int count)
{
    int rc = p == NULL ? fail(HX_ERR_INVAL, "hx_proxy_drop: proxy is NULL")
                       : check_dir_type(dir, type, "hx_proxy_drop");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) p->drop[dir][type] = count;
    return HX_OK;
}

int hx_proxy_delay(struct hx_proxy *p, enum hx_proxy_dir dir, int type, uint32_t ms)
{
    int rc = p == NULL ? fail(HX_ERR_INVAL, "hx_proxy_delay: proxy is NULL")
                       : check_dir_type(dir, type, "hx_proxy_delay");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) p->delay_ms[dir][type] = ms;
    return HX_OK;
}

int hx_proxy_hold(struct hx_proxy *p, enum hx_proxy_dir dir, int type, bool on)
{
    int rc = p == NULL ? fail(HX_ERR_INVAL, "hx_proxy_hold: proxy is NULL")
                       : check_dir_type(dir, type, "hx_proxy_hold");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) {
        int64_t now = now_us();
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
    int rc = p == NULL ? fail(HX_ERR_INVAL, "hx_proxy_duplicate: proxy is NULL")
                       : check_dir_type(dir, 0, "hx_proxy_duplicate");
    if (rc != HX_OK)
        return rc;
    if (count < 0)
        return fail(HX_ERR_INVAL, "hx_proxy_duplicate: count %d is negative", count);
    LOCKED(p) p->dup[dir] = count;
    return HX_OK;
}

int hx_proxy_cut(struct hx_proxy *p, enum hx_proxy_cut_mode how)
{
    int n = 0;

    if (p == NULL || (how != HX_PROXY_CUT_RST && how != HX_PROXY_CUT_FIN))
        return fail(HX_ERR_INVAL, "hx_proxy_cut: a proxy and HX_PROXY_CUT_RST or _FIN are required");
    LOCKED(p) {
        while (p->links != NULL) {
            struct link *l = p->links;
            struct ev_args a = { .kind = HX_PROXY_EV_CUT, .link_id = l->id, .dir = -1, .type = -1 };
            p->c.cuts++;
            n++;
            emit(p, &a, "cut the link with %s", how == HX_PROXY_CUT_RST ? "RST" : "FIN");
            link__close(l, how == HX_PROXY_CUT_RST ? CLOSE_RST : CLOSE_FIN, "cut");
        }
    }
    return n;
}

/* Close links that a black-hole held half-open; release the rest. Hub lock held. */
static void proxy__after_blackhole(struct hx_proxy *p)
{
    int64_t now = now_us();
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
        return fail(HX_ERR_INVAL, "hx_proxy_blackhole: proxy is NULL");
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
    int rc = p == NULL ? fail(HX_ERR_INVAL, "hx_proxy_throttle: proxy is NULL")
                       : check_dir_type(dir, 0, "hx_proxy_throttle");
    if (rc != HX_OK)
        return rc;
    LOCKED(p) {
        int64_t now = now_us();
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
        ep_del_close(p->hub, &p->listen_fd);
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
        return fail(HX_ERR_INVAL, "hx_proxy_down: a proxy and a valid mode are required");
    LOCKED(p) rc = proxy__set_down(p, mode);
    return rc;
}

int hx_proxy_heal(struct hx_proxy *p)
{
    int rc = HX_OK;

    if (p == NULL)
        return fail(HX_ERR_INVAL, "hx_proxy_heal: proxy is NULL");
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
            int64_t now = now_us();
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
        return fail(HX_ERR_INVAL, "hx_proxy_inject: unknown malformed kind %d", (int)what);
    }
    if (p == NULL)
        return fail(HX_ERR_INVAL, "hx_proxy_inject: proxy is NULL");
    LOCKED(p) {
        int64_t now = now_us();
        for (struct link *l = p->links, *next; l != NULL; l = next) {
            struct ev_args a = { .kind = HX_PROXY_EV_INJECTED, .link_id = l->id,
                                 .dir = HX_PROXY_TO_DEVICE, .type = -1, .bytes = n };
            next = l->next;
            if (l->fd[0] < 0)
                continue;
            if (chunk_push(&l->f[HX_PROXY_TO_DEVICE], b, n, now,
                           what == HX_PROXY_TRUNCATED_THEN_CLOSE) != HX_OK)
                continue;
            p->c.injected++;
            count++;
            emit(p, &a, "injected %zu malformed bytes (kind %d) to device", n, (int)what);
            link__pump(l, now);
        }
    }
    return count;
}

int hx_proxy_counters(struct hx_proxy *p, struct hx_proxy_counters *out)
{
    if (p == NULL || out == NULL)
        return fail(HX_ERR_INVAL, "hx_proxy_counters: proxy and out are required");
    LOCKED(p) *out = p->c;
    return HX_OK;
}
