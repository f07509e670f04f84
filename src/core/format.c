/* format.c: the byte buffer and float formatting, byte for byte as
 * Prometheus' own Go code (prometheus/common expfmt) formats floats. */
#define _GNU_SOURCE
#include "format.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fp_buf_init(fp_buf *b) { memset(b, 0, sizeof *b); }
void fp_buf_free(fp_buf *b)
{
    if (!b->lent)
        free(b->p);
    fp_buf_init(b);
}

void fp_buf_lend(fp_buf *b, char *p, size_t cap)
{
    fp_buf_init(b);
    b->p = p;
    b->cap = cap;
    b->lent = 1;
}

int fp_buf_grow(fp_buf *b, size_t n)
{
    if (b->oom)
        return 0;
    if (b->cap - b->len >= n)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = 1;
            return 0;
        }
        cap *= 2;
    }
    char *p = b->lent ? malloc(cap) : realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return 0;
    }
    if (b->lent && b->len)
        memcpy(p, b->p, b->len);
    b->lent = 0;
    b->p = p;
    b->cap = cap;
    return 1;
}

/* "00" to "99": decimal digits two at a time. */
static const char two_digits[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Exactly eight digits of v (< 100,000,000), leading zeros included: two
 * independent halves, two digits per step, so the chain of divisions is
 * two long rather than eight. */
static inline void eight_digits(char *p, uint32_t v)
{
    uint32_t hi = v / 10000, lo = v % 10000;
    memcpy(p, two_digits + 2 * (hi / 100), 2);
    memcpy(p + 2, two_digits + 2 * (hi % 100), 2);
    memcpy(p + 4, two_digits + 2 * (lo / 100), 2);
    memcpy(p + 6, two_digits + 2 * (lo % 100), 2);
}

/* How many decimal digits v has (v > 0). */
static int count_digits(uint64_t v)
{
    static const uint64_t pow10[20] = {1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
                                       10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
                                       100000000000ULL, 1000000000000ULL, 10000000000000ULL,
                                       100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
                                       100000000000000000ULL, 1000000000000000000ULL,
                                       10000000000000000000ULL};
    int t = ((64 - __builtin_clzll(v)) * 1233) >> 12; /* about log10(2^bits) */
    return t - (v < pow10[t]) + 1;
}

/* The decimal digits of v, written in tmp (24 bytes): returns where they
 * start, their count in *n. */
static const char *int_digits(uint64_t v, char *tmp, int *n)
{
    if (v < 100000000) {
        eight_digits(tmp + 16, (uint32_t)v);
    } else if (v < 10000000000000000ULL) {
        eight_digits(tmp + 8, (uint32_t)(v / 100000000));
        eight_digits(tmp + 16, (uint32_t)(v % 100000000));
    } else {
        eight_digits(tmp, (uint32_t)(v / 10000000000000000ULL)); /* at most 1844 */
        uint64_t rest = v % 10000000000000000ULL;
        eight_digits(tmp + 8, (uint32_t)(rest / 100000000));
        eight_digits(tmp + 16, (uint32_t)(rest % 100000000));
    }
    *n = v ? count_digits(v) : 1;
    return tmp + 24 - *n;
}

void fp_buf_uint(fp_buf *b, uint64_t v)
{
    char tmp[24];
    int n;
    const char *d = int_digits(v, tmp, &n);
    fp_buf_put(b, d, (size_t)n);
}

void fp_buf_value(fp_buf *b, double v)
{
    if (fp_buf_reserve(b, 32))
        b->len += fp_format_value(b->p + b->len, v);
}

void fp_buf_repr(fp_buf *b, double v)
{
    if (fp_buf_reserve(b, 32))
        b->len += fp_format_repr(b->p + b->len, v);
}

/* Writes a decimal exponent as Python does: a sign and at least two digits. */
static char *put_exp(char *p, int exp)
{
    *p++ = 'e';
    *p++ = exp < 0 ? '-' : '+';
    int e = exp < 0 ? -exp : exp;
    if (e >= 100) {
        *p++ = (char)('0' + e / 100);
        e %= 100;
    }
    *p++ = (char)('0' + e / 10);
    *p++ = (char)('0' + e % 10);
    return p;
}

/* Lays out significant digits `dig` (no trailing zeros) with decimal
 * exponent `exp` as Python's repr() of a float does: positional with at
 * least one digit after the point when -4 <= exp < 16, else d.ddde+XX. */
static size_t layout(char *out, int neg, const char *dig, int nd, int exp)
{
    char *p = out;
    if (neg)
        *p++ = '-';
    if (exp < -4 || exp >= 16) {
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            fp_copy(p, dig + 1, (size_t)(nd - 1));
            p += nd - 1;
        }
        p = put_exp(p, exp);
    } else if (exp < 0) {
        *p++ = '0';
        *p++ = '.';
        for (int i = 0; i < -exp - 1; i++)
            *p++ = '0';
        fp_copy(p, dig, (size_t)nd);
        p += nd;
    } else {
        for (int i = 0; i <= exp; i++)
            *p++ = i < nd ? dig[i] : '0';
        *p++ = '.';
        if (nd > exp + 1) {
            fp_copy(p, dig + exp + 1, (size_t)(nd - exp - 1));
            p += nd - exp - 1;
        } else {
            *p++ = '0';
        }
    }
    return (size_t)(p - out);
}

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;
static void make_c_locale(void) { c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0); }

