/*
 * ctl_session.h - one exchange of `scansim ctl` with the broker, through the MQTT edge
 * (sim/mqtt.h): connect, subscribe to scanners/+/command/reply and wait for the SUBACK (a
 * reply faster than the subscription would be lost), publish the command to each device
 * (or once on command/all), and collect the replies whose cmd_id is ours until every
 * device answered or the time-out.
 *
 * Ownership: ctl_session_run fills a ctl_answers it allocates; ctl_answers_free releases
 * the entries and the replies (cJSON) they hold. The request is borrowed for the call.
 */
#ifndef CTL_SESSION_H
#define CTL_SESSION_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "cli.h"
#include "ctl_request.h"

struct ctl_answer {
    char id[CTL_ID_MAX];      /* the device */
    char cmd_id[CTL_CMD_ID_MAX];
    cJSON *reply;             /* its reply (the whole object), NULL = did not answer */
};

struct ctl_answers {
    struct ctl_answer *v;     /* one per device addressed, in order; for `all`, one per
                                 device that answered, in order of arrival */
    size_t n;
    int publish_refused;      /* QoS 1 publishes the broker refused (MQTT 5 reason >= 0x80) */
    int publish_code;         /* the last such reason code */
    bool interrupted;         /* SIGINT/SIGTERM ended the wait early */
    bool sent;                /* the commands were published (the replies are worth showing) */
};

/** Run the exchange against uri with the connection settings of c; wait up to timeout_ms
 *  for the replies. SCANSIM_EXIT_OK (answers filled, whatever the devices said), or
 *  SCANSIM_EXIT_BROKER after printing what happened, to which broker and what to do (broker
 *  unreachable, connection refused, subscription refused, connection lost: answers keeps
 *  what arrived before), or SCANSIM_EXIT_INTERNAL. */
int ctl_session_run(const struct scansim_cli_common *c, const char *uri, const struct ctl_request *r,
                    long timeout_ms, struct ctl_answers *out);

void ctl_answers_free(struct ctl_answers *a);

#endif /* CTL_SESSION_H */
