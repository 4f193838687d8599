"""A loaded scan -> model items, and what a data set of them is (modality, units, spacing).

`model_items` turns one `Image` into (n, 1, *spatial) tensors in model units ([-1, 1]; the
modality's map, `genmed.data.modality`), resized to `size` per axis: a 2D image gives one item,
a 3D volume gives one item in 3D or every slice (along the canonical S axis) in 2D. It also
returns the map used and the spacing of one model pixel (mm; the source spacing times
shape / size). With a target spacing (`spacing_mm`) it resamples to it instead and centre
crops or pads to `size` (`genmed.data.spacing`: MONAI `Spacing`, `ResizeWithPadOrCrop`), so the
model pixel is exactly the target. `data_info` combines these over a data set into
`ImageDataset.info`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from genmed.data.imageset import _resize_batch
from genmed.data.modality import IntensityMap, dataset_map, to_model_units, units_for
from genmed.data.spacing import full_spacing, resample_to_grid
from genmed.errors import UserError


def model_items(img, *, size: int, spatial_dims: int, where: str, modality: str | None = None,
                slice_index: int | None = None, spacing_mm: Sequence[float] | None = None
                ) -> tuple[torch.Tensor, IntensityMap, tuple[float, ...]]:
    """(items (n, 1, *spatial) in [-1, 1], the intensity map, spacing of a model pixel mm).

    `spacing_mm` (None: resize to `size` whatever the spacing): mm per model pixel, one number
    or one per spatial axis (z, y, x / y, x); the items are resampled to it and centre cropped
    or padded to `size` with the modality's background (CT: -1, air; others: the volume's
    minimum in model units)."""
    arr = img.array
    if arr.ndim not in (2, 3):
        raise UserError(f"{where}: {arr.ndim}D image of shape {arr.shape} (a time series?); "
                        "give one 2D slice or 3D volume per row")
    mod = modality or img.modality
    units = img.units if mod == img.modality else units_for(mod)
    unit, imap = to_model_units(arr, mod, units)  # the map of the whole volume, slice or not
    stack, spacing = _item_stack(unit, tuple(img.spacing), spatial_dims, where, slice_index)
    if spacing_mm is None:
        x = _resize_batch(torch.from_numpy(np.ascontiguousarray(stack))[:, None], size, "area")
        pixel = tuple(float(s) * n / size for s, n in zip(spacing, stack.shape[1:], strict=True))
        return x, imap, pixel
    if img.meta.get("format") == "pil":
        raise UserError(f"{where}: a picture (PNG/TIFF) has no spacing in mm to resample from; "
                        "drop --spacing (spacing_mm) for pictures")
    target = full_spacing(spacing_mm, spatial_dims)
    background = -1.0 if imap.kind == "window" else float(unit.min())
    x = resample_to_grid(stack, spacing, target, size=size, pad_value=background, where=where)
    return x, imap, target


def _item_stack(unit: np.ndarray, spacing: tuple[float, ...], spatial_dims: int, where: str,
                slice_index: int | None) -> tuple[np.ndarray, tuple[float, ...]]:
    """(items (n, *spatial), their spacing mm per spatial axis) of one image in model units:
    the image itself, its slice `slice_index`, or in 2D every slice of a volume."""
    if slice_index is not None:
        if unit.ndim != 3 or not 0 <= slice_index < unit.shape[0]:
            raise UserError(f"{where}: slice {slice_index} outside the image of shape {unit.shape}")
        unit, spacing = unit[slice_index], spacing[1:]
    if unit.ndim == spatial_dims:
        return unit[None], spacing
    if unit.ndim == 3 and spatial_dims == 2:
        return unit, spacing[1:]
    raise UserError(f"{where}: {unit.ndim}D image but {spatial_dims}D data was asked for")


def data_info(maps: Sequence[IntensityMap], pixels: Sequence[tuple[float, ...]],
              orientations: Sequence[str | None], *, source: str, labelled: bool,
              patient_from: str, n_volumes: int, volume_ids: Sequence[str] | None = None,
              resampled_to_mm: Sequence[float] | None = None) -> dict[str, Any]:
    """`ImageDataset.info` of a data set built from `model_items` results (one entry per
    manifest row or file; `volume_ids` names each entry's volume): the intensity map (the CT
    window, or the median of the volumes' percentile values; "volume_intensity" keeps each
    volume's so that `restrict_info` can use the training volumes only), the median model-pixel
    spacing ("spacing_mm") and its range over the volumes ("spacing_range_mm", [min, max] per
    axis: volumes of different resolution resized to one grid do not share a pixel size).
    `resampled_to_mm`: the target every volume was resampled to (`model_items(spacing_mm=)`,
    per axis, mm), recorded as "resampled_to_mm" (None: resized, not resampled); the spacing
    is then exactly the target and its range collapses to it."""
    per_volume = dict(zip(volume_ids, maps, strict=True)) if volume_ids is not None else None
    imap = dataset_map(list(per_volume.values()) if per_volume else list(maps))
    spacing = np.median(np.asarray(pixels, float), axis=0) if pixels else None
    target = [float(t) for t in resampled_to_mm] if resampled_to_mm is not None else None
    kinds = sorted({str(o) for o in orientations if o})  # 2D images keep their stored order
    spread = None
    if pixels and len({len(p) for p in pixels}) == 1:
        arr = np.asarray(pixels, float)
        spread = [[round(float(a), 4), round(float(b), 4)] for a, b in zip(arr.min(0), arr.max(0), strict=True)]
    info = {
        "source": source, "modality": imap.modality, "units": imap.units,
        "intensity": imap.to_dict(),
        "spacing_mm": target or ([round(float(s), 4) for s in spacing] if spacing is not None else None),
        "spacing_range_mm": [[t, t] for t in target] if target else spread,
        "resampled_to_mm": target,
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
