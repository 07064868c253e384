/*
 * broker.c - a private mosquitto on a free loopback port (hx/broker.h).
 *
 * Each broker gets its own temporary folder (mkdtemp under $TMPDIR or /tmp) holding the
 * generated mosquitto.conf, the log, mosquitto's stderr, the persistence file and the optional
 * password file / ACL. The child is started with fork/exec in its own process group, with all
 * inherited descriptors closed, signals unblocked and PR_SET_PDEATHSIG so that a crashed parent
 * never leaks a broker. Ready means: the port accepts TCP and the log says "running" (so a port
 * stolen by someone else is not mistaken for ours). A free port is picked by binding port 0;
 * another process can take it before mosquitto binds it, so the start is retried on "Address
 * already in use" with a new port (only when no port was asked for).
 *
 * Caveat: PR_SET_PDEATHSIG fires when the *thread* that forked the broker exits, so start
 * brokers from a thread that lives as long as they do (the main thread, normally).
 */
#include "hx/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef HX_MOSQUITTO_DEFAULT
#define HX_MOSQUITTO_DEFAULT "/usr/sbin/mosquitto"
#endif
#ifndef HX_MOSQUITTO_PASSWD_DEFAULT
#define HX_MOSQUITTO_PASSWD_DEFAULT "/usr/bin/mosquitto_passwd"
#endif
/* How long a start may take before we give up (a loaded 2-core machine with ASan is slow). */
#define HX_BROKER_READY_MS 10000
/* How long a SIGTERM may take before SIGKILL. */
#define HX_BROKER_STOP_MS 10000
/* Start attempts on a fresh port when another process took the one we picked. */
#define HX_BROKER_PORT_TRIES 8

struct hx_broker {
    char *dir;          /* the temporary folder */
    char *conf_path;    /* dir/mosquitto.conf */
    char *log_path;     /* dir/mosquitto.log (log_dest file) */
    char *stderr_path;  /* dir/mosquitto.stderr (config errors before logging starts) */
    char *conf_body;    /* the config after the listener line */
    char *mosquitto;    /* program to run */
    char uri[64];       /* tcp:// or ssl://127.0.0.1:PORT */
    uint16_t port;
    bool port_fixed;    /* the caller asked for this port: never move to another */
    bool tls;
    bool keep_dir;
    pid_t pid;          /* 0 when not running */
};

/* ---------------------------------------------------------------- errors */

static _Thread_local char broker__err[1024];

static void broker__set_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void broker__set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(broker__err, sizeof broker__err, fmt, ap);
    va_end(ap);
}

const char *hx_broker_last_error(void)
{
    return broker__err[0] ? broker__err : "no error";
}

/* ---------------------------------------------------------------- helpers */

static int64_t broker__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void broker__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static char *broker__join(const char *dir, const char *name)
{
    char *p = NULL;
    if (asprintf(&p, "%s/%s", dir, name) < 0)
        return NULL;
    return p;
}

static int broker__write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        broker__set_error("cannot create %s: %s; check that the temporary folder is writable",
                          path, strerror(errno));
        return HX_ERR_SYS;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            broker__set_error("cannot write %s: %s; check free disk space", path,
                              strerror(errno));
            close(fd);
            return HX_ERR_SYS;
        }
        off += (size_t)n;
    }
    close(fd);
    return HX_OK;
}

static off_t broker__file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : 0;
}

/* The text of path from offset on (at most the last max bytes), newlines as " | ". */
static void broker__read_tail(const char *path, off_t from, char *out, size_t max)
{
    out[0] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t size = lseek(fd, 0, SEEK_END);
    if (size > from + (off_t)(max - 1))
        from = size - (off_t)(max - 1);
    if (from < 0 || from > size)
        from = 0;
    ssize_t n = pread(fd, out, max - 1, from);
    close(fd);
    if (n <= 0)
        return;
    out[n] = '\0';
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\n')
            out[i] = ';';
}

/* Does the file contain needle after offset? */
static bool broker__file_has(const char *path, off_t from, const char *needle)
{
    char buf[8192];
    broker__read_tail(path, from, buf, sizeof buf);
    return strstr(buf, needle) != NULL;
}

/* Close every descriptor >= 3 in a freshly forked child (async-signal-safe). */
static void broker__close_fds(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        close(fd);
}

/*
 * fork/exec argv with stdin from /dev/null and stdout+stderr appended to out_path.
 * With own_group: new process group and PR_SET_PDEATHSIG(SIGTERM).
 * Returns the pid or -1 (errno set).
 */
