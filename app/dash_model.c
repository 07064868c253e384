/*
 * dash_model.c - what the dashboard shows, copied in by the command's thread and read by
 * the HTTP threads (dash.h), and the JSON pushed to pages.
 *
 * One mutex guards everything; writers hold it for a copy, readers for building one push
 * (a page of at most DASH_PER_PAGE_MAX devices, a search over the ids: about 0.1 ms at
 * 10,000 devices). Each device row carries a frame version that moves only when its
 * pixels change, so a page receives an OLED again only when it changed.
 *
 * Sections: create/free, writers, readers, JSON.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dash.h"
#include "sim/clock.h"

#define DASH_SAMPLES_MAX 7200   /* two hours of one sample a second; older ones drop */
#define DASH_ITEMS_MAX 200      /* items listed on the items page */

struct dash_dev {
    struct dash_device_row row;
    uint64_t fb_version;        /* moves when row.fb changes */
};

struct dash_model {
    pthread_mutex_t mu;
    pthread_cond_t changed;
    uint64_t version;            /* moves at each dash_model_publish */
    char layout[12];
    struct dash_dev *devs;
    int n_devs;
    char remote_why[160];        /* "" = the rows are here */
    /* The items page: the newest of each filter (all, pending, registered, twice, lost). */
    struct hx_backend_item *items[HX_ITEMS_FILTERS];
    int n_items[HX_ITEMS_FILTERS];
    uint64_t items_total[HX_ITEMS_FILTERS]; /* how many match in all */
    uint64_t items_version[HX_ITEMS_FILTERS];
    struct dash_summary summary;
    struct dash_sample *samples; /* ring */
    uint64_t n_samples;          /* ever added */
    bool ready;                  /* made whole: the lock and condition exist */
};

/* ------------------------------------------------------------------ create/free */

int dash_model_create(int n_devices, const char *layout, struct dash_model **out)
{
    struct dash_model *m = calloc(1, sizeof(*m));

    *out = NULL;
    if (!m)
        return DASH_ERR_NOMEM;
    m->devs = calloc(n_devices > 0 ? (size_t)n_devices : 1, sizeof(*m->devs));
    bool items_ok = true;
    for (int f = 0; f < HX_ITEMS_FILTERS; f++) {
        m->items[f] = calloc(DASH_ITEMS_MAX, sizeof(*m->items[f]));
        items_ok = items_ok && m->items[f];
        m->items_version[f] = 1; /* a new view (0) gets the items with its first push */
    }
    m->samples = calloc(DASH_SAMPLES_MAX, sizeof(*m->samples));
    if (!m->devs || !items_ok || !m->samples) {
        dash_model_free(m);
        return DASH_ERR_NOMEM;
    }
    m->n_devs = n_devices;
    m->version = 1;       /* 0 means "nothing seen" to dash_model_wait's callers */
    m->ready = true;
    snprintf(m->layout, sizeof(m->layout), "%s", layout);
    snprintf(m->summary.layout, sizeof(m->summary.layout), "%s", layout);
    pthread_mutex_init(&m->mu, NULL);
    dash_cond_init(&m->changed);
    *out = m;
    return DASH_OK;
}

void dash_model_free(struct dash_model *m)
{
    if (!m)
        return;
    if (m->ready) {
        pthread_mutex_destroy(&m->mu);
        pthread_cond_destroy(&m->changed);
    }
    free(m->devs);
    for (int f = 0; f < HX_ITEMS_FILTERS; f++)
        free(m->items[f]);
    free(m->samples);
    free(m);
}

/* ------------------------------------------------------------------ writers */

void dash_row_from(struct dash_device_row *r, const char *id, bool online, const char *state,
                   const struct fw_stats *st, uint32_t pending, uint64_t last_seen_ms,
                   const uint8_t *fb)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->online = online;
    snprintf(r->state, sizeof(r->state), "%s", state);
    r->items_received = st->items_received;
    r->registrations_acked = st->registrations_acked;
    r->duplicates_suppressed = st->duplicates_suppressed;
    r->connects = st->connects;
    r->connection_losses = st->connection_losses;
    r->rejects = st->rejects_total;
    r->queue = pending;
    r->last_seen_ms = last_seen_ms;
    r->has_fb = fb != NULL;
    if (fb)
        memcpy(r->fb, fb, FW_FB_BYTES);
}

