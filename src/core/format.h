/* format.h: the byte buffer every writer fills, and number formatting. */
#ifndef FASTPROM_FORMAT_H
#define FASTPROM_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A growable byte buffer.  After a failed allocation `oom` is set and
 * later writes are dropped, so writers check once at the end. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} fp_buf;

void fp_buf_init(fp_buf *b);
void fp_buf_free(fp_buf *b);
/* Grows the buffer for n more bytes; 1, or 0 (and oom set) when it cannot. */
int fp_buf_grow(fp_buf *b, size_t n);

/* The writers' fast paths are inline: they run for every byte of a scrape. */

/* Makes room for n more bytes; 1, or 0 (and oom set) when it cannot. */
static inline int fp_buf_reserve(fp_buf *b, size_t n)
{
    return b->cap - b->len >= n && !b->oom ? 1 : fp_buf_grow(b, n);
}

static inline void fp_buf_put(fp_buf *b, const char *s, size_t n)
{
    if (n && fp_buf_reserve(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

static inline void fp_buf_puts(fp_buf *b, const char *s) { fp_buf_put(b, s, strlen(s)); }

static inline void fp_buf_putc(fp_buf *b, char c)
{
    if (fp_buf_reserve(b, 1))
        b->p[b->len++] = c;
}
void fp_buf_value(fp_buf *b, double v);
void fp_buf_repr(fp_buf *b, double v);
void fp_buf_uint(fp_buf *b, uint64_t v);

/* Formats a sample value as prometheus_client does (floatToGoString):
 * Python's repr() of the float, but +Inf, -Inf and NaN, and a positive
 * value with seven or more integer digits in exponent form (1e+06,
 * 1.2345678e+08).  `out` must hold 32 bytes; returns the length. */
size_t fp_format_value(char *out, double v);

/* Formats v exactly as Python's repr() does (1.0, 1e+16, 1.5e-05, nan). */
size_t fp_format_repr(char *out, double v);

/* Pins numeric formatting to the C locale for the calling thread; returns
 * a token for fp_locale_restore.  fp_format_float does this itself. */
void *fp_locale_c(void);
void fp_locale_restore(void *token);

#endif
