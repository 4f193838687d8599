"""Condition maps and clinical attributes for mask-conditioned generation, encoded for a model.

Condition map (uint8, H x W, or D x H x W for volumes): 0 outside the body, 1 body, 2 kidney,
3 lesion (`CLASSES`).
Attributes: "kind" (healthy | benign | malignant; a lesion kind needs lesion pixels in the map,
"healthy" none), "noise" (standard | low-dose), optionally "noise_hu" (the scan's noise SD in HU
within its level: the amplitude of the scan noise a latent model's images get after decoding,
`genmed.models.mask_generation.add_scan_noise`) and "size_mm" (lesion diameter; the map
sets the size, so a given size must agree with the map's lesion within 1.5 pixels). `encode`
turns them into a one-hot map (the model's image condition) and one class id per attribute pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from genmed.data.phantom import LABELS
from genmed.errors import UserError, check_range

CLASSES: tuple[str, ...] = ("background", "body", "kidney", "lesion")
NOISE_LEVELS: tuple[str, ...] = ("standard", "low-dose")
ATTRIBUTES: tuple[str, ...] = ("kind", "noise", "noise_hu", "size_mm")


def condition_maps(slices) -> np.ndarray:
    """(N, H, W) uint8 condition maps of phantom slices, or (N, D, H, W) of phantom volumes (body
    from the clean image > -500 HU)."""
    m = (slices.clean > -500).astype(np.uint8)
    m[slices.kidney_mask > 0] = 2
    m[slices.lesion_mask > 0] = 3
    return m


def attributes_of(slices, noise_hu: bool = False) -> list[dict[str, Any]]:
    """The true attributes of phantom slices (with `noise_hu`, each scan's noise SD too)."""
    attrs = [{"kind": LABELS[int(k)], "noise": NOISE_LEVELS[int(n)]} for k, n in zip(slices.label, slices.noisy)]
    if noise_hu:
        for a, sd in zip(attrs, slices.noise_hu):
            a["noise_hu"] = round(float(sd), 2)
    return attrs


def noise_level(attributes: Mapping[str, Any]) -> str:
    """The requested noise level of one attribute dict ("standard" when not given)."""
    return attributes.get("noise", NOISE_LEVELS[0])


def lesion_diameter_mm(n_lesion: int, spacing_mm: float | Sequence[float], spatial_dims: int = 2) -> float:
    """Equivalent diameter (mm) of a lesion of `n_lesion` pixels (a disc) or voxels (a ball) at
    `spacing_mm` (one number: isotropic; else one per axis, (z,) y, x)."""
    spacing = np.broadcast_to(np.asarray(spacing_mm, np.float64), (spatial_dims,))
    size = n_lesion * float(np.prod(spacing))  # mm^2 or mm^3
    if spatial_dims == 2:
        return float(2.0 * np.sqrt(size / np.pi))
    return float(np.cbrt(6.0 * size / np.pi))


def check_lesion(attributes: Mapping[str, Any], n_lesion: int, spacing_mm: float | Sequence[float] | None = None,
                 spatial_dims: int = 2, *, where: str = "", noun: str = "map") -> None:
    """UserError unless the "kind" and "size_mm" of `attributes` agree with a map (2-D) or
    volume's map (3-D) holding `n_lesion` lesion pixels / voxels: a known kind, "healthy" with
    none and a lesion kind with some; a size_mm that is a number in [0, 1000] and, given
    `spacing_mm`, within 1.5 pixels of the map's equivalent diameter. `where` prefixes messages."""
    kind = attributes.get("kind", "healthy")
    if kind not in LABELS:
        raise UserError(f"kind={kind!r} is not one of {', '.join(LABELS)}")
    unit = "pixels" if spatial_dims == 2 else "voxels"
    if (kind == "healthy") != (n_lesion == 0):
        raise UserError(f"{where}kind={kind!r} but the {noun} has {n_lesion or 'no'} lesion {unit}")
    size = attributes.get("size_mm")
    if size is None:
        return
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise UserError(f"size_mm={size!r} must be a number (mm)")
    check_range("size_mm", size, 0, 1000)
    if spacing_mm is not None:
        d_map = lesion_diameter_mm(n_lesion, spacing_mm, spatial_dims)
        if abs(float(size) - d_map) > 1.5 * float(np.max(spacing_mm)):
            raise UserError(f"{where}size_mm={size} but the {noun}'s lesion is {d_map:.1f} mm across")


def encode(masks: np.ndarray, attributes: Sequence[Mapping[str, Any]], size: int,
           spacing_mm: float | Sequence[float] | None = None,
           spatial_dims: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate maps + attributes; return one-hot maps (N, 4, *[size] * spatial_dims) and class
    ids (N,) = kind * 2 + noise. `masks` is (N, H, W), or (N, D, H, W) for volumes (one map
    without the N axis is taken as N = 1). UserError for a wrong shape, unknown value/attribute
    or a contradiction (a lesion kind without lesion pixels; a size_mm more than 1.5 pixels
    from the map's equivalent lesion diameter, when `spacing_mm` is given)."""
    if spatial_dims not in (2, 3):
        raise UserError(f"spatial_dims={spatial_dims} must be 2 or 3")
    masks = np.asarray(masks)
    if masks.ndim == spatial_dims:
        masks = masks[None]
    want = (size,) * spatial_dims
    if masks.ndim != spatial_dims + 1 or masks.shape[1:] != want:
        raise UserError(f"mask of shape {masks.shape} does not fit the model: expected (N, {', '.join(map(str, want))})")
    if masks.min() < 0 or masks.max() >= len(CLASSES) or not np.array_equal(masks, np.round(masks)):
        raise UserError(f"mask values must be integers 0..{len(CLASSES) - 1} ({', '.join(CLASSES)})")
    if len(attributes) != len(masks):
        raise UserError(f"{len(masks)} masks but {len(attributes)} attribute sets")
    ids = []
    for i, (m, a) in enumerate(zip(masks, attributes)):
        unknown = sorted(set(a) - set(ATTRIBUTES))
        if unknown:
            raise UserError(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTES)}")
        kind, noise = a.get("kind", "healthy"), noise_level(a)
        check_lesion(a, int((m == 3).sum()), spacing_mm, spatial_dims, where=f"mask {i}: ", noun="mask")
        if noise not in NOISE_LEVELS:
            raise UserError(f"noise={noise!r} is not one of {', '.join(NOISE_LEVELS)}")
        sd = a.get("noise_hu")
        if sd is not None and (isinstance(sd, bool) or not isinstance(sd, (int, float)) or not 0 < sd <= 4000):
            raise UserError(f"noise_hu={sd!r} must be a noise SD in HU, in (0, 4000]")
        ids.append(LABELS.index(kind) * 2 + NOISE_LEVELS.index(noise))
    onehot = torch.nn.functional.one_hot(torch.from_numpy(masks.astype(np.int64)), len(CLASSES))
    return onehot.movedim(-1, 1).float(), torch.tensor(ids, dtype=torch.long)
