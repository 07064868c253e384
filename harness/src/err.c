/*
 * err.c - hx_strerror(): the words for enum hx_err (hx/err.h), shared by every harness module.
 */
#include "hx/err.h"

const char *hx_strerror(int err)
{
    switch (err) {
    case HX_OK: return "success";
    case HX_ERR_INVAL: return "invalid argument";
    case HX_ERR_SYS: return "a system call failed";
    case HX_ERR_TIMEOUT: return "timed out";
    case HX_ERR_EXITED: return "the broker process exited";
    case HX_ERR_NOMEM: return "out of memory";
    case HX_ERR_PROTO: return "protocol violation by a peer";
    case HX_ERR_SQL: return "the ledger database failed";
    default: return "unknown error";
    }
}
