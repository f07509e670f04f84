/* stress.c: a Python-free test of the C core (src/core).
 *
 * Writer threads update and create series concurrently (many of them racing
 * to create the same label sets) while renderer threads scrape every family
 * and check what they read; after the join every total is checked exactly.
 * It also checks fp_format_repr and fp_format_value against the strings
 * Python's repr() and prometheus_client's floatToGoString() produce.
 *
 * Usage: stress [iterations per writer]   (a multiple of 80; default 16000)
 * Exit status 0 when every check passed. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "quantile.h"
#include "labels.h"
#include "proto.h"
#include "render.h"
#include "store.h"

#define NWRITERS 4
#define NRENDERERS 2
#define MIN_RENDERS 4 /* per renderer, even if the writers finish first */
#define NCODES 4
#define NBUCKETS 5

static atomic_int failures;
static atomic_long checks;

static void fail(const char *file, int line, const char *what, const char *fmt, ...)
{
    va_list ap;
    char msg[512];
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL %s:%d: %s: %s\n", file, line, what, msg);
    atomic_fetch_add(&failures, 1);
}

/* Evaluates cond once; stops printing after 50 failures so that a
 * systematic one stays readable. */
#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        int ok_ = !!(cond);                                                   \
        atomic_fetch_add_explicit(&checks, 1, memory_order_relaxed);          \
        if (!ok_ && atomic_load(&failures) < 50)                              \
            fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                     \
        else if (!ok_)                                                        \
            atomic_fetch_add(&failures, 1);                                   \
    } while (0)

/* ---- the store and its families ------------------------------------ */

static fp_store store;
static uint32_t fam_counter, fam_gauge, fam_hist, fam_summary;
static long iters = 16000;

/* One label value has every character that needs escaping. */
static const char *const codes[NCODES] = {"200", "404", "500", "we\"ird\\va\nlue"};
static const char *const paths[2] = {"/a", "/b"};
static const char *const kinds[2] = {"small", "large"};
static const double summary_obs[2] = {0.5, 1.5};
static const double bounds[NBUCKETS] = {0.1, 0.5, 1.0, 2.5, INFINITY};
/* Exactly representable, one per bucket (1.0 lands in le="1": bounds are inclusive). */
static const double hist_obs[NBUCKETS] = {0.0625, 0.25, 1.0, 2.0, 8.0};

static atomic_int writers_left;
static atomic_int start_gate;
/* The "race" label sets: every writer uses g<race_gen> and bumps it now and
 * then, so whichever threads are running race to create each new one. */
static atomic_long race_gen;

static fp_series *get2(uint32_t fam, const char *a, const char *b, int create)
{
    const char *v[2] = {a, b};
    size_t l[2] = {strlen(a), strlen(b)};
    fp_series *se = NULL;
    int rc = fp_series_get(&store, fam, v, l, create, 0, &se);
    CHECK(rc == FP_OK && se, "fp_series_get(%s, %s) = %d", a, b, rc);
    return rc == FP_OK ? se : NULL;
}

static fp_series *get1(uint32_t fam, const char *a, int create)
{
    const char *v[1] = {a};
    size_t l[1] = {strlen(a)};
    fp_series *se = NULL;
    int rc = fp_series_get(&store, fam, v, l, create, 0, &se);
    CHECK(rc == FP_OK && se, "fp_series_get(%s) = %d", a, rc);
    return rc == FP_OK ? se : NULL;
}

static fp_series *get0(uint32_t fam, int create)
{
    fp_series *se = NULL;
    int rc = fp_series_get(&store, fam, NULL, NULL, create, 0, &se);
    CHECK(rc == FP_OK && se, "fp_series_get() = %d", rc);
    return rc == FP_OK ? se : NULL;
}

/* Exemplar payloads carry their own id three times (label, value, ts) so a
 * torn read shows up as a mismatch. */
#define EX_TS0 1e9

static void put_exemplar(fp_series *se, uint32_t nslots, uint32_t slot, long id, double value)
{
    char text[64];
    int n = snprintf(text, sizeof text, "{trace_id=\"%ld\"}", id);
    int rc = fp_exemplar_put(&store, se, nslots, slot, text, (size_t)n, value, EX_TS0 + (double)id);
    CHECK(rc == FP_OK, "fp_exemplar_put = %d", rc);
}

static void *writer(void *arg)
{
    int t = (int)(intptr_t)arg;
    char a[32], b[32];
    const fp_family *hf = fp_family_get(&store, fam_hist);
    const double *hb = fp_at(&store, hf->buckets);

    atomic_fetch_add(&start_gate, 1);
    while (atomic_load(&start_gate) < NWRITERS + NRENDERERS)
        ; /* spin: start everyone together so creators collide */

    for (long i = 0; i < iters; i++) {
        long id = (long)t * iters + i;
        /* Shared series, all threads update them. */
        fp_series *se = get2(fam_counter, "GET", codes[i % NCODES], 1);
        if (se) {
            fp_counter_inc(se, 1.0);
            fp_counter_inc(se, 0.5);
            put_exemplar(se, 1, 0, id, (double)id);
        }
        /* A new label set every 8 iterations, created by every thread at
         * about the same moment: they must agree on one record. */
        if (i % 8 == 0) {
            snprintf(b, sizeof b, "k%ld", i / 8);
            se = get2(fam_counter, "new", b, 1);
            if (se) {
                fp_counter_inc(se, 2.0);
                fp_counter_inc(se, 0.25);
            }
        }
        /* Whoever reads a new generation first creates g<gen>; the others
         * running at that moment race it.  Every g below the final
         * race_gen exists (its bumper created it first), none above. */
        long g = atomic_load(&race_gen);
        snprintf(b, sizeof b, "g%ld", g);
        se = get2(fam_counter, "race", b, 1);
        if (se)
            fp_counter_inc(se, 1.0);
        if (i % 16 == 15)
            atomic_compare_exchange_strong(&race_gen, &g, g + 1);
        /* Thread-own series, a new one every 16 iterations, each updated 16
         * times, created while the others update theirs. */
        snprintf(a, sizeof a, "t%d", t);
        snprintf(b, sizeof b, "n%ld", i / 16);
        se = get2(fam_counter, a, b, 1);
        if (se) {
            fp_counter_inc(se, 1.0);
            fp_counter_inc(se, 0.5);
        }
        se = get0(fam_gauge, 1);
        if (se)
            fp_gauge_add(se, (i & 1) ? 0.5 : 1.0);

        double v = hist_obs[i % NBUCKETS];
        se = get1(fam_hist, paths[(i + t) % 2], 1);
        if (se) {
            uint32_t bk = fp_bucket_index(hb, NBUCKETS, v);
            CHECK(bk == (uint32_t)(i % NBUCKETS), "bucket of %g is %u", v, bk);
            fp_histogram_observe(se, bk, NBUCKETS, v);
            put_exemplar(se, NBUCKETS, bk, id, v);
        }
        se = get1(fam_summary, kinds[i % 2], 1);
        if (se)
            fp_summary_observe(se, summary_obs[i % 2]);
    }
    atomic_fetch_sub(&writers_left, 1);
    return NULL;
}

/* Reads one exemplar and checks that it is whole, one writer's: the id in
 * its labels, its timestamp and its value agree.  Returns 1 if one was read. */
static int check_exemplar(fp_series *se, uint32_t slot, int hist)
{
    char text[FP_EXEMPLAR_TEXT];
    size_t len = 0;
    double v = 0, ts = 0;
    if (!fp_exemplar_get(&store, se, slot, text, &len, &v, &ts))
        return 0;
    long id = (long)(ts - EX_TS0);
    char want[64];
    int n = snprintf(want, sizeof want, "{trace_id=\"%ld\"}", id);
    int ok = id >= 0 && id < NWRITERS * iters && ts == EX_TS0 + (double)id && (size_t)n == len &&
             !memcmp(text, want, len);
    if (ok && hist)
        ok = (id % iters) % NBUCKETS == slot && v == hist_obs[slot];
    else if (ok)
        ok = v == (double)id;
    CHECK(ok, "torn exemplar in slot %u: %.*s value %.17g ts %.17g", slot, (int)(len < 64 ? len : 64), text, v, ts);
    return 1;
}

