#!/usr/bin/env python3
"""Runs prometheus-fastapi-instrumentator's own test suite against the
installed fastprom, with only the module name changed.

The tests are copied into a temporary directory (never into this
repository), every ``prometheus_fastapi_instrumentator`` in them is replaced
by ``fastprom`` and nothing else is touched: their imports of
``prometheus_client`` stay, and since fastprom's default registry is
prometheus_client's, their fixtures that reset ``prometheus_client.REGISTRY``
reset ours too.  pytest then runs them in one process, with the pytest
settings of PFI's ``pyproject.toml`` when the source has one.

    python tools/pfi_suite.py                      # the mirror of PFI's repository, at HEAD
    python tools/pfi_suite.py --repo PATH --rev v8.0.2
    python tools/pfi_suite.py --tests DIR          # a directory holding PFI's tests
    python tools/pfi_suite.py --add new_test.py    # plus test files of a later release
    python tools/pfi_suite.py --multiproc          # also PFI's second pass (PROMETHEUS_MULTIPROC_DIR set)
    python tools/pfi_suite.py --junit report.xml -- -x -k expose

Prints the counts and the ids of failing tests; ``--json PATH`` writes them
as JSON.  Exits 0 when no test failed (or when ``--min-passed N`` is given and
at least N passed), 1 otherwise, 2 when the tests could not be obtained.
The tests need fastapi, httpx, httpx2, requests, devtools and pytest-asyncio
(fastprom's ``test`` extra installs them).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional

MIRROR = "/work/.mirror/trallnag+prometheus-fastapi-instrumentator/repo"
OLD, NEW = "prometheus_fastapi_instrumentator", "fastprom"
# PFI's pytest settings, used when the source does not carry its pyproject.toml.
FALLBACK_INI = "[pytest]\nnorecursedirs = tests/helpers\nmarkers =\n    slow: mark test as slow.\nasyncio_mode = auto\n"


def default_source() -> Optional[str]:
    """Where PFI's tests are found without arguments: FASTPROM_PFI_TESTS (a
    tests directory or a git repository), else the mirror, else None."""
    env = os.environ.get("FASTPROM_PFI_TESTS")
    if env:
        return env
    return MIRROR if os.path.isdir(MIRROR) else None


def is_git_repo(path: str) -> bool:
    r = subprocess.run(["git", "-C", path, "rev-parse", "--git-dir"], capture_output=True, text=True)
    return r.returncode == 0 and not os.path.isfile(os.path.join(path, "conftest.py"))


def from_repo(repo: str, rev: str, dest: str) -> Optional[str]:
    """Extracts ``tests/`` (and pyproject.toml) at ``rev`` into ``dest``;
    returns PFI's version at that revision, when it can be read."""
    paths = ["tests"]
    listed = subprocess.run(["git", "-C", repo, "ls-tree", "--name-only", rev, "pyproject.toml"],
                            capture_output=True, text=True)
    if listed.stdout.strip():
        paths.append("pyproject.toml")
    tar = subprocess.run(["git", "-C", repo, "archive", rev, *paths], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as tf:
        tf.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else tf.extractall(dest)
    init = subprocess.run(["git", "-C", repo, "show", f"{rev}:src/{OLD}/__init__.py"], capture_output=True, text=True)
    m = re.search(r'__version__\s*=\s*"([^"]+)"', init.stdout)
    return m.group(1) if m else None


def from_dir(tests: str, dest: str) -> None:
    """Copies a tests directory (and the pyproject.toml beside it, if any)."""
    shutil.copytree(tests, os.path.join(dest, "tests"), ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pyproject = os.path.join(os.path.dirname(os.path.abspath(tests)), "pyproject.toml")
    if os.path.isfile(pyproject):
        shutil.copy(pyproject, os.path.join(dest, "pyproject.toml"))


def rename_module(root: str) -> int:
    """Replaces the module name in every .py file under ``root``; returns the
    number of files changed."""
    changed = 0
    for d, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(d, f)
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
            if OLD in text:
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(text.replace(OLD, NEW))
                changed += 1
    return changed


def pytest_config(dest: str) -> None:
    """Keeps only PFI's pytest section of its pyproject.toml (nothing else of
    the project is wanted here), or writes the equivalent pytest.ini."""
    pyproject = os.path.join(dest, "pyproject.toml")
    section: List[str] = []
    if os.path.isfile(pyproject):
        with open(pyproject, encoding="utf-8") as fh:
            inside = False
            for line in fh:
                if line.startswith("["):
                    inside = line.strip() == "[tool.pytest.ini_options]"
                if inside:
                    section.append(line)
        os.remove(pyproject)
    if section:
        with open(pyproject, "w", encoding="utf-8") as fh:
            fh.writelines(section)
    else:
        with open(os.path.join(dest, "pytest.ini"), "w", encoding="utf-8") as fh:
            fh.write(FALLBACK_INI)


def read_junit(path: str) -> Dict[str, List[str]]:
    """Test ids by outcome (passed, failed, error, skipped) from a JUnit report."""
    out: Dict[str, List[str]] = {"passed": [], "failed": [], "error": [], "skipped": []}
    for case in ET.parse(path).getroot().iter("testcase"):
        cls = case.get("classname", "")
        if not cls:  # a module that failed to import: name is "tests.test_x"
            cls, name = case.get("name", ""), ""
        else:
            name = case.get("name", "")
        parts = cls.split(".")
        # classname is "tests.test_x" or "tests.test_x.TestClass".
        n = next((i for i, p in enumerate(parts) if p.startswith("test_")), len(parts) - 1)
        tid = "/".join(parts[: n + 1]) + ".py" + "".join("::" + x for x in parts[n + 1:] + [name] if x)
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            out["failed"].append(tid)
        elif "error" in kinds:
            out["error"].append(tid)
        elif "skipped" in kinds:
            out["skipped"].append(tid)
        else:
            out["passed"].append(tid)
    return out


def run_pass(work: str, python: str, report: str, args: List[str], env: Dict[str, str], quiet: bool) -> int:
    # pytest-asyncio's loop scope is set only to silence its warning about it being unset.
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", work, f"--junitxml={report}",
           "-o", "junit_family=xunit1", "-o", "asyncio_default_fixture_loop_scope=function",
           "--continue-on-collection-errors", "tests", *args]
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT if quiet else None).returncode


