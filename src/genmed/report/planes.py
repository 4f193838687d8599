"""The three orthogonal planes of a CT volume, laid out for display at the true aspect."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Plane(NamedTuple):
    """One plane of a volume, with the `imshow` extent (mm) and origin that draw it in the
    radiological layout: axial with anterior up, coronal and sagittal with superior up."""

    image: np.ndarray
    name: str  # "axial", "coronal" or "sagittal"
    extent: tuple[float, float, float, float]  # (left, right, bottom, top) in mm
    origin: str  # imshow origin


def orthogonal_planes(volume: np.ndarray, spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0),
                      centre: tuple[int, int, int] | None = None) -> list[Plane]:
    """Axial, coronal and sagittal planes of a (D, H, W) volume through voxel `centre` (default:
    the middle). `spacing_mm` is (z, y, x); slice 0 is the most caudal (genmed's volumes and
    NIfTI files), so the coronal and sagittal planes are drawn with row 0 at the bottom."""
    d, h, w = volume.shape
    z, y, x = centre if centre is not None else (d // 2, h // 2, w // 2)
    sz, sy, sx = spacing_mm
    return [Plane(volume[z], "axial", (0, w * sx, h * sy, 0), "upper"),
            Plane(volume[:, y], "coronal", (0, w * sx, 0, d * sz), "lower"),
            Plane(volume[:, :, x], "sagittal", (0, h * sy, 0, d * sz), "lower")]
