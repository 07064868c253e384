/*
 * mqtt_mosq_io.c - drives the libmosquitto clients (mqtt_mosq.c) from sim_loops.
 *
 * A sim_loop_watch on mosquitto_socket() (EPOLLIN, plus EPOLLOUT while
 * mosquitto_want_write()) calls mosquitto_loop_read / _write when it is ready, and one
 * sim_loop_target per io loop has a tick that walks a slice of that loop's clients so that
 * each gets mosquitto_loop_misc (keep-alive) and its connect time-out checked about once a
 * second. Clients on no loop of their own share one process-wide io loop with its own
 * thread.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include <mosquitto.h>

#include "mqtt_mosq_internal.h"
#include "sim/err.h"

static pthread_mutex_t ios_mu = PTHREAD_MUTEX_INITIALIZER;
static struct io *ios;
static struct sim_loop *shared_loop;

/* ------------------------------------------------------------------ the io loops */

static void io_tick(struct sim_loop_target *t, uint64_t now_ms);

static void make_shared_loop(void)
{
    struct sim_loop_opts o;

    sim_loop_opts_defaults(&o);
    o.name = "mqtt-io";
    if (sim_loop_create(&o, &shared_loop) == 0 && sim_loop_start_thread(shared_loop) != 0) {
        sim_loop_free(shared_loop);
        shared_loop = NULL;
    }
}

struct sim_loop *mosq__shared_loop(void)
{
    static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

    pthread_once(&shared_once, make_shared_loop);
    return shared_loop;
}

/* The io record of loop (made and attached on first use). */
struct io *mosq__io_of(struct sim_loop *loop)
{
    struct io *io;

    pthread_mutex_lock(&ios_mu);
    for (io = ios; io && io->loop != loop; io = io->next) {
    }
    if (!io && (io = calloc(1, sizeof(*io)))) {
        io->loop = loop;
        io->target.on_tick = io_tick;
        if (sim_loop_attach(loop, &io->target) != 0) {
            free(io);
            io = NULL;
        } else {
            io->next = ios;
            ios = io;
        }
    }
    pthread_mutex_unlock(&ios_mu);
    return io;
}

/* On the owner thread. */
int mosq__io_add(struct io *io, struct mosq_client *c)
{
    if (io->n == io->cap) {
        size_t cap = io->cap ? io->cap * 2 : 64;
        struct mosq_client **nc = realloc(io->clients, cap * sizeof(*nc));
        if (!nc)
            return SIM_ERR_NOMEM;
        io->clients = nc;
        io->cap = cap;
    }
    c->io_index = io->n;
    io->clients[io->n++] = c;
    return SIM_OK;
}

void mosq__io_remove(struct io *io, struct mosq_client *c)
{
    size_t i = c->io_index;

    if (i < io->n && io->clients[i] == c) {
        io->clients[i] = io->clients[--io->n];
        io->clients[i]->io_index = i;
    }
}

/*
 * A destroyed client's socket is closed by libmosquitto, which normally removes its epoll
 * registration with it. Not when a child forked meanwhile (a broker started by this
 * process) still holds the socket until it execs or closes it: the registration lives on
 * and can still report the socket, pointing at this client. So the shell stays, marked
 * dead (on_ready ignores it), for GRAVE_MS before it is freed.
 */
#define GRAVE_MS 5000

void mosq__bury(struct io *io, struct mosq_client *c, uint64_t now_ms)
{
    c->dead = true;
    c->dead_at_ms = now_ms;
    c->grave_next = io->graveyard;
    io->graveyard = c;
}

/* Free the shells buried more than GRAVE_MS ago (the newest are first). */
static void io_reap(struct io *io, uint64_t now_ms)
{
    struct mosq_client **pp = &io->graveyard;
    while (*pp && now_ms - (*pp)->dead_at_ms < GRAVE_MS)
        pp = &(*pp)->grave_next;
    struct mosq_client *old = *pp;
    *pp = NULL;
    while (old) {
        struct mosq_client *next = old->grave_next;
        free(old);
        old = next;
    }
}

/* Each tick takes the share of clients that makes one round a second. */
static void io_tick(struct sim_loop_target *t, uint64_t now_ms)
{
    struct io *io = (struct io *)((char *)t - offsetof(struct io, target));
    uint64_t dt = io->last_ms ? now_ms - io->last_ms : 50;
    size_t slice = (size_t)(io->n * dt / 1000) + 1;

    if (io->graveyard)
        io_reap(io, now_ms);

    io->last_ms = now_ms;
    for (size_t k = 0; k < slice && io->n; k++) {
        if (io->cursor >= io->n)
            io->cursor = 0;
        /* client_misc may close a client's socket but never removes it from the list */
        mosq__client_misc(io->clients[io->cursor++], now_ms);
    }
}

/* ------------------------------------------------------------------ the watch */

static void on_ready(struct sim_loop_watch *w, uint32_t events);

/* Make the watch follow libmosquitto's socket and its want_write. Owner thread. */
void mosq__sync_watch(struct mosq_client *c)
{
    int s = mosquitto_socket(c->m);
    uint32_t ev = EPOLLIN | (mosquitto_want_write(c->m) ? EPOLLOUT : 0);

    if (c->closing)
        return; /* destroy drives the socket itself now */
    if (c->watching && c->watch.fd != s) {
        c->watch.fd = -1; /* closed by libmosquitto: its registration is gone already */
        sim_loop_watch_remove(c->io->loop, &c->watch);
        c->watching = false;
    }
    if (s < 0)
        return;
    if (!c->watching) {
        /* libmosquitto opens its sockets without close-on-exec: a program this process
           starts (a broker, a hook) would hold them, keep a closed connection up and keep
           its epoll registration alive, so its events would reach a freed client. */
        (void)fcntl(s, F_SETFD, FD_CLOEXEC);
        c->watch.fd = s;
        c->watch.on_ready = on_ready;
        c->watching = sim_loop_watch_add(c->io->loop, &c->watch, ev) == 0;
    } else {
        sim_loop_watch_set(c->io->loop, &c->watch, ev);
    }
}

/* Stop watching while the socket is still open (before libmosquitto closes it). */
void mosq__unwatch_open(struct mosq_client *c)
{
    if (c->watching) {
        sim_loop_watch_remove(c->io->loop, &c->watch);
        c->watching = false;
    }
}

static void on_ready(struct sim_loop_watch *w, uint32_t events)
{
    struct mosq_client *c = (struct mosq_client *)((char *)w - offsetof(struct mosq_client, watch));
    int rc = MOSQ_ERR_SUCCESS;

    if (c->dead)
        return; /* a registration a forked child kept alive (mosq__bury) */
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        rc = mosquitto_loop_read(c->m, 1);
    if (rc == MOSQ_ERR_SUCCESS && (events & EPOLLOUT) && mosquitto_socket(c->m) == w->fd)
        rc = mosquitto_loop_write(c->m, 1);
    mosq__sync_watch(c);
    /* A failed TLS handshake closes the socket without on_disconnect. */
    if (mosquitto_socket(c->m) < 0 && atomic_load(&c->state) == ST_CONNECTING)
        mosq__fail_connect(c, SIM_ERR_OFFLINE, mosquitto_strerror(rc), mosq__tls_reason(c));
}
