/* labels.h: label pairs as the exposition formats write them, escaped once
 * and parsed back.  A series keeps its labels as the escaped text
 * a="x",b="y", which every writer copies as it is. */
#ifndef FASTPROM_LABELS_H
#define FASTPROM_LABELS_H

#include <stddef.h>

#include "format.h"

/* Escapes \ and newline, and " too when `quotes` is set, into b. */
void fp_buf_escaped(fp_buf *b, const char *s, size_t n, int quotes);

/* Escapes a label value (\\, \", \n) into dst, which holds 2 * len bytes;
 * returns the length written. */
size_t fp_escape_value(char *dst, const char *src, size_t len);

/* Writes name="value" (the value escaped) into dst, which holds
 * nlen + 2 * vlen + 3 bytes; returns the length. */
size_t fp_label_pair(char *dst, const char *name, size_t nlen, const char *value, size_t vlen);

/* Iterates over escaped label text: at *pos, finds the next pair, sets its
 * name, and writes its unescaped value into `value` (reset first).  Returns
 * 1 for a pair, 0 at the end, -1 for text that is not label pairs. */
int fp_label_next(const char *text, size_t len, size_t *pos, const char **name, size_t *name_len, fp_buf *value);

/* 1 if p is a legacy label name: [a-zA-Z_][a-zA-Z0-9_]*. */
int fp_valid_label_name(const char *p, size_t n);

#endif
