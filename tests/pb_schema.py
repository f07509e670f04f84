"""The io.prometheus.client schema (client_model's metrics.proto), built as a
descriptor with the protobuf package, and a reader of delimited streams.

Only the message shapes and field numbers matter on the wire; they are
written here from the schema's specification."""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.internal.decoder import _DecodeVarint

F = descriptor_pb2.FieldDescriptorProto
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED

# message -> [(field name, number, type, repeated, message or enum type)]
MESSAGES = {
    "LabelPair": [("name", 1, F.TYPE_STRING, 0, None), ("value", 2, F.TYPE_STRING, 0, None)],
    "Gauge": [("value", 1, F.TYPE_DOUBLE, 0, None)],
    "Counter": [("value", 1, F.TYPE_DOUBLE, 0, None), ("exemplar", 2, F.TYPE_MESSAGE, 0, "Exemplar"),
                ("created_timestamp", 3, F.TYPE_MESSAGE, 0, ".google.protobuf.Timestamp")],
    "Quantile": [("quantile", 1, F.TYPE_DOUBLE, 0, None), ("value", 2, F.TYPE_DOUBLE, 0, None)],
    "Summary": [("sample_count", 1, F.TYPE_UINT64, 0, None), ("sample_sum", 2, F.TYPE_DOUBLE, 0, None),
                ("quantile", 3, F.TYPE_MESSAGE, 1, "Quantile"),
                ("created_timestamp", 4, F.TYPE_MESSAGE, 0, ".google.protobuf.Timestamp")],
    "Untyped": [("value", 1, F.TYPE_DOUBLE, 0, None)],
    "Histogram": [
        ("sample_count", 1, F.TYPE_UINT64, 0, None), ("sample_count_float", 4, F.TYPE_DOUBLE, 0, None),
        ("sample_sum", 2, F.TYPE_DOUBLE, 0, None), ("bucket", 3, F.TYPE_MESSAGE, 1, "Bucket"),
        ("created_timestamp", 15, F.TYPE_MESSAGE, 0, ".google.protobuf.Timestamp"),
        ("schema", 5, F.TYPE_SINT32, 0, None), ("zero_threshold", 6, F.TYPE_DOUBLE, 0, None),
        ("zero_count", 7, F.TYPE_UINT64, 0, None), ("zero_count_float", 8, F.TYPE_DOUBLE, 0, None),
        ("negative_span", 9, F.TYPE_MESSAGE, 1, "BucketSpan"), ("negative_delta", 10, F.TYPE_SINT64, 1, None),
        ("negative_count", 11, F.TYPE_DOUBLE, 1, None), ("positive_span", 12, F.TYPE_MESSAGE, 1, "BucketSpan"),
        ("positive_delta", 13, F.TYPE_SINT64, 1, None), ("positive_count", 14, F.TYPE_DOUBLE, 1, None),
        ("exemplars", 16, F.TYPE_MESSAGE, 1, "Exemplar"),
    ],
    "Bucket": [("cumulative_count", 1, F.TYPE_UINT64, 0, None), ("cumulative_count_float", 4, F.TYPE_DOUBLE, 0, None),
               ("upper_bound", 2, F.TYPE_DOUBLE, 0, None), ("exemplar", 3, F.TYPE_MESSAGE, 0, "Exemplar")],
    "BucketSpan": [("offset", 1, F.TYPE_SINT32, 0, None), ("length", 2, F.TYPE_UINT32, 0, None)],
    "Exemplar": [("label", 1, F.TYPE_MESSAGE, 1, "LabelPair"), ("value", 2, F.TYPE_DOUBLE, 0, None),
                 ("timestamp", 3, F.TYPE_MESSAGE, 0, ".google.protobuf.Timestamp")],
    "Metric": [("label", 1, F.TYPE_MESSAGE, 1, "LabelPair"), ("gauge", 2, F.TYPE_MESSAGE, 0, "Gauge"),
               ("counter", 3, F.TYPE_MESSAGE, 0, "Counter"), ("summary", 4, F.TYPE_MESSAGE, 0, "Summary"),
               ("untyped", 5, F.TYPE_MESSAGE, 0, "Untyped"), ("histogram", 7, F.TYPE_MESSAGE, 0, "Histogram"),
               ("timestamp_ms", 6, F.TYPE_INT64, 0, None)],
    "MetricFamily": [("name", 1, F.TYPE_STRING, 0, None), ("help", 2, F.TYPE_STRING, 0, None),
                     ("type", 3, F.TYPE_ENUM, 0, "MetricType"), ("metric", 4, F.TYPE_MESSAGE, 1, "Metric"),
                     ("unit", 5, F.TYPE_STRING, 0, None)],
}
METRIC_TYPES = ["COUNTER", "GAUGE", "SUMMARY", "UNTYPED", "HISTOGRAM", "GAUGE_HISTOGRAM"]


