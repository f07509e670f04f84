/* render.h: the exposition writers, Prometheus text (0.0.4 and 1.0.0, the
 * same bytes) and OpenMetrics 1.0.0, byte for byte as prometheus_client
 * writes them.  Store families are rendered from the family walker;
 * families built in Python are written through the same functions, so both
 * follow one set of rules.  Everything goes into one growable buffer.
 * No Python headers. */
#ifndef FASTPROM_RENDER_H
#define FASTPROM_RENDER_H

#include <stddef.h>

#include "format.h"
#include "labels.h"
#include "walk.h"

/* How one family is written: the view, the escaping scheme, and whether
 * its names can be copied as they are (fp_writer_init works that out). */
typedef struct {
    fp_buf *b;
    int view;               /* FP_VIEW_TEXT or FP_VIEW_OPENMETRICS */
    int esc;                /* enum fp_escaping */
    const char *name;       /* the family's name */
    size_t nlen;
    int plain_name;         /* sample names need no escaping */
    int plain_labels;       /* label names need no escaping (legacy names, no dots scheme) */
} fp_writer;

/* The longest sample name (family name and suffix) a store family's lines
 * are written with in one copy; longer ones are written piece by piece. */
#define FP_HEAD_MAX 200

void fp_writer_init(fp_writer *w, fp_buf *b, int view, int esc, const char *name, size_t nlen);

/* # HELP, # TYPE (and # UNIT in OpenMetrics) of a family whose name is
 * w->name + suffix.  `type` is the OpenMetrics type name (counter, gauge,
 * histogram, summary, info, stateset, gaugehistogram, unknown); the text
 * format gets its own names for it (a counter's metadata names name_total,
 * an info gauge name_info, unknown is untyped). */
void fp_write_meta(const fp_writer *w, const char *suffix, const char *type, const char *help, size_t hlen,
                   const char *unit, size_t ulen);

/* One sample line: the family's name and the sample's suffix (or, for a
 * Python family, the sample's own name in `sname` with w->name its
 * family's), labels, value, timestamp, and in OpenMetrics its exemplar.
 * With `plain_labels` clear the label names in smp->labels are rewritten
 * by the scheme. */
void fp_write_sample(const fp_writer *w, const char *sname, size_t snlen, const fp_sample *smp);

/* Renders one store family: metadata and every live series.  In the text
 * format the _created samples follow as a gauge family of their own, as
 * prometheus_client writes them; `side` is scratch for them.  FP_OK,
 * FP_EINVAL (no such family) or FP_ENOHEAP. */
int fp_render_family(fp_buf *b, fp_buf *side, const fp_store *s, uint32_t family, int view, int esc);

/* The OpenMetrics type name of a store family's type. */
const char *fp_type_name(uint32_t type);

#endif
