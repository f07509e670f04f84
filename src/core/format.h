/* format.h: the byte buffer every writer fills, and number formatting. */
#ifndef FASTPROM_FORMAT_H
#define FASTPROM_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A growable byte buffer.  After a failed allocation `oom` is set and
 * later writes are dropped, so writers check once at the end.  A buffer
 * may start in storage it does not own (fp_buf_lend): it fills that, and
 * when it needs more it moves to memory of its own, leaving the lent
 * storage as it was. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
    int lent;               /* p is the lent storage (not to be freed or grown in place) */
} fp_buf;

void fp_buf_init(fp_buf *b);
/* Starts an empty buffer in cap bytes at p, which it does not own. */
void fp_buf_lend(fp_buf *b, char *p, size_t cap);
void fp_buf_free(fp_buf *b);
/* Grows the buffer for n more bytes; 1, or 0 (and oom set) when it cannot. */
int fp_buf_grow(fp_buf *b, size_t n);

/* The writers' fast paths are inline: they run for every byte of a scrape. */

/* Makes room for n more bytes; 1, or 0 (and oom set) when it cannot. */
static inline int fp_buf_reserve(fp_buf *b, size_t n)
{
    return b->cap - b->len >= n && !b->oom ? 1 : fp_buf_grow(b, n);
}

/* memcpy for the short pieces of a sample line (names, label pairs,
 * digits): up to 64 bytes with overlapping fixed-size moves, inline,
 * reading and writing only [0, n); longer ones through memcpy. */
static inline void fp_copy(char *d, const char *s, size_t n)
{
    if (n >= 16) {
        if (n > 64) {
            memcpy(d, s, n);
            return;
        }
        char a[32], z[32];
        size_t k = n > 32 ? 32 : 16; /* the first k bytes and the last k cover n */
        memcpy(a, s, 16);
        memcpy(z, s + n - k, 16);
        if (k == 32) {
            memcpy(a + 16, s + 16, 16);
            memcpy(z + 16, s + n - 16, 16);
        }
        memcpy(d, a, 16);
        memcpy(d + n - k, z, 16);
        if (k == 32) {
            memcpy(d + 16, a + 16, 16);
            memcpy(d + n - 16, z + 16, 16);
        }
    } else if (n >= 8) {
        uint64_t a, z;
        memcpy(&a, s, 8);
        memcpy(&z, s + n - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &z, 8);
    } else if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + n - 4, &z, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
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