void dash_model_set_device(struct dash_model *m, int index, const struct dash_device_row *row)
{
    if (index < 0 || index >= m->n_devs)
        return;
    pthread_mutex_lock(&m->mu);
    struct dash_dev *d = &m->devs[index];
    bool fb_changed = row->has_fb && (!d->row.has_fb || memcmp(d->row.fb, row->fb, FW_FB_BYTES));
    if (row->has_fb || !d->row.has_fb) {
        d->row = *row;
    } else {
        /* a row without a frame keeps the last one */
        uint8_t keep[FW_FB_BYTES];
        memcpy(keep, d->row.fb, FW_FB_BYTES);
        d->row = *row;
        memcpy(d->row.fb, keep, FW_FB_BYTES);
        d->row.has_fb = true;
    }
    if (fb_changed)
        d->fb_version++;
    pthread_mutex_unlock(&m->mu);
}

/* The state filter an item is in now (hx_items_filter's rules, on the copy). */
static enum hx_items_filter dash__item_filter(const struct hx_backend_item *it)
{
    if (it->registrations >= 2)
        return HX_ITEMS_TWICE;
    if (it->registrations == 1)
        return HX_ITEMS_REGISTERED;
    return it->refused ? HX_ITEMS_LOST : HX_ITEMS_PENDING;
}

void dash_model_set_items(struct dash_model *m, const struct hx_backend_item *items, int n)
{
    struct hx_backend_item *pick = malloc((size_t)(n > 0 ? n : 1) * sizeof(*pick));

    dash_model_set_items_of(m, HX_ITEMS_ALL, items, n, n > 0 ? (uint64_t)n : 0);
    if (!pick)
        return;
    for (int f = HX_ITEMS_ALL + 1; f < HX_ITEMS_FILTERS; f++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (dash__item_filter(&items[i]) == (enum hx_items_filter)f)
                pick[k++] = items[i];
        dash_model_set_items_of(m, (enum hx_items_filter)f, pick, k, (uint64_t)k);
    }
    free(pick);
}

void dash_model_set_items_of(struct dash_model *m, enum hx_items_filter f,
                             const struct hx_backend_item *items, int n, uint64_t total)
{
    if ((int)f < 0 || f >= HX_ITEMS_FILTERS)
        return;
    if (n > DASH_ITEMS_MAX)
        n = DASH_ITEMS_MAX;
    pthread_mutex_lock(&m->mu);
    if (n != m->n_items[f] || total != m->items_total[f] ||
        memcmp(m->items[f], items, (size_t)n * sizeof(*items)) != 0) {
        memcpy(m->items[f], items, (size_t)n * sizeof(*items));
        m->n_items[f] = n;
        m->items_total[f] = total;
        m->items_version[f]++;
    }
    pthread_mutex_unlock(&m->mu);
}

void dash_model_set_summary(struct dash_model *m, const struct dash_summary *s)
{
    pthread_mutex_lock(&m->mu);
    m->summary = *s;
    snprintf(m->summary.layout, sizeof(m->summary.layout), "%s", m->layout);
    pthread_mutex_unlock(&m->mu);
}

void dash_model_add_sample(struct dash_model *m, const struct dash_sample *s)
{
    pthread_mutex_lock(&m->mu);
    m->samples[m->n_samples % DASH_SAMPLES_MAX] = *s;
    m->n_samples++;
    pthread_mutex_unlock(&m->mu);
}

void dash_model_publish(struct dash_model *m)
{
    pthread_mutex_lock(&m->mu);
    m->version++;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->mu);
}

void dash_model_set_remote_devices(struct dash_model *m, const char *why)
{
    pthread_mutex_lock(&m->mu);
    snprintf(m->remote_why, sizeof(m->remote_why), "%s", why);
    pthread_mutex_unlock(&m->mu);
}

/* ------------------------------------------------------------------ readers */

void dash_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
}

uint64_t dash_model_wait(struct dash_model *m, uint64_t seen, int timeout_ms)
{
    struct timespec dl;
    uint64_t v;

    sim_clock_deadline(&dl, timeout_ms);
    pthread_mutex_lock(&m->mu);
    while (m->version == seen &&
           pthread_cond_timedwait(&m->changed, &m->mu, &dl) == 0)
        ;
    v = m->version;
    pthread_mutex_unlock(&m->mu);
    return v;
}

int dash_model_devices(const struct dash_model *m)
{
    return m->n_devs;
}

bool dash_model_per_device(const struct dash_model *m)
{
    return strcmp(m->layout, "seed") != 0;
}

int dash_model_device_index(struct dash_model *m, const char *id)
{
    int at = -1;

    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_devs && at < 0; i++)
        if (strcmp(m->devs[i].row.id, id) == 0)
            at = i;
    pthread_mutex_unlock(&m->mu);
    return at;
}

