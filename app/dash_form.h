/*
 * dash_form.h - what the dashboard accepts from a browser, checked before anything runs.
 *
 * Pure functions on byte buffers (no HTTP library, no threads), so the Check suite
 * (tests/test_dash_form.c) covers every rule: the urlencoded body of the item form, the
 * devices page's search and paging, the access token. The item rules are the firmware's
 * (fw_codec.h): a name of 1..FW_ITEM_NAME_MAX-1 bytes of UTF-8 without control characters
 * (the backend's rule for what it publishes), a tag quantity in FW_TAG_QUANTITY_MIN..MAX.
 *
 * Errors: 0 or a negative enum dash_err; a reason for people is written into `why`.
 * Ownership: everything is copied into the caller's structs; nothing to free.
 */
#ifndef SCANSIM_DASH_FORM_H
#define SCANSIM_DASH_FORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fw/fw_config.h"
#include "hx/backend.h"

/* The dashboard's one error enum (dash_*.c). */
enum dash_err {
    DASH_OK = 0,
    DASH_ERR_INVAL = -1,    /* a request or option is malformed: the reason says why */
    DASH_ERR_NOMEM = -2,
    DASH_ERR_IO = -3,       /* a file could not be read or written */
    DASH_ERR_MISSING = -4,  /* a needed file (the chart library) is not installed */
    DASH_ERR_HTTP = -5,     /* the HTTP server could not start (address in use...) */
};

const char *dash_strerror(int err);

#define DASH_WHY_MAX 160
#define DASH_PER_PAGE_MAX 200   /* devices on one page at the most */
#define DASH_PER_PAGE_DEFAULT 48

/* The item form: name, tag quantity, and one device or all. */
struct dash_item_form {
    char name[FW_ITEM_NAME_MAX];
    int32_t tag_quantity;
    char device[FW_DEVICE_ID_MAX]; /* "" = every device */
};

/* The devices page's view: a search over ids and one page of the matches. */
struct dash_page_query {
    char q[FW_DEVICE_ID_MAX];      /* substring of the id; "" = all */
    long page;                     /* 0-based */
    long per;                      /* 1..DASH_PER_PAGE_MAX */
    enum hx_items_filter items;    /* the items list: all, or one state */
};

/** "all", "pending", "registered", "twice", "lost". */
const char *dash_items_filter_name(enum hx_items_filter f);
/** The items= query parameter (NULL: all) into *out. 0, or DASH_ERR_INVAL with the reason. */
int dash_items_filter_parse(const char *s, enum hx_items_filter *out, char *why, size_t why_cap);

/**
 * Find key in an application/x-www-form-urlencoded body (or a query string) and decode
 * its value ('+' and %XX) into out (cap bytes with the NUL). Returns the decoded length,
 * DASH_FIELD_ABSENT when the key is absent, DASH_ERR_INVAL when the value is too long for
 * out, has a bad %-escape or a NUL byte.
 */
#define DASH_FIELD_ABSENT (-100) /* not an enum dash_err: a missing field is no error */
int dash_form_field(const char *body, size_t len, const char *key, char *out, size_t cap);

/** Parse and check the item form. 0, or DASH_ERR_INVAL with the reason in why. */
int dash_item_form_parse(const char *body, size_t len, struct dash_item_form *out, char *why,
                         size_t why_cap);

/** Check the devices page's parameters (each may be NULL: the default). 0 or
 *  DASH_ERR_INVAL with the reason. */
int dash_page_query_parse(const char *q, const char *page, const char *per,
                          struct dash_page_query *out, char *why, size_t why_cap);

/** A whole number in lo..hi written in decimal, nothing else. */
bool dash_parse_long(const char *s, long lo, long hi, long *out);

/** Compare a presented token with the expected one in time that does not depend on where
 *  they differ. NULL presented = false. */
bool dash_token_equal(const char *presented, const char *expected);

/** Is host (an address, no port) a loopback one: 127.0.0.0/8, ::1 or "localhost"? A name
 *  that merely starts with "127." is not. */
bool dash_host_is_loopback(const char *host);

/** Does an HTTP Host header (host, host:port, [v6] or [v6]:port) name a loopback address?
 *  NULL or malformed: false. Without a token the server answers only these: a page on
 *  another site that rebinds its own name to 127.0.0.1 sends that name. */
bool dash_host_header_is_loopback(const char *value);

/** Split "ADDR:PORT" ("[v6]:PORT" too) into host (cap bytes) and port 1..65535 (0 = any
 *  free port, written as ":0"). 0 or DASH_ERR_INVAL with the reason. */
int dash_parse_listen(const char *spec, char *host, size_t cap, int *port, char *why,
                      size_t why_cap);

#endif /* SCANSIM_DASH_FORM_H */
