"""Datasets from files: a manifest CSV, a MedMNIST .npz, or a folder of images.

Manifest (one row per 2D slice or 3D volume; `genmed data scan` writes one for a folder of
scans). Only `path` is required: the image file or DICOM series folder, relative to the CSV's
folder or absolute. Optional columns:
- `patient_id`: rows of one patient stay in one split; missing: the scan's DICOM PatientID,
  else the file itself (each file its own patient; the dataset summary says so);
- `label`: a name in LABELS or its index; without the column the data is unlabelled and trains
  unconditionally only (`--cond label` is refused);
- `series_uid`: which DICOM series of the `path` folder to read (a folder holding several);
- `modality`: overrides the file's (e.g. CT for a plain NIfTI the heuristic misses);
- `slice`: index along the volume's first axis (empty: the whole volume, or in 2D every slice);
- `mask_path`, `noise_hu`, `noisy`, `split` (train/val/test).
A folder source holds images directly (unlabelled) or in one sub-folder per class named after
LABELS. Intensities: `genmed.data.modality` (CT windowed in HU, other modalities by percentiles).
`spacing_mm` (optional, mm per model pixel): every scan resampled to it instead of resized
(`genmed.data.spacing`); MedMNIST files have no spacing and refuse it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genmed.data.imageset import ImageDataset, _resize_batch
from genmed.data.modality import IntensityMap, to_model_units
from genmed.data.phantom import LABELS
from genmed.data.spacing import check_spacing, full_spacing
from genmed.data.splits import SPLITS
from genmed.data.volumes import data_info, model_items
from genmed.errors import UserError

REQUIRED = ("path",)
OPTIONAL = ("patient_id", "label", "series_uid", "modality", "slice", "mask_path", "noise_hu",
            "noisy", "split")


def load_source(path: Path, *, size: int, spatial_dims: int, spacing_mm=None):
    """(ImageDataset, split column (N,) str array or None) for a CSV, .npz or folder `path`;
    `spacing_mm` (None, one number or one per axis, mm): resample every scan to it."""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    spacing_mm = check_spacing(spacing_mm, spatial_dims)
    if path.is_dir():
        return dataset_from_folder(path, size=size, spatial_dims=spatial_dims,
                                   spacing_mm=spacing_mm), None
    name = path.name.lower()
    if name.endswith(".csv"):
        return dataset_from_manifest(path, size=size, spatial_dims=spatial_dims, spacing_mm=spacing_mm)
    if name.endswith(".npz"):
        if spacing_mm is not None:
            raise UserError(f"{path}: MedMNIST images have no spacing in mm; drop --spacing (spacing_mm)")
        return dataset_from_medmnist(path, size=size, spatial_dims=spatial_dims)
    raise UserError(f"{path}: training data must be 'phantom', a manifest .csv, a MedMNIST .npz "
                    "or a folder of images")


def read_manifest(path: Path):
    """The manifest as a pandas DataFrame with checked columns, labels as indices (-1: none)."""
    import pandas as pd

    if not Path(path).is_file():
        raise UserError(f"{path}: manifest file not found")
    try:
        df = pd.read_csv(path, dtype={"patient_id": str, "split": str, "path": str, "mask_path": str,
                                      "series_uid": str, "modality": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise UserError(f"{path}: not a readable CSV ({type(exc).__name__}: {exc})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(f"{path}: manifest lacks column(s) {', '.join(missing)} (the image file of "
                        "each row; `genmed data scan FOLDER --out manifest.csv` writes one)")
    if df.empty:
        raise UserError(f"{path}: manifest has no rows")
    if df["path"].isna().any():
        raise UserError(f"{path}: row {int(df['path'].isna().to_numpy().argmax()) + 2}: empty path")
    for column, whole in (("slice", True), ("noise_hu", False)):
        if column in df.columns:
            df[column] = _numbers(df[column], path, column, whole)
    if "label" in df.columns:
        df["label"] = [_label_index(v, path, i) for i, v in enumerate(df["label"])]
    if "split" in df.columns:
        df["split"] = df["split"].fillna("")
        bad = sorted(set(df["split"]) - {*SPLITS, ""})
        if bad:
            raise UserError(f"{path}: unknown split(s) {bad}; use {', '.join(SPLITS)}")
    return df


def _numbers(values, path: Path, column: str, whole: bool):
    """Column `column` as floats (empty cells NaN); a cell that is not a finite number (with
    `whole`: a whole number) is refused with its row."""
    import pandas as pd

    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    given = numbers.notna() | values.notna()
    ok = np.isfinite(numbers) & ((numbers % 1 == 0) if whole else True)
    bad = (given & ~ok).to_numpy()
    if bad.any():
        i = int(bad.argmax())
        kind = "a whole number" if whole else "a finite number"
        raise UserError(f"{path}: row {i + 2}: {column} '{values.iloc[i]}' is not {kind}")
    return numbers


def _label_index(value, path: Path, row: int) -> int:
    text = str(value).strip()
    if text in LABELS:
        return LABELS.index(text)
    if text.lstrip("-").isdigit() and 0 <= int(text) < len(LABELS):
        return int(text)
    raise UserError(f"{path}: row {row + 2}: label {text!r} is not one of {', '.join(LABELS)}")


def _to_unit(arr: np.ndarray, modality: str) -> torch.Tensor:
    """One image in model units (the modality's map, `genmed.data.modality`)."""
    return torch.from_numpy(to_model_units(arr, modality)[0])


def _text(row, column: str) -> str | None:
    v = getattr(row, column, None)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    text = str(v).strip()
    return text or None


def dataset_from_manifest(path: Path, *, size: int, spatial_dims: int,
                          spacing_mm: tuple[float, ...] | None = None):
    """Load every row's image (slice) into memory in model units, resized to `size` (or
    resampled to `spacing_mm` mm and centre cropped / padded to `size`)."""
    from genmed.data.io import load

    df = read_manifest(path)
    target = full_spacing(spacing_mm, spatial_dims) if spacing_mm is not None else None
    cache: dict[tuple, object] = {}
    parts, labels, pids, vids, maps, pixels, orients = [], [], [], [], [], [], []
    labelled = "label" in df.columns
    from_column = "patient_id" in df.columns
    patient_from = "patient_id column"
    volumes = set()
    for i, row in enumerate(df.itertuples(index=False)):
        file = Path(row.path) if Path(row.path).is_absolute() else path.parent / row.path
        uid = _text(row, "series_uid")
        key = (str(file), uid)
        if key not in cache:
            cache = {key: load(file, series_uid=uid)}  # rows of a file are adjacent
        img = cache[key]
        sl = _text(row, "slice")
        where = f"{path}: row {i + 2} ({file})"
        x, imap, pixel = model_items(img, size=size, spatial_dims=spatial_dims, where=where,
                                     modality=_text(row, "modality"),
                                     slice_index=int(float(sl)) if sl is not None else None,
                                     spacing_mm=target)
        pid = _text(row, "patient_id") if from_column else None
        if pid is None:
            pid = img.meta.get("patient_id") or f"{file.name}" + (f":{uid}" if uid else "")
            patient_from = ("patient_id column, else DICOM PatientID or the file" if from_column
                            else "DICOM PatientID, else the file (no patient_id column)")
        vid = str(file) + (f":{uid}" if uid else "")
        volumes.add(vid)
        parts.append(x)
        labels += [int(row.label) if labelled else -1] * len(x)
        pids += [pid] * len(x)
        vids += [vid] * len(x)
        maps.append(imap)
        pixels.append(pixel)
        orients.append(img.orientation)
    counts = [len(x) for x in parts]
    extras = {}
    for column, dtype in (("noise_hu", np.float32), ("noisy", bool)):
        if column in df.columns:
            values = df[column].fillna(0 if dtype is np.float32 else False).astype(dtype).to_numpy()
            extras[column] = torch.from_numpy(np.repeat(values, counts))
    info = data_info(maps, pixels, orients, source=str(path), labelled=labelled,
                     patient_from=patient_from, n_volumes=len(volumes),
                     volume_ids=_row_volumes(vids, parts), resampled_to_mm=target)
    ds = ImageDataset(torch.cat(parts), torch.tensor(labels, dtype=torch.long), pids, extras,
                      LABELS if labelled else (), volume_ids=vids, info=info)
    split = np.repeat(df["split"].to_numpy(str), counts) if "split" in df.columns else None
    return ds, split


def dataset_from_medmnist(path: Path, *, size: int, spatial_dims: int):
    """All splits of a MedMNIST file; each image is its own 'patient'; splits from the file."""
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
    grey = IntensityMap("range", "OT", "grey level", 0.0, 255.0)
    info = {"source": str(path), "modality": "OT", "units": "grey level", "intensity": grey.to_dict(),
            "spacing_mm": None, "resampled_to_mm": None, "orientation": None, "labelled": True,
            "patient_from": "each image its own patient (MedMNIST)", "n_volumes": len(ids)}
    ds = ImageDataset(torch.cat(parts), torch.cat(labels), ids, class_names=(), info=info)
    return ds, np.array(split)


def dataset_from_folder(path: Path, *, size: int, spatial_dims: int,
                        spacing_mm: tuple[float, ...] | None = None):
    """Images directly in `path` (unlabelled) or in class sub-folders named after LABELS.

    Each file (2D image or 3D volume; a DICOM series folder counts as one volume) is one
    patient unless DICOM names the patient; 2D data takes every slice of a volume.
    `spacing_mm`: resample every scan to it (mm) instead of resizing (see `load_source`).
    """
    from genmed.data.io import file_kind, load

    target = full_spacing(spacing_mm, spatial_dims) if spacing_mm is not None else None

    subdirs = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    named = [d.name for d in subdirs if d.name in LABELS]
    labelled = bool(named) and not any(file_kind(f) == "dicom" for f in path.iterdir() if f.is_file())
    if labelled and len(named) < len(subdirs):
        unknown = [d.name for d in subdirs if d.name not in LABELS]
        raise UserError(f"{path}: class folder(s) {unknown} are not labels {', '.join(LABELS)}")
    groups = [(LABELS.index(d.name), d) for d in subdirs] if labelled else [(-1, path)]
    parts, labels, pids, vids, maps, pixels, orients = [], [], [], [], [], [], []
    for label, folder in groups:
        for item in _folder_items(folder):
            img = load(item, ndim=(2, 3))
            x, imap, pixel = model_items(img, size=size, spatial_dims=spatial_dims, where=str(item),
                                         spacing_mm=target)
            pid = img.meta.get("patient_id") or f"{folder.name}/{item.name}"
            parts.append(x)
            labels += [label] * len(x)
            pids += [pid] * len(x)
            vids += [str(item)] * len(x)
            maps.append(imap)
            pixels.append(pixel)
            orients.append(img.orientation)
    if not parts:
        raise UserError(f"{path}: empty folder")
    info = data_info(maps, pixels, orients, source=str(path), labelled=labelled,
                     patient_from="DICOM PatientID, else each file its own patient",
                     n_volumes=len(set(vids)), volume_ids=_row_volumes(vids, parts),
                     resampled_to_mm=target)
    return ImageDataset(torch.cat(parts), torch.tensor(labels, dtype=torch.long), pids,
                        class_names=LABELS if labelled else (), volume_ids=vids, info=info)


def _row_volumes(item_volumes: list[str], parts: list) -> list[str]:
    """The volume id of each part (row or file), from the per-item ids."""
    out, start = [], 0
    for x in parts:
        out.append(item_volumes[start])
        start += len(x)
    return out


def _folder_items(folder: Path) -> list[Path]:
    """Image files in `folder` (a DICOM series folder is one item)."""
    from genmed.data.io import file_kind

    files = sorted(f for f in folder.iterdir() if not f.name.startswith("."))
    if any(f.is_file() and file_kind(f) == "dicom" for f in files):
        return [folder]
    return [f for f in files if (f.is_file() and file_kind(f) != "unknown") or f.is_dir()]
