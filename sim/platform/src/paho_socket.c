/*
 * paho_socket.c - what scansim does to Paho's sockets from outside Paho (sim/paho.h):
 * TCP_NODELAY on each one (sim_paho_set_tcp_nodelay), and a receive thread that notices a
 * connecting socket at once instead of one to two seconds later (paho.mqtt.c #1430).
 *
 * How: this file defines connect(), poll() and usleep(). Paho calls them through the
 * dynamic linker, and a definition in the executable comes before libc's for every library
 * of the process; the next definition (libc's, or a sanitizer's) does the real work. The
 * object is linked into every program that makes its clients with sim_paho_create (paho.c
 * pulls it in).
 *
 * TCP_NODELAY. Paho C leaves Nagle's algorithm on and has no option to turn it off
 * (paho.mqtt.c #530). A device writes its PUBACK for an item and, a moment later, its
 * registration; Nagle holds the second small write until the broker ACKs the first, and the
 * broker's kernel delays that ACK by up to 40 ms. The backend does the same with an item
 * after a PUBACK. Measured on loopback with mosquitto: 10 devices, one item each at a time,
 * registered 115 items/s with p50 86 ms between publish and registration; with TCP_NODELAY,
 * p50 2.1 ms (17 ms with the fleet's 10 ms event batching). That delay is ours, not the
 * broker's or the backend's, so a simulator that reports latency must not add it. mosquitto
 * sets the same option on its side with `set_tcp_nodelay true`. Off until switched on.
 *
 * Connect latency. Paho 1.3.12's receive thread works in rounds: a poll() for writing with
 * no wait, then a poll() for reading that waits up to 1 s, over the sockets it had when the
 * round began; then it handles one ready socket, or sleeps 100 ms if none was. A connect
 * that starts meanwhile is not seen until that read poll times out, and the TCP connect's
 * end (the socket turns writable) is handled only after the read poll of the next round,
 * which waits again. With another client of the process connected and quiet, each connect
 * took 1.8 s here: the demo's device next to its backend, every reconnect, the test
 * clients. Upstream fixed it after 1.3.12 (PR #1642). The same from outside, in Paho's
 * receive thread only (every other poll() of the process goes straight through):
 * - connect() notes each TCP connect it leaves in progress and writes an eventfd;
 * - the read poll also waits on that eventfd, and for the end of each noted connect
 *   (POLLOUT on its socket, which Paho does not ask for there); either ends the round, and
 *   the 100 ms sleep after it is skipped (usleep() below), so the next round starts at once
 *   with the new socket in its sets;
 * - when the write poll of a round shows a noted socket writable (its connect is over),
 *   that round's read poll does not wait: Paho handles the connect and sends CONNECT.
 * Measured with a second client of a process connecting while the first is quiet: 1,800 ms
 * before, about 1 ms with this.
 */
#include "sim/paho.h"
#include "paho_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PENDING_FD_LIMIT 65536 /* connects on higher fds are only woken for */

typedef int (*paho_socket__connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*paho_socket__poll_fn)(struct pollfd *, nfds_t, int);
typedef int (*paho_socket__usleep_fn)(useconds_t);

static pthread_once_t paho_socket__once = PTHREAD_ONCE_INIT;
static paho_socket__connect_fn paho_socket__next_connect;
static paho_socket__poll_fn paho_socket__next_poll;
static paho_socket__usleep_fn paho_socket__next_usleep;
static int paho_socket__wake_fd = -1; /* eventfd: a connect started */
static atomic_bool paho_socket__nodelay;

/* TCP connects left in progress, by fd, until the receive thread has seen them end. A
   connect whose socket closed unseen leaves its bit until the fd connects again: the only
   cost is the scan below while any bit is set. */
static pthread_mutex_t paho_socket__mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t paho_socket__pending[PENDING_FD_LIMIT / 8]; /* under paho_socket__mu */
static atomic_int paho_socket__n_pending;

/* The read poll's set plus the eventfd. One receive thread runs at a time in a process,
   so one buffer; it stays reachable (not a leak) when the thread ends. */
static struct pollfd *paho_socket__buf;
static nfds_t paho_socket__buf_cap;

/* A forked child (scansim test runs each scenario in one) has Paho threads of its own:
   it must not share the parent's eventfd, nor its notes of the parent's connects. */
