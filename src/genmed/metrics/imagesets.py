"""Load an image set for evaluation: a folder of images, a .npy/.npz array, or the phantom.

Arrays are (N, 1, H, W) float32 in [-1, 1] (the model convention). A folder of 2-D NIfTI
files (what `genmed sample` writes; other files there, e.g. grid.png, are then ignored) is read
with `genmed.data.io.load` and mapped to model units by the intensity map in the folder's
samples.json (the one the samples were written with, so the round trip is exact), else by
each file's modality (CT: the abdomen window; others: their percentiles). PNG/TIFF/JPEG files are
read with Pillow as grayscale: 8-bit maps 0..255 -> -1..1, 16-bit 0..65535 -> -1..1. A .npy
file (or the "images"/"image" array of a .npz) must already be in [-1, 1]. "phantom" builds
held-out phantom slices with `genmed.data.load_training_data` (abdomen window, patient split).
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from genmed.errors import UserError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _to_nchw(x: np.ndarray, where: str) -> np.ndarray:
    """(N, C, H, W) float32 of real-valued images in [-1, 1]; anything else is a `UserError`."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu":  # bool masks, complex k-space, strings: not images
        raise UserError(f"{where}: holds {x.dtype} values; images are real numbers in [-1, 1]")
    x = x.astype(np.float32, copy=False)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[0] == 0:
        raise UserError(f"{where}: expected images (N, H, W) or (N, C, H, W), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise UserError(f"{where}: contains NaN or infinite values")
    if x.min() < -1.001 or x.max() > 1.001:
        raise UserError(f"{where}: values must lie in [-1, 1], got [{x.min():.3g}, {x.max():.3g}]")
    return x


def _read_picture(path: Path) -> np.ndarray:
    from genmed.data.io import open_picture

    try:
        with open_picture(path) as im:
            arr = np.asarray(im)
            if arr.ndim == 3:
                arr = np.asarray(im.convert("L"))
    except UserError:
        raise
    except Exception as exc:  # Pillow raises many types on corrupt files
        raise UserError(f"{path}: not a readable image ({type(exc).__name__})") from None
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return arr.astype(np.float32) / scale * 2 - 1


def read_image_set(path: str | Path) -> np.ndarray:
    """Images from a folder of pictures or .npy files, or one .npy/.npz file."""
    from genmed.data.io import check_npz_members

    path = Path(path)
    if path.is_file():
        if path.suffix == ".npy":
            return _to_nchw(_load_npy(path), str(path))
        if path.suffix == ".npz":
            check_npz_members(path, ("images", "image"))  # headers checked before allocating
            try:
                with np.load(path, allow_pickle=False) as z:
                    key = next((k for k in ("images", "image") if k in z.files), None)
                    if key is None:
                        raise UserError(f"{path}: no 'images' array (has {', '.join(z.files)})")
                    return _to_nchw(z[key], str(path))
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
                raise UserError(f"{path}: not a readable .npz file ({str(exc)[:160]})") from None
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return _to_nchw(_read_picture(path)[None], str(path))
        raise UserError(f"{path}: unsupported file type (use a folder, .npy, .npz, .png or .tif)")
    if not path.is_dir():
        raise UserError(f"{path}: no such file or folder")
    nifti = sorted(p for p in path.iterdir() if p.name.endswith((".nii", ".nii.gz")))
    if nifti:
        from genmed.data.io import load

        imap = sample_map(path)
        arrays = []
        for p in nifti:
            img = load(p, ndim=2)
            m = imap or intensity_map(img.array, img.modality, img.units)
            arrays.append(np.asarray(m.to_unit(img.array), dtype=np.float32))
        if len({a.shape for a in arrays}) != 1:
            raise UserError(f"{path}: NIfTI images differ in shape")
        return _to_nchw(np.stack(arrays), str(path))
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES + (".npy",))
    if not files:
        raise UserError(f"{path}: folder holds no .png/.tif/.jpg/.npy images")
    arrays = [_load_npy(p) if p.suffix == ".npy" else _read_picture(p) for p in files]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise UserError(f"{path}: images differ in shape ({', '.join(map(str, sorted(shapes)))})")
    return _to_nchw(np.stack(arrays), str(path))


