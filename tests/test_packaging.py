"""Packaging as a user meets it: `python -m build` makes an sdist and a wheel
without a warning, `auditwheel repair` makes a manylinux wheel of it, and a
fresh virtual environment installs that wheel with no compiler on PATH (and
then the sdist, with one).  Without FastAPI and uvicorn, `python -m fastprom
demo` says in one line what to install.  Each step is bounded in time."""
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from packaging.specifiers import SpecifierSet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The CPython versions the whole suite runs on: 3.11 here, 3.13 and 3.13t
# built by tools/interpreters.sh, 3.14 in tools/sid.sh's root.
TESTED_VERSIONS = ("3.11", "3.13", "3.14")
STEP = 600  # seconds, at most, for any one step (a build compiles the C core)

SMOKE = """
import sys, fastprom
from fastprom import CollectorRegistry, Counter, generate_latest
r = CollectorRegistry()
c = Counter("smoke_total", "Smoke.", ["k"], registry=r)
for i in range(1000):
    c.labels("a").inc()
out = generate_latest(r).decode()
assert 'smoke_total{k="a"} 1000.0' in out, out
print(fastprom.__file__)
"""


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=STEP, **kw)
    assert p.returncode == 0, f"{cmd} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    # From a copy without build products, as a release would be made.
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv*", "build", "*.egg-info", ".git", "__pycache__",
                                                             ".pytest_cache", ".hypothesis"))
    # Byte-compiling stays on (setuptools warns when it is off).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    log = run([sys.executable, "-m", "build", "--outdir", str(out), str(src)], env=env)
    return out, log


def test_build_makes_an_sdist_and_a_wheel_without_warnings(dist):
    out, log = dist
    names = sorted(os.listdir(out))
    assert any(n.endswith(".tar.gz") for n in names), names
    assert any(n.endswith(".whl") for n in names), names
    warnings = [ln for ln in log.splitlines() if "warning" in ln.lower() and "-W" not in ln]
    assert not warnings, "\n".join(warnings)


def test_wheel_metadata_follows_current_standards(dist):
    out, _ = dist
    wheel = next(out / n for n in os.listdir(out) if n.endswith(".whl"))
    with zipfile.ZipFile(wheel) as z:
        meta = next(z.read(n).decode() for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        names = z.namelist()
    assert "License-Expression: Apache-2.0" in meta
    # Exactly the versions the suite runs on (run-tests, tools/matrix.sh) are
    # admitted and named, and no other.
    requires = next(ln.split(":", 1)[1].strip() for ln in meta.splitlines() if ln.startswith("Requires-Python:"))
    spec = SpecifierSet(requires)
    for v in TESTED_VERSIONS:
        assert spec.contains(f"{v}.0") and spec.contains(f"{v}.9"), (v, requires)
        assert f"Classifier: Programming Language :: Python :: {v}" in meta
    for v in ("3.9", "3.10", "3.12", "3.15"):
        assert not spec.contains(f"{v}.0"), (v, requires)
        assert f"Classifier: Programming Language :: Python :: {v}\n" not in meta
    assert "Classifier: Programming Language :: Python :: Free Threading :: 2 - Beta" in meta
    assert any(n.endswith("fastprom/_core.pyi") for n in names)
    assert any(n.endswith("fastprom/py.typed") for n in names)


@pytest.fixture(scope="module")
def manylinux_wheel(dist, tmp_path_factory):
    out, _ = dist
    if shutil.which("patchelf") is None:
        if os.environ.get("CI"):
            pytest.fail("patchelf is not installed; run-tests must install it")
        pytest.skip("patchelf is not installed")
    wheel = next(out / n for n in os.listdir(out) if n.endswith(".whl"))
    fixed = tmp_path_factory.mktemp("wheelhouse")
    run([sys.executable, "-m", "auditwheel", "repair", "--wheel-dir", str(fixed), str(wheel)])
    made = os.listdir(fixed)
    assert len(made) == 1 and "manylinux" in made[0], made
    return fixed / made[0]


def fresh_venv(where):
    """A virtual environment of this interpreter, without the test's packages."""
    run([sys.executable, "-m", "venv", str(where)])
    return str(where / "bin" / "python")


def test_a_fresh_venv_installs_the_manylinux_wheel_without_a_compiler(manylinux_wheel, tmp_path):
    py = fresh_venv(tmp_path / "venv")
    # Only the venv's own bin on PATH: no cc, gcc or ld to fall back on.
    env = {"PATH": str(tmp_path / "venv" / "bin"), "HOME": str(tmp_path), "CC": "/nonexistent/cc"}
    for k in ("PIP_CONFIG_FILE", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        if k in os.environ:
            env[k] = os.environ[k]
    assert not any(shutil.which(c, path=env["PATH"]) for c in ("cc", "gcc", "clang"))
    run([py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(manylinux_wheel)], env=env)
    where = run([py, "-c", SMOKE], env=env, cwd=tmp_path)
    assert str(tmp_path / "venv") in where
    # The demo needs FastAPI and uvicorn, which this venv lacks.
    p = subprocess.run([py, "-m", "fastprom", "demo"], capture_output=True, text=True, timeout=60, env=env,
                       cwd=tmp_path)
    assert p.returncode == 2, (p.stdout, p.stderr)
    lines = (p.stdout + p.stderr).strip().splitlines()
    assert len(lines) == 1 and "pip install 'fastprom[demo]'" in lines[0], lines


def test_a_fresh_venv_builds_and_installs_the_sdist(dist, tmp_path):
    out, _ = dist
    sdist = next(out / n for n in os.listdir(out) if n.endswith(".tar.gz"))
    py = fresh_venv(tmp_path / "venv")
    assert sysconfig.get_config_var("CC")
    run([py, "-m", "pip", "install", "-q", str(sdist)], cwd=tmp_path)
    where = run([py, "-c", SMOKE], cwd=tmp_path)
    assert str(tmp_path / "venv") in where