/* ---- parsing rendered text ----------------------------------------- */

typedef struct {
    const char *name;
    size_t name_len;
    const char *labels; /* inside the braces, or NULL */
    size_t labels_len;
    double value;
    const char *vtext; /* the value as written */
    size_t vlen;
    int has_exemplar;
    const char *ex_labels;
    size_t ex_labels_len;
    double ex_value, ex_ts;
} sample;

/* Scans {...} honouring quoted values and backslash escapes; returns the
 * position after '}' or NULL. */
static const char *scan_labels(const char *p, const char *end)
{
    if (p >= end || *p != '{')
        return NULL;
    p++;
    int inq = 0;
    while (p < end) {
        char c = *p++;
        if (inq) {
            if (c == '\\') {
                if (p >= end || (*p != '\\' && *p != '"' && *p != 'n'))
                    return NULL;
                p++;
            } else if (c == '"') {
                inq = 0;
            } else if (c == '\n') {
                return NULL;
            }
        } else if (c == '"') {
            inq = 1;
        } else if (c == '}') {
            return p;
        }
    }
    return NULL;
}

static int parse_number(const char *p, const char *end, double *out, const char **next)
{
    char tmp[64];
    size_t n = 0;
    while (p + n < end && p[n] != ' ' && n < sizeof tmp - 1)
        n++;
    if (n == 0 || n >= sizeof tmp - 1)
        return 0;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    char *e;
    if (!strcmp(tmp, "+Inf"))
        *out = INFINITY;
    else if (!strcmp(tmp, "-Inf"))
        *out = -INFINITY;
    else if (!strcmp(tmp, "NaN"))
        *out = NAN;
    else {
        *out = strtod(tmp, &e);
        if (*e)
            return 0;
    }
    *next = p + n;
    return 1;
}

static int parse_sample(const char *p, const char *end, sample *s)
{
    memset(s, 0, sizeof *s);
    s->name = p;
    while (p < end && *p != '{' && *p != ' ')
        p++;
    s->name_len = (size_t)(p - s->name);
    if (!s->name_len)
        return 0;
    if (p < end && *p == '{') {
        const char *q = scan_labels(p, end);
        if (!q)
            return 0;
        s->labels = p + 1;
        s->labels_len = (size_t)(q - p - 2);
        p = q;
    }
    if (p >= end || *p++ != ' ')
        return 0;
    s->vtext = p;
    if (!parse_number(p, end, &s->value, &p))
        return 0;
    s->vlen = (size_t)(p - s->vtext);
    if (p == end)
        return 1;
    if (end - p < 4 || memcmp(p, " # {", 4) != 0)
        return 0;
    p += 3;
    const char *q = scan_labels(p, end);
    if (!q)
        return 0;
    s->has_exemplar = 1;
    s->ex_labels = p + 1;
    s->ex_labels_len = (size_t)(q - p - 2);
    p = q;
    if (p >= end || *p++ != ' ' || !parse_number(p, end, &s->ex_value, &p))
        return 0;
    if (p >= end || *p++ != ' ' || !parse_number(p, end, &s->ex_ts, &p))
        return 0;
    return p == end;
}

static int name_is(const sample *s, const char *n)
{
    return s->name_len == strlen(n) && memcmp(s->name, n, s->name_len) == 0;
}

/* Exemplar labels are {trace_id="N"}; returns N or -1. */
static long exemplar_id(const sample *s)
{
    static const char pre[] = "trace_id=\"";
    size_t pl = sizeof pre - 1;
    if (s->ex_labels_len <= pl + 1 || memcmp(s->ex_labels, pre, pl) != 0 ||
        s->ex_labels[s->ex_labels_len - 1] != '"')
        return -1;
    long id = 0;
    for (size_t i = pl; i < s->ex_labels_len - 1; i++) {
        char c = s->ex_labels[i];
        if (c < '0' || c > '9')
            return -1;
        id = id * 10 + (c - '0');
    }
    return id;
}

/* Remembers the last value seen for a few series so a renderer can check
 * that counts never go backwards between its scrapes. */
#define MAXTRACK 32
typedef struct {
    char key[96];
    double last;
} track;

typedef struct {
    track t[MAXTRACK];
    int n;
    long renders;
    long exemplars; /* exemplars read between scrapes */
} rstate;

static void check_monotonic(rstate *st, const char *prefix, const sample *s)
{
    char key[96];
    int n = snprintf(key, sizeof key, "%s|%.*s|%.*s", prefix, (int)s->name_len, s->name,
                     (int)s->labels_len, s->labels ? s->labels : "");
    if (n < 0 || (size_t)n >= sizeof key)
        return;
    for (int i = 0; i < st->n; i++) {
        if (!strcmp(st->t[i].key, key)) {
            CHECK(s->value >= st->t[i].last, "%s went from %.17g to %.17g", key, st->t[i].last, s->value);
            st->t[i].last = s->value;
            return;
        }
    }
    if (st->n < MAXTRACK) {
        memcpy(st->t[st->n].key, key, (size_t)n + 1);
        st->t[st->n].last = s->value;
        st->n++;
    }
}

/* Histogram state while walking one series' lines. */
typedef struct {
    char labels[64];
    size_t labels_len;
    int nb;           /* buckets seen so far for the current series */
    double prev;      /* previous cumulative count */
    double inf;       /* the +Inf bucket */
    int want_count, want_sum;
} hstate;

static const double max_counter = 1e12;

