/*
 * fleet_workers.c - shard processes of `scansim run --workers K` (fleet_workers.h).
 *
 * Each shard is a process started with the user's arguments plus overrides: scansim-worker
 * (beside this program), which holds the devices only; this program again
 * (/proc/self/exe) when scansim-worker is not there. Its stdout
 * is a pipe read here line by line (non-blocking, poll). The shard's stdin is
 * /dev/null and its stderr is ours, so its error messages reach the user.
 */
#define _GNU_SOURCE
#include "fleet_workers.h"
#include "cli.h"
#include "sim/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

struct shard {
    pid_t pid;
    int fd;                  /* read end of its stdout; -1 at EOF */
    long first_index, devices; /* its devices: indexes into the run's */
    bool dead;               /* ended unasked */
    bool reported;           /* its death was handed out by fleet_workers_next_death */
    char cause[96];
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool have;               /* fig is valid */
    struct fleet_figures fig;
};

struct fleet_workers {
    struct shard *s;
    int k;
    bool lean;    /* the shards run scansim-worker */
    bool stopping; /* fleet_workers_stop asked them to end */
    char *prefix;  /* device ids' prefix, for messages */
    long id_start;
};

/* The program a shard runs, into out: scansim-worker beside this program (the devices
   only, without ncurses, SQLite or the dashboard: megabytes less per process; returns
   true), else this program (false). */
static bool worker_program(const char *uri, char *out, size_t cap)
{
    char self[PATH_MAX], cand[PATH_MAX + 32];
    ssize_t n;
    char *slash;

    (void)uri;
    snprintf(out, cap, "/proc/self/exe");
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return false;
    self[n] = '\0';
    if (!(slash = strrchr(self, '/')))
        return false;
    *slash = '\0';
    snprintf(cand, sizeof(cand), "%s/scansim-worker", self);
    if (access(cand, X_OK) != 0 || strlen(cand) >= cap)
        return false;
    snprintf(out, cap, "%s", cand);
    return true;
}

/* Is args[j] a flag the parent sets for each worker itself (with its value: skip)? The
   password reaches the worker through the environment, not argv (which holds stars by
   now, see cli.c); the brokers are the resolved list. Returns how many args to skip. */
static int worker_arg_skip(char **args, int j, int n_args)
{
    static const char *const with_value[] = { "-P", "--password", "--broker" };
    static const char *const joined[] = { "--password=", "--broker=" };

    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
        if (strcmp(args[j], with_value[i]) == 0)
            return j + 1 < n_args ? 2 : 1;
    for (size_t i = 0; i < sizeof joined / sizeof joined[0]; i++)
        if (strncmp(args[j], joined[i], strlen(joined[i])) == 0)
            return 1;
    if (strncmp(args[j], "-P", 2) == 0)
        return 1;
    return 0;
}

/* What every shard's command line is made of (fleet_workers_spawn's arguments). */
struct spawn_plan {
    char **args;              /* the user's arguments, minus those worker_arg_skip drops */
    int n_args;
    const char *const *uris;  /* the resolved brokers */
    int n_uris;
    int k;
    int rows_fd;              /* -1: no --rows-fd */
};

/* The numbers of one shard's command line, as text (argv points into them). */
struct shard_argtext {
    char ndev[24], nid[24], nshard[24], nwork[24], nrows[48];
};

/* Shard i's argv, NULL-terminated: the user's arguments, then its devices, brokers and
   place among the K workers. */
static void shard_argv(const struct spawn_plan *pl, int i, const struct shard *s, long first_id,
                       struct shard_argtext *t, char **argv)
{
    int a = 0;

    snprintf(t->ndev, sizeof(t->ndev), "%ld", s->devices);
    snprintf(t->nid, sizeof(t->nid), "%ld", first_id);
    snprintf(t->nshard, sizeof(t->nshard), "%d", i);
    snprintf(t->nwork, sizeof(t->nwork), "%d", pl->k);
    argv[a++] = "scansim";
    argv[a++] = "run";
    for (int j = 0; j < pl->n_args; j++) {
        int skip = worker_arg_skip(pl->args, j, pl->n_args);
        if (skip) {
            j += skip - 1;
            continue;
        }
        argv[a++] = pl->args[j];
    }
    argv[a++] = "--devices";
    argv[a++] = t->ndev;
    argv[a++] = "--id-start";
    argv[a++] = t->nid;
    for (int u = 0; u < pl->n_uris; u++) {
        argv[a++] = "--broker";
        argv[a++] = (char *)pl->uris[u];
    }
    if (pl->rows_fd >= 0) {
        snprintf(t->nrows, sizeof(t->nrows), "%d:%ld", pl->rows_fd, s->first_index);
        argv[a++] = "--rows-fd";
        argv[a++] = t->nrows;
    }
    argv[a++] = "--workers"; /* the shard splits --connect-rate and the cores by K */
    argv[a++] = t->nwork;
    argv[a++] = "--worker-index";
    argv[a++] = t->nshard;
    argv[a] = NULL;
}

