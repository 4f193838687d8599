"""Class -> label map -> image: class-conditional generation through a learned layout.

A lesion is 0.2 % of a 256-px slice, too little of the loss for a class label alone to teach a
latent diffusion model where and what to draw (docs/models.md, "a visible mass"). The field's
answer is to generate the layout first and the image from it (brainSPADE: Fernandez et al.
2022, a label-map diffusion model, then a SPADE image model): here a small pixel diffusion
model draws the condition map (0 air, 1 body, 2 kidney, 3 lesion; `genmed.data.conditions`)
for a lesion class at a coarse size, as the map's class shares per pixel in [-1, 1], and the
mask-conditioned model of `genmed.models.mask_generation` draws the slice from it with the
class as its "kind" attribute.

Pure functions: `maps_to_shares` / `shares_to_maps` convert between uint8 maps and share maps,
`layout_agrees` says whether a map holds a lesion exactly when its class has one, and
`sample_layouts` draws agreeing maps (a draw that disagrees is redrawn, and the redraws counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genmed.data.conditions import CLASSES
from genmed.data.phantom import LABELS
from genmed.errors import UserError, check_positive
from genmed.models.diffusion import DiffusionModel

LESION = CLASSES.index("lesion")


def layout_diffusion(size: int = 64, **options) -> DiffusionModel:
    """A new class-conditional pixel diffusion model (MONAI DiffusionModelUNet) of `size`-pixel
    share maps: one channel per map class (`CLASSES`), one class per lesion kind (`LABELS`).
    `options` are further `DiffusionConfig` fields (e.g. region_loss_weights)."""
    from genmed.models.registry import build_model

    defaults = dict(channels=(32, 64, 64), attention_levels=(False, False, True))
    return build_model("diffusion", size=size, in_channels=len(CLASSES), num_classes=len(LABELS),
                       **{**defaults, **options})


def maps_to_shares(maps: np.ndarray, size: int) -> torch.Tensor:
    """uint8 condition maps (N, H, W), values 0..3, -> (N, 4, size, size) float32 in [-1, 1]:
    2 x the share of each class in each `size`-pixel cell (area average) - 1. H must be a
    multiple of `size`."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or maps.shape[1] % size:
        raise UserError(f"maps of shape {maps.shape}: need (N, H, H) with H a multiple of {size}")
    if maps.size and int(maps.max()) >= len(CLASSES):
        raise UserError(f"map values must be 0..{len(CLASSES) - 1}, got {int(maps.max())}")
    out = []
    for chunk in np.array_split(maps, max(1, len(maps) // 64)):  # one-hot at full size is 16 B/px
        onehot = F.one_hot(torch.from_numpy(chunk.astype(np.int64)), len(CLASSES)).permute(0, 3, 1, 2).float()
        out.append(F.adaptive_avg_pool2d(onehot, size) * 2 - 1)
    return torch.cat(out) if out else torch.zeros(0, len(CLASSES), size, size)


def shares_to_maps(shares: torch.Tensor, size: int) -> np.ndarray:
    """Share maps (N, 4, s, s) in [-1, 1] -> uint8 condition maps (N, size, size): shares
    upsampled bilinearly to `size`, then the class with the largest share per pixel."""
    up = F.interpolate(shares.float(), size=(size, size), mode="bilinear", align_corners=False)
    return up.argmax(1).numpy().astype(np.uint8)


def layout_agrees(maps: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """(N,) bool: map i holds lesion pixels exactly when labels[i] (index into `LABELS`) is a
    lesion kind, the rule `genmed.data.conditions.encode` enforces."""
    has_lesion = (np.asarray(maps) == LESION).reshape(len(maps), -1).any(1)
    return has_lesion == (np.asarray(labels) > 0)


@dataclass(frozen=True)
class Layouts:
    """Maps drawn for a list of classes, and how many draws each needed (1: the first agreed;
    `max_tries` + 1 would mean none did, which `sample_layouts` refuses)."""

    maps: np.ndarray  # (N, size, size) uint8
    draws: np.ndarray  # (N,) int


@torch.no_grad()
def sample_layouts(model: DiffusionModel, labels: Sequence[int], size: int, *, guidance: float = 1.0,
                   steps: int | None = None, seed: int = 0, max_tries: int = 8,
                   batch: int = 64) -> Layouts:
    """Condition maps (N, size, size) for lesion classes `labels` (0 healthy, 1 benign,
    2 malignant) from a `layout_diffusion` model (its default sampler, classifier-free
    `guidance`), redrawing each map that disagrees with its class (`layout_agrees`) up to
    `max_tries` times in all; UserError naming the classes that never agreed."""
    check_positive("max_tries", max_tries)
    labels = np.asarray(labels, dtype=np.int64)
    maps = np.zeros((len(labels), size, size), np.uint8)
    draws = np.zeros(len(labels), np.int64)
    todo = np.arange(len(labels))
    g = torch.Generator().manual_seed(int(seed))
    for _ in range(max_tries):
        if not len(todo):
            break
        drawn = [model.sample(len(i), cond=torch.from_numpy(labels[i]), steps=steps, generator=g,
                              guidance=guidance).float().cpu() for i in np.array_split(todo, -(-len(todo) // batch))]
        new = shares_to_maps(torch.cat(drawn), size)
        ok = layout_agrees(new, labels[todo])
        maps[todo[ok]] = new[ok]
        draws[todo] += 1
        todo = todo[~ok]
    if len(todo):
        kinds = sorted({LABELS[int(c)] for c in labels[todo]})
        raise UserError(f"the layout model drew no map that agrees with {', '.join(kinds)} in "
                        f"{max_tries} tries for {len(todo)} of {len(labels)} requests")
    return Layouts(maps=maps, draws=draws)
