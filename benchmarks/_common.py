"""Helpers shared by the benchmark scripts in this directory.

Only the standard library is imported here, and nothing heavy: ``memory.py``
measures the memory of child processes that import this module, and
``multiproc_scrape.py`` must not have fastprom or prometheus_client imported
before its spawned children set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client
and matplotlib are imported inside the functions that need them).

``http.py`` cannot put this directory on ``sys.path`` (its own name would
shadow the standard library's ``http``), so it loads this file by its path;
keep this module free of imports from this directory.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from typing import Any, Dict, List, Optional, Sequence, TypeVar

T = TypeVar("T")


# --------------------------------------------------------------------------- environment

def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Processor", "cpu model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def version_of(dist: str, module: Any = None, default: str = "unknown") -> str:
    """The installed version of the distribution ``dist``; failing that, ``module.__version__``
    (when a module is given), else ``default``."""
    try:
        from importlib.metadata import version
        return version(dist)
    except Exception:
        if module is None:
            return default
        return str(getattr(module, "__version__", default))


def environment(extra: Dict[str, Any]) -> Dict[str, Any]:
    """The interpreter and machine, then the script's own ``extra`` entries (library versions and
    the like, in their order), then the time (UTC)."""
    env: Dict[str, Any] = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    env.update(extra)
    env["time"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return env


def header_line(env: Dict[str, Any], *parts: str) -> str:
    """``Python <version> (<implementation>) | CPU: <model> (<n> logical) | <part> | <part> ...``"""
    return " | ".join([f"Python {env['python']} ({env['implementation']})",
                       f"CPU: {env['cpu']} ({env['cpus']} logical)", *parts])


def print_intro(header: str, details: str) -> None:
    """The header line, the line that says what is measured, and an empty line (flushed)."""
    print(header)
    print(details)
    print(flush=True)


def log(msg: str) -> None:
    """Progress and tracebacks: to stderr, flushed."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- options

def make_parser(doc: Optional[str]) -> argparse.ArgumentParser:
    """An argument parser described by the first paragraph of the script's docstring."""
    return argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_output_options(ap: argparse.ArgumentParser, chart_help: str,
                       json_help: str = "write every measurement to this JSON file") -> None:
    """``--json PATH`` and ``--chart PATH``."""
    ap.add_argument("--json", metavar="PATH", help=json_help)
    ap.add_argument("--chart", metavar="PATH", help=chart_help)


# --------------------------------------------------------------------------- statistics and formatting

def spread(samples: Sequence[float], unit: str) -> Dict[str, float]:
    """``{"median_<unit>": ..., "min_<unit>": ..., "max_<unit>": ...}`` of the samples."""
    return {f"median_{unit}": statistics.median(samples), f"min_{unit}": min(samples),
            f"max_{unit}": max(samples)}


def median_or_none(xs: Sequence[float]) -> Optional[float]:
    return statistics.median(xs) if xs else None


def rotated(items: Sequence[T], r: int) -> List[T]:
    """``items`` rotated left by ``r`` (the order of round ``r`` when every round shifts it by one)."""
    k = r % len(items)
    return list(items[k:]) + list(items[:k])


def fmt_ratio(r: Optional[float]) -> str:
    """``12.3x`` from 10 on, ``1.23x`` below; ``error`` for NaN, ``—`` for None."""
    if r is None:
        return "—"
    if r != r:
        return "error"
    return f"{r:,.1f}x" if round(r, 2) >= 10 else f"{r:,.2f}x"


def print_problem_list(problems: Sequence[str]) -> None:
    """One ``  - `` line per problem, its further lines indented under it."""
    for p in problems:
        print("  - " + p.rstrip().replace("\n", "\n    "))


# --------------------------------------------------------------------------- output files

def write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    print(f"results written to {path}")


def pyplot(path: str) -> Any:
    """``matplotlib.pyplot`` with the Agg backend; None (after saying so) if matplotlib is not
    installed, in which case no chart is written to ``path``."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed: no chart written to {path} (pip install matplotlib)")
        return None
    return plt


def save_chart(plt: Any, fig: Any, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"chart written to {path}")


# --------------------------------------------------------------------------- prometheus_client

class CreatedSeries:
    """Switches prometheus_client's ``_created`` samples off for a block, if asked."""

    #: prometheus_client, imported on first use (not at import time: see the module's docstring)
    pc: Any = None

    def __init__(self, off: bool) -> None:
        pc = CreatedSeries.pc
        if pc is None:
            import prometheus_client
            import prometheus_client.metrics
            pc = CreatedSeries.pc = prometheus_client
        self.off = off and hasattr(pc, "disable_created_metrics")
        self.was = bool(getattr(pc.metrics, "_use_created", True))

    def __enter__(self) -> None:
        if self.off:
            CreatedSeries.pc.disable_created_metrics()

    def __exit__(self, *exc: object) -> None:
        if self.off and self.was:
            CreatedSeries.pc.enable_created_metrics()
