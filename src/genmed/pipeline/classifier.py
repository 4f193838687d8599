"""Lesion classification (healthy / benign / malignant) on the kidney region of a slice.

The region is cut out by a kidney mask (predicted by the segmenter, or the ground truth for
the "perfect segmentation" run of error analysis by parts): a fixed-shape window around the
mask's bounding box, with every pixel outside the mask (dilated by `margin` pixels) set to
-1 (air), plus the mask itself as a second channel. So a lesion the segmenter misses is
invisible to the classifier, which is what error analysis by parts must be able to see.
The network is a small MONAI `DenseNet` (Huang et al. 2017) trained with class-weighted
cross-entropy (weights inversely proportional to class frequency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genmed.data.phantom import LABELS
from genmed.errors import UserError

Augment = Callable[[torch.Tensor, np.random.Generator], torch.Tensor]


@dataclass(frozen=True)
class ClsConfig:
    """Classifier settings; crop sizes are for a 64-pixel slice and scale with the slice size."""

    crop_h: int = 24  # window rows at 64 px (pixels)
    crop_w: int = 48  # window columns at 64 px (both kidneys side by side)
    margin: int = 1  # mask dilation before masking (pixels)
    init_features: int = 16  # DenseNet stem channels
    growth_rate: int = 8
    blocks: tuple[int, ...] = (2, 2, 2)  # dense layers per block
    epochs: int = 30
    batch_size: int = 32
    lr: float = 3e-3  # AdamW, cosine-annealed
    weight_decay: float = 1e-4
    balanced: bool = True  # class-weighted cross-entropy

    def __post_init__(self) -> None:
        if min(self.crop_h, self.crop_w) < 8 or self.epochs < 1 or self.batch_size < 2 or not self.lr > 0:
            raise UserError("classifier crop must be >= 8 px, epochs >= 1, batch_size >= 2, lr > 0")

    def crop_shape(self, size: int) -> tuple[int, int]:
        """Window (rows, cols) for `size`-pixel slices."""
        return (max(8, round(self.crop_h * size / 64)), max(8, round(self.crop_w * size / 64)))


def crop_kidneys(images: np.ndarray, masks: np.ndarray, shape: tuple[int, int], margin: int = 1) -> torch.Tensor:
    """(N, 2, h, w) float: masked image and mask in a window around each slice's kidney mask.

    The window has the aspect of `shape`, is centred on the mask's bounding box and grows (then
    is resized to `shape`, area/nearest) when the box is larger; an empty mask gives the window
    at the image centre with nothing visible.
    """
    from scipy.ndimage import binary_dilation

    h, w = shape
    n, H, W = images.shape
    out = np.empty((n, 2, h, w), np.float32)
    for i in range(n):
        m = masks[i] > 0
        vis = binary_dilation(m, iterations=margin) if margin > 0 and m.any() else m
        if m.any():
            rows, cols = np.nonzero(m)
            r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        else:
            r0, r1, c0, c1 = H // 2, H // 2, W // 2, W // 2
        scale = max(1.0, (r1 - r0 + 2 * margin) / h, (c1 - c0 + 2 * margin) / w)
        wh, ww = int(np.ceil(h * scale)), int(np.ceil(w * scale))
        top, left = (r0 + r1) // 2 - wh // 2, (c0 + c1) // 2 - ww // 2
        img = np.where(vis, images[i], -1.0).astype(np.float32)
        win = np.full((2, wh, ww), -1.0, np.float32)
        win[1] = 0.0
        rs, re = max(top, 0), min(top + wh, H)
        cs, ce = max(left, 0), min(left + ww, W)
        win[0, rs - top:re - top, cs - left:ce - left] = img[rs:re, cs:ce]
        win[1, rs - top:re - top, cs - left:ce - left] = m[rs:re, cs:ce]
        if (wh, ww) != (h, w):
            t = torch.from_numpy(win)[:, None]
            win = np.concatenate([F.interpolate(t[:1], size=(h, w), mode="area")[:, 0].numpy(),
                                  F.interpolate(t[1:], size=(h, w), mode="nearest")[:, 0].numpy()])
        out[i] = win
    return torch.from_numpy(out)


def build_classifier(cfg: ClsConfig) -> nn.Module:
    """A small 2-channel, 3-class MONAI DenseNet."""
    from monai.networks.nets import DenseNet

    return DenseNet(spatial_dims=2, in_channels=2, out_channels=len(LABELS), init_features=cfg.init_features,
                    growth_rate=cfg.growth_rate, block_config=tuple(cfg.blocks), bn_size=2)


def train_classifier(x: torch.Tensor, y: np.ndarray, cfg: ClsConfig = ClsConfig(), seed: int = 0,
                     augment: Augment | None = None) -> nn.Module:
    """Train on crops `x` (N, 2, h, w) and labels `y` (N,); `augment(batch, rng)` per batch."""
    if len(x) < 2:
        raise UserError("the classifier needs at least two training slices")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.long)
    net = build_classifier(cfg)
    counts = torch.bincount(y_t, minlength=len(LABELS)).float()
    weight = None
    if cfg.balanced:
        weight = torch.where(counts > 0, counts.sum() / (len(LABELS) * counts.clamp(min=1)), torch.zeros(()))
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = int(np.ceil(len(x) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs * per_epoch)
    net.train()
    for _ in range(cfg.epochs):
        order = torch.from_numpy(rng.permutation(len(x)))
        for b in range(0, len(x), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            if len(idx) < 2:
                continue
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, rng)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(xb), y_t[idx], weight=weight).backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def predict_proba(net: nn.Module, x: torch.Tensor, batch: int = 256) -> np.ndarray:
    """Class probabilities (N, 3) for crops `x`."""
    net.eval()
    if len(x) == 0:
        return np.zeros((0, len(LABELS)), np.float32)
    return torch.cat([F.softmax(net(x[b:b + batch]), 1) for b in range(0, len(x), batch)]).numpy()


def flip_augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Left-right flip of half the batch (the two kidneys swap sides)."""
    flip = torch.from_numpy(rng.random(len(x)) < 0.5)
    x = x.clone()
    x[flip] = x[flip].flip(-1)
    return x
