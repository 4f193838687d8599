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
              patient_from: str, n_volumes: int) -> dict[str, Any]:
    """`ImageDataset.info` of a data set built from `model_items` results."""
    imap = dataset_map(list(maps))
    spacing = np.median(np.asarray(pixels, float), axis=0) if pixels else None
    kinds = sorted({str(o) for o in orientations})
    return {
        "source": source, "modality": imap.modality, "units": imap.units,
        "intensity": imap.to_dict(),
        "spacing_mm": [round(float(s), 4) for s in spacing] if spacing is not None else None,
        "orientation": orientations[0] if len(kinds) == 1 else "mixed",
        "labelled": labelled, "patient_from": patient_from, "n_volumes": n_volumes,
    }
