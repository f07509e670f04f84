/* proto.h: the Prometheus protobuf exposition (io.prometheus.client
 * MetricFamily messages, each preceded by its length as a varint:
 * encoding=delimited), built from the same family walk as the text
 * writers.  Field numbers are those of client_model's metrics.proto.
 * No Python headers. */
#ifndef FASTPROM_PROTO_H
#define FASTPROM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "walk.h"

/* MetricType of a MetricFamily. */
enum fp_pb_type {
    FP_PB_COUNTER = 0,
    FP_PB_GAUGE = 1,
    FP_PB_SUMMARY = 2,
    FP_PB_UNTYPED = 3,
    FP_PB_HISTOGRAM = 4,
    FP_PB_GAUGE_HISTOGRAM = 5
};

/* Field numbers. */
enum {
    FP_PB_LABEL_NAME = 1, FP_PB_LABEL_VALUE = 2,                      /* LabelPair */
    FP_PB_MF_NAME = 1, FP_PB_MF_HELP = 2, FP_PB_MF_TYPE = 3, FP_PB_MF_METRIC = 4, FP_PB_MF_UNIT = 5,
    FP_PB_M_LABEL = 1, FP_PB_M_GAUGE = 2, FP_PB_M_COUNTER = 3, FP_PB_M_SUMMARY = 4, FP_PB_M_UNTYPED = 5,
    FP_PB_M_TIMESTAMP_MS = 6, FP_PB_M_HISTOGRAM = 7,                 /* Metric */
    FP_PB_VALUE = 1,                                                  /* Gauge, Untyped, Counter */
    FP_PB_C_EXEMPLAR = 2, FP_PB_C_CREATED = 3,                        /* Counter */
    FP_PB_Q_QUANTILE = 1, FP_PB_Q_VALUE = 2,                          /* Quantile */
    FP_PB_S_COUNT = 1, FP_PB_S_SUM = 2, FP_PB_S_QUANTILE = 3, FP_PB_S_CREATED = 4, /* Summary */
    FP_PB_H_COUNT = 1, FP_PB_H_SUM = 2, FP_PB_H_BUCKET = 3, FP_PB_H_SCHEMA = 5, FP_PB_H_ZERO_THRESHOLD = 6,
    FP_PB_H_ZERO_COUNT = 7, FP_PB_H_NEG_SPAN = 9, FP_PB_H_NEG_DELTA = 10, FP_PB_H_POS_SPAN = 12,
    FP_PB_H_POS_DELTA = 13, FP_PB_H_CREATED = 15, FP_PB_H_EXEMPLARS = 16, /* Histogram */
    FP_PB_B_COUNT = 1, FP_PB_B_UPPER = 2, FP_PB_B_EXEMPLAR = 3,       /* Bucket */
    FP_PB_SPAN_OFFSET = 1, FP_PB_SPAN_LENGTH = 2,                     /* BucketSpan */
    FP_PB_E_LABEL = 1, FP_PB_E_VALUE = 2, FP_PB_E_TIMESTAMP = 3,      /* Exemplar */
    FP_PB_TS_SECONDS = 1, FP_PB_TS_NANOS = 2                          /* google.protobuf.Timestamp */
};

/* ---- wire primitives ---------------------------------------------- */

void fp_pb_varint(fp_buf *b, uint64_t v);
void fp_pb_uint(fp_buf *b, uint32_t field, uint64_t v);     /* uint64, int64, enum */
void fp_pb_sint(fp_buf *b, uint32_t field, int64_t v);      /* sint32, sint64 (zigzag) */
void fp_pb_double(fp_buf *b, uint32_t field, double v);
void fp_pb_string(fp_buf *b, uint32_t field, const char *p, size_t n);

/* A nested message: fp_pb_open writes the field's key (none for field 0,
 * the delimited stream's own framing) and returns a mark; the body is
 * written after it; fp_pb_close puts the body's length in front of it. */
size_t fp_pb_open(fp_buf *b, uint32_t field);
void fp_pb_close(fp_buf *b, size_t mark);

/* google.protobuf.Timestamp of a time in seconds since the epoch. */
void fp_pb_timestamp(fp_buf *b, uint32_t field, double t);

/* A metric (`metric` set) or label name, p1 + p2, as a string field,
 * written as the escaping scheme says: allow-utf-8 as it is, a legacy name
 * as it is (but for dots), any other as the text format escapes it. */
void fp_pb_name(fp_buf *b, uint32_t field, const char *p1, size_t n1, const char *p2, size_t n2, int esc,
                int metric);

/* LabelPair messages (`field` of the enclosing message) from escaped
 * label text a="x",b="y", values unescaped; names by the scheme (esc < 0:
 * as they are).  0, or -1 when the text is not label pairs. */
int fp_pb_labels(fp_buf *b, uint32_t field, const char *text, size_t len, int esc);

/* An Exemplar message from its stored form ({pairs}, value, timestamp).
 * Exemplar label names are written as they are.  0, or -1 (damaged). */
int fp_pb_exemplar(fp_buf *b, uint32_t field, const fp_exemplar_data *e);

/* ---- native histograms ---------------------------------------------
 * The sparse part of a Histogram message.  Classic histograms leave it
 * empty (has = 0); a native histogram fills it from its store cells and
 * fp_pb_native writes its fields beside the classic buckets. */
/* A span of consecutive buckets, as the walker makes them (native.h). */
typedef fp_nh_span fp_pb_span;

typedef struct {
    int has;                /* 0: a classic histogram, nothing is written */
    int32_t schema;
    double zero_threshold;
    uint64_t zero_count;
    const fp_pb_span *neg_spans, *pos_spans;
    size_t n_neg_spans, n_pos_spans;
    const int64_t *neg_deltas, *pos_deltas; /* each bucket's count minus the previous one's */
    size_t n_neg_deltas, n_pos_deltas;
} fp_pb_native;

void fp_pb_native_fields(fp_buf *b, const fp_pb_native *nh);

/* ---- store families ------------------------------------------------ */

/* Writes one store family as a delimited MetricFamily message; a family
 * without live series is left out (as client_golang leaves it).  Names
 * by the escaping scheme.  FP_OK, FP_EINVAL
 * (no such family) or FP_ENOHEAP. */
int fp_render_family_pb(fp_buf *b, const fp_store *s, uint32_t family, int esc);

#endif
