"""Read medical images into one `Image` (array, spacing, modality, units, orientation, meta);
write NIfTI atomically.

Formats: NIfTI (.nii, .nii.gz; nibabel), DICOM (single file, a folder holding one series, or
an enhanced multi-frame file: `genmed.data.dicom`; rescale applied so CT is in HU), PNG/TIFF/
JPEG files (multi-page TIFF) and folders of same-size slices (pillow), MedMNIST `.npz` (2D and
3D; never downloaded).

Axis order is numpy/DICOM order everywhere: (slice, row, column) for 3D, (row, column) for
2D, and `spacing` (mm) in the same order. Volumes with a known geometry (NIfTI affine, DICOM
position/orientation) are turned to the canonical LPS orientation on load
(`genmed.data.orientation`): columns run to the patient's left, rows to posterior, slices to
superior; `meta["orientation"]` says "LPS" (None where the file has no geometry: pictures, 2D
slices) and `meta["orientation_source"]` what the file had. NIfTI data, stored by nibabel as
(x, y, z), is transposed on read and on write, so `save_nifti(load(p).array)` round-trips.
Modality comes from the file (DICOM Modality, the `modality=` tag genmed writes into a NIfTI
header) or, for a plain NIfTI, from its values (air near -1000: CT); units follow from it
(`genmed.data.modality.units_for`: HU for CT, never for anything else).
Every bad input raises `UserError` with one line naming the file.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from genmed.errors import UserError
from genmed.fileio import atomic_path

PIL_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Sizes read from a file's header are checked against the file before anything is allocated:
from genmed.data.limits import MAX_ELEMENTS, MAX_PIXELS  # noqa: E402  (re-exported)
_DEFLATE_RATIO = 1100  # deflate cannot compress by more than ~1032:1
_STREAM_CHECK_BYTES = 64 << 20  # decompress-and-count a .gz only above this claimed size


@dataclass
class Image:
    """An image: `array` float32 in `units` (HU for CT), `spacing` mm per axis, and `meta`
    (at least "modality", "units", "orientation" and "source")."""

    array: np.ndarray
    spacing: tuple[float, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def modality(self) -> str:
        """DICOM modality code: "CT", "MR", "PT", "OT" (pictures), ... or "unknown"."""
        return str(self.meta.get("modality", "unknown"))

    @property
    def units(self) -> str:
        """Units of the values: "HU" for CT, else e.g. "a.u." (MR), "grey level" (pictures)."""
        from genmed.data.modality import units_for

        return str(self.meta.get("units") or units_for(self.modality))

    @property
    def orientation(self) -> str | None:
        """Axis codes of (column, row, slice) after loading ("LPS"), or None if unknown."""
        return self.meta.get("orientation")


def load(path: str | os.PathLike, *, ndim: int | tuple[int, ...] | None = None,
         series_uid: str | None = None) -> Image:
    """Read a NIfTI/DICOM/PNG/TIFF file or folder, or a MedMNIST .npz (its train images).

    `ndim`: the number(s) of dimensions the caller accepts; anything else is a `UserError`.
    `series_uid`: in a folder of DICOM files (searched recursively), read only that series.
    """
    from genmed.data.dicom import load_series

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such file or folder")
    if p.is_dir():
        if series_uid:
            files = sorted(f for f in p.rglob("*") if f.is_file() and file_kind(f) == "dicom")
            img = Image(*load_series(files, p, series_uid))
        else:
            img = _load_folder(p)
    else:
        kind = file_kind(p)
        if kind == "nifti":
            img = _load_nifti(p)
        elif kind == "dicom":
            img = Image(*load_series([p], p, series_uid))
        elif kind == "pil":
            img = _load_pil(p)
        elif kind == "npz":
            images, labels, info = load_medmnist(p, split="train")
            img = Image(images, (1.0,) * images.ndim, {"modality": "unknown", "source": str(p),
                                                       "labels": labels, **info})
        else:
            raise UserError(f"{p}: unknown file type (expected NIfTI, DICOM, PNG/TIFF or .npz)")
    return _validate(img, p, ndim)


def file_kind(p: Path) -> str:
    """'nifti', 'dicom', 'pil', 'npz' or 'unknown', from the name, else the DICOM preamble."""
    name = p.name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(PIL_SUFFIXES):
        return "pil"
    if name.endswith(".npz"):
        return "npz"
    if name.endswith((".dcm", ".dicom", ".ima")):
        return "dicom"
    try:
        with open(p, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return "unknown"
    return "dicom" if head[128:132] == b"DICM" else "unknown"


def _validate(img: Image, p: Path, ndim: int | tuple[int, ...] | None) -> Image:
    arr = np.asarray(img.array)
    if arr.size == 0:
        raise UserError(f"{p}: the image is empty (shape {arr.shape})")
    allowed = (2, 3, 4) if ndim is None else ((ndim,) if isinstance(ndim, int) else tuple(ndim))
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}D" for d in allowed)
        raise UserError(f"{p}: expected a {want} image, got {arr.ndim}D array of shape {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if bad:
        raise UserError(f"{p}: {bad} NaN/Inf voxel(s); clean the image first")
    img.array = arr
    img.spacing = tuple(float(s) for s in img.spacing)
    if not all(np.isfinite(s) and s > 0 for s in img.spacing):
        raise UserError(f"{p}: pixel spacing {img.spacing} mm in its header is not a positive "
                        "finite number per axis")
    img.meta.setdefault("source", str(p))
    img.meta.setdefault("modality", "unknown")
    img.meta.setdefault("orientation", None)
    img.meta["units"] = img.units
    return img


@contextmanager
def _quiet_nibabel() -> Iterator[None]:
    """nibabel's header warnings off (its logger at ERROR) for the duration: they are a second
    stderr line beside genmed's own one-line error."""
    import logging

    log = logging.getLogger("nibabel.global")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _load_nifti(p: Path) -> Image:
    import nibabel as nib

    from genmed.data.modality import looks_like_ct
    from genmed.data.orientation import CANONICAL, axcodes, reorient

    try:
        with _quiet_nibabel():  # its header fixes ("setting 0 dims to 1"): checked below
            nii = nib.load(str(p))
        check_nifti_size(p, nii)
        check_nifti_header(p, nii)
        data = np.asarray(nii.dataobj, dtype=np.float32)
    except UserError:
        raise
    except Exception as exc:  # nibabel raises many types for truncated/corrupt files
        raise UserError(f"{p}: cannot read NIfTI ({type(exc).__name__}: {str(exc)[:200]})") from None
    zooms = tuple(float(z) for z in nii.header.get_zooms())[: data.ndim]
    meta: dict[str, Any] = {"format": "nifti", "source": str(p), "orientation": None}
    if data.ndim >= 3:
        try:  # a corrupt header can hold a non-finite or singular affine
            if not np.isfinite(nii.affine).all():
                raise ValueError("non-finite affine")
            meta["orientation_source"] = axcodes(nii.affine)
            data, zooms, _ = reorient(data, nii.affine, zooms)
        except (ValueError, np.linalg.LinAlgError) as exc:
            raise UserError(f"{p}: the NIfTI affine gives no orientation ({exc})") from None
        meta["orientation"] = CANONICAL
    descrip = nii.header.get("descrip")
    descrip = descrip.item().decode("latin-1", "replace") if descrip is not None else ""
    match = re.search(r"modality=(\w+)", descrip)
    units = re.search(r"units=(\S+)", descrip)
    if match:
        meta.update(modality=match.group(1), modality_from="header")
        if units:
            meta["units"] = units.group(1).replace("_", " ")
    else:  # NIfTI has no modality field: air near -1000 suggests CT in HU
        meta.update(modality="CT" if looks_like_ct(data) else "unknown",
                    modality_from="intensity heuristic")
    return Image(data.T.copy(), tuple(zooms)[::-1], meta)


