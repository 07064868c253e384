/*
 * hx/scenario.h - the scenario language: its syntax tree, parser and printer.
 *
 * A scenario file (scenarios/<name>.scn, reference in scenarios/README.md) declares a
 * broker, groups of simulated devices, a backend load and a list of timed steps (faults,
 * broker / backend / operator / device actions, expectations). scn_parse_file() and
 * scn_parse_buffer() turn it into a struct scn_scenario that the runner (`scansim test`)
 * executes; every step keeps its source position so a failure names file:line:column.
 *
 * The parser is strict and total: any byte sequence gives either a valid scenario or one
 * diagnostic ("x.scn:12:9: expected a duration such as 500ms or 2s, found 'soon'"); it
 * never reads past len, needs no NUL, does not recurse and runs in linear time.
 * After a successful parse the scenario has been validated: selectors are in range,
 * faults only target devices behind a fault proxy, `keepalive` is only used where the
 * selected devices have one, durations are positive, `at` times never go backwards.
 *
 * Devices are numbered 1..n_devices across all groups in the order the groups are
 * declared; a device's id is its group's id_prefix followed by its number within the
 * group ("scanner-1" .. "scanner-10"). Selectors hold global numbers.
 *
 * How a runner executes this (the contract; details in scenarios/README.md, "How a
 * scenario runs"): time zero is when every device is online and subscribed; the backend
 * load starts then; steps run strictly in order, each when the previous one finished; a
 * failing `expect` is recorded and the run goes on, a failing `wait until` stops it; Will
 * expectations look at Wills published since the last action step (not SCN_ACT_EXPECT)
 * began; everything random is drawn from the seed with scn_rng_next(); `scansim test`
 * exits 0 (all passed), 1 (a scenario failed) or 2 (a file did not parse, usage).
 *
 * Ownership: scn_parse_*() allocate one struct scn_scenario and everything it points to;
 * the caller frees it with scn_free(). Every pointer inside (file, description, groups,
 * steps, pos.file) stays valid until then. Diagnostics are written into a caller-owned
 * struct scn_diag (no allocation). Names returned by the *_name() functions are static.
 *
 * Threading: no global state; separate scenarios can be parsed on separate threads.
 */
#ifndef HX_SCENARIO_H
#define HX_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- limits */

#define SCN_NAME_MAX 48        /* scenario, group names and id prefixes, NUL included */
#define SCN_PATH_MAX 256       /* file name kept in a diagnostic, NUL included */
#define SCN_MESSAGE_MAX 384    /* diagnostic message, NUL included (the action hint names all 22) */
#define SCN_TAG_MAX 10         /* RFID UID bytes (4, 7 or 10) */
#define SCN_MAX_GROUPS 64      /* device groups per scenario */
#define SCN_MAX_DEVICES 100000 /* devices per scenario, all groups together */
#define SCN_MAX_STEPS 10000    /* steps per scenario */
#define SCN_MAX_LINE 4096      /* bytes per line */
#define SCN_MAX_WORDS 64       /* words per line */

/* ---------------------------------------------------------------- errors */

enum scn_err {
    SCN_OK = 0,
    SCN_ERR_SYNTAX = -1, /* the text is not a valid scenario (see the diagnostic) */
    SCN_ERR_IO = -2,     /* the file could not be read (see the diagnostic) */
    SCN_ERR_NOMEM = -3,  /* out of memory */
    SCN_ERR_INVAL = -4,  /* bad argument (NULL pointer) */
};

/* A short English description of an scn_err ("syntax error in a scenario"). Never NULL. */
const char *scn_strerror(int err);

/* Where something is in a scenario file. line and col count from 1 (col in bytes, a tab
   is one column); 0 means "the whole file". file points into the scenario (or the
   diagnostic) that holds this position. */
struct scn_pos {
    const char *file;
    uint32_t line;
    uint32_t col;
};

/* One diagnostic: the first error found. */
struct scn_diag {
    char file[SCN_PATH_MAX];
    uint32_t line;                  /* 0 when the error concerns the whole file (I/O) */
    uint32_t col;
    char message[SCN_MESSAGE_MAX];  /* what was expected and what was found */
};

