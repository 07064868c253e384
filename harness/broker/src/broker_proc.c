/*
 * broker_proc.c - starting and reaping the broker's processes (broker_internal.h).
 *
 * A broker is started with fork/exec in its own process group, with all inherited
 * descriptors closed, signals unblocked and PR_SET_PDEATHSIG so that a crashed parent never
 * leaks a broker. PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, and
 * Linux clears it when the child changes its user, so it is set after the switch.
 */
#include "broker_internal.h"
#include "sim/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* In the child: only async-signal-safe calls; _exit on failure. */
static void broker__child_setup(const struct broker__spawn_opts *so, pid_t parent)
{
    static const char user_msg[] = "scansim: cannot switch to the broker's user\n";
    if (so->switch_user &&
        (setgroups(1, &so->gid) != 0 || setgid(so->gid) != 0 || setuid(so->uid) != 0)) {
        ssize_t ignored = write(2, user_msg, sizeof user_msg - 1);
        (void)ignored;
        _exit(126);
    }
    if (so->own_group) {
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
    /* No out_path: the caller's own stdin, stdout and stderr, as system() gives them. */
    int in = so->out_path ? open("/dev/null", O_RDONLY) : -1;
    int out = so->out_path ? open(so->out_path, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if (in >= 0)
        dup2(in, 0);
    if (out >= 0) {
        dup2(out, 1);
        dup2(out, 2);
    }
    broker__close_fds();
    if (so->cwd && chdir(so->cwd) != 0)
        _exit(126);
}

pid_t broker__spawn(char *const argv[], const struct broker__spawn_opts *so)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    broker__child_setup(so, parent);
    if (so->envp)
        execve(argv[0], argv, so->envp);
    else
        execv(argv[0], argv);
    static const char msg[] = "scansim: exec of the broker program failed\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

bool broker__wait_child(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = (int64_t)sim_clock_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno != EINTR)
            return true; /* not our child any more (reaped elsewhere): treat as gone */
        if ((int64_t)sim_clock_ms() >= deadline)
            return false;
        broker__sleep_ms(5);
    }
}

bool broker__child_gone(pid_t *pid)
{
    if (*pid == 0)
        return true;
    int status;
    pid_t r = waitpid(*pid, &status, WNOHANG);
    if (r == *pid || (r < 0 && errno == ECHILD)) {
        *pid = 0;
        return true;
    }
    return false;
}

bool broker__main_child_gone(struct hx_broker *b, pid_t *pid)
{
    if (*pid == 0)
        return true;
    int status = 0;
    pid_t was = b->pid ? b->pid : *pid, r = waitpid(*pid, &status, WNOHANG);
    if (r == *pid) {
        b->died = true;
        b->died_pid = was;
        b->died_status = status;
    }
    if (r == *pid || (r < 0 && errno == ECHILD)) {
        *pid = 0;
        return true;
    }
    return false;
}

void broker__describe_status(int status, char *out, size_t n)
{
    if (WIFEXITED(status))
        snprintf(out, n, "exit code %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(out, n, "signal %d", WTERMSIG(status));
    else
        snprintf(out, n, "status %d", status);
}

int broker__run_tool(char *const argv[], const char *out_path, const char *what)
{
    struct broker__spawn_opts so = {.out_path = out_path};
    pid_t pid = broker__spawn(argv, &so);
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

int hx_run_shell(const char *cmd, int *status)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    struct broker__spawn_opts so = {0};
    pid_t pid = broker__spawn(argv, &so);
    if (pid < 0)
        return HX_ERR_SYS;
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return HX_ERR_SYS;
    }
    *status = st;
    return HX_OK;
}
