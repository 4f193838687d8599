"""A loaded scan -> model items, and what a data set of them is (modality, units, spacing).

`model_items` turns one `Image` into (n, 1, *spatial) tensors in model units ([-1, 1]; the
modality's map, `genmed.data.modality`), resized to `size` per axis: a 2D image gives one item,
a 3D volume gives one item in 3D or every slice (along the canonical S axis) in 2D. It also
returns the map used and the spacing of one model pixel (mm; the source spacing times
shape / size). `data_info` combines these over a data set into `ImageDataset.info`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from genmed.data.imageset import _resize_batch
from genmed.data.modality import IntensityMap, dataset_map, to_model_units, units_for
from genmed.errors import UserError


def model_items(img, *, size: int, spatial_dims: int, where: str, modality: str | None = None,
                slice_index: int | None = None) -> tuple[torch.Tensor, IntensityMap, tuple[float, ...]]:
    """(items (n, 1, *spatial) in [-1, 1], the intensity map, spacing of a model pixel mm)."""
    arr = img.array
    if arr.ndim not in (2, 3):
        raise UserError(f"{where}: {arr.ndim}D image of shape {arr.shape} (a time series?); "
                        "give one 2D slice or 3D volume per row")
    mod = modality or img.modality
    units = img.units if mod == img.modality else units_for(mod)
    unit, imap = to_model_units(arr, mod, units)  # the map of the whole volume, slice or not
    spacing = tuple(img.spacing)
    if slice_index is not None:
        if arr.ndim != 3 or not 0 <= slice_index < arr.shape[0]:
            raise UserError(f"{where}: slice {slice_index} outside the image of shape {arr.shape}")
        unit, spacing = unit[slice_index], spacing[1:]
    if unit.ndim == spatial_dims:
        stack = unit[None]
    elif unit.ndim == 3 and spatial_dims == 2:
        stack, spacing = unit, spacing[1:]
    else:
        raise UserError(f"{where}: {unit.ndim}D image but {spatial_dims}D data was asked for")
    shape = stack.shape[1:]
    x = _resize_batch(torch.from_numpy(np.ascontiguousarray(stack))[:, None], size, "area")
    pixel = tuple(float(s) * n / size for s, n in zip(spacing, shape, strict=True))
    return x, imap, pixel


def data_info(maps: Sequence[IntensityMap], pixels: Sequence[tuple[float, ...]],
              orientations: Sequence[str | None], *, source: str, labelled: bool,
              patient_from: str, n_volumes: int, volume_ids: Sequence[str] | None = None) -> dict[str, Any]:
    """`ImageDataset.info` of a data set built from `model_items` results (one entry per
    manifest row or file; `volume_ids` names each entry's volume): the intensity map (the CT
    window, or the median of the volumes' percentile values; "volume_intensity" keeps each
    volume's so that `restrict_info` can use the training volumes only), the median model-pixel
    spacing ("spacing_mm") and its range over the volumes ("spacing_range_mm", [min, max] per
    axis: volumes of different resolution resized to one grid do not share a pixel size)."""
    per_volume = dict(zip(volume_ids, maps, strict=True)) if volume_ids is not None else None
    imap = dataset_map(list(per_volume.values()) if per_volume else list(maps))
    spacing = np.median(np.asarray(pixels, float), axis=0) if pixels else None
    kinds = sorted({str(o) for o in orientations if o})  # 2D images keep their stored order
    spread = None
    if pixels and len({len(p) for p in pixels}) == 1:
        arr = np.asarray(pixels, float)
        spread = [[round(float(a), 4), round(float(b), 4)] for a, b in zip(arr.min(0), arr.max(0), strict=True)]
    info = {
        "source": source, "modality": imap.modality, "units": imap.units,
        "intensity": imap.to_dict(),
        "spacing_mm": [round(float(s), 4) for s in spacing] if spacing is not None else None,
        "spacing_range_mm": spread,
        "orientation": kinds[0] if len(kinds) == 1 else ("mixed" if kinds else None),
        "labelled": labelled, "patient_from": patient_from, "n_volumes": n_volumes,
    }
    if per_volume and imap.kind != "window":
        info["volume_intensity"] = {v: m.to_dict() for v, m in per_volume.items()}
    return info


def restrict_info(info: dict[str, Any], volume_ids: Sequence[str]) -> dict[str, Any]:
    """`info` with the intensity map recomputed from `volume_ids` only (the training split), so
    that held-out volumes do not shape the map generated images are written back with."""
    per = info.get("volume_intensity")
    if not per:
        return info
    keep = [IntensityMap.from_dict(per[v]) for v in dict.fromkeys(volume_ids) if v in per]
    if not keep:
        return info
    imap = dataset_map(keep)
    return {**info, "intensity": imap.to_dict(), "intensity_from": f"{len(keep)} volume(s) of the split"}