/* Format d as "file:line:col: message" (or "file: message" when line is 0) into buf.
   Returns the length it wanted (like snprintf); buf is always NUL-terminated if cap > 0. */
int scn_diag_format(const struct scn_diag *d, char *buf, size_t cap);

/* ------------------------------------------------------------ value types */

/* A duration expression: ms + keepalive_milli / 1000 * keepalive, e.g.
   `1.5 * keepalive + 1s` gives ms = 1000, keepalive_milli = 1500. `keepalive` is the
   keep-alive of the selected devices (the largest when they span groups; every group of
   the scenario when the step selects no device). The parser resolves it: resolved_ms is
   what the runner uses, plus startup_milli / 1000 x the scenario's startup (the time from
   its start until time zero: how fast this broker on this machine took the fleet in),
   which only the runner knows. */
struct scn_time_expr {
    int64_t ms;               /* constant part, milliseconds */
    int64_t keepalive_milli;  /* keepalive factor x 1000; 0 when keepalive is not used */
    int64_t startup_milli;    /* startup factor x 1000 (>= 0); 0 when startup is not used */
    int64_t resolved_ms;      /* ms + keepalive_milli * keepalive_s (> 0 unless startup is
                                 used: then the sum with startup's share is what counts) */
};

enum scn_cmp {
    SCN_CMP_EQ = 0, /* == */
    SCN_CMP_NE,     /* != */
    SCN_CMP_LT,     /* <  */
    SCN_CMP_LE,     /* <= */
    SCN_CMP_GT,     /* >  */
    SCN_CMP_GE,     /* >= */
};
/* "==", "!=", ... */
const char *scn_cmp_name(enum scn_cmp cmp);
/* Does `actual <cmp> expected` hold? */
bool scn_cmp_holds(enum scn_cmp cmp, int64_t actual, int64_t expected);

/* ------------------------------------------------------------- selectors */

enum scn_selector_kind {
    SCN_SEL_NONE = 0, /* the step selects no device: ledger expectations, broker actions,
                         `publish` without `to`, `wait`. (Device, fault and operator actions
                         and counter expectations written without a selector get ALL.) */
    SCN_SEL_DEVICE,   /* `device 3` or `device scanner-3`: first == last */
    SCN_SEL_RANGE,    /* `devices 1..10`: first..last, inclusive */
    SCN_SEL_ALL,      /* `all devices`: 1..n_devices */
    SCN_SEL_RANDOM,   /* `random 5 devices`: count devices drawn from 1..n_devices */
    SCN_SEL_GROUP,    /* `group name`: the group's devices, first..last */
};
const char *scn_selector_kind_name(enum scn_selector_kind kind);

struct scn_selector {
    enum scn_selector_kind kind;
    uint32_t first;          /* global device numbers, 1-based, inclusive (all kinds but */
    uint32_t last;           /* NONE; for RANDOM: 1..n_devices, the pool it draws from) */
    uint32_t count;          /* RANDOM: how many to draw; others: last - first + 1 */
    int group;               /* GROUP: index into scn_scenario.groups; otherwise -1 */
    char id[SCN_NAME_MAX];   /* DEVICE written by id: "scanner-3" ("" when by number);
                                GROUP: the group's name */
};

/* -------------------------------------------------------------- header */

enum scn_broker_variant {
    SCN_BROKER_PLAIN = 0, /* anonymous, plain TCP */
    SCN_BROKER_PASSWORD,  /* password file, no anonymous clients */
    SCN_BROKER_ACL,       /* password file and an ACL per device */
    SCN_BROKER_TLS,       /* TLS listener, server certificate */
    SCN_BROKER_MTLS,      /* TLS with client certificates required */
};
const char *scn_broker_variant_name(enum scn_broker_variant v);

/* Which broker the runner starts (`broker rabbitmq`). */
enum scn_broker_kind {
    SCN_BROKER_MOSQUITTO = 0, /* the default */
    SCN_BROKER_RABBITMQ,      /* RabbitMQ with its MQTT plugin: plain, 3.1.1, no settings */
};
const char *scn_broker_kind_name(enum scn_broker_kind k); /* "mosquitto" / "rabbitmq" */