static void paho_socket__before_fork(void)
{
    pthread_mutex_lock(&paho_socket__mu);
}

static void paho_socket__after_fork_parent(void)
{
    pthread_mutex_unlock(&paho_socket__mu);
}

static void paho_socket__after_fork_child(void)
{
    memset(paho_socket__pending, 0, sizeof paho_socket__pending);
    atomic_store(&paho_socket__n_pending, 0);
    if (paho_socket__wake_fd >= 0)
        close(paho_socket__wake_fd);
    paho_socket__wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_unlock(&paho_socket__mu);
}

static void paho_socket__init(void)
{
    paho_socket__next_connect = (paho_socket__connect_fn)dlsym(RTLD_NEXT, "connect");
    paho_socket__next_poll = (paho_socket__poll_fn)dlsym(RTLD_NEXT, "poll");
    paho_socket__next_usleep = (paho_socket__usleep_fn)dlsym(RTLD_NEXT, "usleep");
    paho_socket__wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    (void)pthread_atfork(paho_socket__before_fork, paho_socket__after_fork_parent,
                         paho_socket__after_fork_child);
}

void sim_paho__sockets_init(void)
{
    pthread_once(&paho_socket__once, paho_socket__init);
}

void sim_paho_set_tcp_nodelay(bool on)
{
    atomic_store(&paho_socket__nodelay, on);
}

bool sim_paho_tcp_nodelay(void)
{
    return atomic_load(&paho_socket__nodelay);
}

static int paho_socket__real_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    sim_paho__sockets_init();
    if (paho_socket__next_connect)
        return paho_socket__next_connect(fd, addr, len);
    return (int)syscall(SYS_connect, fd, addr, len); /* no next definition (static link) */
}

static int paho_socket__real_poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    sim_paho__sockets_init();
    if (paho_socket__next_poll)
        return paho_socket__next_poll(fds, nfds, timeout);
    return (int)syscall(SYS_poll, fds, nfds, timeout);
}