def intensity_map(array, modality: str, units: str):
    from genmed.data.modality import intensity_map as imap

    return imap(array, modality, units)


def sample_spacing(folder: Path) -> tuple[float, ...] | None:
    """The spacing (mm) a run's data was resampled to, as FOLDER/samples.json repeats it
    (`genmed train --spacing`), or None."""
    import json

    try:
        meta = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = meta.get("resampled_to_mm") if isinstance(meta, dict) else None
    return tuple(float(v) for v in value) if isinstance(value, list) and value else None


def sample_map(folder: Path):
    """The `IntensityMap` recorded in FOLDER/samples.json by `genmed sample`, or None."""
    import json

    from genmed.data.modality import IntensityMap

    record = folder / "samples.json"
    if not record.is_file():
        return None
    try:
        meta = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"{record}: not readable JSON") from None
    return IntensityMap.from_dict(meta["intensity"]) if isinstance(meta, dict) and meta.get("intensity") else None


def _load_npy(path: Path) -> np.ndarray:
    """A numeric .npy array; its header is checked against the file before allocating."""
    from genmed.data.io import check_npy_file

    check_npy_file(path)
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a numeric .npy file ({str(exc)[:160]})") from None


def phantom_image_set(split: str, size: int, seed: int = 0, n_patients: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 1, size, size) in [-1, 1], labels (N,)) of one phantom patient split."""
    from genmed.data import load_training_data

    ds = load_training_data("phantom", size=size, spatial_dims=2, split=split, seed=seed, n_patients=n_patients)
    items = [ds[i] for i in range(len(ds))]
    images = np.stack([np.asarray(it["image"], dtype=np.float32) for it in items])
    labels = np.asarray([int(it["label"]) for it in items], dtype=np.int64)
    return images, labels


def is_data_source(path: str | Path) -> bool:
    """Whether `path` is training data (`genmed train --data`: a manifest CSV, a MedMNIST .npz,
    a folder of scans: DICOM, 3D NIfTI, sub-folders) rather than an image set (a folder of
    pictures / .npy / 2D NIfTI samples, an .npy, an .npz with an "images" array)."""
    path = Path(path)
    name = path.name.lower()
    if path.is_file():
        if name.endswith(".csv"):
            return True
        if name.endswith(".npz"):
            try:
                with np.load(path, allow_pickle=False) as z:
                    return "train_images" in z.files and not {"images", "image"} & set(z.files)
            except (ValueError, OSError):
                return False
        return False
    if not path.is_dir() or (path / "samples.json").is_file():
        return False
    from genmed.data.io import file_kind

    for entry in path.iterdir():
        if entry.name.startswith("."):
            continue
        if entry.is_dir() or file_kind(entry) == "dicom":
            return True
        if file_kind(entry) == "nifti":
            import nibabel as nib

            try:
                shape = nib.load(str(entry)).shape
            except Exception:  # unreadable: let the reader report it
                return False
            if len(shape) >= 3 and shape[2] > 1:
                return True
    return False


def data_source_sets(source: str | Path, size: int, split: str, seed: int,
                     spacing_mm: tuple[float, ...] | None = None):
    """(real images (N, 1, size, size), train images or None, labels or None, summary) of a
    data source, loaded as `genmed train` loads it (2D slices, same patient split and seed,
    resampled to `spacing_mm` when the run was): `split` of it as the real set and, unless the
    real set is the training split or 'all', its training split for the memorisation audit."""
    from genmed.data import load_training_data

    kw = dict(size=size, spatial_dims=2, seed=seed, spacing_mm=spacing_mm)
    real = load_training_data(source, split=split, **kw)
    train = None
    if split not in ("train", "all"):
        try:
            train = load_training_data(source, split="train", **kw)
        except UserError:
            train = None
    labels = real.labels.numpy() if real.labelled and real.class_names else None
    return real.images.numpy(), (train.images.numpy() if train is not None else None), labels, real.summary


def resize_to(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased) resize of (N, C, H, W) images to `size` (H, W)."""
    import torch

    if tuple(images.shape[-2:]) == tuple(size):
        return images
    x = torch.nn.functional.interpolate(
        torch.from_numpy(images), size=tuple(size), mode="bilinear", antialias=True
    )
    return x.clamp(-1, 1).numpy()