static pid_t broker__spawn(char *const argv[], const char *out_path, bool own_group)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* child: only async-signal-safe calls from here on */
    if (own_group) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (in >= 0)
        dup2(in, 0);
    if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
    }
    broker__close_fds();
    execv(argv[0], argv);
    static const char msg[] = "scansim: exec of the broker program failed\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

/* waitpid with a time-out; returns true when the child was reaped (status in *status). */
static bool broker__wait_child(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = broker__now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno != EINTR)
            return true; /* not our child any more (reaped elsewhere): treat as gone */
        if (broker__now_ms() >= deadline)
            return false;
        broker__sleep_ms(5);
    }
}

static void broker__describe_status(int status, char *out, size_t n)
{
    if (WIFEXITED(status))
        snprintf(out, n, "exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, n, "signal %d", WTERMSIG(status));
    else
        snprintf(out, n, "status %d", status);
}

/* ---------------------------------------------------------------- ports */

uint16_t hx_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    uint16_t port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* One connect attempt; true when something accepts on host:port. */
static bool broker__try_connect(const struct in_addr *addr, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = *addr};
    int r;
    do {
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } while (r != 0 && errno == EINTR);
    close(fd);
    return r == 0;
}

int hx_wait_port(const char *host, uint16_t port, int timeout_ms)
{
    struct in_addr addr;
    if (!host || strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (port == 0 || inet_pton(AF_INET, host, &addr) != 1) {
        broker__set_error("cannot wait for %s:%u: give an IPv4 address and a port", host,
                          (unsigned)port);
        return HX_ERR_INVAL;
    }
    int64_t deadline = broker__now_ms() + timeout_ms;
    for (;;) {
        if (broker__try_connect(&addr, port))
            return HX_OK;
        if (broker__now_ms() >= deadline)
            break;
        broker__sleep_ms(10);
    }
    broker__set_error("nothing accepted TCP connections on %s:%u within %d ms", host,
                      (unsigned)port, timeout_ms);
    return HX_ERR_TIMEOUT;
}

/* ---------------------------------------------------------------- config */

static bool broker__bad_text(const char *s)
{
    return !s || strpbrk(s, "\r\n") != NULL;
}

/* Run a helper program to completion; its output goes to out_path (quoted in errors). */
static int broker__run_tool(char *const argv[], const char *out_path, const char *what)
{
    pid_t pid = broker__spawn(argv, out_path, false);
    if (pid < 0) {
        broker__set_error("cannot start %s: %s", argv[0], strerror(errno));
        return HX_ERR_SYS;
    }
    int status = 0;
    if (!broker__wait_child(pid, HX_BROKER_STOP_MS, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        broker__set_error("%s (%s) did not finish in time", argv[0], what);
        return HX_ERR_TIMEOUT;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char tail[512], st[64];
        broker__read_tail(out_path, 0, tail, sizeof tail);
        broker__describe_status(status, st, sizeof st);
        broker__set_error("%s (%s) failed (%s): %s", argv[0], what, st, tail);
        return HX_ERR_SYS;
    }
    return HX_OK;
}

/*
 * Password file: plain "user:password" lines hashed in place by one `mosquitto_passwd -U`
 * (fast for thousands of device users; no password on a command line). -U splits a line at
 * its first ':' only up to the next ':', so a password holding ':' is added with -b instead.
 */
static int broker__make_passwd(struct hx_broker *b, const struct hx_broker_opts *o,
                               const char *path)
{
    int rc = HX_OK;
    char *text = NULL, *err_path = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        rc = HX_ERR_NOMEM;
        broker__set_error("out of memory writing the password file in %s", b->dir);
        goto exit;
    }
    for (int i = 0; i < o->n_users; i++) {
        const char *u = o->users[i].username, *p = o->users[i].password;
        if (broker__bad_text(u) || !*u || strchr(u, ':') || broker__bad_text(p)) {
            rc = HX_ERR_INVAL;
            broker__set_error("broker user %d: a username (no ':' or newline) and a password "
                              "(no newline) are needed", i);
            goto exit;
        }
        if (!strchr(p, ':'))
            fprintf(mem, "%s:%s\n", u, p);
    }
    fclose(mem);
    mem = NULL;
    if ((rc = broker__write_file(path, text, 0600)) != HX_OK)
        goto exit;
    if (!(err_path = broker__join(b->dir, "mosquitto_passwd.out"))) {
        rc = HX_ERR_NOMEM;
        goto exit;
    }
    const char *tool = getenv("SCANSIM_MOSQUITTO_PASSWD");
    if (!tool || !*tool)
        tool = HX_MOSQUITTO_PASSWD_DEFAULT;
    if (access(tool, X_OK) != 0) {
        rc = HX_ERR_SYS;
        broker__set_error("cannot run %s: %s; install mosquitto (it ships mosquitto_passwd) or "
                          "set SCANSIM_MOSQUITTO_PASSWD", tool, strerror(errno));
        goto exit;
    }
    char *hash_all[] = {(char *)tool, (char *)"-U", (char *)path, NULL};
    if ((rc = broker__run_tool(hash_all, err_path, "hashing the password file")) != HX_OK)
        goto exit;
    for (int i = 0; i < o->n_users; i++) {
        if (!strchr(o->users[i].password, ':'))
            continue;
        char *add[] = {(char *)tool, (char *)"-b", (char *)path,
                       (char *)o->users[i].username, (char *)o->users[i].password, NULL};
        if ((rc = broker__run_tool(add, err_path, "adding a user")) != HX_OK)
            goto exit;
    }
exit:
    if (mem)
        fclose(mem);
    free(text);
    free(err_path);
    return rc;
}

static int broker__build_config(struct hx_broker *b, const struct hx_broker_opts *o)
{
    int rc = HX_OK;
    char *text = NULL, *path = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        broker__set_error("out of memory building the broker config");
        return HX_ERR_NOMEM;
    }
    fprintf(f, "# generated by scansim hx_broker; the listener line comes first\n");
    if (b->tls) {
        fprintf(f, "cafile %s\ncertfile %s\nkeyfile %s\n", o->cafile, o->certfile, o->keyfile);
        if (o->require_certificate)
            fprintf(f, "require_certificate true\n");
        if (o->use_identity_as_username)
            fprintf(f, "use_identity_as_username true\n");
    }
    bool anonymous = o->n_users == 0 && !o->use_identity_as_username;
    fprintf(f, "allow_anonymous %s\n", anonymous ? "true" : "false");
    if (o->n_users > 0) {
        if (!(path = broker__join(b->dir, "passwd"))) {
            rc = HX_ERR_NOMEM;
            goto exit;
        }
        if ((rc = broker__make_passwd(b, o, path)) != HX_OK)
            goto exit;
        fprintf(f, "password_file %s\n", path);
        free(path);
        path = NULL;
    }
    if (o->acl) {
        if (!(path = broker__join(b->dir, "acl"))) {
            rc = HX_ERR_NOMEM;
            goto exit;
        }
        if ((rc = broker__write_file(path, o->acl, 0600)) != HX_OK)
            goto exit;
        fprintf(f, "acl_file %s\n", path);
    }
    if (geteuid() == 0)
        fprintf(f, "user root\n"); /* else mosquitto drops to 'mosquitto', which cannot
                                      write our 0700 folder */
    if (o->persistence) {
        fprintf(f, "persistence true\npersistence_location %s/\n"
                   "persistence_file mosquitto.db\n", b->dir);
        if (o->autosave_interval_s > 0)
            fprintf(f, "autosave_interval %d\n", o->autosave_interval_s);
        if (o->autosave_on_changes)
            fprintf(f, "autosave_on_changes true\n");
    } else {
        fprintf(f, "persistence false\n");
    }
    /* "Unlimited" is written as INT_MAX, not as mosquitto's own 0: mosquitto 2.0.11 answers
       a refused publish (MQTT 5 PUBACK >= 0x80, e.g. an ACL denial) and then checks
       out_packet_count >= max_queued_messages, which with 0 always holds, and closes the
       client's connection after every refusal. */
    fprintf(f, "max_queued_messages %u\n",
            o->max_queued_messages && o->max_queued_messages < INT_MAX
                ? (unsigned)o->max_queued_messages
                : (unsigned)INT_MAX);
    fprintf(f, "set_tcp_nodelay true\n");
    fprintf(f, "log_dest file %s\n", b->log_path);
    if (o->verbose_log)
        fprintf(f, "log_type all\n");
    else
        fprintf(f, "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n");
    if (o->extra_config)
        fprintf(f, "# extra_config\n%s\n", o->extra_config);
exit:
    fclose(f);
    free(path);
    if (rc == HX_OK)
        b->conf_body = text;
    else
        free(text);
    return rc;
}

