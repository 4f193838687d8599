"""Helpers for model tests: a phantom-like image set, a distance, a minimal training loop, and
a class-conditional toy whose classes differ by a local "lesion"."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from genmed.models import GenerativeModel


def ellipse_images(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 1, size, size) in [-1, 1]: a grey body ellipse with 1-2 bright 'kidney' blobs and
    mild noise, a stand-in for the CT phantom (abdomen window)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2 - 1
    out = np.full((n, size, size), -0.9, dtype=np.float32)
    for i in range(n):
        a, b = rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.7)
        out[i][(xx / a) ** 2 + (yy / b) ** 2 <= 1] = -0.1
        for side in (-1, 1):
            cx, cy = side * rng.uniform(0.3, 0.45), rng.uniform(-0.1, 0.15)
            r = rng.uniform(0.12, 0.2)
            out[i][((xx - cx) / r) ** 2 + ((yy - cy) / (1.3 * r)) ** 2 <= 1] = 0.6
    out += rng.normal(0, 0.03, out.shape).astype(np.float32)
    return torch.from_numpy(out.clip(-1, 1)).unsqueeze(1)


def distribution_distance(samples: torch.Tensor, data: torch.Tensor) -> float:
    """Pixel-histogram Wasserstein-1 distance + mean-image RMSE (lower = closer to the data)."""
    s, d = samples.detach().float(), data.float()
    w1 = wasserstein_distance(s.flatten().numpy(), d.flatten().numpy())
    mean_rmse = float((s.mean(0) - d.mean(0)).pow(2).mean().sqrt())
    return float(w1) + mean_rmse


def train(model: GenerativeModel, data: torch.Tensor, steps: int, *, labels: torch.Tensor | None = None,
          batch_size: int = 16, lr: float = 2e-3, betas: tuple[float, float] = (0.5, 0.999),
          seed: int = 0) -> GenerativeModel:
    """Minimal engine: one Adam per phase, phases stepped in order, all grads zeroed first."""
    torch.manual_seed(seed)
    opts = {p: torch.optim.Adam(model.phase_parameters(p), lr=lr, betas=betas) for p in model.phases()}
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, data.shape[0], (batch_size,), generator=g)
        batch = {"image": data[idx]}
        batch["label"] = labels[idx] if labels is not None else torch.zeros(batch_size, dtype=torch.long)
        for phase in model.phases():
            model.zero_grad(set_to_none=True)
            model(batch, phase)["loss"].mean().backward()
            opts[phase].step()
    return model


LESION = (..., slice(6, 10), slice(3, 7))  # a 4 x 4 px patch of 16-px images that only class 1 has bright


def label_patch_effect(model: GenerativeModel, region=LESION) -> float:
    """Mean over 128 latents of G(z, 1) - G(z, 0) inside `region`, in [-1, 1] units (a GAN with
    a 16-d latent)."""
    z = torch.randn(128, 16, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        a, b = (model.generate(z, torch.full((128,), c))[region].mean() for c in (0, 1))
    model.train()
    return float(b - a)


def train_class_toy(model: GenerativeModel, seed: int, steps: int = 100) -> tuple[float, float]:
    """(learned label effect in the patch, the data's) after `steps` steps of a 2-class GAN
    (Adam 2e-3, betas (0, 0.99), batch 16, `batch["step"]` given) on 16-px ellipse phantoms,
    25% of them class 1 with the `LESION` patch at +1. The model is built under
    torch.manual_seed(seed) by the caller."""
    base = ellipse_images(256, 16)
    labels = (torch.arange(256) % 4 == 0).long()
    lesion = base.clone()
    lesion[LESION] = 1.0
    data = torch.where(labels.view(-1, 1, 1, 1).bool(), lesion, base)
    opts = {p: torch.optim.Adam(model.phase_parameters(p), lr=2e-3, betas=(0.0, 0.99)) for p in model.phases()}
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        idx = torch.randint(0, 256, (16,), generator=g)
        batch = {"image": data[idx], "label": labels[idx], "step": torch.tensor(step)}
        for phase in model.phases():
            model.zero_grad(set_to_none=True)
            model(batch, phase)["loss"].mean().backward()
            opts[phase].step()
    real = float(data[labels == 1][LESION].mean() - data[labels == 0][LESION].mean())
    return label_patch_effect(model), real


def map_reading_mask_ldm(n_scale: int = 4):
    """A tiny 32-px mask-conditioned latent diffusion model (eval mode) whose UNet weights are
    nudged off their initialisation, so that the condition map changes its output (an untrained
    UNet's last layer is zero); `n_scale` images set its latent scale."""
    from genmed.models import build_model
    from genmed.models.mask_generation import mask_ldm

    torch.manual_seed(0)
    ae = build_model("autoencoder", size=32, channels=(16, 16), norm_num_groups=8)
    model = mask_ldm(ae, torch.zeros(n_scale, 1, 32, 32), generator=torch.Generator().manual_seed(0)).eval()
    with torch.no_grad():
        for p in model.diffusion.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    return model
