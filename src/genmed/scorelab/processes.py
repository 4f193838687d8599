"""Forward noising processes as pure functions: variance exploding (VE) and preserving (VP).

Both are linear SDEs dx = f(t) x dt + g(t) dw (Song et al. 2021, "Score-based generative
modeling through SDEs", eqs. 5, 9 and 11), so the transition kernel is Gaussian:

    p(x_t | x_0) = N(x_t; alpha(t) x_0, variance(t) I).

- VE, the source's process: x_t = x_0 + sigma sqrt(t) z, so alpha = 1, variance = sigma^2 t,
  f = 0 and g^2 = sigma^2 (any t >= 0).
- VP with linear beta(t) = beta_min + t (beta_max - beta_min), t in [0, 1]:
  alpha(t) = exp(-1/2 int_0^t beta(s) ds), variance = 1 - alpha^2, f = -beta/2, g^2 = beta
  (Song et al. 2021, eq. 11 and Appendix B).

Times may be Python floats, numpy arrays or torch tensors; results follow the input's kind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from genmed.errors import UserError, check_choice

ProcessName = Literal["ve", "vp"]
PROCESSES: tuple[str, ...] = ("ve", "vp")


def check_process(process: str) -> str:
    """Return `process` if it is "ve" or "vp", else raise a `UserError`."""
    return check_choice("process", process, PROCESSES)


def check_time(t: Any, process: str) -> None:
    """Raise a `UserError` for t < 0 (any process) or t > 1 (VP), or a non-finite t."""
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=float)
    if arr.size == 0:
        return
    if not np.all(np.isfinite(arr)):
        raise UserError(f"t must be finite, got {arr.ravel()[:5].tolist()}")
    if float(arr.min()) < 0:
        raise UserError(f"t={float(arr.min())!r} must be >= 0")
    if process == "vp" and float(arr.max()) > 1:
        raise UserError(f"t={float(arr.max())!r} must be <= 1 for process='vp'")


def _lib(t: Any):
    return torch if isinstance(t, torch.Tensor) else np


def vp_log_alpha(t: Any, beta_min: float = 0.1, beta_max: float = 20.0) -> Any:
    """log alpha(t) = -1/2 (beta_min t + 1/2 (beta_max - beta_min) t^2) (Song et al. 2021, eq. 33)."""
    return -0.5 * (beta_min * t + 0.5 * (beta_max - beta_min) * t * t)


def alpha(t: Any, process: str = "ve", *, beta_min: float = 0.1, beta_max: float = 20.0) -> Any:
    """Mean scale of the kernel p(x_t | x_0): 1 for VE, exp(-1/2 int beta) for VP."""
    check_process(process)
    lib = _lib(t)
    if process == "ve":
        return lib.ones_like(t) if lib is torch else np.ones_like(np.asarray(t, dtype=float))
    return lib.exp(vp_log_alpha(t if lib is torch else np.asarray(t, dtype=float), beta_min, beta_max))


def variance(
    t: Any, process: str = "ve", *, sigma: float = 1.0, beta_min: float = 0.1, beta_max: float = 20.0
) -> Any:
    """Variance of the kernel p(x_t | x_0): sigma^2 t for VE, 1 - alpha(t)^2 for VP."""
    check_process(process)
    lib = _lib(t)
    t = t if lib is torch else np.asarray(t, dtype=float)
    if process == "ve":
        return sigma**2 * t
    # -expm1(2 log alpha) = 1 - alpha^2 without cancellation at small t.
    return -lib.expm1(2.0 * vp_log_alpha(t, beta_min, beta_max))


def beta(t: Any, *, beta_min: float = 0.1, beta_max: float = 20.0) -> Any:
    """The VP noise rate beta(t) = beta_min + t (beta_max - beta_min)."""
    return beta_min + t * (beta_max - beta_min)


@dataclass(frozen=True)
class NoiseProcess:
    """A forward SDE dx = f(t) x dt + g(t) dw with its Gaussian kernel (Song et al. 2021).

    Holds only parameters; every method is a pure function of its arguments.
    """

    kind: ProcessName = "ve"  # "ve": x_t = x_0 + sigma sqrt(t) z; "vp": linear-beta VP SDE
    sigma: float = 1.0  # VE noise scale: kernel std at t = 1 (data units)
    beta_min: float = 0.1  # VP beta(0) (per unit time)
    beta_max: float = 20.0  # VP beta(1) (per unit time)

    def __post_init__(self) -> None:
        check_process(self.kind)
        if not (self.sigma > 0 and math.isfinite(self.sigma)):
            raise UserError(f"sigma={self.sigma!r} must be > 0")
        if not (0 <= self.beta_min <= self.beta_max):
            raise UserError(f"beta_min={self.beta_min!r}, beta_max={self.beta_max!r}: need 0 <= beta_min <= beta_max")

    @property
    def t_max(self) -> float:
        """The end of the time interval: 1 for both (VE may go further; samplers start here)."""
        return 1.0

    def alpha(self, t: Any) -> Any:
        """Kernel mean scale alpha(t)."""
        return alpha(t, self.kind, beta_min=self.beta_min, beta_max=self.beta_max)

    def variance(self, t: Any) -> Any:
        """Kernel variance (data units squared)."""
        return variance(t, self.kind, sigma=self.sigma, beta_min=self.beta_min, beta_max=self.beta_max)

    def drift_coef(self, t: Any) -> Any:
        """f(t) in the drift f(t) x: 0 for VE, -beta(t)/2 for VP."""
        if self.kind == "ve":
            return 0.0 * t
        return -0.5 * beta(t, beta_min=self.beta_min, beta_max=self.beta_max)

    def g2(self, t: Any) -> Any:
        """Squared diffusion g(t)^2: sigma^2 for VE, beta(t) for VP."""
        if self.kind == "ve":
            return self.sigma**2 + 0.0 * t
        return beta(t, beta_min=self.beta_min, beta_max=self.beta_max)

    def prior_std(self) -> float:
        """Std of the Gaussian prior used at t = 1: sigma for VE (data assumed << sigma), 1 for VP."""
        return float(self.sigma) if self.kind == "ve" else 1.0

    def t_of_variance(self, v: float) -> float:
        """Inverse of `variance`: the time whose kernel variance is v (VP: solves eq. 33 for t)."""
        if self.kind == "ve":
            return float(v) / self.sigma**2
        if not 0 <= v < 1:
            raise UserError(f"VP kernel variance {v!r} must be in [0, 1)")
        big_l = -math.log1p(-float(v))  # beta_min t + (beta_max - beta_min) t^2 / 2 = L
        delta = self.beta_max - self.beta_min
        if delta == 0:
            return big_l / self.beta_min
        return (-self.beta_min + math.sqrt(self.beta_min**2 + 2 * delta * big_l)) / delta

    def level_grid(self, n_levels: int, t_min: float) -> torch.Tensor:
        """n_levels decreasing times from t_max to t_min, geometric in the kernel std (NCSN,
        Song & Ermon 2019, Sec. 4.2): the noise levels annealed Langevin visits. float64."""
        if n_levels < 2:
            raise UserError(f"n_levels={n_levels!r} must be >= 2")
        if not (0 < t_min < self.t_max):
            raise UserError(f"t_min={t_min!r} must be in (0, {self.t_max})")
        hi, lo = math.sqrt(float(self.variance(self.t_max))), math.sqrt(float(self.variance(t_min)))
        stds = torch.exp(torch.linspace(math.log(hi), math.log(lo), n_levels, dtype=torch.float64))
        ts = torch.tensor([self.t_of_variance(float(s) ** 2) for s in stds], dtype=torch.float64)
        ts[0], ts[-1] = self.t_max, t_min
        return ts

    def time_grid(self, n_steps: int, t_min: float = 1e-3, *, end_at_zero: bool = True) -> torch.Tensor:
        """Decreasing times from t_max to t_min (n_steps + 1 points), then 0 if `end_at_zero`.

        VE: geometric in the kernel std sigma sqrt(t) (as in NCSN / Karras et al. 2022);
        VP: uniform in t (Song et al. 2021). float64.
        """
        if n_steps < 1:
            raise UserError(f"n_steps={n_steps!r} must be >= 1")
        if not (0 < t_min < self.t_max):
            raise UserError(f"t_min={t_min!r} must be in (0, {self.t_max})")
        if self.kind == "ve":
            ts = torch.exp(torch.linspace(math.log(self.t_max), math.log(t_min), n_steps + 1, dtype=torch.float64))
        else:
            ts = torch.linspace(self.t_max, t_min, n_steps + 1, dtype=torch.float64)
        return torch.cat([ts, ts.new_zeros(1)]) if end_at_zero else ts
