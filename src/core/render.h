/* render.h: the exposition writers, Prometheus text 0.0.4 and OpenMetrics
 * 1.0.0.  Store families are rendered from the family walker; families
 * built in Python are written through the same two functions, so both
 * follow one set of rules.  Everything goes into one growable buffer.
 * No Python headers. */
#ifndef FASTPROM_RENDER_H
#define FASTPROM_RENDER_H

#include <stddef.h>

#include "format.h"
#include "walk.h"

/* # HELP, # TYPE (and # UNIT in OpenMetrics) of a family.  `type` is the
 * OpenMetrics type name (counter, gauge, histogram, summary, info,
 * stateset, gaugehistogram, unknown); the text format gets its own names
 * for it (a counter's metadata names name_total, an info gauge name_info,
 * unknown is untyped). */
void fp_write_meta(fp_buf *b, int view, const char *name, size_t nlen, const char *type, const char *help,
                   size_t hlen, const char *unit, size_t ulen);

/* One sample line: name, the sample's suffix, labels, value, timestamp,
 * and in OpenMetrics its exemplar. */
void fp_write_sample(fp_buf *b, int view, const char *name, size_t nlen, const fp_sample *smp);

/* Renders one store family (metadata and every live series) in a text
 * view.  FP_OK, FP_EINVAL (no such family) or FP_ENOHEAP. */
int fp_render_family(fp_buf *b, const fp_store *s, uint32_t family, int view);

/* The OpenMetrics type name of a store family's type. */
const char *fp_type_name(uint32_t type);

#endif
