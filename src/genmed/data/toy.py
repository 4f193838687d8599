"""Synthetic Gaussian mixtures for mode-collapse benchmarks and score-theory checks.

Published 2-D settings (Srivastava et al., VEEGAN, NeurIPS 2017, Sec. 5.1; Lin et al.,
PacGAN, NeurIPS 2018, Sec. 5.1 / Table 1):
- ring: 8 Gaussians, means (cos 2 pi i/8, sin 2 pi i/8), i = 0..7, std 0.01;
- grid: 25 Gaussians, means on {-4, -2, 0, 2, 4}^2, std 0.05;
both with equal weights. 1-D mixtures (any means, stds, weights) serve the score lab.

Samplers are pure functions of (spec, n, generator). `ToyDataset` wraps a fixed draw as a
torch Dataset of {"image": (D,) float, "label": () long mode index} so the one training
engine trains MLP-backbone families on it like on images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from genmed.errors import UserError, check_choice

MixtureName = Literal["ring", "grid"]
MIXTURES: tuple[str, ...] = ("ring", "grid")


@dataclass(frozen=True)
class MixtureSpec:
    """A Gaussian mixture with isotropic components.

    means: K tuples of D floats (component centres); stds: K floats (per-component isotropic
    standard deviation, same units as the means); weights: K floats summing to 1.
    """

    name: str
    means: tuple[tuple[float, ...], ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        k = len(self.means)
        if k == 0:
            raise UserError(f"mixture {self.name!r}: needs at least one component")
        dims = {len(m) for m in self.means}
        if len(dims) != 1 or 0 in dims:
            raise UserError(f"mixture {self.name!r}: all means must have the same dimension >= 1")
        if len(self.stds) != k or len(self.weights) != k:
            raise UserError(
                f"mixture {self.name!r}: {k} means but {len(self.stds)} stds and "
                f"{len(self.weights)} weights"
            )
        if any(not s > 0 for s in self.stds):
            raise UserError(f"mixture {self.name!r}: stds must be > 0, got {self.stds}")
        if any(w < 0 for w in self.weights) or not math.isclose(sum(self.weights), 1.0, abs_tol=1e-6):
            raise UserError(f"mixture {self.name!r}: weights must be >= 0 and sum to 1")

    @property
    def n_modes(self) -> int:
        return len(self.means)

    @property
    def dim(self) -> int:
        return len(self.means[0])

    def means_array(self) -> np.ndarray:
        """(K, D) float64 component means."""
        return np.asarray(self.means, dtype=np.float64)

    def stds_array(self) -> np.ndarray:
        """(K,) float64 component standard deviations."""
        return np.asarray(self.stds, dtype=np.float64)

    def weights_array(self) -> np.ndarray:
        """(K,) float64 component weights."""
        return np.asarray(self.weights, dtype=np.float64)


def ring_mixture(n_modes: int = 8, radius: float = 1.0, std: float = 0.01) -> MixtureSpec:
    """Ring of `n_modes` equal-weight Gaussians on a circle (VEEGAN/PacGAN: 8, r=1, std 0.01)."""
    if n_modes < 1:
        raise UserError(f"n_modes={n_modes} must be >= 1")
    means = tuple(
        (radius * math.cos(2 * math.pi * i / n_modes), radius * math.sin(2 * math.pi * i / n_modes))
        for i in range(n_modes)
    )
    return MixtureSpec("ring", means, (std,) * n_modes, (1.0 / n_modes,) * n_modes)


def grid_mixture(side: int = 5, spacing: float = 2.0, std: float = 0.05) -> MixtureSpec:
    """`side` x `side` grid of equal-weight Gaussians centred on 0 (published: 5, 2.0, 0.05)."""
    if side < 1:
        raise UserError(f"side={side} must be >= 1")
    coords = [spacing * (i - (side - 1) / 2) for i in range(side)]
    means = tuple((x, y) for x in coords for y in coords)
    k = len(means)
    return MixtureSpec("grid", means, (std,) * k, (1.0 / k,) * k)


def mixture_1d(
    means: tuple[float, ...], stds: tuple[float, ...], weights: tuple[float, ...] | None = None
) -> MixtureSpec:
    """A 1-D Gaussian mixture; equal weights when `weights` is None."""
    k = len(means)
    w = tuple(weights) if weights is not None else (1.0 / max(k, 1),) * k
    return MixtureSpec("1d", tuple((float(m),) for m in means), tuple(map(float, stds)), w)


def get_mixture(name: str) -> MixtureSpec:
    """The published mixture called `name` ("ring" or "grid")."""
    check_choice("mixture", name, MIXTURES)
    return ring_mixture() if name == "ring" else grid_mixture()


def sample_mixture(
    spec: MixtureSpec, n: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw `n` points: returns (x (n, D) float32, mode index (n,) long)."""
    if n < 0:
        raise UserError(f"n={n} must be >= 0")
    weights = torch.tensor(spec.weights, dtype=torch.float64)
    modes = torch.multinomial(weights, n, replacement=True, generator=generator) if n else (
        torch.zeros(0, dtype=torch.long)
    )
    means = torch.tensor(spec.means, dtype=torch.float64)
    stds = torch.tensor(spec.stds, dtype=torch.float64)
    noise = torch.randn(n, spec.dim, dtype=torch.float64, generator=generator)
    x = means[modes] + stds[modes, None] * noise
    return x.float(), modes


def mixture_log_density(spec: MixtureSpec, x: np.ndarray) -> np.ndarray:
    """log p(x) of the mixture at points x (n, D); float64 (n,)."""
    x = np.asarray(x, dtype=np.float64).reshape(-1, spec.dim)
    mu, sd, w = spec.means_array(), spec.stds_array(), spec.weights_array()
    sq = ((x[:, None, :] - mu[None]) ** 2).sum(-1)  # (n, K)
    log_comp = -0.5 * sq / sd**2 - spec.dim * np.log(sd * math.sqrt(2 * math.pi))
    with np.errstate(divide="ignore"):
        a = log_comp + np.log(w)[None]
    m = a.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(a - m).sum(axis=1, keepdims=True)))[:, 0]


class ToyDataset(Dataset):
    """A fixed draw of `n` mixture points: items {"image": (D,) float, "label": () long}.

    "label" is the mode the point was drawn from (for class-conditional models and for
    checks); unconditional models ignore it. The draw depends only on (spec, n, seed).
    """

    def __init__(self, spec: MixtureSpec | str, n: int = 10_000, seed: int = 0) -> None:
        self.spec = get_mixture(spec) if isinstance(spec, str) else spec
        if n < 1:
            raise UserError(f"n={n} must be >= 1")
        gen = torch.Generator().manual_seed(int(seed))
        self.x, self.modes = sample_mixture(self.spec, n, gen)

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"image": self.x[i], "label": self.modes[i]}
