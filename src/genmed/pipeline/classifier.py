"""Lesion classification (healthy / benign / malignant) on the kidney region of a slice.

The region is cut out by a kidney mask (predicted by the segmenter, or the ground truth for
the "perfect segmentation" run of error analysis by parts): a fixed-shape window around the
mask's bounding box, with every pixel outside the mask (dilated by `margin` pixels) set to
-1 (air), plus the mask itself as a second channel. So a lesion the segmenter misses is
invisible to the classifier, which is what error analysis by parts must be able to see.
The network is the registry's `Classifier`, a small MONAI `DenseNet` (Huang et al. 2017)
trained by the one engine with class-weighted cross-entropy (weights inversely proportional
to class frequency) and on-the-fly augmentation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genmed.data.augment import AugmentKind
from genmed.data.phantom import LABELS
from genmed.errors import UserError
from genmed.models import Classifier
from genmed.train.fitting import Compute


@dataclass(frozen=True)
class ClsConfig:
    """Classifier settings; crop sizes are for a 64-pixel slice and scale with the slice size.
    The optimiser is the registry's classifier recipe (AdamW, cosine LR)."""

    crop_h: int = 24  # window rows at 64 px (pixels)
    crop_w: int = 48  # window columns at 64 px (both kidneys side by side)
    margin: int = 1  # mask dilation before masking (pixels)
    init_features: int = 16  # DenseNet stem channels
    growth_rate: int = 8
    blocks: tuple[int, ...] = (2, 2, 2)  # dense layers per block
    epochs: int = 30
    batch_size: int = 32
    balanced: bool = True  # class-weighted cross-entropy

    def __post_init__(self) -> None:
        if min(self.crop_h, self.crop_w) < 8 or self.epochs < 1 or self.batch_size < 2:
            raise UserError("classifier crop must be >= 8 px, epochs >= 1, batch_size >= 2")

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


def build_classifier(cfg: ClsConfig, shape: tuple[int, int], labels: np.ndarray | None = None,
                     augment: AugmentKind = "flip") -> Classifier:
    """A 2-channel (crop, mask), 3-class DenseNet; class weights balanced on `labels`."""
    from genmed.models import balanced_weights, build_model

    weights = balanced_weights(labels, len(LABELS)) if cfg.balanced and labels is not None else ()
    return build_model("classifier", size=max(shape), shape=tuple(shape), in_channels=2,
                       classes=len(LABELS), backbone="densenet", init_features=cfg.init_features,
                       growth_rate=cfg.growth_rate, blocks=cfg.blocks, class_weights=weights,
                       augment=augment, image_channels=1)


def train_classifier(x: torch.Tensor, y: np.ndarray, cfg: ClsConfig = ClsConfig(), seed: int = 0,
                     augment: AugmentKind = "flip", compute: Compute = Compute(),
                     out: str | Path | None = None) -> Classifier:
    """Train on crops `x` (N, 2, h, w) and labels `y` (N,) for `cfg.epochs` passes, with
    `augment` ("flip", "classic" MONAI affine + intensity, or "none") on every batch."""
    from genmed.train import DictDataset

    if len(x) < 2:
        raise UserError("the classifier needs at least two training slices")
    y = np.asarray(y, np.int64)
    batch = min(cfg.batch_size, len(x))
    torch.manual_seed(seed)  # the weights' initialisation
    model = build_classifier(cfg, tuple(x.shape[2:]), y, augment)
    return compute.fit(model, DictDataset(image=x.float(), label=torch.from_numpy(y)),
                       steps=cfg.epochs * (len(x) // batch), seed=seed, recipe="default",
                       batch_size=batch, out=out)


def predict_proba(net: Classifier, x: torch.Tensor) -> np.ndarray:
    """Class probabilities (N, 3) for crops `x`."""
    return net.predict_proba(x).numpy()
