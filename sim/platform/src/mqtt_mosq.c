/* placeholder until the libmosquitto implementation lands (not committed) */
#include "mqtt_internal.h"
#include "sim/err.h"
static int m_create(const struct sim_mqtt_opts *o, const struct sim_mqtt_handlers *h, void *ctx, struct sim_mqtt **out)
{ (void)o; (void)h; (void)ctx; *out = NULL; return SIM_ERR_MQTT; }
static void m_stats(struct sim_mqtt_stats *out) { out->clients = 0; }
const struct sim_mqtt_impl sim_mqtt__mosquitto = { .create = m_create, .stats = m_stats };
