"""Anomaly detection with the three families, trained on healthy slices only.

Detectors (one score per image, higher = more anomalous; a per-pixel map where one exists):
- "intensity": baseline. A per-pixel Gaussian of healthy training slices (mean, SD in HU); the
  map is |x - mean| / SD inside the body.
- "vae_recon", "vae_elbo": beta-VAE reconstruction error (map: squared error) and the negative
  ELBO (Kingma & Welling 2014; An & Cho 2015).
- "gan": negative discriminator logit -D(x) (Schlegl et al. 2017 use D's features; no map).
- "diffusion": AnoDDPM (Wyatt et al. 2022): noise the slice to step `t_start` with Gaussian
  noise, denoise with the reverse process (DDIM), map = squared error averaged over `n_draws`
  noise draws.
Maps are smoothed with a Gaussian (sigma 1 pixel), zero outside the body; a map's image score is
its maximum (the most anomalous spot). Evaluation:
`genmed.metrics.image_level` (AUROC / AUPRC, 95% CIs) and `pixel_level` (Dice / AUPRO), and
AUROC by lesion size and by noise level (the sensitivity plot).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genmed.apps.common import phantom, seeded, to_unit
from genmed.data.transforms import ABDOMEN_RANGE_HU
from genmed.errors import UserError, check_choice, check_positive
from genmed.fileio import save_figure, write_json
from genmed.metrics.anomaly import auroc_by_group, image_level, pixel_level
from genmed.models.base import device_of
from genmed.train.fitting import Compute

DETECTORS: tuple[str, ...] = ("intensity", "vae_recon", "vae_elbo", "gan", "diffusion")
BODY_HU = -400.0  # pixels above this (after smoothing) are inside the body
MAP_UNITS = {"intensity": "|HU - mean| / SD",  # the maps' units (all Gaussian-smoothed)
             "vae_recon": "sq. error (units²)",
             "diffusion": "sq. error (units²)"}


@dataclass(frozen=True)
class AnomalyConfig:
    """Settings of the phantom anomaly-detection benchmark."""

    size: int = 32  # slice side (pixels)
    n_train_patients: int = 40  # phantom patients; only their healthy slices are used
    n_test_patients: int = 16  # held-out patients (other seed), each with a lesion
    test_lesion_mm: tuple[float, float] = (12.0, 48.0)  # test lesion diameters (mm)
    detectors: tuple[str, ...] = DETECTORS
    vae_steps: int = 600
    gan_steps: int = 600
    diffusion_steps: int = 600
    t_start: int = 250  # AnoDDPM noise level (of T = 1000 steps)
    recon_steps: int = 10  # DDIM steps from t_start back to 0
    n_draws: int = 2  # noise draws averaged in the diffusion map
    n_boot: int = 200
    seed: int = 0
    compute: Compute = field(default_factory=Compute)  # training device and precision

    def __post_init__(self) -> None:
        for d in self.detectors:
            check_choice("detector", d, DETECTORS)
        for name in ("size", "n_train_patients", "n_test_patients", "vae_steps", "gan_steps",
                     "diffusion_steps", "recon_steps", "n_draws"):
            check_positive(name, getattr(self, name))
        if self.n_boot < 4:  # the by-size / by-noise CIs use n_boot // 2 >= 2 resamples
            raise UserError(f"n_boot={self.n_boot} must be >= 4")
        if not 0 < self.t_start < 1000:
            raise UserError(f"t_start={self.t_start} must be in 1..999")
        if self.size % 8:
            raise UserError(f"size={self.size} must be a multiple of 8")


def _smooth(maps: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(maps, sigma=(0, 1.0, 1.0))


def body_mask(hu: np.ndarray) -> np.ndarray:
    """(N, H, W) bool: inside the patient (smoothed HU above -400)."""
    return _smooth(np.asarray(hu, np.float32)) > BODY_HU


def _train(family: str, x: torch.Tensor, cfg: AnomalyConfig):
    """Train `family` on healthy slices `x` with its registry "short" recipe."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    data = DictDataset(image=x)
    if family == "vae":
        model = build_model("vae", size=cfg.size, channels=(32, 64, 64), latent_dim=32,
                            kl_warmup_steps=cfg.vae_steps // 2, likelihood_sigma=0.1)
        return cfg.compute.fit(model, data, steps=cfg.vae_steps, seed=cfg.seed)
    if family == "gan":
        return cfg.compute.fit(build_model("gan", size=cfg.size), data, steps=cfg.gan_steps,
                               seed=cfg.seed)
    model = build_model("diffusion", size=cfg.size, channels=(32, 64, 64),
                        attention_levels=(False, False, False))
    return cfg.compute.fit(model, data, steps=cfg.diffusion_steps, seed=cfg.seed)


def detect(cfg: AnomalyConfig, train_hu: np.ndarray, test_hu: np.ndarray) -> dict[str, dict]:
    """Train each detector on healthy `train_hu` (N, H, W) and score `test_hu`.

    Returns {detector: {"scores": (M,), "maps": (M, H, W) or None, "seconds": float}}.
    """
    x_tr, x_te = to_unit(train_hu), to_unit(test_hu)
    body = body_mask(test_hu)
    models: dict[str, Any] = {}
    out: dict[str, dict] = {}
    for d in cfg.detectors:
        t0 = time.perf_counter()
        family = {"vae_recon": "vae", "vae_elbo": "vae"}.get(d, d)
        if family in ("vae", "gan", "diffusion") and family not in models:
            models[family] = _train(family, x_tr, cfg)  # outside no_grad
        with torch.no_grad():
            maps, scores = _score(d, models.get(family), cfg, train_hu, test_hu, x_te)
        if maps is not None:
            maps = _smooth(maps.astype(np.float32)) * body
            scores = maps.reshape(len(maps), -1).max(1)  # the most anomalous spot
        out[d] = {"scores": np.asarray(scores, np.float64), "maps": maps,
                  "seconds": time.perf_counter() - t0}
    return out


def _score(d: str, model: Any, cfg: AnomalyConfig, train_hu: np.ndarray, test_hu: np.ndarray,
           x_te: torch.Tensor) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(raw per-pixel map or None, image score or None) of detector `d`."""
    maps = scores = None
    if d == "intensity":
        mu, sd = train_hu.mean(0), train_hu.std(0) + 10.0  # +10 HU: floor on the SD
        return np.abs(test_hu - mu) / sd, None
    dev = device_of(model)
    x = x_te.to(dev)
    if d == "vae_recon":
        maps = (model.reconstruct(x) - x).pow(2)[:, 0].cpu().numpy()
    elif d == "vae_elbo":
        scores = model.anomaly_score(x, kind="elbo", generator=seeded(cfg.seed, dev)).cpu().numpy()
    elif d == "gan":
        scores = model.anomaly_score(x).reshape(-1).cpu().numpy()
    else:
        g = seeded(cfg.seed, dev)
        maps = np.mean([(model.reconstruct(x, cfg.t_start, steps=cfg.recon_steps,
                                           sampler="ddim", generator=g) - x
                         ).pow(2)[:, 0].cpu().numpy() for _ in range(cfg.n_draws)], axis=0)
    return maps, scores


def run_anomaly(cfg: AnomalyConfig = AnomalyConfig(), out: str | Path | None = None) -> dict[str, Any]:
    """Phantom benchmark: train on healthy slices, score lesion vs healthy test slices.

    Returns {"config", "test": counts, "detectors": {name: {"image": AUROC/AUPRC with CIs,
    "pixel": Dice/AUPRO or None, "by_size": [...], "by_noise": [...], "seconds"}}}; with `out`
    writes anomaly.json, anomaly.png (maps) and anomaly_sensitivity.png.
    """
    torch.manual_seed(cfg.seed)  # weight initialisation: independent of what ran before
    tr = phantom(cfg.n_train_patients, cfg.size, cfg.seed, noisy_fraction=0.3)
    train_hu = tr.image[tr.label == 0]
    te = phantom(cfg.n_test_patients, cfg.size, cfg.seed + 1000, lesion_prob=1.0,
                 lesion_diameter_mm=cfg.test_lesion_mm, noisy_fraction=0.3)
    y = te.label > 0
    if y.all() or not y.any():
        raise UserError("the test set needs healthy and lesion slices: use more test patients")
    res = detect(cfg, train_hu, te.image)
    size_bin = np.where(y, np.digitize(te.lesion_diameter_mm, [20.0, 32.0]), -1)
    noise_bin = np.digitize(te.noise_hu, [20.0, 45.0])
    result: dict[str, Any] = {"config": asdict(cfg), "train_healthy_slices": int(len(train_hu)),
                              "test": {"n": int(len(y)), "n_lesion": int(y.sum())},
                              "size_bins_mm": ["<20", "20-32", ">=32"],
                              "noise_bins_hu": ["<20", "20-45", ">=45"], "detectors": {}}
    for d, r in res.items():
        result["detectors"][d] = {
            "image": image_level(r["scores"], y, cfg.n_boot, cfg.seed),
            "pixel": None if r["maps"] is None else pixel_level(r["maps"][y], te.lesion_mask[y]),
            "by_size": auroc_by_group(r["scores"], y, size_bin, cfg.n_boot // 2, cfg.seed),
            "by_noise": auroc_by_group(r["scores"], y, noise_bin, cfg.n_boot // 2, cfg.seed),
            "seconds": r["seconds"]}
    if out is not None:
        out = Path(out)
        write_json(out / "anomaly.json", result)
        save_figure(_maps_figure(te.image, te.lesion_mask, y, res), out / "anomaly.png")
        save_figure(_sensitivity_figure(result), out / "anomaly_sensitivity.png")
    return result


def _maps_figure(hu: np.ndarray, lesion: np.ndarray, y: np.ndarray, res: dict, n: int = 4):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.flatnonzero(y)[np.argsort(-lesion[y].sum((1, 2)))][:n]
    with_maps = [d for d, r in res.items() if r["maps"] is not None]
    cols = 1 + len(with_maps)
    lo, hi = ABDOMEN_RANGE_HU
    fig, ax = plt.subplots(len(idx), cols, figsize=(1.9 * cols, 1.7 * len(idx) + 0.6),
                           squeeze=False)
    for i, k in enumerate(idx):
        im = ax[i, 0].imshow(hu[k], cmap="gray", vmin=lo, vmax=hi)
        ax[i, 0].contour(lesion[k], levels=[0.5], colors="cyan", linewidths=0.8)
        for j, d in enumerate(with_maps):
            m = res[d]["maps"]  # one colour scale per detector, over all shown slices
            mi = ax[i, 1 + j].imshow(m[k], cmap="inferno", vmin=0, vmax=float(m[idx].max()))
            ax[i, 1 + j].contour(lesion[k], levels=[0.5], colors="cyan", linewidths=0.8)
            if i == len(idx) - 1:
                fig.colorbar(mi, ax=ax[:, 1 + j].tolist(), orientation="horizontal",
                             fraction=0.04, pad=0.02).set_label(MAP_UNITS.get(d, "score"),
                                                                fontsize=6)
    fig.colorbar(im, ax=ax[:, 0].tolist(), orientation="horizontal", fraction=0.04,
                 pad=0.02).set_label("HU", fontsize=6)
    for j, title in enumerate(["slice (lesion outlined)", *with_maps]):
        ax[0, j].set_title(title, fontsize=8)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"Anomaly maps, lesion in cyan; slices in W{hi - lo:.0f}/L{(hi + lo) / 2:.0f} HU",
                 fontsize=9)
    return fig


def _sensitivity_figure(result: dict[str, Any]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, names, title in ((axes[0], "by_size", result["size_bins_mm"], "lesion diameter (mm)"),
                                  (axes[1], "by_noise", result["noise_bins_hu"], "noise SD (HU)")):
        for d, r in result["detectors"].items():
            pts = r[key]
            if not pts:
                continue
            xs = [p["group"] for p in pts]
            v = np.array([[p["auroc"]["value"], p["auroc"]["low"], p["auroc"]["high"]] for p in pts])
            ax.errorbar(np.array(xs) + 0.04 * list(result["detectors"]).index(d), v[:, 0],
                        yerr=[v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]], marker="o", capsize=2, label=d)
        ax.set_xticks(range(len(names)), names)
        ax.set_xlabel(title)
        ax.set_ylabel("image AUROC (95% CI)")
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_ylim(0.0, 1.02)
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig
