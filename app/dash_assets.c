/*
 * dash_assets.c - the chart library for the dashboard and the report (dash.h).
 *
 * Chart.js is not copied into this tree: it is read at run time from Debian's
 * libjs-chart.js (or from $SCANSIM_CHARTJS), once, and kept for the life of the process.
 * The pages themselves are built in (dash_assets_gen.c, made from app/dash/).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dash.h"
#include "sim/fs.h"

#define DASH_CHARTJS_DEBIAN "/usr/share/javascript/chart.js/chart.min.js"
#define DASH_CHARTJS_MAX (4u << 20)

static pthread_once_t dash__once = PTHREAD_ONCE_INIT;
static char *dash__js;
static size_t dash__js_len;

static char *dash__slurp(const char *path, size_t *len)
{
    char *p;
    if (sim_fs_read_all(path, DASH_CHARTJS_MAX - 1, &p, len) != 0)
        return NULL;
    if (*len == 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void dash__load(void)
{
    const char *env = getenv("SCANSIM_CHARTJS");
    const char *path = env && *env ? env : DASH_CHARTJS_DEBIAN;

    dash__js = dash__slurp(path, &dash__js_len);
    if (!dash__js)
        fprintf(stderr, "scansim: the chart library is missing: %s is not readable - install "
                "Debian's libjs-chart.js (bash ci/install-deps.sh), or point SCANSIM_CHARTJS at "
                "a Chart.js 3 UMD build\n", path);
}

const char *dash_chart_js(size_t *len)
{
    pthread_once(&dash__once, dash__load);
    *len = dash__js_len;
    return dash__js;
}