def check_nifti_size(p: Path, nii: Any) -> None:
    """Refuse a NIfTI whose header claims more data than the file can hold (or than
    `MAX_ELEMENTS`), before the data is allocated."""
    shape = tuple(int(d) for d in nii.header.get_data_shape())
    n = int(np.prod(shape, dtype=object)) if shape else 0
    if any(d < 1 for d in shape) or n > MAX_ELEMENTS:
        raise UserError(f"{p}: the header claims shape {shape}; not a readable image "
                        f"(at most {MAX_ELEMENTS} voxels)")
    need = int(nii.header.get_data_offset()) + n * nii.header.get_data_dtype().itemsize
    check_stream_size(p, need, "the header claims")


def check_nifti_header(p: Path, nii: Any) -> None:
    """Refuse complex voxels (a cast to real would drop the imaginary part) and a zero or
    negative pixel spacing in the header as written: nibabel replaces a zero spacing with 1 mm
    on load, with only a log line, so the file's own header is read again unchecked."""
    import gzip

    if nii.header.get_data_dtype().kind == "c":
        raise UserError(f"{p}: complex voxels ({nii.header.get_data_dtype()}); save the magnitude "
                        "or the real part as a real-valued image")
    opener = gzip.open if p.name.lower().endswith(".gz") else open
    with opener(p, "rb") as fh:
        raw = type(nii.header).from_fileobj(fh, check=False)
    ndim = min(int(raw["dim"][0]), 3)
    pixdim = [float(v) for v in raw["pixdim"][1:ndim + 1]]
    if not all(np.isfinite(v) and v > 0 for v in pixdim):
        raise UserError(f"{p}: pixel spacing {tuple(pixdim)} mm in its header is not a positive "
                        "finite number per axis")