struct scn_broker {
    enum scn_broker_kind kind;
    bool kind_written;            /* `broker mosquitto|rabbitmq` names it */
    bool settings_written;        /* a setting other than its default under `broker` (or a
                                     variant other than plain): only a broker the runner
                                     starts can honour it */
    uint32_t settings_line;       /* the first such setting's line, 0 when none */
    enum scn_broker_variant variant;
    bool persistence;             /* default true */
    uint32_t autosave_interval;   /* seconds, or changes with autosave_on_changes; 0 = default */
    bool autosave_on_changes;     /* default false */
    uint32_t max_queued_messages; /* 0 = unlimited (the default) */
    struct scn_pos pos;           /* the `broker` line; line 0 when not written */
};

enum scn_session { SCN_SESSION_PERSISTENT = 0, SCN_SESSION_CLEAN };
enum scn_mqtt { SCN_MQTT_311 = 0, SCN_MQTT_5 };
enum scn_layout { SCN_LAYOUT_SEED = 0, SCN_LAYOUT_PER_DEVICE };
enum scn_link { SCN_LINK_DIRECT = 0, SCN_LINK_PROXY };
enum scn_operator_mode { SCN_OPERATOR_AUTO = 0, SCN_OPERATOR_MANUAL };
const char *scn_session_name(enum scn_session s);        /* "persistent" / "clean" */
const char *scn_mqtt_name(enum scn_mqtt m);              /* "3.1.1" / "5" */
const char *scn_layout_name(enum scn_layout l);          /* "seed" / "per-device" */
const char *scn_link_name(enum scn_link l);              /* "direct" / "proxy" */
const char *scn_operator_mode_name(enum scn_operator_mode m); /* "auto" / "manual" */

/* The scripted operator of a group (auto): after an item shows, wait a think time drawn
   from [think_min_ms, think_max_ms], scan a tag (a wrong one with wrong_tag_bp), then
   confirm (or cancel with cancel_bp). Rates are in basis points: 500 = 5 %. */
struct scn_operator {
    enum scn_operator_mode mode;
    int64_t think_min_ms;  /* default 100 */
    int64_t think_max_ms;  /* default 300 */
    uint32_t wrong_tag_bp; /* default 0 */
    uint32_t cancel_bp;    /* default 0 */
};

struct scn_group {
    char name[SCN_NAME_MAX];
    char id_prefix[SCN_NAME_MAX]; /* default "scanner-" */
    uint32_t count;               /* devices in the group, >= 1 */
    uint32_t first;               /* global number of its first device */
    enum scn_session session;     /* default persistent */
    int qos;                      /* 0 or 1, default 1 */
    enum scn_mqtt mqtt;           /* default 3.1.1 */
    uint32_t keepalive_s;         /* default 30; 0 disables keep-alive */
    enum scn_layout layout;       /* default seed */
    enum scn_link link;           /* default direct; faults need proxy */
    bool flash;                   /* file-backed flash, default on */
    struct scn_operator op;
    struct scn_pos pos;           /* the `group` line */
};

/* Reasons an item payload is rejected by a device, in the order of enum fw_reject
   (firmware_core/include/fw/fw_device.h), with the same names. Used for `rejects <reason>`
   counters and as the kinds of malformed items the backend publishes (all but
   UNKNOWN_TOPIC). */
enum scn_reject {
    SCN_REJECT_OVERSIZE = 0,
    SCN_REJECT_NOT_UTF8,
    SCN_REJECT_INVALID_JSON,
    SCN_REJECT_TRAILING_GARBAGE,
    SCN_REJECT_NOT_OBJECT,
    SCN_REJECT_MISSING_FIELD,
    SCN_REJECT_WRONG_TYPE,
    SCN_REJECT_OUT_OF_RANGE,
    SCN_REJECT_NAME_TOO_LONG,
    SCN_REJECT_TOO_DEEP,
    SCN_REJECT_UNKNOWN_TOPIC,
    SCN_REJECT_COUNT
};
const char *scn_reject_name(enum scn_reject r); /* "missing_field" */

