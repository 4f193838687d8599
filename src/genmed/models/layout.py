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
`layout_agrees` says whether a map holds a lesion exactly when its class has one,
`sample_layouts` draws agreeing maps (a draw that disagrees is redrawn, and the redraws counted)
and `generate_from_class` draws slices for lesion classes through both models.
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
from genmed.models.base import GenerativeModel, device_of
from genmed.models.diffusion import DiffusionModel
from genmed.models.latent import LatentDiffusionModel
from genmed.models.noise_texture import NoiseTexture

LESION = CLASSES.index("lesion")


def layout_diffusion(size: int = 64, **options) -> DiffusionModel:
    """A new class-conditional pixel diffusion model (MONAI DiffusionModelUNet) of `size`-pixel
    share maps: one channel per map class (`CLASSES`), one class per lesion kind (`LABELS`).
    `options` are further `DiffusionConfig` fields (e.g. region_loss_weights).

    It predicts v (Salimans & Ho 2022), not eps: from near-pure noise an eps model's x0 estimate
    is its error times up to 1 / sqrt(alpha_bar_T) ~ 160, clipped to +-1, a speckle of every
    class that the sampler then keeps (session 46: 2 of 3 draws of a 3,000-step eps model were
    speckled, whatever the sampler)."""
    from genmed.models.registry import build_model

    defaults = dict(channels=(32, 64, 64), attention_levels=(False, False, True), prediction="v")
    return build_model("diffusion", size=size, in_channels=len(CLASSES), num_classes=len(LABELS),
                       **{**defaults, **options})


def check_layout_model(model: GenerativeModel, where: str) -> DiffusionModel:
    """`model` if it is a `layout_diffusion` model (2-D pixel diffusion, one channel per map class,
    one class per lesion kind); else UserError naming `where`."""
    cfg = model.config
    if (not isinstance(model, DiffusionModel) or cfg.spatial_dims != 2 or cfg.in_channels != len(CLASSES)
            or cfg.num_classes != len(LABELS)):
        raise UserError(f"{where}: not a layout model (needs a 2-D diffusion model with in_channels="
                        f"{len(CLASSES)} and num_classes={len(LABELS)}; train one with "
                        "benchmarks/layout_then_image.py)")
    return model


def maps_to_shares(maps: np.ndarray, size: int, scale: float = 1.0) -> torch.Tensor:
    """uint8 condition maps (N, H, W), values 0..3, -> (N, 4, size, size) float32 in [-scale,
    scale]: scale x (2 x the share of each class in each `size`-pixel cell (area average) - 1).
    H must be a multiple of `size`. A `scale` below 1 lowers the signal-to-noise ratio at every
    diffusion step (Chen 2023, "On the importance of noise scheduling"); for the v-predicting
    layout model, 1.0 and 0.5 drew alike (docs/models.md, "Class -> layout -> image")."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or maps.shape[1] != maps.shape[2] or maps.shape[1] % size:
        raise UserError(f"maps of shape {maps.shape}: need (N, H, H) with H a multiple of {size}")
    if maps.size and int(maps.max()) >= len(CLASSES):
        raise UserError(f"map values must be 0..{len(CLASSES) - 1}, got {int(maps.max())}")
    out = []
    for chunk in np.array_split(maps, max(1, len(maps) // 64)):  # one-hot at full size is 16 B/px
        onehot = F.one_hot(torch.from_numpy(chunk.astype(np.int64)), len(CLASSES)).permute(0, 3, 1, 2).float()
        out.append((F.adaptive_avg_pool2d(onehot, size) * 2 - 1) * scale)
    return torch.cat(out) if out else torch.zeros(0, len(CLASSES), size, size)


def shares_to_maps(shares: torch.Tensor, size: int) -> np.ndarray:
    """Share maps (N, 4, s, s) (any `maps_to_shares` scale) -> uint8 condition maps (N, size,
    size): shares upsampled bilinearly to `size`, then the class with the largest share per pixel."""
    up = F.interpolate(shares.float(), size=(size, size), mode="bilinear", align_corners=False)
    return up.argmax(1).numpy().astype(np.uint8)


def layout_agrees(maps: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """(N,) bool: map i holds lesion pixels exactly when labels[i] (index into `LABELS`) is a
    lesion kind, the rule `genmed.data.conditions.encode` enforces."""
    has_lesion = (np.asarray(maps) == LESION).reshape(len(maps), -1).any(1)
    return has_lesion == (np.asarray(labels) > 0)


@dataclass(frozen=True)
class Layouts:
    """Maps drawn for a list of classes, and how many draws each needed (1: the first agreed)."""

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
    dev = device_of(model)
    g = torch.Generator(dev).manual_seed(int(seed))
    for _ in range(max_tries):
        if not len(todo):
            break
        drawn = [model.sample(len(i), cond=torch.from_numpy(labels[i]).to(dev), steps=steps, generator=g,
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


@torch.no_grad()
def generate_from_class(layout_model: DiffusionModel, image_model: DiffusionModel | LatentDiffusionModel,
                        labels: Sequence[int], *, noise: str = "standard", seed: int = 0,
                        layout_guidance: float = 1.0, texture: NoiseTexture | None = None,
                        map_guidance: float = 0.0, map_guidance_healthy: float | None = None,
                        steps: int = 20, batch: int = 16) -> tuple[Layouts, torch.Tensor]:
    """Slices for lesion classes `labels` (0 healthy, 1 benign, 2 malignant): a condition map from
    the layout model (`sample_layouts`, at the image model's size), then the image from the
    mask-conditioned `image_model` with the class as "kind" and `noise` as the dose
    (`genmed.models.mask_generation.generate_from_maps`, `batch` maps at a time). Returns the
    layouts and the images (N, 1, H, W) in [-1, 1]."""
    layouts = sample_layouts(layout_model, labels, image_model.config.size, guidance=layout_guidance, seed=seed)
    attrs = [{"kind": LABELS[int(c)], "noise": noise} for c in labels]
    return layouts, draw_in_batches(image_model, layouts.maps, attrs, steps=steps, seed=seed, texture=texture,
                                    map_guidance=map_guidance, map_guidance_healthy=map_guidance_healthy,
                                    batch=batch)


def draw_in_batches(image_model: DiffusionModel | LatentDiffusionModel, maps: np.ndarray,
                    attributes: Sequence[dict], *, seed: int = 0, batch: int = 16, **options) -> torch.Tensor:
    """`genmed.models.mask_generation.generate_from_maps` over `batch` maps at a time (the batch
    starting at map i seeded `seed` + i), so memory does not grow with the number of maps;
    `options` are its keywords. Images (N, 1, H, W) in [-1, 1]."""
    from genmed.models.mask_generation import generate_from_maps

    return torch.cat([generate_from_maps(image_model, maps[i:i + batch], attributes[i:i + batch],
                                         seed=seed + i, **options)
                      for i in range(0, len(maps), batch)])
