/*
 * demo_commands.c - the demo's keys that send remote commands from the backend to the
 * chosen scanner (docs/protocol.md, "Commands"): identify, status, a message, reboot, and
 * lock / unlock. The OLED shows their effect; the scanner's reply shows in the log as MQTT
 * traffic.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "demo_app.h"

/* Messages the M key cycles through, as a dispatcher would send them. */
static const char *const demo_messages[] = {
    "Go to dock 3", "Pallet 12 is urgent", "Battery low: swap at the desk", "Break in 5 min",
};

/* Publishes {"cmd_id","cmd","args"} on the chosen scanner's command topic. */
static void demo_commands__send(struct demo *d, const char *cmd, const char *args,
                                const char *what)
{
    struct demo_unit *u = &d->units[d->view.chosen];
    char topic[FW_TOPIC_MAX], payload[256], cmd_id[32];

    snprintf(topic, sizeof(topic), "%s", fw_device_topic_command(sim_device_fw(u->dev)));
    snprintf(cmd_id, sizeof(cmd_id), "demo-%ld-%u", (long)getpid(), ++d->commands_sent);
    snprintf(payload, sizeof(payload), "{\"cmd_id\":\"%s\",\"cmd\":\"%s\"%s%s}", cmd_id, cmd,
             args ? ",\"args\":" : "", args ? args : "");
    if (!d->backend) {
        demo_notice(&d->view, true, "no backend (--no-backend): send it yourself, e.g. "
                    "mosquitto_pub -t %s -q 1 -m '%s'", topic, payload);
        return;
    }
    int rc = hx_backend_publish_raw(d->backend, topic, payload, strlen(payload),
                                    d->common.qos);
    if (rc) {
        demo_notice(&d->view, true, "the backend could not send %s: %s", cmd,
                    hx_backend_last_error());
        return;
    }
    demo_log(&d->view, DEMO_LOG_UI, "backend sends %s to %s (%s)", cmd, u->id, cmd_id);
    demo_notice(&d->view, false, "%s sent to %s: the reply shows in the log", what, u->id);
}

bool demo_command_key(struct demo *d, int ch)
{
    char args[128];

    switch (ch) {
    case 'I':
        demo_commands__send(d, "identify", "{\"seconds\":5}", "identify (5 s)");
        return true;
    case 'S':
        demo_commands__send(d, "status", NULL, "status");
        return true;
    case 'M': {
        size_t n = sizeof(demo_messages) / sizeof(demo_messages[0]);
        snprintf(args, sizeof(args), "{\"text\":\"%s\"}", demo_messages[d->messages_sent++ % n]);
        demo_commands__send(d, "message", args, "a message");
        return true;
    }
    case 'R':
        demo_commands__send(d, "reboot", NULL, "reboot");
        return true;
    case 'L': {
        struct fw_status st;
        fw_device_status(sim_device_fw(d->units[d->view.chosen].dev), &st);
        demo_commands__send(d, st.locked ? "unlock" : "lock", NULL,
                            st.locked ? "unlock" : "lock");
        return true;
    }
    default:
        return false;
    }
}
