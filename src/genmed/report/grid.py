"""Image grids (contact sheets) of CT slices or model samples as uint8 arrays."""

from __future__ import annotations

import math

import numpy as np


def image_grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, vmin: float = -1.0,
               vmax: float = 1.0, upscale: int = 1) -> np.ndarray:
    """Tile (N, H, W) images into one uint8 (rows*H, ncol*W) grid.

    Values are mapped linearly from [vmin, vmax] to [0, 255] and clipped: pass vmin=-160,
    vmax=240 for HU in the abdomen window (level 40, width 400), or the defaults for model
    outputs in [-1, 1]. `upscale` repeats pixels (nearest) so small slices stay legible.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3:
        raise ValueError(f"image_grid expects (N, H, W) images, got shape {images.shape}")
    n, h, w = images.shape
    ncol = ncol or max(1, math.ceil(math.sqrt(n)))
    nrow = max(1, math.ceil(n / ncol))
    scaled = np.clip((images - vmin) / (vmax - vmin), 0.0, 1.0) * 255.0
    grid = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, ncol)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y : y + h, x : x + w] = scaled[i].astype(np.uint8)
    if upscale > 1:
        grid = np.kron(grid, np.ones((upscale, upscale), dtype=np.uint8))
    return grid
