/* store_open.c: libFuzzer target for opening a store file.
 *
 * The input is a store file, its runs of zero bytes packed (a store file
 * is mostly zeros; packing keeps the bytes that matter few, so mutations
 * land on them): a 0x00 byte and a LEB128 count c stand for c + 1 zero
 * bytes, every other byte stands for itself.  The file, at most 4 MiB, is
 * written to a memfd and opened with fp_store_open_file as a worker opens
 * it.  A refused file is a normal outcome.  One that opens is repaired
 * (as the binding does), checked, rendered in every view and scheme, walked
 * as the Python sample view walks it, updated (a series of each family
 * found or created and incremented, new series, exemplars, removals, new
 * families, a family cleared), and rendered and checked again.
 *
 * Besides crashes, hangs and sanitizer reports it fails (aborts) when a
 * store that opened does not pass its own consistency check afterwards:
 * what the check accepted, the updates must keep valid.
 *
 * FASTPROM_FUZZ_OUTPUT=1 also checks the output's well-formedness, as the
 * render target does; off by default, since a damaged file's label text
 * and exemplars are only checked as far as the consistency check goes. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_FILE (4u << 20)
#define MAX_FAMILIES_TOUCHED 24

static int memfd = -1;
static char path[64];
static int check_output;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    memfd = memfd_create("fastprom-fuzz-store", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);
    const char *o = getenv("FASTPROM_FUZZ_OUTPUT");
    check_output = o && *o == '1';
    /* Created timestamps, summary windows and the reuse epochs of removed
     * series read this clock: pinned, so a run is repeatable.  Seeds are
     * made at 1700000000, so their removed series are old enough here. */
    fp_clock_freeze(1700000100.0);
    return 0;
}

/* Writes the unpacked file to the memfd: nonzero stretches with pwrite,
 * zero runs as holes.  Returns the file's length. */
static size_t write_file(const uint8_t *in, size_t n)
{
    if (ftruncate(memfd, 0) != 0)
        abort();
    size_t i = 0, o = 0;
    while (i < n && o < MAX_FILE) {
        if (in[i]) {
            size_t s = i;
            while (i < n && in[i] && o + (i - s) < MAX_FILE)
                i++;
            if (pwrite(memfd, in + s, i - s, (off_t)o) != (ssize_t)(i - s))
                abort();
            o += i - s;
            continue;
        }
        i++;
        uint64_t run = 0;
        for (int shift = 0; i < n && shift < 35; shift += 7) {
            uint8_t b = in[i++];
            run |= (uint64_t)(b & 0x7f) << shift;
            if (!(b & 0x80))
                break;
        }
        run += 1;
        o += run < MAX_FILE - o ? run : MAX_FILE - o;
    }
    if (ftruncate(memfd, (off_t)o) != 0)
        abort();
    return o;
}

/* The label values of a live series' text, in its family's label-name
 * order (a per-process series' pid left out), unescaped into `vals`;
 * 1, or 0 when the text is not that. */
static int series_values(const fp_store *s, const fp_family *f, const fp_series *se, fp_buf *text, fp_buf *vals,
                         const char **vp, size_t *vl)
{
    uint32_t tl = fp_load32_acq(&se->text_len);
    text->len = 0;
    if (!fp_buf_reserve(text, (size_t)tl + 8))
        return 0;
    fp_text_read(s, fp_load(&se->text), tl, text->p);
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    size_t *starts = calloc(f->nlabels + 1, sizeof *starts);
    int *seen = calloc(f->nlabels + 1, sizeof *seen);
    int ok = starts && seen;
    size_t pos = 0, nlen;
    const char *name;
    fp_buf one;
    fp_buf_init(&one);
    vals->len = 0;
    while (ok) {
        int rc = fp_label_next(text->p, tl, &pos, &name, &nlen, &one);
        if (rc <= 0) {
            ok = rc == 0;
            break;
        }
        for (uint32_t j = 0; j < f->nlabels; j++) {
            const char *want = fp_at(s, ln[j]);
            if (strlen(want) == nlen && !memcmp(want, name, nlen) && !seen[j]) {
                seen[j] = 1;
                starts[j] = vals->len;
                vl[j] = one.len;
                fp_buf_put(vals, one.p, one.len);
                break;
            }
        }
    }
    for (uint32_t j = 0; ok && j < f->nlabels; j++)
        ok = seen[j];
    if (vals->oom || one.oom)
        ok = 0;
    for (uint32_t j = 0; ok && j < f->nlabels; j++)
        vp[j] = vals->len ? vals->p + starts[j] : "";
    fp_buf_free(&one);
    free(starts);
    free(seen);
    return ok;
}

static void put_exemplar(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot, const char *text, double v)
{
    (void)fp_exemplar_put(s, se, nslots, slot, text, strlen(text), v, fp_now());
}

/* One update of a series, as the binding's methods do it. */
static void update(fp_store *s, const fp_family *f, fp_series *se, double v)
{
    switch (f->type) {
    case FP_COUNTER:
        fp_counter_inc(se, v);
        put_exemplar(s, se, 1, 0, "{trace_id=\"fz\"}", v);
        break;
    case FP_GAUGE:
        fp_gauge_add(se, v);
        fp_gauge_touch(se, fp_now());
        break;
    case FP_HISTOGRAM: {
        const double *b = fp_at(s, f->buckets);
        uint32_t i = fp_bucket_index(b, f->nbuckets, v);
        fp_histogram_observe(se, i, f->nbuckets, v);
        put_exemplar(s, se, f->nbuckets, i, "{span=\"a\\\"b\\\\c\\n\"}", v);
        break;
    }
    case FP_SUMMARY:
        fp_summary_observe_all(s, f, se, v);
        break;
    }
}

