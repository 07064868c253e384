/*
 * sim/err.h - the one error enum of the Linux platform (sim_platform).
 *
 * Every sim_* function that can fail returns 0 (SIM_OK) or a negative enum sim_err. Paho
 * return codes and errno values are translated into these at the edge, in the module that
 * called the library; the words for people (what happened, to what, what to do) travel
 * separately (connect-failure and connection-lost events carry them, logs print them).
 */
#ifndef SIM_ERR_H
#define SIM_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

enum sim_err {
    SIM_OK = 0,
    SIM_ERR_INVAL = -1,     /* bad argument or option */
    SIM_ERR_NOMEM = -2,     /* out of memory */
    SIM_ERR_IO = -3,        /* a system call or file operation failed */
    SIM_ERR_MQTT = -4,      /* the MQTT client library refused the request */
    SIM_ERR_STATE = -5,     /* not possible in the current state (not started, already running) */
    SIM_ERR_TIMEOUT = -6,   /* waited long enough */
    SIM_ERR_OFFLINE = -7,   /* no connection to the broker */
    SIM_ERR_NOT_FOUND = -8, /* no such key / item */
    SIM_ERR_TOO_BIG = -9,   /* does not fit the buffer given */
};

/** A short English description of a sim_err ("no connection to the broker"). Never NULL;
 *  unknown values give "unknown error". */
const char *sim_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* SIM_ERR_H */
