"""The package and its C stub type-check, as a user's mypy run would see them."""
import os
import subprocess
import sys

import pytest

import fastprom

USER_CODE = '''
from fastprom import Counter, Histogram, CollectorRegistry, generate_latest
reg = CollectorRegistry()
c = Counter("a", "A", ["x"], registry=reg)
c.labels("1").inc(2, exemplar={"trace_id": "t"})
h = Histogram("b", "B", registry=reg)
with h.time():
    pass
body: bytes = generate_latest(reg)
'''


def test_mypy_accepts_package_and_user_code(tmp_path):
    pytest.importorskip("mypy")
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    for target in (["-p", "fastprom"], [str(user)]):
        r = subprocess.run([sys.executable, "-m", "mypy", "--no-error-summary", "--strict-optional",
                            "--cache-dir", str(tmp_path / "cache"), *target],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr


def test_stub_and_marker_ship_with_the_package():
    pkg = os.path.dirname(fastprom.__file__)
    assert os.path.exists(os.path.join(pkg, "py.typed"))
    assert os.path.exists(os.path.join(pkg, "_core.pyi"))
