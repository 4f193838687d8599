"""On-the-fly batch augmentation for training, drawn from torch's global RNG.

The training engine seeds torch's RNG and restores it on resume, so augmentations drawn here
(directly, or by MONAI transforms re-seeded from it once per call) repeat exactly in a resumed
run. Batches are (B, C, H, W) tensors; every function returns a new tensor.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from genmed.errors import check_choice

AugmentKind = Literal["none", "flip", "classic"]
AUGMENTS: tuple[str, ...] = ("none", "flip", "classic")


def torch_seed() -> int:
    """A seed for a MONAI/numpy random state, drawn from torch's global RNG."""
    return int(torch.randint(0, 2**31 - 1, (1,)))


def flip_lr(x: Tensor, p: float = 0.5) -> Tensor:
    """Left-right flip of each item with probability `p` (in CT the two kidneys swap sides)."""
    flip = (torch.rand(x.shape[0]) < p).to(x.device)
    return torch.where(flip.reshape(-1, *([1] * (x.ndim - 1))), x.flip(-1), x)


def classic(x: Tensor, image_channels: int = 1) -> Tensor:
    """MONAI augmentation: random affine on every channel (image and any mask channels), then
    Gaussian noise and an intensity shift on the first `image_channels`, then `flip_lr`."""
    from monai.transforms import RandAffine, RandGaussianNoise, RandShiftIntensity

    affine = RandAffine(prob=0.7, rotate_range=0.2, scale_range=0.1, translate_range=(2, 2),
                        padding_mode="border", mode="bilinear")
    noise = RandGaussianNoise(prob=0.3, std=0.05)
    shift = RandShiftIntensity(offsets=0.05, prob=0.3)
    for t in (affine, noise, shift):
        t.set_random_state(torch_seed())
    out = []
    for item in x.detach().cpu():
        item = torch.as_tensor(affine(item))
        img = torch.as_tensor(shift(noise(item[:image_channels])))
        out.append(torch.cat([img, item[image_channels:]]))
    return flip_lr(torch.stack(out).float().to(x.device))


def augment(x: Tensor, kind: AugmentKind, image_channels: int = 1) -> Tensor:
    """`x` augmented by `kind` ("none", "flip" or "classic")."""
    check_choice("augment", kind, AUGMENTS)
    if kind == "flip":
        return flip_lr(x)
    if kind == "classic":
        return classic(x, image_channels)
    return x


def contrastive_view(x: Tensor, crop_scale: tuple[float, float] = (0.6, 1.0), jitter: float = 0.2,
                     noise: float = 0.03) -> Tensor:
    """One random view of each item for contrastive learning (SimCLR's augmentations adapted
    to grey-level slices: Chen et al. 2020, "A simple framework for contrastive learning of
    visual representations", sec. 3 and appendix A): a random resized crop keeping
    `crop_scale` of the area (aspect ratio 3/4..4/3), a left-right flip (p = 0.5), then
    contrast x (1 +- `jitter`) and brightness +- `jitter` (model units, [-1, 1] scale) and
    Gaussian noise of SD up to `noise`; clamped to [-1, 1]. Colour distortion has no grey
    counterpart beyond this. All draws come from torch's global RNG; (B, C, H, W) in and out."""
    b = x.shape[0]
    lo, hi = crop_scale
    area = lo + (hi - lo) * torch.rand(b)
    log_r = (torch.rand(b) * 2 - 1) * torch.log(torch.tensor(4 / 3))
    sx = (area.sqrt() * log_r.exp().sqrt()).clamp(max=1.0)
    sy = (area.sqrt() / log_r.exp().sqrt()).clamp(max=1.0)
    tx = (torch.rand(b) * 2 - 1) * (1 - sx)
    ty = (torch.rand(b) * 2 - 1) * (1 - sy)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    zero = torch.zeros(b)
    theta = torch.stack([torch.stack([sx * flip, zero, tx], 1), torch.stack([zero, sy, ty], 1)], 1)
    contrast = 1 + (torch.rand(b) * 2 - 1) * jitter
    bright = (torch.rand(b) * 2 - 1) * jitter
    sd = torch.rand(b) * noise
    eps = torch.randn(x.shape)
    dev, dtype = x.device, x.dtype
    grid = torch.nn.functional.affine_grid(theta.to(dev, dtype), list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                          align_corners=False)
    shape = (b,) + (1,) * (x.ndim - 1)
    out = out * contrast.to(dev, dtype).view(shape) + bright.to(dev, dtype).view(shape)
    out = out + sd.to(dev, dtype).view(shape) * eps.to(dev, dtype)
    return out.clamp(-1, 1)
