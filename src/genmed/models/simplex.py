"""Multi-octave 2-D simplex noise (Perlin 2001; Gustavson 2005), the structured noise of
AnoDDPM (Wyatt et al. 2022): a diffusion model trained to remove it reconstructs large
anomalies that white noise leaves in place (`DiffusionConfig(noise="simplex")`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from genmed.errors import UserError, check_positive

_F2 = 0.5 * (math.sqrt(3.0) - 1.0)  # skew of the square lattice onto the simplex lattice
_G2 = (3.0 - math.sqrt(3.0)) / 6.0  # and back


def _simplex_octave(b: int, h: int, w: int, cell: float, generator: torch.Generator | None,
                    device: torch.device) -> Tensor:
    """(b, h, w) 2-D simplex noise (Perlin 2001; Gustavson 2005, "Simplex noise demystified")
    on a lattice of `cell` px, with random unit gradients per lattice vertex and sample and a
    random sub-cell offset per sample (so no pixel sits on a lattice vertex every draw)."""
    off = torch.rand((b, 2, 1, 1), generator=generator, device=device) * 4.0
    ys = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1) / cell + off[:, 0]
    xs = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w) / cell + off[:, 1]
    ys, xs = ys.expand(b, h, w), xs.expand(b, h, w)
    s = (xs + ys) * _F2
    i, j = torch.floor(xs + s), torch.floor(ys + s)
    t = (i + j) * _G2
    x0, y0 = xs - (i - t), ys - (j - t)  # offset from the simplex's first corner
    upper = (x0 > y0).float()  # lower or upper triangle: second corner (1, 0) or (0, 1)
    corners = ((0.0, 0.0, x0, y0),
               (upper, 1.0 - upper, x0 - upper + _G2, y0 - (1.0 - upper) + _G2),
               (1.0, 1.0, x0 - 1.0 + 2 * _G2, y0 - 1.0 + 2 * _G2))
    n = int(max(i.max().item(), j.max().item())) + 2  # lattice vertices per side (from 0)
    angle = torch.rand((b, n, n), generator=generator, device=device) * (2 * math.pi)
    gx, gy = angle.cos().flatten(), angle.sin().flatten()
    base = torch.arange(b, device=device).view(b, 1, 1) * n * n
    out = torch.zeros((b, h, w), device=device)
    for di, dj, dx, dy in corners:
        k = (base + (j + dj).long() * n + (i + di).long()).flatten()
        dot = gx[k].view(b, h, w) * dx + gy[k].view(b, h, w) * dy
        r = (0.5 - dx * dx - dy * dy).clamp(min=0.0)
        out = out + r.pow(4) * dot
    return 70.0 * out


def simplex_noise(shape: tuple[int, ...], *, cell_px: float = 16.0, octaves: int = 4,
                  persistence: float = 0.8, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> Tensor:
    """Multi-octave 2-D simplex noise of `shape` (B, [C,] H, W), each image standardised to
    mean 0 and variance 1 over its pixels.

    Octave k (k = 0..octaves-1) has lattice spacing cell_px / 2**k and amplitude
    persistence**k (fractal sum as in AnoDDPM, Wyatt et al. 2022, sec. 3.2, whose defaults for
    256-px images are a 64-px coarsest cell, 6 octaves, persistence 0.8). Channels get
    independent noise. Randomness comes only from `generator` (global RNG when None)."""
    if len(shape) not in (3, 4) or min(shape) < 1:
        raise UserError(f"simplex_noise shape {tuple(shape)} must be (B, H, W) or (B, C, H, W)")
    check_positive("octaves", octaves)
    dev = torch.device(generator.device if generator is not None else device)
    *lead, h, w = shape
    b = int(np.prod(lead))
    total = torch.zeros((b, h, w), device=dev)
    for k in range(octaves):
        total = total + persistence**k * _simplex_octave(b, h, w, cell_px / 2**k, generator, dev)
    flat = total.view(b, -1)
    flat = (flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp(min=1e-8)
    return flat.view(*shape).to(device)