/* Start shard i as prog argv with its stdout a pipe into s->fd; 0, or -1 (said). */
static int shard_start(struct shard *s, int i, const char *prog, char **argv,
                       const char *password, int rows_fd)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC) != 0) {
        fprintf(stderr, "scansim run: cannot make a pipe for worker %d: %s\n", i, strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "scansim run: cannot start worker %d: %s\n", i, strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the parent */
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p[1], 1);
        if (password)
            setenv(SCANSIM_CLI_PASSWORD_ENV, password, 1);
        if (rows_fd >= 0)
            (void)fcntl(rows_fd, F_SETFD, 0); /* this child only: its exec keeps it */
        execv(prog, argv);
        fprintf(stderr, "scansim run: cannot run %s for worker %d: %s\n", prog, i,
                strerror(errno));
        _exit(4);
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    s->pid = pid;
    s->fd = p[0];
    return 0;
}

int fleet_workers_spawn(int k, char **args, int n_args, int devices, long id_start,
                        const char *id_prefix, const char *const *uris, int n_uris,
                        const char *password, int rows_fd, struct fleet_workers **out)
{
    struct fleet_workers *w = calloc(1, sizeof(*w));
    const struct spawn_plan plan = { args, n_args, uris, n_uris, k, rows_fd };
    char **argv = NULL, prog[PATH_MAX];
    long next_id = id_start;

    *out = NULL;
    if (!w)
        return -1;
    w->k = k;
    w->id_start = id_start;
    w->prefix = strdup(id_prefix ? id_prefix : "scanner-");
    w->s = calloc((size_t)k, sizeof(*w->s));
    argv = calloc((size_t)n_args + 16 + 2 * (size_t)n_uris, sizeof(*argv));
    if (!w->s || !argv || !w->prefix)
        goto fail;
    for (int i = 0; i < k; i++) {
        w->s[i].fd = -1;
        w->s[i].pid = 0;
    }
    w->lean = worker_program(uris[0], prog, sizeof(prog));
    for (int i = 0; i < k; i++) {
        struct shard_argtext text;
        int share = devices / k + (i < devices % k ? 1 : 0);

        w->s[i].first_index = next_id - id_start;
        w->s[i].devices = share;
        shard_argv(&plan, i, &w->s[i], next_id, &text, argv);
        next_id += share;
        if (shard_start(&w->s[i], i, prog, argv, password, rows_fd) != 0)
            goto fail;
    }
    free(argv);
    *out = w;
    return 0;
fail:
    free(argv);
    fleet_workers_free(w);
    return -1;
}

/* Take complete lines out of a shard's buffer; the last one wins. */
static void shard_lines(struct shard *s)
{
    char *start = s->buf, *nl;

    while ((nl = memchr(start, '\n', s->len - (size_t)(start - s->buf)))) {
        struct fleet_figures f;
        *nl = '\0';
        if (fleet_figures_from_json(start, &f) == 0) {
            s->fig = f;
            s->have = true;
        }
        start = nl + 1;
    }
    s->len -= (size_t)(start - s->buf);
    memmove(s->buf, start, s->len);
    if (s->len == sizeof(s->buf)) /* a line longer than any we write: drop it */
        s->len = 0;
}

/* Why a reaped worker ended, in words. */
static void worker_status_words(int st, char *out, size_t cap)
{
    if (WIFSIGNALED(st)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        snprintf(out, cap, "killed by signal %d%s%s%s", WTERMSIG(st), abbrev ? " (SIG" : "",
                 abbrev ? abbrev : "", abbrev ? ")" : "");
    } else if (WIFEXITED(st)) {
        snprintf(out, cap, "exited with code %d without being asked to stop", WEXITSTATUS(st));
    } else {
        snprintf(out, cap, "ended (wait status %d)", st);
    }
}

/* A worker's pipe closed while nobody asked it to stop: it is dead (or about to be, having
   closed its output): reap it and note why. */
static void worker_ended(struct fleet_workers *w, struct shard *s)
{
    uint64_t end = sim_clock_ms() + 1000;
    int st = 0;
    pid_t r = 0;

    (void)w;
    while (s->pid > 0 && (r = waitpid(s->pid, &st, WNOHANG)) == 0 && sim_clock_ms() < end)
        usleep(2000);
    if (r == s->pid)
        worker_status_words(st, s->cause, sizeof s->cause);
    else
        snprintf(s->cause, sizeof s->cause, "closed its output (pid %d)", (int)s->pid);
    if (r == s->pid || r < 0)
        s->pid = 0;
    s->dead = true;
}

