/*
 * ctl_request.h - what `scansim ctl` sends, worked out before any connection: the command
 * (checked against the firmware's list, docs/protocol.md "Commands"), the devices a
 * selector names, the args object, and one cmd_id per device.
 *
 * Selector: a device id, a range PREFIX<A>..<B> (scanner-1..100, or scanner-1..scanner-100),
 * a comma-separated list of these, or `all` alone (one publish on command/all; the devices
 * that answer are found out, not expected). Ids are kept in the order given, each once.
 *
 * Ownership: a struct ctl_request owns its ids and its args (cJSON); ctl_request_free
 * releases both. Strings it is given (argv) are borrowed, never kept beyond the call.
 */
#ifndef CTL_REQUEST_H
#define CTL_REQUEST_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define CTL_DEVICES_MAX 100000 /* ids one invocation may address (a range's size included) */
#define CTL_ID_MAX 64          /* bytes of a device id, NUL included */
#define CTL_CMD_ID_MAX 33      /* 1..32 printable ASCII (FW_CMD_ID_MAX), NUL included */

struct ctl_command {
    const char *name;  /* the firmware's word */
    bool text;         /* takes a positional text (args.text) */
    bool force;        /* takes args.force (--force) */
    const char *args;  /* for --help and errors: the args it takes */
    const char *what;  /* for --help: what it does */
};

struct ctl_request {
    const struct ctl_command *cmd;
    bool all;                 /* selector `all`: publish once on command/all */
    char (*ids)[CTL_ID_MAX];  /* the devices addressed, in order, each once (none for all) */
    size_t n_ids;
    cJSON *args;              /* the args object (maybe empty) */
    char *args_json;          /* args printed once (unformatted), for every payload */
    char cmd_id_base[24];     /* "ctl-<pid hex>-<time hex>"; a device's id adds "-<n hex>" */
};

/** The commands, NULL-terminated by name. */
extern const struct ctl_command ctl_commands[];

/** The command named word, or NULL. */
const struct ctl_command *ctl_command_find(const char *word);

/** Parse cmd, selector and the positional args into r (zeroed first). Returns 0, or -1
 *  after printing "scansim ctl: ..." to stderr (a usage error). */
int ctl_request_parse(struct ctl_request *r, const char *cmd, const char *selector,
                      char **args, int n_args, bool force);

/** The cmd_id of device i (0 for `all`) into out[CTL_CMD_ID_MAX]. */
void ctl_request_cmd_id(const struct ctl_request *r, size_t i, char *out);

/** Which device a reply's cmd_id is for: 0 and *i, or -1 when it is none of ours. */
int ctl_request_match(const struct ctl_request *r, const char *cmd_id, size_t *i);

/** The command's JSON payload for cmd_id into buf; its length, or 0 when it does not fit. */
size_t ctl_request_payload(const struct ctl_request *r, const char *cmd_id, char *buf, size_t cap);

void ctl_request_free(struct ctl_request *r);

#endif /* CTL_REQUEST_H */