/* The backend's load, published from the start of the run. */
struct scn_backend {
    uint64_t items;            /* items to publish: total, or per device (0 = none) */
    bool per_device;           /* `items 20 per device` */
    uint32_t rate_per_s;       /* items per second; 0 = as fast as possible */
    uint32_t malformed;        /* malformed items mixed in among the good ones */
    uint32_t malformed_kinds;  /* bit (1u << enum scn_reject) per kind, used round-robin */
    struct scn_pos pos;        /* the `backend` line; line 0 when not written */
};

/* ----------------------------------------------------------------- steps */

/* When a step runs. Steps run in file order, each after the previous one finished. */
enum scn_timing {
    SCN_AT = 0,     /* `at 2s`: at time_ms after the start (or at once if that has passed) */
    SCN_AFTER,      /* `after 500ms`: time_ms after the previous step finished */
    SCN_WAIT,       /* `wait 2s`: a pause of time_ms; action SCN_ACT_NOTHING */
    SCN_WAIT_UNTIL, /* `wait until <condition> within T`: action SCN_ACT_EXPECT whose
                       expectation has_within; fails if the condition does not hold in T */
    SCN_THEN,       /* a bare `expect ...` line: right after the previous step */
};
const char *scn_timing_name(enum scn_timing t); /* "at", "after", "wait", "wait until", "then" */

/* MQTT control packet types for faults. SCN_PKT_ANY is `all` (every packet). */
enum scn_packet {
    SCN_PKT_ANY = 0,
    SCN_PKT_CONNECT = 1, SCN_PKT_CONNACK, SCN_PKT_PUBLISH, SCN_PKT_PUBACK, SCN_PKT_PUBREC,
    SCN_PKT_PUBREL, SCN_PKT_PUBCOMP, SCN_PKT_SUBSCRIBE, SCN_PKT_SUBACK, SCN_PKT_UNSUBSCRIBE,
    SCN_PKT_UNSUBACK, SCN_PKT_PINGREQ, SCN_PKT_PINGRESP, SCN_PKT_DISCONNECT, SCN_PKT_AUTH,
};
const char *scn_packet_name(enum scn_packet p); /* "PUBACK" (the MQTT type number = value) */

enum scn_direction {
    SCN_DIR_TO_BROKER = 0, /* `to broker`: device -> broker */
    SCN_DIR_TO_DEVICE,     /* `to device`: broker -> device */
    SCN_DIR_BOTH,          /* `both ways` */
};
const char *scn_direction_name(enum scn_direction d); /* "to broker", "to device", "both ways" */

/* Malformed bytes the fault proxy injects towards a device, in the order of enum
   hx_proxy_malformed (harness/proxy/include/hx/proxy.h). */
enum scn_frame {
    SCN_FRAME_BAD_LENGTH = 0, /* a remaining length of 5 bytes (30 FF FF FF FF 01) */
    SCN_FRAME_TRUNCATED,      /* a PUBLISH announcing 64 bytes, 10 sent, then the link closes */
    SCN_FRAME_OVERSIZE,       /* a PUBLISH announcing 268,435,455 bytes */
    SCN_FRAME_RESERVED_TYPE,  /* packet type 0 (reserved) */
};
const char *scn_frame_name(enum scn_frame f); /* "bad_length" */

