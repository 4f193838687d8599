"""Image-to-image translation: non-contrast -> contrast-enhanced CT (paired phantom phases).

Methods: "identity" (the source itself; the floor), "unet_l1" (paired supervised MONAI UNet,
L1 loss, as pix2pix's generator term: Isola et al. 2017 eq. 3), "pix2pix" (that UNet plus a
conditional PatchGAN, `genmed.models.pix2pix`), "cond_diffusion" (DDPM with the
source stacked as an input channel: Palette, Saharia et al. 2022), and "sdedit" (unpaired: an
unconditional DDPM trained only on contrast-enhanced slices; the source is noised to step
`sdedit_t` and denoised, Meng et al. 2022). Training pairs are the noisy scans of both phases;
scores compare the output with the noise-free contrast phase of the held-out patients:
PSNR / SSIM / MAE on HU in the abdomen window, mean and 95% bootstrap CI per image.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from genmed.apps.common import (hu_columns_figure, kidney_view, paired_table, patch_set, phantom, region_error,
                                seeded, to_hu, to_unit)
from genmed.data.phantom import LABELS
from genmed.data.transforms import ABDOMEN_WINDOW_HU
from genmed.errors import UserError, check_choice, check_positive
from genmed.fileio import save_figure, write_json
from genmed.models.base import device_of
from genmed.train.fitting import Compute

METHODS: tuple[str, ...] = ("identity", "unet_l1", "pix2pix", "cond_diffusion", "sdedit")
CORE_ERODE_PX = 2  # lesion cores: the masks eroded by this many pixels (2.8 mm at 256 px)


@dataclass(frozen=True)
class TranslateConfig:
    """Settings of the phantom phase-translation benchmark (defaults: the 32-px history;
    `clinical_translate_config()`: 256 px, patch-trained residual nets)."""

    size: int = 32
    n_train_patients: int = 24
    n_test_patients: int = 8
    methods: tuple[str, ...] = ("identity", "unet_l1", "cond_diffusion", "sdedit")
    unet_steps: int = 400  # for the UNet and for pix2pix
    diffusion_steps: int = 800  # for both the conditional and the SDEdit model
    sample_steps: int = 20  # DDIM steps
    sdedit_t: int = 400  # SDEdit noise level (of T = 1000)
    n_boot: int = 200
    seed: int = 0
    compute: Compute = field(default_factory=Compute)  # training device and precision
    patch: int = 0  # learned models train on random patch crops, infer on whole slices (0: whole slices)
    unet_channels: tuple[int, ...] = (16, 32, 64)  # UNet / pix2pix generator channels per level
    residual: bool = False  # UNet and pix2pix predict the change to the source (the enhancement)
    diffusion_channels: tuple[int, ...] = (32, 64, 64)  # diffusion UNets (no attention: fully convolutional)
    test_lesion_prob: float = 0.6  # fraction of test patients with a renal lesion
    train_lesion_prob: float = 0.6  # fraction of training patients with one (the phantom's default)
    lesion_crop_fraction: float = 0.0  # UNet / pix2pix: share of training patches centred on a lesion
    lesion_weight: float = 0.0  # UNet / pix2pix: extra L1 weight on lesion pixels (1 + this there)

    def __post_init__(self) -> None:
        for m in self.methods:
            check_choice("method", m, METHODS)
        for name in ("size", "n_train_patients", "n_test_patients", "unet_steps",
                     "diffusion_steps", "sample_steps"):
            check_positive(name, getattr(self, name))
        if self.n_boot < 2:
            raise UserError(f"n_boot={self.n_boot} must be >= 2")
        stride = 2 ** (max(len(self.unet_channels), len(self.diffusion_channels)) - 1)
        if self.size % stride or not 0 < self.sdedit_t < 1000:
            raise UserError(f"size={self.size} must be a multiple of {stride} and sdedit_t={self.sdedit_t} in 1..999")
        if not 0 <= self.lesion_crop_fraction <= 1 or (self.lesion_crop_fraction and not self.patch):
            raise UserError(f"lesion_crop_fraction={self.lesion_crop_fraction} must be in [0, 1] "
                            "and needs patch > 0")
        check_positive("lesion_weight", self.lesion_weight, allow_zero=True)
        for name in ("test_lesion_prob", "train_lesion_prob"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name}={getattr(self, name)} must be in [0, 1]")
        if self.patch and not (16 <= self.patch <= self.size and self.patch % stride == 0):
            raise UserError(f"patch={self.patch} must be 0 or a multiple of {stride} between 16 and size={self.size}")


def clinical_translate_config(**overrides: Any) -> TranslateConfig:
    """256 px (1.41 mm/px): residual UNet (L1) and pix2pix on 64-px patches, conditional
    diffusion (Palette) on 64-px patch pairs sampling whole slices, bf16 where fast."""
    base = dict(size=256, n_train_patients=40, n_test_patients=12,
                methods=("identity", "unet_l1", "pix2pix", "cond_diffusion"), unet_steps=3000,
                diffusion_steps=1000, sample_steps=20, patch=64, unet_channels=(32, 64, 128, 256),
                residual=True, test_lesion_prob=1.0, n_boot=1000, compute=Compute(precision="auto"))
    return TranslateConfig(**{**base, **overrides})


def translate_models(cfg: TranslateConfig, src: torch.Tensor, tgt: torch.Tensor,
                     lesion: torch.Tensor | None = None) -> dict[str, Any]:
    """Train the learned methods of `cfg` on paired (src, tgt) (N, 1, H, W) in [-1, 1];
    `lesion` masks (N, 1, H, W) centre `lesion_crop_fraction` of the UNets' patches and weigh
    their pixels by 1 + `lesion_weight` in the L1 terms."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    unet = dict(channels=cfg.diffusion_channels, attention_levels=(False,) * len(cfg.diffusion_channels))
    reg = dict(size=cfg.size, channels=cfg.unet_channels, residual=cfg.residual, patch=cfg.patch,
               focus_fraction=cfg.lesion_crop_fraction, focus_weight=cfg.lesion_weight)
    wanted = cfg.lesion_crop_fraction or cfg.lesion_weight
    focus = {"focus": lesion} if wanted and lesion is not None else {}
    pairs = DictDataset(image=src, target=tgt, **focus)
    d_src, d_tgt = src, tgt  # diffusion: fixed patch crops (4 per slice), sampled at full size
    if cfg.patch:
        d_tgt, d_src = patch_set(cfg.patch, cfg.seed, tgt, src)
    d_size = cfg.patch or cfg.size
    models: dict[str, Any] = {}
    for m in cfg.methods:
        if m == "unet_l1":
            models[m] = cfg.compute.fit(build_model("regressor", **reg), pairs, steps=cfg.unet_steps,
                                        seed=cfg.seed)
        elif m == "pix2pix":
            models[m] = cfg.compute.fit(build_model("pix2pix", **reg), pairs, steps=cfg.unet_steps,
                                        seed=cfg.seed)
        elif m == "cond_diffusion":  # the source slice stacked onto x_t (Palette)
            cd = build_model("diffusion", size=d_size, cond_channels=1, cond_kind="concat", **unet)
            models[m] = cfg.compute.fit(cd, DictDataset(image=d_tgt, cond=d_src),
                                        steps=cfg.diffusion_steps, seed=cfg.seed)
        elif m == "sdedit":  # unpaired: sees contrast-phase images only
            models[m] = cfg.compute.fit(build_model("diffusion", size=d_size, **unet),
                                        DictDataset(image=d_tgt), steps=cfg.diffusion_steps,
                                        seed=cfg.seed)
    return models


