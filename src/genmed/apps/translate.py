"""Image-to-image translation: non-contrast -> contrast-enhanced CT (paired phantom phases).

Methods: "identity" (the source itself; the floor), "unet_l1" (paired supervised MONAI UNet,
L1 loss, as pix2pix's generator term: Isola et al. 2017 eq. 3), "cond_diffusion" (DDPM with the
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

from genmed.apps.common import hu_columns_figure, paired_table, phantom, seeded, to_hu, to_unit
from genmed.data.transforms import ABDOMEN_WINDOW_HU
from genmed.errors import UserError, check_choice, check_positive
from genmed.fileio import save_figure, write_json
from genmed.models.base import device_of
from genmed.train.fitting import Compute

METHODS: tuple[str, ...] = ("identity", "unet_l1", "cond_diffusion", "sdedit")


@dataclass(frozen=True)
class TranslateConfig:
    """Settings of the phantom phase-translation benchmark."""

    size: int = 32
    n_train_patients: int = 24
    n_test_patients: int = 8
    methods: tuple[str, ...] = METHODS
    unet_steps: int = 400
    diffusion_steps: int = 800  # for both the conditional and the SDEdit model
    sample_steps: int = 20  # DDIM steps
    sdedit_t: int = 400  # SDEdit noise level (of T = 1000)
    n_boot: int = 200
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
        if self.size % 4 or not 0 < self.sdedit_t < 1000:
            raise UserError(f"size={self.size} must be a multiple of 4 and sdedit_t={self.sdedit_t} in 1..999")


def translate_models(cfg: TranslateConfig, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, Any]:
    """Train the learned methods of `cfg` on paired (src, tgt) (N, 1, H, W) in [-1, 1]."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    unet = dict(channels=(32, 64, 64), attention_levels=(False, False, False))
    models: dict[str, Any] = {}
    if "unet_l1" in cfg.methods:
        models["unet_l1"] = cfg.compute.fit(build_model("regressor", size=cfg.size),
                                            DictDataset(image=src, target=tgt),
                                            steps=cfg.unet_steps, seed=cfg.seed)
    if "cond_diffusion" in cfg.methods:  # the source slice stacked onto x_t (Palette)
        cd = build_model("diffusion", size=cfg.size, cond_channels=1, cond_kind="concat", **unet)
        models["cond_diffusion"] = cfg.compute.fit(cd, DictDataset(image=tgt, cond=src),
                                                   steps=cfg.diffusion_steps, seed=cfg.seed)
    if "sdedit" in cfg.methods:  # unpaired: sees contrast-phase images only
        models["sdedit"] = cfg.compute.fit(build_model("diffusion", size=cfg.size, **unet),
                                           DictDataset(image=tgt), steps=cfg.diffusion_steps,
                                           seed=cfg.seed)
    return models


def run_translate(cfg: TranslateConfig = TranslateConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Train, translate the test patients' non-contrast slices, score against the true phase."""
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed)
    te = phantom(cfg.n_test_patients, cfg.size, cfg.seed + 1000, slices=4)
    models = translate_models(cfg, to_unit(tr.image_nc), to_unit(tr.image))
    src = to_unit(te.image_nc)
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for m in cfg.methods:
        t0 = time.perf_counter()
        if m == "identity":
            pred = src
        elif m == "unet_l1":
            pred = models[m].predict(src)
        else:
            dev = device_of(models[m])
            g, x = seeded(cfg.seed, dev), src.to(dev)
            if m == "cond_diffusion":
                pred = models[m].sample(len(x), image_cond=x, steps=cfg.sample_steps,
                                        sampler="ddim", generator=g)
            else:
                pred = models[m].reconstruct(x, cfg.sdedit_t, steps=cfg.sample_steps,
                                             sampler="ddim", generator=g)
        seconds[m] = time.perf_counter() - t0
        outputs[m] = to_hu(pred)
    result: dict[str, Any] = {"config": asdict(cfg), "n_test_images": len(src),
                              "window_hu": {"level": ABDOMEN_WINDOW_HU[0], "width": ABDOMEN_WINDOW_HU[1]},
                              "target": "noise-free contrast-enhanced phase",
                              "methods": paired_table(outputs, te.clean, seconds, cfg.n_boot, cfg.seed)}
    if out is not None:
        out = Path(out)
        write_json(out / "translate.json", result)
        save_figure(_figure(te.image_nc, te.clean, outputs), out / "translate.png")
    return result


def _figure(src: np.ndarray, truth: np.ndarray, outputs: dict[str, np.ndarray], n: int = 4):
    cols = {"source (NC)": src, "truth (CE)": truth,
            **{k: v for k, v in outputs.items() if k != "identity"}}
    n = min(n, len(src))
    return hu_columns_figure(cols, n, stride=max(1, len(src) // n),
                             title="Non-contrast to contrast-enhanced translation")
