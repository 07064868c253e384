/*
 * scn_check.c - check scenario files without running them.
 *
 * scn_check [-q] FILE.scn... parses each file; for a good one it prints the scenario's
 * header and its timeline as the runner will show it (one line per step, with its line
 * number), for a bad one the diagnostic "file:line:column: message". -q prints only the
 * errors. Exit codes follow `scansim test`: 0 every file parsed, 2 a file did not (or bad
 * usage). Handy while writing a scenario, and in CI before the runner lands.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hx/scenario.h"

static void print_scenario(const struct scn_scenario *s)
{
    printf("%s: scenario %s, seed %" PRIu64 ", timeout %" PRId64 " ms, %u device%s in %zu "
           "group%s, %zu step%s\n",
           s->file, s->name, s->seed, s->timeout_ms, s->n_devices, s->n_devices == 1 ? "" : "s",
           s->n_groups, s->n_groups == 1 ? "" : "s", s->n_steps, s->n_steps == 1 ? "" : "s");
    for (size_t k = 0; k < s->n_steps; k++) {
        char line[512];
        scn_step_describe(&s->steps[k], line, sizeof line);
        printf("  %4" PRIu32 "  %s\n", s->steps[k].pos.line, line);
    }
}

int main(int argc, char **argv)
{
    bool quiet = false;
    int first = 1, bad = 0, files = 0;
    if (argc > 1 && strcmp(argv[1], "-q") == 0) {
        quiet = true;
        first = 2;
    }
    if (first >= argc || strcmp(argv[first], "--help") == 0 || strcmp(argv[first], "-h") == 0) {
        fprintf(first >= argc ? stderr : stdout,
                "usage: scn_check [-q] FILE.scn...\n"
                "Parse scenario files and print their timelines (or their first error).\n"
                "Exit: 0 all parsed, 2 a file did not parse or bad usage.\n");
        return first >= argc ? 2 : 0;
    }
    for (int i = first; i < argc; i++, files++) {
        struct scn_scenario *s = NULL;
        struct scn_diag d;
        if (scn_parse_file(argv[i], &s, &d) != SCN_OK) {
            char msg[SCN_PATH_MAX + SCN_MESSAGE_MAX + 32];
            scn_diag_format(&d, msg, sizeof msg);
            fprintf(stderr, "%s\n", msg);
            bad++;
            continue;
        }
        if (!quiet)
            print_scenario(s);
        scn_free(s);
    }
    if (!quiet || bad)
        fprintf(bad ? stderr : stdout, "scn_check: %d of %d file%s parsed\n", files - bad, files,
                files == 1 ? "" : "s");
    return bad ? 2 : 0;
}
