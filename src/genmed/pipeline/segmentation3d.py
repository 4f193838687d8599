"""3D kidney segmentation of phantom CT volumes: the registry's `Segmenter` with `spatial_dims=3`
(MONAI 3D residual UNet, Dice + cross-entropy) trained by the one engine on cubic patches.

This is how kidney CT is segmented in practice (KiTS19/21, Heller et al. 2021: nnU-Net-style
3D patch training, sliding-window inference). One volume per patient (`make_volumes`,
(D, H, W) in HU at `spacing_mm` = (z, y, x) mm), split by patient, mapped to [-1, 1] through
the abdomen window. Training samples one `patch`^3 crop per volume per item (MONAI
`RandCropByPosNegLabel`, half centred on a kidney voxel) with random left-right flips and
minimises Dice + cross-entropy (Milletari et al. 2016, V-Net) through `Compute.fit`, so it runs
on CPU or GPU, in bf16, with checkpoints; an interrupted run folder is resumed from its newest
checkpoint (`genmed.train.resume`). Inference tiles the whole volume with
`sliding_window_inference` (Gaussian-weighted overlap), so volumes larger than the patch work
unchanged, then keeps the two largest 3D connected components (the kidneys). Per-volume Dice
comes from `monai.metrics.DiceMetric`; kidney volumes (mL) use the voxel spacing, so
anisotropic volumes (z_spacing_mm != spacing_mm) are measured correctly.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from genmed.errors import UserError, check_choice
from genmed.models import Segmenter
from genmed.train.fitting import Compute

if TYPE_CHECKING:
    from genmed.data.phantom import PhantomConfig

Spacing = tuple[float, float, float]  # (z, y, x) voxel spacing in mm


@dataclass(frozen=True)
class Seg3DConfig:
    """3D segmenter settings (voxels, optimiser steps); the optimiser is the registry's
    segmenter recipe (AdamW 3e-3, cosine decay, no warm-up)."""

    net: Literal["unet", "basicunet"] = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128)  # UNet channels per level (stride 2 each)
    norm: Literal["batch", "instance"] = "batch"  # UNet normalisation
    patch: int = 48  # cubic training patch and sliding-window roi (voxels per side)
    steps: int = 5000  # optimiser steps (one patch per volume in the batch per step)
    batch_size: int = 2  # volumes (hence patches) per step
    overlap: float = 0.25  # sliding-window overlap fraction
    components: int = 2  # keep this many largest 3D connected components (0: keep all)

    def __post_init__(self) -> None:
        check_choice("seg3d net", self.net, ("unet", "basicunet"))
        check_choice("seg3d norm", self.norm, ("batch", "instance"))
        levels = 2 ** (len(self.channels) - 1)
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise UserError(f"seg3d channels={self.channels}: give >= 2 positive channel counts")
        if self.patch < 16 or self.patch % levels:
            raise UserError(f"seg3d patch={self.patch} must be >= 16 voxels and divisible by "
                            f"{levels} (the UNet halves it {len(self.channels) - 1} times)")
        if self.steps < 1:
            raise UserError(f"seg3d steps={self.steps} must be >= 1")
        if self.batch_size < 2 and self.norm == "batch":
            raise UserError(f"seg3d batch_size={self.batch_size}: batch norm needs >= 2 "
                            "(or norm='instance')")
        if self.batch_size < 1:
            raise UserError(f"seg3d batch_size={self.batch_size} must be >= 1")
        if not 0 <= self.overlap < 1:
            raise UserError(f"seg3d overlap={self.overlap} must be in [0, 1)")
        if self.components < 0:
            raise UserError(f"seg3d components={self.components} must be >= 0")


def build_segmenter3d(cfg: Seg3DConfig, size: int) -> Segmenter:
    """A 2-class (background, kidney) 3D segmenter of 1-channel volumes `size` voxels wide."""
    from genmed.models import build_model

    return build_model("segmenter", spatial_dims=3, size=size, out_channels=2,
                       backbone=cfg.net, channels=cfg.channels, norm=cfg.norm, patch=cfg.patch,
                       overlap=cfg.overlap, components=cfg.components, augment="flip")


def as_volumes(volumes: np.ndarray) -> torch.Tensor:
    """(N, D, H, W) numpy -> (N, 1, D, H, W) float32 tensor."""
    volumes = np.asarray(volumes)
    if volumes.ndim != 4:
        raise UserError(f"expected volumes (N, D, H, W), got shape {volumes.shape}")
    return torch.from_numpy(np.ascontiguousarray(volumes, np.float32))[:, None]


def _has_checkpoint(run: Path) -> bool:
    from genmed.train import checkpoint as ckpt

    return bool(ckpt.list_checkpoints(run / "checkpoints"))


def train_segmenter3d(images: np.ndarray, masks: np.ndarray, cfg: Seg3DConfig = Seg3DConfig(),
                      seed: int = 0, compute: Compute = Compute(),
                      out: str | Path | None = None, resume: bool = False) -> Segmenter:
    """Train on (N, D, H, W) volumes in [-1, 1] and binary kidney masks for `cfg.steps` steps.

    `out` keeps the engine's run folder; with `resume` and a checkpoint already in `out`, the
    run continues from it to `cfg.steps` (same data required; the engine restores weights,
    optimiser and RNG, so the crops repeat) instead of starting again; a finished run is only
    reloaded."""
    from genmed.train import DictDataset
    from genmed.train.run import load_run
    from genmed.train.run import resume as resume_run

    x = as_volumes(images)
    if len(x) < 2:
        raise UserError("the 3D segmenter needs at least two training volumes")
    if np.asarray(masks).shape != tuple(np.asarray(images).shape):
        raise UserError(f"masks {np.asarray(masks).shape} do not match volumes {x.shape[:1] + x.shape[2:]}")
    if min(x.shape[2:]) < cfg.patch:
        raise UserError(f"volumes {tuple(x.shape[2:])} are smaller than the seg3d patch {cfg.patch}")
    batch = min(cfg.batch_size, len(x))
    data = DictDataset(image=x, target=torch.from_numpy(np.asarray(masks, np.int64))[:, None])
    if out is not None and resume and _has_checkpoint(Path(out)):
        result = resume_run(out, steps=cfg.steps, dataset=data)  # none left: no training
        model, _ = load_run(out, device=result.device)
        if not isinstance(model, Segmenter):
            raise UserError(f"{out}: holds a {model.family}, not a segmenter")
        return model.eval()
    torch.manual_seed(seed)  # the weights' initialisation
    model = build_segmenter3d(cfg, max(x.shape[2:]))
    return compute.fit(model, data, steps=cfg.steps, seed=seed, recipe="default",
                       batch_size=batch, out=out)


def predict_masks3d(seg: Segmenter, volumes: np.ndarray) -> np.ndarray:
    """Binary kidney masks (N, D, H, W) uint8 of volumes in [-1, 1], by sliding-window
    inference over each whole volume, then the largest connected components."""
    x = as_volumes(volumes)
    return seg.predict(x, batch_size=1)[:, 0].numpy().astype(np.uint8)


def dice_per_volume(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of binary masks per volume (N,), via MONAI `DiceMetric` on (N, 1, D, H, W);
    1.0 when both are empty."""
    from genmed.pipeline.segmentation import dice_per_slice

    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 4:
        raise UserError(f"dice_per_volume needs two (N, D, H, W) masks, got {pred.shape} and {truth.shape}")
    return dice_per_slice(pred, truth)


