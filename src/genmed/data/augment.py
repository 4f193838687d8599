"""On-the-fly batch augmentation for training, drawn from torch's global RNG.

The training engine seeds torch's RNG and restores it on resume, so augmentations drawn here
(directly, or by MONAI transforms re-seeded from it once per call) repeat exactly in a resumed
run. Batches are (B, C, H, W) tensors; every function returns a new tensor. `diff_augment`
(DiffAugment, Zhao et al. 2020) is differentiable: the GAN applies it inside its losses.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from genmed.errors import UserError, check_choice

AugmentKind = Literal["none", "flip", "classic", "quality"]
AUGMENTS: tuple[str, ...] = ("none", "flip", "classic", "quality")


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
    # float32 outside autocast: under a bf16 autocast MONAI's affine grid comes out in bf16,
    # which its own numpy conversion then rejects (the engine trains in autocast).
    with torch.autocast(device_type="cpu", enabled=False):
        for item in x.detach().cpu().float():
            item = torch.as_tensor(affine(item))
            img = torch.as_tensor(shift(noise(item[:image_channels])))
            out.append(torch.cat([img, item[image_channels:]]))
    return flip_lr(torch.stack(out).float().to(x.device))


def quality(x: Tensor, image_channels: int = 1) -> Tensor:
    """Scan-quality augmentation after nnU-Net's intensity set (Isensee et al. 2021, Nat.
    Methods, suppl. note 4), by MONAI transforms on the first `image_channels` only: Gaussian
    noise (p 0.15, SD up to 0.05 model units ~ 20 HU at W400), Gaussian blur (p 0.3,
    sigma 0.5-1.5 px), simulated low resolution (p 0.25, 0.5-1x zoom), contrast gamma
    (p 0.15, 0.7-1.5), then `flip_lr` of the whole item. A reader trained with it keeps
    its answer on smooth or blurred images (a generator's, a denoiser's), not only on noisy ones.
    """
    from monai.transforms import (RandAdjustContrast, RandGaussianNoise, RandGaussianSmooth,
                                  RandSimulateLowResolution)
    from monai.utils import convert_to_tensor

    up = "bilinear" if x.ndim == 4 else "trilinear"
    steps = (RandGaussianNoise(prob=0.15, std=0.05),
             RandGaussianSmooth(sigma_x=(0.5, 1.5), sigma_y=(0.5, 1.5), sigma_z=(0.5, 1.5), prob=0.3),
             RandSimulateLowResolution(prob=0.25, zoom_range=(0.5, 1.0), upsample_mode=up),
             RandAdjustContrast(prob=0.15, gamma=(0.7, 1.5), retain_stats=True))
    for t in steps:
        t.set_random_state(torch_seed())
    out = []
    with torch.autocast(device_type="cpu", enabled=False):  # as in `classic`
        for item in x.detach().cpu().float():
            img = item[:image_channels]
            for t in steps:
                img = t(img)
            out.append(torch.cat([convert_to_tensor(img, track_meta=False).float(), item[image_channels:]]))
    return flip_lr(torch.stack(out).to(x.device))


def augment(x: Tensor, kind: AugmentKind, image_channels: int = 1) -> Tensor:
    """`x` augmented by `kind` ("none", "flip", "classic" or "quality")."""
    check_choice("augment", kind, AUGMENTS)
    if kind == "flip":
        return flip_lr(x)
    if kind == "classic":
        return classic(x, image_channels)
    if kind == "quality":
        return quality(x, image_channels)
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


DIFFAUG_OPS: tuple[str, ...] = ("color", "translation", "cutout")


def check_diffaug_policy(policy: str) -> tuple[str, ...]:
    """The ops of a DiffAugment policy string ("color,translation,cutout"; "" for none)."""
    ops = tuple(op.strip() for op in policy.split(",") if op.strip())
    for op in ops:
        check_choice("diffaug op", op, DIFFAUG_OPS)
    if len(set(ops)) != len(ops):
        raise UserError(f"diffaug={policy!r}: an op is named twice")
    return ops


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None = None, p: float = 1.0) -> Tensor:
    """Differentiable Augmentation (Zhao et al. 2020, "Differentiable augmentation for
    data-efficient GAN training", sec. 3 and their DiffAugment_pytorch.py), ops in policy order:

    - "color": brightness x + U(-0.5, 0.5), saturation (x - mean_c) * U(0, 2) + mean_c (the
      identity for one channel), contrast (x - mean) * U(0.5, 1.5) + mean (mean over C and space);
    - "translation": shift by an integer in [-s, s] per spatial axis, s = round(size / 8),
      zero fill;
    - "cutout": zero one box of half the size per axis, centred anywhere in the image.

    Every op is a per-sample random affine map or mask of `x`, so gradients flow back to `x`
    (to the generator, for generated batches). Images (B, C, *spatial) with 1-3 spatial axes;
    draws from `generator` (torch's global RNG when None), on the CPU, then moved to x's device.

    `p` < 1: each op reaches each sample with probability p (the others pass it unchanged), as
    in ADA's augmentation pipeline (Karras et al. 2020b, sec. 2.3), whose p is adapted during
    training (`genmed.models.gan`); p = 1 is plain DiffAugment.
    """
    ops = check_diffaug_policy(policy)
    if ops and x.ndim < 3:
        raise UserError("diffaug augments images (B, C, H, W[, D]); vector data takes diffaug=''")
    if not 0.0 <= p <= 1.0:
        raise UserError(f"diffaug probability p={p} must be in [0, 1]")
    for op in ops:
        if p >= 1.0:
            x = _DIFFAUG[op](x, generator)
        elif p > 0.0:
            x = torch.where(_uniform(x, generator) < p, _DIFFAUG[op](x, generator), x)
    return x


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """(B, 1, ..., 1) uniform [0, 1) draws, one per sample, broadcastable against `x`."""
    u = torch.rand(x.shape[0], generator=generator)
    return u.to(x.device, x.dtype).view(-1, *([1] * (x.ndim - 1)))


def _color(x: Tensor, generator: torch.Generator | None) -> Tensor:
    spatial = tuple(range(2, x.ndim))
    x = x + (_uniform(x, generator) - 0.5)  # brightness
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_uniform(x, generator) * 2) + mean  # saturation
    mean = x.mean(dim=(1, *spatial), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean  # contrast


def _translation(x: Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> Tensor:
    b = x.shape[0]
    for dim in range(2, x.ndim):
        n = x.shape[dim]
        s = int(n * ratio + 0.5)
        shift = torch.randint(-s, s + 1, (b, 1), generator=generator).to(x.device)
        src = torch.arange(n, device=x.device)[None] + shift  # (B, n): output i reads x[i + t]
        valid = (src >= 0) & (src < n)
        view = [b] + [1] * (x.ndim - 1)
        view[dim] = n
        index = src.clamp(0, n - 1).view(view).expand(x.shape)
        x = x.gather(dim, index) * valid.view(view).to(x.dtype)
    return x


def _cutout(x: Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> Tensor:
    b = x.shape[0]
    inside = torch.ones(x.shape[:1] + x.shape[2:], dtype=torch.bool, device=x.device)
    for axis, n in enumerate(x.shape[2:]):
        c = int(n * ratio + 0.5)
        offset = torch.randint(0, n + (1 - c % 2), (b, 1), generator=generator).to(x.device)
        i = torch.arange(n, device=x.device)[None]
        hit = (i >= offset - c // 2) & (i < offset - c // 2 + c)  # (B, n)
        view = [b] + [1] * (x.ndim - 2)
        view[1 + axis] = n
        inside = inside & hit.view(view)
    return x * (~inside)[:, None].to(x.dtype)


_DIFFAUG = {"color": _color, "translation": _translation, "cutout": _cutout}
