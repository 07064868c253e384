/*
 * main.c - the scansim program: `scansim <command> [options]`.
 *
 * Each command lives in its own cmd_<name>.c with `int scansim_cmd_<name>(argc, argv)` and
 * a one-line `scansim_cmd_<name>_summary`; the build lists them in commands.def.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define SCANSIM_COMMAND(name)                                  \
    int scansim_cmd_##name(int argc, char **argv);             \
    extern const char scansim_cmd_##name##_summary[];
#include "commands.def"
#undef SCANSIM_COMMAND

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
#define SCANSIM_COMMAND(name) {#name, scansim_cmd_##name, scansim_cmd_##name##_summary},
#include "commands.def"
#undef SCANSIM_COMMAND
    {NULL, NULL, NULL},
};

static void usage(FILE *to)
{
    fprintf(to, "usage: scansim <command> [options]   (scansim <command> --help for its options)\n\n"
                "Simulated MQTT RFID scanners running the real firmware, and a protocol test harness.\n\n"
                "Commands:\n");
    for (const struct command *c = commands; c->name; c++)
        fprintf(to, "  %-8s %s\n", c->name, c->summary);
    fprintf(to, "\nExit codes: 0 success; 1 the run or a scenario failed (lost or twice-registered items,\n"
                "an unmet expectation, a device that refused a ctl command or did not answer);\n"
                "2 usage or scenario-file error; 3 broker unreachable, refused or not startable;\n"
                "4 internal error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SCANSIM_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return SCANSIM_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("scansim %s\n", SCANSIM_VERSION);
        return SCANSIM_EXIT_OK;
    }
    for (const struct command *c = commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "scansim: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return SCANSIM_EXIT_USAGE;
}
