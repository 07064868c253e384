/*
 * demo_net.h - the demo's network link: a harness fault proxy between the device and the
 * broker, so the `n` key can take the link away and give it back, as lost WiFi would.
 *
 *     device --tcp--> [hx_proxy on 127.0.0.1:P] --tcp--> broker
 *
 * Cutting closes the proxy's listening port (the device's reconnect attempts are refused)
 * and resets the open link (the device sees the connection lost; the broker sees the
 * reset and publishes the device's retained "offline" Will). Restoring heals the proxy:
 * the device's next reconnect attempt (its own back-off) gets through.
 *
 * Only a plain tcp:// (or mqtt://) broker can be proxied: the proxy reads MQTT framing, which
 * TLS hides. With ssl:// or websockets the device connects directly and `n` is not
 * available (demo_net_open says why).
 *
 * Threading: the proxy runs its own thread (a hub); these functions may be called from the
 * demo's main thread. Ownership: the caller frees with demo_net_free().
 */
#ifndef DEMO_NET_H
#define DEMO_NET_H

#include <stdbool.h>
#include <stddef.h>

struct demo_net;

/**
 * Put a proxy in front of broker_uri. Returns 0 and *out (device_uri() gives what the
 * device connects to); 1 when the URI cannot be proxied (why in err: the caller connects
 * directly); -1 on failure (why in err).
 */
int demo_net_open(const char *broker_uri, struct demo_net **out, char *err, size_t cap);

/** "tcp://host:port" or "mqtt://host:port" (IPv6 as [addr]) -> host, port. 0; 1 when the
 *  scheme cannot be proxied (ssl://, ws://...); -1 when malformed. */
int demo_net_parse_uri(const char *uri, char *host, size_t cap, unsigned *port);

/** The URI the device uses ("tcp://127.0.0.1:P"). */
const char *demo_net_device_uri(const struct demo_net *n);

/** The proxy's loopback port. */
int demo_net_port(const struct demo_net *n);

/** Take the link away: refuse new connections, reset the open ones. Returns the number
 *  of links reset (>= 0) or -1 (why in err). */
int demo_net_cut(struct demo_net *n, char *err, size_t cap);

/** Give the link back (heal every fault). 0 or -1 (why in err). */
int demo_net_restore(struct demo_net *n, char *err, size_t cap);

/** Is the link cut? */
bool demo_net_is_cut(const struct demo_net *n);

/** Stop the proxy and free. NULL is fine. */
void demo_net_free(struct demo_net *n);

#endif /* DEMO_NET_H */
