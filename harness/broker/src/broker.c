/*
 * broker.c - hx_broker's public API (hx/broker.h): kinds, option checks, the folder and
 * port every kind shares, and the calls that go to the kind's driver.
 *
 * A driver (broker_mosquitto.c, broker_rabbitmq.c) is a table of functions
 * (broker_internal.h); this file never knows how a kind starts or stops. A free port is
 * picked by binding port 0; another process can take it before the broker binds it, so the
 * start is retried with a new port on "address in use" (only when no port was asked for).
 *
 * Sections: kinds, option checks, start, accessors, lifecycle.
 */
#include "broker_internal.h"
#include "sim/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Start attempts on a fresh port when another process took the one we picked. */
#define HX_BROKER_PORT_TRIES 8

/* ---------------------------------------------------------------- kinds */

static const struct broker__driver *const broker__drivers[] = {
    [HX_BROKER_MOSQUITTO] = &broker__mosquitto_driver,
    [HX_BROKER_RABBITMQ] = &broker__rabbitmq_driver,
};
#define BROKER__N_KINDS (sizeof broker__drivers / sizeof broker__drivers[0])

static const struct broker__driver *broker__driver_of(enum hx_broker_kind kind)
{
    return (unsigned)kind < BROKER__N_KINDS ? broker__drivers[kind] : NULL;
}

const char *hx_broker_kind_name(enum hx_broker_kind kind)
{
    const struct broker__driver *d = broker__driver_of(kind);
    return d ? d->name : "unknown";
}

int hx_broker_kind_parse(const char *word, enum hx_broker_kind *out)
{
    if (!out) {
        broker__set_error("hx_broker_kind_parse: out must not be NULL");
        return HX_ERR_INVAL;
    }
    for (unsigned k = 0; word && k < BROKER__N_KINDS; k++) {
        if (strcmp(word, broker__drivers[k]->name) == 0) {
            *out = (enum hx_broker_kind)k;
            return HX_OK;
        }
    }
    broker__set_error("unknown broker kind '%s': say mosquitto or rabbitmq",
                      word ? word : "(none)");
    return HX_ERR_INVAL;
}

bool hx_broker_kind_supports(enum hx_broker_kind kind, enum hx_broker_feature feature)
{
    const struct broker__driver *d = broker__driver_of(kind);
    return d && (unsigned)feature < 32 && (d->features & (1u << feature)) != 0;
}

/* ---------------------------------------------------------------- option checks */

static int broker__check_common(const struct hx_broker_opts *o)
{
    bool tls = o->cafile || o->certfile || o->keyfile;
    if (tls && !(o->cafile && o->certfile && o->keyfile)) {
        broker__set_error("TLS needs cafile, certfile and keyfile together; give all three");
        return HX_ERR_INVAL;
    }
    if (o->n_users < 0 || (o->n_users > 0 && !o->users)) {
        broker__set_error("hx_broker_opts: n_users %d does not match users", o->n_users);
        return HX_ERR_INVAL;
    }
    if ((tls && (broker__bad_text(o->cafile) || broker__bad_text(o->certfile) ||
                 broker__bad_text(o->keyfile)))) {
        broker__set_error("TLS file names must not contain newlines");
        return HX_ERR_INVAL;
    }
    return HX_OK;
}

