/*
 * demo_keys.c - the one description of the demo's keys (demo_keys.h).
 */
#include <stdio.h>
#include <string.h>

#include "demo_keys.h"

const struct demo_key_doc demo_keys[] = {
    { "a", "add item", "item", "the backend publishes the next item (seed layout: every scanner "
      "sees it; per-device: the chosen one)", false, false },
    { "t", "tag", "tag", "present a random RFID tag (4, 7 or 10 byte UID) to the chosen scanner",
      false, false },
    { "T", "type tag", "type", "type a tag UID in hex (Enter sends, Esc cancels)", false, false },
    { "Enter", "confirm", "ok", "CONFIRM button: register the scanned tag, acknowledge a screen",
      false, false },
    { "c", "cancel", "cancel", "CANCEL button: skip the item, leave a mode", false, false },
    { "i", "inventory", "look-up", "MODE button: inventory look-up (scan a tag, the backend answers)",
      false, false },
    { "n", "cut net", "net", "cut the chosen scanner's network link / restore it (a fault proxy: "
      "offline, Will, reconnect by its own back-off)", false, false },
    { "I", "identify", "ident", "command identify: the OLED flashes for 5 s", false, false },
    { "S", "status", "status", "command status: the reply shows in the log", false, false },
    { "M", "message", "msg", "command message for the operator (a button dismisses it)", false,
      false },
    { "R", "reboot", "reboot", "command reboot: restarts from flash, keeps pending items", false,
      false },
    { "L", "lock", "lock", "command lock / unlock: refuses tags and buttons", false, false },
    { "Tab", "next scanner", "next", "choose the next scanner for the keys (Shift-Tab: the "
      "previous); its frame is highlighted", true, false },
    { "1-9", "choose", "choose", "choose scanner 1 to 9 for the keys", true, false },
    { "?", "help", "help", "show or hide this help (any key closes it)", false, true },
    { "q", "quit", "quit", "clean power-off of every scanner (retained \"offline\", DISCONNECT); "
      "Ctrl-C does the same", false, true },
};
const size_t demo_keys_count = sizeof(demo_keys) / sizeof(demo_keys[0]);

/* "KEY WORD" as the key line writes it; n says what pressing it would do now. */
static int demo_keys__item(char *out, size_t cap, const struct demo_key_doc *k, bool brief,
                           bool net_cut)
{
    const char *word = brief ? k->brief : k->word;

    if (strcmp(k->key, "n") == 0 && net_cut)
        word = brief ? "RESTORE" : "RESTORE network";
    return snprintf(out, cap, "%s %s", k->key, word);
}

/* One pass: the keys that fit in cols with the given words. Returns true when every key
   that belongs on the line was written. */
static bool demo_keys__pass(char *out, size_t cap, int cols, int ndev, bool net_cut, bool brief)
{
    char item[64];
    int reserved = 0, used = 0;
    bool all = true;

    out[0] = '\0';
    /* Room for the keys that are always there, so the others give way to them. */
    for (size_t i = 0; i < demo_keys_count; i++)
        if (demo_keys[i].always)
            reserved += demo_keys__item(item, sizeof(item), &demo_keys[i], brief, net_cut) + 2;
    for (size_t i = 0; i < demo_keys_count; i++) {
        const struct demo_key_doc *k = &demo_keys[i];
        if (k->multi_only && ndev < 2)
            continue;
        int len = demo_keys__item(item, sizeof(item), k, brief, net_cut) + (used ? 2 : 0);
        if (k->always) {
            reserved -= len + (used ? 0 : 2);
        } else if (used + len + reserved > cols) {
            all = false;
            continue;
        }
        if ((size_t)(used + len) >= cap)
            break;
        used += snprintf(out + used, cap - (size_t)used, "%s%s", used ? "  " : "", item);
    }
    return all;
}

void demo_keys_line(char *out, size_t cap, int cols, int ndev, bool net_cut)
{
    if (!demo_keys__pass(out, cap, cols, ndev, net_cut, false))
        demo_keys__pass(out, cap, cols, ndev, net_cut, true);
}

/* --help is read in an 80-column terminal: each key's words wrap under themselves. */
#define DEMO_KEYS_HELP_W 78
#define DEMO_KEYS_HELP_INDENT 10

void demo_keys_print(FILE *f)
{
    for (size_t i = 0; i < demo_keys_count; i++) {
        const char *text = demo_keys[i].help;
        int room = DEMO_KEYS_HELP_W - DEMO_KEYS_HELP_INDENT;
        fprintf(f, "  %-7s ", demo_keys[i].key);
        while (*text) {
            int n = (int)strlen(text);
            if (n > room)
                for (n = room; n > 0 && text[n] != ' ';)
                    n--;
            if (n <= 0)
                n = room;
            fprintf(f, "%.*s\n", n, text);
            text += n;
            while (*text == ' ')
                text++;
            if (*text)
                fprintf(f, "%*s", DEMO_KEYS_HELP_INDENT, "");
        }
    }
}
