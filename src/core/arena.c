/* arena.c: mapping, locking, allocation, the process table and the
 * consistency check (see arena.h). */
#define _DEFAULT_SOURCE
#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "labels.h"

/* ---- allocation ------------------------------------------------------ */

fp_off fp_arena_alloc(fp_store *s, uint64_t size, int overflow)
{
    fp_header *h = fp_hdr(s);
    uint64_t limit = overflow ? h->size : h->size - h->reserve;
    if (size > limit)
        return 0;
    size = (size + FP_ALIGN - 1) & ~(uint64_t)(FP_ALIGN - 1);
    uint64_t off = fp_load(&h->top);
    do {
        if (off > limit || size > limit - off)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&h->top, &off, off + size, memory_order_relaxed,
                                                    memory_order_relaxed));
    return off;
}

fp_off fp_arena_strdup(fp_store *s, const char *p, size_t len, int overflow)
{
    fp_off off = fp_arena_alloc(s, len + 1, overflow);
    if (off) {
        memcpy(fp_at(s, off), p, len);
        ((char *)fp_at(s, off))[len] = '\0';
    }
    return off;
}

/* ---- layout ----------------------------------------------------------- */

/* Fills in a header's sizes and table offsets for an arena of `size`
 * bytes; the same size always gives the same layout. */
static void layout(fp_header *h, uint64_t size)
{
    h->version = FP_LAYOUT_VERSION;
    h->size = size;
    h->max_families = FP_MAX_FAMILIES;
    h->max_procs = FP_MAX_PROCS;
    /* One slot per KiB of arena, a power of two: 256K slots (2 MiB, touched
     * as series arrive) for the default 256 MiB.  At most 3/4 are used by
     * ordinary series, up to 7/8 with overflow series. */
    uint64_t nslots = 1024;
    while (nslots * 1024 < size)
        nslots <<= 1;
    h->nslots = nslots;
    h->max_series = nslots / 4 * 3;
    h->max_series_overflow = nslots / 8 * 7;
    h->reserve = size / 32 < (1u << 20) ? size / 32 : (1u << 20);
    uint64_t at = (sizeof(fp_header) + FP_ALIGN - 1) & ~(uint64_t)(FP_ALIGN - 1);
    h->families = at;
    h->slots = h->families + sizeof(fp_word) * FP_MAX_FAMILIES;
    h->procs = h->slots + sizeof(fp_word) * nslots;
    fp_put(&h->top, h->procs + sizeof(fp_proc) * FP_MAX_PROCS);
}

/* Lays out a fresh arena of `size` bytes (zeroed).  FP_OK or FP_ENOMEM. */
static int init_arena(fp_store *s, uint64_t size)
{
    fp_header *h = fp_hdr(s);
    layout(h, size);
    if (fp_load(&h->top) > size)
        return FP_ENOMEM;
    /* The magic goes last: a process that maps a half-made file sees none. */
    fp_store_rel((fp_word *)&h->magic, FP_MAGIC);
    return FP_OK;
}

int fp_store_open(fp_store *s, uint64_t size)
{
    if (size < FP_STORE_MIN)
        size = FP_STORE_MIN;
    s->base = NULL;
    s->fd = -1;
    s->proc = 0;
    s->path = NULL;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return FP_ENOMEM;
    s->base = base;
    s->size = size;
    if (init_arena(s, size) != FP_OK) {
        munmap(base, size);
        s->base = NULL;
        return FP_ENOMEM;
    }
    return FP_OK;
}

/* ---- the process table ------------------------------------------------ */

