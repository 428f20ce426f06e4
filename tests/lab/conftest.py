"""Shared fixtures of the lab self-tests. Every test that needs namespaces skips, with the
reason, when not root or when namespaces cannot be created (pure tests still run)."""

import contextlib
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from roamlab import Lab, can_run  # noqa: E402
from roamlab.measure import start_reflector  # noqa: E402

_REASON = []


def lab_unavailable():
    if not _REASON:
        _REASON.append(can_run())
    return _REASON[0]


@pytest.fixture(scope="session")
def lab_allowed():
    reason = lab_unavailable()
    if reason:
        pytest.skip(f"network lab: {reason}")


@pytest.fixture
def make_lab(lab_allowed):
    """make_lab(topology, reflector=True) -> a started Lab, closed after the test."""
    with contextlib.ExitStack() as stack:
        def make(topology, reflector=True):
            lab = stack.enter_context(Lab(topology))
            if reflector:
                start_reflector(lab)
            return lab
        yield make


@pytest.fixture
def report(capsys):
    """report(text): prints a measurement even under -q (it lands in the ctest log)."""
    def emit(text):
        with capsys.disabled():
            print(f"\n{text}", flush=True)
    return emit
