/*
 * scn_fuzz.c - libFuzzer entry point for the scenario parser.
 *
 * Build: cmake -DCMAKE_C_COMPILER=clang -DSCANSIM_FUZZ=ON ... && cmake --build . -t scn_fuzz
 * Run:   ./scn_fuzz -max_len=8192 ../scenarios   (the library is a good seed corpus)
 * Every input must give a scenario or a diagnostic, never a crash, a leak or a hang.
 */
#include <stddef.h>
#include <stdint.h>

#include "hx/scenario.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct scn_scenario *s = NULL;
    struct scn_diag d;
    char line[512];
    if (scn_parse_buffer("fuzz.scn", (const char *)data, size, &s, &d) == SCN_OK) {
        for (size_t k = 0; k < s->n_steps; k++)
            scn_step_describe(&s->steps[k], line, sizeof line);
        uint32_t picks[16];
        uint64_t rng = s->seed;
        for (size_t k = 0; k < s->n_steps; k++)
            scn_selector_resolve(s, &s->steps[k].sel, &rng, picks, 16);
        scn_free(s);
    } else {
        scn_diag_format(&d, line, sizeof line);
    }
    return 0;
}