/* A TCP connect is in progress on fd: note it and wake the receive thread. */
static void paho_socket__connect_started(int fd)
{
    uint64_t one = 1;
    ssize_t w;

    if (fd >= 0 && fd < PENDING_FD_LIMIT) {
        pthread_mutex_lock(&paho_socket__mu);
        if (!(paho_socket__pending[fd / 8] & (1u << (fd % 8)))) {
            paho_socket__pending[fd / 8] |= (uint8_t)(1u << (fd % 8));
            atomic_fetch_add(&paho_socket__n_pending, 1);
        }
        pthread_mutex_unlock(&paho_socket__mu);
    }
    if (paho_socket__wake_fd >= 0) {
        w = write(paho_socket__wake_fd, &one, sizeof one);
        (void)w; /* the counter is full (never, in practice): the thread is awake anyway */
    }
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    bool tcp = addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
    int type = 0, rc, saved;
    socklen_t tl = sizeof type;

    if (tcp && (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM))
        tcp = false;
    if (tcp && atomic_load(&paho_socket__nodelay)) {
        int one = 1;
        /* best effort: a socket that refuses the option still connects */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    rc = paho_socket__real_connect(fd, addr, len);
    saved = errno;
    if (tcp && rc != 0 && saved == EINPROGRESS)
        paho_socket__connect_started(fd);
    errno = saved;
    return rc;
}

/* Is the calling thread Paho's receive thread? Paho names it before its first poll. */
static bool paho_socket__in_receive_thread(void)
{
    static __thread signed char known = -1;
    if (known < 0) {
        char name[17] = "";
        (void)prctl(PR_GET_NAME, name, 0, 0, 0);
        known = strcmp(name, "MQTTAsync_rcv") == 0;
    }
    return known;
}

static bool paho_socket__is_pending(int fd)
{
    return fd >= 0 && fd < PENDING_FD_LIMIT &&
           (paho_socket__pending[fd / 8] & (1u << (fd % 8)));
}

/* After Paho's write poll: did it find the end of a noted connect? Forget those. */
static bool paho_socket__connect_ended(const struct pollfd *fds, nfds_t nfds)
{
    bool ended = false;

    pthread_mutex_lock(&paho_socket__mu);
    for (nfds_t i = 0; i < nfds; i++) {
        int fd = fds[i].fd;
        if (!fds[i].revents || !paho_socket__is_pending(fd))
            continue;
        paho_socket__pending[fd / 8] &= (uint8_t)~(1u << (fd % 8));
        atomic_fetch_sub(&paho_socket__n_pending, 1);
        ended = true;
    }
    pthread_mutex_unlock(&paho_socket__mu);
    return ended;
}

/* Set in the receive thread when a round ended for a connect: skip the sleep after it. */
static __thread bool paho_socket__skip_sleep;

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    static __thread bool handle_now; /* this round's write poll saw a connect end */
    bool watch = false;
    int rc;

    if (!paho_socket__in_receive_thread())
        return paho_socket__real_poll(fds, nfds, timeout);
    if (timeout == 0) { /* the write poll, which starts a round */
        rc = paho_socket__real_poll(fds, nfds, 0);
        handle_now = rc > 0 && atomic_load(&paho_socket__n_pending) > 0 &&
                     paho_socket__connect_ended(fds, nfds);
        return rc;
    }
    if (handle_now) { /* Paho handles the finished connect in this round: no waiting */
        handle_now = false;
        return paho_socket__real_poll(fds, nfds, 0);
    }
    if (paho_socket__wake_fd < 0)
        return paho_socket__real_poll(fds, nfds, timeout);
    if (nfds + 1 > paho_socket__buf_cap) {
        nfds_t cap = (nfds + 1) * 2;
        struct pollfd *b = realloc(paho_socket__buf, cap * sizeof *b);
        if (!b)
            return paho_socket__real_poll(fds, nfds, timeout);
        paho_socket__buf = b;
        paho_socket__buf_cap = cap;
    }
    memcpy(paho_socket__buf, fds, nfds * sizeof *fds);
    if (atomic_load(&paho_socket__n_pending) > 0) {
        pthread_mutex_lock(&paho_socket__mu);
        for (nfds_t i = 0; i < nfds; i++)
            if (paho_socket__is_pending(fds[i].fd) && !(fds[i].events & POLLOUT)) {
                paho_socket__buf[i].events |= POLLOUT;
                watch = true;
            }
        pthread_mutex_unlock(&paho_socket__mu);
    }
    paho_socket__buf[nfds].fd = paho_socket__wake_fd;
    paho_socket__buf[nfds].events = POLLIN;
    paho_socket__buf[nfds].revents = 0;
    rc = paho_socket__real_poll(paho_socket__buf, nfds + 1, timeout);
    if (rc < 0)
        return rc;
    rc = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        short ev = paho_socket__buf[i].revents;
        if (watch && (ev & POLLOUT) && !(fds[i].events & POLLOUT)) {
            ev &= (short)~POLLOUT; /* ours, not Paho's: its next write poll sees it */
            paho_socket__skip_sleep = true;
        }
        fds[i].revents = ev;
        rc += ev != 0;
    }
    if (paho_socket__buf[nfds].revents) {
        uint64_t v;
        ssize_t r = read(paho_socket__wake_fd, &v, sizeof v);
        (void)r; /* drained; a wake that raced in after it ends the next round instead */
        paho_socket__skip_sleep = true;
    }
    return rc;
}

/* Paho's receive thread sleeps 100 ms after a round with no ready socket (and in every
   round while it has no socket at all). After a round that a connect ended, the next
   round comes at once; otherwise the sleep ends early when a connect starts. */
int usleep(useconds_t us)
{
    sim_paho__sockets_init();
    if (paho_socket__wake_fd >= 0 && paho_socket__in_receive_thread()) {
        struct pollfd w = { paho_socket__wake_fd, POLLIN, 0 };
        if (paho_socket__skip_sleep) {
            paho_socket__skip_sleep = false;
            return 0;
        }
        if (paho_socket__real_poll(&w, 1, (int)((us + 999u) / 1000u)) > 0) {
            uint64_t v;
            ssize_t r = read(paho_socket__wake_fd, &v, sizeof v);
            (void)r;
        }
        return 0;
    }
    if (paho_socket__next_usleep)
        return paho_socket__next_usleep(us);
    {
        struct timespec ts = { (time_t)(us / 1000000u), (long)(us % 1000000u) * 1000L };
        return nanosleep(&ts, NULL);
    }
}