/* Checks one rendered scrape of every family; returns its sample count. */
static long check_render(rstate *st, const char *p, size_t len, int om)
{
    CHECK(len > 0, "empty render");
    if (!len)
        return 0;
    CHECK(p[len - 1] == '\n', "render does not end with a newline");
    CHECK(memchr(p, '\0', len) == NULL, "NUL byte in render");
    const char *end = p + len;
    hstate h;
    memset(&h, 0, sizeof h);
    long series_lines = 0;
    int help_lines = 0, type_lines = 0;
    for (const char *line = p; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        size_t ll = (size_t)(nl - line);
        CHECK(ll > 0, "empty line at offset %zu", (size_t)(line - p));
        if (ll && line[0] == '#') {
            if (ll > 7 && !memcmp(line, "# HELP ", 7))
                help_lines++;
            else if (ll > 7 && !memcmp(line, "# TYPE ", 7))
                type_lines++;
            else
                CHECK(om && ll > 7 && !memcmp(line, "# UNIT ", 7), "bad comment line %.*s", (int)ll, line);
            line = nl + 1;
            continue;
        }
        sample s;
        int ok = ll && parse_sample(line, nl, &s);
        CHECK(ok, "unparsable line: %.*s", (int)ll, line);
        line = nl + 1;
        if (!ok)
            continue;
        series_lines++;
        CHECK(!isnan(s.value) && s.value >= 0 && s.value < max_counter, "bad value in %.*s", (int)ll, s.name);

        if (s.has_exemplar) {
            CHECK(om, "exemplar in text format");
            long id = exemplar_id(&s);
            CHECK(id >= 0 && id < NWRITERS * iters, "bad exemplar id in %.*s", (int)ll, s.name);
            CHECK(s.ex_ts == EX_TS0 + (double)id, "torn exemplar: id %ld ts %.17g", id, s.ex_ts);
            if (name_is(&s, "requests_total"))
                CHECK(s.ex_value == (double)id, "torn exemplar: id %ld value %.17g", id, s.ex_value);
            else if (name_is(&s, "latency_seconds_bucket"))
                CHECK(id >= 0 && s.ex_value == hist_obs[(id % iters) % NBUCKETS] && h.nb < NBUCKETS &&
                          (h.nb == 0 || s.ex_value > bounds[h.nb - 1]) && s.ex_value <= bounds[h.nb],
                      "exemplar id %ld value %.17g in bucket %d", id, s.ex_value, h.nb);
            else
                CHECK(0, "exemplar on %.*s", (int)s.name_len, s.name);
        }

        if (name_is(&s, "requests_total")) {
            /* code="...",method="...": pairs sorted by name */
            if (s.labels && s.labels_len > 12 && !memcmp(s.labels + s.labels_len - 12, "method=\"GET\"", 12))
                check_monotonic(st, "c", &s);
        } else if (name_is(&s, "latency_seconds_bucket")) {
            /* labels are le="...",path="...": pairs sorted by name */
            CHECK(s.labels != NULL && s.labels_len > 4 && !memcmp(s.labels, "le=\"", 4), "bucket without le first");
            if (!s.labels || s.labels_len <= 4 || memcmp(s.labels, "le=\"", 4))
                continue;
            const char *q = memchr(s.labels + 4, '"', s.labels_len - 4);
            CHECK(q && q + 1 < s.labels + s.labels_len && q[1] == ',', "bucket without a path: %.*s",
                  (int)s.labels_len, s.labels);
            if (!q || q + 1 >= s.labels + s.labels_len || q[1] != ',')
                continue;
            const char *rest = q + 2;
            size_t base = (size_t)(s.labels + s.labels_len - rest);
            if (h.nb == 0 || h.want_count || base != h.labels_len || memcmp(h.labels, rest, base)) {
                CHECK(h.nb == 0 && !h.want_count && !h.want_sum, "histogram series interrupted");
                memset(&h, 0, sizeof h);
                if (base < sizeof h.labels) {
                    memcpy(h.labels, rest, base);
                    h.labels_len = base;
                }
            }
            CHECK(h.nb < NBUCKETS, "too many buckets");
            if (h.nb >= NBUCKETS)
                continue;
            /* The bound as prometheus_client writes it: le="1.0". */
            char num[32];
            size_t n = fp_format_value(num, bounds[h.nb]);
            size_t got = (size_t)(q - (s.labels + 4));
            CHECK(got == n && !memcmp(s.labels + 4, num, n), "bucket %d has le=%.*s, want %.*s", h.nb, (int)got,
                  s.labels + 4, (int)n, num);
            CHECK(s.value >= h.prev, "cumulative bucket decreased: %.17g after %.17g", s.value, h.prev);
            CHECK(s.value == floor(s.value), "fractional bucket count %.17g", s.value);
            h.prev = s.value;
            h.nb++;
            if (h.nb == NBUCKETS) {
                h.inf = s.value;
                h.want_count = 1;
            }
        } else if (name_is(&s, "latency_seconds_count")) {
            CHECK(h.want_count && h.nb == NBUCKETS, "_count without buckets");
            CHECK(s.value == h.inf, "le=\"+Inf\" is %.17g but _count is %.17g", h.inf, s.value);
            CHECK(s.labels_len == h.labels_len && (!s.labels_len || !memcmp(s.labels, h.labels, h.labels_len)),
                  "_count labels differ");
            check_monotonic(st, "h", &s);
            h.want_count = 0;
            h.want_sum = 1;
        } else if (name_is(&s, "latency_seconds_sum")) {
            CHECK(h.want_sum, "_sum out of place");
            CHECK(s.value <= 8.0 * NWRITERS * (double)iters, "_sum too large: %.17g", s.value);
            memset(&h, 0, sizeof h);
        } else if (name_is(&s, "payload_bytes_count")) {
            check_monotonic(st, "s", &s);
        } else if (name_is(&s, "payload_bytes_sum") || name_is(&s, "temperature_celsius")) {
            /* value range checked above */
        } else if (s.name_len > 8 && !memcmp(s.name + s.name_len - 8, "_created", 8)) {
            CHECK(s.value > 1e9, "bad _created %.17g", s.value);
        } else {
            CHECK(0, "unexpected sample %.*s", (int)s.name_len, s.name);
        }
        /* Every value as floatToGoString writes it: with a point or an exponent. */
        CHECK(memchr(s.vtext, '.', s.vlen) || memchr(s.vtext, 'e', s.vlen), "value formatting: %.*s", (int)s.vlen,
              s.vtext);
    }
    /* Text: the counter's, histogram's and summary's _created are gauge
     * families of their own, once they have a series. */
    CHECK(help_lines == type_lines && help_lines >= 4 && help_lines <= (om ? 4 : 7), "%d HELP and %d TYPE lines",
          help_lines, type_lines);
    CHECK(!h.want_count && !h.want_sum && h.nb == 0, "histogram cut short");
    return series_lines;
}

static void render_all(fp_buf *b, int om)
{
    fp_buf side;
    fp_buf_init(&side);
    b->len = 0;
    void *tok = fp_locale_c();
    uint32_t n = fp_family_count(&store);
    for (uint32_t f = 0; f < n; f++) {
        int rc = fp_render_family(b, &side, &store, f, om, FP_ESC_UNDERSCORES);
        CHECK(rc == FP_OK, "fp_render_family(%u) = %d", f, rc);
    }
    fp_buf_free(&side);
    fp_locale_restore(tok);
    CHECK(!b->oom, "render ran out of memory");
}

/* A protobuf render of every family while writers run: the delimited
 * stream's framing holds (each message's length ends inside the stream,
 * the last exactly at its end) and every family with series is there. */
static void render_all_pb(fp_buf *b)
{
    b->len = 0;
    uint32_t n = fp_family_count(&store), messages = 0;
    for (uint32_t f = 0; f < n; f++)
        CHECK(fp_render_family_pb(b, &store, f, FP_ESC_UNDERSCORES) == FP_OK, "fp_render_family_pb(%u)", f);
    CHECK(!b->oom, "protobuf render ran out of memory");
    const unsigned char *p = (const unsigned char *)b->p;
    size_t pos = 0;
    while (pos < b->len) {
        uint64_t len = 0;
        int shift = 0;
        while (pos < b->len && shift < 64) {
            unsigned char c = p[pos++];
            len |= (uint64_t)(c & 0x7f) << shift;
            shift += 7;
            if (!(c & 0x80))
                break;
        }
        CHECK(len > 0 && len <= b->len - pos, "protobuf message of %llu bytes at %zu of %zu",
              (unsigned long long)len, pos, b->len);
        CHECK(p[pos] == ((1 << 3) | 2), "a MetricFamily starts with its name");
        pos += (size_t)len;
        messages++;
    }
    CHECK(messages <= n, "%u protobuf families of %u", messages, n);
}

static void *renderer(void *arg)
{
    rstate *st = arg;
    fp_buf b;
    fp_buf_init(&b);
    atomic_fetch_add(&start_gate, 1);
    while (atomic_load(&start_gate) < NWRITERS + NRENDERERS)
        ;
    fp_series *ex[NCODES + 2];
    for (int c = 0; c < NCODES; c++)
        ex[c] = get2(fam_counter, "GET", codes[c], 1);
    ex[NCODES] = get1(fam_hist, paths[0], 1);
    ex[NCODES + 1] = get1(fam_hist, paths[1], 1);
    while (atomic_load(&writers_left) > 0 || st->renders < MIN_RENDERS) {
        int om = (int)(st->renders & 1);
        render_all(&b, om);
        check_render(st, b.p, b.len, om);
        if (st->renders % 3 == 2)
            render_all_pb(&b);
        st->renders++;
        /* The consistency check a worker runs when it opens a store file
         * must pass while series are being created. */
        if (st->renders % 4 == 1) {
            const char *why = fp_store_check(&store, 0);
            CHECK(why == NULL, "consistency check during creation: %s", why ? why : "");
        }
        /* Between scrapes, a burst of exemplar reads racing the writers. */
        for (int k = 0; k < 2000; k++) {
            int which = k % (NCODES + 2);
            if (ex[which])
                st->exemplars += check_exemplar(ex[which], which < NCODES ? 0 : (uint32_t)(k / 6 % NBUCKETS),
                                                which >= NCODES);
        }
    }
    fp_buf_free(&b);
    return NULL;
}

