/* render.h: Prometheus text 0.0.4 and OpenMetrics 1.0.0 output.
 * No Python headers; everything is written into one growable buffer. */
#ifndef FASTPROM_RENDER_H
#define FASTPROM_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include "store.h"

typedef struct {
    char *p;
    size_t len, cap;
    int oom;                /* set once an allocation failed; later writes are dropped */
} fp_buf;

void fp_buf_init(fp_buf *b);
void fp_buf_free(fp_buf *b);
void fp_buf_put(fp_buf *b, const char *s, size_t n);
void fp_buf_puts(fp_buf *b, const char *s);
void fp_buf_putc(fp_buf *b, char c);
/* Escapes \\ and \n, and " too when `quotes` is set. */
void fp_buf_escaped(fp_buf *b, const char *s, size_t n, int quotes);
void fp_buf_float(fp_buf *b, double v, int openmetrics);
void fp_buf_uint(fp_buf *b, uint64_t v);

/* Formats v as Prometheus' Go code does (strconv 'g', shortest), with
 * OpenMetrics' ".0" for integral values when `openmetrics` is set.  `out`
 * must hold 32 bytes; returns the length. */
size_t fp_format_float(char *out, double v, int openmetrics);

/* Renders one family (metadata and every live series).  0 or FP_ENOMEM. */
int fp_render_family(fp_buf *b, const fp_store *s, uint32_t family, int openmetrics);

/* Pins numeric formatting to the C locale for the calling thread; returns
 * a token for fp_locale_restore.  fp_format_float does this itself. */
void *fp_locale_c(void);
void fp_locale_restore(void *token);

#endif
