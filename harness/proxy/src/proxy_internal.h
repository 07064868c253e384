/*
 * proxy_internal.h - the fault proxy's shared state (harness/proxy/src only).
 *
 * proxy.c is the hub: its thread and epoll loop, the hub and proxy objects, errors and
 * events. proxy_link.c is one link's byte path: accept, read, cut into packets, apply the
 * faults to each packet, queue, write under a throttle, close. proxy_fault.c holds the
 * fault commands the scenario thread sends. proxy_pcap.c writes a link's capture.
 *
 * Locking: one mutex per hub ("the hub lock") guards every field below. Functions declared
 * here are called with it held.
 */
#ifndef HX_PROXY_INTERNAL_H
#define HX_PROXY_INTERNAL_H

#include "hx/proxy.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy_pcap.h"

#define READ_CHUNK 65536u
#define HOLD_MS UINT32_MAX          /* delay_ms value meaning "hold until released" */
#define HELD_US INT64_MAX           /* release time of a held packet */

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

/* What an event says (proxy__emit). dir and type are -1 when they do not apply. */
struct ev_args {
    enum hx_proxy_event_kind kind;
    uint64_t link_id;
    int dir, type;
    const struct hx_mqtt_frame *frame;
    uint64_t bytes;
};

enum close_how { CLOSE_FIN, CLOSE_RST };

/* Run the next statement (or block) with the hub lock held. A return inside would skip the
   unlock: the bodies never return. */
#define LOCKED(p) for (int once_ = (pthread_mutex_lock(&(p)->hub->mu), 1); once_; \
                       once_ = (pthread_mutex_unlock(&(p)->hub->mu), 0))

/* ------------------------------------------------------------------------------------------
 * proxy.c: errors, time, events, sockets
 * ---------------------------------------------------------------------------------------- */

/* Set hx_proxy_last_error() from fmt and return err. */
int proxy__fail(int err, const char *fmt, ...);
/* Monotonic time in microseconds. */
int64_t proxy__now_us(void);
/* Format and deliver one event; what is "dropped", "delayed 300 ms", ... */
void proxy__emit(struct hx_proxy *p, const struct ev_args *a, const char *fmt, ...);
/* Remove *fd from the hub's epoll set, close it, set it to -1 (nothing when already -1). */
void proxy__ep_del_close(struct hx_proxy_hub *hub, int *fd);
/* Listen on 127.0.0.1:port (0: any) and watch it; p->port is the bound port. */
int proxy__listen(struct hx_proxy *p, uint16_t port);

/* ------------------------------------------------------------------------------------------
 * proxy_link.c: links
 * ---------------------------------------------------------------------------------------- */

/* End the link: both sockets closed (RST or FIN), capture finished, to the graveyard. */
void link__close(struct link *l, enum close_how how, const char *why);
/* Free a buried link (from the graveyard). */
void link__free(struct link *l);
/* Write both flows then refresh interest. */
void link__pump(struct link *l, int64_t now);
/* An epoll event on side (0 device, 1 broker) of the link. */
void link__on_event(struct link *l, int side, uint32_t events, int64_t now);
/* The listening socket is readable: accept a batch of devices. */
void proxy__on_listen(struct hx_proxy *p, int64_t now);
/* Queue len bytes on the flow, released not before release_us and never before what is
   queued ahead; close_after: FIN both sides once written. 0 or HX_ERR_NOMEM. */
int flow__push(struct flow *f, const uint8_t *data, size_t len, int64_t release_us,
               bool close_after);

#endif /* HX_PROXY_INTERNAL_H */
