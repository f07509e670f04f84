/* store_seeds.c: store files for store_open.c's corpus that the Python
 * API cannot make: left by a process that died at each of the core's
 * crash points, and damaged in chosen ways.
 *
 *   store_seeds OUTDIR [STOREFILE...]
 *
 * Built with -DFASTPROM_DEBUG, so that FASTPROM_CRASH_POINT=<name> makes
 * the process exit at that point (crash.h).  For each point a child makes
 * a store file (families of every type, series, exemplars, removed series
 * old enough to be reused), then goes on with one more of each operation,
 * the crash point set before one of them; it exits there, as a SIGKILL
 * would leave it: a series published but not linked, a link claimed by a
 * dead process, a reuse half done, an exemplar left busy, a half-made
 * header.  Each STOREFILE (real ones, made by make_seeds.py) is written
 * again with the damage listed in damage() below, found through the
 * record layout itself (records.h), so the shapes follow it when it
 * changes.
 *
 * Every file goes to OUTDIR packed as store_open.c reads it (a zero run:
 * 0x00 and LEB128 of its length - 1). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"

#define T0 1700000000.0

/* ---- files ------------------------------------------------------------ */

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 20, n = 0;
    char *p = malloc(cap);
    for (size_t got; p && (got = fread(p + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *q = realloc(p, cap *= 2);
            if (!q)
                free(p);
            p = q;
        }
    }
    fclose(f);
    *len = n;
    return p;
}

static int write_packed(const char *outdir, const char *name, const char *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    FILE *out = fopen(path, "wb");
    if (!out)
        return -1;
    for (size_t i = 0; i < n;) {
        if (p[i]) {
            fputc((unsigned char)p[i++], out);
            continue;
        }
        size_t j = i;
        while (j < n && !p[j])
            j++;
        unsigned long long r = j - i - 1;
        fputc(0, out);
        do {
            int b = (int)(r & 0x7f);
            r >>= 7;
            fputc(b | (r ? 0x80 : 0), out);
        } while (r);
        i = j;
    }
    return fclose(out) == 0 ? 0 : -1;
}

/* ---- stores left by a crash ---------------------------------------------- */

/* Each crash point, and the step before which it is set: 0 opening the
 * file, 1 adding a family, 2 a creation that reuses a removed record, 3 a
 * fresh creation, 4 an exemplar over an old one, 5 a removal. */
static const struct {
    const char *point;
    int step;
} cases[] = {{"layout", 0}, {"layout-done", 0}, {"attach", 0}, {"family", 1}, {"reuse-popped", 2},
             {"reuse-tombstoned", 2}, {"series-published", 2}, {"series-published", 3}, {"series-claimed", 3},
             {"series-linked", 3}, {"exemplar", 4}, {"removed", 5}, {"removed-queued", 5}};
#define NCASES (sizeof cases / sizeof cases[0])

static uint32_t add(fp_store *s, uint32_t type, const char *name, uint32_t mpmode)
{
    static const double buckets[] = {0.1, 1.0, INFINITY}, quantiles[] = {0.5, 0.9};
    static const char *const ln[] = {"path", "code"};
    static const size_t ll[] = {4, 4};
    fp_family_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.type = type;
    sp.name = name;
    sp.name_len = strlen(name);
    sp.help = "Made by store_seeds.\n\"quoted\" \\";
    sp.help_len = strlen(sp.help);
    sp.unit = "";
    sp.labelnames = ln;
    sp.labelname_lens = ll;
    sp.nlabels = 2;
    sp.buckets = buckets;
    sp.nbuckets = type == FP_HISTOGRAM ? 3 : 0;
    sp.mpmode = mpmode;
    sp.quantiles = quantiles;
    sp.nquantiles = type == FP_SUMMARY ? 2 : 0;
    sp.max_age = 60.0;
    sp.age_buckets = 1;
    uint32_t idx = UINT32_MAX;
    if (fp_family_add(s, &sp, &idx) != FP_OK) {
        fprintf(stderr, "store_seeds: cannot add %s\n", name);
        _exit(1);
    }
    return idx;
}

/* Finds or creates {path=p, code=c} and updates it (with an exemplar
 * where the type has them). */
