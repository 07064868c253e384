/*
 * broker_test_util.c - Paho MQTTClient helpers for the broker suites (broker_test_util.h).
 */
#include "broker_test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int client_seq;

int client_connect_as(const struct hx_broker *b, const char *id, bool clean_session,
                      const char *user, const char *pass, MQTTClient *out)
{
    MQTTClient c;
    ck_assert_int_eq(MQTTClient_create(&c, hx_broker_uri(b), id, MQTTCLIENT_PERSISTENCE_NONE,
                                       NULL), MQTTCLIENT_SUCCESS);
    MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
    co.cleansession = clean_session;
    co.keepAliveInterval = 30;
    co.connectTimeout = 5;
    co.username = user;
    co.password = pass;
    int rc = MQTTClient_connect(c, &co);
    if (rc != MQTTCLIENT_SUCCESS) {
        MQTTClient_destroy(&c);
        *out = NULL;
        return rc;
    }
    *out = c;
    return rc;
}

int client_connect(const struct hx_broker *b, const char *user, const char *pass,
                   MQTTClient *out)
{
    char id[64];
    snprintf(id, sizeof id, "t-%d-%d", (int)getpid(), client_seq++);
    return client_connect_as(b, id, true, user, pass, out);
}

void client_close(MQTTClient *c)
{
    if (!*c)
        return;
    MQTTClient_disconnect(*c, 1000);
    MQTTClient_destroy(c);
}

void client_publish(MQTTClient c, const char *topic, const char *text, int qos, bool retained)
{
    MQTTClient_deliveryToken tok;
    ck_assert_int_eq(MQTTClient_publish(c, topic, (int)strlen(text), text, qos, retained, &tok),
                     MQTTCLIENT_SUCCESS);
    ck_assert_int_eq(MQTTClient_waitForCompletion(c, tok, WAIT_MS), MQTTCLIENT_SUCCESS);
}

bool client_receive(MQTTClient c, int timeout_ms, char *topic, size_t tn, char *text, size_t n)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        char *t = NULL;
        int tl = 0;
        MQTTClient_message *m = NULL;
        int rc = MQTTClient_receive(c, &t, &tl, &m, 200);
        ck_assert(rc == MQTTCLIENT_SUCCESS || rc == MQTTCLIENT_TOPICNAME_TRUNCATED);
        if (!m)
            continue;
        snprintf(topic, tn, "%s", t);
        snprintf(text, n, "%.*s", m->payloadlen, (const char *)m->payload);
        MQTTClient_freeMessage(&m);
        MQTTClient_free(t);
        return true;
    }
    return false;
}

struct hx_broker *start_or_fail(const struct hx_broker_opts *o)
{
    struct hx_broker *b = NULL;
    int rc = hx_broker_start(o, &b);
    ck_assert_msg(rc == HX_OK, "hx_broker_start: %s (%s)", hx_strerror(rc),
                  hx_broker_last_error());
    ck_assert_ptr_nonnull(b);
    return b;
}

void read_retained(struct hx_broker *b, const char *topic, int timeout_ms, char *text, size_t n)
{
    MQTTClient c;
    ck_assert_int_eq(client_connect(b, NULL, NULL, &c), MQTTCLIENT_SUCCESS);
    ck_assert_int_eq(MQTTClient_subscribe(c, topic, 1), MQTTCLIENT_SUCCESS);
    char t[128];
    text[0] = '\0';
    if (!client_receive(c, timeout_ms, t, sizeof t, text, n))
        text[0] = '\0';
    client_close(&c);
}

int cli_pub(const struct hx_broker *b, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 20 %s -h 127.0.0.1 -p %u -q 1 -t t -m m %s "
             ">/dev/null 2>&1", MOSQUITTO_PUB, (unsigned)hx_broker_port(b), args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
