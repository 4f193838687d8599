"""Versions and machine facts recorded next to every run, checkpoint and benchmark."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata


def versions() -> dict[str, str]:
    """Installed versions of genmed and the libraries whose behaviour affects results."""
    out = {"python": platform.python_version()}
    for pkg in ("genmed", "torch", "monai", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def cpu_model() -> str:
    """The CPU model name as `lscpu` reports it (falls back to `platform.processor()`)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        text = ""
    for line in text.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def cpu_flags() -> set[str]:
    """CPU feature flags from /proc/cpuinfo (empty off Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine() -> dict[str, object]:
    """What a benchmark JSON records about where it ran."""
    import torch

    return {
        "cpu_model": cpu_model(),
        "amx_bf16": "amx_bf16" in cpu_flags(),
        "avx512_bf16": "avx512_bf16" in cpu_flags(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        **versions(),
    }