def _translate(cfg: TranslateConfig, method: str, model: Any, src: torch.Tensor) -> torch.Tensor:
    """`method`'s contrast-phase prediction for sources (N, 1, H, W), in chunks of 8."""
    if method == "identity":
        return src
    if method in ("unet_l1", "pix2pix"):
        return model.predict(src, batch_size=8)
    dev, g, out = device_of(model), seeded(cfg.seed, device_of(model)), []
    for x in src.split(8):
        x = x.to(dev)
        if method == "cond_diffusion":
            out.append(model.sample(len(x), image_cond=x, steps=cfg.sample_steps, sampler="ddim",
                                    generator=g).cpu())
        else:
            out.append(model.reconstruct(x, cfg.sdedit_t, steps=cfg.sample_steps, sampler="ddim",
                                         generator=g).cpu())
    return torch.cat(out)


def run_translate(cfg: TranslateConfig = TranslateConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Train, translate the test patients' non-contrast slices, score against the true phase.

    Scores per method: PSNR / SSIM / MAE over the slice ("methods"), and inside regions
    ("regions"): mean absolute error in the kidneys (lesions excluded) and the signed mean HU
    error in malignant and in benign lesions (does the method get their enhancement right?).
    """
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed, lesion_prob=cfg.train_lesion_prob)
    te = phantom(cfg.n_test_patients, cfg.size, cfg.seed + 1000, slices=4, lesion_prob=cfg.test_lesion_prob)
    models = translate_models(cfg, to_unit(tr.image_nc), to_unit(tr.image),
                              torch.from_numpy(tr.lesion_mask.astype(np.float32))[:, None])
    src = to_unit(te.image_nc)
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for m in cfg.methods:
        t0 = time.perf_counter()
        outputs[m] = to_hu(_translate(cfg, m, models.get(m), src))
        seconds[m] = time.perf_counter() - t0
    lesion = te.lesion_mask > 0
    kind = np.asarray(LABELS)[te.label][:, None, None]
    kidney = {"kidney": (te.kidney_mask > 0) & ~lesion}
    lesions = {"malignant": lesion & (kind == "malignant"), "benign": lesion & (kind == "benign")}
    # the lesion cores, eroded by CORE_ERODE_PX: free of the partial volume at the rim, where the
    # truth itself blends the lesion with the enhancing cortex around it
    core = ndimage.binary_erosion(lesion, np.ones((1, 3, 3), bool), iterations=CORE_ERODE_PX)
    lesions |= {f"{k} core": v & core for k, v in list(lesions.items())}
    result: dict[str, Any] = {"config": asdict(cfg), "n_test_images": len(src),
                              "window_hu": {"level": ABDOMEN_WINDOW_HU[0], "width": ABDOMEN_WINDOW_HU[1]},
                              "target": "noise-free contrast-enhanced phase",
                              "methods": paired_table(outputs, te.clean, seconds, cfg.n_boot, cfg.seed),
                              "kidney_mae_hu": region_error(outputs, te.clean, kidney, cfg.n_boot, cfg.seed,
                                                           absolute=True),
                              "lesion_bias_hu": region_error(outputs, te.clean, lesions, cfg.n_boot, cfg.seed)}
    if out is not None:
        out = Path(out)
        write_json(out / "translate.json", result)
        fig = (_kidney_figure(te, outputs) if cfg.patch else _figure(te.image_nc, te.clean, outputs))
        save_figure(fig, out / "translate.png")
    return result


def _figure(src: np.ndarray, truth: np.ndarray, outputs: dict[str, np.ndarray], n: int = 4):
    cols = {"source (NC)": src, "truth (CE)": truth,
            **{k: v for k, v in outputs.items() if k != "identity"}}
    n = min(n, len(src))
    return hu_columns_figure(cols, n, stride=max(1, len(src) // n),
                             title="Non-contrast to contrast-enhanced translation")


def _kidney_figure(te, outputs: dict[str, np.ndarray]):
    """Rows: the test slices with the largest malignant and benign lesion, cut around the
    lesion (20 mm margins) with its outline in red; columns: source, truth, each learned method."""
    area = (te.lesion_mask > 0).reshape(len(te), -1).sum(1).astype(np.int64)  # signed: -1 below
    stacks = {"source (NC)": te.image_nc, "truth (CE)": te.clean,
              **{k: v for k, v in outputs.items() if k != "identity"}}
    picks = [(int(np.argmax(np.where(te.label == k, area, -1))), f"{name} lesion")
             for k, name in ((2, "malignant"), (1, "benign")) if np.any((te.label == k) & (area > 0))]
    if not picks:  # no lesion in the test slices: cut around the kidneys of slice 0
        cols = kidney_view(te.kidney_mask, te.spacing_mm[1], stacks, [0])
        return hu_columns_figure(cols, 1, title="Non-contrast to contrast-enhanced translation",
                                 row_labels=["slice 0"], panel_in=2.0)
    cols = kidney_view(te.lesion_mask, te.spacing_mm[1], {**stacks, "outline": te.lesion_mask > 0},
                       [i for i, _ in picks], margin_mm=20.0)
    outline = cols.pop("outline")
    side_mm = outline.shape[-1] * te.spacing_mm[1]
    return hu_columns_figure(cols, len(picks), title="Non-contrast to contrast-enhanced translation, "
                             f"{side_mm:.0f} mm around the lesion (red)",
                             row_labels=[n for _, n in picks], panel_in=2.0, outlines=outline)
