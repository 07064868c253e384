/*
 * dash_http.c - the dashboard's HTTP server (libmicrohttpd): pages, Server-Sent Events,
 * the item form, Prometheus /metrics (dash.h).
 *
 * Threads: libmicrohttpd runs one thread per connection (an event stream blocks in its
 * reader waiting for the model to change), at most DASH_HTTP_CONNECTIONS at once, so a
 * flood of requests is bounded and never reaches a device thread: handlers read the
 * model and call the backend role, nothing else.
 *
 * Access: on a loopback address no token is needed unless one is given; on any other a
 * token is required (--http-token, or a random one printed at start). It is accepted as
 * "Authorization: Bearer T", as ?token=T (which also sets a cookie, so links keep
 * working) or as that cookie. A POST must carry "X-Scansim: 1": a header no plain HTML
 * form of another site can send, so a page elsewhere cannot create items through a
 * browser that has the dashboard open. Without a token, a request whose Host header names
 * anything but loopback gets 421: a site that rebinds its name to 127.0.0.1 (DNS
 * rebinding) would otherwise be same-origin with the dashboard in the browser.
 *
 * Sections: server state, responses, routes, the event stream, start/stop.
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "dash.h"
#include "sim/clock.h"

#define DASH_HTTP_CONNECTIONS 128  /* at once; more are refused by the library */
#define DASH_BODY_MAX 4096         /* a POST body larger than this gets 413 */
#define DASH_PING_MS 15000         /* an idle event stream sends a comment this often */
#define DASH_STOP_WAIT_MS 2000     /* how long a stop waits for the event streams to end */
/* Requests that render figures (/api/state, /metrics, a new event stream): at most this
   many a second, in bursts of DASH_RENDER_BURST; more get 429 with Retry-After. A page
   needs one stream, a Prometheus scrape one request every few seconds; a flood would
   otherwise take the cores from the fleet (measured: ci/bench-dashboard.sh). */
#define DASH_RENDER_RATE 50.0      /* $SCANSIM_HTTP_RENDER_RATE sets another; 0 = no limit */
#define DASH_RENDER_BURST 2.0      /* seconds of the rate */

/* ------------------------------------------------------------------ server state */

struct dash_http {
    struct MHD_Daemon *d;
    struct dash_model *m;
    struct dash_actions a;
    char token[65];                /* "" = none needed */
    int port;
    atomic_bool stopping;
    pthread_mutex_t mu;            /* guards streams */
    pthread_cond_t streams_done;   /* signalled when streams drops to 0 */
    int streams;                   /* event streams not yet freed by the library */
    pthread_mutex_t bucket_mu;     /* guards the render bucket */
    double rate;                   /* renders a second; 0 = no limit */
    double tokens;                 /* renders allowed now */
    uint64_t refilled_ms;
    atomic_uint_fast64_t refused;  /* renders refused with 429 */
};

/* One request's upload (POST bodies arrive in pieces). */
struct dash_req {
    char body[DASH_BODY_MAX + 1];
    size_t len;
    bool too_big;
};

/* One event stream. */
struct dash_stream {
    struct dash_http *h;
    struct dash_view view;
    struct dash_buf out;
    size_t off;                    /* sent of out */
    uint64_t version;
    int idle_ms;
    bool ended;                    /* the closing "end" event is out */
};

/* ------------------------------------------------------------------ responses */

