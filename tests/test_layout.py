"""The source tree keeps its shape: files within the size limit, no import
cycle among Python modules, no include cycle among C modules."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(os.path.dirname(HERE), "tools", "check_layout.py")


def test_layout_has_no_oversized_file_and_no_cycle():
    r = subprocess.run([sys.executable, TOOL], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_checker_finds_cycles():
    sys.path.insert(0, os.path.dirname(TOOL))
    try:
        import check_layout
    finally:
        sys.path.pop(0)
    assert check_layout.cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert check_layout.cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
