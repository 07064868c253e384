/*
 * run_command_mix.c - the commands of `scansim run --command-rate`: random stream, device,
 * payload and pace (run_command_mix.h). Pure: no clock, no network.
 */
#include "run_command_mix.h"

#include <stdio.h>

const char *const run_command_kinds[RUN_COMMAND_KINDS] = {"status", "identify", "message",
                                                          "config"};

/* splitmix64: small, seedable with any value (0 too), good enough for picking */
uint64_t run_command_rng_next(struct run_command_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void run_command_rng_seed(struct run_command_rng *r, uint64_t seed)
{
    r->state = seed ^ 0x636d6472617465ull; /* "cmdrate": not the operators' stream */
}

long run_command_pick_device(struct run_command_rng *r, long devices)
{
    return (long)(run_command_rng_next(r) % (uint64_t)devices);
}

size_t run_command_payload(struct run_command_rng *r, const char *cmd_id, char *buf, size_t cap,
                           int *kind)
{
    uint64_t v = run_command_rng_next(r);
    unsigned k = (unsigned)(v % RUN_COMMAND_KINDS);
    int n;
    switch (k) {
    case 1:
        n = snprintf(buf, cap, "{\"cmd_id\":\"%s\",\"cmd\":\"identify\",\"args\":{\"seconds\":1}}",
                     cmd_id);
        break;
    case 2:
        n = snprintf(buf, cap, "{\"cmd_id\":\"%s\",\"cmd\":\"message\",\"args\":{\"text\":"
                     "\"Check %u\"}}", cmd_id, (unsigned)((v >> 8) % 1000));
        break;
    case 3:
        n = snprintf(buf, cap, "{\"cmd_id\":\"%s\",\"cmd\":\"config\",\"args\":{\"contrast\":%u}}",
                     cmd_id, (unsigned)((v >> 8) % 256));
        break;
    default:
        n = snprintf(buf, cap, "{\"cmd_id\":\"%s\",\"cmd\":\"status\"}", cmd_id);
        break;
    }
    if (kind)
        *kind = (int)k;
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

double run_command_credit(double credit, double rate, uint64_t dt_ms)
{
    double cap = rate > 1.0 ? rate : 1.0;
    credit += rate * (double)dt_ms / 1000.0;
    return credit > cap ? cap : credit;
}
