/*
 * broker_rabbitmq.c - the RabbitMQ driver of hx_broker (broker_internal.h): RabbitMQ 3.10 with
 * its MQTT plugin (Debian rabbitmq-server), one private node per broker.
 *
 * Each broker's folder holds rabbitmq.conf (MQTT on 127.0.0.1:PORT, no AMQP listener,
 * anonymous MQTT as guest), enabled_plugins ([rabbitmq_mqtt].), an empty rabbitmq-env.conf
 * (so /etc/rabbitmq's is not read), mnesia/ (RABBITMQ_MNESIA_BASE: queues, retained
 * messages, sessions), log/, rabbitmq.log (RabbitMQ's log), rabbitmq.stdout (the script's
 * and the VM's own output) and the Erlang cookie (HOME is the folder).
 *
 * Processes, all started by us with the folder as HOME and a SCANSIM_BROKER_DIR marker in
 * their environment:
 *   - a private epmd in the foreground on a free port (ERL_EPMD_PORT), our child for the
 *     broker's whole life, so the system's epmd on 4369 is neither needed nor started;
 *   - RabbitMQ's own rabbitmq-server script (not Debian's /usr/sbin wrapper, which switches
 *     user with su and logs to /var/log/rabbitmq), our child; it runs the Erlang VM
 *     (beam.smp, hx_broker_pid) and turns a SIGTERM into a clean stop of it. The VM starts
 *     erl_child_setup in a session of its own, and that starts port programs.
 * Both children get PR_SET_PDEATHSIG(SIGTERM), so a crashed test stops its node. After a
 * stop or a kill, what still carries the marker (erl_child_setup and its port programs end
 * on their own soon after the VM) is waited for and then killed; free also ends epmd.
 *
 * As root, everything runs as the user 'rabbitmq' and the folder is given to that user;
 * as anyone else, as that user. Ready means: the log says the MQTT listener started on our
 * port and an MQTT CONNECT there gets a CONNACK with return code 0.
 *
 * What RabbitMQ 3.10's MQTT differs in (checked by test_hx_broker_rabbitmq.c): MQTT 3.1 and
 * 3.1.1 only (an MQTT 5 CONNECT is refused); a QoS 2 subscription is granted QoS 1 and a QoS 2
 * PUBLISH is answered with a PUBACK; retained messages survive a clean stop but not a kill -9;
 * a persistent session's queued QoS 1 messages survive both.
 *
 * Sections: state, setup, config, processes, lifecycle, the driver table.
 */
#include "broker_internal.h"
#include "sim/clock.h"
#include "sim/fs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HX_RABBITMQ_SERVER_DEFAULT
#define HX_RABBITMQ_SERVER_DEFAULT "/usr/lib/rabbitmq/bin/rabbitmq-server"
#endif
#ifndef HX_EPMD_DEFAULT
#define HX_EPMD_DEFAULT "/usr/bin/epmd"
#endif
#define HX_RABBITMQ_USER "rabbitmq"
/* How long a start may take. Measured here on 2 cores shared with other builds (Debian 12,
   RabbitMQ 3.10.8, Erlang 25.2, 2026-12-02): a first start answers MQTT after 12.8 s (median
   of 3: 12.6, 12.8, 14.2; 8.9-20.5 s over all runs), a restart on the same data after 6.1 s
   (median of 3: 5.8, 6.1, 6.8; up to 14.5 s under load), a clean stop takes 1.1 s; the VM's
   RSS is 135-153 MB. Under heavy load a start can take several times that: hence 120 s. */
#define HX_RABBITMQ_READY_MS 120000
#define HX_RABBITMQ_STOP_MS 30000
/* How long erl_child_setup and port programs may take to end after the VM. */
#define HX_RABBITMQ_SWEEP_MS 3000
#define RABBIT__N_ENV 24

/* ---------------------------------------------------------------- state */

struct rabbit {
    char *server;       /* RabbitMQ's rabbitmq-server script */
    char *epmd;         /* Erlang's epmd program */
    char *conf_path;    /* dir/rabbitmq.conf */
    char *mnesia_dir;   /* dir/mnesia (RABBITMQ_MNESIA_BASE) */
    char *out_path;     /* dir/rabbitmq.stdout */
    char *epmd_out;     /* dir/epmd.out */
    char *marker;       /* "SCANSIM_BROKER_DIR=<dir>" */
    char node[96];      /* scansim-<pid>-<n>@localhost */
    char *env[RABBIT__N_ENV]; /* environment of every process we start; NULL-terminated */
    uint16_t epmd_port;
    uint16_t dist_port; /* RABBITMQ_DIST_PORT */
    pid_t script;       /* the rabbitmq-server script: our child, parent of the VM */
    pid_t epmd_pid;     /* our epmd: our child */
    bool switch_user;   /* we are root: run as HX_RABBITMQ_USER */
    uid_t uid;
    gid_t gid;
    bool persistence;   /* false: forget mnesia/ at each restart, as mosquitto would */
    bool verbose;
    bool launched;      /* a later launch is a restart */
};

