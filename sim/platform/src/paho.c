/*
 * paho.c - Paho MQTTAsync clients that never take Paho's library down (sim/paho.h).
 *
 * One idle client per process keeps Paho's client list from emptying, so
 * MQTTAsync_terminate, which races with Paho's own threads, never runs. The
 * library links against no Paho library of its own: the program picks one (paho-mqtt3as
 * with TLS, or paho-mqtt3a for scansim-worker) and these calls bind to it.
 */
#include "sim/paho.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>

static pthread_once_t paho__once = PTHREAD_ONCE_INIT;
static MQTTAsync paho__idle; /* written once, under paho__once */

static void paho__make_idle(void)
{
    /* Never connected: the address is only parsed. Persistence NONE writes no files.
       MQTTAsync_create, unlike ..._createWithOptions, also seeds rand() for Paho's
       reconnect jitter (automaticReconnect): once per process, as before. */
    if (MQTTAsync_create(&paho__idle, "tcp://127.0.0.1:1", "scansim-paho-idle",
                         MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS)
        paho__idle = NULL; /* then clients work as before, with Paho's tear-down */
}

int sim_paho_create(MQTTAsync *handle, const char *uri, const char *client_id,
                    MQTTAsync_createOptions *opts)
{
    int rc;

    pthread_once(&paho__once, paho__make_idle);
    rc = MQTTAsync_createWithOptions(handle, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL,
                                     opts);
    if (rc != MQTTASYNC_SUCCESS)
        *handle = NULL;
    return rc;
}

bool sim_paho_uri_is_tls(const char *uri)
{
    return uri && (strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0);
}

bool sim_paho_tls(MQTTAsync_connectOptions *co, MQTTAsync_SSLOptions *ssl, const char *uri,
                  const char *cafile, const char *certfile, const char *keyfile, bool verify)
{
    if (!sim_paho_uri_is_tls(uri))
        return false;
    ssl->trustStore = cafile;
    ssl->keyStore = certfile;
    ssl->privateKey = keyfile;
    ssl->enableServerCertAuth = verify;
    ssl->verify = verify;
    co->ssl = ssl;
    return true;
}
