"""Gaussian mixtures diffused by VE or VP noise: exact density, score and samples at any t.

The source's 1-D result (mission Part C.2) for VE noise x_t = x_0 + sigma sqrt(t) z:

    P(a, t) = sum_j w_j N(a; mu_j, sigma_j^2 + sigma^2 t),
    d/da log P(a, t) = sum_j r_j(a, t) * (-(a - mu_j) / (sigma_j^2 + sigma^2 t)),
    r_j = w_j N_j(a, t) / sum_k w_k N_k(a, t)   (the posterior responsibility).

In d dimensions with diagonal covariances and any linear-Gaussian kernel
p(x_t | x_0) = N(alpha x_0, v I) (VE: alpha = 1, v = sigma^2 t; VP: Song et al. 2021, eq. 29)
each component stays Gaussian: mean alpha mu_j, variance alpha^2 sigma_j^2 + v (per axis), and
the score is the responsibility-weighted sum of the component scores -(x - alpha mu_j) / var_j.

Everything is computed in log space (log-sum-exp, softmax responsibilities), so points 50
standard deviations away give finite values. numpy in -> numpy out (float64); torch in ->
torch out (the input's dtype and device, differentiable by autograd).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from genmed.errors import UserError
from genmed.scorelab.processes import alpha as _alpha
from genmed.scorelab.processes import check_process, check_time
from genmed.scorelab.processes import variance as _variance


def _as_array(name: str, value: Any) -> np.ndarray:
    try:
        arr = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a rectangular array of numbers, got {value!r}") from None
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{name} must be finite, got {arr.tolist()}")
    return arr


class GaussianMixture:
    """A mixture of K diagonal Gaussians in d dimensions, and its law under VE/VP noise.

    Args:
        weights: (K,) non-negative, summing to 1.
        means: (K,) for a 1-D mixture (x then has shape (N,)) or (K, d).
        stds: (K,) isotropic or (K, d) diagonal standard deviations, all > 0.
    """

    def __init__(self, weights: Any, means: Any, stds: Any) -> None:
        w = _as_array("weights", weights)
        mu = _as_array("means", means)
        s = _as_array("stds", stds)
        if w.ndim != 1 or w.size == 0:
            raise UserError(f"weights must have shape (K,), got {w.shape}")
        k = w.shape[0]
        if np.any(w < 0):
            raise UserError(f"weights must be >= 0, got {w.tolist()}")
        if abs(w.sum() - 1.0) > 1e-6:
            raise UserError(f"weights must sum to 1, got sum {w.sum():.6g}")
        if mu.ndim not in (1, 2) or mu.shape[0] != k:
            raise UserError(f"means must have shape ({k},) or ({k}, d) to match {k} weights, got {mu.shape}")
        self.one_d = mu.ndim == 1
        mu2 = mu[:, None] if self.one_d else mu
        d = mu2.shape[1]
        if s.ndim == 1 and s.shape[0] == k:
            s2 = np.repeat(s[:, None], d, axis=1)
        elif s.ndim == 2 and s.shape == (k, d):
            s2 = s
        else:
            raise UserError(f"stds must have shape ({k},) or ({k}, {d}) to match means {mu.shape}, got {s.shape}")
        if np.any(s2 <= 0):
            raise UserError(f"stds must be > 0, got {s.tolist()}")
        self.weights = w
        self.means = mu2  # (K, d)
        self.stds = s2  # (K, d)

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, weights={np.round(self.weights, 4).tolist()})"

    # ----------------------------------------------------------------- the mixture at time t
    def _params(self, t: Any, process: str, sigma: float, beta_min: float, beta_max: float):
        """Component means (K, d) and variances (K, d) at scalar time t (numpy float64)."""
        check_process(process)
        check_time(t, process)
        if sigma <= 0:
            raise UserError(f"sigma={sigma!r} must be > 0")
        t = float(t)
        a = float(_alpha(t, process, beta_min=beta_min, beta_max=beta_max))
        v = float(_variance(t, process, sigma=sigma, beta_min=beta_min, beta_max=beta_max))
        return a * self.means, a * a * self.stds**2 + v

    def marginal(
        self, t: float, process: str = "ve", sigma: float = 1.0, beta_min: float = 0.1, beta_max: float = 20.0
    ) -> GaussianMixture:
        """The mixture p_t (a GaussianMixture again: weights kept, means alpha mu, variances alpha^2 s^2 + v)."""
        m, var = self._params(t, process, sigma, beta_min, beta_max)
        return GaussianMixture(self.weights, m[:, 0] if self.one_d else m, np.sqrt(var))

    # ----------------------------------------------------------------- density and score
    def _prepare(self, x: Any, t: Any, process: str, sigma: float, beta_min: float, beta_max: float):
        is_torch = isinstance(x, torch.Tensor)
        xt = x if is_torch else torch.as_tensor(np.asarray(x, dtype=np.float64))
        if not xt.is_floating_point():
            xt = xt.double()
        want = 1 if self.one_d else 2
        if xt.ndim != want or (not self.one_d and xt.shape[1] != self.dim):
            shape = "(N,)" if self.one_d else f"(N, {self.dim})"
            raise UserError(f"x must have shape {shape} for this mixture, got {tuple(xt.shape)}")
        x2 = xt[:, None] if self.one_d else xt
        check_process(process)
        check_time(t, process)
        if sigma <= 0:
            raise UserError(f"sigma={sigma!r} must be > 0")
        # Per-sample or scalar time; kernel parameters in x's dtype so autograd stays in one graph.
        tt = torch.as_tensor(t.detach() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=np.float64))
        tt = tt.to(dtype=x2.dtype, device=x2.device)
        if tt.ndim > 1 or (tt.ndim == 1 and tt.shape[0] != x2.shape[0]):
            raise UserError(f"t must be a scalar or have shape ({x2.shape[0]},), got {tuple(tt.shape)}")
        a = _alpha(tt, process, beta_min=beta_min, beta_max=beta_max).reshape(-1, 1, 1)
        v = _variance(tt, process, sigma=sigma, beta_min=beta_min, beta_max=beta_max).reshape(-1, 1, 1)
        mu = torch.as_tensor(self.means, dtype=x2.dtype, device=x2.device)[None]  # (1, K, d)
        s2 = torch.as_tensor(self.stds**2, dtype=x2.dtype, device=x2.device)[None]
        mean = a * mu  # (N or 1, K, d)
        var = a * a * s2 + v
        diff = x2[:, None, :] - mean  # (N, K, d)
        logw = torch.log(torch.as_tensor(self.weights, dtype=x2.dtype, device=x2.device))
        log_comp = -0.5 * (diff * diff / var + torch.log(2 * math.pi * var)).sum(-1)  # (N, K)
        return is_torch, x2, diff, var, logw + log_comp

    def log_prob(
        self, x: Any, t: Any = 0.0, process: str = "ve", sigma: float = 1.0, beta_min: float = 0.1, beta_max: float = 20.0
    ) -> Any:
        """log p_t(x) by log-sum-exp over components; x: (N,) if 1-D or (N, d) -> (N,)."""
        is_torch, _, _, _, log_joint = self._prepare(x, t, process, sigma, beta_min, beta_max)
        out = torch.logsumexp(log_joint, dim=-1)
        return out if is_torch else out.numpy()

    def score(
        self, x: Any, t: Any = 0.0, process: str = "ve", sigma: float = 1.0, beta_min: float = 0.1, beta_max: float = 20.0
    ) -> Any:
        """grad_x log p_t(x) = sum_j r_j(x) (-(x - alpha mu_j) / var_j); same shape and kind as x."""
        is_torch, _, diff, var, log_joint = self._prepare(x, t, process, sigma, beta_min, beta_max)
        resp = torch.softmax(log_joint, dim=-1)  # (N, K), stable far from every component
        out = (resp[..., None] * (-diff / var)).sum(1)  # (N, d)
        out = out[:, 0] if self.one_d else out
        return out if is_torch else out.numpy()

    def responsibilities(self, x: Any, t: Any = 0.0, process: str = "ve", **kw: float) -> Any:
        """Posterior component probabilities r_j(x) at time t, (N, K); used for mode weights."""
        is_torch, _, _, _, log_joint = self._prepare(x, t, process, kw.get("sigma", 1.0),
                                                     kw.get("beta_min", 0.1), kw.get("beta_max", 20.0))
        out = torch.softmax(log_joint, dim=-1)
        return out if is_torch else out.numpy()

    # ----------------------------------------------------------------- samples
    def sample(
        self,
        n: int,
        t: float = 0.0,
        process: str = "ve",
        sigma: float = 1.0,
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        seed: int | None = None,
    ) -> np.ndarray:
        """n exact samples of p_t as numpy float64, (n,) for a 1-D mixture or (n, d)."""
        if int(n) != n or n < 0:
            raise UserError(f"n={n!r} must be a non-negative integer")
        mean, var = self._params(t, process, sigma, beta_min, beta_max)
        rng = np.random.default_rng(seed)
        comp = rng.choice(self.n_components, size=int(n), p=self.weights / self.weights.sum())
        x = mean[comp] + np.sqrt(var[comp]) * rng.standard_normal((int(n), self.dim))
        return x[:, 0] if self.one_d else x