def volume_ml(masks: np.ndarray, spacing_mm: Spacing) -> np.ndarray:
    """Foreground volume per mask (N,) in mL: voxel count x z x y x x spacing (mm^3) / 1000."""
    voxel_mm3 = float(np.prod(spacing_mm))
    return (np.asarray(masks) > 0).reshape(len(masks), -1).sum(1) * voxel_mm3 / 1000.0


def evaluate_segmenter3d(seg: Segmenter, images: np.ndarray, masks: np.ndarray,
                         spacing_mm: Spacing, patient_ids: np.ndarray | list[str] | None = None,
                         seed: int = 0) -> dict:
    """Per-patient Dice and kidney volumes (mL) of one volume per patient, and the mean Dice
    with a 95% percentile bootstrap CI over patients (`genmed.metrics.stats.bootstrap_ci`)."""
    from genmed.metrics.stats import bootstrap_ci

    pred = predict_masks3d(seg, images)
    dice = dice_per_volume(pred, masks)
    ids = [str(i) for i in (patient_ids if patient_ids is not None else range(len(dice)))]
    true_ml, pred_ml = volume_ml(masks, spacing_mm), volume_ml(pred, spacing_mm)
    return {
        "n_patients": len(dice),
        "kidney_dice": bootstrap_ci(np.mean, dice, seed=seed).to_dict(),
        "volume_abs_error_ml": float(np.abs(pred_ml - true_ml).mean()),
        "per_patient": [{"patient_id": i, "dice": round(float(d), 4), "kidney_ml": round(float(t), 1),
                         "pred_ml": round(float(p), 1)}
                        for i, d, t, p in zip(ids, dice, true_ml, pred_ml, strict=True)],
    }


