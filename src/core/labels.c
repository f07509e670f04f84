/* labels.c: see labels.h. */
#include "labels.h"

#include <string.h>

void fp_buf_escaped(fp_buf *b, const char *s, size_t n, int quotes)
{
    if (!fp_buf_reserve(b, 2 * n))
        return;
    char *d = b->p + b->len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' || (quotes && c == '"')) {
            *d++ = '\\';
            *d++ = c;
        } else if (c == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else {
            *d++ = c;
        }
    }
    b->len = (size_t)(d - b->p);
}

size_t fp_escape_value(char *dst, const char *src, size_t len)
{
    char *d = dst;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (c == '\\' || c == '"') {
            *d++ = '\\';
            *d++ = c;
        } else if (c == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else {
            *d++ = c;
        }
    }
    return (size_t)(d - dst);
}

size_t fp_label_pair(char *dst, const char *name, size_t nlen, const char *value, size_t vlen)
{
    char *p = dst;
    memcpy(p, name, nlen);
    p += nlen;
    *p++ = '=';
    *p++ = '"';
    p += fp_escape_value(p, value, vlen);
    *p++ = '"';
    return (size_t)(p - dst);
}

int fp_label_next(const char *text, size_t len, size_t *pos, const char **name, size_t *name_len, fp_buf *value)
{
    size_t i = *pos;
    if (i >= len)
        return 0;
    if (i > 0) {
        if (text[i] != ',')
            return -1;
        i++;
    }
    size_t n0 = i;
    while (i < len && text[i] != '=')
        i++;
    if (i + 1 >= len || text[i + 1] != '"' || i == n0)
        return -1;
    *name = text + n0;
    *name_len = i - n0;
    i += 2;
    value->len = 0;
    while (i < len && text[i] != '"') {
        char c = text[i++];
        if (c == '\\') {
            if (i >= len)
                return -1;
            c = text[i++];
            if (c == 'n')
                c = '\n';
            else if (c != '\\' && c != '"')
                return -1;
        }
        fp_buf_putc(value, c);
    }
    if (i >= len)
        return -1;
    *pos = i + 1;
    return value->oom ? -1 : 1;
}

int fp_valid_label_name(const char *p, size_t n)
{
    if (n == 0 || !(p[0] == '_' || ((p[0] | 32) >= 'a' && (p[0] | 32) <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(p[i] == '_' || ((p[i] | 32) >= 'a' && (p[i] | 32) <= 'z') || (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

int fp_label_span(const char *text, size_t len, size_t *pos, const char **name, size_t *name_len,
                  const char **value, size_t *value_len)
{
    size_t i = *pos;
    if (i >= len)
        return 0;
    if (i > 0) {
        if (text[i] != ',')
            return -1;
        i++;
    }
    size_t n0 = i;
    while (i < len && text[i] != '=')
        i++;
    if (i + 1 >= len || text[i + 1] != '"' || i == n0)
        return -1;
    *name = text + n0;
    *name_len = i - n0;
    i += 2;
    size_t v0 = i;
    while (i < len && text[i] != '"')
        i += text[i] == '\\' ? 2 : 1;
    if (i >= len)
        return -1;
    *value = text + v0;
    *value_len = i - v0;
    *pos = i + 1;
    return 1;
}

int fp_valid_metric_name(const char *p, size_t n)
{
    if (n == 0 || !(p[0] == '_' || p[0] == ':' || ((p[0] | 32) >= 'a' && (p[0] | 32) <= 'z')))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!(p[i] == '_' || p[i] == ':' || ((p[i] | 32) >= 'a' && (p[i] | 32) <= 'z') ||
              (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

/* The code point at p (UTF-8, valid: it came from a Python str) and its length. */
static uint32_t code_point(const unsigned char *p, size_t n, size_t *len)
{
    uint32_t c = p[0];
    size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (k > n)
        k = n;
    if (k > 1)
        c &= 0x3Fu >> (k - 1);
    for (size_t i = 1; i < k; i++)
        c = (c << 6) | (p[i] & 0x3Fu);
    *len = k;
    return c;
}

static int legacy_rune(uint32_t c, int colon, int index0)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9' && !index0) ||
           (colon && c == ':');
}

void fp_escape_name(fp_buf *b, const char *p, size_t n, int esc, int colon, int first)
{
    if (esc == FP_ESC_ALLOWUTF8) {
        fp_buf_escaped(b, p, n, 1);
        return;
    }
    const unsigned char *u = (const unsigned char *)p;
    if (esc == FP_ESC_VALUES && first)
        fp_buf_put(b, "U__", 3);
    for (size_t i = 0; i < n;) {
        size_t k;
        uint32_t c = code_point(u + i, n - i, &k);
        /* Legacy characters are ASCII: a longer sequence that decodes to
         * one (invalid UTF-8, say from a damaged store file) is escaped,
         * not copied as its raw bytes. */
        int ok = k == 1 && legacy_rune(c, colon, first && i == 0);
        if (esc == FP_ESC_UNDERSCORES) {
            if (ok)
                fp_buf_put(b, p + i, k);
            else
                fp_buf_putc(b, '_');
        } else if (esc == FP_ESC_DOTS) {
            if (c == '_')
                fp_buf_put(b, "__", 2);
            else if (c == '.')
                fp_buf_put(b, "_dot_", 5);
            else if (ok)
                fp_buf_put(b, p + i, k);
            else
                fp_buf_put(b, "__", 2);
        } else { /* values */
            if (c == '_') {
                fp_buf_put(b, "__", 2);
            } else if (ok) {
                fp_buf_put(b, p + i, k);
            } else {
                char hex[16];
                int m = 0;
                char tmp[8];
                uint32_t x = c;
                do {
                    tmp[m++] = "0123456789abcdef"[x & 15];
                    x >>= 4;
                } while (x);
                int h = 0;
                hex[h++] = '_';
                while (m)
                    hex[h++] = tmp[--m];
                hex[h++] = '_';
                fp_buf_put(b, hex, (size_t)h);
            }
        }
        i += k;
    }
}

void fp_put_name(fp_buf *b, const char *p, size_t n, int esc, int metric)
{
    if (n == 0)
        return;
    int legacy = metric ? fp_valid_metric_name(p, n) : fp_valid_label_name(p, n);
    if (legacy && esc != FP_ESC_DOTS) {
        fp_buf_put(b, p, n);
        return;
    }
    if (esc == FP_ESC_ALLOWUTF8 && !legacy) {
        fp_buf_putc(b, '"');
        fp_escape_name(b, p, n, esc, metric, 1);
        fp_buf_putc(b, '"');
        return;
    }
    fp_escape_name(b, p, n, esc, metric, 1);
}

static int name_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

void fp_sort_names(const char *const *names, const size_t *lens, size_t n, uint32_t *order)
{
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    for (size_t i = 1; i < n; i++) {
        uint32_t x = order[i];
        size_t j = i;
        while (j > 0 && name_cmp(names[order[j - 1]], lens[order[j - 1]], names[x], lens[x]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
}
