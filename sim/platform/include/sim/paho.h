/*
 * sim/paho.h - the one way scansim creates Eclipse Paho MQTTAsync clients.
 *
 * Why: Paho 1.3.12 tears its library down when the last client of a process is destroyed
 * (MQTTAsync_destroy -> MQTTAsync_terminate) and sets it up again on the next create. The
 * tear-down does not wait for its send and receive threads to finish: each writes a last
 * trace entry after it has said it stopped, while the destroying thread frees the trace
 * buffer (Log_terminate takes no lock). The late entry then allocates a fresh buffer that
 * the next create's Log_initialize overwrites - a 124,800-byte leak that LeakSanitizer
 * reported in CI after a device lost its broker and connected again - or writes into freed
 * memory. The same tear-down race is paho.mqtt.c #323 and #1669 (open); #1124 fixed one part.
 *
 * What: sim_paho_create() first makes, once per process, one idle client that is never
 * connected and never destroyed, so Paho's count of clients never falls to zero and its
 * tear-down never runs while the process lives. Paho's two threads then keep running once
 * started, idle when no client is connected. A destroy no longer waits in the 100 ms steps
 * of Paho's thread shutdown either.
 *
 * Ownership: the handle made in *handle is the caller's, freed with MQTTAsync_destroy as any
 * other. The idle client is Paho's until the process ends (reachable from Paho's globals, so
 * a leak checker does not count it).
 */
#ifndef SIM_PAHO_H
#define SIM_PAHO_H

#include <stdbool.h>

#include <MQTTAsync.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * MQTTAsync_createWithOptions with persistence NONE, after making sure Paho's library stays
 * initialised for the life of the process. Any thread may call it.
 * @param handle     receives the new client; NULL on failure
 * @param uri        "tcp://host:port", "ssl://host:port", ...
 * @param client_id  the MQTT client identifier
 * @param opts       create options (MQTT version, buffering), or NULL for Paho's defaults
 * @return MQTTASYNC_SUCCESS or Paho's error code
 */
int sim_paho_create(MQTTAsync *handle, const char *uri, const char *client_id,
                    MQTTAsync_createOptions *opts);

/** Is uri a TLS address (ssl:// or mqtts://)? NULL is not. */
bool sim_paho_uri_is_tls(const char *uri);

/**
 * The TLS part of a connect, the same for every client: for a TLS address (ssl:// or
 * mqtts://) fill *ssl with the CA that vouches for the broker, the client's certificate and
 * key, and whether to verify the broker (certificate and host name), and point co->ssl at
 * it. Any other address leaves both untouched. Everything is borrowed: ssl and the strings
 * must live until MQTTAsync_connect has returned.
 * @param cafile    PEM bundle to verify the broker with; NULL = the system's
 * @param certfile  the client's certificate (PEM), NULL = none
 * @param keyfile   its private key (PEM), NULL = in certfile
 * @param verify    false skips the broker's certificate and host name checks
 * @return true when the address is a TLS one and co->ssl was set
 */
bool sim_paho_tls(MQTTAsync_connectOptions *co, MQTTAsync_SSLOptions *ssl, const char *uri,
                  const char *cafile, const char *certfile, const char *keyfile, bool verify);

#ifdef __cplusplus
}
#endif

#endif
