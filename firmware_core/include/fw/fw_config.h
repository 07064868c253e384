/*
 * fw_config.h - compile-time sizes of the scanner firmware.
 *
 * Every buffer, pool and ring of firmware_core is sized here, at compile time, as it
 * would be on an RP2040 (264 KB of RAM). Each value is a #ifndef default so a board or a
 * test build can override it with -D. RAM per device instance is reported by
 * ci/cross-arm.sh, which fails above 8 KiB.
 */
#ifndef FW_CONFIG_H
#define FW_CONFIG_H

/* Longest device id, in bytes, including the terminating NUL. */
#ifndef FW_DEVICE_ID_MAX
#define FW_DEVICE_ID_MAX 48
#endif

/* Longest item name the device keeps, in bytes, including the NUL (longer names are rejected). */
#ifndef FW_ITEM_NAME_MAX
#define FW_ITEM_NAME_MAX 33
#endif

/* Pending items waiting for a tag (the bounded queue shown on the idle screen). */
#ifndef FW_PENDING_ITEMS
#define FW_PENDING_ITEMS 16
#endif

/* Confirmed registrations not yet acknowledged by the broker (kept in flash). */
#ifndef FW_OUTBOX_LEN
#define FW_OUTBOX_LEN 16
#endif

/* Item ids remembered to suppress QoS 1 redeliveries (a ring; oldest forgotten first). */
#ifndef FW_SEEN_ITEMS
#define FW_SEEN_ITEMS 256
#endif

/* Tags remembered as already registered, to refuse a tag used twice (a ring). */
#ifndef FW_USED_TAGS
#define FW_USED_TAGS 32
#endif

/* Longest topic, in bytes, including the NUL. */
#ifndef FW_TOPIC_MAX
#define FW_TOPIC_MAX 112
#endif

/* Largest payload the device builds (registrations, queries), in bytes. */
#ifndef FW_PAYLOAD_MAX
#define FW_PAYLOAD_MAX 256
#endif

/* Largest inbound payload accepted; anything bigger is rejected as oversize before parsing. */
#ifndef FW_INBOUND_MAX
#define FW_INBOUND_MAX 1024
#endif

/* Deepest nesting of arrays and objects accepted in an inbound payload (the payloads are
   flat objects: 1). Checked before parsing, because cJSON recurses once per level: 1 KiB
   of '[' would take about 23 KiB of stack on a Cortex-M0+, ten times pico-sdk's default. */
#ifndef FW_JSON_DEPTH_MAX
#define FW_JSON_DEPTH_MAX 8
#endif

/* Longest log line, in bytes, including the NUL. */
#ifndef FW_LOG_MAX
#define FW_LOG_MAX 160
#endif

/* Longest command id (the idempotency key of a command), in bytes, including the NUL. */
#ifndef FW_CMD_ID_MAX
#define FW_CMD_ID_MAX 33
#endif

/* Command ids remembered, with their results, across reboots (a ring kept in flash). */
#ifndef FW_CMD_IDS
#define FW_CMD_IDS 8
#endif

/* Longest operator message of the `message` command, in bytes, including the NUL. */
#ifndef FW_MESSAGE_MAX
#define FW_MESSAGE_MAX 65
#endif

/* Largest command reply, in bytes (the `status` reply is the longest). */
#ifndef FW_REPLY_MAX
#define FW_REPLY_MAX 768
#endif

/* The device's scratch buffer, in bytes: a command reply or a flash record (pending
   items, outbox, command ids) is encoded there rather than on the stack, which a board
   keeps small (pico-sdk's default is 2 KiB). Must hold the largest of them: fw_device.c
   refuses to compile otherwise. */
#ifndef FW_SCRATCH_MAX
#define FW_SCRATCH_MAX 768
#endif

/* The firmware's version, reported by the `status` command. */
#ifndef FW_VERSION
#define FW_VERSION "0.2.0"
#endif

/* How long a reboot waits for its reply's acknowledgement, and how long it stays down. */
#ifndef FW_REBOOT_REPLY_WAIT_MS
#define FW_REBOOT_REPLY_WAIT_MS 1000
#endif
#ifndef FW_REBOOT_DOWN_MS
#define FW_REBOOT_DOWN_MS 200
#endif

/* The `identify` command: the screen inverts every FW_IDENTIFY_BLINK_MS. */
#ifndef FW_IDENTIFY_BLINK_MS
#define FW_IDENTIFY_BLINK_MS 500
#endif

/* Longest RFID UID in bytes (UIDs are 4, 7 or 10 bytes). */
#define FW_TAG_UID_MAX 10

/* How long an inventory look-up waits for the backend's answer, by default (the
   `config` command changes it: 1..60 s). */
#ifndef FW_INVENTORY_TIMEOUT_MS
#define FW_INVENTORY_TIMEOUT_MS 5000
#endif

/* Reconnect back-off: first delay, cap (doubling in between, with +/-25% jitter). */
#ifndef FW_RECONNECT_MIN_MS
#define FW_RECONNECT_MIN_MS 1000
#endif
#ifndef FW_RECONNECT_MAX_MS
#define FW_RECONNECT_MAX_MS 30000
#endif

/* How long a transient screen (registered, cancelled, error) stays before the next one. */
#ifndef FW_NOTICE_MS
#define FW_NOTICE_MS 1500
#endif

/* Default MQTT keep-alive, seconds (the `config` command changes it: 5..3600). */
#ifndef FW_KEEPALIVE_S
#define FW_KEEPALIVE_S 30
#endif

/* Default display contrast (SSD1306 command 0x81 takes 0..255). */
#ifndef FW_CONTRAST
#define FW_CONTRAST 0x7F
#endif

/* The OLED: SSD1306-style 128x64, 1 bit per pixel. */
#define FW_FB_WIDTH 128
#define FW_FB_HEIGHT 64
#define FW_FB_BYTES (FW_FB_WIDTH * FW_FB_HEIGHT / 8)

#endif /* FW_CONFIG_H */
