"""genmed.train.allocator: freed large tensors are reused instead of page-faulted in again."""

from __future__ import annotations

import resource
import sys

import pytest
import torch

from genmed.train import allocator

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc tunables")


def _step_faults() -> int:
    """Minor page faults of one 'step': allocate and fill four 48 MiB tensors, free them.
    48 MiB is above glibc's largest default mmap threshold (32 MiB), so by default every step
    maps them afresh and faults in each 4 KiB page (49,152)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    xs = [torch.ones(12 << 20) for _ in range(4)]
    del xs
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.parametrize("value", [None, "0"])
def test_default_leaves_glibc_alone(monkeypatch, value):
    monkeypatch.setattr(allocator, "_applied", None)
    if value is None:
        monkeypatch.delenv(allocator.ENV, raising=False)
    else:
        monkeypatch.setenv(allocator.ENV, value)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda *a: pytest.fail("libc was touched"))
    assert allocator.keep_freed_memory() is False


def test_freed_blocks_are_reused(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv(allocator.ENV, "1")
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True  # once per process, then remembered
    faults = [_step_faults() for _ in range(6)]
    assert min(faults[3:]) < 1000, faults  # steady state: the freed blocks are reused
