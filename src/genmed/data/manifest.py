"""Datasets from files: a manifest CSV, a MedMNIST .npz, or a folder of images.

Manifest columns (one row per 2D slice or 3D volume): `path` (image file, relative to the CSV's
folder or absolute), `label` (a name in LABELS or its index), `patient_id`; optional
`mask_path`, `slice` (index along the volume's first axis; empty = whole volume), `noise_hu`,
`noisy`, `split` (train/val/test). A folder source holds images directly (label healthy) or in
one sub-folder per class named after LABELS.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genmed.data.phantom import LABELS
from genmed.data.splits import SPLITS
from genmed.data.transforms import hu_to_unit, scale_to_unit
from genmed.errors import UserError

REQUIRED = ("path", "label", "patient_id")


def load_source(path: Path, *, size: int, spatial_dims: int):
    """(ImageDataset, split column (N,) str array or None) for a CSV, .npz or folder `path`."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.is_dir():
        return dataset_from_folder(path, size=size, spatial_dims=spatial_dims), None
    name = path.name.lower()
    if name.endswith(".csv"):
        return dataset_from_manifest(path, size=size, spatial_dims=spatial_dims)
    if name.endswith(".npz"):
        return dataset_from_medmnist(path, size=size, spatial_dims=spatial_dims)
    raise UserError(f"{path}: training data must be 'phantom', a manifest .csv, a MedMNIST .npz "
                    "or a folder of images")


