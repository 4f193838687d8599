"""Low-dose CT denoising: diffusion vs supervised UNet vs non-local means vs BM3D.

Phantom benchmark (`run_denoise`): low-dose scans (noise SD `noise_hu` HU) with their noise-free
ground truth; every method sees the windowed scan ([-1, 1] over the abdomen window) and the
noise SD estimated from the scan itself (wavelet MAD on HU; no oracle). PSNR / SSIM / MAE are
computed on HU clipped to the abdomen window (level 40, width 400 HU), per image, reported as
mean with a 95% bootstrap CI over test images.
User scans (`denoise_file`): a DICOM/NIfTI/PNG slice or volume, no ground truth; writes the
denoised volume as NIfTI in the input's units (HU for CT only) and a side-by-side PNG.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmed.apps.common import UNIT_PER_HU, hu_columns_figure, paired_table, phantom, seeded, to_hu, to_unit
from genmed.apps.denoisers import CLASSICAL, classical, diffusion_denoise, estimate_sigma
from genmed.data.transforms import ABDOMEN_WINDOW_HU
from genmed.errors import UserError, check_choice, check_positive
from genmed.fileio import save_figure, write_json
from genmed.train.fitting import Compute

METHODS: tuple[str, ...] = ("noisy", "diffusion", "unet", *CLASSICAL)


@dataclass(frozen=True)
class DenoiseConfig:
    """Settings of the phantom denoising benchmark."""

    size: int = 32  # slice side (pixels)
    n_train_patients: int = 24  # phantom patients for training (8 slices each)
    n_test_patients: int = 8  # held-out patients (other seed) for testing
    noise_hu: tuple[float, float] = (45.0, 90.0)  # low-dose noise SD range (HU)
    unet_steps: int = 300  # optimiser steps of the supervised UNet
    diffusion_steps: int = 600  # optimiser steps of the diffusion model (clean slices)
    sample_steps: int = 10  # DDIM steps from the matched noise level to 0
    methods: tuple[str, ...] = ("noisy", "diffusion", "unet", "nlm", "bm3d")
    n_boot: int = 200  # bootstrap resamples for the CIs
    seed: int = 0
    compute: Compute = field(default_factory=Compute)  # training device and precision

    def __post_init__(self) -> None:
        for m in self.methods:
            check_choice("method", m, METHODS)
        for name in ("size", "n_train_patients", "n_test_patients", "unet_steps",
                     "diffusion_steps", "sample_steps"):
            check_positive(name, getattr(self, name))
        if self.n_boot < 2:
            raise UserError(f"n_boot={self.n_boot} must be >= 2")
        if self.size % 4:
            raise UserError(f"size={self.size} must be a multiple of 4 (two UNet levels)")


def _train_unet(cfg: DenoiseConfig):
    """Supervised MONAI UNet, noisy -> clean, on scans of every dose (noise 8..90 HU)."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed, noisy_fraction=0.5,
                 noisy_noise_hu=cfg.noise_hu)
    x = torch.cat([to_unit(tr.image), to_unit(tr.image_nc)])
    y = torch.cat([to_unit(tr.clean), to_unit(tr.clean_nc)])
    return cfg.compute.fit(build_model("regressor", size=cfg.size), DictDataset(image=x, target=y),
                           steps=cfg.unet_steps, seed=cfg.seed)


