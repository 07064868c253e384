/*
 * test_hx_proxy_pcap.c - a link's capture file decodes as MQTT in tshark.
 *
 * A Paho client connects through a proxy with a pcap folder set, subscribes, publishes at
 * QoS 1 to itself (PUBLISH and PUBACK both ways) and disconnects; then tshark reads the file
 * with the broker's port decoded as MQTT, and the test checks the message types and the topic.
 * Exits 77 (CTest SKIP_RETURN_CODE) when tshark is not installed.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy_test_util.h"

#define TOPIC "scanners/dev-pcap/item_registration"

static const char *tshark_path(void)
{
    const char *t = TSHARK_BIN;
    if (t[0] != '\0' && access(t, X_OK) == 0)
        return t;
    return NULL;
}

static bool no_links(void *arg)
{
    return t_counters(arg).links_active == 0;
}

/* The one file in dir (its path into out). */
static bool only_file(const char *dir, char *out, size_t n)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int count = 0;
    if (d == NULL)
        return false;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(out, n, "%s/%s", dir, e->d_name);
        count++;
    }
    closedir(d);
    return count == 1;
}

START_TEST(a_captured_link_decodes_as_mqtt_in_tshark)
{
    char dir[] = "/tmp/hx_proxy_pcap_XXXXXX";
    char file[512], cmd[1024], line[1024], types[256] = ",";
    struct hx_broker *broker;
    struct hx_proxy_hub *hub;
    struct hx_proxy *proxy, *uncaptured;
    struct hx_proxy_hub_opts ho = { 0 };
    struct tmq *dev;
    struct tmq_token tok;
    bool topic_seen = false;
    int malformed = 0;
    FILE *f;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    ho.pcap_dir = dir;
    ck_assert_msg(hx_broker_start(NULL, &broker) == 0, "%s", hx_broker_last_error());
    ck_assert_int_eq(hx_proxy_hub_create(&ho, &hub), 0);
    ck_assert_int_eq(hx_proxy_hub_start(hub), 0);
    ck_assert_int_eq(hx_proxy_add(hub, "127.0.0.1", hx_broker_port(broker), 0, &proxy), 0);
    ck_assert_int_eq(hx_proxy_set_name(proxy, "dev-pcap"), 0);

    /* A proxy with capture turned off writes nothing, even with a hub folder set. */
    ck_assert_int_eq(hx_proxy_add(hub, "127.0.0.1", hx_broker_port(broker), 0, &uncaptured), 0);
    ck_assert_int_eq(hx_proxy_set_pcap_dir(uncaptured, NULL), 0);
    snprintf(cmd, sizeof(cmd), "'%s' -h 127.0.0.1 -p %u -t x -m y -q 1", MOSQUITTO_PUB,
             hx_proxy_port(uncaptured));
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_uint_eq(t_counters(uncaptured).links_accepted, 1);

    dev = tc_connect(hx_proxy_port(proxy), "dev-pcap", NULL);
    ck_assert_ptr_nonnull(dev);
    ck_assert_int_eq(tmq_subscribe(dev, TOPIC, 1, NULL), 0);
    ck_assert_int_eq(tmq_publish_start(dev, TOPIC, "{\"item\":42}", 11, 1, false, &tok), 0);
    ck_assert_int_eq(tmq_wait_published(dev, &tok, 5000), 0);
    ck_assert(tmq_wait_count(dev, 1, 5000));
    ck_assert(t_wait_counter(proxy, T_OFF(dir[HX_PROXY_TO_BROKER].packets[HX_MQTT_PUBACK]), 1,
                             5000));
    tmq_close(dev);
    ck_assert(t_wait(no_links, proxy, 10000)); /* the capture is closed with the link */

    ck_assert_msg(only_file(dir, file, sizeof(file)), "expected one capture file in %s", dir);
    ck_assert_ptr_nonnull(strstr(file, "dev-pcap-link1.pcap"));
    snprintf(cmd, sizeof(cmd), "'%s' -r '%s' -d tcp.port==%u,mqtt -T fields -e mqtt.msgtype "
             "-e mqtt.topic -e _ws.malformed 2>&1", tshark_path(), file, hx_broker_port(broker));
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        char *tab = strchr(line, '\t');
        fprintf(stderr, "tshark: %s", line);
        if (strstr(line, TOPIC) != NULL)
            topic_seen = true;
        if (strstr(line, "alformed") != NULL)
            malformed++;
        if (tab != NULL) {
            *tab = '\0';
            for (char *tok2 = strtok(line, ","); tok2 != NULL; tok2 = strtok(NULL, ",")) {
                size_t n = strlen(types);
                snprintf(types + n, sizeof(types) - n, "%s,", tok2);
            }
        }
    }
    ck_assert_int_eq(pclose(f), 0);
    fprintf(stderr, "decoded types: %s\n", types);
    /* CONNECT 1, CONNACK 2, PUBLISH 3, PUBACK 4, SUBSCRIBE 8, SUBACK 9, DISCONNECT 14 */
    static const char *want[] = { ",1,", ",2,", ",3,", ",4,", ",8,", ",9,", ",14," };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(strstr(types, want[i]) != NULL, "type %s missing from %s", want[i], types);
    ck_assert_msg(topic_seen, "topic %s not decoded", TOPIC);
    ck_assert_int_eq(malformed, 0);

    hx_proxy_hub_free(hub);
    hx_broker_free(broker);
    unlink(file);
    rmdir(dir);
}
END_TEST

int main(void)
{
    Suite *s;
    TCase *tc;
    SRunner *sr;
    int failed;

    if (tshark_path() == NULL) {
        fprintf(stderr, "SKIP: tshark is not installed (apt-get install tshark) - the pcap "
                "decoding test needs it\n");
        return 77;
    }
    s = suite_create("hx_proxy_pcap");
    tc = tcase_create("tshark");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, a_captured_link_decodes_as_mqtt_in_tshark);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
