"""atheris target for content negotiation (fastprom.exposition).

The input is an Accept header, a NUL byte, and an Accept-Encoding header
(no NUL: all of it is Accept).  Each is decoded twice, as UTF-8 with
surrogate escapes (any str, lone surrogates included) and as Latin-1 (how
an ASGI server hands header bytes over), and given to negotiate_format,
choose_format, accepts_gzip, gzip_accepted, choose_encoder and negotiate
(with a small registry).  None may raise, and each must answer with one of
the known content types and encodings.

    python negotiation.py [atheris / libFuzzer options] [corpus dirs]
"""
import re
import sys

import atheris

with atheris.instrument_imports():
    import fastprom
    from fastprom import exposition

SCHEMES = ("allow-utf-8", "underscores", "dots", "values")
FIXED_TYPES = {
    exposition.CONTENT_TYPE_PLAIN_0_0_4,
    exposition.OPENMETRICS_CONTENT_TYPE,
    exposition.OPENMETRICS_0_0_1_CONTENT_TYPE,
    *(f"{exposition.PROTOBUF_CONTENT_TYPE}; escaping={s}" for s in SCHEMES),
    *(f"{exposition.CONTENT_TYPE_PLAIN_1_0_0}; escaping={s}" for s in SCHEMES),
    *(f"application/openmetrics-text; version=1.0.0; charset=utf-8; escaping={s}" for s in SCHEMES),
}
# choose_encoder names the version it was asked for, as prometheus_client
# does: any version at least 1.0.0, which must not bring a character into
# the header that could end or split it.
VERSIONED_OM = re.compile(r"application/openmetrics-text; version=([^;,\x00-\x1f\x7f]+); charset=utf-8; "
                          r"escaping=(allow-utf-8|underscores|dots|values)\Z")


def known(ctype: str, versioned: bool = False) -> bool:
    if ctype in FIXED_TYPES:
        return True
    return versioned and VERSIONED_OM.match(ctype) is not None


def registry() -> "fastprom.CollectorRegistry":
    reg = fastprom.CollectorRegistry()
    c = fastprom.Counter("requests", "Requests.", ["path"], registry=reg)
    c.labels("/a").inc()
    fastprom.Gauge("name.with.dots", "UTF-8 name.", registry=reg).set(2)
    fastprom.Histogram("latency_seconds", "Latency.", buckets=[0.1, 1], registry=reg).observe(0.5)
    return reg


REGISTRY = registry()
RENDERERS = {  # what each (OpenMetrics?, protobuf?, escaping) must render as
    (om, pb, esc): REGISTRY.render(om, escaping=esc, protobuf=pb)
    for om, pb in ((False, False), (True, False), (False, True)) for esc in SCHEMES
}
PROTOCOLS = ("PrometheusProto", "OpenMetricsText1.0.0", "OpenMetricsText0.0.1", "PrometheusText1.0.0",
             "PrometheusText0.0.4")


def check(accept: str, encoding: str) -> None:
    fmt = exposition.negotiate_format(accept)
    om, pb, ctype, esc = fmt.openmetrics, fmt.protobuf, fmt.content_type, fmt.escaping
    if fmt.protocol not in PROTOCOLS or esc not in SCHEMES or not known(ctype):
        raise AssertionError(f"negotiate_format({accept!r}) = {fmt!r}")
    if om != ctype.startswith("application/openmetrics-text") or \
            pb != ctype.startswith(exposition.PROTOBUF_CONTENT_TYPE):
        raise AssertionError(f"negotiate_format({accept!r}) = {fmt!r}: format and type disagree")
    if exposition.choose_format(accept) is not om:
        raise AssertionError(f"choose_format({accept!r}) disagrees with negotiate_format")

    gz = exposition.accepts_gzip(encoding)
    if not isinstance(gz, bool) or exposition.gzip_accepted(encoding) is not gz:
        raise AssertionError(f"accepts_gzip / gzip_accepted({encoding!r}) = {gz!r}")

    encoder, etype = exposition.choose_encoder(accept)
    if not callable(encoder) or not known(etype, versioned=True):
        raise AssertionError(f"choose_encoder({accept!r}) = {etype!r}")

    out = exposition.negotiate(REGISTRY, accept, encoding)
    if out.content_type != ctype or out.content_encoding not in (None, "gzip") or \
            (out.content_encoding == "gzip") != gz:
        raise AssertionError(f"negotiate({accept!r}, {encoding!r}) = {out.headers!r}")
    body = out.body
    if out.content_encoding == "gzip":
        import gzip

        body = gzip.decompress(body)
    if body != RENDERERS[(om, pb, esc)]:
        raise AssertionError(f"negotiate({accept!r}) rendered something else than {fmt!r} asks for")


def test_one_input(data: bytes) -> None:
    accept, _, encoding = data.partition(b"\x00")
    for codec, errors in (("utf-8", "surrogateescape"), ("latin-1", "strict")):
        check(accept.decode(codec, errors), encoding.decode(codec, errors))
    # No header at all, as a scraper may send.
    if not data:
        exposition.negotiate_format(None)
        exposition.choose_encoder(None)
        exposition.accepts_gzip(None)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
