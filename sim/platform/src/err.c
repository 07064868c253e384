/*
 * err.c - words for enum sim_err (sim/err.h).
 */
#include "sim/err.h"

const char *sim_strerror(int err)
{
    switch (err) {
    case SIM_OK: return "success";
    case SIM_ERR_INVAL: return "bad argument or option";
    case SIM_ERR_NOMEM: return "out of memory";
    case SIM_ERR_IO: return "a system call or file operation failed";
    case SIM_ERR_MQTT: return "the MQTT client library refused the request";
    case SIM_ERR_STATE: return "not possible in the current state";
    case SIM_ERR_TIMEOUT: return "timed out";
    case SIM_ERR_OFFLINE: return "no connection to the broker";
    case SIM_ERR_NOT_FOUND: return "not found";
    case SIM_ERR_TOO_BIG: return "does not fit the buffer";
    default: return "unknown error";
    }
}
