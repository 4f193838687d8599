"""Low-dose CT denoising: diffusion vs supervised UNet vs non-local means vs BM3D.

Phantom benchmark (`run_denoise`): low-dose scans with their noise-free ground truth, either
white noise of SD `noise_hu` HU (the 32-px history) or projection-domain low dose at each of
`test_doses` (`clinical_denoise_config`: 256 px, 25% and 10% dose). Every method sees the
windowed scan ([-1, 1] over the abdomen window) and the noise SD estimated from the scan itself
(no oracle: wavelet MAD, or the soft-tissue local-SD mode for correlated CT noise). PSNR / SSIM
/ MAE are computed on HU clipped to the abdomen window (level 40, width 400 HU), per image,
reported as mean with a 95% bootstrap CI over test images, with the mean signed HU error
(bias) inside the kidneys and inside lesions.
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

from genmed.apps.common import (UNIT_PER_HU, hu_columns_figure, kidney_view, paired_table, patch_set, phantom,
                                region_error, seeded, to_hu, to_unit)
from genmed.apps.denoisers import CLASSICAL, classical, diffusion_denoise, estimate_sigma, estimate_sigma_mode
from genmed.data.phantom import PhantomSlices
from genmed.data.transforms import ABDOMEN_WINDOW_HU
from genmed.errors import UserError, check_choice, check_positive
from genmed.fileio import save_figure, write_json
from genmed.train.fitting import Compute

METHODS: tuple[str, ...] = ("noisy", "diffusion", "unet", *CLASSICAL)


@dataclass(frozen=True)
class DenoiseConfig:
    """Settings of the phantom denoising benchmark (defaults: the 32-px white-noise history;
    `clinical_denoise_config()`: 256 px, projection-domain low dose)."""

    size: int = 32  # slice side (pixels)
    n_train_patients: int = 24  # phantom patients for training (8 slices each)
    n_test_patients: int = 8  # held-out patients (other seed) for testing
    noise_hu: tuple[float, float] = (45.0, 90.0)  # gaussian: low-dose noise SD range (HU)
    unet_steps: int = 300  # optimiser steps of the supervised UNet
    diffusion_steps: int = 600  # optimiser steps of the diffusion model (clean slices)
    sample_steps: int = 10  # DDIM steps from the matched noise level to 0
    methods: tuple[str, ...] = ("noisy", "diffusion", "unet", "nlm", "bm3d")
    n_boot: int = 200  # bootstrap resamples for the CIs
    seed: int = 0
    compute: Compute = field(default_factory=Compute)  # training device and precision
    # "gaussian": white noise of SD noise_hu; "radon": Poisson counts on the sinogram and FBP
    # (genmed.data.lowdose), the Mayo/AAPM challenge's simulation, streaky and correlated
    noise_model: str = "gaussian"
    test_doses: tuple[float, ...] = (0.25, 0.10)  # radon: test-scan doses (fraction of full), a table each
    train_dose: tuple[float, float] = (0.05, 0.5)  # radon: dose range of the UNet's training scans
    test_lesion_prob: float = 0.6  # fraction of test patients with a renal lesion (for the lesion HU bias)
    patch: int = 0  # learned models train on random patch crops and the UNet infers by sliding window (0: whole slices)
    unet_channels: tuple[int, ...] = (16, 32, 64)  # supervised UNet channels per level
    unet_loss: str = "l1"  # "l1" or "mse" (RED-CNN: mse)
    residual: bool = False  # UNet predicts the noise to subtract (DnCNN / RED-CNN shortcut)
    diffusion_channels: tuple[int, ...] = (32, 64, 64)  # diffusion UNet channels per level
    # noise SD given to BM3D / NLM / TV / diffusion: "wavelet" MAD (white noise) or the
    # soft-tissue local-SD "mode" (Christianson et al. 2015; correlated CT noise)
    noise_estimator: str = "wavelet"

    def __post_init__(self) -> None:
        for m in self.methods:
            check_choice("method", m, METHODS)
        check_choice("noise_model", self.noise_model, ("gaussian", "radon"))
        check_choice("noise_estimator", self.noise_estimator, ("wavelet", "mode"))
        for name in ("size", "n_train_patients", "n_test_patients", "unet_steps",
                     "diffusion_steps", "sample_steps"):
            check_positive(name, getattr(self, name))
        if self.n_boot < 2:
            raise UserError(f"n_boot={self.n_boot} must be >= 2")
        if self.size % 2 ** (len(self.unet_channels) - 1):
            raise UserError(f"size={self.size} must be a multiple of {2 ** (len(self.unet_channels) - 1)} "
                            f"({len(self.unet_channels) - 1} UNet levels)")
        if self.patch and not 16 <= self.patch <= self.size:
            raise UserError(f"patch={self.patch} must be 0 or between 16 and size={self.size}")
        doses = (*self.test_doses, *self.train_dose)
        if not self.test_doses or not all(0 < d <= 1 for d in doses) or self.train_dose[0] > self.train_dose[1]:
            raise UserError(f"test_doses={self.test_doses} and train_dose={self.train_dose} must be "
                            "fractions of full dose in (0, 1], train_dose as (low, high)")


def clinical_denoise_config(**overrides: Any) -> DenoiseConfig:
    """256 px (1.41 mm/px), projection-domain low dose at 25% and 10%, RED-CNN-style residual
    UNet on 64-px patches (MSE), diffusion on 64-px clean patches, bf16 where fast."""
    base = dict(size=256, n_train_patients=60, n_test_patients=12, noise_model="radon",
                unet_steps=4000, diffusion_steps=1000, sample_steps=5, patch=64,
                unet_channels=(32, 64, 128, 256), unet_loss="mse", residual=True,
                test_lesion_prob=1.0, noise_estimator="mode", methods=("noisy", "diffusion", "unet", "nlm", "bm3d", "tv"),
                n_boot=1000, compute=Compute(precision="auto"))
    return DenoiseConfig(**{**base, **overrides})


def _scans(cfg: DenoiseConfig, n_patients: int, seed: int, slices: int,
           dose: tuple[float, float] | None = None, **extra: Any) -> PhantomSlices:
    """Phantom slices whose noisy images are all low-dose scans: radon noise at `dose`, or
    Gaussian noise of SD `cfg.noise_hu`."""
    if cfg.noise_model == "radon":
        return phantom(n_patients, cfg.size, seed, slices=slices, noise_model="radon",
                       noisy_fraction=1.0, noisy_dose=dose, **extra)
    return phantom(n_patients, cfg.size, seed, slices=slices, noisy_fraction=1.0,
                   noisy_noise_hu=cfg.noise_hu, **extra)


def _train_unet(cfg: DenoiseConfig):
    """Supervised MONAI UNet, noisy -> clean, on scans of every dose (gaussian: noise 8..90 HU;
    radon: dose `train_dose`), both contrast phases."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    if cfg.noise_model == "radon":
        tr = _scans(cfg, cfg.n_train_patients, cfg.seed, 8, cfg.train_dose)
    else:
        tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed, noisy_fraction=0.5,
                     noisy_noise_hu=cfg.noise_hu)
    x = torch.cat([to_unit(tr.image), to_unit(tr.image_nc)])
    y = torch.cat([to_unit(tr.clean), to_unit(tr.clean_nc)])
    model = build_model("regressor", size=cfg.size, channels=cfg.unet_channels, loss=cfg.unet_loss,
                        residual=cfg.residual, patch=cfg.patch)
    return cfg.compute.fit(model, DictDataset(image=x, target=y), steps=cfg.unet_steps, seed=cfg.seed)