def read_manifest(path: Path):
    """The manifest as a pandas DataFrame with checked columns, labels as indices."""
    import pandas as pd

    if not Path(path).is_file():
        raise UserError(f"{path}: manifest file not found")
    try:
        df = pd.read_csv(path, dtype={"patient_id": str, "split": str, "path": str, "mask_path": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"{path}: manifest lacks column(s) {', '.join(missing)}")
    if df.empty:
        raise UserError(f"{path}: manifest has no rows")
    df["label"] = [_label_index(v, path, i) for i, v in enumerate(df["label"])]
    if "split" in df.columns:
        df["split"] = df["split"].fillna("")
        bad = sorted(set(df["split"]) - {*SPLITS, ""})
        if bad:
            raise UserError(f"{path}: unknown split(s) {bad}; use {', '.join(SPLITS)}")
    return df


def _label_index(value, path: Path, row: int) -> int:
    text = str(value).strip()
    if text in LABELS:
        return LABELS.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(LABELS):
        return int(text)
    raise UserError(f"{path}: row {row + 2}: label {text!r} is not one of {', '.join(LABELS)}")


def _to_unit(arr: np.ndarray, modality: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(arr, np.float32))
    return hu_to_unit(t) if modality == "CT" else torch.as_tensor(scale_to_unit(t))


def dataset_from_manifest(path: Path, *, size: int, spatial_dims: int):
    """Load every row's image (slice) into memory, windowed and resized."""
    from genmed.data.datasets import ImageDataset, _resize_batch
    from genmed.data.io import load

    df = read_manifest(path)
    cache: dict[str, tuple[np.ndarray, str]] = {}
    images = []
    has_slice = "slice" in df.columns
    for i, row in enumerate(df.itertuples(index=False)):
        file = Path(row.path) if Path(row.path).is_absolute() else path.parent / row.path
        if str(file) not in cache:
            img = load(file)
            cache = {str(file): (img.array, img.meta["modality"])}  # rows of a file are adjacent
        arr, modality = cache[str(file)]
        sl = getattr(row, "slice") if has_slice else None
        if sl is not None and not (isinstance(sl, float) and np.isnan(sl)):
            if not 0 <= int(sl) < arr.shape[0]:
                raise UserError(f"{path}: row {i + 2}: slice {int(sl)} outside {file} ({arr.shape[0]} slices)")
            arr = arr[int(sl)]
        if arr.ndim != spatial_dims:
            raise UserError(f"{file}: {arr.ndim}D image but {spatial_dims}D data was asked for")
        images.append(_resize_batch(_to_unit(arr, modality)[None, None], size, "area")[0])
    extras = {}
    if "noise_hu" in df.columns:
        extras["noise_hu"] = torch.tensor(df["noise_hu"].fillna(0).to_numpy(np.float32))
    if "noisy" in df.columns:
        extras["noisy"] = torch.tensor(df["noisy"].fillna(False).astype(bool).to_numpy())
    ds = ImageDataset(torch.stack(images), torch.tensor(df["label"].to_numpy(np.int64)),
                      list(df["patient_id"].astype(str)), extras)
    split = df["split"].to_numpy(str) if "split" in df.columns else None
    return ds, split


def dataset_from_medmnist(path: Path, *, size: int, spatial_dims: int):
    """All splits of a MedMNIST file; each image is its own 'patient'; splits from the file."""
    from genmed.data.datasets import ImageDataset, _resize_batch
    from genmed.data.io import load_medmnist

    parts, labels, ids, split = [], [], [], []
    for name in SPLITS:
        try:
            images, lab, info = load_medmnist(path, name)
        except UserError:
            if name == "train":
                raise
            continue
        if info["spatial_dims"] != spatial_dims:
            raise UserError(f"{path}: {info['spatial_dims']}D MedMNIST but {spatial_dims}D data was asked for")
        if info["rgb"]:
            images = images.mean(axis=-1)
        x = torch.from_numpy(images / 127.5 - 1.0).float().unsqueeze(1)  # uint8 range -> [-1, 1]
        parts.append(_resize_batch(x, size, "area"))
        labels.append(torch.from_numpy(lab if lab.ndim == 1 else lab.argmax(1)))
        ids += [f"{name}{i:06d}" for i in range(len(x))]
        split += [name] * len(x)
    ds = ImageDataset(torch.cat(parts), torch.cat(labels), ids, class_names=())
    return ds, np.array(split)


def dataset_from_folder(path: Path, *, size: int, spatial_dims: int):
    """Images directly in `path` (label healthy) or in class sub-folders named after LABELS.

    Each file (2D image or 3D volume; a DICOM series folder counts as one volume) is one
    patient; 2D data takes every slice of a volume.
    """
    from genmed.data.datasets import ImageDataset, _resize_batch
    from genmed.data.io import file_kind, load

    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    if subdirs and not any(file_kind(f) == "dicom" for f in path.iterdir() if f.is_file()):
        unknown = [d.name for d in subdirs if d.name not in LABELS]
        if unknown:
            raise UserError(f"{path}: class folder(s) {unknown} are not labels {', '.join(LABELS)}")
        groups = [(LABELS.index(d.name), d) for d in subdirs]
    else:
        groups = [(0, path)]
    images, labels, ids = [], [], []
    for label, folder in groups:
        items = _folder_items(folder)
        for item in items:
            img = load(item, ndim=(2, 3))
            unit = _to_unit(img.array, img.meta["modality"])
            stack = unit[None] if unit.ndim == spatial_dims else unit if unit.ndim == 3 else None
            if stack is None:
                raise UserError(f"{item}: {unit.ndim}D image but {spatial_dims}D data was asked for")
            images.append(_resize_batch(stack[:, None], size, "area"))
            labels += [label] * len(stack)
            ids += [f"{folder.name}/{item.name}"] * len(stack)
    if not images:
        raise UserError(f"{path}: empty folder")
    return ImageDataset(torch.cat(images), torch.tensor(labels), ids)


def _folder_items(folder: Path) -> list[Path]:
    """Image files in `folder` (a DICOM series folder is one item)."""
    from genmed.data.io import file_kind

    files = sorted(f for f in folder.iterdir() if not f.name.startswith("."))
    if any(f.is_file() and file_kind(f) == "dicom" for f in files):
        return [folder]
    return [f for f in files if (f.is_file() and file_kind(f) != "unknown") or f.is_dir()]