void *fp_locale_c(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale ? (void *)uselocale(c_locale) : NULL;
}

void fp_locale_restore(void *token)
{
    if (token)
        uselocale((locale_t)token);
}

/* A power of two has a gap below it half as wide as the gap above, so the
 * nearest 16-digit decimal (below v) may not read back while the next one
 * up does; Go prints that one rather than 17 digits.  tmp holds v's
 * nearest 16 digits as d.ddddddddddddddde+XX; on success it is replaced by
 * the next 16-digit decimal up and 1 is returned. */
static int next_up_16(char *tmp, size_t cap, double a)
{
    uint64_t m = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            m = m * 10 + (uint64_t)(*p - '0');
    if (*p != 'e')
        return 0;
    int exp = atoi(p + 1);
    if (++m == 10000000000000000ULL) {
        m /= 10;
        exp++;
    }
    char cand[40];
    snprintf(cand, sizeof cand, "%d.%015llue%+03d", (int)(m / 1000000000000000ULL),
             (unsigned long long)(m % 1000000000000000ULL), exp);
    if (strtod(cand, NULL) != a)
        return 0;
    snprintf(tmp, cap, "%s", cand);
    return 1;
}

/* The shortest digit string that reads back as a (finite, >= 0), the one
 * nearest a when several do, as Python's repr() (and Go) choose it, with
 * its decimal exponent.  Found by trying 15, 16, then 17 significant
 * digits: a correctly rounded 15-digit form, stripped of trailing zeros,
 * is the shortest one whenever 15 digits suffice (subnormals and powers of
 * two aside: see below and next_up_16).  The digits are written in buf
 * (40 bytes); returns where they start. */
