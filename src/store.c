/* store.c: arena, families, series lookup and creation, exemplars. */
#define _DEFAULT_SOURCE
#include "store.h"
#include "quantile.h"

#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FP_ALIGN 8u
#define FP_MAX_FAMILIES 16384u
#define FP_MAX_PROCS 4096u

static fp_word frozen_clock; /* double bits; 0 = real clock */

double fp_now(void)
{
    uint64_t f = fp_load(&frozen_clock);
    if (f)
        return fp_bitsd(f);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double fp_now_coarse(void)
{
    uint64_t f = fp_load(&frozen_clock);
    if (f)
        return fp_bitsd(f);
    struct timespec ts;
#ifdef CLOCK_REALTIME_COARSE
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
#else
    clock_gettime(CLOCK_REALTIME, &ts);
#endif
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void fp_clock_freeze(double t) { fp_put(&frozen_clock, t == 0.0 ? 0 : fp_dbits(t)); }

/* Bumps the arena pointer.  Returns an offset to zeroed memory, or 0 when
 * the request does not fit (the pointer then stays put, so a refused large
 * request leaves room for smaller ones).  The last `reserve` bytes are only
 * for overflow series.  Lock-free: a CAS loop. */
static fp_off arena_alloc_in(fp_store *s, uint64_t size, int overflow)
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

static fp_off arena_alloc(fp_store *s, uint64_t size) { return arena_alloc_in(s, size, 0); }

static fp_off arena_strdup_in(fp_store *s, const char *p, size_t len, int overflow)
{
    fp_off off = arena_alloc_in(s, len + 1, overflow);
    if (off) {
        memcpy(fp_at(s, off), p, len);
        ((char *)fp_at(s, off))[len] = '\0';
    }
    return off;
}

static fp_off arena_strdup(fp_store *s, const char *p, size_t len) { return arena_strdup_in(s, p, len, 0); }

/* Fills in a header's sizes and table offsets for an arena of `size`
 * bytes; the same size always gives the same layout. */
static void layout(fp_store *s, uint64_t size)
{
    fp_header *h = fp_hdr(s);
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
    layout(s, size);
    if (fp_load(&h->top) > size)
        return FP_ENOMEM;
    /* The magic goes last: a process that maps a half-made file sees none. */
    fp_store_rel((fp_word *)&h->magic, FP_MAGIC);
    return FP_OK;
}

int fp_store_open(fp_store *s, uint64_t size)
{
    if (size < (1u << 20))
        size = 1u << 20;
    void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED)
        return FP_ENOMEM;
    s->base = base;
    s->size = size;
    s->fd = -1;
    s->proc = 0;
    s->path = NULL;
    if (init_arena(s, size) != FP_OK) {
        munmap(base, size);
        s->base = NULL;
        return FP_ENOMEM;
    }
    return FP_OK;
}

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

/* flock, retried when a signal interrupts the wait.  0 or -1 (errno set). */
static int lock_file(int fd, int op)
{
    int rc;
    while ((rc = flock(fd, op)) != 0 && errno == EINTR)
        ;
    return rc;
}

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

/* 1 if [off, off + len) lies within the arena's allocated part, aligned. */
static int in_arena(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    return off >= sizeof(fp_header) && off <= top && len <= top - off && (off & (FP_ALIGN - 1)) == 0;
}

/* 1 if a NUL-terminated string of `len` bytes starts at off, inside the arena. */
static int string_ok(const fp_store *s, uint64_t off, uint64_t len)
{
    uint64_t top = fp_load(&fp_hdr(s)->top);
    return off >= sizeof(fp_header) && off < top && len < top - off &&
           memchr(fp_at(s, off), '\0', (size_t)len + 1) == (const char *)fp_at(s, off) + len;
}

/* Checks a store file before anything is read through its offsets: the
 * header must be the layout this size gives, and every family and series
 * record reachable from it must be well-formed.  Returns NULL, or why not. */
static const char *validate(fp_store *s)
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
    fp_store probe = {.base = (char *)&want, .size = sizeof want, .fd = -1};
    layout(&probe, s->size);
    if (h->max_families != want.max_families || h->max_procs != want.max_procs || h->nslots != want.nslots ||
        h->max_series != want.max_series || h->max_series_overflow != want.max_series_overflow ||
        h->reserve != want.reserve || h->families != want.families || h->slots != want.slots ||
        h->procs != want.procs)
        return "corrupt (its header does not match its size)";
    uint64_t top = fp_load(&h->top);
    uint32_t nfam = fp_load32_acq(&h->nfamilies);
    if (top < fp_load(&want.top) || top > h->size || nfam > h->max_families)
        return "corrupt (its header is inconsistent)";
    for (uint32_t i = 0; i < nfam; i++) {
        uint64_t off = fp_load_acq(&((fp_word *)fp_at(s, h->families))[i]);
        if (!in_arena(s, off, sizeof(fp_family)))
            return "corrupt (a metric family is out of place)";
        const fp_family *f = fp_at(s, off);
        uint32_t cells = 0;
        switch (f->type) {
        case FP_COUNTER: case FP_GAUGE: cells = 2; break;
        case FP_HISTOGRAM: cells = f->nbuckets + 1; break;
        case FP_SUMMARY:
            cells = 2;
            if (f->nquantiles) {
                if (f->nquantiles > FP_Q_MAX_QUANTILES || f->age_buckets < 1 ||
                    f->age_buckets > FP_Q_MAX_AGE_BUCKETS || !in_arena(s, f->quantiles, 8ull * f->nquantiles))
                    return "corrupt (a summary's quantiles are damaged)";
                cells += fp_q_cells(f->age_buckets);
            }
            break;
        default: return "corrupt (a metric family has an unknown type)";
        }
        uint64_t spare = fp_load(&f->spare);
        if (f->index != i || f->ncells != cells || f->mpmode > FP_MP_LIVEMOSTRECENT ||
            (spare && !in_arena(s, spare, sizeof(fp_series) + 8ull * cells)) ||
            (f->type == FP_HISTOGRAM && (f->nbuckets < 1 || f->nbuckets > (1u << 20) ||
                                         !in_arena(s, f->buckets, 8ull * f->nbuckets))) ||
            !string_ok(s, f->name, f->name_len) || !string_ok(s, f->help, f->help_len) ||
            !string_ok(s, f->unit, f->unit_len) ||
            (f->nlabels && (f->nlabels > 4096 || !in_arena(s, f->labelnames, 8ull * f->nlabels))))
            return "corrupt (a metric family is damaged)";
        const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
        for (uint32_t j = 0; j < f->nlabels; j++)
            if (ln[j] < sizeof(fp_header) || ln[j] >= top || !memchr(fp_at(s, ln[j]), '\0', (size_t)(top - ln[j])))
                return "corrupt (a label name is damaged)";
    }
    /* Every series, through the hash table (which holds them all). */
    const fp_word *slots = fp_at(s, h->slots);
    for (uint64_t i = 0; i < h->nslots; i++) {
        uint64_t off = fp_load_acq(&slots[i]);
        if (!off)
            continue;
        if (!in_arena(s, off, sizeof(fp_series)))
            return "corrupt (a series is out of place)";
        const fp_series *se = fp_at(s, off);
        if (se->family >= nfam)
            return "corrupt (a series is out of place)";
        const fp_family *f = fp_family_get(s, se->family);
        uint64_t ex = fp_load(&se->exemplars), next = fp_load(&se->next);
        uint32_t nex = f->type == FP_HISTOGRAM ? f->nbuckets : 1;
        if (!in_arena(s, off, sizeof(fp_series) + 8ull * f->ncells) || se->base_len > se->text_len ||
            se->text < sizeof(fp_header) || se->text > top || se->text_len > top - se->text ||
            (ex && !in_arena(s, ex, sizeof(fp_exemplar) * (uint64_t)nex)) ||
            (next && !in_arena(s, next, sizeof(fp_series))) || se->proc > h->max_procs)
            return "corrupt (a series is damaged)";
    }
    /* The family lists link only series the table holds, so they end. */
    for (uint32_t i = 0; i < nfam; i++) {
        const fp_family *f = fp_family_get(s, i);
        uint64_t steps = 0, off = fp_load_acq(&f->head);
        for (; off && steps <= h->max_series_overflow; steps++) {
            if (!in_arena(s, off, sizeof(fp_series)) || ((const fp_series *)fp_at(s, off))->family != i)
                return "corrupt (a series list is damaged)";
            off = fp_load_acq(&((const fp_series *)fp_at(s, off))->next);
        }
        if (off)
            return "corrupt (a series list loops)";
    }
    return NULL;
}