/* Refuse every option the kind cannot honour, by name. */
static int broker__check_features(const struct broker__driver *d,
                                  const struct hx_broker_opts *o)
{
    const struct {
        bool asked;
        enum hx_broker_feature feature;
        const char *option;
    } asked[] = {
        {o->cafile || o->certfile || o->keyfile, HX_BROKER_FEATURE_TLS,
         "TLS (cafile, certfile, keyfile)"},
        {o->require_certificate, HX_BROKER_FEATURE_TLS, "require_certificate"},
        {o->use_identity_as_username, HX_BROKER_FEATURE_TLS, "use_identity_as_username"},
        {o->n_users > 0, HX_BROKER_FEATURE_USERS, "users (a password file)"},
        {o->acl != NULL, HX_BROKER_FEATURE_ACL, "acl"},
        {o->autosave_interval_s != 0, HX_BROKER_FEATURE_AUTOSAVE, "autosave_interval_s"},
        {o->autosave_on_changes, HX_BROKER_FEATURE_AUTOSAVE, "autosave_on_changes"},
        {o->max_queued_messages != 0, HX_BROKER_FEATURE_MAX_QUEUED, "max_queued_messages"},
        {o->extra_config != NULL, HX_BROKER_FEATURE_EXTRA_CONFIG,
         "extra_config (mosquitto.conf text)"},
    };
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        if (asked[i].asked && !(d->features & (1u << asked[i].feature))) {
            broker__set_error("the %s broker cannot honour the option %s; leave it out or "
                              "use the mosquitto broker", d->name, asked[i].option);
            return HX_ERR_INVAL;
        }
    }
    return HX_OK;
}

/* ---------------------------------------------------------------- start */

static void broker__destroy(struct hx_broker *b)
{
    if (!b)
        return;
    if (b->driver && b->driver->release)
        b->driver->release(b);
    if (b->dir && !b->keep_dir)
        sim_fs_remove_tree(b->dir);
    free(b->dir);
    free(b->log_path);
    free(b);
}

static int broker__make_dir(struct hx_broker *b)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char *templ = NULL;
    if (asprintf(&templ, "%s/scansim-broker-XXXXXX", tmp) < 0) {
        broker__set_error("out of memory starting a broker");
        return HX_ERR_NOMEM;
    }
    if (!mkdtemp(templ)) {
        broker__set_error("cannot create a temporary folder under %s: %s; set TMPDIR to a "
                          "writable folder", tmp, strerror(errno));
        free(templ);
        return HX_ERR_SYS;
    }
    b->dir = templ;
    return HX_OK;
}

/* Launch on the asked port, or on fresh free ports while someone else takes them. */
static int broker__launch_on_a_port(struct hx_broker *b, uint16_t asked)
{
    int rc = HX_OK;
    b->port_fixed = asked != 0;
    for (int attempt = 0; attempt < HX_BROKER_PORT_TRIES; attempt++) {
        b->port = b->port_fixed ? asked : hx_free_port();
        if (b->port == 0) {
            broker__set_error("cannot find a free TCP port on 127.0.0.1: %s", strerror(errno));
            return HX_ERR_SYS;
        }
        rc = b->driver->launch(b);
        if (rc != BROKER__PORT_TAKEN || b->port_fixed)
            break;
    }
    if (rc == BROKER__PORT_TAKEN) {
        broker__set_error("port 127.0.0.1:%u is already in use%s; choose another port or stop "
                          "what uses it", (unsigned)b->port,
                          b->port_fixed ? "" : " (after several fresh ports)");
        rc = HX_ERR_SYS;
    }
    return rc;
}

int hx_broker_start(const struct hx_broker_opts *opts, struct hx_broker **out)
{
    struct hx_broker_opts defaults = {.persistence = true};
    const struct hx_broker_opts *o = opts ? opts : &defaults;
    struct hx_broker *b = NULL;
    int rc = HX_OK;

    broker__clear_error();
    if (!out) {
        broker__set_error("hx_broker_start: out must not be NULL");
        return HX_ERR_INVAL;
    }
    *out = NULL;
    const struct broker__driver *d = broker__driver_of(o->kind);
    if (!d) {
        broker__set_error("hx_broker_opts: unknown broker kind %d; use HX_BROKER_MOSQUITTO or "
                          "HX_BROKER_RABBITMQ", (int)o->kind);
        return HX_ERR_INVAL;
    }
    if ((rc = broker__check_common(o)) != HX_OK || (rc = broker__check_features(d, o)) != HX_OK)
        return rc;
    b = calloc(1, sizeof *b);
    if (!b) {
        broker__set_error("out of memory starting a broker");
        return HX_ERR_NOMEM;
    }
    b->driver = d;
    b->kind = o->kind;
    b->tls = o->cafile != NULL;
    b->keep_dir = o->keep_dir;
    if ((rc = broker__make_dir(b)) != HX_OK || (rc = d->prepare(b, o)) != HX_OK ||
        (rc = broker__launch_on_a_port(b, o->port)) != HX_OK)
        goto exit;
    snprintf(b->uri, sizeof b->uri, "%s://127.0.0.1:%u", b->tls ? "ssl" : "tcp",
             (unsigned)b->port);
    *out = b;
    b = NULL;
exit:
    /* keep the folder of a failed start only when asked: the error holds the log tail */
    broker__destroy(b);
    return rc;
}