/* ---------------------------------------------------------------- setup */

/* Give path to the broker's user (root only; otherwise it is ours already). */
static int rabbit__give(const struct rabbit *r, const char *path)
{
    if (r->switch_user && lchown(path, r->uid, r->gid) != 0) {
        broker__set_error("cannot give %s to the user '%s': %s", path, HX_RABBITMQ_USER,
                          strerror(errno));
        return HX_ERR_SYS;
    }
    return HX_OK;
}

static int rabbit__make_dir(const struct rabbit *r, const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        broker__set_error("cannot create %s: %s; check that the temporary folder is writable",
                          path, strerror(errno));
        return HX_ERR_SYS;
    }
    return rabbit__give(r, path);
}

static int rabbit__write(const struct rabbit *r, const char *dir, const char *name,
                         const char *text)
{
    char *path = broker__join(dir, name);
    if (!path) {
        broker__set_error("out of memory writing %s/%s", dir, name);
        return HX_ERR_NOMEM;
    }
    int rc = broker__write_file(path, text, 0600);
    if (rc == HX_OK)
        rc = rabbit__give(r, path);
    free(path);
    return rc;
}

/* The programs, and the user to run them as. */
static int rabbit__find_programs(struct rabbit *r)
{
    const char *server = getenv("SCANSIM_RABBITMQ_SERVER");
    if (!server || !*server)
        server = HX_RABBITMQ_SERVER_DEFAULT;
    if (access(server, X_OK) != 0) {
        broker__set_error("RabbitMQ is not installed (cannot run %s: %s): apt-get install "
                          "rabbitmq-server (it brings the rabbitmq_mqtt plugin), or set "
                          "SCANSIM_RABBITMQ_SERVER to RabbitMQ's rabbitmq-server script",
                          server, strerror(errno));
        return HX_ERR_SYS;
    }
    if (access(HX_EPMD_DEFAULT, X_OK) != 0) {
        broker__set_error("Erlang's epmd is missing (cannot run %s: %s): apt-get install "
                          "erlang-base", HX_EPMD_DEFAULT, strerror(errno));
        return HX_ERR_SYS;
    }
    r->server = strdup(server);
    r->epmd = strdup(HX_EPMD_DEFAULT);
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(HX_RABBITMQ_USER);
        if (!pw) {
            broker__set_error("as root, RabbitMQ must run as the user '%s', which does not "
                              "exist: apt-get install rabbitmq-server creates it",
                              HX_RABBITMQ_USER);
            return HX_ERR_SYS;
        }
        r->switch_user = true;
        r->uid = pw->pw_uid;
        r->gid = pw->pw_gid;
    }
    return r->server && r->epmd ? HX_OK : HX_ERR_NOMEM;
}

/* ---------------------------------------------------------------- config */

static int rabbit__write_config(struct hx_broker *b, struct rabbit *r)
{
    char *text = NULL;
    if (asprintf(&text,
                 "# generated by scansim hx_broker (RabbitMQ %s)\n"
                 "listeners.tcp = none\n"
                 "mqtt.listeners.tcp.default = 127.0.0.1:%u\n"
                 "mqtt.allow_anonymous = true\n"
                 "loopback_users = none\n"
                 "log.console = false\n"
                 "log.file.level = %s\n",
                 r->node, (unsigned)b->port, r->verbose ? "debug" : "info") < 0) {
        broker__set_error("out of memory writing %s", r->conf_path);
        return HX_ERR_NOMEM;
    }
    int rc = broker__write_file(r->conf_path, text, 0600);
    free(text);
    return rc == HX_OK ? rabbit__give(r, r->conf_path) : rc;
}

static void rabbit__free_env(struct rabbit *r)
{
    for (int i = 0; i < RABBIT__N_ENV; i++) {
        free(r->env[i]);
        r->env[i] = NULL;
    }
}

