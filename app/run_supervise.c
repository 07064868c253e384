/*
 * run_supervise.c - worker and broker deaths during `scansim run` (run_supervise.h).
 */
#include "run_supervise.h"

#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#define BROKER_CHECK_MS 100 /* how often the embedded broker's process is looked at */

void run_watch_init(struct run_watch *w, struct hx_broker *embedded, const char *uri,
                    uint64_t give_up_ms)
{
    memset(w, 0, sizeof *w);
    w->embedded = embedded;
    w->uri = uri;
    w->give_up_ms = give_up_ms;
}

static void watch_note(struct run_watch *w, const char *text)
{
    fprintf(stderr, "\nscansim run: %s\n", text);
    if (w->n_notes < RUN_WATCH_NOTES)
        snprintf(w->notes[w->n_notes++], sizeof w->notes[0], "%s", text);
}

static void watch_workers(struct run_watch *w, struct fleet_workers *workers,
                          struct fleet_driver *driver, uint64_t now_ms)
{
    struct fleet_worker_death d;
    char text[320];

    while (workers && fleet_workers_next_death(workers, &d)) {
        w->workers_dead++;
        w->devices_lost += d.devices;
        snprintf(text, sizeof text, "%s %s: its %ld devices count as offline%s", d.who, d.cause,
                 d.devices, driver ? "; their unfinished items go to live devices" : "");
        watch_note(w, text);
        if (driver)
            fleet_driver_devices_lost(driver, d.first_index, d.devices, now_ms);
    }
}

static void watch_broker(struct run_watch *w, bool reachable, uint64_t now_ms)
{
    char why[120], text[320];
    pid_t pid = 0;

    if (w->broker_gone || now_ms < w->next_broker_check)
        return;
    w->next_broker_check = now_ms + BROKER_CHECK_MS;
    if (w->embedded && hx_broker_death(w->embedded, &pid, why, sizeof why)) {
        snprintf(text, sizeof text, "the embedded %s (pid %d) exited: %s; nothing can reach it "
                 "again, stopping the run", hx_broker_kind_name(hx_broker_kind(w->embedded)),
                 (int)pid, why);
        snprintf(w->broker_words, sizeof w->broker_words, "the embedded %s (pid %d) %s",
                 hx_broker_kind_name(hx_broker_kind(w->embedded)), (int)pid, why);
        w->broker_gone = true;
        watch_note(w, text);
        return;
    }
    if (reachable) {
        w->unreachable_since = 0;
        return;
    }
    if (!w->unreachable_since)
        w->unreachable_since = now_ms;
    if (w->give_up_ms && now_ms - w->unreachable_since >= w->give_up_ms) {
        snprintf(w->broker_words, sizeof w->broker_words, "%s unreachable for %.0f s", w->uri,
                 (double)w->give_up_ms / 1000.0);
        snprintf(text, sizeof text, "no backend and no device has reached the broker %s for "
                 "%.0f s: stopping the run", w->uri, (double)w->give_up_ms / 1000.0);
        w->broker_gone = true;
        watch_note(w, text);
    }
}

bool run_watch_check(struct run_watch *w, struct fleet_workers *workers,
                     struct fleet_driver *driver, bool reachable, uint64_t now_ms)
{
    watch_workers(w, workers, driver, now_ms);
    watch_broker(w, reachable, now_ms);
    return w->broker_gone;
}

void run_watch_print(const struct run_watch *w)
{
    for (int i = 0; i < w->n_notes; i++)
        printf("  %-34s %s\n", i == 0 ? "supervision" : "", w->notes[i]);
}

void run_watch_json(const struct run_watch *w, cJSON *j)
{
    cJSON *notes;

    cJSON_AddNumberToObject(j, "workers_dead", w->workers_dead);
    cJSON_AddNumberToObject(j, "devices_lost_with_workers", (double)w->devices_lost);
    cJSON_AddBoolToObject(j, "broker_gone", w->broker_gone);
    if (w->broker_gone)
        cJSON_AddStringToObject(j, "broker_gone_reason", w->broker_words);
    notes = cJSON_AddArrayToObject(j, "supervision");
    for (int i = 0; notes && i < w->n_notes; i++)
        cJSON_AddItemToArray(notes, cJSON_CreateString(w->notes[i]));
}
