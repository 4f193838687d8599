"""The convolutional encoder behind genmed's domain feature extractors (`PhantomCNN`).

It lives in models/ so that the training engine can train it (models/extractor.py) while
metrics/features.py, which loads the frozen extractors, imports it from here. The shipped
`genmed-phantom-cnn-v1` is this network with width 16, depth 4 and 64 px input; its state-dict
keys do not depend on `input_size`, so adding that option left the v1 weights hash unchanged.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from genmed.errors import UserError

INPUT_SIZE = 64  # pixels: the v1 extractor resizes every image to 64 x 64
MIN_INPUT, MAX_INPUT = 16, 512  # input sides (pixels) the encoder is built for


def default_depth(input_size: int) -> int:
    """Conv blocks for an input side: 4 at <= 64 px, one more per doubling (6 at 256 px), so
    the deepest block always sees about 4 x 4 positions (a receptive field over the organ)."""
    return max(4, int(math.log2(max(input_size, 1))) - 2)


class PhantomCNN(nn.Module):
    """`depth` conv blocks (3x3 conv, GroupNorm, SiLU, 2x avg-pool), widths w, 2w, 4w, 8w, 8w, ...

    Features: global average pools of blocks 2..depth concatenated (14w = 224 dims for w = 16,
    depth 4), so both fine texture (noise, blur) and coarse anatomy register. Heads (training
    only): class logits and auxiliary regressions (v1: tissue shares, noise level).
    Inputs (B, C, H, W) in [-1, 1] are averaged over channels and resized to `input_size`.
    """

    def __init__(self, width: int = 16, n_classes: int = 3, n_aux: int = 0,
                 input_size: int = INPUT_SIZE, depth: int | None = None) -> None:
        super().__init__()
        if not MIN_INPUT <= input_size <= MAX_INPUT:
            raise UserError(f"input_size={input_size} must be between {MIN_INPUT} and {MAX_INPUT} pixels")
        self.input_size = int(input_size)
        self.depth = int(depth or default_depth(input_size))
        if not 2 <= self.depth or 2 ** self.depth > input_size:
            raise UserError(f"depth={self.depth}: {input_size} px cannot be halved {self.depth} times")
        chans = [1] + [width * 2 ** min(i, 3) for i in range(self.depth)]
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, padding=1),
                nn.GroupNorm(min(8, chans[i + 1]), chans[i + 1]),
                nn.SiLU(),
                nn.AvgPool2d(2),
            )
            for i in range(self.depth)
        )
        self.feature_dim = sum(chans[2:])
        self.class_head = nn.Linear(self.feature_dim, max(n_classes, 1))
        self.aux_head = nn.Linear(self.feature_dim, max(n_aux, 1))

    def features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] -> (B, feature_dim); resized to `input_size` first."""
        x = prepare(x, self.input_size)
        pooled = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i >= 1:
                pooled.append(x.mean(dim=(2, 3)))
        return torch.cat(pooled, dim=1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        f = self.features(x)
        return f, self.class_head(f), self.aux_head(f)


def prepare(x: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """(B, C, H, W) -> (B, 1, size, size): channel mean, bilinear (antialiased) resize."""
    if x.ndim != 4:
        raise UserError(f"images: expected (B, C, H, W), got {tuple(x.shape)}")
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[-2:] != (size, size):
        x = nn.functional.interpolate(
            x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
    return x
