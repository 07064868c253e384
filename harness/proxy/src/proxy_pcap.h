/*
 * proxy_pcap.h - internal: one link's capture file, written through libpcap's dump API.
 *
 * The proxy sees payload bytes, not packets on a wire, so the capture synthesizes
 * Ethernet/IPv4/TCP around them: a three-way handshake at the start, one TCP segment per
 * forwarded write (split at 1460 bytes), seq/ack numbers that follow the bytes, and FIN or
 * RST at the end, so tshark follows the stream and decodes MQTT on the broker's port.
 */
#ifndef HX_PROXY_PCAP_H
#define HX_PROXY_PCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct proxy__pcap;

/* Open path and write the handshake. Addresses and ports in host byte order. NULL on
   failure with a message in err. */
struct proxy__pcap *proxy__pcap_open(const char *path, uint32_t client_ip, uint16_t client_port,
                                     uint32_t server_ip, uint16_t server_port,
                                     char *err, size_t err_len);

/* Bytes that went from the client (to_server = true) or from the server. */
int proxy__pcap_data(struct proxy__pcap *c, bool to_server, const uint8_t *data, size_t len);

/* One side sent FIN (to_server = true: the client's FIN). Each side at most once. */
int proxy__pcap_fin(struct proxy__pcap *c, bool from_client);

/* Close the capture: rst writes a RST from the proxy's point of view, otherwise the FINs
   not yet written. c may be NULL. */
void proxy__pcap_close(struct proxy__pcap *c, bool rst);

#endif /* HX_PROXY_PCAP_H */