/* ---- checks after the join ----------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks a family's list: returns the number of live series and checks that
 * no label set appears twice and that each is what lookup finds. */
static long walk_family(uint32_t fam)
{
    const fp_family *f = fp_family_get(&store, fam);
    long n = 0, cap = 1024;
    char **texts = malloc(sizeof *texts * (size_t)cap);
    fp_header *h = fp_hdr(&store);
    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(&store, off))->next)) {
        const fp_series *se = fp_at(&store, off);
        CHECK(off < fp_load(&h->top) && off < h->size, "series offset %llu out of the arena", (unsigned long long)off);
        CHECK(se->family == fam, "series of family %u in list of %u", se->family, fam);
        CHECK(fp_load32_acq(&se->state) == FP_LIVE, "removed series in the list");
        if (n == cap) {
            cap *= 2;
            texts = realloc(texts, sizeof *texts * (size_t)cap);
        }
        texts[n] = malloc(se->text_len + 1);
        memcpy(texts[n], fp_at(&store, se->text), se->text_len);
        texts[n][se->text_len] = '\0';
        n++;
    }
    qsort(texts, (size_t)n, sizeof *texts, cmp_str);
    for (long i = 1; i < n; i++)
        CHECK(strcmp(texts[i - 1], texts[i]) != 0, "family %u lists {%s} twice", fam, texts[i]);
    for (long i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    return n;
}

/* The series found by lookup must also be the one in the list: a creator
 * that lost the race must not have linked its record. */
static int in_list(uint32_t fam, const fp_series *want)
{
    const fp_family *f = fp_family_get(&store, fam);
    for (fp_off off = fp_load_acq(&f->head); off; off = fp_load_acq(&((fp_series *)fp_at(&store, off))->next))
        if (fp_at(&store, off) == want)
            return 1;
    return 0;
}

static double line_value(const char *text, size_t len, const char *prefix)
{
    size_t pl = strlen(prefix);
    for (const char *p = text; p < text + len;) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) > pl && !memcmp(p, prefix, pl) && p[pl] == ' ') {
            char *e;
            double v = strtod(p + pl + 1, &e);
            return v;
        }
        p = nl + 1;
    }
    return NAN;
}

static void check_totals(void)
{
    fp_header *h = fp_hdr(&store);
    const double w = NWRITERS;
    const long newkeys = iters / 8, ownkeys = iters / 16;
    char a[32], b[32];

    /* Counters. */
    for (int c = 0; c < NCODES; c++) {
        fp_series *se = get2(fam_counter, "GET", codes[c], 0);
        if (!se)
            continue;
        CHECK(fp_counter_value(se) == w * (double)iters / NCODES * 1.5, "GET/%d value %.17g", c, fp_counter_value(se));
        CHECK(in_list(fam_counter, se), "GET/%d not in the family list", c);
        CHECK(check_exemplar(se, 0, 0) == 1, "GET/%d has no exemplar", c);
    }
    /* The raced label sets: g0 .. g<race_gen - 1>, one increment per writer
     * iteration in all. */
    long gens = atomic_load(&race_gen);
    uint64_t race_total = 0;
    for (long k = 0; k < gens; k++) {
        snprintf(b, sizeof b, "g%ld", k);
        fp_series *se = get2(fam_counter, "race", b, 0);
        if (se) {
            race_total += (uint64_t)fp_counter_value(se);
            CHECK(fp_counter_value(se) > 0 && in_list(fam_counter, se), "race/%s", b);
        }
    }
    {
        fp_series *se = NULL;
        snprintf(b, sizeof b, "g%ld", gens);
        const char *v[2] = {"race", b};
        size_t l[2] = {4, strlen(b)};
        CHECK(fp_series_get(&store, fam_counter, v, l, 0, 0, &se) == FP_ENOTFOUND, "race/%s exists", b);
    }
    CHECK(race_total == (uint64_t)(NWRITERS * iters), "race series add up to %llu", (unsigned long long)race_total);
    long bad_new = 0;
    for (long k = 0; k < newkeys; k++) {
        snprintf(b, sizeof b, "k%ld", k);
        fp_series *se = get2(fam_counter, "new", b, 0);
        if (!se)
            continue;
        if (fp_counter_value(se) != 2.25 * NWRITERS || !in_list(fam_counter, se)) {
            if (bad_new++ < 5)
                CHECK(0, "new/%s: %.17g (want %g)", b, fp_counter_value(se), 2.25 * NWRITERS);
        }
    }
    CHECK(bad_new == 0, "%ld concurrently created series have wrong totals", bad_new);
    long bad_own = 0;
    for (int t = 0; t < NWRITERS; t++) {
        snprintf(a, sizeof a, "t%d", t);
        for (long k = 0; k < ownkeys; k++) {
            snprintf(b, sizeof b, "n%ld", k);
            fp_series *se = get2(fam_counter, a, b, 0);
            if (se && fp_counter_value(se) != 24.0)
                bad_own++;
        }
    }
    CHECK(bad_own == 0, "%ld thread-own series have wrong totals", bad_own);

    /* Gauge. */
    fp_series *g = get0(fam_gauge, 0);
    if (g)
        CHECK(fp_gauge_value(g) == w * ((double)iters / 2 * 1.0 + (double)iters / 2 * 0.5), "gauge %.17g",
              fp_gauge_value(g));

    /* Histogram: each (path, bucket) is hit iters/10 times per writer. */
    double obs_sum = 0;
    for (int i = 0; i < NBUCKETS; i++)
        obs_sum += hist_obs[i];
    for (int p = 0; p < 2; p++) {
        fp_series *se = get1(fam_hist, paths[p], 0);
        if (!se)
            continue;
        uint64_t total = 0;
        for (int i = 0; i < NBUCKETS; i++) {
            uint64_t c = fp_load(&se->cells[i]);
            total += c;
            CHECK(c == (uint64_t)(NWRITERS * iters / 10), "hist %s bucket %d: %llu", paths[p], i, (unsigned long long)c);
        }
        CHECK(total == (uint64_t)(NWRITERS * iters / 2), "hist %s count %llu", paths[p], (unsigned long long)total);
        double sum = fp_loadd(&se->cells[NBUCKETS]);
        CHECK(sum == w * (double)iters / 10 * obs_sum, "hist %s sum %.17g", paths[p], sum);
        /* Exemplars: the last one per bucket is whole. */
        for (uint32_t i = 0; i < NBUCKETS; i++)
            CHECK(check_exemplar(se, i, 1) == 1, "hist %s bucket %u has no exemplar", paths[p], i);
    }

    /* Summary. */
    for (int k = 0; k < 2; k++) {
        fp_series *se = get1(fam_summary, kinds[k], 0);
        if (!se)
            continue;
        CHECK(fp_load(&se->cells[0]) == (uint64_t)(NWRITERS * iters / 2), "summary %s count %llu", kinds[k],
              (unsigned long long)fp_load(&se->cells[0]));
        CHECK(fp_loadd(&se->cells[1]) == w * (double)iters / 2 * summary_obs[k], "summary %s sum %.17g", kinds[k],
              fp_loadd(&se->cells[1]));
    }

    /* Series counts: the header, and the family lists walked one by one. */
    long want_counter = NCODES + newkeys + NWRITERS * ownkeys + gens;
    long want_total = want_counter + 1 + 2 + 2;
    CHECK(fp_load(&h->nseries) == (uint64_t)want_total, "nseries %llu, want %ld",
          (unsigned long long)fp_load(&h->nseries), want_total);
    long nc = walk_family(fam_counter), ng = walk_family(fam_gauge);
    long nh = walk_family(fam_hist), ns = walk_family(fam_summary);
    CHECK(nc == want_counter, "counter family lists %ld series, want %ld", nc, want_counter);
    CHECK(ng == 1 && nh == 2 && ns == 2, "gauge %ld, histogram %ld, summary %ld series", ng, nh, ns);
    CHECK(fp_load(&h->top) <= h->size, "arena overrun");

    /* A final render has the exact values. */
    fp_buf buf;
    fp_buf_init(&buf);
    for (int om = 0; om <= 1; om++) {
        rstate st;
        memset(&st, 0, sizeof st);
        render_all(&buf, om);
        check_render(&st, buf.p, buf.len, om);
        double v = line_value(buf.p, buf.len, "requests_total{code=\"we\\\"ird\\\\va\\nlue\",method=\"GET\"}");
        CHECK(v == w * (double)iters / NCODES * 1.5, "rendered escaped counter %.17g", v);
        v = line_value(buf.p, buf.len, "requests_total{code=\"k0\",method=\"new\"}");
        CHECK(v == 2.25 * NWRITERS, "rendered new counter %.17g", v);
        v = line_value(buf.p, buf.len, "temperature_celsius");
        CHECK(v == w * (double)iters * 0.75, "rendered gauge %.17g", v);
        v = line_value(buf.p, buf.len, "latency_seconds_count{path=\"/a\"}");
        CHECK(v == (double)(NWRITERS * iters / 2), "rendered histogram count %.17g", v);
        v = line_value(buf.p, buf.len, "latency_seconds_bucket{le=\"1.0\",path=\"/b\"}");
        CHECK(v == (double)(NWRITERS * iters / 10 * 3), "rendered le=1 bucket %.17g", v);
        v = line_value(buf.p, buf.len, "payload_bytes_sum{kind=\"large\"}");
        CHECK(v == w * (double)iters / 2 * 1.5, "rendered summary sum %.17g", v);
        /* HELP and TYPE per family, UNIT for the three with a unit (OM),
         * HELP and TYPE of the three _created families (text); samples per
         * series: counter 1 + _created, gauge 1, histogram 5 buckets +
         * _count + _sum + _created, summary 2 + _created. */
        long lines = 0;
        for (size_t i = 0; i < buf.len; i++)
            lines += buf.p[i] == '\n';
        long want_lines = 8 + (om ? 3 : 6) + want_counter * 2 + 1 + 2 * 8 + 2 * 3;
        CHECK(lines == want_lines, "%s render has %ld lines, want %ld", om ? "OpenMetrics" : "text", lines,
              want_lines);
    }
    fp_buf_free(&buf);
}

