/* arena.h: the memory a store lives in.
 *
 * An arena is mapped privately (one process and its threads) or from a file
 * that every process maps (shared).  This file owns the mapping, the file
 * lock that serialises creation and checking (updates never take it), the
 * bump allocator, the process table, and the consistency check that a
 * store file passes before anything is read through its offsets.
 * No Python headers. */
#ifndef FASTPROM_ARENA_H
#define FASTPROM_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "records.h"

typedef struct {
    char *base;
    uint64_t size;
    int fd;                 /* the store file, or -1 for a private store */
    uint32_t proc;          /* our process table entry (1-based), 0 if none */
    char *path;             /* the store file's path (malloc'd), or NULL */
    uint64_t room;          /* free bytes on the file's filesystem when this process created it, else 0 */
    uint64_t attached_gen;  /* the fork generation `proc` was registered in */
    int readonly;           /* mapped PROT_READ from a descriptor opened O_RDONLY: nothing may be written */
} fp_store;

static inline void *fp_at(const fp_store *s, fp_off off) { return s->base + off; }
static inline fp_header *fp_hdr(const fp_store *s) { return (fp_header *)s->base; }
static inline int fp_shared(const fp_store *s) { return s->fd >= 0; }

/* A series' label text (and base text) lives in whole 8-byte atomic words,
 * 8-aligned, NUL-terminated: a reused record's text is rewritten while
 * another thread may still copy the old (it then sees the state or the
 * generation change and drops the copy), so it is read and written a word
 * at a time with atomic loads and stores.  Allocations are rounded to 8
 * bytes, so the last word is the allocation's own. */
/* The text's words copied whole: dst has room for len rounded up to 8
 * bytes (what follows the text there is undefined). */
static inline void fp_text_read_words(const fp_store *s, fp_off off, size_t len, char *dst)
{
    const fp_word *w = (const fp_word *)(s->base + off);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = fp_load(&w[i / 8]);
        memcpy(dst + i, &v, 8);
    }
}

/* Exactly len bytes of the text into dst. */
static inline void fp_text_read(const fp_store *s, fp_off off, size_t len, char *dst)
{
    size_t whole = len & ~(size_t)7;
    fp_text_read_words(s, off, whole, dst);
    if (whole < len) {
        uint64_t v = fp_load((const fp_word *)(s->base + off) + whole / 8);
        memcpy(dst + whole, &v, len - whole);
    }
}

/* 1 if `len` bytes of text at `off` (a series' `text_cap` long) lie in the
 * mapping.  The open checks every record, but a reader that keeps a file
 * mapped for long (the exporter) reads what others wrote since: a damaged
 * length must not make it copy past the mapping. */
static inline int fp_text_fits(const fp_store *s, fp_off off, uint64_t len, uint64_t cap)
{
    return len <= cap && off <= s->size && ((len + 7) & ~(uint64_t)7) <= s->size - off;
}

static inline void fp_text_write(fp_store *s, fp_off off, const char *src, size_t len)
{
    fp_word *w = (fp_word *)(s->base + off);
    for (size_t i = 0; i <= len; i += 8) {
        uint64_t v = 0;
        memcpy(&v, src + i, len - i < 8 ? len - i : 8); /* the NUL, and zero padding, after the text */
        fp_put(&w[i / 8], v);
    }
}

static inline int fp_text_equal(const fp_store *s, fp_off off, const char *p, size_t len)
{
    const fp_word *w = (const fp_word *)(s->base + off);
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = fp_load(&w[i / 8]);
        if (memcmp(&v, p + i, 8))
            return 0;
    }
    if (i < len) {
        uint64_t v = fp_load(&w[i / 8]);
        if (memcmp(&v, p + i, len - i))
            return 0;
    }
    return 1;
}

/* Maps a private arena of `size` bytes (pages are used on demand).
 * FP_OK or FP_ENOMEM. */
int fp_store_open(fp_store *s, uint64_t size);

/* Maps the store file at `path`, shared with every process that maps it,
 * creating it (sparse, `size` bytes) if it does not exist, checking it
 * otherwise, and registers this process in it.  On failure returns
 * FP_EFILE with a message for the user in err. */
int fp_store_open_file(fp_store *s, const char *path, uint64_t size, char *err, size_t errlen);
void fp_store_close(fp_store *s);

/* Maps the store file at `path` read-only (O_RDONLY, PROT_READ), for a
 * process that only renders: nothing is written, not even the process
 * table, and no process lock is taken for writing.  The check runs under
 * a shared flock (which a read-only descriptor may hold), so a worker
 * creating a family or laying out the file waits for it, not the other way
 * round; series created meanwhile are tolerated, as for any reader.
 * FP_OK; FP_ENOTFOUND when the file does not exist yet or is still being
 * laid out (magic not written); FP_EFILE with a message in err otherwise. */
int fp_store_open_readonly(fp_store *s, const char *path, char *err, size_t errlen);

/* 1 when `path` no longer names the file this store maps (deleted, or
 * replaced by a new store), else 0. */
int fp_store_replaced(const fp_store *s);

/* Takes and releases the lock that serialises family creation among
 * threads (one lock per process, which a fork never inherits held) and,
 * for a shared store, processes (a flock on the file, which alone would not
 * exclude threads sharing the descriptor).  0, or FP_EFILE. */
int fp_arena_lock(fp_store *s);
void fp_arena_unlock(fp_store *s);

/* Allocates `size` zeroed bytes, aligned; the last `reserve` bytes of the
 * arena only with `overflow` set.  Returns the offset, or 0 when it does
 * not fit, or when a shared store's filesystem cannot back it (a refused
 * request leaves room for smaller ones).  Lock-free. */
fp_off fp_arena_alloc(fp_store *s, uint64_t size, int overflow);
/* Copies a string (NUL-terminated) into the arena; 0 when it does not fit. */
fp_off fp_arena_strdup(fp_store *s, const char *p, size_t len, int overflow);

/* Registers the calling process.  After a fork (`forked` set) it also
 * reopens the file: a flock belongs to an open file description, which a
 * forked child would otherwise share with its parent and siblings.
 * FP_OK, FP_EFULL (process table full) or FP_EFILE. */
int fp_store_attach_process(fp_store *s, int forked);

/* Forks: every child (of a fork from Python or from C) bumps the fork
 * generation, so per-process state can tell it is in a new process
 * without a system call.  fp_watch_forks installs the handler (once). */
void fp_watch_forks(void);
uint64_t fp_fork_generation(void);

/* The header layout of an arena of `size` bytes (what a fresh one gets). */
void fp_arena_layout(fp_header *h, uint64_t size);

/* 1 if process table entry `proc` (1-based) is a live process (not a
 * zombie, not another process that reuses its pid), else 0. */
int fp_proc_alive(const fp_store *s, uint32_t proc);

/* A series record's and a family record's checksum, over what never
 * changes after they are made (for a series: until it is reused). */
uint64_t fp_series_checksum(const fp_store *s, const fp_series *se);
uint64_t fp_family_checksum(const fp_store *s, const fp_family *f);

/* The full consistency check: the header is the layout its size gives,
 * and every family, series, label text, exemplar block, table slot and
 * list is well-formed and in bounds.  With `quiescent` set (nothing is
 * being created meanwhile) it also checks the counts agree.  Returns NULL,
 * or what is wrong. */
const char *fp_store_check(const fp_store *s, int quiescent);

#endif
