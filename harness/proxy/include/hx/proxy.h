/*
 * hx/proxy.h - the MQTT-aware fault proxy: one proxy per device link, many proxies per hub.
 *
 *      device ──tcp──► [proxy: 127.0.0.1:hx_proxy_port()] ──tcp──► broker (upstream)
 *
 * A hub is one thread with one epoll set, non-blocking sockets, per-direction queues and a
 * timer deadline; it serves any number of proxies (1,000 devices = 1,000 proxies, one
 * thread). Each proxy listens on its own loopback port. Every connection accepted on that
 * port is a "link": the hub opens a new upstream connection for it and forwards bytes both
 * ways, reading MQTT framing packet by packet (hx/mqtt_frame.h). A device that reconnects
 * gets a new link through the same proxy; faults set on the proxy persist across links until
 * healed. Directions are named from where the bytes go: HX_PROXY_TO_BROKER carries what the
 * device sends, HX_PROXY_TO_DEVICE what the broker sends.
 *
 * Faults (all thread-safe, applied under the hub lock, effective from the next packet):
 *   drop N packets of a type, delay packets by D ms (order kept), duplicate the next N
 *   PUBLISH (the copy of a QoS>0 PUBLISH has DUP=1), cut the links (RST or FIN, both sides),
 *   black-hole, throttle (bytes/s per direction), down (refuse new links), inject malformed
 *   MQTT toward the device, heal (clear everything).
 *
 * Black-hole semantics (Toxiproxy "timeout" with no timeout): every complete packet arriving
 * from either side is swallowed (counted in blackholed_bytes), nothing is forwarded, and both
 * TCP connections stay open, so keep-alive expires on the broker and it publishes the Will.
 * A side that closes during a black-hole is NOT propagated to the other side (a partition
 * hides the close); the other side is closed with FIN when the hole is healed. New links
 * accepted during a black-hole are black-holed too (the upstream connection is opened, but
 * nothing passes). Packets are swallowed whole, so after a heal both streams are still framed.
 *
 * Malformed framing from a peer (packet type 0, a 5-byte remaining length, flags that the
 * type forbids, a packet larger than max_frame): logged, counted in malformed, link cut.
 *
 * pcap: with a pcap folder (hub option, or per proxy), each link's traffic, as forwarded, is
 * written to "<dir>/<name>-link<N>.pcap" through libpcap's dump API with synthesized
 * Ethernet/IPv4/TCP headers (SYN, SYN-ACK, ACK at the start, FIN or RST at the end, consistent
 * seq/ack). The server port is the broker's port: `tshark -r F -d tcp.port==PORT,mqtt`.
 *
 * Threads: every function may be called from any thread, except that the event callback
 * runs on the hub thread (or on the thread of the command that caused the event) while the
 * hub lock is held: it must return quickly and must not call hx_proxy_* functions.
 *
 * Ownership: the caller owns the hub (hx_proxy_hub_free frees it and all its proxies).
 * A struct hx_proxy belongs to its hub; hx_proxy_remove() frees it earlier. Strings passed
 * in are copied. Errors: 0 or a negative enum hx_err (hx/err.h); hx_proxy_last_error()
 * describes the last failure of the calling thread in words.
 */
#ifndef HX_PROXY_H
#define HX_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/err.h"
#include "hx/mqtt_frame.h"