enum scn_action {
    SCN_ACT_NOTHING = 0,       /* `wait 2s` */
    /* faults (fault proxy; selected devices must be in groups with `link proxy`) */
    SCN_ACT_DROP,              /* drop next N <packet> <direction>; N = 0: all until heal */
    SCN_ACT_DELAY,             /* delay <packet|all> <direction> by <duration> */
    SCN_ACT_DUPLICATE,         /* duplicate next N PUBLISH <direction> (PUBLISH only) */
    SCN_ACT_CUT,               /* cut link rst|fin */
    SCN_ACT_BLACKHOLE,         /* blackhole link: TCP stays open, nothing passes */
    SCN_ACT_THROTTLE,          /* throttle <size>/s, both ways */
    SCN_ACT_REFUSE,            /* refuse connections (accept and close at once) */
    SCN_ACT_HEAL,              /* remove every fault of the link */
    SCN_ACT_INJECT,            /* inject malformed <frame> to device */
    /* broker */
    SCN_ACT_BROKER_STOP,       /* SIGTERM: persistence written */
    SCN_ACT_BROKER_KILL,       /* SIGKILL: unsaved state lost */
    SCN_ACT_BROKER_RESTART,    /* start again on the same port and persistence file */
    /* backend (selector NONE: as the layout goes; otherwise per-device layout only) */
    SCN_ACT_PUBLISH_ITEMS,     /* publish N items [to <selector>] */
    SCN_ACT_PUBLISH_MALFORMED, /* publish N malformed <reject kind> [to <selector>] */
    /* operator (buttons and the RFID reader of the selected devices) */
    SCN_ACT_SCAN_TAG,          /* scan tag <HEX> */
    SCN_ACT_SCAN_RANDOM,       /* scan random tag (a fresh valid UID from the seed) */
    SCN_ACT_SCAN_WRONG,        /* scan wrong tag (a UID of a bad length) */
    SCN_ACT_CONFIRM,           /* press confirm */
    SCN_ACT_CANCEL,            /* press cancel */
    SCN_ACT_MODE,              /* press mode (inventory look-up on/off) */
    SCN_ACT_OPERATOR_PAUSE,    /* the scripted operator stops acting */
    SCN_ACT_OPERATOR_RESUME,
    /* device */
    SCN_ACT_POWER_OFF,         /* clean stop: retained offline, DISCONNECT (no Will) */
    SCN_ACT_POWER_ON,
    SCN_ACT_RESTART,           /* power off then on */
    SCN_ACT_NETWORK_DOWN,      /* the device loses its network (no DISCONNECT sent) */
    SCN_ACT_NETWORK_UP,
    SCN_ACT_POWER_CUT,         /* power cut: the connection drops, no fw_device_stop (Will) */
    /* remote commands (the harness as the backend; docs/protocol.md, "Commands") */
    SCN_ACT_COMMAND,           /* command <cmd> [k=v ...] [as <id>] [to <selector>] */
    SCN_ACT_FORGE_COMMAND,     /* device N publishes command <cmd> ... to <selector>: with
                                  device N's credentials, as a compromised device would */
    /* expectation */
    SCN_ACT_EXPECT,            /* check step.u.expect */
};
const char *scn_action_name(enum scn_action a); /* "drop", "broker kill", "power off", ... */

/* What an expectation looks at. */
enum scn_expect_kind {
    SCN_EXP_LEDGER = 0, /* expect ledger <field> <cmp> <value> */
    SCN_EXP_COUNTER,    /* expect [sum] <counter> [<reason>] <cmp> <value> [on <selector>] */
    SCN_EXP_WILL,       /* expect will published for <selector> [within T] */
    SCN_EXP_NO_WILL,    /* expect no will for <selector> [within T] */
    SCN_EXP_RETAINED,   /* expect retained status of <selector> == online|offline */
    SCN_EXP_ORDER,      /* expect registrations of <selector> arrive in order */
    SCN_EXP_REPLIES,    /* expect command replies [ok|error] [duplicate] [reason <r>] <cmp> <n>
                           [from <selector>] */
    SCN_EXP_FORGED,     /* expect forged commands refused|accepted <cmp> <n> */
};
const char *scn_expect_kind_name(enum scn_expect_kind k);

/* Figures of the backend's ledger (struct hx_ledger_report in harness/backend/include/
   hx/backend.h). Counts compare with integers, latencies with durations (value in ms). */
enum scn_ledger_field {
    SCN_LEDGER_PUBLISHED = 0,        /* distinct (good) items the backend published */
    SCN_LEDGER_REGISTERED,           /* published items with at least one registration */
    SCN_LEDGER_REGISTERED_ONCE,      /* items with exactly one idempotency key */
    SCN_LEDGER_REGISTERED_TWICE,     /* items with two or more keys: a conflict */
    SCN_LEDGER_LOST,                 /* published items never registered */
    SCN_LEDGER_DUPLICATE_DELIVERIES, /* registrations received again (same key) */
    SCN_LEDGER_MALFORMED,            /* registrations that failed the backend's strict parse */
    SCN_LEDGER_LATENCY_P50,          /* publish -> first registration, median */
    SCN_LEDGER_LATENCY_P99,
    SCN_LEDGER_LATENCY_MAX,
    SCN_LEDGER_UNKNOWN_ITEMS,        /* registrations for items never published */
    SCN_LEDGER_LATENCY_P90,
};
const char *scn_ledger_field_name(enum scn_ledger_field f); /* "registered_once" */
bool scn_ledger_field_is_duration(enum scn_ledger_field f);

