"""A CT volume from a 3-D label map with a 2-D mask model: axial slice by axial slice.

A 3-D latent model needs a 3-D autoencoder, and on a CPU budget that stage is what loses the
kidneys (docs/applications.md, "128^3 through the 3-D autoencoder"). The 2.5-D route keeps both
stages 2-D: the 2-D mask model draws every axial slice of the map with the deterministic DDIM
sampler (Song et al. 2021) from initial noises that correlate between neighbouring slices and
decorrelate along z (`slice_noise`), so that neighbouring slices, whose maps differ little, get
nearly the same image where their maps agree; the volume's lesion kind applies to the slices
that hold lesion pixels, the others are "healthy". Through-plane coherence is not modelled, only
encouraged by the correlated noise: measure it (the benchmark reports the adjacent-slice
difference against the real volumes') before trusting coronal and sagittal views. Published 2.5-D
generators add through-plane layers to a 2-D model instead (Zhu et al. 2023, Make-A-Volume);
this is the untrained baseline of that idea. Map guidance (`models/map_guidance.py`) can push
each slice towards its map's kidneys and lesion at sampling time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from genmed.data.conditions import check_lesion, encode
from genmed.errors import UserError
from genmed.models.base import device_of, randn
from genmed.models.diffusion import DiffusionModel
from genmed.models.latent import LatentDiffusionModel
from genmed.models.map_guidance import check_map_guidance


def slice_attributes(volume_map: np.ndarray, attributes: Mapping[str, Any],
                     spacing_mm: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """The attribute dict of each axial slice of `volume_map` (D, H, W; 0 air, 1 body, 2 kidney,
    3 lesion) for the volume's `attributes`: its kind where a slice holds lesion pixels, else
    "healthy"; its noise and noise_hu everywhere. The volume's "size_mm" is checked against
    the map's lesion (equivalent-ball diameter, with `spacing_mm` (slice, row, column)) and not
    passed on. UserError for a kind that contradicts the volume's lesion pixels."""
    lesion = np.asarray(volume_map) == 3
    check_lesion(attributes, int(lesion.sum()), spacing_mm, 3)
    kind, has = attributes.get("kind", "healthy"), lesion.any(axis=(1, 2))
    rest = {k: v for k, v in attributes.items() if k not in ("kind", "size_mm")}
    return [rest | {"kind": kind if h else "healthy"} for h in has]


# adjacent slices' initial-noise correlation by default: on the 128^3 benchmark (8k-step run,
# 3 test volumes) 0.98 gives kidney Dice 0.81 and a slice-to-slice change of 2.6 / 9.5 HU (body /
# kidneys; real noise-free 3.5 / 9.0), one shared noise (1.0) 0.785 and 0.5 / 8.2 HU, independent
# noise (0.0) 0.80 and flicker (docs/applications.md, "Initial noise that decorrelates along z")
NOISE_CORRELATION = 0.98
# map guidance weight by default (`models/map_guidance.py`): chosen on 3 validation volumes of the
# 128^3 benchmark (kidney Dice 0.880 / 0.895 / 0.888 at w = 0 / 0.25 / 0.5); on the 8 test volumes
# it lifts the ratio to real from 0.885x to 0.934x (docs/applications.md, "Map guidance")
MAP_GUIDANCE = 0.25


def check_noise_correlation(correlation: float, name: str = "noise_correlation") -> float:
    """`correlation` as a float; UserError naming `name` unless it lies in [0, 1] (NaN too)."""
    r = float(correlation)
    if not 0.0 <= r <= 1.0:
        raise UserError(f"{name} {correlation} must be in [0, 1]")
    return r


def slice_noise(n: int, shape: Sequence[int], correlation: float, generator: torch.Generator,
                device: torch.device | str) -> torch.Tensor:
    """Initial noise (n, *shape) for `n` axial slices whose neighbours correlate by `correlation`:
    a first-order autoregressive process along z, x_k = r x_(k-1) + sqrt(1 - r^2) e_k, so each
    slice's noise is N(0, I) and slices k apart correlate by r^k. r = 1 is one shared noise (one
    draw), r = 0 independent draws."""
    r = check_noise_correlation(correlation)
    if r == 1.0:
        return randn((1, *shape), generator, device).expand(n, *shape)
    e = randn((n, *shape), generator, device)
    x = e.clone()
    for k in range(1, n):
        x[k] = r * x[k - 1] + (1.0 - r * r) ** 0.5 * e[k]
    return x


@torch.no_grad()
def sample_volume_slicewise(model: DiffusionModel | LatentDiffusionModel, volume_map: np.ndarray,
                            attributes: Mapping[str, Any], *, steps: int = 50, seed: int = 0,
                            guidance: float = 1.0, noise_correlation: float = NOISE_CORRELATION, chunk: int = 32,
                            spacing_mm: Sequence[float] | None = None,
                            map_guidance: float = MAP_GUIDANCE) -> torch.Tensor:
    """A volume (1, 1, D, H, W) in [-1, 1] on the CPU for `volume_map` (D, H, W) from a 2-D
    mask-conditioned diffusion or latent diffusion `model`: DDIM in `steps` steps from initial
    noises whose adjacent slices correlate by `noise_correlation` (`slice_noise`; 1: one shared
    noise, 0: independent draws), `chunk` slices per network call; `map_guidance` w > 0 steers
    each slice away from its organ-free map (`models/map_guidance.py`, twice the network calls).
    Scan noise is not added here (`mask_generation.add_scan_noise`)."""
    if model.config.spatial_dims != 2:
        raise UserError(f"slice-by-slice generation needs a 2-D model (this one is {model.config.spatial_dims}-D)")
    map_guidance = check_map_guidance(map_guidance)
    volume_map = np.asarray(volume_map)
    if volume_map.ndim != 3:
        raise UserError(f"a volume's map must be (D, H, W); got shape {volume_map.shape}")
    attrs = slice_attributes(volume_map, attributes, spacing_mm)
    cond, ids = encode(volume_map, attrs, model.config.size, None, 2)
    dev = device_of(model)
    latent = isinstance(model, LatentDiffusionModel)
    diffusion = model.diffusion if latent else model
    image_cond = (model.latent_cond(cond, len(cond)) if latent else model.check_image_cond(cond, len(cond)))
    gen = torch.Generator(dev).manual_seed(int(seed))
    shape = (diffusion.config.sample_shape[0], *image_cond.shape[2:])
    x_t = slice_noise(len(cond), shape, noise_correlation, gen, dev)
    out = []
    for i in range(0, len(cond), chunk):
        z = diffusion.denoise_from(x_t[i:i + chunk].contiguous(), None, steps, "ddim", ids[i:i + chunk].to(dev),
                                   guidance, gen, 0.0, False, image_cond[i:i + chunk].to(dev),
                                   map_guidance=map_guidance)
        out.append((model.decode(z) if latent else z).cpu())
    return torch.cat(out).movedim(0, 1)[None]  # (D, 1, H, W) -> (1, 1, D, H, W)
