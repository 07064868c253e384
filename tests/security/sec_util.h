/*
 * sec_util.h - helpers of the security tests (tests/security): a throw-away PKI made by
 * ci/make-pki.sh, TLS / password / ACL broker variants on hx_broker, simulated devices
 * (sim_device on one loop thread) whose log lines and connection words are captured, and
 * reading the broker's log.
 *
 * Every helper that fails marks the running Check test as failed (ck_assert), so tests
 * read top to bottom without error plumbing.
 */
#ifndef SEC_UTIL_H
#define SEC_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/backend.h"
#include "hx/broker.h"
#include "sim/device.h"
#include "sim/loop.h"

/* Generous: ctest -j2 on 2 cores, maybe under sanitizers. */
#define SEC_WAIT_MS 20000
#define SEC_DEVICES 3
#define SEC_BACKEND_PASSWORD "backend-Pw-7f3a"

uint64_t sec_now_ms(void);
void sec_nap_ms(int ms);

/* Make a PKI for SEC_DEVICES devices in a fresh temporary folder; returns its path (static
   storage per call site is the caller's: out must hold 256 bytes). */
void sec_pki_make(char *out, size_t cap);
/* Remove a folder tree (the PKI). */
void sec_rm_rf(const char *dir);
/* dir/name into a static rotating buffer (valid for a few calls). */
const char *sec_path(const char *dir, const char *name);

/* The password of device k (1-based) in the password broker. */
const char *sec_device_password(int k);

enum sec_broker_kind {
    SEC_BROKER_TLS_PASSWORD, /* TLS (server cert), password file, per-device ACL */
    SEC_BROKER_MTLS,         /* TLS, client certificate required, CN = user name, ACL */
};
/* The per-device ACL: each device only under scanners/<its id>/, the backend everywhere
   under scanners/. */
extern const char sec_acl_text[];

struct hx_broker *sec_broker_start(enum sec_broker_kind kind, const char *pki);
/* The same without the ACL, and with users (TLS_PASSWORD) plus extra_user:extra_password
   when extra_user is not NULL: for `scansim run`, whose devices share one identity. */
struct hx_broker *sec_broker_start_open(enum sec_broker_kind kind, const char *pki,
                                        const char *extra_user, const char *extra_password);

/* Occurrences of needle in the broker's log. */
int sec_log_count(struct hx_broker *b, const char *needle);
/* Connections the broker's log shows so far, one line each: "New connection from", or, for
   a TLS listener whose handshake failed on the client's very first bytes (a plain client
   that sends CONNECT at once), "Client connection from ... failed" instead. */
int sec_log_connections(struct hx_broker *b);
/* Does the whole log (or any file) contain needle? */
bool sec_file_contains(const char *path, const char *needle);

/* A backend (per-device layout) over TLS: with the password (TLS_PASSWORD) or its client
   certificate (MTLS). */
struct hx_backend *sec_backend_start(enum sec_broker_kind kind, const char *pki,
                                     const char *uri);

/* ------------------------------------------------------------ devices */

/* What every device of a fleet said: log lines and connection words, one text. */
struct sec_capture;
struct sec_fleet {
    struct sim_loop *loop;
    struct sim_device *dev[8];
    int n;
    struct sec_capture *cap;
};

void sec_fleet_init(struct sec_fleet *f);
/* Add a device with these options (per-device layout unless opts say otherwise); starts
   it (power on). */
struct sim_device *sec_fleet_add(struct sec_fleet *f, struct sim_device_opts *opts);
/* Options for device id on uri with TLS files; cert/key may be NULL. */
void sec_device_opts(struct sim_device_opts *o, const char *id, const char *uri,
                     const char *cafile, const char *cert, const char *key);
void sec_fleet_free(struct sec_fleet *f);
/* A copy of everything the fleet said so far (malloc'ed; free it). */
char *sec_fleet_text(struct sec_fleet *f);

struct sim_device_snapshot sec_snap(struct sim_device *d);
/* Wait until the device is connected / has failed n connects; false on time-out. */
bool sec_wait_connected(struct sim_device *d, int timeout_ms);
bool sec_wait_failures(struct sim_device *d, uint32_t n, int timeout_ms);

/* Publish an item to device id through the backend, let the device's operator scan tag
   (4 bytes from tag_seed) and confirm once the item shows. */
void sec_register_item(struct hx_backend *be, struct sim_device *d, int32_t item_id,
                       uint32_t tag_seed);

#endif
