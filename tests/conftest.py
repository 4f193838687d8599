"""Shared test settings: one torch thread per pytest worker (the suite runs with -n 2)."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("GENMED_QUIET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def artifacts_dir(request) -> "os.PathLike[str]":
    """A folder under test-artifacts/ that survives the run (screenshots, figures)."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "test-artifacts" / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path
