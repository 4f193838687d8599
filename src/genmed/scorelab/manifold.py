"""Data on a manifold (the unit circle in R^2): why one tiny noise level is not enough.

Mission Part C.1 / Song & Ermon (2019), Sec. 3: data on a thin manifold have no useful score off
it. A score model learned by denoising score matching at a single tiny noise level sigma_min only
ever sees points within a few sigma_min of the circle, so away from it its field is
extrapolation, and Langevin from random starts gets no reliable direction. Trained over noise
levels sigma_1 > ... > sigma_L (NCSN) it has seen the whole plane, and annealed Langevin
(Algorithm 1) leads samples back to the circle.

Also the exact score of the noised circle, for the score-field plot (uniform angle, radius R):
    p_sigma(x) propto exp(-(r^2 + R^2) / 2 sigma^2) I_0(r R / sigma^2),
    grad log p_sigma(x) = (-r + R I_1(rR/sigma^2) / I_0(rR/sigma^2)) / sigma^2 * x / r,
with exponentially scaled Bessel functions (`torch.special.i0e`, `i1e`) for stability.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from genmed.errors import UserError, check_positive
from genmed.scorelab.samplers import langevin


@dataclass(frozen=True)
class ManifoldConfig:
    """Settings of the manifold experiment (lengths in data units, circle radius = radius)."""

    radius: float = 1.0  # circle radius
    sigma_min: float = 0.01  # the single tiny noise level (and the last annealed level)
    sigma_max: float = 2.0  # the largest annealed level (~ the spread of the start points)
    n_levels: int = 10  # annealed noise levels, geometric
    steps_each: int = 100  # Langevin steps per level (single level: n_levels * steps_each)
    step_ratio: float = 0.1  # Langevin step eps_i = step_ratio * sigma_i^2 (Song & Ermon 2019)
    box: float = 3.0  # random starts uniform in [-box, box]^2
    n_samples: int = 1000  # chains per sampler
    train_steps: int = 2000  # Adam steps per score network
    batch: int = 512  # training batch size
    hidden: int = 128  # MLP width
    lr: float = 2e-3  # Adam learning rate
    tol: float = 0.05  # "on the manifold": distance to the circle below tol
    seed: int = 0  # seeds data, networks, starts and chains

    def __post_init__(self) -> None:
        for name in ("radius", "sigma_min", "sigma_max", "n_levels", "steps_each", "step_ratio", "box",
                     "n_samples", "train_steps", "batch", "hidden", "lr", "tol"):
            check_positive(name, getattr(self, name))
        if self.sigma_min >= self.sigma_max:
            raise UserError(f"sigma_min={self.sigma_min!r} must be < sigma_max={self.sigma_max!r}")
        if self.n_levels < 2:
            raise UserError(f"n_levels={self.n_levels!r} must be >= 2")

    def sigmas(self) -> Tensor:
        """The annealed noise levels sigma_1 > ... > sigma_L, geometric (float32)."""
        return torch.exp(torch.linspace(math.log(self.sigma_max), math.log(self.sigma_min), self.n_levels))


def circle_samples(n: int, radius: float, g: torch.Generator) -> Tensor:
    """n points uniform on the circle of the given radius, (n, 2)."""
    th = 2 * math.pi * torch.rand(n, generator=g)
    return radius * torch.stack([th.cos(), th.sin()], -1)


def distance_to_circle(x: Tensor | np.ndarray, radius: float = 1.0) -> Tensor | np.ndarray:
    """Euclidean distance of each point (N, 2) to the circle: | |x| - R |."""
    if isinstance(x, Tensor):
        return (x.norm(dim=-1) - radius).abs()
    return np.abs(np.linalg.norm(x, axis=-1) - radius)


def circle_score(x: Tensor, sigma: float, radius: float = 1.0) -> Tensor:
    """Exact score of the uniform circle convolved with N(0, sigma^2 I), (N, 2) -> (N, 2)."""
    r = x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    z = r * radius / sigma**2
    ratio = torch.special.i1e(z) / torch.special.i0e(z)  # I1/I0, stable for large z
    return (-r + radius * ratio) / sigma**2 * x / r


class NoiseScoreNet(nn.Module):
    """MLP s_theta(x, sigma) for 2-D points: input (x, log sigma), output / sigma (NCSN-style
    conditioning, Song & Ermon 2019, Sec. 4.2)."""

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2))

    def forward(self, x: Tensor, sigma: Tensor) -> Tensor:  # x (N, 2), sigma (N,) -> (N, 2)
        h = torch.cat([x, torch.log(sigma)[:, None]], -1)
        return self.net(h) / sigma[:, None]


def train_score_net(cfg: ManifoldConfig, sigmas: Tensor, seed: int) -> NoiseScoreNet:
    """Denoising score matching on circle data at noise levels `sigmas` (Song & Ermon 2019, eq. 6:
    lambda(sigma) = sigma^2, target -(x_noisy - x) / sigma^2). A teaching toy (a 2-D MLP on a
    circle, seconds on a CPU) with its own loop, deliberately outside the training engine."""
    torch.manual_seed(seed)
    net = NoiseScoreNet(cfg.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.train_steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(cfg.train_steps):
        x = circle_samples(cfg.batch, cfg.radius, g)
        sig = sigmas[torch.randint(len(sigmas), (cfg.batch,), generator=g)]
        z = torch.randn(cfg.batch, 2, generator=g)
        out = net(x + sig[:, None] * z, sig)
        loss = 0.5 * ((sig[:, None] * out + z) ** 2).sum(-1).mean()  # sigma^2 |s + z/sigma|^2 / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def _net_score(net: nn.Module):
    def score(x: Tensor, sigma: float) -> Tensor:
        with torch.no_grad():
            return net(x, torch.full((x.shape[0],), float(sigma)))
    return score


def _stats(x: Tensor, cfg: ManifoldConfig) -> dict[str, float]:
    d = distance_to_circle(x, cfg.radius)
    finite = torch.isfinite(d)
    d = torch.where(finite, d, torch.full_like(d, float("inf")))
    return {"mean_distance": float(d[finite].mean()) if finite.any() else float("inf"),
            "median_distance": float(d.median()),
            "fraction_within_tol": float((d < cfg.tol).double().mean()),
            "fraction_finite": float(finite.double().mean())}


def run_manifold(cfg: ManifoldConfig = ManifoldConfig()) -> dict[str, Any]:
    """Train both score models, sample from the same random starts, report distances to the circle.

    Rows: single-level Langevin with the single-sigma model; annealed Langevin with the
    multi-level model; and, as a control, single-level Langevin with the EXACT score at sigma_min.
    """
    sigmas = cfg.sigmas()
    single = train_score_net(cfg, sigmas[-1:], seed=cfg.seed + 1)
    multi = train_score_net(cfg, sigmas, seed=cfg.seed + 2)
    g0 = torch.Generator().manual_seed(cfg.seed + 3)
    start = (2 * torch.rand(cfg.n_samples, 2, generator=g0) - 1) * cfg.box
    n_total = cfg.n_levels * cfg.steps_each
    eps_min = cfg.step_ratio * cfg.sigma_min**2

    def run(score, levels: list[float]) -> Tensor:
        g = torch.Generator().manual_seed(cfg.seed + 4)
        x = start.clone()
        steps = n_total if len(levels) == 1 else cfg.steps_each
        for s in levels:
            x = langevin(score, x, s, n_steps=steps, step_size=cfg.step_ratio * s**2, generator=g)
        return x

    results = {
        "single_level_learned": run(_net_score(single), [float(sigmas[-1])]),
        "annealed_learned": run(_net_score(multi), [float(s) for s in sigmas]),
        "single_level_exact": run(lambda x, s: circle_score(x, s, cfg.radius), [float(sigmas[-1])]),
    }
    rows = [{"method": k, **_stats(v, cfg)} for k, v in results.items()]
    return {"config": asdict(cfg), "rows": rows, "start": {**_stats(start, cfg)}, "n_steps_total": n_total,
            "step_size_last": eps_min, "samples": results, "start_points": start,
            "nets": {"single": single, "multi": multi}, "sigmas": sigmas.tolist()}
