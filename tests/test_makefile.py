"""The Makefile's TORCH_BUILD: the CPU wheel by default, a CUDA build from PyTorch's index."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def install_commands(*args: str) -> list[str]:
    """The commands `make install` would run (dry run, as if nothing were installed)."""
    out = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), "install", *args],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return [line for line in out.splitlines() if "pip install" in line and "torch" in line]


def test_default_installs_the_cpu_wheel_as_before():
    assert install_commands() == ['.venv/bin/python -m pip install --quiet "torch==2.13.0"']


def test_cuda_build_comes_from_pytorch_index():
    (line,) = install_commands("TORCH_BUILD=cu126")
    assert '"torch==2.13.0+cu126"' in line
    assert line.endswith("--index-url https://download.pytorch.org/whl/cu126")
