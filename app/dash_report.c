/*
 * dash_report.c - `--report FILE.html`: one self-contained HTML file (dash.h).
 *
 * The file holds the style, the chart library (inlined from libjs-chart.js), the report's
 * script (app/dash/report.js, built in) and the data as JSON, so it opens offline and
 * can be mailed or kept as a CI artefact. The script draws what the data has: charts over
 * time, a latency histogram, the summary table, and for `scansim test` a timeline per
 * scenario.
 *
 * The data goes into a <script type="application/json">: every "</" is written "<\/" so
 * nothing in it can close that element.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dash.h"

static void dash__put_json(FILE *fp, const char *json)
{
    for (const char *p = json; *p; p++) {
        if (p[0] == '<' && p[1] == '/')
            fputs("<\\", fp);
        else
            fputc(*p, fp);
    }
}

static void dash__put_escaped(FILE *fp, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", fp);
        else if (*s == '&')
            fputs("&amp;", fp);
        else
            fputc(*s, fp);
    }
}

int dash_report_write(const char *path, const char *title, const char *data_json)
{
    size_t len;
    const char *chart = dash_chart_js(&len);
    FILE *fp;

    if (!chart)
        return DASH_ERR_MISSING;
    fp = fopen(path, "w");
    if (!fp) {
        fprintf(stderr, "scansim: --report: cannot write %s: %s\n", path, strerror(errno));
        return DASH_ERR_IO;
    }
    fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", fp);
    dash__put_escaped(fp, title);
    fputs("</title>\n<style>\n", fp);
    fputs(dash_asset_style_css, fp);
    fputs("</style>\n<script>\n", fp);
    fwrite(chart, 1, len, fp);
    fputs("\n</script>\n</head><body class=\"report\">\n<h1>", fp);
    dash__put_escaped(fp, title);
    fputs("</h1>\n<div id=\"report\"></div>\n<script type=\"application/json\" id=\"data\">", fp);
    dash__put_json(fp, data_json);
    fputs("</script>\n<script>\n", fp);
    fputs(dash_asset_charts_js, fp);
    fputs("\n</script>\n<script>\n", fp);
    fputs(dash_asset_report_js, fp);
    fputs("\n</script>\n</body></html>\n", fp);
    if (fclose(fp) != 0) {
        fprintf(stderr, "scansim: --report: cannot write %s: %s\n", path, strerror(errno));
        return DASH_ERR_IO;
    }
    return DASH_OK;
}