bool dash_model_has_device(struct dash_model *m, const char *id)
{
    return dash_model_device_index(m, id) >= 0;
}

void dash_model_device_ids(struct dash_model *m, char (*ids)[FW_DEVICE_ID_MAX], int n)
{
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < n && i < m->n_devs; i++)
        memcpy(ids[i], m->devs[i].row.id, FW_DEVICE_ID_MAX);
    pthread_mutex_unlock(&m->mu);
}

void dash_model_summary(struct dash_model *m, struct dash_summary *out)
{
    pthread_mutex_lock(&m->mu);
    *out = m->summary;
    pthread_mutex_unlock(&m->mu);
}

/* ------------------------------------------------------------------ JSON (under mu) */

static void dash__summary_json(const struct dash_model *m, struct dash_buf *o)
{
    const struct dash_summary *s = &m->summary;
    const struct fleet_figures *g = &s->fig;

    dash_buf_printf(o, "\"summary\":{\"command\":\"%s\",\"layout\":\"%s\",\"uptime_s\":%.1f,"
                    "\"devices\":%d,\"online\":%llu,\"ever_connected\":%llu,\"rate\":%.1f,"
                    "\"reconnects\":%llu,\"errors\":%llu,\"have_ledger\":%s",
                    s->command, m->layout, s->uptime_s, m->n_devs,
                    (unsigned long long)g->connected, (unsigned long long)g->ever_connected,
                    s->registrations_per_second, (unsigned long long)dash_reconnects(s),
                    (unsigned long long)dash_errors(s), s->have_ledger ? "true" : "false");
    if (s->have_ledger)
        dash_buf_printf(o, ",\"published\":%llu,\"registered\":%llu,\"twice\":%llu,\"lost\":%llu,"
                        "\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"max\":%.2f",
                        (unsigned long long)s->led.published, (unsigned long long)s->led.registered,
                        (unsigned long long)s->led.registered_twice,
                        (unsigned long long)s->led.lost, s->led.latency_p50_ms,
                        s->led.latency_p90_ms, s->led.latency_p99_ms, s->led.latency_max_ms);
    dash_buf_lit(o, "}");
}

static void dash__samples_json(const struct dash_model *m, uint64_t from, struct dash_buf *o)
{
    if (m->n_samples > DASH_SAMPLES_MAX && from < m->n_samples - DASH_SAMPLES_MAX)
        from = m->n_samples - DASH_SAMPLES_MAX;
    dash_buf_lit(o, "\"samples\":[");
    for (uint64_t i = from; i < m->n_samples; i++) {
        const struct dash_sample *s = &m->samples[i % DASH_SAMPLES_MAX];
        dash_buf_printf(o, "%s[%.1f,%.0f,%.1f,%.2f,%.2f,%.0f,%.0f]", i > from ? "," : "", s->t_s,
                        s->online, s->registrations_per_second, s->p50_ms, s->p99_ms,
                        s->reconnects, s->errors);
    }
    dash_buf_lit(o, "]");
}

static const char *dash__item_state(const struct hx_backend_item *it)
{
    return dash_items_filter_name(dash__item_filter(it));
}

static void dash__items_json(const struct dash_model *m, enum hx_items_filter f,
                             struct dash_buf *o)
{
    dash_buf_printf(o, "\"items_filter\":\"%s\",\"items_total\":%llu,\"items\":[",
                    dash_items_filter_name(f), (unsigned long long)m->items_total[f]);
    for (int i = 0; i < m->n_items[f]; i++) {
        const struct hx_backend_item *it = &m->items[f][i];
        dash_buf_printf(o, "%s{\"id\":%d,\"name\":", i ? "," : "", (int)it->item_id);
        dash_buf_json_str(o, it->name);
        dash_buf_printf(o, ",\"qty\":%d,\"to\":", (int)it->tag_quantity);
        dash_buf_json_str(o, it->target);
        dash_buf_printf(o, ",\"state\":\"%s\",\"count\":%u,\"latency_ms\":%.1f,\"regs\":[",
                        dash__item_state(it), it->registrations, it->latency_ms);
        for (int k = 0; k < 2 && k < (int)it->registrations; k++) {
            dash_buf_add(o, k ? ",[" : "[", k ? 2 : 1);
            dash_buf_json_str(o, it->reg_device[k]);
            dash_buf_lit(o, ",");
            dash_buf_json_str(o, it->reg_tag[k]);
            dash_buf_lit(o, "]");
        }
        dash_buf_lit(o, "]}");
    }
    dash_buf_lit(o, "]");
}