def _build():
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto(name="google/protobuf/timestamp.proto", package="google.protobuf",
                                            syntax="proto3")
    m = ts.message_type.add(name="Timestamp")
    m.field.add(name="seconds", number=1, type=F.TYPE_INT64, label=OPT)
    m.field.add(name="nanos", number=2, type=F.TYPE_INT32, label=OPT)
    pool.Add(ts)
    fd = descriptor_pb2.FileDescriptorProto(name="io/prometheus/client/metrics.proto",
                                            package="io.prometheus.client", syntax="proto2",
                                            dependency=["google/protobuf/timestamp.proto"])
    e = fd.enum_type.add(name="MetricType")
    for i, n in enumerate(METRIC_TYPES):
        e.value.add(name=n, number=i)
    for name, fields in MESSAGES.items():
        msg = fd.message_type.add(name=name)
        for fname, num, typ, rep, ref in fields:
            f = msg.field.add(name=fname, number=num, type=typ, label=REP if rep else OPT)
            if ref:
                f.type_name = ref if ref.startswith(".") else f".io.prometheus.client.{ref}"
            if rep and typ == F.TYPE_SINT64:
                f.options.packed = True
    pool.Add(fd)
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"io.prometheus.client.{n}"))
            for n in MESSAGES}


CLASSES = _build()
MetricFamily = CLASSES["MetricFamily"]


def parse_delimited(body: bytes):
    """The MetricFamily messages of a delimited stream."""
    out, pos = [], 0
    while pos < len(body):
        n, pos = _DecodeVarint(body, pos)
        mf = MetricFamily()
        mf.ParseFromString(body[pos:pos + n])
        out.append(mf)
        pos += n
    assert pos == len(body), "a message runs past the end of the stream"
    return out


def _ts(t):
    return t.seconds + t.nanos / 1e9


def samples(families):
    """The samples the text format shows for these families, as a set of
    (name, sorted label tuple, value); created timestamps as _created."""
    out = set()

    def add(name, labels, value):
        out.add((name, tuple(sorted(labels.items())), value))

    for mf in families:
        kind = METRIC_TYPES[mf.type]
        for m in mf.metric:
            labels = {lp.name: lp.value for lp in m.label}
            if kind == "COUNTER":
                base = mf.name[:-len("_total")] if mf.name.endswith("_total") else mf.name
                add(mf.name, labels, m.counter.value)
                if m.counter.HasField("created_timestamp"):
                    add(base + "_created", labels, _ts(m.counter.created_timestamp))
            elif kind in ("GAUGE", "UNTYPED"):
                add(mf.name, labels, m.gauge.value if kind == "GAUGE" else m.untyped.value)
            elif kind in ("HISTOGRAM", "GAUGE_HISTOGRAM"):
                h = m.histogram
                g = "g" if kind == "GAUGE_HISTOGRAM" else ""
                for b in h.bucket:
                    add(mf.name + "_bucket", dict(labels, le=_bound(b.upper_bound)),
                        float(b.cumulative_count) if not b.cumulative_count_float else b.cumulative_count_float)
                add(mf.name + f"_{g}count", labels, float(h.sample_count) or h.sample_count_float)
                add(mf.name + f"_{g}sum", labels, h.sample_sum)
                if h.HasField("created_timestamp"):
                    add(mf.name + "_created", labels, _ts(h.created_timestamp))
            elif kind == "SUMMARY":
                s = m.summary
                for q in s.quantile:
                    add(mf.name, dict(labels, quantile=_bound(q.quantile)), q.value)
                add(mf.name + "_count", labels, float(s.sample_count))
                add(mf.name + "_sum", labels, s.sample_sum)
                if s.HasField("created_timestamp"):
                    add(mf.name + "_created", labels, _ts(s.created_timestamp))
    return out


def _bound(v):
    from fastprom.exposition import floatToGoString

    return floatToGoString(v)
