/*
 * scn_internal.h - what the scenario parser's files share: the line lexer.
 *
 * The lexer cuts a buffer (with a length, no NUL needed) into lines and each line into
 * words. Words point into the buffer; nothing is allocated. The parser (parser.c) walks
 * the words of one line at a time; describe.c prints steps back.
 */
#ifndef SCN_INTERNAL_H
#define SCN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hx/scenario.h"

/* One word of a line: a run of word bytes, or one of , * + == != <= >= < > = !. */
struct scn__tok {
    const char *s;
    uint32_t len;
    uint32_t col; /* 1-based byte column */
};

/* One line, cut into words (comments and the line end removed). */
struct scn__line {
    uint32_t lineno;
    bool indented;        /* starts with a space or a tab */
    uint32_t end_col;     /* column just past the last word (for "found end of line") */
    uint32_t n;           /* words */
    struct scn__tok toks[SCN_MAX_WORDS];
};

/* Where the lexer is in the buffer. */
struct scn__reader {
    const char *text;
    size_t len;
    size_t off;
    uint32_t lineno;
};

void scn__reader_init(struct scn__reader *r, const char *text, size_t len);

/* Read the next line into line. Returns 1 when a line was read, 0 at the end of the
   buffer, -1 on a lexical error (bad byte, line too long, too many words): then *err_col
   and err (cap bytes) say where and what. */
int scn__next_line(struct scn__reader *r, struct scn__line *line, uint32_t *err_col,
                   char *err, size_t cap);

/* Does a word equal a keyword (exact bytes)? */
bool scn__tok_is(const struct scn__tok *t, const char *word);

/* Edit distance between a word and a keyword, capped at cap + 1 (cheap for long words). */
unsigned scn__distance(const char *a, size_t alen, const char *b, unsigned cap);

/* The language's counter and screen words in enum order, NULL-terminated (describe.c). */
extern const char *const scn__counter_words[];
extern const char *const scn__screen_words[];

#endif /* SCN_INTERNAL_H */