/* The environment of epmd and the node (rebuilt per launch: the dist port may move). */
static int rabbit__build_env(struct hx_broker *b, struct rabbit *r)
{
    const char *d = b->dir;
    rabbit__free_env(r);
    int n = 0, bad = 0;
    bad |= asprintf(&r->env[n++], "%s", r->marker) < 0;
    bad |= asprintf(&r->env[n++], "PATH=/usr/sbin:/usr/bin:/sbin:/bin") < 0;
    bad |= asprintf(&r->env[n++], "LANG=C.UTF-8") < 0;
    bad |= asprintf(&r->env[n++], "HOME=%s", d) < 0;
    bad |= asprintf(&r->env[n++], "ERL_EPMD_PORT=%u", (unsigned)r->epmd_port) < 0;
    bad |= asprintf(&r->env[n++], "ERL_EPMD_ADDRESS=127.0.0.1") < 0;
    bad |= asprintf(&r->env[n++], "ERL_CRASH_DUMP=%s/erl_crash.dump", d) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_NODENAME=%s", r->node) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_DIST_PORT=%u", (unsigned)r->dist_port) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_CONFIG_FILE=%s", r->conf_path) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_ADVANCED_CONFIG_FILE=%s/advanced.config", d) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_CONF_ENV_FILE=%s/rabbitmq-env.conf", d) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_ENABLED_PLUGINS_FILE=%s/enabled_plugins", d) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_MNESIA_BASE=%s", r->mnesia_dir) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_LOG_BASE=%s/log", d) < 0;
    bad |= asprintf(&r->env[n++], "RABBITMQ_LOGS=%s", b->log_path) < 0;
    /* the distribution listens on loopback only */
    bad |= asprintf(&r->env[n++], "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel "
                                  "inet_dist_use_interface {127,0,0,1}") < 0;
    if (bad) {
        rabbit__free_env(r);
        broker__set_error("out of memory starting RabbitMQ");
        return HX_ERR_NOMEM;
    }
    return HX_OK;
}

/* ---------------------------------------------------------------- processes */

/* The parent pid and command name of pid from /proc/PID/stat; false when it is gone. */
static bool rabbit__stat(pid_t pid, pid_t *ppid, char *comm, size_t n, char *state)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return false;
    buf[len] = '\0';
    char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')');
    int parent = 0;
    if (!open_paren || !close_paren || sscanf(close_paren + 1, " %c %d", state, &parent) != 2)
        return false;
    snprintf(comm, n, "%.*s", (int)(close_paren - open_paren - 1), open_paren + 1);
    *ppid = parent;
    return true;
}

/* Does pid (alive, not a zombie) carry our marker in its environment? */
static bool rabbit__is_ours(pid_t pid, const char *marker)
{
    char path[64], comm[64], state = 0;
    pid_t ppid;
    if (!rabbit__stat(pid, &ppid, comm, sizeof comm, &state) || state == 'Z')
        return false;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool found = false;
    char *var = NULL;
    size_t cap = 0;
    while (!found && getdelim(&var, &cap, '\0', f) > 0)
        found = strcmp(var, marker) == 0;
    free(var);
    fclose(f);
    return found;
}

/* Count the live processes of this broker (by the marker) but keep (our epmd between
   restarts); with sig, signal each. */
static int rabbit__each_process(const struct rabbit *r, pid_t keep, int sig)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(proc)) != NULL) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid == getpid() || pid == keep || !rabbit__is_ours(pid, r->marker))
            continue;
        n++;
        if (sig)
            kill(pid, sig);
    }
    closedir(proc);
    return n;
}

/* The Erlang VM: the child of the script named beam.smp; 0 when not (yet) there. */
static pid_t rabbit__vm_of(pid_t script)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    pid_t vm = 0;
    struct dirent *e;
    while (vm == 0 && (e = readdir(proc)) != NULL) {
        char comm[64], state;
        pid_t pid = (pid_t)atoi(e->d_name), ppid = 0;
        if (pid > 0 && rabbit__stat(pid, &ppid, comm, sizeof comm, &state) &&
            ppid == script && strcmp(comm, "beam.smp") == 0)
            vm = pid;
    }
    closedir(proc);
    return vm;
}

/* Wait until nothing of the broker but keep is left, then SIGKILL what lingers. */
static void rabbit__sweep(const struct rabbit *r, pid_t keep)
{
    int64_t deadline = (int64_t)sim_clock_ms() + HX_RABBITMQ_SWEEP_MS;
    while (rabbit__each_process(r, keep, 0) > 0 && (int64_t)sim_clock_ms() < deadline)
        broker__sleep_ms(50);
    if (rabbit__each_process(r, keep, SIGKILL) > 0)
        broker__sleep_ms(50);
}

