#!/usr/bin/env python3
"""Runs prometheus_client's own test suite against fastprom.

prometheus_client's source distribution for the installed version is
downloaded at run time (``pip download``; cached in
``~/.cache/fastprom-peer-suites``, or ``$FASTPROM_PEER_CACHE``), a few of
its test files are extracted into a temporary directory, their
``prometheus_client`` imports are rewritten to ``fastprom`` (the import
statements only: every other line stays as it is), and pytest runs them in
one process against the installed fastprom.  Nothing of theirs is written
into this repository.

    python tools/peer_suite.py                  # prints per-file counts
    python tools/peer_suite.py --junit out.xml  # and keeps pytest's report
    python tools/peer_suite.py --json out.json  # per-file counts and failing test ids
    python tools/peer_suite.py -- -k Counter    # arguments after -- go to pytest

Exit status: 0 when the suite ran (failures are results, not errors), 2
when the source distribution could not be obtained, 1 for anything else.
"""
from __future__ import annotations

import argparse
import ast
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional, Tuple

PEER = "prometheus_client"
OURS = "fastprom"

#: The test files to run, if the source distribution has them (0.26's sdist
#: ships no tests/openmetrics/ and no test_registry.py).
TEST_FILES = (
    "tests/test_core.py",
    "tests/test_exposition.py",
    "tests/openmetrics/test_exposition.py",
    "tests/test_samples.py",
    "tests/test_registry.py",
    "tests/test_asgi.py",
)
#: Data the tests read (TLS certificates for the server tests).
DATA_DIRS = ("tests/certs",)
#: Third-party modules a file needs beyond pytest: without them it is not run.
NEEDS = {"tests/test_asgi.py": ("asgiref",)}
#: prometheus_client modules whose imports are kept: ``decorator`` is a
#: vendored copy of the third-party ``decorator`` package that the tests use
#: as a helper (``getargspec``), not the API under test.
KEEP = ("prometheus_client.decorator",)

#: Tests not run, and why.  Nothing is excluded for failing against fastprom:
#: those failures are results, explained in tests/test_peer_suite.py.
EXCLUDED = {
    "tests/test_exposition.py::TestWsgiTLS::test_mtls_untrusted_client_cert_raises":
        "flaky with prometheus_client itself: under TLS 1.3 the server's refusal of the client "
        "certificate reaches the client as ssl.SSLError or, as often, as URLError(SSLEOFError)",
}

EXIT_NO_SDIST = 2


class NoSdist(Exception):
    """The source distribution could not be downloaded."""


