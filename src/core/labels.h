/* labels.h: label pairs as the exposition formats write them, escaped once
 * and parsed back.  A series keeps its labels as the escaped text
 * a="x",b="y", which every writer copies as it is. */
#ifndef FASTPROM_LABELS_H
#define FASTPROM_LABELS_H

#include <stddef.h>
#include <stdint.h>

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

/* Like fp_label_next, without unescaping: the pair's name and its value
 * as escaped in the text (between the quotes).  1, 0 at the end, -1. */
int fp_label_span(const char *text, size_t len, size_t *pos, const char **name, size_t *name_len,
                  const char **value, size_t *value_len);

/* 1 if p is a legacy label name: [a-zA-Z_][a-zA-Z0-9_]*. */
int fp_valid_label_name(const char *p, size_t n);

/* 1 if p is a legacy metric name: [a-zA-Z_:][a-zA-Z0-9_:]*. */
int fp_valid_metric_name(const char *p, size_t n);

/* How metric and label names outside the legacy character set are written
 * (the escaping= of content negotiation; prometheus_client's schemes). */
enum fp_escaping { FP_ESC_UNDERSCORES = 0, FP_ESC_ALLOWUTF8 = 1, FP_ESC_DOTS = 2, FP_ESC_VALUES = 3 };

/* Writes the characters of a name (UTF-8, n bytes) as the scheme escapes
 * them: allow-utf-8 backslash-escapes \, newline and "; underscores
 * replaces every character outside the legacy set with _; dots writes _ as
 * __, . as _dot_ and others as __; values writes U__ first, then _ as __
 * and others as _<hex>_ (prometheus_client's _escape).  The legacy set is that of label names, with : when `colon` is
 * set; a digit is legacy except at index 0 (`first` says whether these
 * bytes start the name). */
void fp_escape_name(fp_buf *b, const char *p, size_t n, int esc, int colon, int first);

/* Writes a name as prometheus_client's escape_metric_name (`metric` set) or
 * escape_label_name does: a legacy name as it is (dots: escaped anyway);
 * otherwise escaped by the scheme, in quotes for allow-utf-8. */
void fp_put_name(fp_buf *b, const char *p, size_t n, int esc, int metric);

/* Sorts n (name, value) pairs by name, byte order (code point order for
 * UTF-8): order receives the indices.  Stable.  n is small. */
void fp_sort_names(const char *const *names, const size_t *lens, size_t n, uint32_t *order);

#endif
