import os
import shutil

import pytest

import fastprom
from fastprom import _core


@pytest.fixture(autouse=_core.DEBUG == 1)
def consistent_stores():
    """In a debug build (FASTPROM_DEBUG=1, or the sanitizer build), every
    store still open after a test must pass the full consistency check."""
    yield
    problems = _core._check_stores()
    assert not problems, f"store consistency check failed: {problems}"


@pytest.fixture
def registry():
    """A fresh registry, so tests do not share series."""
    return fastprom.CollectorRegistry()


@pytest.fixture
def frozen():
    """Pins created and exemplar timestamps to a known instant."""
    fastprom.freeze_clock(1700000000.5)
    yield 1700000000.5
    fastprom.freeze_clock(None)


def need_tool(name):
    """The path of an external tool; in CI its absence fails the test."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run must install it")
        pytest.skip(f"{name} is not installed")
    return path