void fleet_workers_poll(struct fleet_workers *w, int timeout_ms)
{
    struct pollfd pfd[256];
    int n = 0;

    for (int i = 0; i < w->k && n < 256; i++)
        if (w->s[i].fd >= 0)
            pfd[n++] = (struct pollfd){ .fd = w->s[i].fd, .events = POLLIN };
    if (n == 0)
        return;
    if (poll(pfd, (nfds_t)n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < w->k; i++) {
        struct shard *s = &w->s[i];
        ssize_t r;
        if (s->fd < 0)
            continue;
        while ((r = read(s->fd, s->buf + s->len, sizeof(s->buf) - s->len)) > 0) {
            s->len += (size_t)r;
            shard_lines(s);
        }
        if (r == 0) {
            close(s->fd);
            s->fd = -1;
            if (!w->stopping)
                worker_ended(w, s);
        }
    }
}

void fleet_workers_figures(struct fleet_workers *w, struct fleet_figures *out)
{
    bool all_connected = true;
    double slowest = 0;

    memset(out, 0, sizeof(*out));
    for (int i = 0; i < w->k; i++) {
        if (!w->s[i].have) {
            all_connected = false;
            continue;
        }
        if (w->s[i].dead) {
            struct fleet_figures gone = w->s[i].fig;
            gone.connected = 0; /* what it did counts; its devices are offline now */
            fleet_figures_add(out, &gone);
            continue;
        }
        fleet_figures_add(out, &w->s[i].fig);
        if (w->s[i].fig.connect_seconds < 0)
            all_connected = false;
        else if (w->s[i].fig.connect_seconds > slowest)
            slowest = w->s[i].fig.connect_seconds;
    }
    out->connect_seconds = all_connected ? slowest : -1.0;
}

uint64_t fleet_workers_cpu_ms(const struct fleet_workers *w)
{
    uint64_t ms = 0;

    for (int i = 0; i < w->k; i++)
        if (w->s[i].pid > 0)
            ms += fleet_proc_cpu_ms((int)w->s[i].pid);
    return ms;
}

bool fleet_workers_device_alive(const struct fleet_workers *w, long index)
{
    for (int i = 0; i < w->k; i++) {
        const struct shard *s = &w->s[i];
        if (index >= s->first_index && index < s->first_index + s->devices)
            return !s->dead;
    }
    return false;
}

int fleet_workers_alive(struct fleet_workers *w)
{
    int n = 0;

    for (int i = 0; i < w->k; i++) {
        if (w->s[i].pid > 0) {
            int st;
            if (waitpid(w->s[i].pid, &st, WNOHANG) == w->s[i].pid)
                w->s[i].pid = 0;
            else
                n++;
        }
    }
    return n;
}

bool fleet_workers_next_death(struct fleet_workers *w, struct fleet_worker_death *out)
{
    for (int i = 0; i < w->k; i++) {
        struct shard *s = &w->s[i];
        long first = w->id_start + s->first_index;
        if (!s->dead || s->reported)
            continue;
        s->reported = true;
        memset(out, 0, sizeof *out);
        out->worker = i + 1;
        out->first_index = s->first_index;
        out->devices = s->devices;
        snprintf(out->who, sizeof out->who, "worker %d (%s%ld..%ld)", i + 1, w->prefix, first,
                 first + s->devices - 1);
        snprintf(out->cause, sizeof out->cause, "%s", s->cause);
        return true;
    }
    return false;
}

int fleet_workers_dead(const struct fleet_workers *w)
{
    int n = 0;

    for (int i = 0; i < w->k; i++)
        n += w->s[i].dead;
    return n;
}

void fleet_workers_stop(struct fleet_workers *w, int timeout_ms)
{
    uint64_t t0 = sim_clock_ms(), end = t0 + (uint64_t)timeout_ms;
    bool open;

    w->stopping = true;
    for (int i = 0; i < w->k; i++)
        if (w->s[i].pid > 0)
            kill(w->s[i].pid, SIGTERM);
    do {
        fleet_workers_poll(w, 100);
        open = false;
        for (int i = 0; i < w->k; i++)
            open |= w->s[i].fd >= 0;
    } while (open && sim_clock_ms() < end);
    for (int i = 0; i < w->k; i++) {
        struct shard *s = &w->s[i];
        if (s->pid > 0) {
            int st;
            pid_t r;
            /* End of its pipe comes a moment before the exit status: a worker whose pipe
               closed gets the rest of the time to be reaped, not a SIGKILL at once. */
            while ((r = waitpid(s->pid, &st, WNOHANG)) == 0 && sim_clock_ms() < end)
                usleep(5000);
            if (r == 0) {
                fprintf(stderr, "scansim run: worker %d (pid %d) did not stop within %.1f s; "
                        "killing it\n", i, (int)s->pid, (double)(sim_clock_ms() - t0) / 1000.0);
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &st, 0);
            }
            s->pid = 0;
        }
        if (s->fd >= 0) {
            close(s->fd);
            s->fd = -1;
        }
    }
}

const char *fleet_workers_program(const struct fleet_workers *w)
{
    return w->lean ? "scansim-worker" : "scansim";
}

void fleet_workers_free(struct fleet_workers *w)
{
    if (!w)
        return;
    if (w->s) {
        fleet_workers_stop(w, 5000);
        free(w->s);
    }
    free(w->prefix);
    free(w);
}