def _train_diffusion(cfg: DenoiseConfig):
    """Unconditional DDPM on clean slices of both phases (it never sees the test noise); with
    `patch`, on 4 random patch crops per slice (the UNet is convolutional, so it then denoises
    whole slices)."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed)
    x = torch.cat([to_unit(tr.clean), to_unit(tr.clean_nc)])
    if cfg.patch:
        (x,) = patch_set(cfg.patch, cfg.seed, x)
    model = build_model("diffusion", size=cfg.patch or cfg.size, channels=cfg.diffusion_channels,
                        attention_levels=(False,) * len(cfg.diffusion_channels), num_train_timesteps=1000)
    return cfg.compute.fit(model, DictDataset(image=x), steps=cfg.diffusion_steps, seed=cfg.seed)


def _denoise_all(cfg: DenoiseConfig, models: dict[str, Any], te: PhantomSlices,
                 ) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray]:
    """Every method's output (HU) on the test scans, its seconds, and the estimated noise SD (HU)."""
    y = to_unit(te.image)
    sigma_hu = (estimate_sigma_mode(te.image, te.spacing_mm[1]) if cfg.noise_estimator == "mode"
                else estimate_sigma(te.image))
    sigma = sigma_hu * UNIT_PER_HU
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for m in cfg.methods:
        t0 = time.perf_counter()
        if m == "noisy":
            pred = y
        elif m == "unet":
            pred = models[m].predict(y, batch_size=8)
        elif m == "diffusion":
            pred = diffusion_denoise(models[m], y, sigma, steps=cfg.sample_steps,
                                     generator=seeded(cfg.seed))
        else:
            pred = torch.from_numpy(classical(y[:, 0].numpy(), sigma, m))[:, None]
        seconds[m] = time.perf_counter() - t0
        outputs[m] = to_hu(pred)
    return outputs, seconds, sigma_hu