static int broker__write_config(struct hx_broker *b)
{
    char *text = NULL;
    if (asprintf(&text, "listener %u 127.0.0.1\n%s", (unsigned)b->port, b->conf_body) < 0) {
        broker__set_error("out of memory writing %s", b->conf_path);
        return HX_ERR_NOMEM;
    }
    int rc = broker__write_file(b->conf_path, text, 0600);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- lifecycle */

/* Internal result of one launch: the port was taken by someone else. */
#define BROKER__PORT_TAKEN 1

/* Launch mosquitto once on b->port and wait until it is ready. */
static int broker__launch(struct hx_broker *b)
{
    int rc = broker__write_config(b);
    if (rc != HX_OK)
        return rc;
    off_t log_from = broker__file_size(b->log_path);
    off_t err_from = broker__file_size(b->stderr_path);
    char *argv[] = {b->mosquitto, (char *)"-c", b->conf_path, NULL};
    pid_t pid = broker__spawn(argv, b->stderr_path, true);
    if (pid < 0) {
        broker__set_error("cannot fork to start %s: %s; the machine may be out of processes",
                          b->mosquitto, strerror(errno));
        return HX_ERR_SYS;
    }
    b->pid = pid;
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    int64_t deadline = broker__now_ms() + HX_BROKER_READY_MS, first_answer = -1;
    for (;;) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            char log[700], err[300], st[64];
            b->pid = 0;
            broker__read_tail(b->log_path, log_from, log, sizeof log);
            broker__read_tail(b->stderr_path, err_from, err, sizeof err);
            if (strstr(log, "Address already in use") || strstr(err, "Address already in use"))
                return BROKER__PORT_TAKEN;
            broker__describe_status(status, st, sizeof st);
            broker__set_error("mosquitto (%s -c %s) exited at start (%s); log: %s; stderr: %s; "
                              "check the config and the log in %s", b->mosquitto, b->conf_path,
                              st, log[0] ? log : "(empty)", err[0] ? err : "(empty)", b->dir);
            return HX_ERR_EXITED;
        }
        /* ready: the port answers and the log says "running"; if extra_config silenced the
           log, the port answering for 300 ms from a live child will do */
        if (broker__try_connect(&lo, b->port)) {
            if (first_answer < 0)
                first_answer = broker__now_ms();
            if (broker__file_has(b->log_path, log_from, " running") ||
                broker__now_ms() - first_answer >= 300)
                return HX_OK;
        }
        if (broker__now_ms() >= deadline)
            break;
        broker__sleep_ms(10);
    }
    char log[600];
    broker__read_tail(b->log_path, log_from, log, sizeof log);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    b->pid = 0;
    broker__set_error("mosquitto did not accept connections on 127.0.0.1:%u within %d ms "
                      "(killed it); log: %s; the machine may be overloaded",
                      (unsigned)b->port, HX_BROKER_READY_MS, log[0] ? log : "(empty)");
    return HX_ERR_TIMEOUT;
}