#ifdef __cplusplus
extern "C" {
#endif

struct hx_proxy_hub;
struct hx_proxy;

/* Where bytes go. */
enum hx_proxy_dir {
    HX_PROXY_TO_BROKER = 0, /* from the device to the broker */
    HX_PROXY_TO_DEVICE = 1, /* from the broker to the device */
};
#define HX_PROXY_DIRS 2

/* In hx_proxy_drop / hx_proxy_delay: every packet type. (Type 0 is never forwarded.) */
#define HX_PROXY_ANY_TYPE 0

/* How hx_proxy_cut ends the links. */
enum hx_proxy_cut_mode {
    HX_PROXY_CUT_RST = 0, /* SO_LINGER {1, 0} then close: the peers see ECONNRESET */
    HX_PROXY_CUT_FIN = 1, /* shutdown(SHUT_RDWR) then close: the peers see an orderly EOF */
};

/* What hx_proxy_down does with new connections. */
enum hx_proxy_down_mode {
    HX_PROXY_UP = 0,          /* accept and forward (the default) */
    HX_PROXY_DOWN_RESET = 1,  /* accept, then close with RST at once (counted in refused) */
    HX_PROXY_DOWN_CLOSED = 2, /* close the listening socket: connect() gets ECONNREFUSED;
                                 the same port is bound again on HX_PROXY_UP / heal */
};

/* Hostile bytes hx_proxy_inject sends toward the device, at a packet boundary. */
enum hx_proxy_malformed {
    HX_PROXY_BAD_REMAINING_LENGTH = 0, /* 30 FF FF FF FF 01: a 5-byte varint */
    HX_PROXY_TRUNCATED_THEN_CLOSE = 1, /* PUBLISH announcing 64 bytes, 10 sent, then FIN both sides */
    HX_PROXY_OVERSIZE = 2,             /* 30 FF FF FF 7F (268,435,455 bytes announced) + 16 bytes */
    HX_PROXY_UNKNOWN_TYPE0 = 3,        /* 00 00: reserved packet type 0 */
};

/* Counters of one direction. Indexes [t] are packet types 0..15. */
struct hx_proxy_dir_counters {
    uint64_t bytes;                          /* bytes read from the source side */
    uint64_t bytes_by_type[HX_MQTT_TYPE_COUNT];
    uint64_t packets[HX_MQTT_TYPE_COUNT];    /* complete packets read */
    uint64_t publish_dup;                    /* PUBLISH packets read with DUP=1 */
    uint64_t forwarded_bytes;                /* bytes written to the destination side */
    uint64_t dropped[HX_MQTT_TYPE_COUNT];
    uint64_t delayed[HX_MQTT_TYPE_COUNT];
    uint64_t duplicated[HX_MQTT_TYPE_COUNT];
    uint64_t blackholed_bytes;               /* swallowed by a black-hole */
    uint64_t malformed;                      /* invalid frames read from the source side */
};

/* A snapshot of one proxy's counters (hx_proxy_counters). */
struct hx_proxy_counters {
    uint64_t links_accepted;   /* connections accepted on the listening port */
    uint64_t links_active;     /* links open now */
    uint64_t refused;          /* connections refused while down */
    uint64_t upstream_failures;/* links closed because the broker could not be reached */
    uint64_t cuts;             /* links cut by hx_proxy_cut or by malformed framing */
    uint64_t injected;         /* hx_proxy_inject payloads queued toward devices */
    struct hx_proxy_dir_counters dir[HX_PROXY_DIRS];
};

/* What a proxy event reports. */
enum hx_proxy_event_kind {
    HX_PROXY_EV_LINK_OPEN,       /* a device connected (link_id new) */
    HX_PROXY_EV_LINK_CLOSED,     /* a link ended (either side closed, or it was cut) */
    HX_PROXY_EV_UPSTREAM_FAILED, /* the broker could not be reached; the device side closed */
    HX_PROXY_EV_REFUSED,         /* a connection refused while down */
    HX_PROXY_EV_DROPPED,         /* a packet dropped (dir, type, packet id) */
    HX_PROXY_EV_DELAYED,         /* a packet delayed (bytes = delay in ms) */
    HX_PROXY_EV_DUPLICATED,      /* a PUBLISH sent twice */
    HX_PROXY_EV_CUT,             /* a link cut by a command */
    HX_PROXY_EV_BLACKHOLED,      /* a packet swallowed by a black-hole */
    HX_PROXY_EV_MALFORMED,       /* invalid framing from a peer; the link is cut */
    HX_PROXY_EV_INJECTED,        /* malformed bytes queued toward a device */
    HX_PROXY_EV_PCAP_ERROR,      /* a capture file could not be written (capture stops) */
};

struct hx_proxy_event {
    enum hx_proxy_event_kind kind;
    struct hx_proxy *proxy;
    const char *proxy_name;     /* hx_proxy_set_name, or "proxy-PORT" */
    uint64_t link_id;           /* 1, 2, ... per proxy; 0 when no link */
    int dir;                    /* enum hx_proxy_dir, or -1 */
    int type;                   /* MQTT packet type, or -1 */
    bool has_packet_id;
    uint16_t packet_id;
    uint64_t bytes;             /* packet size (or delay ms for DELAYED) */
    int64_t t_ms;               /* CLOCK_MONOTONIC, ms */
    const char *text;           /* e.g. "proxy dev-3: dropped PUBACK id=7 to broker" */
};

/* Called for each event with the hub lock held: return fast, call no hx_proxy_* function. */
typedef void (*hx_proxy_event_fn)(void *ctx, const struct hx_proxy_event *ev);

struct hx_proxy_hub_opts {
    const char *pcap_dir;       /* NULL = no capture (a proxy can set its own); made if missing */
    size_t max_frame;           /* 0 = 1 MiB: a bigger packet counts as malformed (link cut) */
    size_t high_water;          /* 0 = 4 MiB: queued bytes per direction before reading pauses */
    hx_proxy_event_fn on_event; /* NULL = no events */
    void *event_ctx;
    bool log_stderr;            /* also print each event's text on stderr */
};

/**
 * Create a hub (no thread yet). opts may be NULL. Raises the soft RLIMIT_NOFILE to the hard
 * limit, since each proxy holds a listening socket and each link two sockets and a pcap file.
 */
int hx_proxy_hub_create(const struct hx_proxy_hub_opts *opts, struct hx_proxy_hub **out);

/** Start the hub thread. Proxies may be added before or after. */
int hx_proxy_hub_start(struct hx_proxy_hub *hub);

/** Stop the hub thread and close every link (pcap files are finished). Idempotent. */
int hx_proxy_hub_stop(struct hx_proxy_hub *hub);

/** Stop if running, free all proxies and the hub. NULL is fine. */
void hx_proxy_hub_free(struct hx_proxy_hub *hub);

/**
 * Add a proxy to upstream_host:upstream_port (resolved now, IPv4 or IPv6), listening on
 * 127.0.0.1:listen_port (0 = a free port; read it with hx_proxy_port).
 */
int hx_proxy_add(struct hx_proxy_hub *hub, const char *upstream_host, uint16_t upstream_port,
                 uint16_t listen_port, struct hx_proxy **out);

/** Close the proxy's links and listening socket and free it. NULL is fine. */
void hx_proxy_remove(struct hx_proxy *proxy);

/** The loopback port devices connect to. */
uint16_t hx_proxy_port(const struct hx_proxy *proxy);

/** Name used in events, logs and pcap file names (default "proxy-PORT"). Copied. */
int hx_proxy_set_name(struct hx_proxy *proxy, const char *name);

/** Capture links opened from now on into dir (NULL = stop capturing new links). */
int hx_proxy_set_pcap_dir(struct hx_proxy *proxy, const char *dir);

/**
 * Drop the next count packets of type (or HX_PROXY_ANY_TYPE) going in dir.
 * count < 0 drops all of them until healed; count 0 clears this drop rule.
 */
int hx_proxy_drop(struct hx_proxy *proxy, enum hx_proxy_dir dir, int type, int count);

/**
 * Delay packets of type (or HX_PROXY_ANY_TYPE) going in dir by ms milliseconds. Order is
 * kept: a packet never overtakes an earlier one in the same direction. ms 0 clears the rule.
 */
int hx_proxy_delay(struct hx_proxy *proxy, enum hx_proxy_dir dir, int type, uint32_t ms);

/**
 * Hold packets of type (or HX_PROXY_ANY_TYPE) going in dir (on = true) until released
 * (on = false) or healed: they queue in order, counted as delayed, and leave on release.
 * Later packets in that direction queue behind a held one (order is kept).
 */
int hx_proxy_hold(struct hx_proxy *proxy, enum hx_proxy_dir dir, int type, bool on);

/** Send the next count PUBLISH going in dir twice (the copy of QoS>0 gets DUP=1). */
int hx_proxy_duplicate(struct hx_proxy *proxy, enum hx_proxy_dir dir, int count);

/** Cut every open link of the proxy on both sides now. Returns the number cut (>= 0). */
int hx_proxy_cut(struct hx_proxy *proxy, enum hx_proxy_cut_mode how);

/** Start (on = true) or end a black-hole (see the file comment). */
int hx_proxy_blackhole(struct hx_proxy *proxy, bool on);

/** Limit dir to bytes_per_s (0 = unlimited). Bursts are at most bytes_per_s / 10 + 1 KiB. */
int hx_proxy_throttle(struct hx_proxy *proxy, enum hx_proxy_dir dir, uint32_t bytes_per_s);

/** Refuse new connections (or HX_PROXY_UP to accept again). Open links are untouched. */
int hx_proxy_down(struct hx_proxy *proxy, enum hx_proxy_down_mode mode);

/**
 * Clear every fault: drops, delays (queued packets are released now), duplicates,
 * black-hole (held half-closed links are closed), throttles, down.
 */
int hx_proxy_heal(struct hx_proxy *proxy);

/**
 * Queue malformed bytes toward the device on every open link, after the packets already
 * queued. Returns the number of links it was queued on (0 when none is open).
 */
int hx_proxy_inject(struct hx_proxy *proxy, enum hx_proxy_malformed what);

/** A consistent snapshot of the proxy's counters. */
int hx_proxy_counters(struct hx_proxy *proxy, struct hx_proxy_counters *out);

/** "to broker" / "to device". */
const char *hx_proxy_dir_name(enum hx_proxy_dir dir);

/** The last error message of this thread, in words. */
const char *hx_proxy_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* HX_PROXY_H */
