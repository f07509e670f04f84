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

#include "records.h"

typedef struct {
    char *base;
    uint64_t size;
    int fd;                 /* the store file, or -1 for a private store */
    uint32_t proc;          /* our process table entry (1-based), 0 if none */
    char *path;             /* the store file's path (malloc'd), or NULL */
} fp_store;

static inline void *fp_at(const fp_store *s, fp_off off) { return s->base + off; }
static inline fp_header *fp_hdr(const fp_store *s) { return (fp_header *)s->base; }
static inline int fp_shared(const fp_store *s) { return s->fd >= 0; }

/* Maps a private arena of `size` bytes (pages are used on demand).
 * FP_OK or FP_ENOMEM. */
int fp_store_open(fp_store *s, uint64_t size);

/* Maps the store file at `path`, shared with every process that maps it,
 * creating it (sparse, `size` bytes) if it does not exist, checking it
 * otherwise, and registers this process in it.  On failure returns
 * FP_EFILE with a message for the user in err. */
int fp_store_open_file(fp_store *s, const char *path, uint64_t size, char *err, size_t errlen);
void fp_store_close(fp_store *s);

/* Takes and releases the lock that serialises family creation among
 * threads (one lock per process, which a fork never inherits held) and,
 * for a shared store, processes (a flock on the file, which alone would not
 * exclude threads sharing the descriptor).  0, or FP_EFILE. */
int fp_arena_lock(fp_store *s);
void fp_arena_unlock(fp_store *s);

/* Allocates `size` zeroed bytes, aligned; the last `reserve` bytes of the
 * arena only with `overflow` set.  Returns the offset, or 0 when it does
 * not fit (a refused request leaves room for smaller ones).  Lock-free. */
fp_off fp_arena_alloc(fp_store *s, uint64_t size, int overflow);
/* Copies a string (NUL-terminated) into the arena; 0 when it does not fit. */
fp_off fp_arena_strdup(fp_store *s, const char *p, size_t len, int overflow);

/* Registers the calling process.  After a fork (`forked` set) it also
 * reopens the file: a flock belongs to an open file description, which a
 * forked child would otherwise share with its parent and siblings.
 * FP_OK, FP_EFULL (process table full) or FP_EFILE. */
int fp_store_attach_process(fp_store *s, int forked);

/* 1 if process table entry `proc` (1-based) is a live process, else 0. */
int fp_proc_alive(const fp_store *s, uint32_t proc);

/* The full consistency check: the header is the layout its size gives,
 * and every family, series, label text, exemplar block, table slot and
 * list is well-formed and in bounds.  With `quiescent` set (nothing is
 * being created meanwhile) it also checks the counts agree.  Returns NULL,
 * or what is wrong. */
const char *fp_store_check(const fp_store *s, int quiescent);

#endif