static int broker__remove_entry(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void broker__destroy(struct hx_broker *b)
{
    if (!b)
        return;
    if (b->dir && !b->keep_dir)
        nftw(b->dir, broker__remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(b->dir);
    free(b->conf_path);
    free(b->log_path);
    free(b->stderr_path);
    free(b->conf_body);
    free(b->mosquitto);
    free(b);
}

int hx_broker_start(const struct hx_broker_opts *opts, struct hx_broker **out)
{
    struct hx_broker_opts defaults = {.persistence = true};
    const struct hx_broker_opts *o = opts ? opts : &defaults;
    struct hx_broker *b = NULL;
    int rc = HX_OK;

    broker__err[0] = '\0';
    if (!out) {
        broker__set_error("hx_broker_start: out must not be NULL");
        return HX_ERR_INVAL;
    }
    *out = NULL;
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
    b = calloc(1, sizeof *b);
    if (!b) {
        broker__set_error("out of memory starting a broker");
        return HX_ERR_NOMEM;
    }
    b->tls = tls;
    b->keep_dir = o->keep_dir;
    const char *prog = o->mosquitto_path;
    if (!prog || !*prog)
        prog = getenv("SCANSIM_MOSQUITTO");
    if (!prog || !*prog)
        prog = HX_MOSQUITTO_DEFAULT;
    b->mosquitto = strdup(prog);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char *templ = NULL;
    if (!b->mosquitto || asprintf(&templ, "%s/scansim-broker-XXXXXX", tmp) < 0) {
        rc = HX_ERR_NOMEM;
        broker__set_error("out of memory starting a broker");
        goto exit;
    }
    if (!mkdtemp(templ)) {
        broker__set_error("cannot create a temporary folder under %s: %s; set TMPDIR to a "
                          "writable folder", tmp, strerror(errno));
        free(templ);
        rc = HX_ERR_SYS;
        goto exit;
    }
    b->dir = templ;
    b->conf_path = broker__join(b->dir, "mosquitto.conf");
    b->log_path = broker__join(b->dir, "mosquitto.log");
    b->stderr_path = broker__join(b->dir, "mosquitto.stderr");
    if (!b->conf_path || !b->log_path || !b->stderr_path) {
        rc = HX_ERR_NOMEM;
        broker__set_error("out of memory starting a broker");
        goto exit;
    }
    if (access(b->mosquitto, X_OK) != 0) {
        broker__set_error("cannot run mosquitto at '%s': %s; install mosquitto or give its "
                          "path (opts.mosquitto_path or SCANSIM_MOSQUITTO)", b->mosquitto,
                          strerror(errno));
        rc = HX_ERR_SYS;
        goto exit;
    }
    if ((rc = broker__build_config(b, o)) != HX_OK)
        goto exit;
    b->port_fixed = o->port != 0;
    for (int attempt = 0; attempt < HX_BROKER_PORT_TRIES; attempt++) {
        b->port = b->port_fixed ? o->port : hx_free_port();
        if (b->port == 0) {
            broker__set_error("cannot find a free TCP port on 127.0.0.1: %s", strerror(errno));
            rc = HX_ERR_SYS;
            goto exit;
        }
        rc = broker__launch(b);
        if (rc != BROKER__PORT_TAKEN || b->port_fixed)
            break;
    }
    if (rc == BROKER__PORT_TAKEN) {
        broker__set_error("port 127.0.0.1:%u is already in use%s; choose another port or stop "
                          "what uses it", (unsigned)b->port,
                          b->port_fixed ? "" : " (after several fresh ports)");
        rc = HX_ERR_SYS;
    }
    if (rc != HX_OK)
        goto exit;
    snprintf(b->uri, sizeof b->uri, "%s://127.0.0.1:%u", b->tls ? "ssl" : "tcp",
             (unsigned)b->port);
    *out = b;
    b = NULL;
exit:
    if (b) {
        /* keep the folder of a failed start only when asked: the error holds the log tail */
        broker__destroy(b);
    }
    return rc;
}

uint16_t hx_broker_port(const struct hx_broker *b) { return b ? b->port : 0; }
const char *hx_broker_uri(const struct hx_broker *b) { return b ? b->uri : NULL; }
const char *hx_broker_dir(const struct hx_broker *b) { return b ? b->dir : NULL; }
const char *hx_broker_log_path(const struct hx_broker *b) { return b ? b->log_path : NULL; }
pid_t hx_broker_pid(const struct hx_broker *b) { return b ? b->pid : 0; }

bool hx_broker_running(struct hx_broker *b)
{
    if (!b || b->pid == 0)
        return false;
    int status;
    pid_t r = waitpid(b->pid, &status, WNOHANG);
    if (r == b->pid || (r < 0 && errno == ECHILD)) {
        b->pid = 0;
        return false;
    }
    return true;
}

int hx_broker_stop(struct hx_broker *b)
{
    if (!b) {
        broker__set_error("hx_broker_stop: no broker given");
        return HX_ERR_INVAL;
    }
    if (!hx_broker_running(b))
        return HX_OK;
    int status = 0, rc = HX_OK;
    kill(b->pid, SIGTERM);
    if (!broker__wait_child(b->pid, HX_BROKER_STOP_MS, &status)) {
        kill(b->pid, SIGKILL);
        waitpid(b->pid, &status, 0);
        broker__set_error("mosquitto (pid %d, port %u) ignored SIGTERM for %d ms and was "
                          "killed; its persistence file may be stale", (int)b->pid,
                          (unsigned)b->port, HX_BROKER_STOP_MS);
        rc = HX_ERR_TIMEOUT;
    }
    b->pid = 0;
    return rc;
}

int hx_broker_kill(struct hx_broker *b)
{
    if (!b) {
        broker__set_error("hx_broker_kill: no broker given");
        return HX_ERR_INVAL;
    }
    if (!hx_broker_running(b))
        return HX_OK;
    kill(b->pid, SIGKILL);
    while (waitpid(b->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    b->pid = 0;
    return HX_OK;
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
    for (int attempt = 0; attempt < 20; attempt++) {
        rc = broker__launch(b);
        if (rc != BROKER__PORT_TAKEN)
            return rc;
        broker__sleep_ms(100);
    }
    broker__set_error("cannot restart mosquitto: port 127.0.0.1:%u is taken by another "
                      "process; find it with 'ss -ltnp'", (unsigned)b->port);
    return HX_ERR_SYS;
}

void hx_broker_free(struct hx_broker *b)
{
    if (!b)
        return;
    hx_broker_stop(b);
    broker__destroy(b);
}