def cache_dir() -> str:
    return os.environ.get("FASTPROM_PEER_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "fastprom-peer-suites")


def sdist(version: str) -> str:
    """The path of the cached sdist of ``prometheus_client==version``, downloaded if needed."""
    directory = os.path.join(cache_dir(), f"{PEER}-{version}")
    wanted = re.compile(rf"^{PEER}-{re.escape(version)}\.(tar\.gz|zip)$", re.I)
    found = [f for f in os.listdir(directory) if wanted.match(f)] if os.path.isdir(directory) else []
    if not found:
        os.makedirs(directory, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"{PEER}=={version}", "-d", directory, "--quiet", "--disable-pip-version-check"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NoSdist(f"pip download failed: {e}") from None
        found = [f for f in os.listdir(directory) if wanted.match(f)]
        if r.returncode != 0 or not found:
            raise NoSdist(f"pip download of {PEER}=={version} failed:\n{r.stdout}{r.stderr}".rstrip())
    return os.path.join(directory, found[0])


def _safe_target(root: str, rel: str) -> str:
    target = os.path.normpath(os.path.join(root, rel))
    if not target.startswith(os.path.abspath(root) + os.sep):
        raise ValueError(f"refusing to extract {rel!r} outside {root}")
    return target


def extract(archive: str, dest: str) -> List[str]:
    """Extracts the test files and their data into ``dest``; returns the test files found."""
    if not archive.endswith(".tar.gz"):
        raise NoSdist(f"unexpected sdist format: {archive}")
    present = []
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) != 2 or not member.isfile():
                continue
            rel = parts[1]
            if rel in TEST_FILES or any(rel.startswith(d + "/") for d in DATA_DIRS):
                target = _safe_target(dest, rel)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None
                with src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                if rel in TEST_FILES:
                    present.append(rel)
    return sorted(present, key=TEST_FILES.index)


def _ours(module: str) -> str:
    return OURS + module[len(PEER):]


def _is_peer(module: Optional[str]) -> bool:
    if not module or module in KEEP:
        return False
    return module == PEER or module.startswith(PEER + ".")


def rewrite_imports(source: str) -> Tuple[str, int]:
    """The source with every import of prometheus_client turned into the
    same import of fastprom, and how many statements changed.

    ``from prometheus_client.x import a as b`` keeps its names;
    ``import prometheus_client.x`` becomes ``import fastprom.x; import
    fastprom as prometheus_client`` so that attribute uses
    (``prometheus_client.x.y``) on later lines reach fastprom; ``import
    prometheus_client.x as m`` becomes ``import fastprom.x as m``.  Only the
    import statements' own lines change, so line numbers stay."""
    lines = source.splitlines(keepends=True)
    changed = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and _is_peer(node.module):
            i = node.lineno - 1
            new = re.sub(rf"\bfrom(\s+){re.escape(node.module or '')}\b", rf"from\g<1>{_ours(node.module or '')}",
                         lines[i], count=1)
            if new == lines[i]:
                raise ValueError(f"line {node.lineno}: cannot rewrite {lines[i]!r}")
            lines[i] = new
            changed += 1
        elif isinstance(node, ast.Import) and any(_is_peer(a.name) for a in node.names):
            if node.end_lineno != node.lineno:
                raise ValueError(f"line {node.lineno}: multi-line import statement")
            i = node.lineno - 1
            indent = re.match(r"\s*", lines[i]).group(0)  # type: ignore[union-attr]
            parts = []
            for a in node.names:
                if not _is_peer(a.name):
                    parts.append(f"import {a.name}" + (f" as {a.asname}" if a.asname else ""))
                elif a.asname:
                    parts.append(f"import {_ours(a.name)} as {a.asname}")
                else:
                    parts.append(f"import {_ours(a.name)}")
                    parts.append(f"import {OURS} as {PEER}")
            ending = "\n" if lines[i].endswith("\n") else ""
            lines[i] = indent + "; ".join(parts) + ending
            changed += 1
    return "".join(lines), changed


def counts_from_junit(path: str) -> Dict[str, Dict[str, Any]]:
    """Per test file: passed, failed (failures and errors), skipped, and the failing test ids."""
    out: Dict[str, Dict[str, Any]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        rel = case.get("file") or ""
        entry = out.setdefault(rel, {"passed": 0, "failed": 0, "skipped": 0, "failures": []})
        name = case.get("name") or ""
        cls = case.get("classname") or ""
        if not cls:  # a collection error: pytest names it after the module
            test_id = f"{rel} (collection error)"
        elif cls.rsplit(".", 1)[-1] == os.path.basename(rel)[:-3]:  # a module-level test
            test_id = f"{rel}::{name}"
        else:
            test_id = f"{rel}::{cls.rsplit('.', 1)[-1]}::{name}"
        if case.find("failure") is not None or case.find("error") is not None:
            entry["failed"] += 1
            entry["failures"].append(test_id)
        elif case.find("skipped") is not None:
            entry["skipped"] += 1
        else:
            entry["passed"] += 1
    return out


def run(junit: Optional[str], json_path: Optional[str], pytest_args: List[str], verbose: bool) -> int:
    version = importlib.metadata.version(PEER)
    with tempfile.TemporaryDirectory(prefix="fastprom-peer-") as tmp:
        try:
            files = extract(sdist(version), tmp)
        except (NoSdist, tarfile.TarError) as e:
            print(f"peer suite: cannot obtain {PEER} {version}'s source distribution: {e}", file=sys.stderr)
            return EXIT_NO_SDIST
        absent = [f for f in TEST_FILES if f not in files]
        notes = {f: "not in the source distribution" for f in absent}
        runnable = []
        for f in files:
            missing = [m for m in NEEDS.get(f, ()) if importlib.util.find_spec(m) is None]
            if missing:
                notes[f] = f"not run: needs {', '.join(missing)}"
                continue
            path = os.path.join(tmp, f)
            with open(path, encoding="utf-8") as fh:
                text, _ = rewrite_imports(fh.read())
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            runnable.append(f)
        with open(os.path.join(tmp, "pytest.ini"), "w") as fh:
            fh.write("[pytest]\n")
        report = os.path.join(tmp, "report.xml")
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--import-mode=importlib",
               "-o", "junit_family=xunit1", "--continue-on-collection-errors", f"--junitxml={report}",
               "-c", os.path.join(tmp, "pytest.ini"),
               "--rootdir", tmp, "-q" if verbose else "-qq", "--tb=short" if verbose else "--tb=no",
               *runnable, *[f"--deselect={t}" for t in EXCLUDED], *pytest_args]
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=not verbose, text=True)
        if not os.path.exists(report):
            print(f"peer suite: pytest wrote no report (exit {proc.returncode})", file=sys.stderr)
            if proc.stdout or proc.stderr:
                print((proc.stdout or "") + (proc.stderr or ""), file=sys.stderr)
            return 1
        counts = counts_from_junit(report)
        if junit:
            shutil.copyfile(report, junit)
    print(f"{PEER} {version}'s tests against {OURS}:")
    print(f"  {'file':40} {'passed':>7} {'failed':>7} {'skipped':>8}")
    summary: Dict[str, Dict[str, Any]] = {}
    for f in TEST_FILES:
        if f in notes:
            print(f"  {f:40} {notes[f]}")
            summary[f] = {"note": notes[f]}
            continue
        c = counts.get(f, {"passed": 0, "failed": 0, "skipped": 0, "failures": []})
        print(f"  {f:40} {c['passed']:>7} {c['failed']:>7} {c['skipped']:>8}")
        summary[f] = c
    print("excluded:")
    for t, why in EXCLUDED.items():
        print(f"  {t}: {why}")
    failing = [t for f in TEST_FILES for t in summary[f].get("failures", [])]
    if failing:
        print("failing:")
        for t in failing:
            print(f"  {t}")
    if json_path:
        with open(json_path, "w") as fh:
            json.dump({"version": version, "files": summary, "excluded": EXCLUDED}, fh, indent=1)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: List[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--junit", metavar="PATH", help="write pytest's JUnit XML report here")
    p.add_argument("--json", metavar="PATH", help="write per-file counts and failing test ids here")
    p.add_argument("-v", "--verbose", action="store_true", help="show pytest's output")
    args = p.parse_args(argv)
    return run(args.junit, args.json, extra, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
