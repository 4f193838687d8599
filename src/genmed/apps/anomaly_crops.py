"""Anomaly detection on kidney crops at native resolution (issue 16), healthy-only training.

Data: phantom slices rendered at `size` px (256 px over 360 mm: 1.41 mm/px) cut into one
`crop` x `crop` window per kidney side and slice (`genmed.data.crops.crop_kidneys`; 64 px =
90 mm). Training: healthy crops of `n_train_patients` phantom patients (crops showing lesion
pixels are dropped). Test: crops of `n_test_patients` held-out patients (phantom seed + 1000,
every patient with a lesion of `test_lesion_mm`); positives are crops with lesion pixels whose
in-plane lesion diameter on that slice is >= `min_lesion_mm`, negatives crops without lesion
pixels; crops with a smaller visible lesion are left out.

Detectors (one score per crop, higher = more anomalous; maps where one exists):
- "intensity": baseline, a per-pixel Gaussian of healthy training crops (as in
  `genmed.apps.anomaly`); map |HU - mean| / SD.
- "vae_recon", "vae_elbo": beta-VAE residual map (x - decode(mu(x)))^2 and the negative ELBO
  (Kingma & Welling 2014; An & Cho 2015).
- "gan": negative discriminator logit -D(x) (no map); with `gan_models` > 1, the mean over
  that many GANs (seeds seed, seed + 1, ...) of each one's -D(x) standardised by its mean and
  SD on the healthy training crops (an ensemble, Lakshminarayanan et al. 2017: a single GAN
  discriminator's ranking of crops moves with its training run).
- "gan_inversion": f-AnoGAN-style residual (Schlegl et al. 2019) with the latent found by
  optimisation instead of their trained izif encoder (AnoGAN, Schlegl et al. 2017, sec. 2.2):
  the `inversion_starts` nearest of `inversion_bank` generated crops give starting latents,
  each refined by `inversion_steps` Adam steps on ||G(z) - x||^2; map (x - G(z*))^2 of the best.
- "diffusion": AnoDDPM (Wyatt et al. 2022) with Gaussian noise: noise the crop to `t_start`,
  DDIM back to 0 in `recon_steps` steps, map = squared error averaged over `n_draws` draws.
- "diffusion_simplex": AnoDDPM with simplex noise (Wyatt et al. 2022, sec. 3.2): a second
  DDPM trained to predict multi-octave 2-D simplex noise (`genmed.models.simplex`) instead of
  white noise (`DiffusionConfig(noise="simplex")`); the crop is noised to `t_start` with simplex noise and the
  reverse steps use the model's simplex-noise prediction (deterministic DDIM, so no fresh noise
  is added on the way back; the paper samples DDPM ancestrally with fresh simplex noise).
  `t_start` = 150 was chosen on validation patients (phantom seed + 2000, 46 lesion / 203
  healthy crops; DDPMs of 500 steps): image AUROC at t_start 150 / 250 / 400 was 0.75 / 0.68 /
  0.54 with Gaussian and 0.59 / 0.43 / 0.33 with simplex noise.
- "ensemble": the mean of the `ensemble_of` detectors' crop scores (one per family by
  default: VAE reconstruction, GAN discriminator, AnoDDPM), each standardised by its mean and
  SD on the healthy crops of `ensemble_ref_patients` further lesion-free patients (phantom seed
  + 3000), which no model trains on, so each detector's scale counts alike and a score needs no
  other test crop (an ensemble of detectors: Aggarwal 2013, "Outlier ensembles", sec. 3;
  z-score normalisation before averaging). It reuses its members' models and test scores, so
  they must come before it in `detectors`.
Maps: the signed residual x - x_hat in HU of the abdomen window W400/L40 (HU clipped to
[-160, 240]) is Gaussian-smoothed (`smooth_px`) and then squared (HU^2); the baseline's map is
|smoothed (HU - mean) / SD|. Smoothing the signed residual before squaring averages the white
scan noise away (SD / (2 sqrt(pi) smooth_px) for a pixel-sized correlation) while a lesion's
residual, one sign over the lesion, stays. Maps are zeroed outside the body; a map's crop
score is its maximum. Evaluation as in `genmed.apps.anomaly`:
image AUROC / AUPRC with 95% CIs, pixel best Dice and AUPRO on positive crops, AUROC by lesion
diameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from genmed.apps.common import UNIT_PER_HU, seeded, to_unit
from genmed.data.transforms import ABDOMEN_RANGE_HU
from genmed.errors import UserError, check_choice, check_positive
from genmed.fileio import save_figure, write_json
from genmed.metrics.anomaly import auroc_by_group, image_level, pixel_level
from genmed.models.base import device_of
from genmed.models.diffusion import DiffusionModel
from genmed.train.fitting import Compute

DETECTORS: tuple[str, ...] = ("intensity", "vae_recon", "vae_elbo", "gan", "gan_inversion",
                              "diffusion", "diffusion_simplex", "ensemble")
BODY_HU = -400.0  # pixels above this (after smoothing) are inside the body
MAP_UNITS = {"intensity": "|smoothed (HU - mean) / SD|"}  # every other map: HU^2
SIZE_EDGES_MM = (15.0, 20.0)  # lesion diameter bins: [min, 15), [15, 20), >= 20 mm


@dataclass(frozen=True)
class CropAnomalyConfig:
    """Settings of the kidney-crop anomaly benchmark (pixels, patients, steps)."""

    size: int = 256  # slice side the crops are cut from (px over 360 mm)
    crop: int = 64  # crop side (px, at the slice's spacing: 90 mm at 256 px)
    slices_per_patient: int = 8
    n_train_patients: int = 60  # phantom patients; only their healthy crops are used
    n_test_patients: int = 40  # held-out patients (other seed), each with a lesion
    test_lesion_mm: tuple[float, float] = (10.0, 36.0)  # test lesion 3-D diameters (mm)
    min_lesion_mm: float = 10.0  # positives: in-plane lesion diameter on the slice >= this
    detectors: tuple[str, ...] = DETECTORS
    batch_size: int = 32
    vae_steps: int = 3000
    gan_steps: int = 2000
    # DCGAN width at full resolution (doubling per level down to 4 px). 32: chosen on validation
    # patients (benchmarks/results/apps_anomaly_crops_gan_choice.json, AUROC 0.874 vs 0.850 at 16)
    gan_channels: int = 32
    gan_models: int = 1  # GANs (seeds seed, seed + 1, ...) whose standardised -D(x) is averaged
    diffusion_steps: int = 1500  # each of the two DDPMs (Gaussian and simplex noise)
    diffusion_channels: tuple[int, ...] = (16, 32, 64)  # UNet channels per level
    t_start: int = 150  # AnoDDPM noise level (of T = 1000 steps; 150 > 250 > 400 on validation)
    recon_steps: int = 10  # DDIM steps from t_start back to 0
    n_draws: int = 2  # noise draws averaged in the diffusion maps
    simplex_cell_px: float = 16.0  # simplex lattice spacing of the coarsest octave (px)
    simplex_octaves: int = 4  # octaves, each at twice the frequency of the one before
    simplex_persistence: float = 0.8  # amplitude ratio of successive octaves
    inversion_steps: int = 100  # Adam steps per start (gan_inversion)
    inversion_starts: int = 2  # starting latents per crop: nearest crops of the bank
    inversion_bank: int = 1024  # generated crops the starts are chosen from
    smooth_px: float = 2.0  # Gaussian SD of the map smoothing (px)
    ensemble_of: tuple[str, ...] = ("vae_recon", "gan", "diffusion")  # the ensemble's members
    ensemble_ref_patients: int = 10  # lesion-free patients whose crops standardise each member
    n_boot: int = 1000
    seed: int = 0
    compute: Compute = field(default_factory=lambda: Compute(precision="auto"))

    def __post_init__(self) -> None:
        for d in self.detectors:
            check_choice("detector", d, DETECTORS)
        if not self.detectors:
            raise UserError("detectors must name at least one detector")
        if "ensemble" in self.detectors:
            before = self.detectors[:self.detectors.index("ensemble")]
            missing = [d for d in self.ensemble_of if d not in before or d == "ensemble"]
            if not self.ensemble_of or missing:
                raise UserError(f"the ensemble's members {list(self.ensemble_of)} must be listed in "
                                f"detectors before 'ensemble' (missing: {missing})")
        for name in ("size", "crop", "slices_per_patient", "n_train_patients", "n_test_patients",
                     "batch_size", "vae_steps", "gan_steps", "diffusion_steps", "recon_steps",
                     "n_draws", "gan_channels", "gan_models", "simplex_octaves", "inversion_steps", "inversion_starts",
                     "inversion_bank", "ensemble_ref_patients"):
            check_positive(name, getattr(self, name))
        if self.crop % 8 or not 16 <= self.crop <= self.size:
            raise UserError(f"crop={self.crop} must be a multiple of 8 between 16 and size={self.size}")
        if self.crop & (self.crop - 1):
            raise UserError(f"crop={self.crop} must be a power of two (the GAN's 4 * 2**k)")
        if not 0 < self.t_start < 1000:
            raise UserError(f"t_start={self.t_start} must be in 1..999")
        if self.n_boot < 4:
            raise UserError(f"n_boot={self.n_boot} must be >= 4")
        if not self.min_lesion_mm > 0 or not 0 < self.test_lesion_mm[0] <= self.test_lesion_mm[1]:
            raise UserError(f"min_lesion_mm={self.min_lesion_mm} and test_lesion_mm="
                            f"{self.test_lesion_mm} must be positive, low <= high")
        if self.test_lesion_mm[1] < self.min_lesion_mm:
            raise UserError(f"test_lesion_mm={self.test_lesion_mm} has no lesion >= "
                            f"min_lesion_mm={self.min_lesion_mm}")
        if not (self.simplex_cell_px >= 2 and 0 < self.simplex_persistence <= 1):
            raise UserError(f"simplex_cell_px={self.simplex_cell_px} must be >= 2 and "
                            f"simplex_persistence={self.simplex_persistence} in (0, 1]")
        if self.simplex_cell_px / 2 ** (self.simplex_octaves - 1) < 1:
            raise UserError(f"simplex_octaves={self.simplex_octaves}: the finest octave's lattice "
                            f"({self.simplex_cell_px} / 2**{self.simplex_octaves - 1} px) is under 1 px")
        if self.smooth_px < 0:
            raise UserError(f"smooth_px={self.smooth_px} must be >= 0")


def quick_crop_anomaly_config(**overrides) -> CropAnomalyConfig:
    """Test-suite settings: 32-px crops from 128-px slices, a few steps per model."""
    base = dict(size=128, crop=32, slices_per_patient=6, n_train_patients=6, n_test_patients=6,
                batch_size=8, vae_steps=3, gan_steps=2, diffusion_steps=2,
                diffusion_channels=(16, 16, 32), recon_steps=2, n_draws=1, simplex_cell_px=8.0,
                simplex_octaves=3, inversion_steps=2, inversion_bank=16, n_boot=8,
                ensemble_ref_patients=3, compute=Compute(precision="fp32"))
    return CropAnomalyConfig(**{**base, **overrides})


def reconstruct_from_noise(model: DiffusionModel, x: Tensor, noise: Tensor, t_start: int,
                           steps: int) -> Tensor:
    """AnoDDPM partial reconstruction: x_t = q(x_t | x_0 = x) with the given `noise`
    (Ho et al. 2020, eq. 4), then deterministic DDIM (Song et al. 2021) from t_start to 0."""
    tt = torch.full((x.shape[0],), int(t_start), dtype=torch.long, device=x.device)
    xt = model.q_sample(x, tt, noise)
    return model.denoise_from(xt, int(t_start), min(steps, int(t_start) + 1), "ddim")


# ---------------------------------------------------------------------------- data


@dataclass
class KidneyCrops:
    """N kidney crops in HU (N, c, c), their lesion masks (bool), the in-plane lesion diameter
    of the source slice (mm, 0 without lesion pixels), patient id, scan noise (HU), the index
    of the source slice among the rendered ones and the crop's (row, column) origin in it (px;
    negative where the crop is padded)."""

    hu: np.ndarray
    lesion: np.ndarray
    lesion_mm: np.ndarray
    patient_id: np.ndarray
    noise_hu: np.ndarray
    slice_id: np.ndarray
    origin: np.ndarray

    def subset(self, keep: np.ndarray) -> KidneyCrops:
        return KidneyCrops(self.hu[keep], self.lesion[keep], self.lesion_mm[keep],
                           self.patient_id[keep], self.noise_hu[keep], self.slice_id[keep],
                           self.origin[keep])


Segment = Callable[[np.ndarray], np.ndarray]  # HU slices (N, H, W) -> kidney masks (N, H, W)


def kidney_crops(n_patients: int, cfg: CropAnomalyConfig, seed: int, segment: Segment | None = None,
                 **phantom: Any) -> KidneyCrops:
    """One crop per kidney side and slice showing that kidney, from phantom slices at
    `cfg.size` px (`genmed.data.crops.crop_kidneys`, padded with air, -1000 HU), placed by the
    phantom's kidney masks or, with `segment`, by the masks it predicts from the slices."""
    return _crops_of(_slices(n_patients, cfg, seed, **phantom), cfg, segment)


