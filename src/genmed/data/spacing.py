"""Resampling to one spacing: every volume at the same mm per model pixel.

Without a target spacing, `genmed.data.volumes.model_items` resizes each scan to `size` per
axis, so a model pixel covers a different physical size in each scan (the source spacing
times shape / size). With one (`genmed train --spacing 1.5`, `TrainConfig.spacing_mm`,
`load_training_data(spacing_mm=...)`), each volume is instead

1. resampled to the target spacing with MONAI `Spacing` (bilinear for images; the array's
   spacing is carried by a `MetaTensor` affine), then
2. centre cropped or padded to `size` per axis with MONAI `ResizeWithPadOrCrop`, padding with
   the modality's background in model units (CT: -1, the bottom of the window, i.e. air;
   other modalities: the volume's minimum),

so every model pixel is exactly the target (ImageDataset.info "spacing_mm" and
"resampled_to_mm"). The field of view is then `size` x target mm per axis: a scan larger than
that is cropped around its centre, a smaller one is padded.

A target is one number (every axis) or one per spatial axis in genmed's array order: z, y, x
for 3D data, y, x for 2D (2D items from a volume are its axial slices, resampled in-plane).
Bilinear resampling does not low-pass filter first: a target much coarser than the scans
(more than ~2x) aliases fine detail and noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from genmed.errors import UserError, check_range

MAX_SPACING_MM = 1000.0  # a target beyond a metre per pixel is a typo
MAX_RESAMPLED_ELEMENTS = 1 << 28  # one resampled volume (1 GiB of float32) before cropping
PHANTOM_SPACING = ("--spacing (spacing_mm): the phantom is rendered at its own spacing (360 mm / "
                   "size in-plane); drop it, or use it with your own scans")


def parse_spacing(text: str, *, name: str = "--spacing") -> tuple[float, ...]:
    """'1.5' or '2.5,1.5,1.5' (mm; z,y,x in 3D, y,x in 2D) -> a tuple of floats, or a
    one-line `UserError`. Range checks are `check_spacing`'s."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise UserError(f"{name} {text!r}: expected mm per pixel, one number (1.5) or one per "
                        "axis separated by commas (2.5,1.5,1.5 for z,y,x)") from None
    return values


def check_spacing(values: Any, spatial_dims: int, *, name: str = "spacing_mm"
                  ) -> tuple[float, ...] | None:
    """None, or `values` (one number or a sequence: mm per model pixel) as a tuple of floats,
    each finite and in (0, MAX_SPACING_MM], of length 1 or `spatial_dims`; else a `UserError`."""
    if values is None:
        return None
    if isinstance(values, str):
        values = parse_spacing(values, name=name)
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    if len(items) not in (1, spatial_dims):
        order = "z,y,x" if spatial_dims == 3 else "y,x"
        raise UserError(f"{name}={_show(items)}: give one number or {spatial_dims} ({order}) mm "
                        f"for {spatial_dims}D data")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise UserError(f"{name}={_show(items)}: {v!r} is not a number of mm")
        check_range(name, float(v), 0.0, MAX_SPACING_MM, low_open=True)
    return tuple(float(v) for v in items)


def _show(items: Sequence[Any]) -> str:
    return ",".join(str(v) for v in items)


def full_spacing(target: Sequence[float], spatial_dims: int) -> tuple[float, ...]:
    """The target (mm) per spatial axis: one number repeated, or the `spatial_dims` given."""
    target = tuple(float(t) for t in target)
    return target * spatial_dims if len(target) == 1 else target


def resample_to_grid(stack: Any, spacing: Sequence[float], target: Sequence[float], *, size: int,
                     pad_value: float, where: str, mode: str = "bilinear") -> Any:
    """(n, *spatial) images sharing `spacing` (mm per axis) -> (n, 1, size, ...) float32 torch
    tensor at `target` mm per pixel: MONAI `Spacing` (the n images as channels of one
    `MetaTensor`, so the slices of a volume go through one call), then MONAI
    `ResizeWithPadOrCrop` to `size` per axis, padding with `pad_value` (model units).

    `mode`: "bilinear" for images, "nearest" for label maps and masks."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import ResizeWithPadOrCrop, Spacing

    x = torch.as_tensor(stack).float()
    dims = x.ndim - 1
    _check_resampled_size(x.shape, spacing, target, where)
    affine = torch.eye(4, dtype=torch.float64)
    affine[range(dims), range(dims)] = torch.tensor([float(s) for s in spacing], dtype=torch.float64)
    resampled = Spacing(pixdim=tuple(target), mode=mode, padding_mode="border",
                        dtype=torch.float32)(MetaTensor(x, affine=affine))
    fitted = ResizeWithPadOrCrop(spatial_size=(size,) * dims, mode="constant",
                                 value=float(pad_value))(resampled)
    out = fitted.as_tensor() if hasattr(fitted, "as_tensor") else torch.as_tensor(fitted)
    return out.float().contiguous()[:, None]


def _check_resampled_size(shape: Sequence[int], spacing: Sequence[float], target: Sequence[float],
                          where: str) -> None:
    """Refuse a target so fine that one resampled volume would exceed MAX_RESAMPLED_ELEMENTS."""
    n, *spatial = shape
    out = [math.ceil(k * s / t) for k, s, t in zip(spatial, spacing, target, strict=True)]
    if n * math.prod(out) > MAX_RESAMPLED_ELEMENTS:
        raise UserError(f"{where}: resampling {tuple(spatial)} voxels of {_show(spacing)} mm to "
                        f"{_show(target)} mm gives {tuple(out)}, too large; choose a coarser spacing")
