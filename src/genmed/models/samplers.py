"""Stateless diffusion samplers sharing one signature (k-diffusion style).

    sample_x(denoiser, x, schedule, *, cond=None, guidance=1.0, generator=None,
             callback=None, progress=False) -> x_0

`denoiser` follows `genmed.models.denoiser.Denoiser` (eps prediction), `x` is the start (pure
noise, or a partly noised image for SDEdit-style reconstruction), `schedule` a
`DiscreteSchedule` (alpha_bar and the descending times to visit). Samplers are pure functions:
no step counters, randomness only from `generator`. `callback(i, t, x, x0_hat)` sees each step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal

import torch
from torch import Tensor

from genmed.errors import check_choice
from genmed.models.base import randn
from genmed.models.denoiser import Denoiser, eps_to_x0
from genmed.models.schedules import DiscreteSchedule

SamplerName = Literal["ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde"]
SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpmpp_2m", "dpmpp_2m_sde")
Callback = Callable[[int, int, Tensor, Tensor], None]


def _steps(schedule: DiscreteSchedule, progress: bool, name: str) -> Iterable:
    pairs = list(enumerate(schedule.pairs()))
    if not progress:
        return pairs
    from rich.progress import track

    return track(pairs, description=f"sampling ({name})", transient=True)


def _eval(denoiser: Denoiser, x: Tensor, t: int, ab: float, cond: Tensor | None,
          guidance: float) -> tuple[Tensor, Tensor]:
    tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    eps = denoiser(x, tt, cond=cond, guidance=guidance)
    return eps, eps_to_x0(x, eps, ab)


def _lam(ab: float) -> float:
    """lambda = log(alpha / sigma) = 0.5 log(alpha_bar / (1 - alpha_bar)) (Lu et al. 2022)."""
    return 0.5 * math.log(ab / (1 - ab))


def _noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return randn(tuple(x.shape), generator, x.device, x.dtype)


@torch.no_grad()
def sample_ddim(denoiser: Denoiser, x: Tensor, schedule: DiscreteSchedule, *,
                cond: Tensor | None = None, guidance: float = 1.0,
                generator: torch.Generator | None = None, callback: Callback | None = None,
                progress: bool = False, eta: float = 0.0) -> Tensor:
    """DDIM (Song, Meng & Ermon 2021, eq. 12; sigma from eq. 16 scaled by `eta`).

    eta = 0: deterministic ODE-like sampler; eta = 1: ancestral DDPM on the same grid.
    """
    for i, (t, ab, ab_prev) in _steps(schedule, progress, "ddim"):
        eps, x0 = _eval(denoiser, x, t, ab, cond, guidance)
        sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        direction = math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
        x = math.sqrt(ab_prev) * x0 + direction
        if sigma > 0:
            x = x + sigma * _noise(x, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_ddpm(denoiser: Denoiser, x: Tensor, schedule: DiscreteSchedule, *,
                cond: Tensor | None = None, guidance: float = 1.0,
                generator: torch.Generator | None = None, callback: Callback | None = None,
                progress: bool = False) -> Tensor:
    """Ancestral DDPM (Ho et al. 2020, Algorithm 2, posterior variance beta_tilde, eq. 7).

    On the full grid t = T-1..0 this is Algorithm 2 exactly; on a coarser grid it is the same
    posterior step with alpha_t = alpha_bar_t / alpha_bar_prev (DDIM with eta = 1).
    """
    for i, (t, ab, ab_prev) in _steps(schedule, progress, "ddpm"):
        eps, x0 = _eval(denoiser, x, t, ab, cond, guidance)
        alpha = ab / ab_prev
        beta = 1 - alpha
        # eq. 11: mu = (x_t - beta / sqrt(1 - alpha_bar) eps) / sqrt(alpha)
        x = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(alpha)
        var = (1 - ab_prev) / (1 - ab) * beta  # beta_tilde; 0 at the last step (z = 0)
        if var > 0:
            x = x + math.sqrt(var) * _noise(x, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_dpmpp_2m(denoiser: Denoiser, x: Tensor, schedule: DiscreteSchedule, *,
                    cond: Tensor | None = None, guidance: float = 1.0,
                    generator: torch.Generator | None = None, callback: Callback | None = None,
                    progress: bool = False) -> Tensor:
    """DPM-Solver++(2M), multistep second order in data prediction (Lu et al. 2022, Alg. 2).

    With alpha = sqrt(alpha_bar), sigma = sqrt(1 - alpha_bar), lambda = log(alpha / sigma),
    h = lambda_next - lambda:  x_next = (sigma_next / sigma) x - alpha_next (e^{-h} - 1) D,
    D = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}, r = h_prev / h (first order on the first step).
    The final step to clean data (sigma = 0) returns the denoised estimate.
    """
    old_x0: Tensor | None = None
    h_prev = 0.0
    for i, (t, ab, ab_prev) in _steps(schedule, progress, "dpmpp_2m"):
        _, x0 = _eval(denoiser, x, t, ab, cond, guidance)
        if ab_prev >= 1.0:
            x = x0
        else:
            h = _lam(ab_prev) - _lam(ab)
            sigma, sigma_next = math.sqrt(1 - ab), math.sqrt(1 - ab_prev)
            if old_x0 is None:
                d = x0
            else:
                r = h_prev / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * old_x0
            x = (sigma_next / sigma) * x - math.sqrt(ab_prev) * math.expm1(-h) * d
            h_prev = h
        old_x0 = x0
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_dpmpp_2m_sde(denoiser: Denoiser, x: Tensor, schedule: DiscreteSchedule, *,
                        cond: Tensor | None = None, guidance: float = 1.0,
                        generator: torch.Generator | None = None, callback: Callback | None = None,
                        progress: bool = False) -> Tensor:
    """SDE-DPM-Solver++(2M): the stochastic (reverse-SDE) twin of `sample_dpmpp_2m`.

    Lu et al. 2022 (DPM-Solver++, arXiv 2211.01095, Appendix: SDE solvers), midpoint form.
    With the names of `sample_dpmpp_2m`:
        x_next = (sigma_next / sigma) e^{-h} x + alpha_next (1 - e^{-2h}) x0_i
                 + 0.5 alpha_next (1 - e^{-2h}) (x0_i - x0_{i-1}) / r   (from the second step)
                 + sigma_next sqrt(1 - e^{-2h}) z,   z ~ N(0, I) from `generator`.
    The injected noise corrects errors of an imperfect denoiser the way ancestral DDPM does,
    which ODE solvers cannot (Karras et al. 2022, Sec. 4), at the cost of an ODE's determinism.
    """
    old_x0: Tensor | None = None
    h_prev = 0.0
    for i, (t, ab, ab_prev) in _steps(schedule, progress, "dpmpp_2m_sde"):
        _, x0 = _eval(denoiser, x, t, ab, cond, guidance)
        if ab_prev >= 1.0:
            x = x0
        else:
            h = _lam(ab_prev) - _lam(ab)
            sigma, sigma_next = math.sqrt(1 - ab), math.sqrt(1 - ab_prev)
            gain = -math.expm1(-2 * h) * math.sqrt(ab_prev)  # alpha_next (1 - e^{-2h})
            x = (sigma_next / sigma) * math.exp(-h) * x + gain * x0
            if old_x0 is not None:
                x = x + 0.5 * gain * (h / h_prev) * (x0 - old_x0)
            x = x + sigma_next * math.sqrt(-math.expm1(-2 * h)) * _noise(x, generator)
            h_prev = h
        old_x0 = x0
        if callback is not None:
            callback(i, t, x, x0)
    return x


@torch.no_grad()
def sample_consistency(denoiser: Denoiser, x: Tensor, schedule: DiscreteSchedule, *,
                       cond: Tensor | None = None, guidance: float = 1.0,
                       generator: torch.Generator | None = None, callback: Callback | None = None,
                       progress: bool = False) -> Tensor:
    """Multistep consistency sampling (Song et al. 2023, "Consistency Models", Algorithm 1).

    At each time the denoiser's x0 estimate is taken whole (for a consistency model it is the
    trajectory's origin f(x_t, t)), then noised afresh to the next time:
        x_next = sqrt(alpha_bar_next) x0 + sqrt(1 - alpha_bar_next) z,   z ~ N(0, I),
    the VP form of Algorithm 1's x = x0 + sqrt(tau^2 - eps^2) z; after the last time x = x0.
    One time (t = T-1) is one-step generation. A non-distilled eps-model run this way in one
    step returns its posterior mean E[x0 | x_T], a blurred average image.
    """
    for i, (t, ab, ab_prev) in _steps(schedule, progress, "consistency"):
        _, x0 = _eval(denoiser, x, t, ab, cond, guidance)
        if ab_prev >= 1.0:
            x = x0
        else:
            x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * _noise(x, generator)
        if callback is not None:
            callback(i, t, x, x0)
    return x


_SAMPLERS = {"ddpm": sample_ddpm, "ddim": sample_ddim, "dpmpp_2m": sample_dpmpp_2m,
             "dpmpp_2m_sde": sample_dpmpp_2m_sde}


def get_sampler(name: str) -> Callable[..., Tensor]:
    """The sampler function called `name` (one of `SAMPLERS`); UserError otherwise."""
    return _SAMPLERS[check_choice("sampler", name, SAMPLERS)]