/* The start time of a process in clock ticks since boot, 0 if unknown. */
static uint64_t proc_start(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* Fields after the command name, which is in parentheses and may hold
     * anything: starttime is the 20th field after the closing one. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    for (int field = 0; field < 20 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

int fp_store_attach_process(fp_store *s, int forked)
{
    fp_header *h = fp_hdr(s);
    if (forked)
        if (forked && s->fd >= 0 && s->path) {
        int fd = open(s->path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            return FP_EFILE;
        close(s->fd);
        s->fd = fd;
    }
    fp_proc *procs = fp_at(s, h->procs);
    long pid = (long)getpid();
    /* Entries are claimed once and never reused: series of a dead process
     * keep pointing at its entry, which must keep saying it is dead. */
    uint64_t i = fp_add(&h->nprocs, 1);
    if (i >= h->max_procs) {
        s->proc = 0;
        return FP_EFULL;
    }
    fp_put(&procs[i].start, proc_start(pid));
    fp_store_rel(&procs[i].pid, (uint64_t)pid);
    s->proc = (uint32_t)i + 1;
    return FP_OK;
}

int fp_proc_alive(const fp_store *s, uint32_t proc)
{
    fp_header *h = fp_hdr(s);
    if (proc == 0 || proc > h->max_procs)
        return 1; /* unknown: count it as alive rather than lose it */
    const fp_proc *e = (const fp_proc *)fp_at(s, h->procs) + (proc - 1);
    long pid = (long)fp_load_acq(&e->pid);
    if (pid <= 0)
        return 0;
    if (pid == (long)getpid())
        return s->proc == proc;
    if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
        return 0;
    /* A start time we cannot read now (say /proc is hidden) proves nothing. */
    uint64_t start = fp_load(&e->start), now = start ? proc_start(pid) : 0;
    return start == 0 || now == 0 || now == start;
}

/* ---- locking ------------------------------------------------------------ */

/* flock, retried when a signal interrupts the wait.  0 or -1 (errno set). */
static int lock_file(int fd, int op)
{
    int rc;
    while ((rc = flock(fd, op)) != 0 && errno == EINTR)
        ;
    return rc;
}

/* Family creation is rare: one lock for every store of the process.  A
 * fork waits until no thread holds it (the prepare handler takes it), so a
 * child never starts with it held by a thread that is not there. */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void before_fork(void) { pthread_mutex_lock(&create_lock); }
static void after_fork(void) { pthread_mutex_unlock(&create_lock); }
static void install_atfork(void) { pthread_atfork(before_fork, after_fork, after_fork); }

int fp_arena_lock(fp_store *s)
{
    pthread_once(&atfork_once, install_atfork);
    pthread_mutex_lock(&create_lock);
    if (s->fd >= 0 && lock_file(s->fd, LOCK_EX) != 0) {
        pthread_mutex_unlock(&create_lock);
        return FP_EFILE;
    }
    return FP_OK;
}

void fp_arena_unlock(fp_store *s)
{
    if (s->fd >= 0)
        lock_file(s->fd, LOCK_UN);
    pthread_mutex_unlock(&create_lock);
}

/* ---- the consistency check --------------------------------------------- */

/* 1 if [off, off + len) lies within the arena's allocated part, aligned.
 * The top is read afresh: records published since the last read are
 * within the new top. */
static int in_arena(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    if (top > s->size)
        top = s->size;
    return off >= sizeof(fp_header) && off <= top && len <= top - off && (off & (FP_ALIGN - 1)) == 0;
}

/* 1 if a NUL-terminated string of `len` bytes, with no NUL before its end,
 * starts at off inside the arena. */
static int string_ok(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    if (top > s->size)
        top = s->size;
    return off >= sizeof(fp_header) && off < top && len < top - off &&
           memchr(fp_at(s, off), '\0', (size_t)len + 1) == (const char *)fp_at(s, off) + len;
}

/* 1 if `len` bytes followed by a NUL start at off inside the arena (NUL
 * bytes inside are allowed: label values and help text may hold them). */
static int bytes_ok(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    if (top > s->size)
        top = s->size;
    return off >= sizeof(fp_header) && off < top && len < top - off && ((const char *)fp_at(s, off))[len] == '\0';
}

/* The length of the NUL-terminated string at off, or -1 if it runs out of the arena. */
static int64_t string_len(const fp_store *s, uint64_t off)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    if (top > s->size)
        top = s->size;
    if (off < sizeof(fp_header) || off >= top)
        return -1;
    const char *p = fp_at(s, off), *z = memchr(p, '\0', (size_t)(top - off));
    return z ? z - p : -1;
}

static const char *check_family(const fp_store *s, const fp_family *f, uint32_t i)
{
    uint32_t cells = fp_cells_for(f->type, f->nbuckets, f->nquantiles, f->age_buckets);
    if (f->index != i || cells == 0 || f->ncells != cells || f->mpmode >= FP_MP_COUNT ||
        (f->mpmode != FP_MP_NONE && f->type != FP_GAUGE) || f->nlabels > FP_MAX_LABELS)
        return "corrupt (a metric family is damaged)";
    if (!string_ok(s, f->name, f->name_len) || !bytes_ok(s, f->help, f->help_len) ||
        !string_ok(s, f->unit, f->unit_len))
        return "corrupt (a metric family's name, help or unit is damaged)";
    uint64_t spare = fp_load(&f->spare);
    if (spare && !in_arena(s, spare, sizeof(fp_series) + 8ull * cells))
        return "corrupt (a metric family is damaged)";
    if (f->type == FP_HISTOGRAM) {
        if (!in_arena(s, f->buckets, 8ull * f->nbuckets))
            return "corrupt (a histogram's buckets are damaged)";
        const double *b = fp_at(s, f->buckets);
        for (uint32_t j = 0; j < f->nbuckets; j++)
            if (isnan(b[j]) || (j && !(b[j] > b[j - 1])))
                return "corrupt (a histogram's buckets are damaged)";
        if (!isinf(b[f->nbuckets - 1]) || b[f->nbuckets - 1] < 0)
            return "corrupt (a histogram's buckets are damaged)";
    } else if (f->nbuckets) {
        return "corrupt (a metric family is damaged)";
    }
    if (f->type == FP_SUMMARY && f->nquantiles) {
        if (!in_arena(s, f->quantiles, 8ull * f->nquantiles) || !(f->max_age <= FP_Q_MAX_AGE) ||
            !(f->max_age / f->age_buckets >= FP_Q_MIN_PERIOD))
            return "corrupt (a summary's quantiles are damaged)";
        const double *q = fp_at(s, f->quantiles);
        for (uint32_t j = 0; j < f->nquantiles; j++)
            if (!(q[j] >= 0 && q[j] <= 1) || (j && !(q[j] > q[j - 1])))
                return "corrupt (a summary's quantiles are damaged)";
    } else if (f->nquantiles) {
        return "corrupt (a metric family is damaged)";
    }
    if (f->nlabels && !in_arena(s, f->labelnames, 8ull * f->nlabels))
        return "corrupt (a label name is damaged)";
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    for (uint32_t j = 0; j < f->nlabels; j++) {
        int64_t n = string_len(s, ln[j]);
        if (n < 0 || !fp_valid_label_name(fp_at(s, ln[j]), (size_t)n))
            return "corrupt (a label name is damaged)";
    }
    return NULL;
}

/* The series' label text must be its family's label names in order (and a
 * pid for a per-process series), with well-formed escaped values. */
/* 1 if the name is one of the family's label names. */
static int family_label(const fp_store *s, const fp_family *f, const char *name, size_t nlen)
{
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    for (uint32_t j = 0; j < f->nlabels; j++) {
        const char *want = fp_at(s, ln[j]);
        if (strlen(want) == nlen && memcmp(want, name, nlen) == 0)
            return 1;
    }
    return 0;
}

static int before(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c < 0 || (c == 0 && al < bl);
}

/* A series' label text must be its family's label names, sorted, each
 * once (and a pid for a per-process series, whose base text is the same
 * without it), with well-formed escaped values; its split must be where
 * the family's le or quantile pair goes. */
static const char *check_labels(const fp_store *s, const fp_family *f, const fp_series *se, int per_process,
                                fp_buf *scratch)
{
    static const char *const bad = "corrupt (a series' labels are damaged)";
    const char *text = fp_at(s, se->text);
    const char *extra = f->type == FP_HISTOGRAM ? "le" : f->type == FP_SUMMARY ? "quantile" : NULL;
    size_t pos = 0, nlen, prev_len = 0, split = se->text_len, last_end = 0;
    const char *name, *prev = NULL;
    uint32_t j = 0, pids = 0;
    int rc;
    while ((rc = fp_label_next(text, se->text_len, &pos, &name, &nlen, scratch)) == 1) {
        if (prev && !before(prev, prev_len, name, nlen))
            return bad;
        if (per_process && nlen == 3 && memcmp(name, "pid", 3) == 0) {
            if (scratch->len == 0 || scratch->len > 20)
                return bad;
            for (size_t k = 0; k < scratch->len; k++)
                if (scratch->p[k] < '0' || scratch->p[k] > '9')
                    return bad;
            pids++;
        } else if (!family_label(s, f, name, nlen)) {
            return bad;
        } else {
            j++;
        }
        if (extra && split == se->text_len && before(extra, strlen(extra), name, nlen))
            split = last_end;
        prev = name;
        prev_len = nlen;
        last_end = pos;
    }
    if (rc < 0 || j != f->nlabels || pids != (uint32_t)per_process || (extra && se->split != split) ||
        (!extra && se->split != 0))
        return bad;
    /* The base text: the same pairs without the pid. */
    if (!per_process)
        return se->base == se->text && se->base_len == se->text_len ? NULL : bad;
    const char *base = fp_at(s, se->base);
    size_t bpos = 0, tpos = 0, bn, tn, bvl, tvl;
    const char *bname, *tname, *bval, *tval;
    for (;;) {
        int br = fp_label_span(base, se->base_len, &bpos, &bname, &bn, &bval, &bvl);
        int tr = fp_label_span(text, se->text_len, &tpos, &tname, &tn, &tval, &tvl);
        if (tr == 1 && tn == 3 && memcmp(tname, "pid", 3) == 0)
            tr = fp_label_span(text, se->text_len, &tpos, &tname, &tn, &tval, &tvl);
        if (br != tr || br < 0)
            return bad;
        if (br == 0)
            return NULL;
        if (bn != tn || bvl != tvl || memcmp(bname, tname, bn) || memcmp(bval, tval, bvl))
            return bad;
    }
}

static const char *check_series(const fp_store *s, uint64_t off, uint32_t nfam, fp_buf *scratch)
{
    const fp_header *h = fp_hdr(s);
    if (!in_arena(s, off, sizeof(fp_series)))
        return "corrupt (a series is out of place)";
    const fp_series *se = fp_at(s, off);
    if (se->family >= nfam)
        return "corrupt (a series is out of place)";
    const fp_family *f = fp_at(s, fp_load_acq(&((fp_word *)fp_at(s, h->families))[se->family]));
    uint64_t size = sizeof(fp_series) + 8ull * f->ncells;
    uint32_t state = fp_load32_acq(&se->state);
    uint64_t ex = fp_load(&se->exemplars), next = fp_load(&se->next);
    uint64_t exsize = sizeof(fp_exemplar) * (uint64_t)fp_exemplar_slots(f);
    if (!in_arena(s, off, size) || (state != FP_LIVE && state != FP_REMOVED) || se->base_len > se->text_len ||
        !bytes_ok(s, se->text, se->text_len) ||
        (ex && (!in_arena(s, ex, exsize) || (ex < off + size && off < ex + exsize))) ||
        (next && !in_arena(s, next, sizeof(fp_series))) || se->proc > h->max_procs ||
        (se->text < off + size && off < se->text + se->text_len + 1) || !bytes_ok(s, se->base, se->base_len) ||
        (se->base < off + size && off < se->base + se->base_len + 1) || se->split > se->text_len)
        return "corrupt (a series is damaged)";
    if (se->hash != fp_series_hash(se->family, fp_at(s, se->text), se->text_len))
        return "corrupt (a series' labels do not match its key)";
    int per_process = f->mpmode != FP_MP_NONE && s->fd >= 0;
    return check_labels(s, f, se, per_process, scratch);
}

const char *fp_store_check(const fp_store *s, int quiescent)
{
    const fp_header *h = fp_hdr(s);
    if (fp_load_acq((fp_word *)&h->magic) != FP_MAGIC)
        return "not a fastprom store (or was left half-made)";
    if (h->version != FP_LAYOUT_VERSION)
        return "written by another version of fastprom";
    if (h->size != s->size)
        return "truncated or resized";
    /* The layout a fresh store of this size gets, computed on a scratch header. */
    fp_header want;
    memset(&want, 0, sizeof want);
    layout(&want, s->size);
    if (h->max_families != want.max_families || h->max_procs != want.max_procs || h->nslots != want.nslots ||
        h->max_series != want.max_series || h->max_series_overflow != want.max_series_overflow ||
        h->reserve != want.reserve || h->families != want.families || h->slots != want.slots ||
        h->procs != want.procs)
        return "corrupt (its header does not match its size)";
    uint64_t top = fp_load(&h->top);
    uint32_t nfam = fp_load32_acq(&h->nfamilies);
    if (top < fp_load(&want.top) || top > h->size || nfam > h->max_families)
        return "corrupt (its header is inconsistent)";

    const fp_word *families = fp_at(s, h->families);
    for (uint32_t i = 0; i < nfam; i++) {
        uint64_t off = fp_load_acq(&families[i]);
        if (!in_arena(s, off, sizeof(fp_family)))
            return "corrupt (a metric family is out of place)";
        const char *why = check_family(s, fp_at(s, off), i);
        if (why)
            return why;
    }

    /* Every series, through the hash table (which holds them all): each
     * must be reachable from its home slot without crossing an empty one. */
    const char *why = NULL;
    fp_buf scratch;
    fp_buf_init(&scratch);
    const fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1, in_table = 0;
    for (uint64_t i = 0; i < h->nslots && !why; i++) {
        uint64_t off = fp_load_acq(&slots[i]);
        if (!off)
            continue;
        in_table++;
        if ((why = check_series(s, off, nfam, &scratch)))
            break;
        const fp_series *se = fp_at(s, off);
        for (uint64_t k = se->hash & mask; k != i; k = (k + 1) & mask)
            if (!fp_load_acq(&slots[k])) {
                why = "corrupt (the series table is damaged)";
                break;
            }
    }
    if (scratch.oom && !why)
        why = "not checkable (out of memory)";
    if (why) {
        fp_buf_free(&scratch);
        return why;
    }

    /* The family lists link only series the table holds, so they end. */
    uint64_t in_lists = 0;
    for (uint32_t i = 0; i < nfam; i++) {
        const fp_family *f = fp_at(s, fp_load_acq(&families[i]));
        /* Quiescent, a list is no longer than the table; otherwise series
         * published since the table was read may have joined it. */
        uint64_t bound = quiescent ? in_table : h->max_series_overflow;
        uint64_t steps = 0, off = fp_load_acq(&f->head), last = 0;
        for (; off && steps <= bound; steps++) {
            if (!in_arena(s, off, sizeof(fp_series)) || ((const fp_series *)fp_at(s, off))->family != i)
                return "corrupt (a series list is damaged)";
            /* Renderers follow the lists: each node is checked as a table
             * entry is, whether or not the table holds it. */
            const char *bad = check_series(s, off, nfam, &scratch);
            if (bad) {
                fp_buf_free(&scratch);
                return bad;
            }
            last = off;
            off = fp_load_acq(&((const fp_series *)fp_at(s, off))->next);
        }
        uint64_t tail = fp_load_acq(&f->tail);
        why = off ? "corrupt (a series list loops)"
            : tail && !in_arena(s, tail, sizeof(fp_series)) ? "corrupt (a series list is damaged)"
            : quiescent && tail != last ? "inconsistent (a series list's tail is not its last series)" : NULL;
        if (why) {
            fp_buf_free(&scratch);
            return why;
        }
        in_lists += steps;
    }
    fp_buf_free(&scratch);
    if (quiescent && (in_table != fp_load(&h->nseries) || in_lists != in_table))
        return "inconsistent (the series table, the lists and the series count disagree)";
    return NULL;
}

/* ---- store files ---------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, const char *path, const char *detail)
{
    snprintf(err, errlen, fmt, path, detail);
}

static int is_zero(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i])
            return 0;
    return 1;
}

int fp_store_open_file(fp_store *s, const char *path, uint64_t size, char *err, size_t errlen)
{
    if (size < FP_STORE_MIN)
        size = FP_STORE_MIN;
    s->base = NULL;
    s->fd = -1;
    s->proc = 0;
    s->path = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, errlen,
                "cannot open the metrics store file %s: %s; set PROMETHEUS_MULTIPROC_DIR to a directory "
                "every worker can write to",
                path, strerror(errno));
        return FP_EFILE;
    }
    /* Only creation and checking of the file is serialised, with a lock on
     * the file itself; updates never take it. */
    if (lock_file(fd, LOCK_EX) != 0) {
        set_err(err, errlen, "cannot lock the metrics store file %s: %s", path, strerror(errno));
        close(fd);
        return FP_EFILE;
    }
    struct stat st;
    int rc = FP_EFILE;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat the metrics store file %s: %s", path, strerror(errno));
        goto out;
    }
    int fresh = st.st_size == 0;
    if (fresh && ftruncate(fd, (off_t)size) != 0) {
        set_err(err, errlen, "cannot size the metrics store file %s: %s", path, strerror(errno));
        goto out;
    }
    uint64_t map_size = fresh ? size : (uint64_t)st.st_size;
    if (!fresh && map_size < sizeof(fp_header)) {
        set_err(err, errlen,
                "the metrics store file %s is %s; delete it (with every worker stopped) and start again",
                path, "truncated");
        goto out;
    }
    void *base = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        set_err(err, errlen, "cannot map the metrics store file %s: %s", path, strerror(errno));
        goto out;
    }
    s->base = base;
    s->size = map_size;
    s->fd = fd;
    fp_header *h = base;
    if (fresh) {
        if (init_arena(s, size) != FP_OK) {
            set_err(err, errlen, "the metrics store file %s is too small (%s)", path, "raise its size");
            goto unmap;
        }
    } else if (fp_load_acq((fp_word *)&h->magic) == 0 && is_zero(base, sizeof(fp_header))) {
        /* Sized but never laid out: its creator died before finishing (we
         * hold the lock, so no one else is making it).  Finish the job. */
        if (init_arena(s, map_size) != FP_OK) {
            set_err(err, errlen, "the metrics store file %s is too small (%s)", path, "raise its size");
            goto unmap;
        }
    } else {
        const char *why = fp_store_check(s, 0);
        if (why) {
            set_err(err, errlen,
                    "the metrics store file %s is %s; delete it (with every worker stopped) or point "
                    "PROMETHEUS_MULTIPROC_DIR at an empty directory",
                    path, why);
            goto unmap;
        }
    }
    if (!(s->path = strdup(path))) {
        set_err(err, errlen, "out of memory opening %s%s", path, "");
        goto unmap;
    }
    fp_store_attach_process(s, 0); /* a full process table is reported by the caller */
    rc = FP_OK;
    goto out;
unmap:
    munmap(base, map_size);
    s->base = NULL;
    s->fd = -1;
out:
    lock_file(fd, LOCK_UN);
    if (rc != FP_OK)
        close(fd);
    return rc;
}

void fp_store_close(fp_store *s)
{
    if (s->base)
        munmap(s->base, s->size);
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    s->base = NULL;
    s->fd = -1;
    s->path = NULL;
}
