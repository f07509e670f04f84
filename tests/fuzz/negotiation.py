"""atheris target for content negotiation (fastprom.exposition).

The input is an Accept header, a NUL byte, and an Accept-Encoding header
(no NUL: all of it is Accept).  Each is decoded twice, as UTF-8 with
surrogate escapes (any str, lone surrogates included) and as Latin-1 (how
an ASGI server hands header bytes over), and given to _choice,
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
RENDERERS = {  # what each (OpenMetrics?, escaping) must render as
    (om, esc): REGISTRY.render(om, escaping=esc) for om in (False, True) for esc in SCHEMES
}


def check(accept: str, encoding: str) -> None:
    om, ctype, esc = exposition._choice(accept)
    if not isinstance(om, bool) or esc not in SCHEMES or not known(ctype):
        raise AssertionError(f"_choice({accept!r}) = {(om, ctype, esc)!r}")
    if om != ctype.startswith("application/openmetrics-text"):
        raise AssertionError(f"_choice({accept!r}) = {(om, ctype, esc)!r}: format and type disagree")
    if exposition.choose_format(accept) is not om:
        raise AssertionError(f"choose_format({accept!r}) disagrees with _choice")

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
    if body != RENDERERS[(om, esc)]:
        raise AssertionError(f"negotiate({accept!r}) rendered something else than {(om, esc)!r} asks for")


def test_one_input(data: bytes) -> None:
    accept, _, encoding = data.partition(b"\x00")
    for codec, errors in (("utf-8", "surrogateescape"), ("latin-1", "strict")):
        check(accept.decode(codec, errors), encoding.decode(codec, errors))
    # No header at all, as a scraper may send.
    if not data:
        exposition._choice(None)
        exposition.choose_encoder(None)
        exposition.accepts_gzip(None)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
