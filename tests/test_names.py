"""Every public name of prometheus_client, at the same path in fastprom,
with the same signature: a user changes the import and nothing else.

A *public name* of a prometheus_client module is one without a leading
underscore that is not a module, not a name of ``typing``, and not a class
or function defined outside prometheus_client (the stdlib names its modules
import for themselves).  Signatures are compared on what a caller can rely
on: the kind of each parameter, the name of those that can be passed by
keyword, and the defaults (a default that is one of prometheus_client's own
objects, such as ``REGISTRY`` or ``default_handler``, must be fastprom's
object of that name).  Classes are compared by their constructor and by
every public method prometheus_client defines on them.
"""
import importlib
import inspect
import types
import typing

import pytest

pc = pytest.importorskip("prometheus_client")

import fastprom  # noqa: E402
import fastprom.registry  # noqa: E402

MODULES = ["", ".core", ".registry", ".exposition", ".openmetrics.exposition", ".samples", ".metrics_core",
           ".metrics", ".validation", ".multiprocess"]

#: Public names fastprom does not have, and why.
SKIPPED = {
    # prometheus_client.openmetrics.exposition does `from sys import maxunicode` for its own escaping code.
    ("openmetrics.exposition", "maxunicode"),
    # Type variables of prometheus_client's annotations (T bound to MetricWrapperBase, F to callables).
    ("metrics", "T"), ("metrics", "F"),
    # prometheus_client's per-process files: fastprom has one shared store file and no .db files to read.
    ("multiprocess", "MmapedDict"),
}
if getattr(pc.exposition, "snappy", None) is None:
    # The optional python-snappy module, an import of prometheus_client's: None when it is not installed.
    SKIPPED.add(("exposition", "snappy"))

#: Deliberate differences: (prometheus_client's qualified name, parameter) -> why.
DIFFERENCES = {
    # fastprom's registries own a C arena; its size is an extra keyword-only argument.
    ("prometheus_client.registry.CollectorRegistry", "store_size"): "extra keyword-only argument",
    # Summaries compute quantiles over a sliding window in fastprom (prometheus_client computes none).
    ("prometheus_client.metrics.Summary", "quantiles"): "extra argument, after prometheus_client's",
    ("prometheus_client.metrics.Summary", "max_age_seconds"): "extra argument",
    ("prometheus_client.metrics.Summary", "age_buckets"): "extra argument",
    # A per-metric series limit (new label sets past it go to the overflow series).
    **{(f"prometheus_client.metrics.{t}", "max_series"): "extra keyword-only argument"
       for t in ("Counter", "Gauge", "Histogram", "Summary", "Info", "Enum")},
    # Basic authentication and TLS from a Prometheus web configuration file.
    ("prometheus_client.exposition.start_wsgi_server", "web_config_file"): "extra keyword-only argument",
    # Native histograms (client_golang's settings; prometheus_client has none).
    **{("prometheus_client.metrics.Histogram", f"native_histogram_{p}"): "extra keyword-only argument"
       for p in ("bucket_factor", "zero_threshold", "max_bucket_number", "min_reset_duration", "max_zero_threshold")},
    # A default where prometheus_client has none (REGISTRY): every call that works there works here.
    ("prometheus_client.exposition.write_to_textfile", "registry"): "default added",
    ("prometheus_client.openmetrics.exposition.generate_latest", "registry"): "default added",
    # MetricWrapperBase is the base for isinstance checks; labels(), remove(), clear() and collect()
    # are on every metric type (in C for the store-backed ones, which must come first in the MRO).
    ("prometheus_client.metrics.MetricWrapperBase.labels", None): "on each metric type",
    ("prometheus_client.metrics.MetricWrapperBase.remove", None): "on each metric type",
    ("prometheus_client.metrics.MetricWrapperBase.clear", None): "on each metric type",
    ("prometheus_client.metrics.MetricWrapperBase.collect", None): "on each metric type",
    # MultiProcessCollector.merge reads prometheus_client's .db files; fastprom's store has none.
    ("prometheus_client.multiprocess.MultiProcessCollector.merge", None): "no per-process files",
}

_POSITIONAL = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def public_names(module):
    out = {}
    for name in dir(module):
        obj = getattr(module, name)
        if name.startswith("_") or isinstance(obj, types.ModuleType) or \
                (hasattr(typing, name) and getattr(typing, name) is obj):
            continue
        if (inspect.isclass(obj) or inspect.isroutine(obj)) and \
                not (getattr(obj, "__module__", None) or "").startswith("prometheus_client"):
            continue
        out[name] = obj
    return out


def same_default(theirs, ours, fp_module):
    if theirs is inspect.Parameter.empty or ours is inspect.Parameter.empty:
        return theirs is ours
    if theirs is pc.registry.REGISTRY:
        return ours is fastprom.registry.REGISTRY
    if inspect.isfunction(theirs) and theirs.__module__.startswith("prometheus_client"):
        if theirs.__name__ == "<lambda>":
            return callable(ours) and theirs() == ours()
        return ours is getattr(fp_module, theirs.__name__, None)
    return type(theirs) is type(ours) and theirs == ours