static enum MHD_Result dash__send(struct MHD_Connection *c, unsigned status, const char *type,
                                  const void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
    enum MHD_Result rc;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result dash__text(struct MHD_Connection *c, unsigned status, const char *text)
{
    return dash__send(c, status, "text/plain; charset=utf-8", text, strlen(text),
                      MHD_RESPMEM_MUST_COPY);
}

/* {"error": why} with a status. */
static enum MHD_Result dash__error(struct MHD_Connection *c, unsigned status, const char *why)
{
    struct dash_buf b = { 0 };
    enum MHD_Result rc;

    dash_buf_lit(&b, "{\"error\":");
    dash_buf_json_str(&b, why);
    dash_buf_lit(&b, "}\n");
    if (b.failed) {
        free(b.p);
        return MHD_NO;
    }
    rc = dash__send(c, status, "application/json", b.p, b.len, MHD_RESPMEM_MUST_FREE);
    return rc;
}

static enum MHD_Result dash__buf(struct MHD_Connection *c, const char *type, struct dash_buf *b)
{
    if (b->failed) {
        free(b->p);
        return dash__text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
    }
    return dash__send(c, MHD_HTTP_OK, type, b->p ? b->p : "", b->len,
                      b->p ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
}

/* ------------------------------------------------------------------ routes */

/* Is the request allowed? Sets the cookie on a ?token= visit (through *set_cookie). */
static bool dash__authorized(struct dash_http *h, struct MHD_Connection *c, bool *set_cookie)
{
    const char *auth, *q, *cookie;

    *set_cookie = false;
    if (!h->token[0])
        return true;
    auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth && strncmp(auth, "Bearer ", 7) == 0 && dash_token_equal(auth + 7, h->token))
        return true;
    cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "scansim_token");
    if (dash_token_equal(cookie, h->token))
        return true;
    q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    if (dash_token_equal(q, h->token)) {
        *set_cookie = true;
        return true;
    }
    return false;
}

static enum MHD_Result dash__static(struct MHD_Connection *c, const char *type, const char *text,
                                    size_t len, bool set_cookie, const char *token)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)text,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;
    char cookie[128];

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (set_cookie) {
        snprintf(cookie, sizeof(cookie), "scansim_token=%s; Path=/; HttpOnly; SameSite=Strict",
                 token);
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    }
    rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result dash__post_item(struct dash_http *h, struct MHD_Connection *c,
                                       struct dash_req *req)
{
    struct dash_item_form f;
    char why[DASH_WHY_MAX] = "";
    const char *mark = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Scansim");

    if (!mark || strcmp(mark, "1") != 0)
        return dash__error(c, MHD_HTTP_FORBIDDEN, "a POST needs the header X-Scansim: 1");
    if (req->too_big)
        return dash__error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the request body is too large");
    if (dash_item_form_parse(req->body, req->len, &f, why, sizeof(why)) != DASH_OK)
        return dash__error(c, MHD_HTTP_BAD_REQUEST, why);
    if (!h->a.create_item || h->a.create_item(h->a.ctx, &f, why, sizeof(why)) != DASH_OK)
        return dash__error(c, MHD_HTTP_BAD_REQUEST, why[0] ? why : "no backend: --no-backend");
    return dash__send(c, MHD_HTTP_CREATED, "application/json", "{\"ok\":true}\n", 12,
                      MHD_RESPMEM_PERSISTENT);
}

/* The devices page's view from the query string; false after answering 400. */
static bool dash__view(struct MHD_Connection *c, struct dash_view *v, enum MHD_Result *rc)
{
    char why[DASH_WHY_MAX] = "";

    memset(v, 0, sizeof(*v));
    if (dash_page_query_parse(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "q"),
                              MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page"),
                              MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "per"),
                              &v->q, why, sizeof(why)) == DASH_OK &&
        dash_items_filter_parse(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "items"),
                                &v->q.items, why, sizeof(why)) == DASH_OK)
        return true;
    *rc = dash__error(c, MHD_HTTP_BAD_REQUEST, why);
    return false;
}

static enum MHD_Result dash__events(struct dash_http *h, struct MHD_Connection *c);

/* May one more figure-rendering request go now? (the token bucket above) */
static bool dash__may_render(struct dash_http *h)
{
    uint64_t now = sim_clock_ms();
    bool ok;

    if (h->rate <= 0)
        return true;
    pthread_mutex_lock(&h->bucket_mu);
    h->tokens += (double)(now - h->refilled_ms) * h->rate / 1000.0;
    if (h->tokens > h->rate * DASH_RENDER_BURST)
        h->tokens = h->rate * DASH_RENDER_BURST;
    h->refilled_ms = now;
    ok = h->tokens >= 1.0;
    if (ok)
        h->tokens -= 1.0;
    pthread_mutex_unlock(&h->bucket_mu);
    if (!ok)
        atomic_fetch_add(&h->refused, 1);
    return ok;
}