static void touch(fp_store *s, uint32_t fam, const char *p, const char *c, double v)
{
    const char *vals[2] = {p, c};
    size_t lens[2] = {strlen(p), strlen(c)};
    fp_series *se;
    if (fp_series_get(s, fam, vals, lens, 1, 0, &se) != FP_OK)
        return;
    const fp_family *f = fp_family_get(s, fam);
    static const char ex[] = "{trace_id=\"0af7651916cd43dd\"}";
    switch (f->type) {
    case FP_COUNTER:
        fp_counter_inc(se, v);
        fp_exemplar_put(s, se, 1, 0, ex, sizeof ex - 1, v, fp_now());
        break;
    case FP_GAUGE:
        fp_gauge_set(se, v);
        fp_gauge_touch(se, fp_now());
        break;
    case FP_HISTOGRAM: {
        uint32_t i = fp_bucket_index(fp_at(s, f->buckets), f->nbuckets, v);
        fp_histogram_observe(se, i, f->nbuckets, v);
        fp_exemplar_put(s, se, f->nbuckets, i, ex, sizeof ex - 1, v, fp_now());
        break;
    }
    case FP_SUMMARY:
        fp_summary_observe_all(s, f, se, v);
        break;
    }
}

static void drop(fp_store *s, uint32_t fam, const char *p, const char *c)
{
    const char *vals[2] = {p, c};
    size_t lens[2] = {strlen(p), strlen(c)};
    fp_series_remove(s, fam, vals, lens);
}

/* The child: makes the store, then dies at `point`, set before `step`
 * (or exits 0 if it never reaches it). */
static void child(const char *path, const char *point, int step)
{
    fp_clock_freeze(T0);
    if (step == 0)
        setenv("FASTPROM_CRASH_POINT", point, 1);
    fp_store s;
    char err[1024];
    if (fp_store_open_file(&s, path, FP_STORE_MIN, err, sizeof err) != FP_OK) {
        fprintf(stderr, "store_seeds: %s\n", err);
        _exit(1);
    }
    uint32_t c = add(&s, FP_COUNTER, "requests", FP_MP_NONE), g = add(&s, FP_GAUGE, "inflight", FP_MP_LIVESUM);
    uint32_t h = add(&s, FP_HISTOGRAM, "latency_seconds", FP_MP_NONE), q = add(&s, FP_SUMMARY, "size", FP_MP_NONE);
    char p[16];
    for (int i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "/p%d", i);
        touch(&s, c, p, "200", i + 0.5);
        touch(&s, g, p, "200", i);
        touch(&s, h, p, i % 2 ? "500" : "200", 0.05 * i);
    }
    touch(&s, q, "/p0", "200", 10.0);
    drop(&s, c, "/p1", "200");
    drop(&s, c, "/p2", "200");
    drop(&s, h, "/p3", "500");
    /* Old enough to be reused by the next creations. */
    fp_clock_freeze(T0 + 10);
    for (int k = 1; k <= 5; k++) {
        if (k == step)
            setenv("FASTPROM_CRASH_POINT", point, 1);
        switch (k) {
        case 1: add(&s, FP_COUNTER, "late_family", FP_MP_NONE); break;
        case 2: touch(&s, c, "/new", "201", 1.0); break;
        case 3: touch(&s, g, "/new", "201", 2.0); break;
        case 4: touch(&s, c, "/p0", "200", 1.0); break;
        case 5: drop(&s, c, "/p4", "200"); break;
        }
    }
    _exit(0);
}

/* A store file's bytes, seen through the layout (nothing is checked:
 * these are files this program made, or fastprom did). */
static fp_store view(char *p, size_t n)
{
    fp_store s;
    memset(&s, 0, sizeof s);
    s.base = p;
    s.size = n;
    s.fd = 0; /* a shared store's layout: per-process gauges and all */
    return s;
}

/* The first series in the table that is not linked into its list: the
 * one a crash at series-published (a fresh creation) leaves. */
static fp_series *unlinked(fp_store *s)
{
    fp_header *h = fp_hdr(s);
    fp_word *slots = fp_at(s, h->slots);
    for (uint64_t i = 0; i < h->nslots; i++) {
        uint64_t off = fp_load(&slots[i]);
        if (off && off != FP_TOMB && fp_load32_acq(&((fp_series *)fp_at(s, off))->linked) != FP_LINKED)
            return fp_at(s, off);
    }
    return NULL;
}