/* Device figures: the fields of struct fw_stats (same names, same order), then derived
   ones and fields of struct fw_status. */
enum scn_counter {
    SCN_CTR_ITEMS_RECEIVED = 0,
    SCN_CTR_ITEMS_QUEUED,
    SCN_CTR_DUPLICATES_SUPPRESSED,
    SCN_CTR_QUEUE_FULL,
    SCN_CTR_REGISTRATIONS_CONFIRMED,
    SCN_CTR_REGISTRATIONS_SENT,
    SCN_CTR_REGISTRATIONS_ACKED,
    SCN_CTR_REGISTRATIONS_RESENT,
    SCN_CTR_OUTBOX_FULL,
    SCN_CTR_CANCELS,
    SCN_CTR_WRONG_TAGS,
    SCN_CTR_REJECTS_TOTAL,
    SCN_CTR_REJECTS,          /* rejects[reason]: `rejects missing_field` */
    SCN_CTR_INVENTORY_QUERIES,
    SCN_CTR_INVENTORY_ANSWERS,
    SCN_CTR_INVENTORY_TIMEOUTS,
    SCN_CTR_CONNECTS,
    SCN_CTR_SESSIONS_PRESENT,
    SCN_CTR_CONNECT_FAILURES,
    SCN_CTR_CONNECTION_LOSSES,
    SCN_CTR_PUBLISH_ERRORS,
    SCN_CTR_STORAGE_ERRORS,
    SCN_CTR_PUBLISHES_REFUSED, /* MQTT 5: the broker refused a publish (PUBACK >= 0x80) */
    SCN_CTR_SUBSCRIPTIONS_REFUSED, /* SUBACKs that refused, or subscribes the client lost */
    SCN_CTR_COMMANDS_RECEIVED,  /* remote commands, valid or not (docs/protocol.md) */
    SCN_CTR_COMMANDS_OK,
    SCN_CTR_COMMANDS_REFUSED,
    SCN_CTR_COMMANDS_DUPLICATE, /* a remembered cmd_id answered again, not executed */
    SCN_CTR_ITEMS_CLEARED,      /* pending items dropped by clear_queue */
    SCN_CTR_LOCKED_REFUSALS,    /* tags and buttons refused while locked */
    SCN_CTR_REBOOTS,            /* reboots by command */
    SCN_CTR_BOOTS,              /* starts from flash */
    /* derived */
    SCN_CTR_RECONNECTS,       /* connects - 1 (0 before the first connect) */
    /* struct fw_status */
    SCN_CTR_ONLINE,           /* 1 / 0; compare with true / false (or sum: devices online) */
    SCN_CTR_SESSION_PRESENT,  /* 1 / 0 */
    SCN_CTR_PENDING,
    SCN_CTR_OUTBOX,
    SCN_CTR_OUTBOX_IN_FLIGHT,
    SCN_CTR_SCREEN,           /* the screen shown (enum scn_screen); only == and != */
    SCN_CTR_BOOT_COUNT,       /* starts from this flash, persisted: survives a power cut,
                                 unlike `boots` (RAM figures start afresh at power on) */
    SCN_CTR_LOCKED,           /* 1 / 0: locked by the `lock` command */
    SCN_CTR_COUNT
};
const char *scn_counter_name(enum scn_counter c); /* "duplicates_suppressed" */

/* Screens, in the order of enum fw_screen with the same names (fw_screen_name): the value
   of a `screen == <name>` expectation, for scripts that wait for what a person would see. */
