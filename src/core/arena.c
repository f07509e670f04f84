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
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "crash.h"
#include "labels.h"

#define COMMIT_STEP (1ull << 20)

/* ---- allocation ------------------------------------------------------ */

/* A shared store's file is sparse: pages are backed (disk blocks, or a
 * tmpfs's memory) only when first written, and a write the filesystem
 * cannot back kills the writer with SIGBUS.  So the arena is backed ahead
 * of its use, a megabyte at a time, before anything is placed there: a
 * full filesystem then means a full store (new series overflow), not a
 * crash.  1 when [0, end) is backed, 0 when the filesystem refused. */
static int backed_to(fp_store *s, uint64_t end)
{
    fp_header *h = fp_hdr(s);
    if (s->fd < 0 || end <= fp_load_acq(&h->committed))
        return 1;
#ifdef __linux__
    uint64_t from = fp_load_acq(&h->committed) & ~(COMMIT_STEP - 1);
    uint64_t to = (end + COMMIT_STEP - 1) & ~(COMMIT_STEP - 1);
    if (to > s->size)
        to = s->size;
    if (posix_fallocate(s->fd, (off_t)from, (off_t)(to - from)) != 0)
        return 0;
    uint64_t seen = fp_load(&h->committed);
    while (seen < to && !fp_cas_rel(&h->committed, &seen, to))
        ;
#endif
    return 1;
}

/* Zeroes what is not zero in [p, p + n), a chunk at a time: a chunk that
 * is only read stays clean (and a hole in a sparse file stays a hole). */
static void zero_fill(char *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i += 4096) {
        size_t k = n - i < 4096 ? (size_t)(n - i) : 4096;
        if (p[i] || memcmp(p + i, p + i + 1, k - 1))
            memset(p + i, 0, k);
    }
}