/* ---- float formatting ---------------------------------------------- */

/* Python's repr() and prometheus_client's floatToGoString() of each value,
 * as Python itself printed them when this table was made. */
static const struct {
    double v;
    const char *repr, *value;
} float_table[] = {
    {1.0, "1.0", "1.0"},
    {0.1, "0.1", "0.1"},
    {1e6, "1000000.0", "1e+06"},
    {123456.0, "123456.0", "123456.0"},
    {1234567.0, "1234567.0", "1.234567e+06"},
    {1e-05, "1e-05", "1e-05"},
    {0.0001, "0.0001", "0.0001"},
    {1.5e300, "1.5e+300", "1.5e+300"},
    {5e-324, "5e-324", "5e-324"},
    {0.30000000000000004, "0.30000000000000004", "0.30000000000000004"},
    {-2.5, "-2.5", "-2.5"},
    {100.0, "100.0", "100.0"},
    {1e21, "1e+21", "1e+21"},
    {9007199254740992.0, "9007199254740992.0", "9.007199254740992e+15"},
    {0.0, "0.0", "0.0"},
    {-0.0, "-0.0", "-0.0"},
    {-1.0, "-1.0", "-1.0"},
    {1e15, "1000000000000000.0", "1e+15"},
    {1000000000000001.0, "1000000000000001.0", "1.000000000000001e+15"},
    {999999.0, "999999.0", "999999.0"},
    {100000.0, "100000.0", "100000.0"},
    {0.5, "0.5", "0.5"},
    {0.00015000000000000001, "0.00015000000000000001", "0.00015000000000000001"},
    {0.00012, "0.00012", "0.00012"},
    {1.2345678901234568e+17, "1.2345678901234568e+17", "1.2345678901234568e+17"},
    {1.7976931348623157e+308, "1.7976931348623157e+308", "1.7976931348623157e+308"},
    {2.2250738585072014e-308, "2.2250738585072014e-308", "2.2250738585072014e-308"},
    {1e-323, "1e-323", "1e-323"},
    {2.5e-322, "2.5e-322", "2.5e-322"},
    {4.4e-322, "4.4e-322", "4.4e-322"},
    {1.265e-321, "1.265e-321", "1.265e-321"},
    {8.691694759794e-311, "8.691694759794e-311", "8.691694759794e-311"},
    {7.120236347223045e-307, "7.120236347223045e-307", "7.120236347223045e-307"},
    {3.645561009778199e-304, "3.645561009778199e-304", "3.645561009778199e-304"},
    {8.209073602596753e-289, "8.209073602596753e-289", "8.209073602596753e-289"},
    {-1.1282464849155185e-277, "-1.1282464849155185e-277", "-1.1282464849155185e-277"},
    {1.4916681462400413e-154, "1.4916681462400413e-154", "1.4916681462400413e-154"},
    {1e23, "1e+23", "1e+23"},
    {9.223372036854776e+18, "9.223372036854776e+18", "9.223372036854776e+18"},
    {1.8446744073709552e+19, "1.8446744073709552e+19", "1.8446744073709552e+19"},
    {0.3333333333333333, "0.3333333333333333", "0.3333333333333333"},
    {-1e-300, "-1e-300", "-1e-300"},
    {3.14159, "3.14159", "3.14159"},
    {12.5, "12.5", "12.5"},
    {1e22, "1e+22", "1e+22"},
    {1e100, "1e+100", "1e+100"},
    {0.001, "0.001", "0.001"},
    {1e-07, "1e-07", "1e-07"},
    {65536.0, "65536.0", "65536.0"},
    {4294967296.0, "4294967296.0", "4.294967296e+09"},
    {1e+16, "1e+16", "1e+16"},
    {1234567890123456.0, "1234567890123456.0", "1.234567890123456e+15"},
    {12345678.0, "12345678.0", "1.2345678e+07"},
    {1000000000000000.5, "1000000000000000.5", "1.0000000000000005e+15"},
    {1700000000.5, "1700000000.5", "1.7000000005e+09"},
    {123456.789, "123456.789", "123456.789"},
    {-1234567.0, "-1234567.0", "-1234567.0"},
};

