/*
 * fuzz_scenario.c - libFuzzer target for the scenario parser (hx/scenario.h).
 *
 * Any bytes must give either a scenario (freed with scn_free, no leak) or one diagnostic;
 * never a crash, a read past len, a leak or a hang. On success every step is described
 * (the printer walks the whole syntax tree) and every device id is formatted; on failure the
 * diagnostic must be a NUL-terminated message with a position inside the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hx/scenario.h"

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy with no NUL after it: the parser must not need one. */
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    if (size)
        memcpy(text, data, size);

    struct scn_scenario *s = NULL;
    struct scn_diag diag;
    memset(&diag, 0, sizeof diag);
    int rc = scn_parse_buffer("fuzz.scn", text, size, &s, &diag);
    if (rc == SCN_OK) {
        check(s != NULL);
        check(s->n_groups >= 1 && s->n_devices >= 1);
        char buf[512];
        for (size_t i = 0; i < s->n_steps; i++)
            check(scn_step_describe(&s->steps[i], buf, sizeof buf) >= 0);
        for (uint32_t n = 1; n <= s->n_devices && n <= 64; n++)
            check(scn_device_id(s, n, buf, sizeof buf) > 0);
        check(scn_device_id(s, s->n_devices + 1, buf, sizeof buf) == -1);
        scn_free(s);
    } else {
        check(s == NULL);
        check(rc < 0);
        check(memchr(diag.message, '\0', sizeof diag.message) != NULL);
        check(diag.message[0] != '\0');
        char line[SCN_PATH_MAX + SCN_MESSAGE_MAX + 32];
        check(scn_diag_format(&diag, line, sizeof line) > 0);
    }
    free(text);
    return 0;
}