enum scn_screen {
    SCN_SCREEN_IDLE = 0,
    SCN_SCREEN_ITEM,
    SCN_SCREEN_CONFIRM,
    SCN_SCREEN_REGISTERED,
    SCN_SCREEN_INVENTORY_SCAN,
    SCN_SCREEN_INVENTORY_WAIT,
    SCN_SCREEN_INVENTORY_RESULT,
    SCN_SCREEN_ERROR,
    SCN_SCREEN_CANCELLED,
    SCN_SCREEN_MESSAGE,
    SCN_SCREEN_LOCKED,
    SCN_SCREEN_COUNT
};
const char *scn_screen_name(enum scn_screen s); /* "inventory_wait" */
bool scn_counter_is_bool(enum scn_counter c);     /* online, session_present, locked */

/* Remote commands, in the order of enum fw_cmd_kind with the same names
   (firmware_core/include/fw/fw_codec.h). */
enum scn_command {
    SCN_CMD_IDENTIFY = 0,
    SCN_CMD_MESSAGE,
    SCN_CMD_STATUS,
    SCN_CMD_CONFIG,
    SCN_CMD_REBOOT,
    SCN_CMD_LOCK,
    SCN_CMD_UNLOCK,
    SCN_CMD_CLEAR_QUEUE,
    SCN_CMD_COUNT
};
const char *scn_command_name(enum scn_command c); /* "clear_queue" */

#define SCN_CMD_ID_MAX 33     /* a cmd_id: 1..32 printable bytes, NUL included */
#define SCN_CMD_ARGS_MAX 4    /* key=value arguments per command */
#define SCN_CMD_KEY_MAX 24    /* an argument's name, NUL included */
#define SCN_CMD_VALUE_MAX 80  /* an argument's value, NUL included (message text: 64 bytes) */

/* What a command argument's value is in the JSON the harness publishes. */
enum scn_arg_type {
    SCN_ARG_NUMBER = 0, /* digits: a JSON number */
    SCN_ARG_BOOL,       /* true / false */
    SCN_ARG_STRING,     /* "quoted text" or a bare word: a JSON string */
};

struct scn_cmd_arg {
    char key[SCN_CMD_KEY_MAX];
    char value[SCN_CMD_VALUE_MAX]; /* without the quotes */
    enum scn_arg_type type;
};

struct scn_command_step {
    enum scn_command cmd;
    char cmd_id[SCN_CMD_ID_MAX];   /* `as <id>`; "" = the runner makes a unique one */
    uint32_t n_args;
    struct scn_cmd_arg args[SCN_CMD_ARGS_MAX];
    uint32_t from;                 /* FORGE_COMMAND: the device whose credentials publish */
};

/* Which replies a `command replies` expectation counts. */
enum scn_reply_result {
    SCN_REPLY_ANY = 0, /* every reply */
    SCN_REPLY_OK,      /* result "ok" */
    SCN_REPLY_ERROR,   /* result "error" */
};
const char *scn_reply_result_name(enum scn_reply_result r); /* "", "ok", "error" */

struct scn_expect {
    enum scn_expect_kind kind;
    enum scn_reply_result reply;   /* REPLIES */
    bool reply_duplicate;          /* REPLIES: only those with data.duplicate = true */
    char reply_reason[SCN_CMD_KEY_MAX]; /* REPLIES: only this reason ("" = any) */
    bool forged_refused;           /* FORGED: count refused (else accepted) publishes */
    enum scn_ledger_field ledger;  /* LEDGER */
    enum scn_counter counter;      /* COUNTER */
    enum scn_reject reason;        /* COUNTER with SCN_CTR_REJECTS */
    bool sum;                      /* COUNTER: compare the sum over the selector (`sum`);
                                      otherwise every selected device must satisfy it */
    enum scn_cmp cmp;              /* LEDGER, COUNTER */
    int64_t value;                 /* LEDGER, COUNTER: number, ms for latency, 0/1 bools,
                                      enum scn_screen for SCN_CTR_SCREEN */
    bool online;                   /* RETAINED: expected status is "online" (else offline) */
    bool has_within;               /* `within T` written (always for wait until) */
    struct scn_time_expr within;   /* WILL: wait up to T; NO_WILL: watch for T; others:
                                      wait up to T for the condition to hold */
};