def check_stream_size(p: Path, need: int, claim: str) -> None:
    """Refuse file `p` (gzip-compressed if its name ends in .gz) if it holds fewer than `need`
    bytes of (decompressed) data."""
    have = p.stat().st_size
    if not p.name.lower().endswith(".gz"):
        if need > have:
            raise UserError(f"{p}: {claim} {need} bytes but the file has {have}; truncated or corrupt")
        return
    if need > have * _DEFLATE_RATIO:
        raise UserError(f"{p}: {claim} {need} bytes, more than {have} compressed bytes can hold; "
                        "truncated or corrupt")
    if need > _STREAM_CHECK_BYTES:  # count the decompressed bytes without keeping them
        import gzip

        got = 0
        try:
            with gzip.open(p, "rb") as fh:
                while got < need:
                    chunk = fh.read(min(8 << 20, need - got))
                    if not chunk:
                        break
                    got += len(chunk)
        except (OSError, EOFError, zlib.error):
            pass
        if got < need:
            raise UserError(f"{p}: {claim} {need} bytes but the file decompresses to {got}; "
                            "truncated or corrupt")


def check_npy_header(fh: Any, where: str, available: int, compressed: int | None = None) -> None:
    """Read the header of the .npy stream `fh` and refuse an array of more than `MAX_ELEMENTS`,
    one with Python objects, or one bigger than the `available` bytes after the header (for a
    deflated zip member: also bigger than its `compressed` size can hold)."""
    from numpy.lib import format as npformat

    try:
        start = fh.tell()
        version = npformat.read_magic(fh)
        reader = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
        shape, _, dtype = reader(fh, max_header_size=10_000)
        header = fh.tell() - start
    except Exception as exc:  # numpy parses the header dict with ast: many error types
        raise UserError(f"{where}: not a numeric .npy file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if dtype.hasobject:
        raise UserError(f"{where}: holds Python objects, not numbers (refused, never unpickled)")
    n = int(np.prod(shape, dtype=object)) if shape else 1
    need = n * dtype.itemsize
    if n > MAX_ELEMENTS or need > available - header or (
            compressed is not None and need > compressed * _DEFLATE_RATIO):
        raise UserError(f"{where}: the header claims an array of shape {tuple(shape)} ({need} bytes) "
                        "that the file does not hold; truncated or corrupt")


def check_npy_file(p: Path) -> None:
    """`check_npy_header` for a .npy file."""
    with open(p, "rb") as fh:
        check_npy_header(fh, str(p), p.stat().st_size)


def check_npz_members(p: Path, keys: Any) -> None:
    """`check_npy_header` for the arrays `keys` of a .npz (those present); a file that is not
    a zip archive is a `UserError`."""
    try:
        with zipfile.ZipFile(p) as z:
            names = set(z.namelist())
            for key in keys:
                name = f"{key}.npy"
                if name not in names:
                    continue
                info = z.getinfo(name)
                compressed = info.compress_size if info.compress_type != zipfile.ZIP_STORED else None
                with z.open(info) as fh:
                    check_npy_header(fh, f"{p}[{key}]", info.file_size, compressed)
    except UserError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError, zlib.error) as exc:
        raise UserError(f"{p}: not a readable .npz ({type(exc).__name__}: {str(exc)[:120]})") from None


