"""Torch datasets for models: the phantom in memory, a manifest CSV, or a folder of images.

Every item is a dict {"image": float tensor (1, *spatial) in [-1, 1], "label": long tensor (),
"patient_id": str}, plus optional extras with the same leading index (phantom: "clean",
"image_nc", "clean_nc" in [-1, 1], "mask" long (1, *spatial) with 0 background, 1 kidney,
2 lesion, "noise_hu", "noisy"). CT is windowed with `hu_to_unit` (L40/W400); other
modalities are scaled per volume between their 0.5 and 99.5 percentiles
(`genmed.data.modality`). `ImageDataset.info` records modality, units, the intensity map and
the spacing of a model pixel, so generated images can be written back in the data's units.

`ImageDataset` lives in `genmed.data.imageset` (the manifest readers build it too); it is
re-exported here and from `genmed.data`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from genmed.data.imageset import ImageDataset, _resize_batch
from genmed.data.manifest import load_source
from genmed.data.phantom import PhantomConfig, make_slices, make_volumes
from genmed.data.spacing import PHANTOM_SPACING, check_spacing
from genmed.data.splits import DEFAULT_FRACTIONS, SPLITS, patient_split
from genmed.data.summary import summarise
from genmed.data.volumes import restrict_info
from genmed.data.transforms import hu_to_unit
from genmed.errors import UserError, check_choice

Split = Literal["train", "val", "test", "all"]
MANIFEST_COLUMNS = ("path", "mask_path", "patient_id", "slice", "label", "noise_hu", "noisy", "split")


def load_training_data(source: str | os.PathLike = "phantom", *, size: int = 32, spatial_dims: int = 2,
                       split: Split = "train", seed: int = 0, n_patients: int | None = None,
                       fractions: Mapping[str, float] = DEFAULT_FRACTIONS,
                       phantom: PhantomConfig | None = None,
                       spacing_mm: float | tuple[float, ...] | None = None) -> ImageDataset:
    """Images for training or evaluation, resized to `size` per spatial axis.

    `source`: "phantom" (generated in memory; `n_patients` default 48 in 2D, 12 in 3D), a
    manifest CSV (see `genmed data make` and `genmed data scan`), a MedMNIST `.npz`, or a folder
    of images. `split` picks one patient-level split (the manifest's `split` column when
    present, else `patient_split(fractions, seed)`), or "all". The returned data set carries
    `summary` (`genmed.data.summary.summarise`: counts per split, what is held out and why).
    `spacing_mm` (mm per model pixel: one number, or z,y,x in 3D / y,x in 2D): resample every
    scan to it with MONAI `Spacing` and centre crop / pad to `size` (`genmed.data.spacing`)
    instead of resizing; info["resampled_to_mm"] records it. The phantom refuses it (it is
    rendered at its own known spacing, 360 mm / size in-plane).
    """
    check_choice("spatial_dims", spatial_dims, (2, 3))
    check_choice("split", split, (*SPLITS, "all"))
    if not 4 <= size <= 512:
        raise UserError(f"size={size} must be between 4 and 512 pixels")
    spacing_mm = check_spacing(spacing_mm, spatial_dims)
    if str(source) == "phantom":
        if spacing_mm is not None:
            raise UserError(PHANTOM_SPACING)
        ds = phantom_dataset(size=size, spatial_dims=spatial_dims, seed=seed, n_patients=n_patients,
                             cfg=phantom)
        split_col = None
    else:
        ds, split_col = load_source(Path(source), size=size, spatial_dims=spatial_dims,
                                    spacing_mm=spacing_mm)
    index, split_from = split_index(ds, split_col, fractions, seed)
    summary = summarise(ds, index, used=split, split_from=split_from)
    if split == "all":
        ds.summary = summary
        return ds
    if len(index[split]) == 0:
        raise UserError(f"{source}: split {split!r} is empty ({summary['patients']} patient(s), split "
                        f"{split_from}); too few patients: use split 'all' or add patients")
    sub = ds.subset(index[split])
    sub.info = restrict_info(sub.info, sub.volume_ids)
    sub.summary = summary
    return sub


def split_index(ds: ImageDataset, split_col: np.ndarray | None, fractions: Mapping[str, float],
                seed: int) -> tuple[dict[str, np.ndarray], str]:
    """({split: item indices}, how the split was made): the source's own `split` column when
    every item has one, else `patient_split(fractions, seed)` over the patient ids."""
    if split_col is not None and (split_col != "").all():
        return ({name: np.nonzero(split_col == name)[0] for name in SPLITS},
                "the source's own split column")
    shares = "/".join(f"{round(100 * float(fractions[k]))}" for k in fractions)
    return (patient_split(ds.patient_ids, fractions, seed),
            f"by patient, {shares} % of {len(set(ds.patient_ids))} patients (seed {seed})")


def phantom_dataset(*, size: int = 32, spatial_dims: int = 2, seed: int = 0,
                    n_patients: int | None = None, slices_per_patient: int = 8,
                    cfg: PhantomConfig | None = None) -> ImageDataset:
    """The phantom as an `ImageDataset` (all patients). Rendered at >= 64 px, then area-resized."""
    render_size = max(size, 64) if cfg is None else cfg.size
    cfg = cfg or PhantomConfig(size=render_size)
    if spatial_dims == 2:
        data = make_slices(n_patients if n_patients is not None else 48, slices_per_patient, cfg, seed)
    else:
        data = make_volumes(n_patients if n_patients is not None else 12, cfg, seed)

    def unit(hu: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(hu_to_unit(hu)).unsqueeze(1)
        return _resize_batch(t, size, "area")

    from genmed.data.modality import CT_WINDOW

    mask = data.kidney_mask.astype(np.int64) + data.lesion_mask.astype(np.int64)
    pixel = [cfg.fov_mm / size] * 2
    if spatial_dims == 3:
        pixel = [cfg.z_spacing_mm * data.image.shape[1] / size, *pixel]
    info = {"source": "phantom", "modality": "CT", "units": "HU", "intensity": CT_WINDOW.to_dict(),
            "spacing_mm": [round(p, 4) for p in pixel], "resampled_to_mm": None, "orientation": "LPS",
            "labelled": True,
            "patient_from": "phantom patients", "n_volumes": len(set(data.patient_id))}
    extras = {
        "clean": unit(data.clean), "image_nc": unit(data.image_nc), "clean_nc": unit(data.clean_nc),
        "mask": _resize_batch(torch.from_numpy(mask).unsqueeze(1), size, "nearest"),
        "noise_hu": torch.from_numpy(data.noise_hu), "noisy": torch.from_numpy(data.noisy),
    }
    return ImageDataset(unit(data.image), torch.from_numpy(data.label), list(data.patient_id), extras,
                        info=info)