struct scn_step {
    struct scn_pos pos;            /* the step's first word */
    enum scn_timing timing;
    int64_t time_ms;               /* AT, AFTER, WAIT; 0 otherwise */
    enum scn_action action;
    struct scn_selector sel;       /* the devices it acts on / checks (NONE if none) */
    union {
        struct {                   /* DROP, DELAY, DUPLICATE */
            enum scn_packet packet;
            enum scn_direction dir;
            uint32_t count;        /* DROP, DUPLICATE: N (DROP: 0 = every one until heal) */
            int64_t delay_ms;      /* DELAY */
        } fault;
        bool rst;                  /* CUT: true = RST, false = FIN */
        uint64_t bytes_per_s;      /* THROTTLE */
        enum scn_frame frame;      /* INJECT */
        struct {                   /* PUBLISH_ITEMS, PUBLISH_MALFORMED */
            uint32_t count;
            enum scn_reject kind;  /* PUBLISH_MALFORMED */
        } publish;
        struct {                   /* SCAN_TAG */
            uint8_t uid[SCN_TAG_MAX];
            uint32_t len;          /* 4, 7 or 10 */
        } tag;
        struct scn_expect expect;  /* EXPECT */
        struct scn_command_step command; /* COMMAND, FORGE_COMMAND */
    } u;
};

/* ------------------------------------------------------------- scenario */

struct scn_scenario {
    char *file;                /* the name given to the parser; positions point here */
    char name[SCN_NAME_MAX];   /* `scenario <name>`: required */
    char *description;         /* `description ...` lines joined by spaces; "" if none */
    uint64_t seed;             /* `seed N`: default 1; the runner may override it */
    int64_t timeout_ms;        /* `timeout 30s`: required */
    struct scn_broker broker;
    struct scn_group *groups;  /* at least one */
    size_t n_groups;
    uint32_t n_devices;        /* sum of the groups' counts */
    struct scn_backend backend;
    struct scn_step *steps;
    size_t n_steps;
};

/* ---------------------------------------------------------------- parser */

/* Parse len bytes of text (no NUL needed; any bytes accepted) named name (used in
   diagnostics and scn_pos.file). On success returns SCN_OK and *out owns a new scenario
   (free with scn_free). On failure returns a negative scn_err, sets *out to NULL and, if
   diag is not NULL, fills it with the first error. */
int scn_parse_buffer(const char *name, const char *text, size_t len,
                     struct scn_scenario **out, struct scn_diag *diag);

/* Read and parse a file; the path is the name in diagnostics. As scn_parse_buffer, plus
   SCN_ERR_IO when the file cannot be read (files over 16 MiB are refused). */
int scn_parse_file(const char *path, struct scn_scenario **out, struct scn_diag *diag);

/* Free a scenario and everything it owns. NULL is fine. */
void scn_free(struct scn_scenario *s);

/* ---------------------------------------------------------------- helpers */

/* Write a one-line description of a step, as written in the language with the timing in
   seconds, into buf: "at 2.000s: drop next 1 PUBACK to broker on device 3". Returns the
   length it wanted (like snprintf); always NUL-terminated if cap > 0. */
int scn_step_describe(const struct scn_step *step, char *buf, size_t cap);

/* Write the device id of global device number n (1-based) into buf ("scanner-3").
   Returns the length it wanted, or -1 when n is out of range. */
int scn_device_id(const struct scn_scenario *s, uint32_t n, char *buf, size_t cap);

/* The group holding global device number n, or NULL when out of range. */
const struct scn_group *scn_device_group(const struct scn_scenario *s, uint32_t n);

/* A small deterministic random generator (splitmix64) for selectors and the operator:
   the same seed gives the same draws on every machine. */
uint64_t scn_rng_next(uint64_t *state);

/* Resolve a selector to device numbers in ascending order, written to out (cap entries).
   RANDOM draws sel->count distinct devices with *rng (advanced). Returns the number of
   devices selected (which may exceed cap: only cap are written), 0 for NONE. */
size_t scn_selector_resolve(const struct scn_scenario *s, const struct scn_selector *sel,
                            uint64_t *rng, uint32_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* HX_SCENARIO_H */
