/*
 * broker_test_util.c - the broker suites' helpers (broker_test_util.h): the tests' MQTT
 * client (sim/test_mqtt.h) set up for an hx_broker, and what fails the test.
 */
#include "broker_test_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/clock.h"
#include "sim/err.h"
#include "sim/test_mqtt.h"

int64_t now_ms(void)
{
    return (int64_t)sim_clock_ms();
}

int client_connect_as(const struct hx_broker *b, const char *id, bool clean_session,
                      const char *user, const char *pass, struct tmq **out)
{
    struct tmq_opts o;
    int rc;

    tmq_opts_defaults(&o);
    o.uri = hx_broker_uri(b);
    o.client_id = id;
    o.persistent = !clean_session;
    o.username = user;
    o.password = pass;
    o.connect_timeout_s = 5;
    o.wait_ms = WAIT_MS;
    ck_assert_int_eq(tmq_create(&o, out), SIM_OK);
    rc = tmq_connect(*out);
    if (rc != SIM_OK) {
        tmq_free(*out);
        *out = NULL;
    }
    return rc;
}

static int client_seq;

int client_connect(const struct hx_broker *b, const char *user, const char *pass,
                   struct tmq **out)
{
    char id[64];
    snprintf(id, sizeof id, "t-%d-%d", (int)getpid(), client_seq++);
    return client_connect_as(b, id, true, user, pass, out);
}

void client_close(struct tmq **c)
{
    tmq_close(*c); /* DISCONNECT, then free */
    *c = NULL;
}

int client_subscribe_granted(struct tmq *c, const char *topic, int qos, int *granted)
{
    return tmq_subscribe(c, topic, qos, granted);
}

int client_subscribe(struct tmq *c, const char *topic, int qos)
{
    return tmq_subscribe(c, topic, qos, NULL);
}

void client_publish(struct tmq *c, const char *topic, const char *text, int qos,
                    bool retained)
{
    ck_assert_int_eq(tmq_publish_text(c, topic, text, qos, retained), SIM_OK);
}

bool client_receive(struct tmq *c, int timeout_ms, char *topic, size_t tn, char *text,
                    size_t n)
{
    const struct tmq_msg *m = tmq_next(c, timeout_ms);
    if (m) {
        snprintf(topic, tn, "%s", m->topic);
        snprintf(text, n, "%s", m->payload);
    }
    return m != NULL;
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
    struct tmq *c;
    ck_assert_int_eq(client_connect(b, NULL, NULL, &c), 0);
    ck_assert_int_eq(client_subscribe(c, topic, 1), 0);
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