def _train_diffusion(cfg: DenoiseConfig):
    """Unconditional DDPM on clean slices of both phases (it never sees the test noise)."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed)
    x = torch.cat([to_unit(tr.clean), to_unit(tr.clean_nc)])
    model = build_model("diffusion", size=cfg.size, channels=(32, 64, 64),
                        attention_levels=(False, False, False), num_train_timesteps=1000)
    return cfg.compute.fit(model, DictDataset(image=x), steps=cfg.diffusion_steps, seed=cfg.seed)


def run_denoise(cfg: DenoiseConfig = DenoiseConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Train the learned denoisers, denoise the low-dose test scans with every method, score.

    Returns {"config", "window_hu", "methods": {name: {psnr_db, ssim, mae_hu (mean + CI),
    seconds}}}; with `out`, writes denoise.json and denoise.png there.
    """
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    te = phantom(cfg.n_test_patients, cfg.size, cfg.seed + 1000, slices=4, noisy_fraction=1.0,
                 noisy_noise_hu=cfg.noise_hu)
    y = to_unit(te.image)
    sigma = estimate_sigma(te.image) * UNIT_PER_HU
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for m in cfg.methods:
        t0 = time.perf_counter()
        if m == "noisy":
            pred = y
        elif m == "unet":
            pred = _train_unet(cfg).predict(y)
        elif m == "diffusion":
            pred = diffusion_denoise(_train_diffusion(cfg), y, sigma, steps=cfg.sample_steps,
                                     generator=seeded(cfg.seed))
        else:
            pred = torch.from_numpy(classical(y[:, 0].numpy(), sigma, m))[:, None]
        seconds[m] = time.perf_counter() - t0
        outputs[m] = to_hu(pred)
    result = {"config": asdict(cfg), "window_hu": {"level": ABDOMEN_WINDOW_HU[0], "width": ABDOMEN_WINDOW_HU[1]},
              "n_test_images": len(te.image), "true_noise_hu_mean": float(te.noise_hu.mean()),
              "estimated_noise_hu_mean": float(sigma.mean() / UNIT_PER_HU),
              "methods": paired_table(outputs, te.clean, seconds, cfg.n_boot, cfg.seed)}
    if out is not None:
        out = Path(out)
        write_json(out / "denoise.json", result)
        save_figure(_figure(te.image, te.clean, outputs), out / "denoise.png")
    return result


def _figure(noisy: np.ndarray, clean: np.ndarray, outputs: dict[str, np.ndarray], n: int = 4):
    return hu_columns_figure({"clean": clean, **outputs}, min(n, len(noisy)), title="low-dose denoising")


def denoise_file(path: str | Path, out: str | Path, method: str = "bm3d") -> dict[str, Any]:
    """Denoise a user's slice or volume (DICOM file/folder, NIfTI, PNG/TIFF) slice by slice.

    Classical methods only (no ground truth, no training on the user's data): noise SD is
    estimated per slice in the image's own units (HU for CT, e.g. arbitrary units for MR).
    CT is denoised over a wide window (-1000..1000 HU, so air, fat and bone survive), other
    modalities over their 0.5-99.5 percentile range. Writes out/denoised.nii.gz (input units,
    spacing and modality), out/denoise.png (input | denoised, middle slice; CT in the abdomen
    window, others between their percentiles) and out/denoise.json (`noise_sd_estimated`,
    `noise_sd_after` with `units`).
    """
    from genmed.data.io import load, save_nifti
    from genmed.data.modality import display_range, intensity_map

    check_choice("method", method, CLASSICAL)
    img = load(path, ndim=(2, 3))
    vol = img.array[None] if img.ndim == 2 else img.array
    sigma = estimate_sigma(vol)
    if img.modality == "CT":
        low, high = -1000.0, 1000.0
    else:
        m = intensity_map(vol, img.modality, img.units)
        low, high = m.low, m.high
    scale = 2.0 / (high - low)  # native units -> [-1, 1] over [low, high], not clipped
    unit = (vol - low) * scale - 1.0
    den = (classical(unit, sigma * scale, method) + 1.0) / scale + low
    den = np.where((vol > low) & (vol < high), den, vol).astype(np.float32)
    result = den[0] if img.ndim == 2 else den
    out = Path(out)
    save_nifti(out / "denoised.nii.gz", result, tuple(img.spacing), modality=img.modality,
               units=img.units, description=f"denoised {method}")
    mid = len(vol) // 2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmin, vmax = display_range(vol, img.modality)
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
    for ax, arr, title in zip(axes, (vol[mid], den[mid]), ("input", f"denoised ({method})")):
        ax.imshow(arr, cmap="gray", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.suptitle(f"{img.modality}, display {vmin:.4g}..{vmax:.4g} {img.units}", fontsize=8)
    save_figure(fig, out / "denoise.png")
    info = {"input": str(path), "method": method, "modality": img.modality, "units": img.units,
            "shape": list(result.shape), "spacing_mm": list(img.spacing),
            "display_range": [vmin, vmax],
            "noise_sd_estimated": float(np.mean(sigma)),
            "noise_sd_after": float(np.mean(estimate_sigma(den)))}
    write_json(out / "denoise.json", info)
    return info