@dataclass(frozen=True)
class Seg3DRunConfig:
    """A 3D segmentation experiment on phantom volumes: data, patient split, model, compute."""

    n_patients: int = 80  # phantom patients, one volume each
    size: int = 96  # in-plane voxels per side (H = W); spacing = 360 mm / size
    depth: int = 48  # slices per volume (D)
    z_spacing_mm: float | None = None  # slice spacing (mm); None: isotropic, 360 mm / size
    test_fraction: float = 0.25  # fraction of patients held out for testing
    seed: int = 0  # phantom, split, initialisation and training draws
    seg: Seg3DConfig = field(default_factory=Seg3DConfig)
    compute: Compute = field(default_factory=Compute)

    def __post_init__(self) -> None:
        if not 0 < self.test_fraction < 1:
            raise UserError(f"seg3d test_fraction={self.test_fraction} must be in (0, 1)")
        n_test = round(self.n_patients * self.test_fraction)
        if self.n_patients - n_test < 2 or n_test < 1:
            raise UserError(f"seg3d n_patients={self.n_patients} with test_fraction="
                            f"{self.test_fraction}: need >= 2 training and >= 1 test patients")
        if min(self.size, self.depth) < self.seg.patch:
            raise UserError(f"seg3d volumes {self.depth}x{self.size}x{self.size} are smaller than "
                            f"the patch {self.seg.patch}")
        if self.seed < 0:
            raise UserError(f"seg3d seed={self.seed} must be >= 0")
        self.phantom()  # a bad size, depth or spacing fails here, naming the value

    def phantom(self) -> PhantomConfig:
        """The `PhantomConfig` of the volumes (a UserError names a bad size, depth or spacing)."""
        from genmed.data.phantom import PhantomConfig

        base = PhantomConfig(size=self.size, depth=self.depth)
        if self.z_spacing_mm is None:
            return dataclasses.replace(base, z_spacing_mm=base.spacing_mm)
        return dataclasses.replace(base, z_spacing_mm=self.z_spacing_mm)


def quick_config3d(seed: int = 0, compute: Compute = Compute()) -> Seg3DRunConfig:
    """Small settings for tests and `--quick`: 8 patients at 32^3 (11.25 mm voxels), 16^3
    patches, a small UNet, 300 steps (about 7 s on one CPU core; test Dice about 0.75)."""
    return Seg3DRunConfig(n_patients=8, size=32, depth=32, test_fraction=0.34, seed=seed,
                          compute=compute,
                          seg=Seg3DConfig(channels=(16, 32, 64), patch=16, steps=300, batch_size=4))


def split_volumes(patient_ids: np.ndarray, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """{"train", "test"}: volume indices, by patient (`genmed.data.splits.patient_split`)."""
    from genmed.data.splits import patient_split

    return patient_split(patient_ids, {"train": 1 - test_fraction, "test": test_fraction}, seed=seed)


def run_segmentation3d(cfg: Seg3DRunConfig, out: str | Path, resume: bool = False,
                       log: Callable[[str], None] = lambda s: None) -> dict:
    """Make the volumes, split by patient, train into OUT/segmenter3d (resumed from its newest
    checkpoint with `resume`), evaluate the test patients; writes OUT/config.json and
    OUT/metrics.json (test Dice with a 95% patient-bootstrap CI, per-patient Dice and kidney
    volumes, spacing, seconds) and returns the metrics."""
    from genmed.config import save_config, to_dict
    from genmed.data.phantom import make_volumes
    from genmed.data.transforms import hu_to_unit
    from genmed.fileio import write_json

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if not resume and _has_checkpoint(out / "segmenter3d"):
        raise UserError(f"{out}: already holds a 3D segmentation run; resume it or use a new folder")
    if (out / "config.json").is_file() and resume:  # the same data and model; any device
        saved = json.loads((out / "config.json").read_text())
        if {**saved, "compute": None} != {**to_dict(cfg), "compute": None}:
            raise UserError(f"{out}: holds a run of another config; resume it with the same "
                            "settings or use a new folder")
    t0 = time.perf_counter()
    vols = make_volumes(cfg.n_patients, cfg.phantom(), seed=cfg.seed)
    images = hu_to_unit(vols.image).astype(np.float32)
    masks = (vols.kidney_mask > 0).astype(np.uint8)
    splits = split_volumes(vols.patient_id, cfg.test_fraction, cfg.seed)
    seconds = {"data": time.perf_counter() - t0}
    log(f"{cfg.n_patients} volumes {images.shape[1:]} at {vols.spacing_mm} mm; "
        + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.json")
    tr, te = splits["train"], splits["test"]
    t = time.perf_counter()
    seg = train_segmenter3d(images[tr], masks[tr], cfg.seg, seed=cfg.seed, compute=cfg.compute,
                            out=out / "segmenter3d", resume=resume)
    seconds["train"] = time.perf_counter() - t
    log(f"trained {cfg.seg.steps} steps in {seconds['train']:.0f} s")
    t = time.perf_counter()
    test = evaluate_segmenter3d(seg, images[te], masks[te], vols.spacing_mm,
                                vols.patient_id[te], seed=cfg.seed)
    seconds["predict_test"] = time.perf_counter() - t
    metrics = {"config": to_dict(cfg), "spacing_mm": list(vols.spacing_mm),
               "volume_shape": list(images.shape[1:]),
               "splits": {k: [str(p) for p in vols.patient_id[v]] for k, v in splits.items()},
               "test": test, "seconds": {k: round(v, 2) for k, v in seconds.items()}}
    write_json(out / "metrics.json", metrics)
    return metrics
