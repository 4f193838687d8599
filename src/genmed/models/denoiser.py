"""One denoiser contract for samplers, reconstruction and the score lab.

A denoiser is any callable `denoiser(x, t, *, cond=None, guidance=1.0) -> eps`: the noise
estimate for x_t at integer times t (B,), for the forward process
x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (Ho et al. 2020, eq. 4). The clean-image
and score estimates follow from eps by the pure functions below, so a network predicting eps
(our DDPM) and an analytic optimal denoiser (tests, score lab) are interchangeable.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
from torch import Tensor, nn

from genmed.models.schedules import broadcast

Prediction = Literal["eps", "v"]  # what a network outputs: the noise, or v (Salimans & Ho 2022)


class Denoiser(Protocol):
    """eps-prediction interface every sampler talks to."""

    def __call__(self, x: Tensor, t: Tensor, *, cond: Tensor | None = None,
                 guidance: float = 1.0) -> Tensor: ...


def eps_to_x0(x: Tensor, eps: Tensor, ab: Tensor | float) -> Tensor:
    """x0_hat = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)   (Ho et al. 2020, eq. 15)."""
    ab = broadcast(ab, x)
    return (x - (1 - ab).sqrt() * eps) / ab.sqrt()


def x0_to_eps(x: Tensor, x0: Tensor, ab: Tensor | float) -> Tensor:
    """Inverse of `eps_to_x0`: eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)."""
    ab = broadcast(ab, x)
    return (x - ab.sqrt() * x0) / (1 - ab).sqrt()


def v_to_x0(x: Tensor, v: Tensor, ab: Tensor | float) -> Tensor:
    """x0_hat = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v, with v = sqrt(alpha_bar) eps -
    sqrt(1 - alpha_bar) x0 (Salimans & Ho 2022, sec. 4 and App. D)."""
    ab = broadcast(ab, x)
    return ab.sqrt() * x - (1 - ab).sqrt() * v


def v_to_eps(x: Tensor, v: Tensor, ab: Tensor | float) -> Tensor:
    """eps_hat = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v: the noise implied by a
    v-prediction (Salimans & Ho 2022, App. D), so a v-network serves every eps sampler."""
    ab = broadcast(ab, x)
    return (1 - ab).sqrt() * x + ab.sqrt() * v


def v_target(x0: Tensor, eps: Tensor, ab: Tensor | float) -> Tensor:
    """v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0, the regression target of a
    v-prediction network (Salimans & Ho 2022, sec. 4)."""
    ab = broadcast(ab, x0)
    return ab.sqrt() * eps - (1 - ab).sqrt() * x0


def eps_to_score(x: Tensor, eps: Tensor, ab: Tensor | float) -> Tensor:
    """grad_x log p_t(x) = -eps / sqrt(1 - alpha_bar)   (Song et al. 2021 SDE paper, eq. 4 / DSM)."""
    return -eps / broadcast(ab, x).mul(-1).add(1).sqrt()


class EpsDenoiser:
    """Wrap a backbone `net(x, timesteps, class_labels=...)` that predicts eps, or v with
    `prediction="v"` (converted to eps by `v_to_eps` after guidance), as a `Denoiser`.

    Classifier-free guidance (Ho & Salimans 2022, eq. 6, written with scale s = 1 + w):
    eps = eps(x, null) + s * (eps(x, c) - eps(x, null)); s = 1 is plain conditional sampling,
    s = 0 unconditional. `null_class` is the label index reserved for "no label" (the model
    trains it by label dropout). `image_cond` is an image condition (label map or source image)
    passed to the network as `seg` at every step; guidance acts on the class labels only. `clip_x0` clamps the implied x0 to [-1, 1] and returns the
    matching eps (Ho et al. 2020 clip the predicted x0 when sampling).
    """

    def __init__(self, net: nn.Module, alpha_bar: Tensor, *, null_class: int | None = None,
                 clip_x0: bool = False, image_cond: Tensor | None = None,
                 prediction: Prediction = "eps") -> None:
        self.net = net
        self.prediction = prediction  # what the network outputs: "eps" or "v"
        self.alpha_bar = alpha_bar
        self.null_class = null_class
        self.clip_x0 = clip_x0
        self.image_cond = image_cond  # (B, C_cond, *spatial) fixed for the whole trajectory

    def _net(self, x: Tensor, t: Tensor, labels: Tensor | None) -> Tensor:
        if self.image_cond is None:
            return self.net(x, timesteps=t, class_labels=labels)
        seg = self.image_cond
        if len(seg) != len(x):  # the guidance pass stacks [conditional, unconditional]
            seg = seg.repeat(len(x) // len(seg), *([1] * (seg.ndim - 1)))
        return self.net(x, timesteps=t, seg=seg, class_labels=labels)

    def __call__(self, x: Tensor, t: Tensor, *, cond: Tensor | None = None,
                 guidance: float = 1.0) -> Tensor:
        if self.null_class is None:
            eps = self._net(x, t, None)
        else:
            null = torch.full((x.shape[0],), self.null_class, dtype=torch.long, device=x.device)
            if cond is None or guidance == 0.0:
                eps = self._net(x, t, null)
            elif guidance == 1.0:
                eps = self._net(x, t, cond.long())
            else:  # one batched pass for conditional and unconditional estimates
                both = self._net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond.long(), null]))
                eps_c, eps_u = both.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)  # affine in the output: same for v
        if self.prediction == "eps" and not self.clip_x0:
            return eps
        ab = self.alpha_bar.to(x.device, x.dtype)[t]
        if self.prediction == "v":
            eps = v_to_eps(x, eps, ab)
        if self.clip_x0:
            eps = x0_to_eps(x, eps_to_x0(x, eps, ab).clamp(-1, 1), ab)
        return eps
