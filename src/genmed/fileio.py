"""Atomic file output: write to a temporary name in the same folder, then `os.replace`.

A crash or a bad input half-way never leaves a half-written file, and a file that was
already there is only replaced once the new one is complete.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from genmed.errors import UserError

# The temporary names `atomic_path` makes: ".<name>.<8 random chars>.tmp<suffixes>".
_TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^/]*)?$")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`.

    The temporary name keeps `path`'s suffixes (e.g. `.nii.gz`) so writers that choose a
    format by extension still work. On any exception the temporary file is removed.
    """
    path = Path(path)
    if path.is_dir():  # a late safety net: commands check their outputs before any work
        raise UserError(f"{path}: is a folder; cannot write a file there")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{path}: a parent of this path is a file, not a folder") from None
    except OSError as exc:  # read-only, permission denied, a pseudo file system
        raise UserError(f"{path}: cannot create its folder ({exc.strerror or exc})") from None
    suffix = suffix if suffix is not None else "".join(path.suffixes)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    except OSError as exc:  # a read-only or otherwise unwritable folder
        raise UserError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_output_file(path: str | os.PathLike, what: str = "--out", *,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Refuse, before any work, an output file path that cannot be written: an existing
    folder, a path under an existing file, one in a folder this process cannot write, or
    one of the command's `inputs` (writing it would replace what is being read).
    Returns the path."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path}: is a folder; give a file name")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise UserError(f"{what} {path}: is also the input {source}; give a new file name")
    _check_parents(path, what)
    _check_writable(path.absolute().parents, path, what)
    return path


def check_output_dir(path: str | os.PathLike, what: str = "--out", *,
                     files: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output folder that cannot be written: an existing file, a
    path under an existing file or in a folder this process cannot write, or (for each name
    in `files` the command will write there) an existing folder where that file must go.
    Returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path}: exists and is not a folder")
    _check_parents(path, what)
    _check_writable([path.absolute(), *path.absolute().parents], path, what)
    for name in files:
        if (path / name).is_dir():
            raise UserError(f"{what} {path}: {name} there is a folder, not a file")
    return path


def _same_file(a: Path, b: Path) -> bool:
    """Whether `a` and `b` name the same existing file (links and `..` included)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_parents(path: Path, what: str) -> None:
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{what} {path}: {parent} is a file, not a folder")
            return


def _check_writable(candidates: Iterable[Path], path: Path, what: str) -> None:
    """Refuse `path` when the first existing folder of `candidates` (where it or its missing
    parents will be created) is not writable by this process."""
    for folder in candidates:
        if folder.exists():
            if folder.is_dir() and not (os.access(folder, os.W_OK | os.X_OK) and _can_create_in(folder)):
                raise UserError(f"{what} {path}: {folder} is not writable")
            return


def _can_create_in(folder: Path) -> bool:
    """Whether an entry can be made in `folder`. `os.access` answers yes to root everywhere
    (e.g. /proc, /sys), so root probes with an empty folder made and removed at once."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return True
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".genmed-probe.", dir=folder))
    except OSError:
        return False
    return True


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed writer left in `folder` (names `atomic_path` makes;
    only call this while holding the folder's lock). Returns what was removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and _TEMP_NAME.match(p.name):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


@contextmanager
def folder_lock(folder: str | os.PathLike, *, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive advisory lock (`fcntl.flock` on FOLDER/.lock) for the block.

    A second process gets a `UserError` at once instead of writing the same folder. The
    folder is created if needed; if this call created it and nothing but the lock was written
    there (e.g. the block refused its input), the folder is removed again, so a refusal
    leaves nothing behind. The lock file is removed on release (a lock left by a killed
    process holds nothing: the kernel drops it with the process).
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a folder")
    _check_parents(folder, what)
    _check_writable([folder.absolute(), *folder.absolute().parents], folder, what)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # read-only, permission denied, a pseudo file system
        raise UserError(f"{folder}: cannot create this folder ({exc.strerror or exc})") from None
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no advisory locks
        yield folder
        return
    lock = folder / ".lock"
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            try:
                holder = lock.read_text(encoding="utf-8").strip() or "?"
            except OSError:
                holder = "?"
            raise UserError(f"{folder}: {what} is in use by another genmed process (pid {holder}); "
                            "wait for it to finish") from None
        try:  # the holder may have released and unlinked it between our open and flock
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    try:
        yield folder
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)
        if created and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def make_temp_dir(out: str | os.PathLike) -> Path:
    """Create a hidden temporary folder beside the output folder `out` (and `out`'s missing
    parents) with the usual folder mode, to be renamed onto `out` when complete. A folder that
    cannot be created there is a `UserError`, raised before any work."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary folder
    return tmp


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