static void dash__device_json(const struct dash_dev *d, int index, bool with_fb, uint64_t now,
                              struct dash_buf *o)
{
    const struct dash_device_row *r = &d->row;

    dash_buf_printf(o, "{\"i\":%d,\"id\":", index);
    dash_buf_json_str(o, r->id);
    dash_buf_printf(o, ",\"online\":%s,\"state\":\"%s\",\"rx\":%llu,\"reg\":%llu,\"dup\":%llu,"
                    "\"conn\":%llu,\"lost\":%llu,\"rej\":%llu,\"queue\":%u,\"seen_s\":%.1f",
                    r->online ? "true" : "false", r->state,
                    (unsigned long long)r->items_received, (unsigned long long)r->registrations_acked,
                    (unsigned long long)r->duplicates_suppressed, (unsigned long long)r->connects,
                    (unsigned long long)r->connection_losses, (unsigned long long)r->rejects,
                    r->queue, r->last_seen_ms ? (double)(now - r->last_seen_ms) / 1000.0 : -1.0);
    if (with_fb && r->has_fb) {
        dash_buf_lit(o, ",\"fb\":\"");
        dash_buf_base64(o, r->fb, FW_FB_BYTES);
        dash_buf_lit(o, "\"");
    }
    dash_buf_lit(o, "}");
}

/* The view's page of devices; frames only where they changed since it last saw them. */
static void dash__devices_json(const struct dash_model *m, struct dash_view *v, struct dash_buf *o)
{
    long first = v->q.page * v->q.per, matches = 0;
    int n = 0, idx[DASH_PER_PAGE_MAX];
    uint64_t now = sim_clock_ms();

    for (int i = 0; i < m->n_devs; i++) {
        if (v->q.q[0] && !strstr(m->devs[i].row.id, v->q.q))
            continue;
        if (matches >= first && n < v->q.per)
            idx[n++] = i;
        matches++;
    }
    dash_buf_printf(o, "\"devices\":{\"total\":%d,\"matches\":%ld,\"page\":%ld,\"per\":%ld,"
                    "\"remote\":", m->n_devs, matches, v->q.page, v->q.per);
    dash_buf_json_str(o, m->remote_why);
    dash_buf_lit(o, ",\"rows\":[");
    for (int k = 0; k < n; k++) {
        const struct dash_dev *d = &m->devs[idx[k]];
        bool fresh = k >= v->n_sent || v->sent_index[k] != idx[k] ||
                     v->sent_fb_version[k] != d->fb_version;
        dash__device_json(d, idx[k], fresh, now, o);
        if (k + 1 < n)
            dash_buf_lit(o, ",");
        v->sent_index[k] = idx[k];
        v->sent_fb_version[k] = d->fb_version;
    }
    v->n_sent = n;
    dash_buf_lit(o, "]}");
}

void dash_model_push_json(struct dash_model *m, struct dash_view *v, struct dash_buf *o)
{
    pthread_mutex_lock(&m->mu);
    dash_buf_lit(o, "{");
    dash__summary_json(m, o);
    dash_buf_lit(o, ",");
    dash__samples_json(m, v->sample_count, o);
    v->sample_count = m->n_samples;
    enum hx_items_filter f = v->q.items;
    if (v->items_version != m->items_version[f]) {
        dash_buf_lit(o, ",");
        dash__items_json(m, f, o);
        v->items_version = m->items_version[f];
    }
    dash_buf_lit(o, ",");
    dash__devices_json(m, v, o);
    dash_buf_lit(o, "}");
    pthread_mutex_unlock(&m->mu);
}

void dash_model_report_json(struct dash_model *m, struct dash_buf *o)
{
    pthread_mutex_lock(&m->mu);
    dash_buf_lit(o, "{");
    dash__summary_json(m, o);
    dash_buf_lit(o, ",");
    dash__samples_json(m, 0, o);
    dash_buf_lit(o, ",\"histogram\":{\"bounds_ms\":[");
    for (int k = 0; k < DASH_LAT_BOUNDS; k++)
        dash_buf_printf(o, "%s%g", k ? "," : "", dash_latency_bounds_ms[k]);
    dash_buf_lit(o, "],\"counts\":[");
    for (int k = 0; k <= DASH_LAT_BOUNDS; k++)
        dash_buf_printf(o, "%s%llu", k ? "," : "", (unsigned long long)m->summary.lat_counts[k]);
    dash_buf_lit(o, "]}}");
    pthread_mutex_unlock(&m->mu);
}