int fp_store_open_file(fp_store *s, const char *path, uint64_t size, char *err, size_t errlen)
{
    if (size < (1u << 20))
        size = 1u << 20;
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
        const char *why = validate(s);
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

uint32_t fp_family_count(const fp_store *s) { return fp_load32_acq(&fp_hdr(s)->nfamilies); }

fp_family *fp_family_get(const fp_store *s, uint32_t index)
{
    fp_header *h = fp_hdr(s);
    if (index >= fp_family_count(s))
        return NULL;
    fp_off off = fp_load_acq(&((fp_word *)fp_at(s, h->families))[index]);
    return off ? fp_at(s, off) : NULL;
}

/* 1 if family f has exactly the shape spec asks for. */
static int same_family(const fp_store *s, const fp_family *f, const fp_family_spec *sp)
{
    if (f->type != sp->type || f->nlabels != sp->nlabels || f->mpmode != sp->mpmode ||
        f->unit_len != sp->unit_len || memcmp(fp_at(s, f->unit), sp->unit, sp->unit_len) != 0)
        return 0;
    if (sp->type == FP_HISTOGRAM &&
        (f->nbuckets != sp->nbuckets ||
         memcmp(fp_at(s, f->buckets), sp->buckets, sizeof(double) * sp->nbuckets) != 0))
        return 0;
    if (sp->type == FP_SUMMARY &&
        (f->nquantiles != sp->nquantiles ||
         (sp->nquantiles && (f->max_age != sp->max_age || f->age_buckets != sp->age_buckets ||
                             memcmp(fp_at(s, f->quantiles), sp->quantiles, sizeof(double) * sp->nquantiles) != 0))))
        return 0;
    const fp_off *ln = sp->nlabels ? fp_at(s, f->labelnames) : NULL;
    for (uint32_t i = 0; i < sp->nlabels; i++) {
        const char *n = fp_at(s, ln[i]);
        if (strlen(n) != sp->labelname_lens[i] || memcmp(n, sp->labelnames[i], sp->labelname_lens[i]) != 0)
            return 0;
    }
    return 1;
}

static int family_add_locked(fp_store *s, const fp_family_spec *sp, uint32_t *out_index)
{
    fp_header *h = fp_hdr(s);
    uint32_t ncells;
    switch (sp->type) {
    case FP_COUNTER: ncells = 2; break;
    case FP_GAUGE: ncells = 2; break; /* value, and when it was last written */
    case FP_SUMMARY:
        ncells = 2;
        if (sp->nquantiles) {
            if (sp->nquantiles > FP_Q_MAX_QUANTILES || !sp->quantiles || sp->age_buckets < 1 ||
                sp->age_buckets > FP_Q_MAX_AGE_BUCKETS || !(sp->max_age / sp->age_buckets >= FP_Q_MIN_PERIOD) ||
                !(sp->max_age <= FP_Q_MAX_AGE))
                return FP_EINVAL;
            for (uint32_t i = 0; i < sp->nquantiles; i++)
                if (!(sp->quantiles[i] >= 0 && sp->quantiles[i] <= 1) || (i && sp->quantiles[i] <= sp->quantiles[i - 1]))
                    return FP_EINVAL;
            ncells += fp_q_cells(sp->age_buckets);
        }
        break;
    case FP_HISTOGRAM:
        if (sp->nbuckets < 1 || !sp->buckets)
            return FP_EINVAL;
        ncells = sp->nbuckets + 1;
        break;
    default: return FP_EINVAL;
    }
    if (sp->name_len > UINT32_MAX || sp->help_len > UINT32_MAX || sp->unit_len > UINT32_MAX ||
        (sp->mpmode != FP_MP_NONE && sp->type != FP_GAUGE) || sp->mpmode > FP_MP_LIVEMOSTRECENT)
        return FP_EINVAL;

    /* In a shared store every process declares the same families: the
     * first one adds it, the others find it. */
    if (s->fd >= 0) {
        uint32_t n = fp_family_count(s);
        for (uint32_t i = 0; i < n; i++) {
            fp_family *f = fp_family_get(s, i);
            if (f && f->name_len == sp->name_len && memcmp(fp_at(s, f->name), sp->name, sp->name_len) == 0) {
                if (!same_family(s, f, sp))
                    return FP_EMISMATCH;
                *out_index = i;
                return FP_OK;
            }
        }
    }

    fp_off off = arena_alloc(s, sizeof(fp_family));
    if (!off)
        return FP_ENOMEM;
    fp_family *f = fp_at(s, off);
    f->type = sp->type;
    f->nlabels = sp->nlabels;
    f->nbuckets = sp->type == FP_HISTOGRAM ? sp->nbuckets : 0;
    f->ncells = ncells;
    f->mpmode = s->fd >= 0 ? sp->mpmode : FP_MP_NONE;
    f->name_len = (uint32_t)sp->name_len;
    f->help_len = (uint32_t)sp->help_len;
    f->unit_len = (uint32_t)sp->unit_len;
    f->name = arena_strdup(s, sp->name, sp->name_len);
    f->help = arena_strdup(s, sp->help, sp->help_len);
    f->unit = arena_strdup(s, sp->unit, sp->unit_len);
    if (!f->name || !f->help || !f->unit)
        return FP_ENOMEM;
    if (sp->nlabels) {
        f->labelnames = arena_alloc(s, sizeof(fp_off) * sp->nlabels);
        if (!f->labelnames)
            return FP_ENOMEM;
        fp_off *ln = fp_at(s, f->labelnames);
        for (uint32_t i = 0; i < sp->nlabels; i++)
            if (!(ln[i] = arena_strdup(s, sp->labelnames[i], sp->labelname_lens[i])))
                return FP_ENOMEM;
    }
    if (f->nbuckets) {
        f->buckets = arena_alloc(s, sizeof(double) * sp->nbuckets);
        if (!f->buckets)
            return FP_ENOMEM;
        memcpy(fp_at(s, f->buckets), sp->buckets, sizeof(double) * sp->nbuckets);
    }
    if (sp->type == FP_SUMMARY && sp->nquantiles) {
        f->quantiles = arena_alloc(s, sizeof(double) * sp->nquantiles);
        if (!f->quantiles)
            return FP_ENOMEM;
        memcpy(fp_at(s, f->quantiles), sp->quantiles, sizeof(double) * sp->nquantiles);
        f->nquantiles = sp->nquantiles;
        f->max_age = sp->max_age;
        f->age_buckets = sp->age_buckets;
        /* The arena's reserve holds few series this large: keep one block
         * aside so that the overflow series can always be made. */
        if (sp->nlabels) {
            fp_off spare = arena_alloc(s, sizeof(fp_series) + sizeof(fp_word) * ncells);
            if (!spare)
                return FP_ENOMEM;
            fp_put(&f->spare, spare);
        }
    }

    /* Claim an index, fill its slot, then publish the count.  Family
     * creation is serialised (by the caller in a process, by the file lock
     * across processes); the release on the count makes the record visible
     * to renderers. */
    uint32_t idx = fp_load32_acq(&h->nfamilies);
    if (idx >= h->max_families)
        return FP_EFULL;
    f->index = idx;
    fp_store_rel(&((fp_word *)fp_at(s, h->families))[idx], off);
    fp_store32_rel(&h->nfamilies, idx + 1);
    *out_index = idx;
    return FP_OK;
}

int fp_family_add(fp_store *s, const fp_family_spec *spec, uint32_t *out_index)
{
    if (s->fd >= 0 && lock_file(s->fd, LOCK_EX) != 0)
        return FP_EFILE;
    int rc = family_add_locked(s, spec, out_index);
    if (s->fd >= 0)
        lock_file(s->fd, LOCK_UN);
    return rc;
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

/* Renders a="x",b="y" for the family's label names into a heap buffer. */
static char *label_text(const fp_store *s, const fp_family *f, const char *const *values,
                        const size_t *lens, size_t *out_len)
{
    const fp_off *ln = f->nlabels ? fp_at(s, f->labelnames) : NULL;
    size_t cap = 1;
    for (uint32_t i = 0; i < f->nlabels; i++)
        cap += strlen(fp_at(s, ln[i])) + 2 * lens[i] + 4;
    char *buf = malloc(cap), *p = buf;
    if (!buf)
        return NULL;
    for (uint32_t i = 0; i < f->nlabels; i++) {
        const char *n = fp_at(s, ln[i]);
        size_t nl = strlen(n);
        if (i)
            *p++ = ',';
        memcpy(p, n, nl);
        p += nl;
        *p++ = '=';
        *p++ = '"';
        p += fp_escape_value(p, values[i], lens[i]);
        *p++ = '"';
    }
    *out_len = (size_t)(p - buf);
    return buf;
}

static uint64_t hash_key(uint32_t family, const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ ((uint64_t)family * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static int same_key(const fp_store *s, const fp_series *se, uint32_t family, uint64_t hash,
                    const char *text, size_t len)
{
    return se->hash == hash && se->family == family && se->text_len == len &&
           memcmp(fp_at(s, se->text), text, len) == 0;
}

/* Appends a published series to its family's list (lock-free queue append:
 * link after the tail, then swing the tail; anyone may help swing it). */
static void family_append(fp_store *s, fp_family *f, fp_off off)
{
    for (;;) {
        uint64_t tail = fp_load_acq(&f->tail);
        if (!tail) {
            uint64_t zero = 0;
            if (fp_cas_rel(&f->head, &zero, off)) {
                zero = 0;
                fp_cas_rel(&f->tail, &zero, off);
                return;
            }
            /* Someone else set head; help it become the tail. */
            zero = 0;
            fp_cas_rel(&f->tail, &zero, fp_load_acq(&f->head));
            continue;
        }
        fp_series *t = fp_at(s, tail);
        uint64_t next = fp_load_acq(&t->next);
        if (next) {
            fp_cas_rel(&f->tail, &tail, next);
            continue;
        }
        if (fp_cas_rel(&t->next, &next, off)) {
            fp_cas_rel(&f->tail, &tail, off);
            return;
        }
    }
}

int fp_series_get(fp_store *s, uint32_t family, const char *const *values, const size_t *lens,
                  int create, int overflow, fp_series **out)
{
    fp_header *h = fp_hdr(s);
    fp_family *f = fp_family_get(s, family);
    if (!f)
        return FP_EINVAL;
    size_t len;
    char *text = label_text(s, f, values, lens, &len);
    if (!text)
        return FP_ENOMEM;
    size_t base_len = len;
    uint32_t proc = 0;
    if (f->mpmode != FP_MP_NONE && s->fd >= 0) {
        /* A per-process series: this process's pid is part of its key. */
        char pid[48];
        int n = snprintf(pid, sizeof pid, "%spid=\"%ld\"", len ? "," : "", (long)getpid());
        char *t = realloc(text, len + (size_t)n + 1);
        if (!t) {
            free(text);
            return FP_ENOMEM;
        }
        text = t;
        memcpy(text + len, pid, (size_t)n);
        len += (size_t)n;
        proc = s->proc;
    }
    if (len > UINT32_MAX) {
        free(text);
        return FP_EINVAL;
    }
    uint64_t hash = hash_key(family, text, len);
    fp_word *slots = fp_at(s, h->slots);
    uint64_t mask = h->nslots - 1;
    fp_off mine = 0; /* our candidate record, built at most once */
    int rc = FP_ENOTFOUND;

    for (uint64_t i = hash & mask, probes = 0; probes < h->nslots; i = (i + 1) & mask, probes++) {
        uint64_t cur = fp_load_acq(&slots[i]);
        if (cur) {
            fp_series *se = fp_at(s, cur);
            if (fp_load32_acq(&se->state) == FP_LIVE && same_key(s, se, family, hash, text, len)) {
                *out = se;
                rc = FP_OK;
                break;
            }
            continue;
        }
        if (!create)
            break;
        if (!mine) {
            if (fp_load(&h->nseries) >= (overflow ? h->max_series_overflow : h->max_series)) {
                rc = FP_EFULL;
                break;
            }
            mine = arena_alloc_in(s, sizeof(fp_series) + sizeof(fp_word) * f->ncells, overflow);
            if (!mine && overflow) {
                /* Take the family's spare block, if no one has. */
                uint64_t spare = fp_load(&f->spare);
                if (spare && fp_cas_rel(&f->spare, &spare, 0))
                    mine = spare;
            }
            fp_off t = mine ? arena_strdup_in(s, text, len, overflow) : 0;
            if (!t) {
                rc = FP_ENOMEM;
                break;
            }
            fp_series *se = fp_at(s, mine);
            se->family = family;
            se->hash = hash;
            se->text = t;
            se->text_len = (uint32_t)len;
            se->base_len = (uint32_t)base_len;
            se->proc = proc;
            /* To the millisecond: enough for a created timestamp, and it
             * renders without the slow path of float formatting. */
            fp_stored(&se->created, floor(fp_now() * 1000.0) / 1000.0);
            atomic_init(&se->state, FP_LIVE);
        }
        /* Publish; if another creator took this slot first, look at what
         * it put there (it may be the same key) and probe on. */
        if (fp_cas_rel(&slots[i], &cur, mine)) {
            fp_add(&h->nseries, 1);
            family_append(s, f, mine);
            *out = fp_at(s, mine);
            rc = FP_OK;
            break;
        }
        fp_series *se = fp_at(s, cur);
        if (fp_load32_acq(&se->state) == FP_LIVE && same_key(s, se, family, hash, text, len)) {
            *out = se; /* our record stays unused in the arena */
            rc = FP_OK;
            break;
        }
    }
    if (rc == FP_ENOTFOUND && create)
        rc = FP_EFULL;
    free(text);
    return rc;
}

int fp_series_remove(fp_store *s, uint32_t family, const char *const *values, const size_t *lens)
{
    fp_series *se;
    int rc = fp_series_get(s, family, values, lens, 0, 0, &se);
    if (rc == FP_OK)
        fp_store32_rel(&se->state, FP_REMOVED);
    return rc;
}

void fp_family_clear(fp_store *s, uint32_t family)
{
    fp_family *f = fp_family_get(s, family);
    if (!f)
        return;
    for (fp_off off = fp_load_acq(&f->head); off;) {
        fp_series *se = fp_at(s, off);
        fp_store32_rel(&se->state, FP_REMOVED);
        off = fp_load_acq(&se->next);
    }
}

int fp_exemplar_put(fp_store *s, fp_series *se, uint32_t nslots, uint32_t slot,
                    const char *text, size_t len, double value, double ts)
{
    if (len > FP_EXEMPLAR_TEXT || slot >= nslots)
        return FP_EINVAL;
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block) {
        fp_off fresh = arena_alloc(s, sizeof(fp_exemplar) * nslots);
        if (!fresh)
            return FP_ENOMEM;
        uint64_t zero = 0;
        block = fp_cas_rel(&se->exemplars, &zero, fresh) ? fresh : zero;
    }
    fp_exemplar *e = (fp_exemplar *)fp_at(s, block) + slot;

    /* Claim the slot by making its count odd; if another writer holds it,
     * drop this exemplar (exemplars are samples; waiting is not worth it).
     * No standalone fences (ThreadSanitizer cannot follow them): the claim
     * is an acquire, so our words land after the previous writer's; each
     * word is a release store, so a reader that loads one (acquire) also
     * sees the odd count when it re-reads seq, and retries. */
    uint64_t seq = fp_load(&e->seq);
    if ((seq & 1) || !atomic_compare_exchange_strong_explicit(&e->seq, &seq, seq + 1,
                                                              memory_order_acquire, memory_order_relaxed))
        return FP_OK;
    fp_store_rel(&e->value, fp_dbits(value));
    fp_store_rel(&e->ts, fp_dbits(ts));
    fp_store_rel(&e->len, len);
    uint64_t word;
    for (size_t i = 0; i < len; i += 8) {
        word = 0;
        memcpy(&word, text + i, len - i < 8 ? len - i : 8);
        fp_store_rel(&e->text[i / 8], word);
    }
    fp_store_rel(&e->seq, seq + 2);
    return FP_OK;
}

int fp_exemplar_get(const fp_store *s, const fp_series *se, uint32_t slot,
                    char *text, size_t *len, double *value, double *ts)
{
    uint64_t block = fp_load_acq(&se->exemplars);
    if (!block)
        return 0;
    fp_exemplar *e = (fp_exemplar *)fp_at(s, block) + slot;
    for (int attempt = 0; attempt < 16; attempt++) {
        uint64_t s1 = fp_load_acq(&e->seq);
        if (s1 == 0)
            return 0;
        if (s1 & 1)
            continue;
        /* Acquire loads pair with the writer's release stores (see
         * fp_exemplar_put): seeing any newer word implies seeing newer seq. */
        *value = fp_bitsd(fp_load_acq(&e->value));
        *ts = fp_bitsd(fp_load_acq(&e->ts));
        uint64_t n = fp_load_acq(&e->len);
        if (n > FP_EXEMPLAR_TEXT)
            continue;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t word = fp_load_acq(&e->text[i / 8]);
            memcpy(text + i, &word, n - i < 8 ? n - i : 8);
        }
        if (fp_load(&e->seq) == s1) {
            *len = n;
            return 1;
        }
    }
    return 0;
}
