/*
 * fleet_identity.h - each device's own credentials, for brokers with per-device ACLs
 * (mosquitto `pattern readwrite scanners/%u/#` or `%c`): a client certificate and key per
 * device (--cert-dir DIR: DIR/<id>.crt, DIR/<id>.key), a password per device
 * (--password-file: "id:password" lines), and the device id as user name
 * (--id-as-username).
 *
 * Everything is checked when the fleet is made, device by device, so a missing file or
 * password is one clear error before any device connects, never a connect failure later.
 * Passwords are never printed; the memory that held them is cleared at free.
 *
 * Ownership: fleet_identity_load's result belongs to the caller (fleet_identity_free). The
 * strings fleet_identity_apply puts into a transport's options point into it or into the
 * caller's buffers: valid until the device is made (which copies them).
 */
#ifndef SIM_FLEET_IDENTITY_H
#define SIM_FLEET_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>

#include "sim/transport.h"

struct fleet_identity;

/* Read the password file, if any. NULL cert_dir and password_file with !id_as_username:
   *out = NULL (nothing to do). 0, or SIM_ERR_INVAL / SIM_ERR_IO after saying why on
   stderr (the file, the line, never the password). */
int fleet_identity_load(const char *cert_dir, const char *password_file, bool id_as_username,
                        struct fleet_identity **out);

/* Fill t with device id's credentials: user name, password, certificate and key (paths
   written into crt and key, each cap bytes). NULL ident leaves t as it is. 0, or
   SIM_ERR_INVAL after saying on stderr what is missing for which device. */
int fleet_identity_apply(const struct fleet_identity *ident, const char *id,
                         struct sim_transport_opts *t, char *crt, char *key, size_t cap);

void fleet_identity_free(struct fleet_identity *ident);

#endif
