"""Denoisers for low-dose CT slices, each a function (N, H, W) [-1, 1] images -> same.

Inputs are windowed model units ([-1, 1] over 400 HU), `sigma` the noise SD per image in the
same units (HU x 2/400). Classical: non-local means (Buades et al. 2005;
`skimage.restoration.denoise_nl_means`), BM3D (Dabov et al. 2007; the `bm3d` package),
total variation (Chambolle 2004) and wavelet BayesShrink (Chang et al. 2000) from scikit-image.
Learned: a diffusion model used as a denoiser by starting its reverse process at the step whose
noise level matches the scan (Ho et al. 2020 eq. 4: x_t / sqrt(alpha_bar_t) = x_0 +
sqrt((1 - alpha_bar_t) / alpha_bar_t) eps, so a scan y = x_0 + sigma n is x_t / sqrt(alpha_bar_t)
at the t where sqrt((1 - alpha_bar_t) / alpha_bar_t) = sigma; cf. Xie et al. 2023, DDPM-based CT
denoising), and a supervised UNet (`genmed.models.Regressor`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from genmed.errors import UserError, check_choice

Classical = Literal["nlm", "bm3d", "tv", "wavelet"]
CLASSICAL: tuple[str, ...] = ("nlm", "bm3d", "tv", "wavelet")


def estimate_sigma(images: np.ndarray) -> np.ndarray:
    """Per-image noise SD (same units as `images`), wavelet MAD (Donoho & Johnstone 1994);
    right for white noise, low for CT's correlated noise (see `estimate_sigma_mode`)."""
    from skimage.restoration import estimate_sigma as est

    return np.array([float(est(np.asarray(im, np.float64))) for im in images], np.float32)


def estimate_sigma_mode(images_hu: np.ndarray, spacing_mm: float, window_mm: float = 12.0,
                        tissue_hu: tuple[float, float] = (0.0, 100.0), bin_hu: float = 0.5) -> np.ndarray:
    """Per-image CT noise SD (HU): the mode of the histogram of local SDs (a `window_mm` square)
    over soft tissue (local mean within `tissue_hu`), the "global noise level" of Christianson
    et al. 2015 (AJR 205:W93). Unlike the wavelet MAD it also sees low-frequency, correlated
    noise (filtered back-projection's), which the finest wavelet band misses. Images with
    fewer than 100 soft-tissue pixels fall back to `estimate_sigma`."""
    from scipy.ndimage import gaussian_filter1d, uniform_filter

    w = max(3, int(round(window_mm / spacing_mm)) | 1)  # odd, at least 3 px
    out = np.empty(len(images_hu), np.float32)
    for i, im in enumerate(np.asarray(images_hu, np.float64)):
        mean = uniform_filter(im, w)
        sd = np.sqrt(np.maximum(uniform_filter(im * im, w) - mean * mean, 0.0))
        sel = (mean > tissue_hu[0]) & (mean < tissue_hu[1])
        if sel.sum() < 100:
            out[i] = estimate_sigma(im[None])[0]
            continue
        hist, edges = np.histogram(sd[sel], bins=np.arange(0.0, float(sd[sel].max()) + 2 * bin_hu, bin_hu))
        out[i] = edges[np.argmax(gaussian_filter1d(hist.astype(np.float64), 2.0))] + bin_hu / 2
    return out


def classical(images: np.ndarray, sigma: np.ndarray, method: Classical) -> np.ndarray:
    """Denoise each (H, W) image with `method` at its own noise SD `sigma` (per image)."""
    check_choice("denoise method", method, CLASSICAL)
    images = np.asarray(images, np.float32)
    if images.ndim != 3 or len(sigma) != len(images):
        raise UserError(f"expected (N, H, W) images and N sigmas, got {images.shape} and {len(sigma)}")
    out = np.empty_like(images)
    for i, (im, s) in enumerate(zip(images.astype(np.float64), np.asarray(sigma, np.float64))):
        s = max(float(s), 1e-4)
        if method == "nlm":
            from skimage.restoration import denoise_nl_means

            # h = 0.8 sigma with sigma subtracted from patch distances (skimage guide)
            out[i] = denoise_nl_means(im, h=0.8 * s, sigma=s, patch_size=5, patch_distance=6,
                                      fast_mode=True)
        elif method == "bm3d":
            import bm3d

            out[i] = bm3d.bm3d(im, sigma_psd=s)
        elif method == "tv":
            from skimage.restoration import denoise_tv_chambolle

            out[i] = denoise_tv_chambolle(im, weight=s)
        else:
            from skimage.restoration import denoise_wavelet

            out[i] = denoise_wavelet(im, sigma=s, method="BayesShrink", mode="soft",
                                     rescale_sigma=True)
    return np.clip(out, -1.0, 1.0)


def matching_step(alpha_bar: torch.Tensor, sigma: float) -> int:
    """The diffusion step t whose noise-to-signal ratio sqrt((1 - ab_t) / ab_t) is closest to
    `sigma` (model units)."""
    ab = alpha_bar.double()
    ratio = ((1 - ab) / ab).sqrt()
    return int((ratio - float(sigma)).abs().argmin())


@torch.no_grad()
def diffusion_denoise(model, images: torch.Tensor, sigma: np.ndarray, *, steps: int = 10,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Denoise (N, 1, H, W) [-1, 1] images with an unconditional `DiffusionModel`.

    Image i (noise SD sigma_i) is scaled to x_t = sqrt(alpha_bar_t) y at t = matching_step,
    then DDIM (eta = 0, Song et al. 2021 eq. 12) runs `steps` steps from t to 0. Images that
    share a step are denoised in one batch.
    """
    ab64, device = model.alpha_bar64, model.alpha_bar.device
    ts = np.array([matching_step(ab64, s) for s in sigma])
    out = torch.empty_like(images)
    for t in np.unique(ts):
        idx = torch.from_numpy(np.flatnonzero(ts == t))
        x = (images[idx] * float(ab64[t]) ** 0.5).to(device)
        out[idx] = model.denoise_from(x, int(t), min(steps, int(t) + 1), "ddim",
                                      generator=generator).clamp(-1, 1).cpu()
    return out