def which_fastprom(python: str, env: Dict[str, str], cwd: str) -> str:
    r = subprocess.run([python, "-c", "import fastprom; print(fastprom.__file__)"], capture_output=True, text=True,
                       env=env, cwd=cwd)
    if r.returncode == 0:
        return r.stdout.strip()
    lines = r.stderr.strip().splitlines()
    return f"nowhere ({lines[-1] if lines else 'import failed'})"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--repo", help=f"a git repository of PFI (default: FASTPROM_PFI_TESTS or {MIRROR})")
    src.add_argument("--tests", help="a directory holding PFI's tests (its conftest.py and test_*.py)")
    p.add_argument("--rev", default="HEAD", help="the revision of --repo (default HEAD)")
    p.add_argument("--add", action="append", default=[], metavar="FILE",
                   help="also copy this test file into tests/ (repeatable): e.g. a later release's new tests")
    p.add_argument("--python", default=sys.executable, help="the interpreter with fastprom installed")
    p.add_argument("--multiproc", action="store_true",
                   help="also run PFI's multiprocess pass: -k test_multiproc with PROMETHEUS_MULTIPROC_DIR set")
    p.add_argument("--junit", help="write the JUnit XML report here (the main pass)")
    p.add_argument("--json", help="write the counts and test ids here as JSON")
    p.add_argument("--min-passed", type=int, help="exit 0 when at least this many tests passed")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show pytest's own output")
    p.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    a = p.parse_args(argv)

    source = a.tests or a.repo or default_source()
    if source is None or not os.path.exists(source):
        print(f"pfi-suite: PFI's tests not found (tried {source or MIRROR}); pass --repo or --tests, "
              "or set FASTPROM_PFI_TESTS", file=sys.stderr)
        return 2

    work = tempfile.mkdtemp(prefix="fastprom-pfi-")
    try:
        version = None
        if a.tests is None and is_git_repo(source):
            version = from_repo(source, a.rev, work)
        else:
            from_dir(source, work)
        for extra in a.add:
            shutil.copy(extra, os.path.join(work, "tests", os.path.basename(extra)))
        if not os.path.isfile(os.path.join(work, "tests", "conftest.py")):
            print(f"pfi-suite: {source} holds no tests/conftest.py", file=sys.stderr)
            return 2
        changed = rename_module(os.path.join(work, "tests"))
        pytest_config(work)

        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR",
                                                                 "FASTPROM_MULTIPROC_DIR")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        print(f"pfi-suite: PFI {version or '(version unknown)'} tests from {source}"
              f"{'@' + a.rev if a.tests is None and version is not None else ''}; "
              f"{changed} files renamed to import {NEW}; {NEW} from {which_fastprom(a.python, env, work)}",
              flush=True)

        passes = [("main", env, list(a.pytest_args))]
        if a.multiproc:
            mp_dir = os.path.join(work, "multiproc")
            os.mkdir(mp_dir)
            passes.append(("multiproc", dict(env, PROMETHEUS_MULTIPROC_DIR=mp_dir),
                           ["-k", "test_multiproc", *a.pytest_args]))

        summary: Dict[str, Dict[str, List[str]]] = {}
        for name, penv, args in passes:
            report = os.path.join(work, f"report-{name}.xml")
            rc = run_pass(work, a.python, report, args, penv, a.quiet)
            if not os.path.isfile(report):
                print(f"pfi-suite: pytest ({name} pass) wrote no report (exit {rc})", file=sys.stderr)
                return 2
            summary[name] = read_junit(report)
            if name == "main" and a.junit:
                shutil.copy(report, a.junit)

        ok = True
        for name, res in summary.items():
            counts = {k: len(v) for k, v in res.items()}
            print(f"pfi-suite ({name} pass): {counts['passed']} passed, {counts['failed']} failed, "
                  f"{counts['error']} errors, {counts['skipped']} skipped")
            for tid in res["failed"] + res["error"]:
                print(f"  FAILED {tid}")
            ok = ok and not res["failed"] and not res["error"]
        if a.json:
            with open(a.json, "w", encoding="utf-8") as fh:
                json.dump({"version": version, "source": source, "passes": summary}, fh, indent=1)
        if a.min_passed is not None:
            return 0 if len(summary["main"]["passed"]) >= a.min_passed else 1
        return 0 if ok else 1
    finally:
        if a.keep:
            print(f"pfi-suite: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
