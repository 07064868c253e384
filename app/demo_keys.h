/*
 * demo_keys.h - the keys of `scansim demo`, described once: the help overlay (?), the key
 * line at the bottom of the screen and `scansim demo --help` all read this one table, so
 * what a key does is written in one place.
 *
 * The keys themselves are handled in cmd_demo.c (demo__key).
 */
#ifndef DEMO_KEYS_H
#define DEMO_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct demo_key_doc {
    const char *key;   /* as written on screen: "a", "Enter", "1-9" */
    const char *word;  /* for the key line: "add item" */
    const char *brief; /* for a narrow key line: "item" */
    const char *help;  /* for the help overlay and --help: one line */
    bool multi_only;   /* only with several scanners (choosing one) */
    bool always;       /* on the key line at any width (help, quit) */
};

extern const struct demo_key_doc demo_keys[];
extern const size_t demo_keys_count;

/** The key line for a width of cols: every key with its word when that fits, else with its
 *  brief word, as many as fit in the table's order, "? help" and "q quit" always; net_cut
 *  names n as "restore". Written into out (cap bytes). */
void demo_keys_line(char *out, size_t cap, int cols, int ndev, bool net_cut);

/** The Keys section of --help: "  KEY     what it does", one key a line. */
void demo_keys_print(FILE *f);

#endif /* DEMO_KEYS_H */