static pid_t rabbit__spawn(struct hx_broker *b, struct rabbit *r, char *const argv[],
                           const char *out_path)
{
    struct broker__spawn_opts so = {.out_path = out_path, .own_group = true,
                                    .switch_user = r->switch_user, .uid = r->uid,
                                    .gid = r->gid, .envp = r->env, .cwd = b->dir};
    return broker__spawn(argv, &so);
}

/* Our epmd on a free loopback port, once per broker (it outlives restarts). */
static int rabbit__start_epmd(struct hx_broker *b, struct rabbit *r)
{
    if (!broker__child_gone(&r->epmd_pid))
        return HX_OK;
    int rc = HX_OK;
    for (int attempt = 0; attempt < 8; attempt++) {
        char port[8];
        r->epmd_port = hx_free_port();
        snprintf(port, sizeof port, "%u", (unsigned)r->epmd_port);
        if ((rc = rabbit__build_env(b, r)) != HX_OK)
            return rc;
        char *argv[] = {r->epmd, (char *)"-port", port, (char *)"-address",
                        (char *)"127.0.0.1", NULL};
        r->epmd_pid = rabbit__spawn(b, r, argv, r->epmd_out);
        if (r->epmd_pid < 0) {
            r->epmd_pid = 0;
            broker__set_error("cannot fork to start %s: %s", r->epmd, strerror(errno));
            return HX_ERR_SYS;
        }
        int64_t deadline = (int64_t)sim_clock_ms() + 5000;
        while (!broker__child_gone(&r->epmd_pid) && (int64_t)sim_clock_ms() < deadline) {
            if (broker__try_connect(r->epmd_port))
                return HX_OK;
            broker__sleep_ms(10);
        }
        if (r->epmd_pid) {
            kill(r->epmd_pid, SIGKILL);
            waitpid(r->epmd_pid, NULL, 0);
            r->epmd_pid = 0;
        }
    }
    char out[300];
    broker__read_tail(r->epmd_out, 0, out, sizeof out);
    broker__set_error("cannot start epmd for RabbitMQ on a free port of 127.0.0.1: %s; see "
                      "%s%s", out[0] ? out : "(no output)", r->epmd_out,
                      r->switch_user ? " (as root it runs as the user 'rabbitmq', which must "
                                       "reach that folder: check TMPDIR)" : "");
    return HX_ERR_SYS;
}

/* ---------------------------------------------------------------- lifecycle */

static bool rabbit__running(struct hx_broker *b)
{
    struct rabbit *r = b->priv;
    if (broker__main_child_gone(b, &r->script))
        b->pid = 0;
    return r->script != 0;
}

