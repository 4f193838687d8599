"""Scan noise added after decoding: Gaussian noise with the noise power spectrum (NPS) measured
on the training scans, one spectrum per noise level (dose).

Why. A latent autoencoder keeps the anatomy and drops the scan noise (the 256-px one
reconstructs a slice 31 dB from its noise-free version), so a diffusion model in its latent
space cannot draw a requested dose: at 256 px the mask-conditioned latent model drew 6.8 HU of
noise for low-dose maps whose real scans carry 80 HU (docs/applications.md). Dose-reduction
studies simulate a lower dose by adding noise to a scan (Frush et al. 2002, AJR 179:1107, add
it to the raw data); here it is added to the decoded image, as zero-mean Gaussian noise with
the noise power spectrum measured on the training scans (the NPS of CT images: Kijewski & Judy
1987, Phys Med Biol 32:565). Here:

- `fit_nps(residuals)`: the 2-D NPS of residual fields (HU), scan minus its noise-free (phantom)
  or reconstructed (autoencoder) version: NPS(k) = E |F(r - mean r)|^2 / (H W), so its mean over
  frequencies is the noise variance (Parseval).
- `draw_noise(nps, n, rng)`: stationary Gaussian fields with that NPS: F^-1(F(w) sqrt(NPS)) for
  white w ~ N(0, 1). Correlated noise stays correlated (FBP's streaks and blobs), which white
  noise of the same SD would not.
- `NoiseTexture`: one NPS per level name ("standard", "low-dose"); `fit`, `draw`, `save`/`load`
  (npz, no pickles). Fitted with the scans' own noise SD (`noise_hu`, e.g. the phantom's), it
  keeps each level's mean as a reference and draws a requested SD by scaling the level's
  spectrum: a level is a range of doses (the phantom's low-dose scans carry 45-90 HU), and
  noise amplitude, not spectrum shape, is what dose changes first (quantum noise SD ~ 1 /
  sqrt(dose) at a fixed kernel; Kijewski & Judy 1987).

The model is stationary: the same spectrum everywhere in the field. Real CT noise is stronger
behind bone and along the body's long axis; a per-region spectrum would be the next refinement.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from genmed.errors import UserError
from genmed.fileio import atomic_path


def fit_nps(residuals: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(H, W) NPS (HU^2) of residual fields `residuals` (N, H, W) in HU, each made zero-mean.

    With `mask` (N, H, W; e.g. the body), only the pixels inside count: each field is zeroed
    outside and its power divided by its mask's area, so the spectrum's mean is the noise
    variance inside the mask (CT noise is stronger in the body than in the air around it).
    """
    r = np.asarray(residuals, np.float64)
    if r.ndim != 3 or len(r) == 0:
        raise UserError(f"residuals must be a non-empty (N, H, W) stack, got shape {r.shape}")
    m = np.ones(r.shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != r.shape:
        raise UserError(f"mask shape {m.shape} differs from the residuals' {r.shape}")
    area = m.sum(axis=(1, 2))
    if (area == 0).any():
        raise UserError("a mask is empty: every residual field needs pixels inside its mask")
    mean = (r * m).sum(axis=(1, 2)) / area
    r = np.where(m, r - mean[:, None, None], 0.0)
    return (np.abs(np.fft.fft2(r)) ** 2 / area[:, None, None]).mean(0)


def draw_noise(nps: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, H, W) float32 stationary Gaussian noise (HU) whose NPS is `nps` (H, W)."""
    nps = np.asarray(nps, np.float64)
    if nps.ndim != 2 or (nps < 0).any():
        raise UserError(f"nps must be a non-negative (H, W) array, got shape {nps.shape}")
    white = rng.standard_normal((n, *nps.shape))
    return np.fft.ifft2(np.fft.fft2(white) * np.sqrt(nps)).real.astype(np.float32)


@dataclass(frozen=True)
class NoiseTexture:
    """One NPS (H, W; HU^2) per noise level, and optionally the mean noise SD (HU) its fit
    scans had (`reference_hu`), against which `draw` scales a requested SD."""

    nps: Mapping[str, np.ndarray]
    reference_hu: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def fit(cls, residuals: np.ndarray, levels: Sequence[str], mask: np.ndarray | None = None,
            noise_hu: Sequence[float] | None = None) -> NoiseTexture:
        """The NPS of each level's residual fields (inside `mask`, see `fit_nps`); `levels[i]`
        names the level of `residuals[i]`, `noise_hu[i]` (optional) the noise SD (HU) of the
        scan it came from: each level's mean becomes its `reference_hu`."""
        levels = np.asarray(levels, dtype=str)
        if len(levels) != len(residuals):
            raise UserError(f"{len(levels)} level names for {len(residuals)} residual fields")
        reference = {}
        if noise_hu is not None:
            sd = np.asarray(noise_hu, np.float64)
            if sd.shape != levels.shape or not (np.isfinite(sd) & (sd > 0)).all():
                raise UserError(f"noise_hu must be {len(levels)} finite SDs > 0 (HU), one per residual field")
            reference = {str(lv): float(sd[levels == lv].mean()) for lv in dict.fromkeys(levels)}
        return cls({str(lv): fit_nps(residuals[levels == lv], None if mask is None else mask[levels == lv])
                    for lv in dict.fromkeys(levels)}, reference)

    @property
    def shape(self) -> tuple[int, ...]:
        """The (H, W) of the fields it draws."""
        return next(iter(self.nps.values())).shape

    def sd_hu(self) -> dict[str, float]:
        """Noise SD (HU) of each level: the square root of the NPS's mean."""
        return {lv: float(np.sqrt(p.mean())) for lv, p in self.nps.items()}

    def draw(self, levels: Sequence[str], rng: np.random.Generator,
             noise_hu: Sequence[float | None] | None = None) -> np.ndarray:
        """(len(levels), H, W) float32 noise (HU), field i drawn with the NPS of `levels[i]`;
        where `noise_hu[i]` is given, scaled by noise_hu[i] / reference_hu[levels[i]] (a scan
        of that SD instead of the level's mean)."""
        unknown = sorted(set(levels) - set(self.nps))
        if unknown:
            raise UserError(f"noise level(s) {unknown} not in the texture (has {sorted(self.nps)})")
        requested = [None] * len(levels) if noise_hu is None else list(noise_hu)
        if len(requested) != len(levels):
            raise UserError(f"{len(requested)} requested noise SDs for {len(levels)} fields")
        scale = np.ones(len(levels), np.float32)
        for i, (lv, sd) in enumerate(zip(levels, requested)):
            if sd is None:
                continue
            if lv not in self.reference_hu:
                raise UserError(f"a noise SD was requested but the texture has no reference SD for level "
                                f"{lv!r}: refit it with the scans' noise_hu")
            scale[i] = float(sd) / self.reference_hu[lv]
        out = np.empty((len(levels), *self.shape), np.float32)
        for lv, p in self.nps.items():
            idx = [i for i, name in enumerate(levels) if name == lv]
            if idx:
                out[idx] = draw_noise(p, len(idx), rng)
        return out * scale[:, None, None]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the spectra to an npz file (atomically)."""
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **{f"nps:{lv}": p for lv, p in self.nps.items()},
                                **{f"ref:{lv}": np.float64(v) for lv, v in self.reference_hu.items()})
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> NoiseTexture:
        """Read spectra written by `save` (no pickles)."""
        try:
            with np.load(path, allow_pickle=False) as z:
                nps = {k.removeprefix("nps:"): z[k] for k in z.files if k.startswith("nps:")}
                ref = {k.removeprefix("ref:"): float(z[k]) for k in z.files if k.startswith("ref:")}
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a noise texture file ({e})") from None
        if not nps or len({p.shape for p in nps.values()}) != 1:
            raise UserError(f"{path}: holds no noise spectra, or spectra of different sizes")
        if set(ref) - set(nps) or not all(np.isfinite(v) and v > 0 for v in ref.values()):
            raise UserError(f"{path}: its reference noise SDs do not match its spectra")
        return cls(nps, ref)