def compare(qualname, theirs, ours, fp_module, used, drop_self):
    """The differences between two signatures that are not allowed, as text."""
    try:
        sig_theirs = inspect.signature(theirs)
    except (TypeError, ValueError):
        return []
    try:
        sig_ours = inspect.signature(ours)
    except (TypeError, ValueError) as e:
        return [f"{qualname}: no signature ({e})"]
    tp = list(sig_theirs.parameters.values())[int(drop_self):]
    op = list(sig_ours.parameters.values())[int(drop_self):]
    problems = []
    for i in range(max(len(tp), len(op))):
        t = tp[i] if i < len(tp) else None
        o = op[i] if i < len(op) else None
        key = (qualname, (t or o).name)
        if key in DIFFERENCES:
            used.add(key)
            continue
        if t is None or o is None:
            problems.append(f"{qualname}: parameter {(t or o).name!r} only in {'fastprom' if t is None else 'theirs'}")
            continue
        if t.kind != o.kind or (t.kind in _POSITIONAL and t.name != o.name):
            problems.append(f"{qualname}: parameter {i} is {o.name} ({o.kind.name}), theirs {t.name} ({t.kind.name})")
        elif not same_default(t.default, o.default, fp_module):
            problems.append(f"{qualname}: {t.name} defaults to {o.default!r}, theirs {t.default!r}")
    return problems


def methods(cls):
    """Public methods prometheus_client defines on a class (or its own bases)."""
    out = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("prometheus_client"):
            continue
        for name, v in vars(klass).items():
            if not name.startswith("_") and (inspect.isfunction(v) or isinstance(v, (classmethod, staticmethod))):
                out[name] = isinstance(v, (classmethod, staticmethod))
    return out


def check_module(suffix, used):
    theirs = importlib.import_module("prometheus_client" + suffix)
    ours = importlib.import_module("fastprom" + suffix)
    key = suffix.lstrip(".")
    problems = []
    for name, obj in sorted(public_names(theirs).items()):
        if (key, name) in SKIPPED:
            used.add((key, name))
            continue
        if not hasattr(ours, name):
            problems.append(f"fastprom{suffix}.{name} is missing")
            continue
        mine = getattr(ours, name)
        if suffix == ".metrics" and name == "Info":
            continue  # prometheus-fastapi-instrumentator's Info here (see fastprom.metrics)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        qual = f"{obj.__module__}.{obj.__qualname__}"
        problems += compare(qual, obj, mine, ours, used, drop_self=False)
        if inspect.isclass(obj):
            for meth, bound in methods(obj).items():
                mqual = f"{qual}.{meth}"
                if (mqual, None) in DIFFERENCES:
                    used.add((mqual, None))
                    continue
                if not hasattr(mine, meth):
                    problems.append(f"fastprom{suffix}.{name}.{meth} is missing")
                    continue
                problems += compare(mqual, getattr(obj, meth), getattr(mine, meth), ours, used,
                                    drop_self=not bound)
    return problems


def test_every_public_name_exists_with_the_same_signature():
    used = set()
    problems = []
    for suffix in MODULES:
        problems += check_module(suffix, used)
    assert not problems, "\n".join(sorted(set(problems)))
    # Every allowance is still needed: a stale one would hide a regression.
    stale = (set(DIFFERENCES) | SKIPPED) - used
    assert not stale, stale


def test_the_comparison_notices_differences():
    """The checker itself: a missing name, a renamed parameter, a changed
    default and a different REGISTRY are all reported."""
    def theirs(a, b=1, *, registry=pc.REGISTRY):
        pass

    def renamed(a, c=1, *, registry=fastprom.REGISTRY):
        pass

    def other_default(a, b=2, *, registry=fastprom.REGISTRY):
        pass

    def other_registry(a, b=1, *, registry=fastprom.CollectorRegistry()):
        pass

    def same(a, b=1, *, registry=fastprom.REGISTRY):
        pass

    for fn in (renamed, other_default, other_registry):
        assert compare("x", theirs, fn, fastprom, set(), False), fn.__name__
    assert compare("x", theirs, same, fastprom, set(), False) == []
    fake = types.ModuleType("fake")
    assert public_names(fake) == {}


def test_metrics_is_both_modules():
    """fastprom.metrics has prometheus_client.metrics' names and
    prometheus-fastapi-instrumentator's; the one clash, Info, is the
    instrumentator's request info class."""
    import fastprom.metrics as m
    from fastprom.asgi import instrumentations

    assert m.Counter is fastprom.Counter and m.MetricWrapperBase is fastprom.metrics.MetricWrapperBase
    assert m.Info is instrumentations.Info and m.Info is not fastprom.Info
    assert m.latency is instrumentations.latency and m.default is instrumentations.default
    for cls in (fastprom.Counter, fastprom.Gauge, fastprom.Histogram, fastprom.Summary, fastprom.Info, fastprom.Enum):
        assert issubclass(cls, m.MetricWrapperBase)
    with pytest.raises(TypeError):
        m.MetricWrapperBase("x", "doc")


def test_created_flag_of_the_metrics_module(registry):
    """Assigning ``metrics._use_created`` turns ``_created`` samples off and
    on, as assigning prometheus_client's module flag does."""
    import fastprom.metrics as m

    c = fastprom.Counter("c", "C", registry=registry)
    assert registry.get_sample_value("c_created") is not None and m._use_created is True
    m._use_created = False
    try:
        assert registry.get_sample_value("c_created") is None and m._use_created is False
    finally:
        m._use_created = True
    assert registry.get_sample_value("c_created") is not None
    assert m._get_use_created() is True
    c.inc()