static void check_floats(void)
{
    void *tok = fp_locale_c();
    char out[40];
    for (size_t i = 0; i < sizeof float_table / sizeof float_table[0]; i++) {
        size_t n = fp_format_repr(out, float_table[i].v);
        out[n] = '\0';
        CHECK(n < 32 && !strcmp(out, float_table[i].repr), "fp_format_repr(%.17g) = \"%s\", want \"%s\"",
              float_table[i].v, out, float_table[i].repr);
        n = fp_format_value(out, float_table[i].v);
        out[n] = '\0';
        CHECK(n < 32 && !strcmp(out, float_table[i].value), "fp_format_value(%.17g) = \"%s\", want \"%s\"",
              float_table[i].v, out, float_table[i].value);
    }
    static const struct {
        double v;
        const char *s;
    } special[] = {{NAN, "NaN"}, {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = fp_format_value(out, special[i].v);
        out[n] = '\0';
        CHECK(!strcmp(out, special[i].s), "fp_format_value(%s) = \"%s\"", special[i].s, out);
    }

    /* Random bit patterns (a fixed xorshift sequence) and powers of two:
     * the output reads back as the same double, fits 32 bytes, and has a
     * point or an exponent, as Python's repr() always does.  (The Python
     * tests compare with repr() and floatToGoString() themselves.) */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    long bad = 0;
    for (long i = 0; i < 20000 + 2 * 2098; i++) {
        double v;
        if (i < 20000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v = fp_bitsd(x);
        } else {
            long e = (i - 20000) / 2 - 1074;
            v = ldexp((i & 1) ? -1.0 : 1.0, (int)e);
        }
        if (isnan(v) || isinf(v))
            continue;
        int ok = 1;
        for (int k = 0; k < 2; k++) {
            size_t n = k ? fp_format_value(out, v) : fp_format_repr(out, v);
            out[n] = '\0';
            char *e;
            double back = strtod(out, &e);
            ok = ok && n < 32 && *e == '\0' && (back == v || (v == 0 && back == 0)) &&
                 (strchr(out, '.') || strchr(out, 'e'));
        }
        if (!ok && bad++ < 5)
            CHECK(0, "formatting %a gave \"%s\"", v, out);
    }
    CHECK(bad == 0, "%ld doubles formatted wrongly", bad);
    fp_locale_restore(tok);
}

/* ---- main ---------------------------------------------------------- */

static uint32_t add_family(uint32_t type, const char *name, const char *help, const char *unit,
                           const char *const *labels, uint32_t nlabels, const double *bk, uint32_t nb)
{
    size_t lens[4];
    for (uint32_t i = 0; i < nlabels; i++)
        lens[i] = strlen(labels[i]);
    uint32_t idx = UINT32_MAX;
    fp_family_spec sp = {.type = type, .name = name, .name_len = strlen(name), .help = help,
                         .help_len = strlen(help), .unit = unit, .unit_len = strlen(unit), .labelnames = labels,
                         .labelname_lens = lens, .nlabels = nlabels, .buckets = bk, .nbuckets = nb};
    int rc = fp_family_add(&store, &sp, &idx);
    CHECK(rc == FP_OK, "fp_family_add(%s) = %d", name, rc);
    if (rc != FP_OK) {
        fprintf(stderr, "cannot continue\n");
        exit(1);
    }
    return idx;
}

/* ---- churn: removed series reused while others write and render ------ */

#define CHURN_THREADS 4
static uint32_t fam_churn;
static atomic_int churn_left;
static atomic_long churn_made;

/* Creates, increments and removes short-lived series (whose records come
 * back for reuse once the clock has moved two epochs on) while holding one
 * long-lived series through a cached pointer that is re-checked, as a
 * child is, after removals: its total must come out exact. */
static void *churner(void *arg)
{
    int t = (int)(intptr_t)arg;
    char who[16], k[32];
    snprintf(who, sizeof who, "w%d", t);
    const char *v[2] = {who, "keep"};
    size_t l[2] = {strlen(who), 4};
    fp_series *kept = NULL;
    uint32_t kept_gen = 0;
    uint64_t seen = fp_removals(&store);
    for (long i = 0; i < iters / 4; i++) {
        uint64_t r = fp_removals(&store);
        if (!kept || (r != seen && !fp_series_still(kept, kept_gen))) {
            CHECK(fp_series_get(&store, fam_churn, v, l, 1, 0, &kept) == FP_OK, "keep lookup");
            kept_gen = fp_series_gen(kept);
        }
        seen = r;
        fp_counter_inc(kept, 1.0);
        snprintf(k, sizeof k, "s%ld", i);
        const char *cv[2] = {who, k};
        size_t cl[2] = {strlen(who), strlen(k)};
        fp_series *se = NULL;
        int rc = fp_series_get(&store, fam_churn, cv, cl, 1, 0, &se);
        CHECK(rc == FP_OK, "churn create = %d", rc);
        if (rc == FP_OK) {
            atomic_fetch_add(&churn_made, 1);
            fp_counter_inc(se, 2.0);
            CHECK(fp_series_remove(&store, fam_churn, cv, cl) == FP_OK, "churn remove");
        }
        /* A label set removed and made again at once, again and again:
         * a render shows it once (churn_checker). */
        snprintf(k, sizeof k, "r%ld", i % 8);
        cl[1] = strlen(k);
        fp_series_remove(&store, fam_churn, cv, cl);
        rc = fp_series_get(&store, fam_churn, cv, cl, 1, 0, &se);
        CHECK(rc == FP_OK, "churn re-create = %d", rc);
        if (rc == FP_OK)
            fp_counter_inc(se, 2.0);
    }
    atomic_fetch_sub(&churn_left, 1);
    return NULL;
}

/* Moves the frozen clock on, so removed records become reusable. */
static void *clock_mover(void *arg)
{
    (void)arg;
    double t = 1700000000.5;
    while (atomic_load(&churn_left) > 0) {
        t += 0.25;
        fp_clock_freeze(t);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *churn_checker(void *arg)
{
    (void)arg;
    fp_buf b, side;
    fp_buf_init(&b);
    fp_buf_init(&side);
    long renders = 0;
    while (atomic_load(&churn_left) > 0 || renders < 4) {
        b.len = 0;
        CHECK(fp_render_family(&b, &side, &store, fam_churn, renders & 1, FP_ESC_UNDERSCORES) == FP_OK, "render");
        /* The re-created label sets shown in this render (CHURN_THREADS x 8 at most). */
        const char *shown[CHURN_THREADS * 8 + 1];
        size_t shown_len[CHURN_THREADS * 8 + 1], nshown = 0;
        /* Every line is a series of the family: no reused record shows
         * with another's labels or a torn value. */
        for (size_t i = 0; i < b.len;) {
            const char *nl = memchr(b.p + i, '\n', b.len - i);
            if (!nl)
                break;
            const char *line = b.p + i;
            size_t ll = (size_t)(nl - line);
            if (ll && line[0] != '#' && !memmem(line, ll, "_created", 8)) {
                int keep = memmem(line, ll, ",who=\"w", 7) && memmem(line, ll, "k=\"keep\"", 8);
                const char *sp = memrchr(line, ' ', ll);
                double val = sp ? strtod(sp + 1, NULL) : -1;
                /* a churned series: 0 (just made) or 2 (incremented) */
                CHECK(!strncmp(line, "churn_total{k=\"", 15) && (keep ? val >= 0 : val == 0.0 || val == 2.0),
                      "churn line %.*s", (int)ll, line);
                if (line[15] == 'r' && sp) {
                    size_t n = (size_t)(sp - line);
                    for (size_t j = 0; j < nshown; j++)
                        CHECK(shown_len[j] != n || memcmp(shown[j], line, n), "a render shows %.*s twice", (int)n,
                              line);
                    CHECK(nshown < CHURN_THREADS * 8, "more re-created label sets shown than there are");
                    if (nshown < CHURN_THREADS * 8) {
                        shown[nshown] = line;
                        shown_len[nshown++] = n;
                    }
                }
            }
            i = (size_t)(nl - b.p) + 1;
        }
        if (renders % 8 == 3) {
            const char *why = fp_store_check(&store, 0);
            CHECK(why == NULL, "check during churn: %s", why ? why : "");
        }
        renders++;
    }
    fp_buf_free(&b);
    fp_buf_free(&side);
    return NULL;
}

static void churn_phase(void)
{
    static const char *const labels[] = {"who", "k"};
    fam_churn = add_family(FP_COUNTER, "churn", "Churned series.", "", labels, 2, NULL, 0);
    uint64_t before = fp_load(&fp_hdr(&store)->nseries);
    atomic_store(&churn_left, CHURN_THREADS);
    pthread_t th[CHURN_THREADS + 2];
    for (int i = 0; i < CHURN_THREADS; i++)
        pthread_create(&th[i], NULL, churner, (void *)(intptr_t)i);
    pthread_create(&th[CHURN_THREADS], NULL, clock_mover, NULL);
    pthread_create(&th[CHURN_THREADS + 1], NULL, churn_checker, NULL);
    for (int i = 0; i < CHURN_THREADS + 2; i++)
        pthread_join(th[i], NULL);
    fp_clock_freeze(1700000000.5);
    char who[16];
    for (int t = 0; t < CHURN_THREADS; t++) {
        snprintf(who, sizeof who, "w%d", t);
        const char *v[2] = {who, "keep"};
        size_t l[2] = {strlen(who), 4};
        fp_series *se = NULL;
        CHECK(fp_series_get(&store, fam_churn, v, l, 0, 0, &se) == FP_OK, "keep series gone");
        if (se)
            CHECK(fp_counter_value(se) == (double)(iters / 4), "keep total %.17g, want %ld", fp_counter_value(se),
                  iters / 4);
    }
    long made = atomic_load(&churn_made);
    uint64_t records = fp_load(&fp_hdr(&store)->nseries) - before;
    CHECK(made == CHURN_THREADS * (iters / 4), "%ld churned series made", made);
    /* How much the concurrent phase reused depends on how far the clock
     * thread got while the churners ran (scheduling), so it is reported,
     * not checked; reuse itself is checked below with a clock the test
     * moves by hand. */
    printf("churn: %ld series made in %llu records\n", made, (unsigned long long)records);

    /* Sequential: batches of series made and removed, the clock moved two
     * reuse epochs on between batches.  From the third batch on each finds
     * the records removed two batches before: the records stop growing. */
    enum { BATCH = 64, BATCHES = 12 };
    double t = 1700000000.5 + 1e4;
    uint64_t start = fp_load(&fp_hdr(&store)->nseries);
    for (int b = 0; b < BATCHES; b++) {
        fp_clock_freeze(t += 2 * FP_REUSE_EPOCH);
        for (int i = 0; i < BATCH; i++) {
            char k[32];
            snprintf(k, sizeof k, "b%d-%d", b, i);
            const char *cv[2] = {"seq", k};
            size_t cl[2] = {3, strlen(k)};
            fp_series *se = NULL;
            CHECK(fp_series_get(&store, fam_churn, cv, cl, 1, 0, &se) == FP_OK, "sequential churn create");
            if (se)
                fp_counter_inc(se, 1.0);
            CHECK(fp_series_remove(&store, fam_churn, cv, cl) == FP_OK, "sequential churn remove");
        }
    }
    uint64_t grown = fp_load(&fp_hdr(&store)->nseries) - start;
    CHECK(grown <= 3 * BATCH, "%llu records for %d sequentially churned series (want at most %d)",
          (unsigned long long)grown, BATCH * BATCHES, 3 * BATCH);
    printf("churn, sequential: %d series made in %llu new records\n", BATCH * BATCHES, (unsigned long long)grown);
    fp_clock_freeze(1700000000.5);
}

/* ---- native histograms: concurrent observe, reads between ------------- */

#define NATIVE_THREADS 4
static uint32_t fam_native;
static atomic_int native_left;
static atomic_long native_reads;
static atomic_int native_gate; /* the reader is running */

/* The i-th value a native writer observes: magnitudes over 2^-40..2^40,
 * both signs, and some zeros, so that keys are claimed concurrently and
 * the table coarsens while others observe. */
static double native_value(long i, int t)
{
    uint64_t x = (uint64_t)(i * NATIVE_THREADS + t + 1) * 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    if (x % 17 == 0)
        return 0.0;
    double v = ldexp(1.0 + (double)(x >> 40) / (double)(1ull << 24), (int)(x % 81) - 40);
    return (x >> 8) & 1 ? -v : v;
}

static void *native_writer(void *arg)
{
    int t = (int)(intptr_t)arg;
    const fp_family *f = fp_family_get(&store, fam_native);
    fp_series *se = get0(fam_native, 1);
    const double *hb = fp_at(&store, f->buckets);
    while (!atomic_load(&native_gate))
        ;
    for (long i = 0; se && i < 4 * iters; i++) {
        double v = native_value(i, t);
        fp_histogram_observe_all(f, se, fp_bucket_index(hb, f->nbuckets, v), v);
    }
    atomic_fetch_sub(&native_left, 1);
    return NULL;
}

typedef struct {
    uint64_t last;
} native_state;

static uint64_t native_total(const fp_native *n)
{
    uint64_t total = n->zero_count;
    for (int side = 0; side < 2; side++) {
        const int64_t *d = side ? n->neg_deltas : n->pos_deltas;
        int64_t c = 0;
        for (uint32_t i = 0; i < (side ? n->nneg : n->npos); i++) {
            c += d[i];
            CHECK(c >= 0, "negative native bucket count %lld", (long long)c);
            total += (uint64_t)c;
        }
    }
    return total;
}

static int native_point(void *ctx, const fp_walk *w, const fp_point *p)
{
    native_state *st = ctx;
    const fp_native *n = NULL;
    CHECK(fp_point_native(w, p, &n) == FP_OK && n != NULL, "a native family's point without native buckets");
    if (!n)
        return 0;
    uint32_t nb = 0;
    for (uint32_t i = 0; i < n->npos_spans; i++)
        nb += n->pos_spans[i].length;
    CHECK(nb == n->npos, "spans cover %u positive buckets, %u deltas", nb, n->npos);
    CHECK(native_total(n) == n->count, "native count %llu is not its buckets' sum %llu",
          (unsigned long long)n->count, (unsigned long long)native_total(n));
    CHECK(p->count <= n->count, "classic count %llu above native %llu", (unsigned long long)p->count,
          (unsigned long long)n->count);
    CHECK(n->count >= st->last, "native count went from %llu to %llu", (unsigned long long)st->last,
          (unsigned long long)n->count);
    CHECK(n->schema >= FP_NH_SCHEMA_MIN && n->schema <= 8, "schema %d", (int)n->schema);
    st->last = n->count;
    return 0;
}

static void *native_reader(void *arg)
{
    (void)arg;
    native_state st = {0};
    long reads = 0;
    fp_buf pb;
    fp_buf_init(&pb);
    atomic_store(&native_gate, 1);
    while (atomic_load(&native_left) > 0 || reads < 4) {
        CHECK(fp_walk_family(&store, fam_native, native_point, &st) == 0, "native walk");
        /* The protobuf encoder over the same reads: one whole message. */
        pb.len = 0;
        CHECK(fp_render_family_pb(&pb, &store, fam_native, FP_ESC_UNDERSCORES) == FP_OK && !pb.oom,
              "native protobuf render");
        uint64_t len = 0;
        size_t at = 0;
        for (int shift = 0; at < pb.len && shift < 64; shift += 7) {
            unsigned char c = (unsigned char)pb.p[at++];
            len |= (uint64_t)(c & 0x7f) << shift;
            if (!(c & 0x80))
                break;
        }
        CHECK(len > 0 && at + len == pb.len, "native protobuf message of %llu bytes in %zu",
              (unsigned long long)len, pb.len);
        if (reads % 256 == 255) {
            const char *why = fp_store_check(&store, 0);
            CHECK(why == NULL, "check during native observes: %s", why ? why : "");
        }
        reads++;
    }
    atomic_fetch_add(&native_reads, reads);
    fp_buf_free(&pb);
    return NULL;
}

static void native_phase(void)
{
    static const double nb[3] = {0.0, 1.0, INFINITY};
    size_t unused = 0;
    uint32_t idx = UINT32_MAX;
    fp_family_spec sp = {.type = FP_HISTOGRAM, .name = "native_seconds", .name_len = 14, .help = "Native.",
                         .help_len = 7, .unit = "", .unit_len = 0, .labelnames = NULL, .labelname_lens = &unused,
                         .buckets = nb, .nbuckets = 3, .nh_factor = 1.01, .nh_zero_threshold = 0x1p-100,
                         .nh_max_zero_threshold = 0.0, .nh_max_buckets = 24};
    CHECK(fp_family_add(&store, &sp, &idx) == FP_OK, "native family");
    fam_native = idx;
    atomic_store(&native_left, NATIVE_THREADS);
    pthread_t th[NATIVE_THREADS + 1];
    for (int i = 0; i < NATIVE_THREADS; i++)
        pthread_create(&th[i], NULL, native_writer, (void *)(intptr_t)i);
    pthread_create(&th[NATIVE_THREADS], NULL, native_reader, NULL);
    for (int i = 0; i < NATIVE_THREADS + 1; i++)
        pthread_join(th[i], NULL);
    native_state st = {0};
    CHECK(fp_walk_family(&store, fam_native, native_point, &st) == 0, "native walk");
    uint64_t want = (uint64_t)NATIVE_THREADS * 4 * (uint64_t)iters;
    CHECK(st.last == want, "native count %llu, want %llu", (unsigned long long)st.last, (unsigned long long)want);
    printf("native: %llu observations, %ld reads\n", (unsigned long long)want, atomic_load(&native_reads));
}

/* ---- quantile windows --------------------------------------------------- */

/* A render whose `now` is stale (taken before a pause in which a writer
 * moved two epochs on) must not expire observations of the window it is
 * really in. */
static void check_stale_quantile_render(void)
{
    static fp_word cells[FP_Q_CELLS(5)];
    static uint64_t scratch[FP_Q_BUCKETS];
    double qs[1] = {0.5}, out[1];
    fp_q_window w = {10.0, 5, 1, qs}; /* epochs of 2 s */
    double t0 = 1000.0;
    fp_q_observe(&w, cells, 1.0, t0);        /* epoch 500 */
    fp_q_observe(&w, cells, 1.0, t0 + 4.0);  /* epoch 502, the window's oldest for epoch 506 */
    fp_q_observe(&w, cells, 1.0, t0 + 12.0); /* epoch 506: reclaims the slot of epoch 500 */
    fp_clock_freeze(t0 + 12.0);
    fp_q_values(&w, cells, t0 + 1.0, scratch, out, 1); /* a render whose clock says epoch 500 */
    CHECK(!isnan(out[0]) && fabs(out[0] - 1.0) < 0.02, "stale render: %.17g", out[0]);
    fp_clock_freeze(0);
}

/* ---- a read-only mapping of a store file ----------------------------- */

static void render_store(const fp_store *s, fp_buf *b)
{
    fp_buf side;
    fp_buf_init(&side);
    b->len = 0;
    void *tok = fp_locale_c();
    for (uint32_t f = 0; f < fp_family_count(s); f++) {
        int rc = fp_render_family(b, &side, s, f, 1, FP_ESC_UNDERSCORES);
        CHECK(rc == FP_OK, "fp_render_family(%u) = %d", f, rc);
    }
    fp_buf_free(&side);
    fp_locale_restore(tok);
}

/* A store file opened read-only renders what the writer's mapping does,
 * summaries with quantiles included, without writing: its mapping is
 * PROT_READ, so a write (a quantile window's snapshot) would fault. */
static void check_readonly_file(void)
{
    char path[] = "/tmp/fastprom-stress-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    if (fd < 0)
        return;
    close(fd);
    char err[512];
    fp_store rw, ro;
    CHECK(fp_store_open_readonly(&ro, path, err, sizeof err) == FP_ENOTFOUND, "%s",
          "an empty file not taken for a store being made");
    int rc = fp_store_open_file(&rw, path, 8u << 20, err, sizeof err);
    CHECK(rc == FP_OK, "fp_store_open_file: %s", err);
    if (rc != FP_OK)
        goto out;
    fp_clock_freeze(1700000000.5);
    static const char *const labels[] = {"kind"};
    static const double qs[] = {0.5, 0.9};
    size_t lens[] = {4};
    fp_family_spec sp = {.type = FP_SUMMARY, .name = "ro_seconds", .name_len = 10, .help = "", .unit = "",
                         .labelnames = labels, .labelname_lens = lens, .nlabels = 1, .quantiles = qs,
                         .nquantiles = 2, .max_age = 60.0, .age_buckets = 3};
    uint32_t fam = 0;
    rc = fp_family_add(&rw, &sp, &fam);
    CHECK(rc == FP_OK, "fp_family_add = %d", rc);
    const char *v[] = {"a"};
    size_t vl[] = {1};
    fp_series *se = NULL;
    rc = fp_series_get(&rw, fam, v, vl, 1, 0, &se);
    CHECK(rc == FP_OK && se, "fp_series_get = %d", rc);
    for (int i = 0; se && i < 100; i++)
        fp_summary_observe_all(&rw, fp_family_get(&rw, fam), se, (double)(i % 10));
    rc = fp_store_open_readonly(&ro, path, err, sizeof err);
    CHECK(rc == FP_OK && ro.readonly && ro.proc == 0, "fp_store_open_readonly = %d: %s", rc, err);
    if (rc == FP_OK) {
        CHECK(!fp_store_replaced(&ro), "%s", "a store that is there taken for replaced");
        fp_buf a, b;
        fp_buf_init(&a);
        fp_buf_init(&b);
        /* 30 s later: a new epoch, whose snapshot nobody has taken. */
        fp_clock_freeze(1700000030.5);
        render_store(&ro, &a);
        render_store(&rw, &b);
        CHECK(a.len == b.len && memcmp(a.p, b.p, a.len) == 0, "read-only render differs:\n%.*s\n--\n%.*s",
              (int)a.len, a.p, (int)b.len, b.p);
        CHECK(fp_store_check(&ro, 1) == NULL, "%s", "check through the read-only mapping");
        fp_buf_free(&a);
        fp_buf_free(&b);
        unlink(path);
        CHECK(fp_store_replaced(&ro), "%s", "a deleted store file not seen as replaced");
        fp_store_close(&ro);
    }
    fp_clock_freeze(0);
    fp_store_close(&rw);
out:
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        iters = strtol(argv[1], NULL, 10);
    if (iters <= 0 || iters % 80) {
        fprintf(stderr, "iterations must be a positive multiple of 80\n");
        return 2;
    }
    alarm(300); /* a hang (a livelock in a CAS loop) fails instead of blocking */
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    check_floats();
    fp_nh_init();
    CHECK(fp_q_selftest(), "FP_Q_BUCKETS (%u) does not match the sketch's parameters", FP_Q_BUCKETS);

    int rc = fp_store_open(&store, 256u << 20);
    if (rc != FP_OK) {
        fprintf(stderr, "fp_store_open = %d\n", rc);
        return 1;
    }
    fp_clock_freeze(1700000000.5);
    static const char *const clabels[] = {"method", "code"};
    static const char *const hlabels[] = {"path"};
    static const char *const slabels[] = {"kind"};
    fam_counter = add_family(FP_COUNTER, "requests", "Requests \"served\"\\ by\ncode.", "", clabels, 2, NULL, 0);
    fam_gauge = add_family(FP_GAUGE, "temperature_celsius", "A gauge.", "celsius", NULL, 0, NULL, 0);
    fam_hist = add_family(FP_HISTOGRAM, "latency_seconds", "A histogram.", "seconds", hlabels, 1, bounds, NBUCKETS);
    fam_summary = add_family(FP_SUMMARY, "payload_bytes", "A summary.", "bytes", slabels, 1, NULL, 0);
    CHECK(fp_family_count(&store) == 4, "%u families", fp_family_count(&store));

    atomic_store(&writers_left, NWRITERS);
    pthread_t w[NWRITERS], r[NRENDERERS];
    static rstate rs[NRENDERERS];
    for (int i = 0; i < NWRITERS; i++)
        if (pthread_create(&w[i], NULL, writer, (void *)(intptr_t)i)) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < NRENDERERS; i++)
        if (pthread_create(&r[i], NULL, renderer, &rs[i])) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < NWRITERS; i++)
        pthread_join(w[i], NULL);
    for (int i = 0; i < NRENDERERS; i++)
        pthread_join(r[i], NULL);

    check_totals();
    churn_phase();
    native_phase();
    check_stale_quantile_render();
    check_readonly_file();
    const char *why = fp_store_check(&store, 1);
    CHECK(why == NULL, "consistency check after the run: %s", why ? why : "");
    fp_store_close(&store);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    int nf = atomic_load(&failures);
    printf("stress: %d writers x %ld iterations, %ld raced label sets, %ld + %ld renders, %ld exemplars read, "
           "%ld checks, %d failed, %.1f s\n",
           NWRITERS, iters, atomic_load(&race_gen), rs[0].renders, rs[1].renders, rs[0].exemplars + rs[1].exemplars,
           atomic_load(&checks), nf, secs);
    return nf ? 1 : 0;
}
