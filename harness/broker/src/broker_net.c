/*
 * broker_net.c - loopback ports and readiness probes (hx/broker.h, broker_internal.h).
 *
 * A free port is picked by binding port 0; another process can take it before the broker
 * binds it, so drivers retry on "address in use". Readiness is either a TCP connect or a
 * real MQTT 3.1.1 CONNECT answered by a CONNACK with return code 0: a broker that listens
 * before its MQTT side is up (RabbitMQ) is only ready after the latter.
 */
#include "broker_internal.h"
#include "sim/clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

/* A connected TCP socket to addr:port, or -1. */
static int broker__connect_fd(const struct in_addr *addr, uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = *addr};
    int r;
    do {
        r = connect(fd, (struct sockaddr *)&a, sizeof a);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool broker__try_connect_addr(const struct in_addr *addr, uint16_t port)
{
    int fd = broker__connect_fd(addr, port);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

bool broker__try_connect(uint16_t port)
{
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    return broker__try_connect_addr(&lo, port);
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
    int64_t deadline = (int64_t)sim_clock_ms() + timeout_ms;
    for (;;) {
        if (broker__try_connect_addr(&addr, port))
            return HX_OK;
        if ((int64_t)sim_clock_ms() >= deadline)
            break;
        broker__sleep_ms(10);
    }
    broker__set_error("nothing accepted TCP connections on %s:%u within %d ms", host,
                      (unsigned)port, timeout_ms);
    return HX_ERR_TIMEOUT;
}

/* Read exactly n bytes before deadline_ms (monotonic); false on EOF, error or time-out. */
static bool broker__read_full(int fd, unsigned char *buf, size_t n, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline_ms - (int64_t)sim_clock_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return false;
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

bool broker__mqtt_accepts(uint16_t port, int timeout_ms)
{
    struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
    int64_t deadline = (int64_t)sim_clock_ms() + timeout_ms;
    int fd = broker__connect_fd(&lo, port);
    if (fd < 0)
        return false;
    char id[24];
    int id_len = snprintf(id, sizeof id, "hx-ready-%d", (int)getpid());
    /* CONNECT: protocol "MQTT" level 4, clean session, keep-alive 10 s, client id */
    unsigned char pkt[64] = {0x10, (unsigned char)(12 + id_len), 0, 4, 'M', 'Q', 'T', 'T',
                             4, 0x02, 0, 10, 0, (unsigned char)id_len};
    memcpy(pkt + 14, id, (size_t)id_len);
    size_t len = 14 + (size_t)id_len;
    bool ok = send(fd, pkt, len, MSG_NOSIGNAL) == (ssize_t)len;
    unsigned char ack[4];
    ok = ok && broker__read_full(fd, ack, sizeof ack, deadline);
    ok = ok && ack[0] == 0x20 && ack[1] == 2 && ack[3] == 0;
    if (ok) {
        static const unsigned char disconnect[2] = {0xe0, 0};
        ssize_t ignored = send(fd, disconnect, sizeof disconnect, MSG_NOSIGNAL);
        (void)ignored;
    }
    close(fd);
    return ok;
}
