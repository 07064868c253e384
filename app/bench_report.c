/*
 * bench_report.c - `scansim bench --report FILE.html`: the rounds as bars (registrations
 * per second and p99 latency of each point, with half the round's raw ceiling beside
 * them), the --json figures as the table, in one offline HTML file (dash_report_write).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "dash.h"

/* {"title":..,"labels":["round 1",..],"datasets":[{"label":"N devices","data":[..]},..]} */
static void bench__chart(struct dash_buf *b, const char *title, int repeat, int n_points,
                         const char *const *labels, const double *v, const double *raw)
{
    dash_buf_printf(b, "{\"title\":\"%s\",\"labels\":[", title);
    for (int i = 0; i < repeat; i++)
        dash_buf_printf(b, "%s\"round %d\"", i ? "," : "", i + 1);
    dash_buf_lit(b, "],\"datasets\":[");
    for (int p = 0; p < n_points; p++) {
        dash_buf_printf(b, "%s{\"label\":\"%s\",\"data\":[", p ? "," : "", labels[p]);
        for (int i = 0; i < repeat; i++) {
            double x = v[p * repeat + i];
            dash_buf_printf(b, "%s%.2f", i ? "," : "", isnan(x) ? 0.0 : x);
        }
        dash_buf_lit(b, "]}");
    }
    if (raw) {
        dash_buf_lit(b, ",{\"label\":\"raw ceiling / 2\",\"data\":[");
        for (int i = 0; i < repeat; i++)
            dash_buf_printf(b, "%s%.2f", i ? "," : "", isnan(raw[i]) ? 0.0 : raw[i] / 2);
        dash_buf_lit(b, "]}");
    }
    dash_buf_lit(b, "]}");
}

int bench_report_write(const char *path, const char *summary_json, int repeat, const double *raw,
                       int n_points, const char *const *labels, const double *reg,
                       const double *p99)
{
    struct dash_buf b = { 0 };
    int rc;

    dash_buf_lit(&b, "{\"kind\":\"bench\",\"table\":");
    dash_buf_add(&b, summary_json, strlen(summary_json));
    dash_buf_lit(&b, ",\"bars\":{\"title\":\"Rounds\",\"charts\":[");
    bench__chart(&b, "registrations / s", repeat, n_points, labels, reg, raw);
    dash_buf_lit(&b, ",");
    bench__chart(&b, "latency p99 (ms)", repeat, n_points, labels, p99, NULL);
    dash_buf_lit(&b, "]}}");
    rc = b.failed ? DASH_ERR_NOMEM : dash_report_write(path, "scansim bench", b.p);
    free(b.p);
    return rc;
}
