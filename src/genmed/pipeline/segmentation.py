"""Kidney segmentation: the registry's `Segmenter` (MONAI 2D UNet, Dice + cross-entropy) trained
by the one engine on patches.

Training samples `patch` x `patch` crops (MONAI `RandCropByPosNegLabel`, half centred on a
kidney pixel) with random left-right flips and minimises Dice + cross-entropy (Milletari et
al. 2016, V-Net Dice loss) through `genmed.train.fitting`, so it runs on CPU or GPU, in bf16, with
checkpoints. Inference tiles the whole slice with `sliding_window_inference` (roi = the
training patch, Gaussian-weighted overlap), so images larger than the patch work unchanged, then
keeps the two largest connected components (the kidneys). Per-slice Dice comes from
`monai.metrics.DiceMetric`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from genmed.errors import UserError, check_choice
from genmed.models import Segmenter
from genmed.train.fitting import Compute


@dataclass(frozen=True)
class SegConfig:
    """Segmenter settings (pixels, epochs); the optimiser is the registry's segmenter recipe."""

    net: Literal["unet", "basicunet"] = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128)  # UNet channels per level (BasicUNet: first 5)
    patch: int = 48  # training patch and sliding-window roi (pixels)
    epochs: int = 15  # passes over the training slices (one patch per slice per pass)
    batch_size: int = 16
    overlap: float = 0.25  # sliding-window overlap fraction
    components: int = 2  # keep this many largest connected components (0: keep all)

    def __post_init__(self) -> None:
        check_choice("seg net", self.net, ("unet", "basicunet"))
        if self.patch < 16 or self.epochs < 1 or self.batch_size < 2:
            raise UserError("seg patch must be >= 16, epochs >= 1 and batch_size >= 2")
        if not 0 <= self.overlap < 1:
            raise UserError(f"seg overlap={self.overlap} must be in [0, 1)")


def build_segmenter(cfg: SegConfig, size: int) -> Segmenter:
    """A 2-class (background, kidney) segmenter of 1-channel `size`-pixel slices."""
    from genmed.models import build_model

    return build_model("segmenter", size=size, out_channels=2, backbone=cfg.net,
                       channels=cfg.channels, norm="batch", patch=cfg.patch, overlap=cfg.overlap,
                       components=cfg.components, augment="flip")


def as_batch(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) numpy -> (N, 1, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(images, np.float32))[:, None]


def train_segmenter(images: np.ndarray, masks: np.ndarray, cfg: SegConfig = SegConfig(),
                    seed: int = 0, compute: Compute = Compute(), out: str | Path | None = None,
                    steps: int | None = None) -> Segmenter:
    """Train on (N, H, W) images in [-1, 1] and binary kidney masks for `cfg.epochs` passes
    (one random patch per slice per pass) or exactly `steps` optimiser steps; `out` keeps the
    engine's run folder."""
    from genmed.train import DictDataset

    if len(images) < 2:
        raise UserError("the segmenter needs at least two training slices")
    if min(images.shape[1:]) < cfg.patch:
        raise UserError(f"images {images.shape[1:]} are smaller than the seg patch {cfg.patch}")
    batch = min(cfg.batch_size, len(images))
    data = DictDataset(image=as_batch(images),
                       target=torch.from_numpy(np.asarray(masks, np.int64))[:, None])
    torch.manual_seed(seed)  # the weights' initialisation
    model = build_segmenter(cfg, images.shape[-1])
    steps = steps if steps is not None else cfg.epochs * (len(images) // batch)
    return compute.fit(model, data, steps=steps, seed=seed, recipe="default", batch_size=batch,
                       out=out)


def predict_probs(seg: Segmenter, images: np.ndarray) -> np.ndarray:
    """Kidney probability (N, H, W) float32 by sliding-window inference over whole slices."""
    return seg.predict_proba(as_batch(images))[:, 1].numpy()


def probs_to_masks(seg: Segmenter, probs: np.ndarray) -> np.ndarray:
    """Binary masks (N, H, W) uint8 from kidney probabilities: threshold 0.5, then the
    segmenter's largest connected components."""
    p = torch.from_numpy(np.asarray(probs, np.float32))[:, None]
    return seg.to_labels(torch.cat([1 - p, p], 1))[:, 0].numpy().astype(np.uint8)


def predict_masks(seg: Segmenter, images: np.ndarray) -> np.ndarray:
    """Binary kidney masks (N, H, W) uint8."""
    return seg.predict(as_batch(images))[:, 0].numpy().astype(np.uint8)


def dice_per_slice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of binary masks per item (N,) of (N, H, W) slices or (N, D, H, W) volumes, via
    MONAI `DiceMetric`; 1.0 when both are empty."""
    from monai.metrics import DiceMetric

    p = torch.from_numpy(np.asarray(pred) > 0)[:, None].float()
    t = torch.from_numpy(np.asarray(truth) > 0)[:, None].float()
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    d = metric(p, t)[:, 0].numpy().astype(np.float64)
    both_empty = (p.flatten(1).sum(1) == 0) & (t.flatten(1).sum(1) == 0)
    d[both_empty.numpy()] = 1.0
    return d


def lesion_coverage(pred: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """Fraction of each slice's lesion pixels inside the predicted kidney mask (nan: no lesion)."""
    les = np.asarray(lesion) > 0
    n = les.reshape(len(les), -1).sum(1)
    inside = (les & (np.asarray(pred) > 0)).reshape(len(les), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, inside / np.maximum(n, 1), np.nan)
