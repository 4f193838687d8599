"""Periodic (checkerboard) artefacts and blur, measured in the mean 2-D power spectrum of a set
of images.

A decoder that upsamples by stride-s transposed convolutions overlaps its kernel unevenly and
stamps a pattern of period s pixels on its output (Odena, Dumoulin & Olah 2016, "Deconvolution
and Checkerboard Artifacts", Distill). In the discrete Fourier transform of an N-pixel side,
period s puts power on the lattice of bins k = j N / s (j = 1 .. s-1, i.e. Nyquist/2^k for
s = 2^(k+1)), along either axis or both; natural images have a smooth, decaying spectrum there.
numpy only: the function is pure and takes numpy arrays or CPU torch tensors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genmed.errors import UserError


def mean_power_spectrum(images: Any) -> np.ndarray:
    """(H, W) mean over images and channels of |FFT2(image - its mean)|^2 / (H W), unshifted
    (bin (0, 0) is DC); `images` (N, C, H, W), (N, H, W) or (H, W)."""
    x = _as_array(images)
    x = x.reshape(-1, *x.shape[-2:])
    x = x - x.mean(axis=(-2, -1), keepdims=True)  # no DC: its leakage is not a pattern
    power = np.abs(np.fft.fft2(x)) ** 2 / (x.shape[-2] * x.shape[-1])
    return power.mean(0)


def periodic_artefact_score(images: Any, stride: int, *, radius: int = 3) -> float:
    """How much a stride-`stride` pattern stands out of the mean power spectrum of `images`.

    For each stride-lattice bin (a N_h / stride, b N_w / stride), (a, b) != (0, 0): the mean
    power of the 3x3 bins centred on it (a pattern confined to part of the image is spread over
    neighbouring bins) divided by the mean power of the ring of bins at Chebyshev distance
    2..`radius` around it (indices wrap: the DFT is periodic); for a bin on an axis only the
    part of the ring along that axis (`_ring`), so a straight edge's line of power is not a
    peak. The score is the largest ratio.
    About 1 or below for natural images (no peak); a checkerboard gives 10-1000+. Compare a
    model's samples with real images at the same size rather than reading it alone.

    Args:
        images: (N, C, H, W), (N, H, W) or (H, W) array or CPU tensor; H and W divisible by
            `stride`. Units do not matter (the score is a ratio of powers).
        stride: period of the pattern in pixels (2 for one stride-2 upsampling level; 2^L
            for the total of L levels, whose lattice includes the finer periods' bins).
        radius: outer Chebyshev radius of the reference ring in bins (>= 2).
    """
    if stride < 2:
        raise UserError(f"stride={stride}: a periodic pattern needs a period of at least 2 pixels")
    if radius < 2:
        raise UserError(f"radius={radius}: the reference ring starts at distance 2")
    power = mean_power_spectrum(images)
    h, w = power.shape
    if h % stride or w % stride:
        raise UserError(f"image size {h}x{w} is not divisible by stride {stride}")
    near = _offsets(0, 1)
    best = 0.0
    for a in range(stride):
        for b in range(stride):
            if a == 0 and b == 0:
                continue
            ky, kx = a * h // stride, b * w // stride
            ring = _ring(radius, along_x=ky == 0, along_y=kx == 0)
            peak = power[(ky + near[:, 0]) % h, (kx + near[:, 1]) % w].mean()
            ref = np.mean(power[(ky + ring[:, 0]) % h, (kx + ring[:, 1]) % w])
            best = max(best, float(peak / max(ref, 1e-12 * float(power.mean()), 1e-30)))
    return best


def high_frequency_share(images: Any, cutoff: float = 0.25) -> float:
    """Share of the mean power spectrum (DC removed) at radial frequencies above `cutoff`
    cycles per pixel (0.25: half the Nyquist frequency): a blur measure for a set of images.
    Blurry samples score below the real images of the same size, noisy ones above; white noise
    scores 1 - pi cutoff^2 (0.80 at 0.25)."""
    if not 0 < cutoff < 0.5:
        raise UserError(f"cutoff={cutoff}: give a frequency in (0, 0.5) cycles per pixel")
    power = mean_power_spectrum(images)
    fy = np.fft.fftfreq(power.shape[0])[:, None]
    fx = np.fft.fftfreq(power.shape[1])[None, :]
    return float(power[np.hypot(fy, fx) > cutoff].sum() / max(float(power.sum()), 1e-30))


def _offsets(inner: int, outer: int) -> np.ndarray:
    """(K, 2) integer offsets (dy, dx) at Chebyshev distance inner..outer from (0, 0)."""
    r = np.arange(-outer, outer + 1)
    dy, dx = np.meshgrid(r, r, indexing="ij")
    cheb = np.maximum(abs(dy), abs(dx))
    keep = (cheb >= inner) & (cheb <= outer)
    return np.stack([dy[keep], dx[keep]], 1)


def _ring(radius: int, *, along_x: bool, along_y: bool) -> np.ndarray:
    """Reference offsets of a lattice bin: the ring at distance 2..radius, or, for a bin on an
    axis (a pattern along one direction), only the part of it along that direction within
    one bin of the axis. Straight edges (an image border, a decoder's padding frame) put a
    line of power along the axes; comparing along the line does not mistake it for a peak."""
    ring = _offsets(2, radius)
    if along_x:  # bin (0, kx): stripes varying along x
        return ring[(abs(ring[:, 0]) <= 1) & (abs(ring[:, 1]) >= 2)]
    if along_y:  # bin (ky, 0)
        return ring[(abs(ring[:, 1]) <= 1) & (abs(ring[:, 0]) >= 2)]
    return ring


def _as_array(images: Any) -> np.ndarray:
    """float64 numpy view of an array or tensor with at least 2 dims."""
    if hasattr(images, "detach"):
        images = images.detach().cpu().float().numpy()
    x = np.asarray(images, dtype=np.float64)
    if x.ndim < 2:
        raise UserError(f"images must have at least 2 dims (H, W), got shape {x.shape}")
    return x