/* SIGKILL the VM and the script, reap the script, end what is left but epmd. */
static void rabbit__kill_node(struct hx_broker *b, struct rabbit *r)
{
    if (b->pid)
        kill(b->pid, SIGKILL);
    if (r->script) {
        kill(-r->script, SIGKILL); /* the script's process group: script and VM */
        while (waitpid(r->script, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    r->script = 0;
    b->pid = 0;
    rabbit__sweep(r, r->epmd_pid);
}

/* The distribution port (ours alone, picked per launch) was taken between the pick and the
   node's bind: the launch tries another one. */
#define RABBIT__DIST_TAKEN 2
#define RABBIT__DIST_TRIES 5

/* The script ended during the start: why, in words; BROKER__PORT_TAKEN on a clash of the
   MQTT port, RABBIT__DIST_TAKEN on one of the distribution port. */
static int rabbit__exited_at_start(struct hx_broker *b, struct rabbit *r, int status,
                                   off_t log_from, off_t out_from)
{
    char log[700], out[500], st[64];
    r->script = 0;
    b->pid = 0;
    rabbit__sweep(r, r->epmd_pid);
    broker__read_tail(b->log_path, log_from, log, sizeof log);
    broker__read_tail(r->out_path, out_from, out, sizeof out);
    if (strstr(log, "dist_port_already_used") || strstr(out, "dist_port_already_used"))
        return RABBIT__DIST_TAKEN;
    if (strstr(log, "eaddrinuse") || strstr(out, "eaddrinuse"))
        return BROKER__PORT_TAKEN;
    broker__describe_status(status, st, sizeof st);
    broker__set_error("RabbitMQ (node %s, %s) exited at start (%s); log: %s; output: %s; "
                      "check the config and the log in %s%s", r->node, r->server, st,
                      log[0] ? log : "(empty)", out[0] ? out : "(empty)", b->dir,
                      r->switch_user ? " (as root it runs as the user 'rabbitmq', which "
                                       "must reach that folder: check TMPDIR)" : "");
    return HX_ERR_EXITED;
}

static int rabbit__wait_ready(struct hx_broker *b, struct rabbit *r, off_t log_from,
                              off_t out_from)
{
    char listener[64];
    snprintf(listener, sizeof listener, "started MQTT TCP listener on 127.0.0.1:%u",
             (unsigned)b->port);
    int64_t deadline = (int64_t)sim_clock_ms() + HX_RABBITMQ_READY_MS;
    for (;;) {
        int status = 0;
        if (waitpid(r->script, &status, WNOHANG) == r->script)
            return rabbit__exited_at_start(b, r, status, log_from, out_from);
        if (broker__file_has(b->log_path, log_from, listener) &&
            broker__mqtt_accepts(b->port, 2000)) {
            pid_t vm = rabbit__vm_of(r->script);
            b->pid = vm ? vm : r->script; /* the script forwards SIGTERM to the VM */
            return HX_OK;
        }
        if ((int64_t)sim_clock_ms() >= deadline)
            break;
        broker__sleep_ms(100);
    }
    char log[600];
    broker__read_tail(b->log_path, log_from, log, sizeof log);
    b->pid = rabbit__vm_of(r->script);
    rabbit__kill_node(b, r);
    broker__set_error("RabbitMQ (node %s) did not answer MQTT on 127.0.0.1:%u within %d ms "
                      "(killed it); log: %s; the machine may be overloaded", r->node,
                      (unsigned)b->port, HX_RABBITMQ_READY_MS, log[0] ? log : "(empty)");
    return HX_ERR_TIMEOUT;
}

/* persistence off: a restart starts from an empty node, as mosquitto's would. */
static int rabbit__forget_state(struct rabbit *r)
{
    sim_fs_remove_tree(r->mnesia_dir);
    return rabbit__make_dir(r, r->mnesia_dir);
}

/* One launch of the node on a freshly picked distribution port. */
static int rabbit__launch_once(struct hx_broker *b, struct rabbit *r)
{
    int rc;
    r->dist_port = hx_free_port(); /* clients never see it: a fresh one each launch */
    if ((rc = rabbit__write_config(b, r)) != HX_OK || (rc = rabbit__build_env(b, r)) != HX_OK)
        return rc;
    off_t log_from = broker__file_size(b->log_path);
    off_t out_from = broker__file_size(r->out_path);
    char *argv[] = {r->server, NULL};
    r->script = rabbit__spawn(b, r, argv, r->out_path);
    if (r->script < 0) {
        r->script = 0;
        broker__set_error("cannot fork to start %s: %s; the machine may be out of processes",
                          r->server, strerror(errno));
        return HX_ERR_SYS;
    }
    r->launched = true;
    return rabbit__wait_ready(b, r, log_from, out_from);
}

static int rabbit__launch(struct hx_broker *b)
{
    struct rabbit *r = b->priv;
    int rc;
    if ((rc = rabbit__start_epmd(b, r)) != HX_OK)
        return rc;
    if (r->launched && !r->persistence && (rc = rabbit__forget_state(r)) != HX_OK)
        return rc;
    for (int attempt = 0; attempt < RABBIT__DIST_TRIES; attempt++) {
        rc = rabbit__launch_once(b, r);
        if (rc != RABBIT__DIST_TAKEN)
            return rc;
    }
    broker__set_error("RabbitMQ (node %s) found its distribution port taken %d times in a "
                      "row (the last %u); the machine may be short of free ports", r->node,
                      RABBIT__DIST_TRIES, (unsigned)r->dist_port);
    return HX_ERR_SYS;
}

/* SIGTERM to the VM (RabbitMQ stops cleanly on it), wait for the script, sweep. */
static int rabbit__stop(struct hx_broker *b)
{
    struct rabbit *r = b->priv;
    if (!rabbit__running(b))
        return HX_OK;
    int status = 0, rc = HX_OK;
    kill(b->pid ? b->pid : r->script, SIGTERM);
    if (broker__wait_child(r->script, HX_RABBITMQ_STOP_MS, &status)) {
        r->script = 0;
        b->pid = 0;
        rabbit__sweep(r, r->epmd_pid);
        return rc;
    }
    broker__set_error("RabbitMQ (node %s, port %u) ignored SIGTERM for %d ms and was killed; "
                      "its data may not have been written", r->node, (unsigned)b->port,
                      HX_RABBITMQ_STOP_MS);
    rabbit__kill_node(b, r);
    return HX_ERR_TIMEOUT;
}

static int rabbit__kill(struct hx_broker *b)
{
    struct rabbit *r = b->priv;
    if (rabbit__running(b))
        rabbit__kill_node(b, r);
    return HX_OK;
}

static void rabbit__release(struct hx_broker *b)
{
    struct rabbit *r = b->priv;
    if (!r)
        return;
    if (rabbit__running(b))
        rabbit__kill_node(b, r);
    if (r->epmd_pid) {
        int status;
        kill(r->epmd_pid, SIGTERM);
        if (!broker__wait_child(r->epmd_pid, 2000, &status)) {
            kill(r->epmd_pid, SIGKILL);
            waitpid(r->epmd_pid, &status, 0);
        }
        r->epmd_pid = 0;
    }
    if (r->marker)
        rabbit__sweep(r, 0);
    rabbit__free_env(r);
    free(r->server);
    free(r->epmd);
    free(r->conf_path);
    free(r->mnesia_dir);
    free(r->out_path);
    free(r->epmd_out);
    free(r->marker);
    free(r);
    b->priv = NULL;
}

/* Paths, folders and the files that do not change between launches. */
static int rabbit__make_folder(struct hx_broker *b, struct rabbit *r)
{
    static unsigned seq;
    snprintf(r->node, sizeof r->node, "scansim-%d-%u@localhost", (int)getpid(),
             __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED));
    r->conf_path = broker__join(b->dir, "rabbitmq.conf");
    r->mnesia_dir = broker__join(b->dir, "mnesia");
    r->out_path = broker__join(b->dir, "rabbitmq.stdout");
    r->epmd_out = broker__join(b->dir, "epmd.out");
    b->log_path = broker__join(b->dir, "rabbitmq.log");
    if (asprintf(&r->marker, "SCANSIM_BROKER_DIR=%s", b->dir) < 0)
        r->marker = NULL;
    if (!r->conf_path || !r->mnesia_dir || !r->out_path || !r->epmd_out || !b->log_path ||
        !r->marker) {
        broker__set_error("out of memory starting RabbitMQ");
        return HX_ERR_NOMEM;
    }
    int rc;
    char *log_dir = broker__join(b->dir, "log");
    if ((rc = rabbit__give(r, b->dir)) == HX_OK && (rc = rabbit__make_dir(r, r->mnesia_dir)) ==
        HX_OK && (rc = log_dir ? rabbit__make_dir(r, log_dir) : HX_ERR_NOMEM) == HX_OK &&
        (rc = rabbit__write(r, b->dir, "enabled_plugins", "[rabbitmq_mqtt].\n")) == HX_OK)
        rc = rabbit__write(r, b->dir, "rabbitmq-env.conf", "# empty: /etc/rabbitmq's is not "
                                                           "read\n");
    free(log_dir);
    return rc;
}

static int rabbit__prepare(struct hx_broker *b, const struct hx_broker_opts *o)
{
    if (o->mosquitto_path) {
        broker__set_error("the rabbitmq broker cannot honour the option mosquitto_path; "
                          "leave it out (SCANSIM_RABBITMQ_SERVER names RabbitMQ's script)");
        return HX_ERR_INVAL;
    }
    struct rabbit *r = calloc(1, sizeof *r);
    if (!r) {
        broker__set_error("out of memory starting RabbitMQ");
        return HX_ERR_NOMEM;
    }
    b->priv = r;
    r->persistence = o->persistence;
    r->verbose = o->verbose_log;
    int rc = rabbit__find_programs(r);
    return rc == HX_OK ? rabbit__make_folder(b, r) : rc;
}

/* ---------------------------------------------------------------- the driver table */

const struct broker__driver broker__rabbitmq_driver = {
    .name = "rabbitmq",
    .features = 1u << HX_BROKER_FEATURE_PERSISTENCE,
    .prepare = rabbit__prepare,
    .launch = rabbit__launch,
    .running = rabbit__running,
    .stop = rabbit__stop,
    .kill = rabbit__kill,
    .release = rabbit__release,
};