fp_off fp_arena_alloc(fp_store *s, uint64_t size, int overflow)
{
    fp_header *h = fp_hdr(s);
    uint64_t limit = overflow ? h->size : h->size - h->reserve;
    if (size > limit)
        return 0;
    size = (size + FP_ALIGN - 1) & ~(uint64_t)(FP_ALIGN - 1);
    /* Ordinary records keep the reserve backed ahead of them, so that the
     * overflow series find backed room once the filesystem is full. */
    uint64_t ahead = overflow ? 0 : h->reserve;
    uint64_t off = fp_load(&h->top);
    do {
        if (off > limit || size > limit - off || !backed_to(s, off + size + ahead))
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(&h->top, &off, off + size, memory_order_relaxed,
                                                    memory_order_relaxed));
    /* Handed out zeroed: past the top a fresh file is all zeros, but a
     * damaged one may hold anything there (the check reads only below the
     * top), and records rely on the fields they do not set being 0. */
    if (s->fd >= 0)
        zero_fill(fp_at(s, off), size);
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
void fp_arena_layout(fp_header *h, uint64_t size)
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
    fp_crash("layout");
    fp_arena_layout(h, size);
    if (fp_load(&h->top) > size)
        return FP_ENOMEM;
    /* The header and tables, which every process writes, are backed now. */
    if (!backed_to(s, fp_load(&h->top)))
        return FP_EFULL;
    fp_crash("layout-done");
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
    s->room = 0;
    s->readonly = 0;
    fp_watch_forks();
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

/* The start time of a process in clock ticks since boot, 0 if unknown;
 * *gone set when /proc says it is a zombie or dead (it has exited and
 * counts as dead, though kill() still finds it). */
static uint64_t proc_start_state(long pid, int *gone)
{
    *gone = 0;
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
     * anything: the state is the first after the closing one, starttime
     * the 20th. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X' || p[2] == 'x'))
        *gone = 1;
    for (int field = 0; field < 20 && p; field++)
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

static uint64_t proc_start(long pid)
{
    int gone;
    return proc_start_state(pid, &gone);
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
    fp_crash("attach");
    s->attached_gen = fp_fork_generation();
    /* The start time first: an entry whose pid is set is complete. */
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
    /* A process whose pid was reused is another process (its start time
     * differs); a zombie has exited.  A start time we cannot read now (say
     * /proc is hidden) proves nothing. */
    int gone;
    uint64_t start = fp_load(&e->start), now = proc_start_state(pid, &gone);
    if (gone)
        return 0;
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
static fp_word fork_generation; /* bumped in every child, whoever forks (C too) */
static void before_fork(void) { pthread_mutex_lock(&create_lock); }
static void after_fork(void) { pthread_mutex_unlock(&create_lock); }
static void after_fork_child(void)
{
    fp_add(&fork_generation, 1);
    pthread_mutex_unlock(&create_lock);
}
static void install_atfork(void) { pthread_atfork(before_fork, after_fork, after_fork_child); }

void fp_watch_forks(void) { pthread_once(&atfork_once, install_atfork); }
uint64_t fp_fork_generation(void) { return fp_load_acq(&fork_generation); }

int fp_arena_lock(fp_store *s)
{
    fp_watch_forks();
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

/* ---- store files ---------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, const char *path, const char *detail)
{
    snprintf(err, errlen, fmt, path, detail);
}

/* Takes the store file's lock (`op`: LOCK_EX to create or check for
 * writing, LOCK_SH to check for reading).  0; or -1, the descriptor
 * closed and err set. */
static int lock_or_close(int fd, int op, const char *path, char *err, size_t errlen)
{
    if (lock_file(fd, op) == 0)
        return 0;
    set_err(err, errlen, "cannot lock the metrics store file %s: %s", path, strerror(errno));
    close(fd);
    return -1;
}

/* An fp_store that maps nothing yet. */
static void store_reset(fp_store *s, int readonly)
{
    s->base = NULL;
    s->size = 0;
    s->fd = -1;
    s->proc = 0;
    s->path = NULL;
    s->room = 0;
    s->attached_gen = 0;
    s->readonly = readonly;
}

/* The check at open, made while other processes may be writing.  A record
 * caught in the middle of a change can look damaged to one pass; damage
 * at rest looks the same to every pass.  So a failure is looked at again,
 * a few times over some milliseconds, before the file is refused. */
static const char *check_at_open(const fp_store *s)
{
    const char *why = fp_store_check(s, 0);
    for (int again = 1; why && again <= 4; again++) {
        struct timespec ts = {0, 2000000L * again};
        nanosleep(&ts, NULL);
        why = fp_store_check(s, 0);
    }
    return why;
}

int fp_store_open_file(fp_store *s, const char *path, uint64_t size, char *err, size_t errlen)
{
    if (size < FP_STORE_MIN)
        size = FP_STORE_MIN;
    store_reset(s, 0);
    fp_watch_forks();
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
    if (lock_or_close(fd, LOCK_EX, path, err, errlen) != 0)
        return FP_EFILE;
    struct stat st;
    int rc = FP_EFILE;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat the metrics store file %s: %s", path, strerror(errno));
        goto out;
    }
    int fresh = st.st_size == 0;
    struct statvfs vfs;
    s->room = 0;
    if (fresh && fstatvfs(fd, &vfs) == 0)
        s->room = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
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
    int half_made = !fresh && fp_load_acq((fp_word *)&h->magic) == 0 && fp_load32_acq(&h->nfamilies) == 0 &&
                    fp_load(&h->nseries) == 0 && fp_load(&h->nprocs) == 0;
    if (fresh || half_made) {
        /* A new file, or one whose creator died while laying it out: the
         * magic is written last, so no process has used it (they wait for
         * the lock we hold).  Lay it out from scratch. */
        if (half_made) {
            /* The tables too: a damaged file may hold anything in them,
             * and nothing checks them before they are used. */
            fp_header fresh_layout;
            memset(&fresh_layout, 0, sizeof fresh_layout);
            fp_arena_layout(&fresh_layout, map_size);
            uint64_t tables_end = fp_load(&fresh_layout.top);
            zero_fill(base, tables_end < map_size ? tables_end : map_size);
        }
        int st = init_arena(s, map_size);
        if (st == FP_EFULL) {
            set_err(err, errlen,
                    "cannot reserve space for the metrics store file %s: %s; its filesystem (a tmpfs such as "
                    "/dev/shm?) has too little room: make it larger or set FASTPROM_STORE_SIZE smaller",
                    path, strerror(ENOSPC));
            goto unmap;
        }
        if (st != FP_OK) {
            set_err(err, errlen, "the metrics store file %s is too small (%s)", path, "raise its size");
            goto unmap;
        }
    } else {
        const char *why = check_at_open(s);
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
    s->attached_gen = fp_fork_generation();
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

int fp_store_open_readonly(fp_store *s, const char *path, char *err, size_t errlen)
{
    store_reset(s, 1);
    /* Non-blocking: a FIFO at the path must not hang the open (it is then
     * refused as not a regular file); a regular file ignores the flag. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return FP_ENOTFOUND;
        set_err(err, errlen, "cannot open the metrics store file %s for reading: %s", path, strerror(errno));
        return FP_EFILE;
    }
    /* Shared: workers opening or creating families (exclusive) wait while
     * the check reads the tables. */
    if (lock_or_close(fd, LOCK_SH, path, err, errlen) != 0)
        return FP_EFILE;
    struct stat st;
    int rc = FP_EFILE;
    void *base = MAP_FAILED;
    if (fstat(fd, &st) != 0) {
        set_err(err, errlen, "cannot stat the metrics store file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errlen, "the metrics store path %s is %s", path, "not a regular file");
        goto out;
    }
    if (st.st_size == 0) {
        rc = FP_ENOTFOUND; /* created, not yet sized: its creator holds the lock we waited for */
        goto out;
    }
    if ((uint64_t)st.st_size < sizeof(fp_header)) {
        set_err(err, errlen, "the metrics store file %s is %s", path,
                "too short to be a fastprom store (truncated, or another program's file)");
        goto out;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        set_err(err, errlen, "cannot map the metrics store file %s: %s", path, strerror(errno));
        goto out;
    }
    s->base = base;
    s->size = (uint64_t)st.st_size;
    s->fd = fd; /* shared: the check knows per-process series by it */
    const fp_header *h = base;
    if (fp_load_acq((const fp_word *)&h->magic) == 0 && fp_load32_acq(&h->nfamilies) == 0 &&
        fp_load(&h->nseries) == 0 && fp_load(&h->nprocs) == 0) {
        rc = FP_ENOTFOUND; /* half-made: the next worker to open it lays it out */
        goto unmap;
    }
    const char *why = check_at_open(s);
    if (why) {
        set_err(err, errlen, "the metrics store file %s is %s", path, why);
        goto unmap;
    }
    if (!(s->path = strdup(path))) {
        set_err(err, errlen, "out of memory opening %s%s", path, "");
        goto unmap;
    }
    rc = FP_OK;
    goto out;
unmap:
    munmap(base, (size_t)st.st_size);
    s->base = NULL;
    s->size = 0;
    s->fd = -1;
out:
    lock_file(fd, LOCK_UN);
    if (rc != FP_OK)
        close(fd);
    return rc;
}

int fp_store_replaced(const fp_store *s)
{
    struct stat now, mine;
    if (s->fd < 0 || !s->path)
        return 0;
    if (stat(s->path, &now) != 0 || fstat(s->fd, &mine) != 0)
        return 1;
    /* A file cut shorter than the mapping would fault the next read of
     * what is past its end: taken as replaced, so the caller reopens. */
    return now.st_dev != mine.st_dev || now.st_ino != mine.st_ino || (uint64_t)mine.st_size < s->size;
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
