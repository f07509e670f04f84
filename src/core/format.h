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
void fp_buf_float(fp_buf *b, double v, int openmetrics);
void fp_buf_uint(fp_buf *b, uint64_t v);

/* Formats v as Prometheus' Go code does (strconv 'g', shortest), with
 * OpenMetrics' ".0" for integral values when `openmetrics` is set.  `out`
 * must hold 32 bytes; returns the length. */
size_t fp_format_float(char *out, double v, int openmetrics);

/* Pins numeric formatting to the C locale for the calling thread; returns
 * a token for fp_locale_restore.  fp_format_float does this itself. */
void *fp_locale_c(void);
void fp_locale_restore(void *token);

#endif