def _slices(n_patients: int, cfg: CropAnomalyConfig, seed: int, **phantom: Any):
    from genmed.data.phantom import PhantomConfig, make_slices

    return make_slices(n_patients, cfg.slices_per_patient, PhantomConfig(size=cfg.size, **phantom), seed)


def _crops_of(s, cfg: CropAnomalyConfig, segment: Segment | None) -> KidneyCrops:
    from genmed.data.crops import crop_kidneys

    k = cfg.slices_per_patient
    gap, sp = (float(v) for v in s.spacing_mm)  # (z gap, in-plane) mm
    kidney = s.kidney_mask if segment is None else segment(s.image)
    hu, les, mm, pid, noise, sid, origin = [], [], [], [], [], [], []
    for p in range(len(s.image) // k):
        sl = slice(p * k, (p + 1) * k)
        for c in crop_kidneys(s.image[sl], kidney[sl], s.lesion_mask[sl],
                              spacing_mm=(gap, sp, sp), size=cfg.crop, pad_value=-1000.0):
            for j in range(c.image.shape[0]):
                if not c.kidney_mask[j].any():
                    continue
                src = p * k + c.z0 + j
                has = bool(c.lesion_mask[j].any())
                hu.append(c.image[j])
                les.append(c.lesion_mask[j].astype(bool))
                mm.append(float(s.lesion_diameter_mm[src]) if has else 0.0)
                pid.append(s.patient_id[src])
                noise.append(float(s.noise_hu[src]))
                sid.append(src)
                origin.append((c.r0, c.c0))
    if not hu:
        raise UserError("no kidney crops: no slice shows a kidney")
    return KidneyCrops(np.stack(hu).astype(np.float32), np.stack(les), np.asarray(mm, np.float32),
                       np.asarray(pid), np.asarray(noise, np.float32), np.asarray(sid),
                       np.asarray(origin, np.int64).reshape(-1, 2))


def lesion_slices(n_patients: int, cfg: CropAnomalyConfig, seed: int, segment: Segment | None = None,
                  lesion_prob: float = 0.5) -> tuple[KidneyCrops, np.ndarray, Any]:
    """Whole-slice anomaly detection through kidney crops: the crops of every slice of
    `n_patients` phantom patients, a share `lesion_prob` of whom have a lesion of
    `test_lesion_mm` (crops placed by the phantom's masks or `segment`'s), and one label per
    rendered slice: 1 = a lesion of >= min_lesion_mm in plane, 0 = no lesion pixels, -1 = a
    smaller lesion (left out); and the rendered slices (`PhantomSlices`). A lesion shows on most
    slices of its patient, so the healthy slices come mostly from the patients without one."""
    s = _slices(n_patients, cfg, seed, lesion_prob=lesion_prob, lesion_diameter_mm=cfg.test_lesion_mm)
    has = s.lesion_mask.reshape(len(s.lesion_mask), -1).any(1)
    y = np.where(~has, 0, np.where(s.lesion_diameter_mm >= cfg.min_lesion_mm, 1, -1))
    return _crops_of(s, cfg, segment), y, s


def slice_scores(crop_scores: np.ndarray, slice_id: np.ndarray, n_slices: int) -> np.ndarray:
    """(n_slices,) the most anomalous crop of each slice (max over its kidney crops); -inf for
    a slice without crops (no kidney found: nothing flagged)."""
    out = np.full(n_slices, -np.inf)
    np.maximum.at(out, slice_id, crop_scores)
    return out


def lesion_crop_set(n_patients: int, cfg: CropAnomalyConfig, seed: int) -> tuple[KidneyCrops, np.ndarray]:
    """(crops of `n_patients` phantom patients who all have a lesion of `test_lesion_mm`,
    labels: True = lesion >= min_lesion_mm); crops with a smaller visible lesion are left out.
    The test set (seed + 1000) and the validation set of the GAN choice (seed + 2000)."""
    crops = kidney_crops(n_patients, cfg, seed, lesion_prob=1.0, lesion_diameter_mm=cfg.test_lesion_mm)
    has = crops.lesion.any((1, 2))
    kept = crops.subset(~has | (crops.lesion_mm >= cfg.min_lesion_mm))
    return kept, kept.lesion.any((1, 2))


def crop_sets(cfg: CropAnomalyConfig) -> tuple[KidneyCrops, KidneyCrops, np.ndarray]:
    """(healthy training crops, test crops, test labels: True = lesion >= min_lesion_mm)."""
    tr = kidney_crops(cfg.n_train_patients, cfg, cfg.seed)
    train = tr.subset(~tr.lesion.any((1, 2)))
    test, y = lesion_crop_set(cfg.n_test_patients, cfg, cfg.seed + 1000)
    if y.all() or not y.any():
        raise UserError(f"the test set has {int(y.sum())} lesion and {int((~y).sum())} healthy "
                        "crops; it needs both: use more test patients")
    if len(train.hu) < 2:
        raise UserError("fewer than 2 healthy training crops: use more training patients")
    return train, test, y


# ---------------------------------------------------------------------------- detectors


def _smooth(maps: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(maps, sigma=(0, sigma, sigma)) if sigma > 0 else maps


def _model_key(cfg: CropAnomalyConfig) -> dict[str, Any]:
    """The config fields a trained detector model depends on (not which detectors score)."""
    skip = ("detectors", "ensemble_of", "ensemble_ref_patients", "n_boot")
    return {k: v for k, v in asdict(cfg).items() if k not in skip}


def _train(family: str, x: Tensor, cfg: CropAnomalyConfig, seed: int, run: Path | None = None):
    """Train `family` ("vae", "gan", "diffusion" or "diffusion_simplex") on healthy crops `x`
    with the registry's "short" recipe of its family (the engine: AdamW, warm-up, cosine,
    the recipe's EMA, bf16 autocast where fast), weights and data order from `seed`.

    With `run`, the trained model is kept there (an engine run folder plus `done.json`
    naming the config) and a later call with the same config loads it instead of training,
    so a benchmark killed part-way resumes at the first model it had not finished, and
    that model's training at its newest checkpoint (`started.json` names its config)."""
    from genmed.models import build_model
    from genmed.train import DictDataset

    data, c = DictDataset(image=x), cfg.crop
    torch.manual_seed(seed)
    if family == "vae":
        model = build_model("vae", size=c, channels=(32, 64, 64), latent_dim=64,
                            kl_warmup_steps=cfg.vae_steps // 2, likelihood_sigma=0.1)
        steps = cfg.vae_steps
    elif family == "gan":
        model, steps = build_model("gan", size=c, base_channels=cfg.gan_channels), cfg.gan_steps
    else:
        kw = dict(size=c, channels=cfg.diffusion_channels,
                  attention_levels=(False,) * len(cfg.diffusion_channels),
                  norm_num_groups=min(16, *cfg.diffusion_channels))
        if family == "diffusion":
            model = build_model("diffusion", **kw)
        else:
            model = build_model("diffusion", noise="simplex", simplex_cell_px=cfg.simplex_cell_px,
                                simplex_octaves=cfg.simplex_octaves,
                                simplex_persistence=cfg.simplex_persistence, **kw)
        steps = cfg.diffusion_steps
    if run is None:
        return cfg.compute.fit(model, data, steps=steps, seed=seed, batch_size=cfg.batch_size)
    import json
    import shutil

    from genmed.train import load_run
    from genmed.train.precision import resolve_device

    key = json.loads(json.dumps({"seed": seed, **_model_key(cfg)}))
    done, started = run / "done.json", run / "started.json"

    def same(path: Path) -> bool:
        return path.is_file() and json.loads(path.read_text()) == key

    if same(done):
        return load_run(run, model=model, device=str(resolve_device(cfg.compute.device)))[0].eval()
    resume = same(started) and any((run / "checkpoints").glob("step-*.json"))
    if run.exists() and not resume:
        shutil.rmtree(run)  # an outdated run of this detector, or one killed before a checkpoint
    write_json(started, key)
    trained = cfg.compute.fit(model, data, steps=steps, seed=seed, batch_size=cfg.batch_size, out=run,
                              resume=resume)
    write_json(done, key)
    return trained


def _sq_residual(x: Tensor, rec: Tensor, cfg: CropAnomalyConfig) -> np.ndarray:
    """(N, c, c) squared smoothed signed residual (HU^2) of reconstructions `rec` of `x`."""
    res = (x.float().cpu() - rec.float().cpu())[:, 0].numpy() / UNIT_PER_HU
    return _smooth(res, cfg.smooth_px) ** 2


def gan_inversion(model, x: Tensor, cfg: CropAnomalyConfig) -> Tensor:
    """(N, 1, c, c) G(z*) with z* = argmin ||G(z) - x||^2 over `inversion_starts` starts per
    crop (the nearest of `inversion_bank` generated crops), each refined by `inversion_steps`
    Adam steps (lr 0.05; AnoGAN, Schlegl et al. 2017, sec. 2.2, without the D-feature term)."""
    dev, k = device_of(model), cfg.inversion_starts
    g = seeded(cfg.seed, dev)
    gen = model.generator.eval()
    for p in gen.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        zb = torch.randn((cfg.inversion_bank, model.config.latent_dim), generator=g, device=dev)
        bank = torch.cat([gen(z, None).float() for z in zb.split(256)]).flatten(1)
    outs = []
    for xb in x.to(dev).split(64):
        with torch.no_grad():
            d = torch.cdist(xb.flatten(1), bank)  # (b, bank)
            idx = d.topk(min(k, len(bank)), largest=False).indices  # (b, k)
        z = zb[idx].reshape(-1, zb.shape[1]).clone().requires_grad_(True)  # (b k, latent)
        target = xb.repeat_interleave(idx.shape[1], 0)
        opt = torch.optim.Adam([z], lr=0.05)
        for _ in range(cfg.inversion_steps):
            opt.zero_grad(set_to_none=True)
            (gen(z, None).float() - target).pow(2).flatten(1).mean(1).sum().backward()
            opt.step()
        with torch.no_grad():
            rec = gen(z, None).float().view(len(xb), idx.shape[1], *xb.shape[1:])
            err = (rec - xb[:, None]).pow(2).flatten(2).mean(2)  # (b, k)
            outs.append(rec[torch.arange(len(xb)), err.argmin(1)])
    for p in gen.parameters():
        p.requires_grad_(True)
    return torch.cat(outs)


def _score(d: str, model: Any, cfg: CropAnomalyConfig, train_hu: np.ndarray, test_hu: np.ndarray,
           x: Tensor) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(raw map (N, c, c) or None, crop score (N,) or None) of detector `d`; networks run
    under the training precision's autocast (bf16 where fast), errors in float32."""
    from genmed.train.precision import resolve_numerics

    with resolve_numerics(cfg.compute.device, cfg.compute.precision).autocast():
        return _score_in(d, model, cfg, train_hu, test_hu, x)


def _score_in(d: str, model: Any, cfg: CropAnomalyConfig, train_hu: np.ndarray,
              test_hu: np.ndarray, x: Tensor) -> tuple[np.ndarray | None, np.ndarray | None]:
    if d == "intensity":
        mu, sd = train_hu.mean(0), train_hu.std(0) + 10.0  # +10 HU: floor on the SD
        return np.abs(_smooth((test_hu - mu) / sd, cfg.smooth_px)), None
    dev = device_of(model)
    if d == "gan_inversion":
        return _sq_residual(x, gan_inversion(model, x, cfg), cfg), None
    maps, scores = [], []
    with torch.no_grad():
        for i, xb in enumerate(x.to(dev).split(64)):
            g = seeded(cfg.seed + i, dev)
            if d == "vae_recon":
                maps.append(_sq_residual(xb, model.reconstruct(xb), cfg))
            elif d == "vae_elbo":
                scores.append(model.anomaly_score(xb, kind="elbo", generator=g).float().cpu())
            elif d == "gan":
                scores.append(model.anomaly_score(xb).reshape(-1).float().cpu())
            else:
                draws = []
                for _ in range(cfg.n_draws):
                    noise = model.noise_like(xb, g)  # Gaussian or simplex, as trained
                    rec = reconstruct_from_noise(model, xb, noise, cfg.t_start, cfg.recon_steps)
                    draws.append(_sq_residual(xb, rec, cfg))
                maps.append(np.mean(draws, axis=0))
    if maps:
        return np.concatenate(maps), None
    return None, torch.cat(scores).numpy()


def gan_score(gans: list, cfg: CropAnomalyConfig, train_hu: np.ndarray, test_hu: np.ndarray,
               x_tr: Tensor, x_te: Tensor) -> np.ndarray:
    """(N,) -D(x) of one GAN; of several, the mean of each one's -D(x) standardised by its
    mean and SD on the healthy training crops (so no discriminator's scale dominates)."""
    if len(gans) == 1:
        return _score("gan", gans[0], cfg, train_hu, test_hu, x_te)[1]
    return standardised_mean([_score("gan", m, cfg, train_hu, test_hu, x_te)[1] for m in gans],
                             [_score("gan", m, cfg, train_hu, train_hu, x_tr)[1] for m in gans])


def detect(cfg: CropAnomalyConfig, train_hu: np.ndarray, test_hu: np.ndarray,
           log=lambda s: None, models_dir: Path | None = None) -> dict[str, dict]:
    """Train each detector's model on healthy crops `train_hu` (N, c, c) HU and score
    `test_hu`. Returns {detector: {"scores": (M,), "maps": (M, c, c) or None, "seconds"}};
    a model's training time is counted in the first detector that uses it. With `models_dir`,
    trained models are kept there and reused (`_train`)."""
    x_tr = to_unit(train_hu)
    family_of = {"vae_recon": "vae", "vae_elbo": "vae", "gan_inversion": "gan"}
    models: dict[str, Any] = {}
    out: dict[str, dict] = {}
    for d in cfg.detectors:
        t0 = time.perf_counter()
        family = family_of.get(d, d)
        if family not in ("intensity", "ensemble") and family not in models:
            n = cfg.gan_models if family == "gan" else 1
            log(f"training {family}" + (f" x {n}" if n > 1 else ""))
            models[family] = [_train(family, x_tr, cfg, cfg.seed + k,
                                     None if models_dir is None else models_dir / f"{family}_{k}")
                              for k in range(n)]
        log(f"scoring {d}")
        if d == "ensemble":
            maps, scores = None, _ensemble(cfg, out, models, family_of, train_hu, x_tr)
        else:
            maps, scores = _crop_scores(d, models.get(family), cfg, train_hu, test_hu, x_tr)
        out[d] = {"scores": np.asarray(scores, np.float64), "maps": maps,
                  "seconds": time.perf_counter() - t0}
        log(f"{d}: {out[d]['seconds']:.0f} s")
    return out


def _crop_scores(d: str, models: list | None, cfg: CropAnomalyConfig, train_hu: np.ndarray,
                 hu: np.ndarray, x_tr: Tensor) -> tuple[np.ndarray | None, np.ndarray]:
    """(map (N, c, c) zeroed outside the body or None, crop score (N,)) of detector `d` on
    crops `hu` (N, c, c) HU; a map's crop score is its maximum."""
    x = to_unit(hu)
    if d == "gan":
        return None, gan_score(models, cfg, train_hu, hu, x_tr, x)
    maps, scores = _score(d, models[0] if models else None, cfg, train_hu, hu, x)
    if maps is None:
        return None, scores
    maps = maps.astype(np.float32) * (_smooth(hu.astype(np.float32), 1.0) > BODY_HU)
    return maps, maps.reshape(len(maps), -1).max(1)  # the most anomalous spot


def _ensemble(cfg: CropAnomalyConfig, out: dict[str, dict], models: dict[str, Any],
              family_of: dict[str, str], train_hu: np.ndarray, x_tr: Tensor) -> np.ndarray:
    """(M,) the `ensemble_of` members' test scores, standardised on the healthy crops of
    `ensemble_ref_patients` lesion-free patients (seed + 3000), averaged."""
    ref = kidney_crops(cfg.ensemble_ref_patients, cfg, cfg.seed + 3000, lesion_prob=0.0).hu
    refs = [_crop_scores(d, models.get(family_of.get(d, d)), cfg, train_hu, ref, x_tr)[1]
            for d in cfg.ensemble_of]
    return standardised_mean([out[d]["scores"] for d in cfg.ensemble_of], refs)


def standardised_mean(scores: list[np.ndarray], refs: list[np.ndarray]) -> np.ndarray:
    """Mean over detectors of (scores - mean(ref)) / SD(ref): each detector's (M,) scores in
    units of its SD on reference (healthy) crops, so no detector's scale dominates."""
    z = [(np.asarray(s, np.float64) - r.mean()) / max(float(r.std()), 1e-12)
         for s, r in zip(scores, refs, strict=True)]
    return np.mean(z, axis=0)


def run_crop_anomaly(cfg: CropAnomalyConfig = CropAnomalyConfig(), out: str | Path | None = None,
                     log=lambda s: None) -> dict[str, Any]:
    """Train on healthy kidney crops, score lesion (>= min_lesion_mm) vs healthy test crops.

    Returns {"config", "train_healthy_crops", "test": counts, "size_bins_mm", "detectors":
    {name: {"image": AUROC/AUPRC with CIs, "pixel": best Dice/AUPRO or None, "by_size": [...],
    "seconds"}}}; with `out` writes anomaly_crops.json and anomaly_crops.png, and keeps the
    trained models in out/models, which a rerun with the same config reuses."""
    train, test, y = crop_sets(cfg)
    log(f"{len(train.hu)} healthy training crops; test {int(y.sum())} lesion / {int((~y).sum())} healthy")
    res = detect(cfg, train.hu, test.hu, log, None if out is None else Path(out) / "models")
    lo = cfg.min_lesion_mm
    edges = [e for e in SIZE_EDGES_MM if e > lo]
    names = [f"{a:g}-{b:g}" for a, b in zip([lo, *edges], edges, strict=False)] + [f">={([lo, *edges])[-1]:g}"]
    size_bin = np.where(y, np.digitize(test.lesion_mm, edges), -1)
    result: dict[str, Any] = {
        "config": asdict(cfg), "train_healthy_crops": len(train.hu),
        "spacing_mm": 360.0 / cfg.size,
        "test": {"n": len(y), "n_lesion": int(y.sum()), "n_healthy": int((~y).sum()),
                 "patients": len(np.unique(test.patient_id))},
        "size_bins_mm": names, "map_units": {d: MAP_UNITS.get(d, "(smoothed residual)^2 (HU^2, W400/L40)")
                                             for d, r in res.items() if r["maps"] is not None},
        "detectors": {}}
    for d, r in res.items():
        result["detectors"][d] = {
            "image": image_level(r["scores"], y, cfg.n_boot, cfg.seed),
            "pixel": None if r["maps"] is None else pixel_level(r["maps"][y], test.lesion[y]),
            "by_size": auroc_by_group(r["scores"], y, size_bin, max(2, cfg.n_boot // 2), cfg.seed),
            "seconds": r["seconds"]}
    if out is not None:
        out = Path(out)
        write_json(out / "anomaly_crops.json", result)
        save_figure(maps_figure(test, y, res, cfg), out / "anomaly_crops.png")
    return result


def maps_figure(test: KidneyCrops, y: np.ndarray, res: dict, cfg: CropAnomalyConfig, n: int = 4):
    """Rows: lesion crops spread over lesion size; columns: crop (HU), crop with the lesion
    outlined, each detector's map over the crop (one colour scale per detector)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pos = np.flatnonzero(y)
    order = pos[np.argsort(test.lesion_mm[pos])]
    idx = order[np.unique(np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int))]
    with_maps = [d for d, r in res.items() if r["maps"] is not None]
    cols = 2 + len(with_maps)
    lo, hi = ABDOMEN_RANGE_HU
    fig, ax = plt.subplots(len(idx), cols, figsize=(1.75 * cols, 1.75 * len(idx) + 1.0),
                           squeeze=False)
    for i, k in enumerate(idx):
        im = ax[i, 0].imshow(test.hu[k], cmap="gray", vmin=lo, vmax=hi)
        ax[i, 0].set_ylabel(f"{test.lesion_mm[k]:.0f} mm", fontsize=7)
        ax[i, 1].imshow(test.hu[k], cmap="gray", vmin=lo, vmax=hi)
        ax[i, 1].contour(test.lesion[k], levels=[0.5], colors="cyan", linewidths=0.8)
        for j, d in enumerate(with_maps):
            m = res[d]["maps"]
            a = ax[i, 2 + j]
            a.imshow(test.hu[k], cmap="gray", vmin=lo, vmax=hi)
            mi = a.imshow(np.ma.masked_less_equal(m[k], 0), cmap="inferno", alpha=0.7, vmin=0,
                          vmax=float(np.percentile(m[idx], 99.5)) or 1.0)
            a.contour(test.lesion[k], levels=[0.5], colors="cyan", linewidths=0.6)
            if i == len(idx) - 1:
                fig.colorbar(mi, ax=ax[:, 2 + j].tolist(), orientation="horizontal", fraction=0.04,
                             pad=0.02).set_label(MAP_UNITS.get(d, "smoothed residual² (HU²)"), fontsize=6)
    fig.colorbar(im, ax=ax[:, :2].ravel().tolist(), orientation="horizontal", fraction=0.04,
                 pad=0.02).set_label(f"HU (window W{hi - lo:.0f}/L{(hi + lo) / 2:.0f})", fontsize=6)
    for j, title in enumerate(["crop", "lesion (cyan)", *with_maps]):
        ax[0, j].set_title(title, fontsize=7)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    fig.suptitle(f"Kidney crops {cfg.crop} px at {360.0 / cfg.size:.2f} mm/px, lesions >= "
                 f"{cfg.min_lesion_mm:g} mm; residuals smoothed (SD {cfg.smooth_px:g} px)", fontsize=8)
    return fig
