/*
 * fw_names.c - stable names of errors, reject reasons and screens (logs, reports, tests).
 */
#include "fw/fw_codec.h"
#include "fw/fw_device.h"

const char *fw_strerror(int err)
{
    switch (err) {
    case FW_OK: return "success";
    case FW_ERR_INVAL: return "invalid argument";
    case FW_ERR_FULL: return "queue or outbox full";
    case FW_ERR_NOT_FOUND: return "storage key not found";
    case FW_ERR_IO: return "storage or network port failed";
    case FW_ERR_STATE: return "not possible in the current state";
    case FW_ERR_OFFLINE: return "no connection";
    case FW_ERR_TOO_BIG: return "does not fit a fixed-size buffer";
    default: return "unknown error";
    }
}

const char *fw_reject_name(enum fw_reject reason)
{
    switch (reason) {
    case FW_REJECT_OVERSIZE: return "oversize";
    case FW_REJECT_NOT_UTF8: return "not_utf8";
    case FW_REJECT_INVALID_JSON: return "invalid_json";
    case FW_REJECT_TRAILING_GARBAGE: return "trailing_garbage";
    case FW_REJECT_NOT_OBJECT: return "not_object";
    case FW_REJECT_MISSING_FIELD: return "missing_field";
    case FW_REJECT_WRONG_TYPE: return "wrong_type";
    case FW_REJECT_OUT_OF_RANGE: return "out_of_range";
    case FW_REJECT_NAME_TOO_LONG: return "name_too_long";
    case FW_REJECT_TOO_DEEP: return "too_deep";
    case FW_REJECT_UNKNOWN_TOPIC: return "unknown_topic";
    case FW_REJECT_COUNT: break;
    }
    return "unknown";
}

const char *fw_screen_name(enum fw_screen screen)
{
    switch (screen) {
    case FW_SCREEN_IDLE: return "idle";
    case FW_SCREEN_ITEM: return "item";
    case FW_SCREEN_CONFIRM: return "confirm";
    case FW_SCREEN_REGISTERED: return "registered";
    case FW_SCREEN_INVENTORY_SCAN: return "inventory_scan";
    case FW_SCREEN_INVENTORY_WAIT: return "inventory_wait";
    case FW_SCREEN_INVENTORY_RESULT: return "inventory_result";
    case FW_SCREEN_ERROR: return "error";
    case FW_SCREEN_CANCELLED: return "cancelled";
    case FW_SCREEN_MESSAGE: return "message";
    case FW_SCREEN_LOCKED: return "locked";
    }
    return "unknown";
}

const char *fw_reason_code_name(int reason_code)
{
    /* The MQTT 5 codes a PUBACK (or PUBREC) may carry [MQTT 5 3.4.2.1]. */
    switch (reason_code) {
    case 0x80: return "unspecified error";
    case 0x83: return "implementation specific error";
    case 0x87: return "not authorized";
    case 0x90: return "topic name invalid";
    case 0x91: return "packet identifier in use";
    case 0x97: return "quota exceeded";
    case 0x99: return "payload format invalid";
    default: return "unknown reason";
    }
}

const char *fw_cmd_reason_name(enum fw_cmd_reason reason, enum fw_reject reject)
{
    switch (reason) {
    case FW_CMD_OK: return "";
    case FW_CMD_BAD_PAYLOAD: return fw_reject_name(reject);
    case FW_CMD_BAD_CMD_ID: return "bad_cmd_id";
    case FW_CMD_UNKNOWN_COMMAND: return "unknown_command";
    case FW_CMD_MISSING_ARG: return "missing_arg";
    case FW_CMD_WRONG_ARG_TYPE: return "wrong_type";
    case FW_CMD_OUT_OF_RANGE: return "out_of_range";
    case FW_CMD_UNKNOWN_ARG: return "unknown_arg";
    case FW_CMD_BUSY: return "busy";
    case FW_CMD_FLASH_ERROR: return "flash_error";
    case FW_CMD_REASON_COUNT: break;
    }
    return "unknown";
}
