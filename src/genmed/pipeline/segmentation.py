"""Kidney segmentation: a MONAI 2D UNet trained on patches with Dice + cross-entropy.

Training samples `patch` x `patch` crops (MONAI `RandCropByPosNegLabel`, half centred on a
kidney pixel) with random flips, and minimises `DiceCELoss` (Milletari et al. 2016, V-Net
Dice loss, plus cross-entropy). Inference tiles the whole slice with
`sliding_window_inference` (roi = the training patch, Gaussian-weighted overlap), so images
larger than the patch work unchanged, then keeps the two largest connected components (the
kidneys). Per-slice Dice comes from `monai.metrics.DiceMetric`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from genmed.errors import UserError, check_choice


@dataclass(frozen=True)
class SegConfig:
    """Segmenter settings (pixels, epochs)."""

    net: Literal["unet", "basicunet"] = "unet"
    channels: tuple[int, ...] = (16, 32, 64, 128)  # UNet channels per level (BasicUNet: first 5)
    patch: int = 48  # training patch and sliding-window roi (pixels)
    epochs: int = 15  # passes over the training slices (one patch per slice per pass)
    batch_size: int = 16
    lr: float = 3e-3  # Adam learning rate, cosine-annealed to 0
    overlap: float = 0.25  # sliding-window overlap fraction
    components: int = 2  # keep this many largest connected components (0: keep all)

    def __post_init__(self) -> None:
        check_choice("seg net", self.net, ("unet", "basicunet"))
        if self.patch < 16 or self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise UserError("seg patch must be >= 16 and epochs, batch_size, lr > 0")
        if not 0 <= self.overlap < 1:
            raise UserError(f"seg overlap={self.overlap} must be in [0, 1)")


def build_segmenter(cfg: SegConfig) -> nn.Module:
    """A 2-class (background, kidney) MONAI network for 1-channel 2D slices."""
    from monai.networks.nets import BasicUNet, UNet

    if cfg.net == "unet":
        return UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=cfg.channels,
                    strides=(2,) * (len(cfg.channels) - 1), num_res_units=1, norm="batch")
    feats = (tuple(cfg.channels) + (cfg.channels[-1] * 2,) * 5)[:5] + (cfg.channels[0],)
    return BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=feats)


def _patches(images: np.ndarray, masks: np.ndarray, patch: int, rng: np.random.Generator):
    """One random (patch x patch) crop per slice: half centred on kidney, half on background."""
    from monai.transforms import RandCropByPosNegLabel

    crop = RandCropByPosNegLabel(spatial_size=(patch, patch), pos=1.0, neg=1.0, num_samples=1,
                                 allow_smaller=False)
    crop.set_random_state(int(rng.integers(2**31)))
    xs, ys = [], []
    for img, m in zip(images, masks, strict=True):
        both = torch.from_numpy(np.stack([img, m.astype(np.float32)]))
        out = crop(both, label=torch.from_numpy(m[None]))[0]
        out = torch.as_tensor(out)
        xs.append(out[:1])
        ys.append(out[1:].round().long())
    return torch.stack(xs), torch.stack(ys)


def train_segmenter(images: np.ndarray, masks: np.ndarray, cfg: SegConfig = SegConfig(),
                    seed: int = 0, progress: bool = False) -> nn.Module:
    """Train on (N, H, W) images in [-1, 1] and binary kidney masks; returns the net in eval mode."""
    from monai.losses import DiceCELoss

    if len(images) == 0:
        raise UserError("no training slices for the segmenter")
    if min(images.shape[1:]) < cfg.patch:
        raise UserError(f"images {images.shape[1:]} are smaller than the seg patch {cfg.patch}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_segmenter(cfg)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps = cfg.epochs * int(np.ceil(len(images) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    net.train()
    for _ in range(cfg.epochs):
        x, y = _patches(images, masks, cfg.patch, rng)
        flip = torch.from_numpy(rng.random(len(x)) < 0.5)  # left-right flip: kidneys are paired
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        order = torch.from_numpy(rng.permutation(len(x)))
        for b in range(0, len(x), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            if len(idx) < 2:
                continue  # batch norm needs two samples
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def predict_probs(net: nn.Module, images: np.ndarray, cfg: SegConfig = SegConfig(),
                  batch: int = 64) -> np.ndarray:
    """Kidney probability (N, H, W) float32 by sliding-window inference over whole slices."""
    from monai.inferers import sliding_window_inference

    net.eval()
    out = np.zeros(images.shape, np.float32)
    for b in range(0, len(images), batch):
        x = torch.from_numpy(np.ascontiguousarray(images[b:b + batch], np.float32))[:, None]
        logits = sliding_window_inference(x, (cfg.patch, cfg.patch), sw_batch_size=256, predictor=net,
                                          overlap=cfg.overlap, mode="gaussian")
        out[b:b + batch] = torch.as_tensor(logits).softmax(1)[:, 1].numpy()
    return out


def probs_to_masks(probs: np.ndarray, cfg: SegConfig = SegConfig()) -> np.ndarray:
    """Threshold at 0.5 and keep the `cfg.components` largest connected components (MONAI)."""
    from monai.transforms import KeepLargestConnectedComponent

    pred = torch.from_numpy((probs > 0.5).astype(np.int64))[:, None]
    if cfg.components > 0:
        keep = KeepLargestConnectedComponent(applied_labels=[1], num_components=cfg.components)
        pred = torch.stack([torch.as_tensor(keep(p)) for p in pred])
    return pred[:, 0].numpy().astype(np.uint8)


def predict_masks(net: nn.Module, images: np.ndarray, cfg: SegConfig = SegConfig()) -> np.ndarray:
    """Binary kidney masks (N, H, W) uint8: `predict_probs` then `probs_to_masks`."""
    return probs_to_masks(predict_probs(net, images, cfg), cfg)


def dice_per_slice(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Dice of binary masks per slice (N,), via MONAI `DiceMetric`; 1.0 when both are empty."""
    from monai.metrics import DiceMetric

    p = torch.from_numpy(np.asarray(pred) > 0)[:, None].float()
    t = torch.from_numpy(np.asarray(truth) > 0)[:, None].float()
    metric = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
    d = metric(p, t)[:, 0].numpy().astype(np.float64)
    both_empty = (p.sum((1, 2, 3)) == 0) & (t.sum((1, 2, 3)) == 0)
    d[both_empty.numpy()] = 1.0
    return d


def lesion_coverage(pred: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """Fraction of each slice's lesion pixels inside the predicted kidney mask (nan: no lesion)."""
    les = np.asarray(lesion) > 0
    n = les.reshape(len(les), -1).sum(1)
    inside = (les & (np.asarray(pred) > 0)).reshape(len(les), -1).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, inside / np.maximum(n, 1), np.nan)
