/*
 * tcp_nodelay.c - TCP_NODELAY on the TCP connections Paho opens (sim/transport.h,
 * sim_transport_set_tcp_nodelay).
 *
 * Why: Paho C leaves Nagle's algorithm on and has no option to turn it off
 * (eclipse-paho/paho.mqtt.c#530). A device writes its PUBACK for an item and, a moment
 * later, its registration; Nagle holds the second small write until the broker ACKs the
 * first, and the broker's kernel delays that ACK by up to 40 ms. The backend does the same
 * with an item after a PUBACK. Measured on loopback with mosquitto: 10 devices, one item
 * each at a time, registered 115 items/s with p50 86 ms between publish and registration;
 * with TCP_NODELAY, p50 2.1 ms (17 ms with the fleet's 10 ms event batching). That delay is
 * ours, not the broker's or the backend's, so a simulator that reports latency must not add
 * it. mosquitto sets the same option on its side with `set_tcp_nodelay true`.
 *
 * How: this file defines connect(). Paho calls connect() through the dynamic linker, and a
 * definition in the executable comes before libc's for every library of the process, so
 * each Paho socket passes here just before it connects: a TCP socket gets TCP_NODELAY when
 * the switch is on, and the real connect() (the next definition: libc's, or a sanitizer's)
 * does the rest. The object is linked in only by a program that calls
 * sim_transport_set_tcp_nodelay(); others keep libc's connect() untouched.
 */
#include "sim/transport.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*tcp_nodelay__connect_fn)(int, const struct sockaddr *, socklen_t);

static atomic_bool tcp_nodelay__on;
static tcp_nodelay__connect_fn tcp_nodelay__next;
static pthread_once_t tcp_nodelay__once = PTHREAD_ONCE_INIT;

static void tcp_nodelay__resolve(void)
{
    tcp_nodelay__next = (tcp_nodelay__connect_fn)dlsym(RTLD_NEXT, "connect");
}

void sim_transport_set_tcp_nodelay(bool on)
{
    atomic_store(&tcp_nodelay__on, on);
}

bool sim_transport_tcp_nodelay(void)
{
    return atomic_load(&tcp_nodelay__on);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    if (atomic_load(&tcp_nodelay__on) && addr &&
        (addr->sa_family == AF_INET || addr->sa_family == AF_INET6)) {
        int type = 0, one = 1;
        socklen_t tl = sizeof type;
        /* best effort: a socket that refuses the option still connects */
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM)
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pthread_once(&tcp_nodelay__once, tcp_nodelay__resolve);
    if (tcp_nodelay__next)
        return tcp_nodelay__next(fd, addr, len);
    return (int)syscall(SYS_connect, fd, addr, len); /* no next definition (static link) */
}
