/*
 * lexer.c - cuts a scenario buffer into lines and lines into words.
 *
 * A line ends at '\n' (a '\r' before it is ignored). '#' starts a comment that runs to the
 * end of the line. Words are runs of printable bytes (and UTF-8 bytes >= 0x80) separated
 * by spaces or tabs; ',' '*' '+' and the comparison operators are words of their own even
 * without spaces around them, so "registered>=200" reads as three words. A word that starts
 * with '"' runs to the next '"' on the line, spaces and '#' included ("quoted text", for a
 * command's message); without a closing '"' it is an ordinary word, so a stray quote in a
 * description stays harmless and the parser names the problem where a text is due. Control
 * bytes are errors. Work is linear in the input; nothing is allocated.
 */
#include <stdio.h>
#include <string.h>

#include "scn_internal.h"

void scn__reader_init(struct scn__reader *r, const char *text, size_t len)
{
    r->text = text;
    r->len = text ? len : 0;
    r->off = 0;
    r->lineno = 0;
}

static bool is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_single(unsigned char c)
{
    return c == ',' || c == '*' || c == '+';
}

static bool is_cmp_char(unsigned char c)
{
    return c == '=' || c == '!' || c == '<' || c == '>';
}

static bool is_word_byte(unsigned char c)
{
    return (c > 0x20 && c < 0x7f && c != '#' && !is_single(c) && !is_cmp_char(c)) || c >= 0x80;
}

int scn__next_line(struct scn__reader *r, struct scn__line *line, uint32_t *err_col,
                   char *err, size_t cap)
{
    if (r->off >= r->len)
        return 0;
    const char *start = r->text + r->off;
    size_t rest = r->len - r->off;
    const char *nl = memchr(start, '\n', rest);
    size_t llen = nl ? (size_t)(nl - start) : rest;
    r->off += llen + (nl ? 1 : 0);
    r->lineno++;

    line->lineno = r->lineno;
    line->n = 0;
    line->indented = llen > 0 && (start[0] == ' ' || start[0] == '\t');
    line->end_col = 1;
    if (llen > SCN_MAX_LINE) {
        *err_col = SCN_MAX_LINE + 1;
        snprintf(err, cap, "line is longer than %d bytes", SCN_MAX_LINE);
        return -1;
    }
    size_t i = 0;
    while (i < llen) {
        unsigned char c = (unsigned char)start[i];
        if (is_space(c)) {
            i++;
            continue;
        }
        if (c == '#')
            break;
        if (c < 0x20 || c == 0x7f) {
            *err_col = (uint32_t)i + 1;
            snprintf(err, cap, "unexpected control byte 0x%02x (scenario files are text)", c);
            return -1;
        }
        if (line->n == SCN_MAX_WORDS) {
            *err_col = (uint32_t)i + 1;
            snprintf(err, cap, "line has more than %d words", SCN_MAX_WORDS);
            return -1;
        }
        size_t j = i + 1;
        const char *close = c == '"' ? memchr(start + j, '"', llen - j) : NULL;
        if (close) {
            for (; j < (size_t)(close - start); j++)
                if ((unsigned char)start[j] < 0x20 || start[j] == 0x7f) {
                    *err_col = (uint32_t)j + 1;
                    snprintf(err, cap, "unexpected control byte 0x%02x in quoted text",
                             (unsigned char)start[j]);
                    return -1;
                }
            j++;
        } else if (is_cmp_char(c)) {
            if (j < llen && start[j] == '=')
                j++;
        } else if (!is_single(c)) {
            while (j < llen && is_word_byte((unsigned char)start[j]))
                j++;
        }
        struct scn__tok *t = &line->toks[line->n++];
        t->s = start + i;
        t->len = (uint32_t)(j - i);
        t->col = (uint32_t)i + 1;
        line->end_col = (uint32_t)j + 1;
        i = j;
    }
    return 1;
}

bool scn__tok_is(const struct scn__tok *t, const char *word)
{
    size_t n = strlen(word);
    return t->len == n && memcmp(t->s, word, n) == 0;
}

unsigned scn__distance(const char *a, size_t alen, const char *b, unsigned cap)
{
    /* Optimal string alignment (Levenshtein plus adjacent transpositions, so "lots" is one
       edit from "lost"), three rows; keywords are short and long words are cut off early. */
    size_t blen = strlen(b);
    if (blen > 40 || alen > 40 || (alen > blen ? alen - blen : blen - alen) > cap)
        return cap + 1;
    unsigned rows[3][41];
    unsigned *pp = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= blen; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= alen; i++) {
        cur[0] = (unsigned)i;
        unsigned row_min = cur[0];
        for (size_t j = 1; j <= blen; j++) {
            unsigned sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            unsigned del = prev[j] + 1, ins = cur[j - 1] + 1;
            unsigned m = sub < del ? sub : del;
            m = m < ins ? m : ins;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < m)
                m = pp[j - 2] + 1;
            cur[j] = m;
            if (m < row_min)
                row_min = m;
        }
        if (row_min > cap)
            return cap + 1;
        unsigned *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[blen] > cap ? cap + 1 : prev[blen];
}
