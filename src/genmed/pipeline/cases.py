"""The pipeline's data: 2D slices with kidney masks, labels and what the phantom knows.

`Cases` holds every slice in memory: the image in [-1, 1] (HU through the abdomen window,
level 40 / width 400 HU), the ground-truth kidney mask (kidney incl. sinus plus lesion), the
lesion mask, the label (index into `LABELS`), the patient id and, from the phantom, the
scan's noise (HU), its low-dose flag and the lesion's in-plane diameter (mm). A manifest CSV
(`genmed data make` writes one) with a `mask_path` column (0 background, 1 kidney, 2 lesion)
gives the same for a user's own NIfTI/DICOM/PNG slices.

Splits are by patient (train/val/dev/test), never by slice.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genmed.data.phantom import LABELS, PhantomConfig, make_slices
from genmed.data.splits import patient_split
from genmed.data.transforms import hu_to_unit_
from genmed.errors import UserError

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "dev", "test")


@dataclass
class Cases:
    """N slices; images (N, H, W) float32 in [-1, 1], masks (N, H, W) uint8."""

    image: np.ndarray
    kidney: np.ndarray  # ground-truth kidney mask incl. lesion
    lesion: np.ndarray  # ground-truth lesion mask (zeros when unknown)
    label: np.ndarray  # (N,) int64 index into LABELS
    patient_id: np.ndarray  # (N,) str
    ids: np.ndarray  # (N,) str, unique per slice
    noisy: np.ndarray  # (N,) bool, low-dose scan (False when unknown)
    noise_hu: np.ndarray  # (N,) float32 noise SD (HU; nan when unknown)
    lesion_mm: np.ndarray  # (N,) float32 lesion diameter (mm; 0 if none, nan when unknown)
    spacing_mm: float = 5.625  # in-plane pixel spacing (mm)
    split: np.ndarray | None = None  # (N,) str from a manifest's split column

    def __len__(self) -> int:
        return len(self.label)

    def subset(self, index: Sequence[int] | np.ndarray) -> Cases:
        """The cases at `index` (same order)."""
        i = np.asarray(index, np.int64)
        return Cases(self.image[i], self.kidney[i], self.lesion[i], self.label[i], self.patient_id[i],
                     self.ids[i], self.noisy[i], self.noise_hu[i], self.lesion_mm[i], self.spacing_mm,
                     None if self.split is None else self.split[i])


def phantom_cases(n_patients: int, slices_per_patient: int = 8, cfg: PhantomConfig = PhantomConfig(),
                  seed: int = 0) -> Cases:
    """Phantom slices (contrast phase with scan noise) as `Cases`; ids `<patient>-z<slice>`.
    Only that phase is rendered, and it is windowed in place: 250 patients x 8 slices at 256 px
    peak at 1.6 GB resident instead of 3.6 GB (for a 0.5 GB image array; docs/pipeline.md)."""
    d = make_slices(n_patients, slices_per_patient, cfg, seed, keep=("image",))
    ids = np.array([f"{p}-z{s:02d}" for p, s in zip(d.patient_id, d.slice_index, strict=True)])
    return Cases(hu_to_unit_(d.image), d.kidney_mask.astype(np.uint8, copy=False),
                 d.lesion_mask.astype(np.uint8, copy=False), d.label.astype(np.int64), d.patient_id.astype(str),
                 ids, d.noisy.astype(bool), d.noise_hu.astype(np.float32),
                 d.lesion_diameter_mm.astype(np.float32), float(d.spacing_mm[1]))


def manifest_cases(path: str | os.PathLike, size: int) -> Cases:
    """Slices listed in a manifest CSV with `path`, `mask_path`, `label`, `patient_id`.

    Each image (and its mask: 0 background, 1 kidney, 2 lesion) is resized to `size` x `size`
    (area for images, nearest for masks). CT is windowed to [-1, 1]; other modalities min-max.
    """
    import torch

    from genmed.data.io import load
    from genmed.data.manifest import _to_unit, read_manifest
    from genmed.data.transforms import resize

    path = Path(path)
    df = read_manifest(path)
    if "mask_path" not in df.columns or df["mask_path"].isna().any():
        raise UserError(f"{path}: the pipeline needs a mask_path (kidney mask) for every row")
    images, masks, spacing = [], [], []
    for i, row in enumerate(df.itertuples(index=False)):
        arrs = []
        for ref in (row.path, row.mask_path):
            file = Path(ref) if Path(ref).is_absolute() else path.parent / ref
            img = load(file)
            arr = img.array
            sl = getattr(row, "slice", None)
            if sl is not None and not (isinstance(sl, float) and np.isnan(sl)):
                if not 0 <= int(sl) < arr.shape[0]:
                    raise UserError(f"{path}: row {i + 2}: slice {int(sl)} outside {file}")
                arr = arr[int(sl)]
            if arr.ndim != 2:
                raise UserError(f"{file}: expected a 2D slice, got shape {arr.shape} (set the slice column)")
            arrs.append((arr, img))
        (arr, img), (mask, _) = arrs
        if arr.shape != mask.shape:
            raise UserError(f"{path}: row {i + 2}: image {arr.shape} and mask {mask.shape} differ in shape")
        spacing.append(float(img.spacing[-1]) * arr.shape[-1] / size)
        unit = _to_unit(arr, img.meta.get("modality", "unknown"))[None]
        images.append(resize(unit, size, "area")[0].numpy())
        masks.append(resize(torch.from_numpy(np.rint(mask).astype(np.int64))[None], size, "nearest")[0].numpy())
    m = np.stack(masks)
    n = len(df)
    pid = df["patient_id"].astype(str).to_numpy()
    sl = df["slice"].fillna(-1).astype(int).to_numpy() if "slice" in df.columns else np.arange(n)
    ids = np.array([f"{p}-z{s:02d}-r{i}" for i, (p, s) in enumerate(zip(pid, sl, strict=True))])
    noisy = df["noisy"].fillna(False).astype(bool).to_numpy() if "noisy" in df.columns else np.zeros(n, bool)
    noise = df["noise_hu"].to_numpy(np.float32) if "noise_hu" in df.columns else np.full(n, np.nan, np.float32)
    diam = (df["lesion_diameter_mm"].to_numpy(np.float32) if "lesion_diameter_mm" in df.columns
            else np.full(n, np.nan, np.float32))
    split = df["split"].astype(str).to_numpy() if "split" in df.columns else None
    return Cases(np.stack(images).astype(np.float32), (m > 0).astype(np.uint8), (m == 2).astype(np.uint8),
                 df["label"].to_numpy(np.int64), pid, ids, noisy, noise, diam,
                 float(np.median(spacing)), split)


def load_cases(data: str | os.PathLike, *, size: int, n_patients: int, slices_per_patient: int,
               phantom: PhantomConfig, seed: int) -> Cases:
    """`data` = "phantom" (generated with `phantom`, `seed`) or a manifest CSV path."""
    if str(data) == "phantom":
        if phantom.size != size:
            phantom = PhantomConfig(**{**phantom.__dict__, "size": size})
        return phantom_cases(n_patients, slices_per_patient, phantom, seed)
    if not str(data).lower().endswith(".csv"):
        raise UserError(f"--data {data}: expected 'phantom' or a manifest .csv with mask_path")
    return manifest_cases(data, size)


def split_cases(cases: Cases, fractions: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    """Patient-level split {train, val, dev, test: indices}.

    A manifest whose `split` column names every row uses it (its "test" patients are split
    half dev, half test when no row says "dev"); otherwise patients are shuffled with `seed`
    into `fractions` (train, val, dev, test).
    """
    if len(fractions) != 4:
        raise UserError(f"split fractions {tuple(fractions)} must be 4 numbers: train, val, dev, test")
    if cases.split is not None and np.isin(cases.split, ("train", "val", "dev", "test")).all():
        out = {name: np.nonzero(cases.split == name)[0] for name in SPLIT_NAMES}
        if len(out["dev"]) == 0:
            half = patient_split(cases.patient_id[out["test"]], {"dev": 0.5, "test": 0.5}, seed)
            out["dev"], out["test"] = out["test"][half["dev"]], out["test"][half["test"]]
    else:
        out = patient_split(cases.patient_id, dict(zip(SPLIT_NAMES, fractions, strict=True)), seed)
    for name in ("train", "dev"):
        if len(out[name]) == 0:
            raise UserError(f"the {name} split is empty: use more patients")
    return {k: np.asarray(v, np.int64) for k, v in out.items()}


def label_names(labels: np.ndarray) -> np.ndarray:
    """Class indices -> names (healthy, benign, malignant)."""
    return np.asarray(LABELS, dtype=object)[np.asarray(labels, np.int64)]