/* The updates a worker that declares the same metrics makes. */
static void updates(fp_store *s, uint8_t salt)
{
    uint32_t n = fp_family_count(s);
    fp_buf text, vals;
    fp_buf_init(&text);
    fp_buf_init(&vals);
    for (uint32_t i = 0; i < n && i < MAX_FAMILIES_TOUCHED; i++) {
        fp_family *f = fp_family_get(s, i);
        if (!f)
            continue;
        uint32_t nl = f->nlabels;
        const char **vp = calloc(nl + 1, sizeof *vp);
        size_t *vl = calloc(nl + 1, sizeof *vl);
        if (!vp || !vl) {
            free(vp);
            free(vl);
            continue;
        }
        /* A series with new label values: created, updated, and for every
         * other family removed again. */
        char mine[32];
        int ml = snprintf(mine, sizeof mine, "fz%u\"\\\n%u", i, salt);
        for (uint32_t j = 0; j < nl; j++) {
            vp[j] = mine;
            vl[j] = (size_t)ml;
        }
        fp_series *se = NULL;
        int rc = fp_series_get(s, i, vp, vl, 1, 0, &se);
        if (rc == FP_EFULL || rc == FP_ENOMEM)
            rc = fp_series_get(s, i, vp, vl, 1, 1, &se); /* as the binding falls back to overflow */
        if (rc == FP_OK)
            update(s, f, se, 1.5);
        if (i % 2)
            (void)fp_series_remove(s, i, vp, vl);

        /* The family's first live series, found again by its own label
         * values (the lookup an existing worker makes), updated, and the
         * second one removed by its values. */
        int k = 0;
        for (fp_off off = fp_load_acq(&f->head); off && k < 2; off = fp_load_acq(&((fp_series *)fp_at(s, off))->next)) {
            fp_series *old = fp_at(s, off);
            if (!fp_series_live(old))
                continue;
            if (!series_values(s, f, old, &text, &vals, vp, vl))
                break;
            if (k == 0) {
                update(s, f, old, 0.25);
                fp_series *again = NULL;
                if (fp_series_get(s, i, vp, vl, 1, 0, &again) == FP_OK)
                    update(s, f, again, 2.0);
            } else {
                (void)fp_series_remove(s, i, vp, vl);
            }
            k++;
        }
        free(vp);
        free(vl);
    }
    fp_buf_free(&text);
    fp_buf_free(&vals);

    /* Families a new worker declares: one of each type (found or added),
     * and a family already there declared with another shape. */
    static const double buckets[] = {0.5, 1.0, INFINITY};
    static const double quantiles[] = {0.5, 0.99};
    static const char *const lnames[] = {"path"};
    static const size_t lnl[] = {4};
    static const char *const types[] = {"fuzz_c", "fuzz_g", "fuzz_h", "fuzz_s"};
    for (uint32_t t = FP_COUNTER; t <= FP_SUMMARY; t++) {
        fp_family_spec sp = {0};
        sp.type = t;
        sp.name = types[t - 1];
        sp.name_len = strlen(sp.name);
        sp.help = "Fuzz.";
        sp.help_len = 5;
        sp.unit = "";
        sp.labelnames = lnames;
        sp.labelname_lens = lnl;
        sp.nlabels = 1;
        sp.buckets = buckets;
        sp.nbuckets = t == FP_HISTOGRAM ? 3 : 0;
        sp.mpmode = t == FP_GAUGE ? FP_MP_LIVESUM : FP_MP_NONE;
        sp.quantiles = quantiles;
        sp.nquantiles = t == FP_SUMMARY ? 2 : 0;
        sp.max_age = 600.0;
        sp.age_buckets = 5;
        uint32_t idx;
        if (fp_family_add(s, &sp, &idx) == FP_OK) {
            const char *v = "/x";
            size_t l = 2;
            fp_series *se;
            if (fp_series_get(s, idx, &v, &l, 1, 0, &se) == FP_OK)
                update(s, fp_family_get(s, idx), se, 3.0);
        }
        if (n) {
            fp_family *f0 = fp_family_get(s, 0);
            if (f0 && f0->type != t) {
                sp.name = fp_family_name(s, f0);
                sp.name_len = f0->name_len;
                (void)fp_family_add(s, &sp, &idx); /* FP_EMISMATCH */
            }
        }
    }
    if (n)
        fp_family_clear(s, n - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_file(data, size);
    fp_store s;
    char err[1024];
    /* The size asked for only matters for an empty (new) file. */
    if (fp_store_open_file(&s, path, FP_STORE_MIN, err, sizeof err) != FP_OK)
        return 0;
    fp_store_repair(&s);
    const char *why = fp_store_check(&s, 0);
    if (why) {
        fprintf(stderr, "opened, then repaired, the store fails its check: %s\n", why);
        abort();
    }
    (void)fp_store_check(&s, 1); /* counts may disagree in a damaged file: only run */
    fz_render_store(&s, NULL, NULL, check_output);
    updates(&s, size ? data[0] : 0);
    /* Time passes: removed series become reusable, windows move on. */
    fp_clock_freeze(1700000100.0 + 3 * FP_REUSE_EPOCH);
    updates(&s, size ? data[size - 1] : 1);
    fp_clock_freeze(1700000100.0);
    fz_render_store(&s, NULL, NULL, check_output);
    why = fp_store_check(&s, 0);
    if (why) {
        fprintf(stderr, "after updates, the store fails its check: %s\n", why);
        abort();
    }
    fp_store_close(&s);
    return 0;
}