static const char *shortest(double a, char *buf, int *ndp, int *expp)
{
    int nd, exp;
    const char *dig;
    if (a < 1e15 && a == (double)(int64_t)a) {
        /* Integers: digits straight from the integer. */
        dig = int_digits((uint64_t)a, buf, &nd);
        exp = nd - 1;
    } else if (a < 1e12 && (double)(int64_t)(a * 1000.0) == a * 1000.0 &&
               (double)(int64_t)(a * 1000.0) / 1000.0 == a) {
        /* Up to three decimals (created timestamps, which are kept to the
         * millisecond, and most bucket bounds and sums): the digits of
         * a * 1000, which read back as a, and which no shorter decimal
         * does, as they number at most 15.  (a * 1000 < 2^53: the cast
         * is exact where it matters and defined everywhere.) */
        dig = int_digits((uint64_t)(a * 1000.0), buf, &nd);
        exp = nd - 1 - 3;
    } else {
        char tmp[40];
        /* snprintf and strtod follow LC_NUMERIC; pin the C locale for them. */
        void *loc = fp_locale_c();
        /* Subnormals carry fewer than 15 significant digits, so the
         * shortcut does not hold there: search from one digit up. */
        for (int prec = a < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*e", prec - 1, a);
            double r = strtod(tmp, NULL);
            if (prec == 17 || r == a)
                break;
            int e2;
            if (prec == 16 && r < a && frexp(a, &e2) == 0.5 && next_up_16(tmp, sizeof tmp, a))
                break;
        }
        fp_locale_restore(loc);
        /* tmp is d.ddddde[+-]XX in the C locale. */
        nd = 0;
        const char *p = tmp;
        for (; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9')
                buf[nd++] = *p;
        exp = atoi(p + 1);
        dig = buf;
    }
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    *ndp = nd;
    *expp = exp;
    return dig;
}

size_t fp_format_repr(char *out, double v)
{
    if (isnan(v)) {
        memcpy(out, "nan", 3);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "inf" : "-inf", v > 0 ? 3 : 4);
        return v > 0 ? 3 : 4;
    }
    char buf[40];
    int nd, exp;
    const char *dig = shortest(fabs(v), buf, &nd, &exp);
    return layout(out, signbit(v) != 0, dig, nd, exp);
}

/* The digits of u written to end just before `end`, two at a time. */
static inline void digits_before(char *end, uint32_t u)
{
    for (; u >= 100; u /= 100) {
        end -= 2;
        memcpy(end, two_digits + 2 * (u % 100), 2);
    }
    if (u >= 10)
        memcpy(end - 2, two_digits + 2 * u, 2);
    else
        end[-1] = (char)('0' + u);
}

/* Go's exponent form, d.ddde+XX, of a value of seven to twelve integer
 * digits kept to the millisecond (created timestamps above all): its
 * shortest digits are those of m = v * 1000 (as in shortest), written
 * straight into place, the first moved ahead of the point. */
static size_t ms_exponent_form(char *out, uint64_t m)
{
    int nd = count_digits(m); /* 10 to 15 */
    char *p = out + 1 + nd;
    eight_digits(p - 8, (uint32_t)(m % 100000000));
    p -= 8;
    digits_before(p, (uint32_t)(m / 100000000)); /* 2 to 7 digits */
    out[0] = out[1];
    out[1] = '.';
    char *e = out + 1 + nd;
    while (e[-1] == '0') /* stops at the point */
        e--;
    if (e == out + 2)
        e = out + 1; /* no digits after the first: no point */
    memcpy(e, "e+", 2);
    memcpy(e + 2, two_digits + 2 * (nd - 4), 2);
    return (size_t)(e + 4 - out);
}

size_t fp_format_value(char *out, double v)
{
    if (isnan(v)) {
        memcpy(out, "NaN", 3);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 4);
        return 4;
    }
    if (v >= 0 && v < 1000000 && !signbit(v) && v == (double)(int32_t)v) {
        /* Whole numbers below a million (counts, most counter values): the
         * integer's digits and ".0". */
        uint32_t u = (uint32_t)v;
        int n = u < 10 ? 1 : u < 100 ? 2 : u < 1000 ? 3 : u < 10000 ? 4 : u < 100000 ? 5 : 6;
        digits_before(out + n, u);
        memcpy(out + n, ".0", 2);
        return (size_t)n + 2;
    }
    if (v >= 1e6 && v < 1e12) {
        double k = v * 1000.0;
        uint64_t m = (uint64_t)k; /* below 2^53: defined and exact where it matters */
        if ((double)m == k && (double)m / 1000.0 == v)
            return ms_exponent_form(out, m);
    }
    char buf[40];
    int nd, exp;
    const char *dig = shortest(fabs(v), buf, &nd, &exp);
    if (v > 0 && exp >= 6 && exp < 16) {
        /* Seven or more integer digits: Go's exponent form, d.ddde+XX. */
        char *p = out;
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            fp_copy(p, dig + 1, (size_t)(nd - 1));
            p += nd - 1;
        }
        return (size_t)(put_exp(p, exp) - out);
    }
    return layout(out, signbit(v) != 0, dig, nd, exp);
}
