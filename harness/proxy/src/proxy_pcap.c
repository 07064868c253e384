/*
 * proxy_pcap.c - per-link capture files for the fault proxy (see proxy_pcap.h).
 *
 * libpcap writes the file (pcap_open_dead + pcap_dump_open + pcap_dump + pcap_dump_flush +
 * pcap_dump_close); this file only builds the Ethernet/IPv4/TCP headers around the bytes.
 * Each record is flushed at once so a capture is readable while the link runs and complete
 * if the process dies.
 */
#include "proxy_pcap.h"

#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define PCAP_MSS 1460u
#define ETH_LEN 14u
#define IP_LEN 20u
#define TCP_LEN 20u
#define HDR_LEN (ETH_LEN + IP_LEN + TCP_LEN)

#define TCP_FIN 0x01u
#define TCP_SYN 0x02u
#define TCP_RST 0x04u
#define TCP_PSH 0x08u
#define TCP_ACK 0x10u

struct proxy__pcap {
    pcap_t *dead;          /* the "device" libpcap needs to open a dump file */
    pcap_dumper_t *dumper;
    uint32_t ip[2];        /* [0] client, [1] server */
    uint16_t port[2];
    uint32_t seq[2];       /* next sequence number each side sends */
    bool fin[2];           /* FIN written for that side */
    uint16_t ip_id;
};

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

static uint16_t ip_checksum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += ((uint32_t)p[i] << 8) | p[i + 1];
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

/* One segment from side `from` (0 client, 1 server). */
static int segment(struct proxy__pcap *c, int from, uint8_t flags, const uint8_t *data, size_t len)
{
    uint8_t pkt[HDR_LEN + PCAP_MSS];
    struct pcap_pkthdr h;
    int to = 1 - from;
    uint8_t *eth = pkt, *ip = pkt + ETH_LEN, *tcp = ip + IP_LEN;

    memset(pkt, 0, HDR_LEN);
    /* Locally administered MACs: 02:00:00:00:00:01 client, :02 server. */
    eth[5] = (uint8_t)(to + 1); eth[0] = 2;
    eth[11] = (uint8_t)(from + 1); eth[6] = 2;
    put16(eth + 12, 0x0800);

    ip[0] = 0x45;
    put16(ip + 2, (uint16_t)(IP_LEN + TCP_LEN + len));
    put16(ip + 4, c->ip_id++);
    put16(ip + 6, 0x4000); /* DF */
    ip[8] = 64;
    ip[9] = 6; /* TCP */
    put32(ip + 12, c->ip[from]);
    put32(ip + 16, c->ip[to]);
    put16(ip + 10, ip_checksum(ip, IP_LEN));

    put16(tcp, c->port[from]);
    put16(tcp + 2, c->port[to]);
    put32(tcp + 4, c->seq[from]);
    put32(tcp + 8, (flags & TCP_ACK) ? c->seq[to] : 0);
    tcp[12] = (uint8_t)((TCP_LEN / 4) << 4);
    tcp[13] = flags;
    put16(tcp + 14, 65535);
    /* TCP checksum left 0: tshark does not verify it by default. */
    if (len > 0)
        memcpy(pkt + HDR_LEN, data, len);

    gettimeofday(&h.ts, NULL);
    h.caplen = h.len = (bpf_u_int32)(HDR_LEN + len);
    pcap_dump((u_char *)c->dumper, &h, pkt);

    c->seq[from] += (uint32_t)len;
    if (flags & (TCP_SYN | TCP_FIN))
        c->seq[from] += 1;
    return 0;
}

static int flush(struct proxy__pcap *c)
{
    return pcap_dump_flush(c->dumper) == 0 ? 0 : -1;
}

struct proxy__pcap *proxy__pcap_open(const char *path, uint32_t client_ip, uint16_t client_port,
                                     uint32_t server_ip, uint16_t server_port,
                                     char *err, size_t err_len)
{
    struct proxy__pcap *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        snprintf(err, err_len, "out of memory for the capture %s", path);
        goto fail;
    }
    c->dead = pcap_open_dead(DLT_EN10MB, 65535);
    if (c->dead == NULL) {
        snprintf(err, err_len, "pcap_open_dead failed for %s", path);
        goto fail;
    }
    c->dumper = pcap_dump_open(c->dead, path);
    if (c->dumper == NULL) {
        snprintf(err, err_len, "cannot create the capture %s: %s (check the pcap folder exists "
                 "and is writable)", path, pcap_geterr(c->dead));
        goto fail;
    }
    c->ip[0] = client_ip; c->ip[1] = server_ip;
    c->port[0] = client_port; c->port[1] = server_port;
    c->seq[0] = 1000u;
    c->seq[1] = 5000u;
    segment(c, 0, TCP_SYN, NULL, 0);
    segment(c, 1, TCP_SYN | TCP_ACK, NULL, 0);
    segment(c, 0, TCP_ACK, NULL, 0);
    if (flush(c) != 0) {
        snprintf(err, err_len, "cannot write the capture %s", path);
        goto fail;
    }
    return c;

fail:
    if (c != NULL) {
        if (c->dumper != NULL)
            pcap_dump_close(c->dumper);
        if (c->dead != NULL)
            pcap_close(c->dead);
        free(c);
    }
    return NULL;
}

int proxy__pcap_data(struct proxy__pcap *c, bool to_server, const uint8_t *data, size_t len)
{
    int from = to_server ? 0 : 1;

    while (len > 0) {
        size_t n = len > PCAP_MSS ? PCAP_MSS : len;
        segment(c, from, TCP_ACK | TCP_PSH, data, n);
        data += n;
        len -= n;
    }
    return flush(c);
}

int proxy__pcap_fin(struct proxy__pcap *c, bool from_client)
{
    int from = from_client ? 0 : 1;

    if (c->fin[from])
        return 0;
    c->fin[from] = true;
    segment(c, from, TCP_FIN | TCP_ACK, NULL, 0);
    segment(c, 1 - from, TCP_ACK, NULL, 0);
    return flush(c);
}

void proxy__pcap_close(struct proxy__pcap *c, bool rst)
{
    if (c == NULL)
        return;
    if (rst) {
        segment(c, 0, TCP_RST | TCP_ACK, NULL, 0);
    } else {
        proxy__pcap_fin(c, true);
        proxy__pcap_fin(c, false);
    }
    pcap_dump_close(c->dumper);
    pcap_close(c->dead);
    free(c);
}
