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