def open_picture(p: Path) -> Any:
    """`PIL.Image.open(p)`, refusing images of more than `MAX_PIXELS` before decoding them (a
    decompression bomb) and any file PIL cannot identify, with a `UserError`."""
    import warnings

    from PIL import Image as PILImage

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            im = PILImage.open(p)
    except Exception as exc:  # UnidentifiedImageError, DecompressionBombError, struct errors, ...
        raise UserError(f"{p}: cannot read image ({type(exc).__name__}: {str(exc)[:120]})") from None
    if im.width * im.height > MAX_PIXELS:
        im.close()
        raise UserError(f"{p}: image of {im.width} x {im.height} pixels is larger than "
                        f"{MAX_PIXELS} pixels; not read")
    return im


def save_nifti(path: str | os.PathLike, array: np.ndarray, spacing: tuple[float, ...],
               *, modality: str = "CT", description: str = "", units: str | None = None) -> Path:
    """Atomically write `array` ((slice,) row, column order) with `spacing` mm as NIfTI.

    The affine is diagonal, the canonical LPS orientation (`genmed.data.orientation`): columns
    run to the patient's left and rows to posterior (radiological display), slices to
    superior. Modality and units (default: the modality's, `units_for`) go into the header's
    descrip, so `load` reads them back.
    """
    from genmed.data.modality import units_for

    import nibabel as nib

    arr = np.asarray(array)
    if arr.ndim not in (2, 3, 4) or len(spacing) != arr.ndim:
        raise UserError(f"{path}: cannot save array of shape {arr.shape} with spacing {spacing}")
    sp = [float(s) for s in spacing][::-1]  # (x, y, z, ...)
    affine = np.eye(4)
    for i, (s, sign) in enumerate(zip(sp[:3], (-1.0, -1.0, 1.0), strict=False)):
        affine[i, i] = sign * s
    nii = nib.Nifti1Image(arr.T, affine)
    nii.header.set_zooms(sp)
    nii.header.set_xyzt_units("mm", "sec")
    unit = (units or units_for(modality)).replace(" ", "_")
    nii.header["descrip"] = f"genmed modality={modality} units={unit} {description}"[:79].encode()
    with atomic_path(path) as tmp:
        nib.save(nii, str(tmp))
    return Path(path)


def _load_pil(p: Path) -> Image:
    from PIL import ImageSequence

    try:
        with open_picture(p) as im:
            frames = [_pil_gray(fr) for fr in ImageSequence.Iterator(im)]
            if not frames or len(frames) * frames[0].size > MAX_ELEMENTS:
                raise UserError(f"{p}: {len(frames)} frames; not a readable image stack")
            if len({f.shape for f in frames}) > 1:
                raise UserError(f"{p}: frames differ in size {sorted({f.shape for f in frames})}")
    except UserError:
        raise
    except Exception as exc:  # Pillow raises many types (TypeError, KeyError, zlib.error, ...) on corrupt files
        raise UserError(f"{p}: cannot read image ({type(exc).__name__}: {str(exc)[:200]})") from None
    arr = frames[0] if len(frames) == 1 else np.stack(frames)
    return Image(arr, (1.0,) * arr.ndim, {"modality": "OT", "format": "pil", "source": str(p),
                                          "orientation": None})


