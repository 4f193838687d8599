"""Atomic file output: write to a temporary name in the same folder, then `os.replace`.

A crash or a bad input half-way never leaves a half-written file, and a file that was
already there is only replaced once the new one is complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary name keeps `path`'s suffixes (e.g. `.nii.gz`) so writers that choose a
    format by extension still work. On any exception the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write `text` (UTF-8) to `path`."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write `obj` as strictly valid, indented JSON (numpy scalars and arrays
    converted; NaN and infinities written as null: JSON has no such numbers)."""
    return write_text(path, json.dumps(finite_json(obj), indent=2, default=_json_default,
                                       allow_nan=False) + "\n")


def finite_json(obj: Any) -> Any:
    """`obj` with every non-finite float (NaN, +-Inf; numpy too) replaced by None, recursively."""
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite_json(obj.tolist()) if obj.dtype.kind == "f" else obj.tolist()
    return obj


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Atomically write a uint8 (H, W) or (H, W, 3) array as PNG."""
    from PIL import Image as PILImage

    with atomic_path(path) as tmp:
        PILImage.fromarray(np.ascontiguousarray(image)).save(tmp, format="PNG")
    return Path(path)


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Atomically save a matplotlib figure (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=Path(path).suffix.lstrip(".") or "png")
    plt.close(fig)
    return Path(path)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
