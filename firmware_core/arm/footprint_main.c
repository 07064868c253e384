/*
 * footprint_main.c - the smallest board program that keeps all of firmware_core: every
 * public entry point is reachable, so the linked size (with --gc-sections) is the flash
 * the firmware, cJSON and the newlib parts they pull in take on a board. Never run; the
 * ports are empty stubs. ci/cross-arm.sh reports its size.
 */
#include <stddef.h>

#include "fw/fw_device.h"

static int stub_connect(void *c, const struct fw_connect_params *p) { (void)c; (void)p; return 0; }
static int stub_publish(void *c, const struct fw_publish *m, uint32_t *t) { (void)c; (void)m; *t = 0; return 0; }
static int stub_subscribe(void *c, const char *f, int q, uint32_t *t) { (void)c; (void)f; (void)q; *t = 1; return 0; }
static void stub_disconnect(void *c) { (void)c; }
static void stub_flush(void *c, const uint8_t *fb) { (void)c; (void)fb; }
static uint64_t stub_clock(void *c) { (void)c; return 0; }
static int stub_read(void *c, const char *k, void *b, size_t n, size_t *l) { (void)c; (void)k; (void)b; (void)n; *l = 0; return FW_ERR_NOT_FOUND; }
static int stub_write(void *c, const char *k, const void *b, size_t n) { (void)c; (void)k; (void)b; (void)n; return 0; }
static void stub_log(void *c, enum fw_log_level l, const char *s) { (void)c; (void)l; (void)s; }

static struct fw_device device;
volatile int footprint_sink;

int main(void)
{
    static const struct fw_ports ports = {NULL, stub_connect, stub_publish, stub_subscribe,
                                          stub_disconnect, stub_flush, stub_clock,
                                          stub_read, stub_write, stub_log, NULL, NULL};
    static const uint8_t uid[4] = {4, 1, 2, 3};
    struct fw_device_config cfg;
    fw_device_config_defaults(&cfg);
    cfg.device_id = "board";
    if (fw_device_init(&device, &cfg, &ports) != FW_OK)
        return 1;
    fw_device_start(&device);
    fw_device_on_connected(&device, false);
    fw_device_on_subscribed(&device, 1, 1);
    fw_device_on_connect_failed(&device, 5, "");
    fw_device_on_connection_lost(&device, "");
    fw_device_on_message(&device, "t", "{}", 2, 1, false);
    fw_device_on_published(&device, 1);
    fw_device_on_publish_refused(&device, 1, 0x87);
    footprint_sink = fw_device_on_tag(&device, uid, sizeof uid);
    fw_device_on_button(&device, FW_BUTTON_CONFIRM);
    fw_device_tick(&device, 1);
    footprint_sink += fw_device_framebuffer(&device)[0] + (int)fw_device_stats(&device)->connects;
    fw_device_stop(&device);
    return 0;
}