static enum MHD_Result dash__too_many(struct MHD_Connection *c)
{
    static const char body[] = "{\"error\":\"too many requests: the dashboard renders at most "
                               "so many figures a second (a page needs one event stream; "
                               "SCANSIM_HTTP_RENDER_RATE sets the limit); retry in a "
                               "second\"}\n";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof(body) - 1, (void *)body,
                                                             MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    rc = MHD_queue_response(c, MHD_HTTP_TOO_MANY_REQUESTS, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result dash__get(struct dash_http *h, struct MHD_Connection *c, const char *url,
                                 bool set_cookie)
{
    struct dash_buf b = { 0 };
    size_t len;

    if (strcmp(url, "/") == 0)
        return dash__static(c, "text/html; charset=utf-8", dash_asset_page_html,
                            strlen(dash_asset_page_html), set_cookie, h->token);
    if (strcmp(url, "/app.js") == 0)
        return dash__static(c, "text/javascript", dash_asset_page_js, strlen(dash_asset_page_js),
                            false, NULL);
    if (strcmp(url, "/charts.js") == 0)
        return dash__static(c, "text/javascript", dash_asset_charts_js,
                            strlen(dash_asset_charts_js), false, NULL);
    if (strcmp(url, "/style.css") == 0)
        return dash__static(c, "text/css", dash_asset_style_css, strlen(dash_asset_style_css),
                            false, NULL);
    if (strcmp(url, "/chart.js") == 0) {
        const char *js = dash_chart_js(&len);
        return js ? dash__static(c, "text/javascript", js, len, false, NULL)
                  : dash__text(c, MHD_HTTP_NOT_FOUND, "the chart library is not installed\n");
    }
    bool renders = strcmp(url, "/metrics") == 0 || strcmp(url, "/api/state") == 0 ||
                   strcmp(url, "/events") == 0;
    if (renders && !dash__may_render(h))
        return dash__too_many(c);
    if (strcmp(url, "/metrics") == 0) {
        struct dash_summary s;
        dash_model_summary(h->m, &s);
        dash_metrics_text(&s, &b);
        return dash__buf(c, "text/plain; version=0.0.4; charset=utf-8", &b);
    }
    if (strcmp(url, "/api/state") == 0) {
        struct dash_view *v = malloc(sizeof(*v));
        enum MHD_Result rc = MHD_NO;
        if (!v)
            return MHD_NO;
        if (dash__view(c, v, &rc)) {
            dash_model_push_json(h->m, v, &b);
            rc = dash__buf(c, "application/json", &b);
        }
        free(v);
        return rc;
    }
    if (strcmp(url, "/events") == 0)
        return dash__events(h, c);
    return dash__text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result dash__handle(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload, size_t *upload_size, void **con_cls)
{
    struct dash_http *h = cls;
    struct dash_req *req = *con_cls;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0, set_cookie;

    (void)version;
    if (post && !req) {
        req = calloc(1, sizeof(*req));
        *con_cls = req;
        return req ? MHD_YES : MHD_NO;
    }
    if (post && *upload_size) {
        size_t n = *upload_size;
        if (req->len + n > DASH_BODY_MAX)
            req->too_big = true;
        else
            memcpy(req->body + req->len, upload, n);
        req->len = req->too_big ? 0 : req->len + n;
        *upload_size = 0;
        return MHD_YES;
    }
    if (!h->token[0]) {
        /* No token: only requests addressed to loopback. A page elsewhere that rebinds its
           own name to 127.0.0.1 is same-origin to the browser but sends its name here. */
        const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (host && !dash_host_header_is_loopback(host))
            return dash__error(c, MHD_HTTP_MISDIRECTED_REQUEST,
                               "without a token this dashboard answers only requests addressed "
                               "to a loopback name or address (Host: 127.0.0.1, localhost, "
                               "[::1]); give --http-token to use another name");
    }
    if (!dash__authorized(h, c, &set_cookie))
        return dash__error(c, MHD_HTTP_UNAUTHORIZED, "a token is needed: open the URL scansim "
                           "printed at start (…/?token=…) or send Authorization: Bearer TOKEN");
    if (post)
        return strcmp(url, "/api/items") == 0 ? dash__post_item(h, c, req)
                                               : dash__error(c, MHD_HTTP_NOT_FOUND, "not found");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return dash__error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and POST");
    return dash__get(h, c, url, set_cookie);
}

static void dash__done(void *cls, struct MHD_Connection *c, void **con_cls,
                       enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------ the event stream */

static ssize_t dash__stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct dash_stream *s = cls;
    struct dash_http *h = s->h;

    (void)pos;
    while (s->off >= s->out.len) {
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        s->out.len = s->off = 0;
        if (atomic_load(&h->stopping)) {
            /* The page closes its stream on this event, so the server's close that
               follows is neither an error in its console nor a cause to retry. */
            s->ended = true;
            dash_buf_lit(&s->out, "event: end\ndata: {}\n\n");
            if (s->out.failed)
                return MHD_CONTENT_READER_END_WITH_ERROR;
            continue;
        }
        if (s->version == 0 || dash_model_wait(h->m, s->version, 1000) != s->version) {
            s->version = dash_model_wait(h->m, 0, 0);
            s->idle_ms = 0;
            dash_buf_lit(&s->out, "data: ");
            dash_model_push_json(h->m, &s->view, &s->out);
            dash_buf_lit(&s->out, "\n\n");
            if (s->out.failed)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        } else if ((s->idle_ms += 1000) >= DASH_PING_MS) {
            s->idle_ms = 0;
            dash_buf_lit(&s->out, ": ping\n\n"); /* finds a closed tab: the write fails */
        }
    }
    size_t n = s->out.len - s->off < max ? s->out.len - s->off : max;
    memcpy(buf, s->out.p + s->off, n);
    s->off += n;
    return (ssize_t)n;
}

static void dash__stream_free(void *cls)
{
    struct dash_stream *s = cls;
    struct dash_http *h = s->h;
    free(s->out.p);
    free(s);
    pthread_mutex_lock(&h->mu);
    if (--h->streams == 0)
        pthread_cond_broadcast(&h->streams_done);
    pthread_mutex_unlock(&h->mu);
}

static enum MHD_Result dash__events(struct dash_http *h, struct MHD_Connection *c)
{
    struct dash_stream *s = calloc(1, sizeof(*s));
    struct MHD_Response *r;
    enum MHD_Result rc = MHD_NO;

    if (!s)
        return MHD_NO;
    s->h = h;
    if (!dash__view(c, &s->view, &rc)) {
        free(s);
        return rc;
    }
    r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, dash__stream_read, s,
                                          dash__stream_free);
    if (!r) {
        free(s);
        return MHD_NO;
    }
    pthread_mutex_lock(&h->mu);
    h->streams++;
    pthread_mutex_unlock(&h->mu);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    rc = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

/* ------------------------------------------------------------------ start/stop */

static int dash__make_token(char *out, size_t cap)
{
    uint8_t raw[16];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return DASH_ERR_IO;
    for (size_t i = 0; i < sizeof(raw) && 2 * i + 2 < cap; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return DASH_OK;
}

/* The address to bind, resolved without DNS ("localhost" is 127.0.0.1). */
static int dash__resolve(const char *host, int port, struct sockaddr_storage *sa)
{
    struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
    struct addrinfo *ai = NULL;
    char ps[8];

    snprintf(ps, sizeof(ps), "%d", port);
    if (getaddrinfo(strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, ps, &hints, &ai) != 0)
        return DASH_ERR_INVAL;
    memcpy(sa, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return DASH_OK;
}

static int dash__setup(const struct dash_http_opts *o, struct dash_http *h,
                       struct sockaddr_storage *sa)
{
    char host[256], why[DASH_WHY_MAX];
    int port;

    if (dash_parse_listen(o->listen, host, sizeof(host), &port, why, sizeof(why)) != DASH_OK) {
        fprintf(stderr, "scansim %s: --http %s: %s\n", o->command, o->listen, why);
        return DASH_ERR_INVAL;
    }
    if (dash__resolve(host, port, sa) != DASH_OK) {
        fprintf(stderr, "scansim %s: --http %s: '%s' is not a numeric address (use e.g. "
                "127.0.0.1, 0.0.0.0 or [::1])\n", o->command, o->listen, host);
        return DASH_ERR_INVAL;
    }
    if (o->token && (strlen(o->token) < 8 || strlen(o->token) >= sizeof(h->token))) {
        fprintf(stderr, "scansim %s: --http-token: 8 to %zu characters\n", o->command,
                sizeof(h->token) - 1);
        return DASH_ERR_INVAL;
    }
    if (o->token)
        snprintf(h->token, sizeof(h->token), "%s", o->token);
    else if (!dash_host_is_loopback(host) && dash__make_token(h->token, sizeof(h->token)) != DASH_OK)
        return DASH_ERR_IO;
    return DASH_OK;
}

int dash_http_start(const struct dash_http_opts *o, struct dash_model *m,
                    const struct dash_actions *a, struct dash_http **out)
{
    struct dash_http *h;
    struct sockaddr_storage sa;
    size_t len;
    int rc;

    *out = NULL;
    if (!dash_chart_js(&len))
        return DASH_ERR_MISSING;
    h = calloc(1, sizeof(*h));
    if (!h)
        return DASH_ERR_NOMEM;
    h->m = m;
    h->a = *a;
    const char *rate = getenv("SCANSIM_HTTP_RENDER_RATE");
    char *end = NULL;
    h->rate = rate && *rate ? strtod(rate, &end) : DASH_RENDER_RATE;
    if (rate && *rate && (*end || !(h->rate >= 0))) {
        fprintf(stderr, "scansim %s: SCANSIM_HTTP_RENDER_RATE=%s: expected renders a second "
                "(0: no limit)\n", o->command, rate);
        free(h);
        return DASH_ERR_INVAL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->bucket_mu, NULL);
    h->tokens = h->rate * DASH_RENDER_BURST;
    h->refilled_ms = sim_clock_ms();
    dash_cond_init(&h->streams_done);
    rc = dash__setup(o, h, &sa);
    if (rc != DASH_OK)
        goto fail;
    h->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                                MHD_USE_AUTO | (sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                            0, NULL, NULL, dash__handle, h,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)DASH_HTTP_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                            MHD_OPTION_NOTIFY_COMPLETED, dash__done, h, MHD_OPTION_END);
    rc = DASH_ERR_HTTP;
    if (!h->d) {
        fprintf(stderr, "scansim %s: --http %s: cannot listen there (in use, or not an address "
                "of this machine)\n", o->command, o->listen);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? (int)di->port : 0;
    fprintf(stderr, "scansim %s: dashboard on http://%.*s:%d/%s%s\n", o->command,
            (int)(strrchr(o->listen, ':') - o->listen), o->listen, h->port,
            h->token[0] ? "?token=" : "", h->token);
    *out = h;
    return DASH_OK;
fail:
    pthread_cond_destroy(&h->streams_done);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->bucket_mu);
    free(h);
    return rc;
}

int dash_http_port(const struct dash_http *h)
{
    return h ? h->port : 0;
}

void dash_http_stop(struct dash_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stopping, true);
    dash_model_publish(h->m); /* wakes the event streams: each sends "end" and finishes */
    /* Stopping the daemon closes every connection at once, possibly in the middle of a
       stream's last chunk; give the streams a moment to finish on their own first. */
    struct timespec until;
    sim_clock_deadline(&until, DASH_STOP_WAIT_MS);
    pthread_mutex_lock(&h->mu);
    while (h->streams > 0 &&
           pthread_cond_timedwait(&h->streams_done, &h->mu, &until) == 0)
        ;
    pthread_mutex_unlock(&h->mu);
    MHD_stop_daemon(h->d);
    if (atomic_load(&h->refused))
        fprintf(stderr, "scansim: the dashboard answered %llu requests with 429 (more than %.0f "
                "renders a second)\n", (unsigned long long)atomic_load(&h->refused), h->rate);
    pthread_cond_destroy(&h->streams_done);
    pthread_mutex_destroy(&h->mu);
    pthread_mutex_destroy(&h->bucket_mu);
    free(h);
}