def _scores(cfg: DenoiseConfig, te: PhantomSlices, outputs: dict[str, np.ndarray],
            seconds: dict[str, float], sigma_hu: np.ndarray) -> dict[str, Any]:
    regions = {"kidney": (te.kidney_mask > 0) & (te.lesion_mask == 0), "lesion": te.lesion_mask > 0}
    return {"n_test_images": len(te.image), "true_noise_hu_mean": float(te.noise_hu.mean()),
            "estimated_noise_hu_mean": float(sigma_hu.mean()),
            "methods": paired_table(outputs, te.clean, seconds, cfg.n_boot, cfg.seed),
            "hu_bias": region_error(outputs, te.clean, regions, cfg.n_boot, cfg.seed)}


def run_denoise(cfg: DenoiseConfig = DenoiseConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Train the learned denoisers, denoise the low-dose test scans with every method, score.

    Returns {"config", "train_seconds", "window_hu", "n_test_images", "true_noise_hu_mean",
    "estimated_noise_hu_mean", "methods": {name: {psnr_db, ssim, mae_hu (mean + CI), seconds
    (denoising the test scans)}},
    "hu_bias": {name: {kidney, lesion}}} for Gaussian noise; for radon noise the same per test
    dose under "doses": {"0.25": {...}, ...}. With `out`, writes denoise.json and denoise.png.
    """
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    trainers = {"unet": _train_unet, "diffusion": _train_diffusion}
    models, train_seconds = {}, {}
    for m in (m for m in cfg.methods if m in trainers):  # in the config's order
        t0 = time.perf_counter()
        models[m] = trainers[m](cfg)
        train_seconds[m] = time.perf_counter() - t0
    result: dict[str, Any] = {"config": asdict(cfg), "train_seconds": train_seconds,
                              "window_hu": {"level": ABDOMEN_WINDOW_HU[0], "width": ABDOMEN_WINDOW_HU[1]}}
    extra = {"lesion_prob": cfg.test_lesion_prob}
    if cfg.noise_model == "gaussian":
        te = _scans(cfg, cfg.n_test_patients, cfg.seed + 1000, 4, **extra)
        outputs, seconds, sigma_hu = _denoise_all(cfg, models, te)
        result.update(_scores(cfg, te, outputs, seconds, sigma_hu))
        fig = _figure(te.image, te.clean, outputs)
    else:
        result["doses"], rows = {}, {}
        for dose in cfg.test_doses:
            te = _scans(cfg, cfg.n_test_patients, cfg.seed + 1000, 4, (dose, dose), **extra)
            outputs, seconds, sigma_hu = _denoise_all(cfg, models, te)
            result["doses"][f"{dose:g}"] = _scores(cfg, te, outputs, seconds, sigma_hu)
            rows[f"{dose:.0%} dose"] = _kidney_view(te, outputs)
        fig = _dose_figure(rows)
    if out is not None:
        out = Path(out)
        write_json(out / "denoise.json", result)
        save_figure(fig, out / "denoise.png")
    return result


def _figure(noisy: np.ndarray, clean: np.ndarray, outputs: dict[str, np.ndarray], n: int = 4):
    return hu_columns_figure({"clean": clean, **outputs}, min(n, len(noisy)), title="low-dose denoising")


def _kidney_view(te: PhantomSlices, outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The test slice with the largest lesion, cut around its kidneys, truth and methods."""
    i = int(np.argmax(te.lesion_mask.reshape(len(te), -1).sum(1)))
    cut = kidney_view(te.kidney_mask, te.spacing_mm[1], {"clean": te.clean, **outputs}, [i])
    return {k: v[0] for k, v in cut.items()}


def _dose_figure(rows: dict[str, dict[str, np.ndarray]]):
    """One row per test dose (its kidney view), one column per method."""
    names = list(next(iter(rows.values())))
    cols = {n: np.stack([r[n] for r in rows.values()]) for n in names}
    return hu_columns_figure(cols, len(rows), title="Low-dose denoising, cut around the kidneys",
                             row_labels=list(rows), panel_in=2.0)


MIN_SIDE = 16  # smallest slice side `denoise_file` takes (the bm3d package segfaults on 8 x 8)


def denoise_file(path: str | Path, out: str | Path, method: str = "bm3d",
                 noise_estimator: str = "wavelet") -> dict[str, Any]:
    """Denoise a user's slice or volume (DICOM file/folder, NIfTI, PNG/TIFF) slice by slice.

    Classical methods only (no ground truth, no training on the user's data): noise SD is
    estimated per slice in the image's own units, by the wavelet MAD (default; conservative: it
    sees only the finest band, so it underestimates the correlated noise of filtered
    back-projection, 2 vs 15 HU on the phantom) or, for CT, `noise_estimator="mode"` (soft-tissue
    local-SD mode, Christianson et al. 2015; right on the phantom, but on a small field of view
    with little homogeneous tissue it also counts texture, so it can over-smooth).
    CT is denoised over a wide window (-1000..1000 HU, so air, fat and bone survive), other
    modalities over their 0.5-99.5 percentile range. Writes out/denoised.nii.gz (input units,
    spacing and modality), out/denoise.png (input | denoised, middle slice; CT in the abdomen
    window, others between their percentiles) and out/denoise.json (`noise_sd_estimated`,
    `noise_sd_after` with `units`).
    """
    from genmed.data.io import load, save_nifti
    from genmed.data.modality import display_range, intensity_map

    check_choice("method", method, CLASSICAL)
    check_choice("noise_estimator", noise_estimator, ("wavelet", "mode"))
    img = load(path, ndim=(2, 3))
    vol = img.array[None] if img.ndim == 2 else img.array
    if min(vol.shape[-2:]) < MIN_SIDE:  # no noise estimate; BM3D needs room for its 8x8 blocks
        raise UserError(f"{path}: slices of {vol.shape[-2]}x{vol.shape[-1]} pixels are too small to "
                        f"denoise (at least {MIN_SIDE}x{MIN_SIDE})")
    if noise_estimator == "mode" and img.modality != "CT":
        raise UserError(f"--noise-estimator mode needs CT in HU (soft tissue 0..100 HU); this is {img.modality}")

    def noise_sd(images: np.ndarray) -> np.ndarray:
        if noise_estimator == "mode":
            return estimate_sigma_mode(images, float(img.spacing[-1]))
        return estimate_sigma(images)

    sigma = noise_sd(vol)
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
            "noise_sd_after": float(np.mean(noise_sd(den))),
            "noise_estimator": noise_estimator}
    write_json(out / "denoise.json", info)
    return info
