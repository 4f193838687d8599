"""Discrete-time noise schedules (pure functions): alpha_bar_t and the sampling time grid.

Forward process (Ho et al. 2020, eq. 4): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
t = 0..T-1. Betas come from MONAI's `NoiseSchedules` (linear: Ho et al. 2020 sec. 4,
beta 1e-4..0.02; cosine: Nichol & Dhariwal 2021 eq. 17). A `DiscreteSchedule` pairs alpha_bar
with the descending time steps a sampler visits; samplers take it whole, so any grid works
with any solver (k-diffusion style). Nothing here holds mutable state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from monai.networks.schedulers.scheduler import NoiseSchedules
from torch import Tensor

from genmed.errors import UserError, check_choice

ScheduleKind = Literal["linear", "cosine"]
SCHEDULE_KINDS: tuple[str, ...] = ("linear", "cosine")


def alpha_bar(kind: ScheduleKind, num_train_timesteps: int = 1000) -> Tensor:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s), shape (T,), float64, decreasing from ~1."""
    check_choice("schedule", kind, SCHEDULE_KINDS)
    if num_train_timesteps < 2:
        raise UserError(f"num_train_timesteps={num_train_timesteps} must be >= 2")
    if kind == "linear":
        # Ho et al. (2020) used beta 1e-4..0.02 for T=1000; rescale so other T keep the same path.
        scale = 1000.0 / num_train_timesteps
        betas = NoiseSchedules["linear_beta"](num_train_timesteps, 1e-4 * scale, 0.02 * scale)
    else:
        betas, _, _ = NoiseSchedules["cosine"](num_train_timesteps)
    return torch.cumprod(1.0 - betas.double(), dim=0)


Spacing = Literal["uniform", "quadratic", "logsnr"]
SPACINGS: tuple[str, ...] = ("uniform", "quadratic", "logsnr")


def timestep_grid(ab: Tensor, steps: int, spacing: Spacing = "logsnr",
                  t_start: int | None = None) -> Tensor:
    """min(steps, t_start + 1) distinct descending integer times from `t_start` (default T-1)
    to 0.

    "uniform": evenly spaced in t (DDIM, Song et al. 2021); "quadratic": t ~ i^2 (DDIM, sec.
    D.2), denser near the data; "logsnr": evenly spaced in lambda = log(alpha/sigma) (Lu et al.
    2022, sec. 3.3). With steps >= t_start + 1 every time t_start..0 is visited whatever the
    spacing (so "ddpm" with steps = T is Ho et al.'s Algorithm 2). Otherwise the spaced times are
    rounded to integers; where rounding merges neighbours (log-SNR and quadratic grids near
    t = 0), each later time is moved to the next free integer below its predecessor, keeping
    room for the ones still to come, so exactly `steps` times are returned and none is lost.
    """
    check_choice("spacing", spacing, SPACINGS)
    T = ab.shape[0]
    top = T - 1 if t_start is None else int(t_start)
    if not 0 <= top < T:
        raise UserError(f"t_start={t_start} must be between 0 and {T - 1}")
    if steps < 1:
        raise UserError(f"steps={steps} must be >= 1")
    steps = min(int(steps), top + 1)
    if steps == top + 1:
        return torch.arange(top, -1, -1)
    if steps == 1:
        return torch.tensor([top])
    if spacing == "uniform":
        grid = torch.linspace(top, 0, steps).round().long()
    elif spacing == "quadratic":
        grid = (torch.linspace(top**0.5, 0, steps) ** 2).round().long()
    else:
        lam = 0.5 * torch.log(ab[: top + 1] / (1 - ab[: top + 1]))  # decreasing in t
        targets = torch.linspace(float(lam[top]), float(lam[0]), steps, dtype=lam.dtype)
        grid = torch.searchsorted(-lam, -targets).clamp(0, top)
    return _distinct_descending(grid, top)


def _distinct_descending(grid: Tensor, top: int) -> Tensor:
    """`grid` (non-increasing, length 2 <= n <= top + 1) made strictly decreasing from `top` to
    0: time i is clamped to [n - 1 - i, time i-1 - 1], so merged duplicates take the next free
    integers and every time stays in range; a grid without duplicates is unchanged."""
    n = len(grid)
    out = [top]
    for i in range(1, n - 1):
        out.append(min(max(int(grid[i]), n - 1 - i), out[-1] - 1))
    return torch.tensor([*out, 0])


@dataclass(frozen=True)
class DiscreteSchedule:
    """alpha_bar (T,) and the descending times a sampler visits; after the last it reaches t=-1
    where alpha_bar = 1 (clean data)."""

    alpha_bar: Tensor  # (T,) float64
    timesteps: Tensor  # (S,) long, descending

    def pairs(self) -> list[tuple[int, float, float]]:
        """(t, alpha_bar_t, alpha_bar_prev) for each step, alpha_bar_prev = 1 after t = 0."""
        ts = [int(t) for t in self.timesteps]
        prev = ts[1:] + [-1]
        ab = self.alpha_bar
        return [(t, float(ab[t]), 1.0 if p < 0 else float(ab[p])) for t, p in zip(ts, prev)]


def make_schedule(kind: ScheduleKind, num_train_timesteps: int, steps: int | None = None,
                  t_start: int | None = None, spacing: Spacing = "logsnr") -> DiscreteSchedule:
    """Schedule of `steps` times (default: all, t_start..0) from `t_start` (default T-1) to 0."""
    return schedule_from_alpha_bar(alpha_bar(kind, num_train_timesteps), steps, t_start, spacing)


def schedule_from_alpha_bar(ab: Tensor, steps: int | None = None, t_start: int | None = None,
                            spacing: Spacing = "logsnr") -> DiscreteSchedule:
    """Like `make_schedule` but for a given alpha_bar (T,)."""
    top = ab.shape[0] - 1 if t_start is None else int(t_start)
    n = top + 1 if steps is None else int(steps)
    return DiscreteSchedule(alpha_bar=ab, timesteps=timestep_grid(ab, n, spacing, t_start))


def broadcast(v: Tensor | float, x: Tensor) -> Tensor:
    """Per-sample scalars (B,) reshaped to (B, 1, ..., 1) to broadcast against x."""
    v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    return v.reshape(-1, *([1] * (x.ndim - 1))) if v.ndim else v
