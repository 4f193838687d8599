"""Generation from a label map plus attributes with the diffusion family (SPADE conditioning).

The map enters every normalisation layer of MONAI's `SPADEDiffusionModelUNet` (Park et al. 2019;
Wang et al. 2022, semantic diffusion) and the attribute pair (kind x noise: 6 classes, plus the
null class of classifier-free guidance) is a class embedding. Train it like any model, on
batches {"image", "cond": one-hot map, "label": attribute id} from `genmed.data.conditions.encode`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from genmed.data.conditions import CLASSES, NOISE_LEVELS, encode
from genmed.data.phantom import LABELS
from genmed.models.base import device_of
from genmed.models.diffusion import DiffusionModel


def mask_diffusion(size: int) -> DiffusionModel:
    """A new SPADE diffusion model for `size`-pixel slices conditioned on map and attributes."""
    from genmed.models.registry import build_model

    return build_model("diffusion", size=size, num_classes=len(LABELS) * len(NOISE_LEVELS),
                       cond_channels=len(CLASSES), cond_kind="spade", channels=(32, 64, 64),
                       attention_levels=(False, False, False))


@torch.no_grad()
def generate_from_maps(model: DiffusionModel, masks: np.ndarray,
                       attributes: Sequence[Mapping[str, Any]], *, steps: int = 20, seed: int = 0,
                       spacing_mm: float | None = None) -> torch.Tensor:
    """Images (N, 1, H, W) in [-1, 1] on the CPU for condition maps `masks` (N, H, W) and
    `attributes` (N dicts), by DDIM in `steps` steps from seeded noise."""
    cond, ids = encode(masks, attributes, model.config.size, spacing_mm)
    dev = device_of(model)
    return model.sample(len(cond), cond=ids.to(dev), image_cond=cond.to(dev), steps=steps,
                        sampler="ddim", generator=torch.Generator(dev).manual_seed(int(seed))).cpu()