static int crash_seeds(const char *outdir)
{
    char dir[] = "/tmp/fastprom-store-seeds-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return -1;
    }
    char path[sizeof dir + 32], name[128];
    snprintf(path, sizeof path, "%s/fastprom.store", dir);
    int made = 0;
    for (size_t i = 0; i < NCASES; i++) {
        unlink(path);
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return -1;
        }
        if (pid == 0)
            child(path, cases[i].point, cases[i].step);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        size_t n;
        char *p = NULL;
        /* 86: died at the point; 0: never reached it (still a seed). */
        if (!WIFEXITED(status) || (WEXITSTATUS(status) != 86 && WEXITSTATUS(status) != 0) ||
            !(p = read_all(path, &n))) {
            fprintf(stderr, "store_seeds: no seed for %s (status %d)\n", cases[i].point, status);
            return -1;
        }
        if (WEXITSTATUS(status) == 0)
            printf("store_seeds: %s (step %d) was never reached\n", cases[i].point, cases[i].step);
        snprintf(name, sizeof name, "crash-%s-%d", cases[i].point, cases[i].step);
        made += write_packed(outdir, name, p, n) == 0;
        fp_store s = view(p, n);
        fp_series *se = n >= sizeof(fp_header) && fp_hdr(&s)->magic == FP_MAGIC ? unlinked(&s) : NULL;
        if (se) {
            /* Damage on top of the crash: the unlinked record's next names
             * its list's head, or its family's tail names it.  Linking it
             * then must not close a loop (fp_store_repair). */
            fp_family *f = fp_family_get(&s, se->family);
            uint64_t was_next = fp_load(&se->next), was_tail = fp_load(&f->tail);
            fp_put(&se->next, fp_load(&f->head));
            snprintf(name, sizeof name, "crash-%s-%d-next_into_list", cases[i].point, cases[i].step);
            made += write_packed(outdir, name, p, n) == 0;
            fp_put(&se->next, was_next);
            fp_put(&f->tail, (uint64_t)((char *)se - s.base));
            snprintf(name, sizeof name, "crash-%s-%d-tail_is_it", cases[i].point, cases[i].step);
            made += write_packed(outdir, name, p, n) == 0;
            fp_put(&f->tail, was_tail);
        }
        free(p);
    }
    unlink(path);
    rmdir(dir);
    return made;
}

/* ---- damaged copies of real stores ---------------------------------------- */

/* Writes one damaged copy of the file (p, n) per shape.  Returns how many. */
static int damage(const char *outdir, const char *base, const char *p, size_t n)
{
    if (n < sizeof(fp_header) || ((const fp_header *)p)->magic != FP_MAGIC)
        return 0;
    char *c = malloc(n + 4096), name[512];
    if (!c)
        return 0;
    int made = 0;
    fp_header fresh;
    memset(&fresh, 0, sizeof fresh);
    fp_arena_layout(&fresh, n);
    uint64_t fresh_top = fp_load(&fresh.top), top = fp_load(&((const fp_header *)p)->top);
#define SHAPE(label, len, edit)                                                                                    \
    do {                                                                                                            \
        memcpy(c, p, n);                                                                                            \
        fp_header *h = (fp_header *)c;                                                                              \
        (void)h;                                                                                                    \
        edit;                                                                                                       \
        snprintf(name, sizeof name, "%s-%s", base, label);                                                          \
        made += write_packed(outdir, name, c, len) == 0;                                                            \
    } while (0)
    /* Left half-made: no magic and no counts, so it is laid out again,
     * though its tables and arena are not empty. */
    SHAPE("half_made", n, {
        h->magic = 0;
        fp_put(&h->nseries, 0);
        atomic_store(&h->nfamilies, 0);
        fp_put(&h->nprocs, 0);
    });
    /* The same with junk where the next records go. */
    SHAPE("half_made_junk", n, {
        h->magic = 0;
        fp_put(&h->nseries, 0);
        atomic_store(&h->nfamilies, 0);
        fp_put(&h->nprocs, 0);
        memset(c + fresh_top, 0xa5, n - fresh_top < 65536 ? n - fresh_top : 65536);
        memset(c + h->slots, 0x5a, 64);
    });
    /* Junk past the top, where new records are placed. */
    SHAPE("junk_past_top", n, memset(c + top, 0xa5, n - top < 65536 ? n - top : 65536));
    SHAPE("truncated", n / 2, (void)0);
    SHAPE("grown", n + 4096, memset(c + n, 0, 4096));
    SHAPE("other_version", n, h->version = FP_LAYOUT_VERSION - 1);
    SHAPE("top_at_end", n, fp_put(&h->top, n));
    SHAPE("top_at_layout", n, fp_put(&h->top, fresh_top));
#undef SHAPE
    free(c);
    return made;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store_seeds OUTDIR [STOREFILE...]\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    int crashed = crash_seeds(argv[1]), damaged = 0;
    for (int i = 2; i < argc; i++) {
        size_t n;
        char *p = read_all(argv[i], &n);
        if (!p) {
            fprintf(stderr, "store_seeds: cannot read %s\n", argv[i]);
            return 1;
        }
        const char *slash = strrchr(argv[i], '/');
        damaged += damage(argv[1], slash ? slash + 1 : argv[i], p, n);
        free(p);
    }
    printf("store_seeds: %d store files left by a crash, %d damaged copies\n", crashed, damaged);
    return crashed > 0 ? 0 : 1;
}