def _pil_gray(frame) -> np.ndarray:
    """A frame as a 2D float32 array; colour converted to luminance (ITU-R 601)."""
    if frame.mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr", "1"):
        frame = frame.convert("L")
    frame.load()
    return np.asarray(frame, dtype=np.float32)


def _load_folder(p: Path) -> Image:
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    if not files:
        raise UserError(f"{p}: empty folder")
    kinds = {f: file_kind(f) for f in files}
    dicom = [f for f, k in kinds.items() if k == "dicom"]
    if dicom:
        from genmed.data.dicom import load_series

        return Image(*load_series(dicom, p))
    pil = sorted((f for f, k in kinds.items() if k == "pil"), key=_natural_key)
    if not pil:
        raise UserError(f"{p}: no DICOM or PNG/TIFF images in folder")
    slices = [_load_pil(f).array for f in pil]
    shapes = {a.shape for a in slices}
    if len(shapes) > 1 or slices[0].ndim != 2:
        raise UserError(f"{p}: images in folder must be 2D and the same size, got {sorted(shapes)}")
    arr = np.stack(slices)
    return Image(arr, (1.0,) * 3, {"modality": "OT", "format": "pil-folder", "source": str(p),
                                   "files": [f.name for f in pil]})


def _natural_key(f: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", f.name)]


def load_medmnist(path: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray, dict]:
    """A MedMNIST `.npz`'s `{split}_images` (N, *spatial[, 3]) float32 and labels (N,) int64.

    Multi-label files keep labels (N, K). Never downloads: the user supplies the file.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such file")
    check_npz_members(p, (f"{split}_images", f"{split}_labels"))
    try:
        with np.load(p, allow_pickle=False) as npz:
            keys = set(npz.files)
            if f"{split}_images" not in keys:
                found = sorted(k[: -len("_images")] for k in keys if k.endswith("_images"))
                raise UserError(f"{p}: no '{split}_images' array (splits in file: {found or 'none'})")
            raw = npz[f"{split}_images"]
            if raw.dtype.kind not in "biuf":
                raise UserError(f"{p}: '{split}_images' holds {raw.dtype} values, not real numbers")
            images = np.asarray(raw, np.float32)
            labels = np.asarray(npz[f"{split}_labels"]) if f"{split}_labels" in keys else None
    except UserError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, zlib.error) as exc:
        raise UserError(f"{p}: not a readable .npz ({type(exc).__name__}: {exc})") from None
    if labels is None:
        raise UserError(f"{p}: no '{split}_labels' array")
    labels = labels.astype(np.int64)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if len(labels) != len(images):
        raise UserError(f"{p}: {len(images)} {split} images but {len(labels)} labels")
    rgb = images.ndim in (4, 5) and images.shape[-1] == 3
    spatial = images.ndim - 1 - int(rgb)
    if spatial not in (2, 3):
        raise UserError(f"{p}: {split}_images has shape {images.shape}; expected (N, H, W[, 3]) "
                        "or (N, D, H, W)")
    return images, labels, {"format": "medmnist", "split": split, "spatial_dims": spatial, "rgb": rgb}


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """Facts about an image for `genmed data info`: shape, spacing, value range, modality."""
    img = load(path)
    arr = img.array
    out = {
        "source": img.meta["source"], "format": img.meta.get("format", "unknown"),
        "modality": img.modality, "units": img.units, "orientation": img.orientation,
        "shape": list(arr.shape),
        "spacing_mm": [round(s, 4) for s in img.spacing], "min": float(arr.min()),
        "max": float(arr.max()), "mean": round(float(arr.mean()), 3), "std": round(float(arr.std()), 3),
    }
    for key in ("orientation_source", "modality_from", "patient_id", "n_files", "n_frames",
                "enhanced", "irregular_slices", "split", "spatial_dims"):
        if key in img.meta:
            out[key] = img.meta[key]
    if "labels" in img.meta:
        labels = np.asarray(img.meta["labels"])
        out["n_labels"] = int(len(labels))
        out["label_values"] = sorted(int(v) for v in np.unique(labels))[:20]
    return out
