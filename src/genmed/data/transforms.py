"""Intensity windowing and resizing: HU <-> [-1, 1] for models, MONAI transforms for pipelines.

Models see CT through the abdomen window (level 40 HU, width 400 HU): HU in
[level - width/2, level + width/2] = [-160, 240] maps linearly onto [-1, 1] and is clipped
outside. `hu_to_unit` / `unit_to_hu` work on numpy arrays and torch tensors alike;
`window_transform` returns the same map as a MONAI `ScaleIntensityRange` for pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from genmed.errors import UserError, check_choice

ABDOMEN_LEVEL_HU = 40.0
ABDOMEN_WIDTH_HU = 400.0
ABDOMEN_WINDOW_HU = (ABDOMEN_LEVEL_HU, ABDOMEN_WIDTH_HU)  # (level, width): every reported HU metric
ABDOMEN_RANGE_HU = (ABDOMEN_LEVEL_HU - ABDOMEN_WIDTH_HU / 2, ABDOMEN_LEVEL_HU + ABDOMEN_WIDTH_HU / 2)  # (-160, 240)


def _check_width(width: float) -> None:
    if not width > 0:
        raise UserError(f"window width={width} HU must be > 0")


def hu_to_unit(hu: Any, level: float = ABDOMEN_LEVEL_HU, width: float = ABDOMEN_WIDTH_HU,
               clip: bool = True) -> Any:
    """Map HU to [-1, 1] through the window (level, width) in HU; numpy or torch in, same out."""
    _check_width(width)
    out = (hu - level) * (2.0 / width)
    if clip:
        out = out.clip(-1.0, 1.0)
    return out


def hu_to_unit_(hu: np.ndarray, level: float = ABDOMEN_LEVEL_HU, width: float = ABDOMEN_WIDTH_HU) -> np.ndarray:
    """`hu_to_unit` (clipped) in place on a float numpy array, for arrays of gigabytes."""
    _check_width(width)
    hu -= level
    hu *= 2.0 / width
    return np.clip(hu, -1.0, 1.0, out=hu)


def unit_to_hu(x: Any, level: float = ABDOMEN_LEVEL_HU, width: float = ABDOMEN_WIDTH_HU) -> Any:
    """Inverse of `hu_to_unit` (without clipping): [-1, 1] -> HU."""
    _check_width(width)
    return x * (width / 2.0) + level


def window_transform(level: float = ABDOMEN_LEVEL_HU, width: float = ABDOMEN_WIDTH_HU,
                     out_range: tuple[float, float] = (-1.0, 1.0)):
    """MONAI `ScaleIntensityRange` mapping the HU window onto `out_range`, clipped."""
    from monai.transforms import ScaleIntensityRange

    _check_width(width)
    return ScaleIntensityRange(a_min=level - width / 2.0, a_max=level + width / 2.0,
                               b_min=out_range[0], b_max=out_range[1], clip=True)


def window_to_uint8(hu: np.ndarray, level: float = ABDOMEN_LEVEL_HU,
                    width: float = ABDOMEN_WIDTH_HU) -> np.ndarray:
    """HU -> uint8 grey levels for display (PNG contact sheets)."""
    unit = hu_to_unit(np.asarray(hu, np.float32), level, width)
    return np.round((unit + 1.0) * 127.5).astype(np.uint8)


def scale_to_unit(x: Any) -> Any:
    """Raw (non-CT) intensities -> [-1, 1] by min-max over the whole array (MONAI ScaleIntensity)."""
    from monai.transforms import ScaleIntensity

    return ScaleIntensity(minv=-1.0, maxv=1.0)(x)


def resize(x: Any, size: int | Sequence[int],
           mode: Literal["area", "bilinear", "trilinear", "nearest"] = "area") -> Any:
    """Resize a channel-first image (C, *spatial) to `size` (int: every spatial axis) via MONAI.

    Use `mode="nearest"` for label maps and masks. Returns a torch tensor.
    """
    import torch
    from monai.transforms import Resize

    check_choice("resize mode", mode, ("area", "bilinear", "trilinear", "nearest"))
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    spatial = x.ndim - 1
    if spatial not in (2, 3):
        raise UserError(f"resize expects a (C, H, W) or (C, D, H, W) image, got shape {tuple(x.shape)}")
    shape = (size,) * spatial if isinstance(size, int) else tuple(size)
    if mode == "bilinear" and spatial == 3:
        mode = "trilinear"
    is_int = not torch.is_floating_point(x)
    y = Resize(spatial_size=shape, mode=mode)(x.float() if is_int else x)
    y = y.as_tensor() if hasattr(y, "as_tensor") else torch.as_tensor(y)  # drop MetaTensor
    return y.round().to(x.dtype) if is_int else y