/* ---------------------------------------------------------------- accessors */

uint16_t hx_broker_port(const struct hx_broker *b) { return b ? b->port : 0; }
const char *hx_broker_uri(const struct hx_broker *b) { return b ? b->uri : NULL; }
const char *hx_broker_dir(const struct hx_broker *b) { return b ? b->dir : NULL; }
const char *hx_broker_log_path(const struct hx_broker *b) { return b ? b->log_path : NULL; }
pid_t hx_broker_pid(const struct hx_broker *b) { return b ? b->pid : 0; }

enum hx_broker_kind hx_broker_kind(const struct hx_broker *b)
{
    return b ? b->kind : HX_BROKER_MOSQUITTO;
}

bool hx_broker_running(struct hx_broker *b)
{
    return b && b->driver->running(b);
}

bool hx_broker_death(struct hx_broker *b, pid_t *pid, char *words, size_t n)
{
    if (!b || hx_broker_running(b) || !b->died)
        return false;
    if (pid)
        *pid = b->died_pid;
    if (words && n) {
        int st = b->died_status;
        if (WIFSIGNALED(st)) {
            const char *abbrev = sigabbrev_np(WTERMSIG(st));
            snprintf(words, n, "killed by signal %d%s%s%s", WTERMSIG(st), abbrev ? " (SIG" : "",
                     abbrev ? abbrev : "", abbrev ? ")" : "");
        } else if (WIFEXITED(st)) {
            snprintf(words, n, "exited with code %d", WEXITSTATUS(st));
        } else {
            snprintf(words, n, "ended (wait status %d)", st);
        }
    }
    return true;
}

/* ---------------------------------------------------------------- lifecycle */

int hx_broker_stop(struct hx_broker *b)
{
    if (!b) {
        broker__set_error("hx_broker_stop: no broker given");
        return HX_ERR_INVAL;
    }
    return b->driver->stop(b);
}

int hx_broker_kill(struct hx_broker *b)
{
    if (!b) {
        broker__set_error("hx_broker_kill: no broker given");
        return HX_ERR_INVAL;
    }
    return b->driver->kill(b);
}

int hx_broker_restart(struct hx_broker *b)
{
    if (!b) {
        broker__set_error("hx_broker_restart: no broker given");
        return HX_ERR_INVAL;
    }
    int rc = hx_broker_stop(b);
    if (rc != HX_OK && rc != HX_ERR_TIMEOUT)
        return rc;
    /* The same port, always: a client reconnects to where it was. Someone may hold the port
       for a moment (a client socket bound to it by chance), so retry a few times. */
    b->died = false;
    for (int attempt = 0; attempt < 20; attempt++) {
        rc = b->driver->launch(b);
        if (rc != BROKER__PORT_TAKEN)
            return rc;
        broker__sleep_ms(100);
    }
    broker__set_error("cannot restart the %s broker: port 127.0.0.1:%u is taken by another "
                      "process; find it with 'ss -ltnp'", b->driver->name, (unsigned)b->port);
    return HX_ERR_SYS;
}

void hx_broker_free(struct hx_broker *b)
{
    if (!b)
        return;
    hx_broker_stop(b);
    broker__destroy(b);
}
