"""The soak test's short form: gunicorn workers SIGKILLed under load and
series churn, with every total checked (tools/soak.py --quick, about 20 s)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_soak_quick_passes():
    r = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "soak.py"), "--quick"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    assert "result     PASS" in r.stdout, r.stdout
