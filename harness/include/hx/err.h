/*
 * hx/err.h - the harness's one error enum (0 = success, negative = failure), returned by
 * every harness module (library hx_err), and its words for people.
 */
#ifndef HX_ERR_H
#define HX_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

enum hx_err {
    HX_OK = 0,
    HX_ERR_INVAL = -1,   /* bad argument */
    HX_ERR_SYS = -2,     /* a system call failed (errno in the message) */
    HX_ERR_TIMEOUT = -3, /* the broker did not accept connections in time */
    HX_ERR_EXITED = -4,  /* the broker process exited (see its log) */
    HX_ERR_NOMEM = -5,
    HX_ERR_PROTO = -6,   /* a peer broke the protocol */
    HX_ERR_SQL = -7,     /* the ledger database failed */
};
const char *hx_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* HX_ERR_H */
