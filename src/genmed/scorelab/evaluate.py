"""How close are samples to a known mixture? W1, mode weights, two-sample and fit tests.

- 1-D: Wasserstein-1 to exact samples (`scipy.stats.wasserstein_distance`).
- Mode weights: the share of samples whose most responsible component is j (t = 0).
- d >= 2: the energy-distance permutation test (Szekely & Rizzo 2004; Baringhaus & Franz 2004).
- Goodness of fit to log_prob: KS against the CDF integrated from exp(log_prob) (1-D) and a
  chi-square test of counts in grid cells against exp(log_prob) integrated per cell (2-D).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy import stats

from genmed.scorelab.mixture import GaussianMixture


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def w1(x: Any, y: Any) -> float:
    """Wasserstein-1 distance between two 1-D samples (data units)."""
    return float(stats.wasserstein_distance(_np(x), _np(y)))


def mode_weights(gm: GaussianMixture, x: Any) -> np.ndarray:
    """(K,) fraction of samples assigned (by the largest t = 0 responsibility) to each component."""
    resp = gm.responsibilities(_np(x), 0.0)
    counts = np.bincount(resp.argmax(1), minlength=gm.n_components)
    return counts / max(len(resp), 1)


def energy_test(x: Any, y: Any, *, n_perm: int = 200, seed: int = 0) -> tuple[float, float]:
    """Energy-distance two-sample permutation test; returns (statistic, p-value).

    E = 2 E|X - Y| - E|X - X'| - E|Y - Y'| (V-statistic), p = (1 + #{E_perm >= E}) / (1 + n_perm).
    """
    a = torch.as_tensor(_np(x)).reshape(len(_np(x)), -1)
    b = torch.as_tensor(_np(y)).reshape(len(_np(y)), -1)
    dist = torch.cdist(torch.cat([a, b]), torch.cat([a, b]))
    n, m = len(a), len(b)
    g = torch.Generator().manual_seed(seed)
    # Column 0 is the observed split, the others random relabellings (one-hot in x's group).
    labels = torch.zeros(n + m, n_perm + 1, dtype=dist.dtype)
    labels[:n, 0] = 1
    for k in range(1, n_perm + 1):
        labels[torch.randperm(n + m, generator=g)[:n], k] = 1
    other = 1 - labels
    d_l, d_o = dist @ labels, dist @ other
    xy = (other * d_l).sum(0) / (n * m)
    xx = (labels * d_l).sum(0) / (n * n)
    yy = (other * d_o).sum(0) / (m * m)
    e = 2 * xy - xx - yy
    observed = float(e[0])
    p = (1 + int((e[1:] >= e[0]).sum())) / (1 + n_perm)
    return observed, float(p)


def ks_fit_1d(gm: GaussianMixture, x: Any, t: float = 0.0, n_grid: int = 20001, **kw: Any) -> tuple[float, float]:
    """KS test of 1-D samples against the CDF obtained by integrating exp(log_prob) at time t."""
    xs = _np(x)
    m = gm.marginal(t, **kw)
    lo = float((m.means - 12 * m.stds).min())
    hi = float((m.means + 12 * m.stds).max())
    grid = np.linspace(lo, hi, n_grid)
    dens = np.exp(gm.log_prob(grid, t, **kw))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    res = stats.kstest(xs, lambda v: np.interp(v, grid, cdf))
    return float(res.statistic), float(res.pvalue)


def chi2_fit_2d(gm: GaussianMixture, x: Any, t: float = 0.0, n_bins: int = 8, **kw: Any) -> tuple[float, float]:
    """Chi-square test of 2-D sample counts in an n_bins^2 grid against exp(log_prob) per cell.

    Cell probabilities come from a 4x-refined midpoint quadrature of exp(log_prob); cells with
    expected count < 5 are pooled into one.
    """
    xs = _np(x)
    m = gm.marginal(t, **kw)
    lo = (m.means - 3 * m.stds).min(0)
    hi = (m.means + 3 * m.stds).max(0)
    ex, ey = np.linspace(lo[0], hi[0], n_bins + 1), np.linspace(lo[1], hi[1], n_bins + 1)
    fine = 4 * n_bins
    cx = np.linspace(lo[0], hi[0], fine + 1)
    cy = np.linspace(lo[1], hi[1], fine + 1)
    mx, my = 0.5 * (cx[1:] + cx[:-1]), 0.5 * (cy[1:] + cy[:-1])
    gx, gy = np.meshgrid(mx, my, indexing="ij")
    dens = np.exp(gm.log_prob(np.stack([gx.ravel(), gy.ravel()], 1), t, **kw)).reshape(fine, fine)
    cell = dens * (cx[1] - cx[0]) * (cy[1] - cy[0])
    probs = cell.reshape(n_bins, 4, n_bins, 4).sum((1, 3)).ravel()
    counts = np.histogram2d(xs[:, 0], xs[:, 1], bins=[ex, ey])[0].ravel()
    n = len(xs)
    probs = np.append(probs, max(1.0 - probs.sum(), 0.0))  # mass outside the grid
    counts = np.append(counts, n - counts.sum())
    expected = probs * n
    small = expected < 5
    exp_f = np.append(expected[~small], expected[small].sum())
    obs_f = np.append(counts[~small], counts[small].sum())
    keep = exp_f > 0
    exp_f, obs_f = exp_f[keep], obs_f[keep]
    exp_f *= obs_f.sum() / exp_f.sum()
    res = stats.chisquare(obs_f, exp_f)
    return float(res.statistic), float(res.pvalue)


def sampler_accuracy(
    gm: GaussianMixture,
    process: Any,
    *,
    n: int = 4000,
    n_steps: int = 200,
    levels: int = 20,
    steps_each: int = 50,
    step_ratio: float = 0.5,
    t_min: float | None = None,
    seed: int = 0,
    n_ref: int = 20000,
) -> list[dict[str, Any]]:
    """Run every sampler with the exact score of `gm` from the prior and compare to exact samples.

    Returns one row per sampler: W1 to `n_ref` exact samples (1-D) or the energy test p-value
    (d >= 2, first 2000 samples against as many exact ones), mode weights and their largest error (points of %).
    "langevin" is single-level Langevin at t_min with as many steps as annealed Langevin
    (levels * steps_each) and the last level's step: the baseline that annealing fixes.
    `step_ratio` = eps / v(t_min) in Song & Ermon's Algorithm 1.
    """
    from genmed.scorelab import samplers as S

    kind = process.kind
    # Smallest noise: kernel std 0.01 (data units) for VE, t = 1e-3 for VP (Song et al. 2021).
    t_min = t_min if t_min is not None else ((0.01 / process.sigma) ** 2 if kind == "ve" else 1e-3)

    def score(x: torch.Tensor, t: float) -> torch.Tensor:
        return gm.score(x, t, kind, sigma=process.sigma, beta_min=process.beta_min, beta_max=process.beta_max)

    shape = (n,) if gm.one_d else (n, gm.dim)
    eps = step_ratio * float(process.variance(t_min))
    runs = {
        "reverse_sde": lambda x, g: S.reverse_sde(score, x, process.time_grid(n_steps, t_min), process=process, generator=g),
        "probability_flow": lambda x, g: S.probability_flow(score, x, process.time_grid(n_steps, t_min), process=process),
        "annealed_langevin": lambda x, g: S.annealed_langevin(
            score, x, process.level_grid(levels, t_min), process=process,
            n_steps_each=steps_each, eps=eps, generator=g),
        "langevin": lambda x, g: S.langevin(score, x, t_min, n_steps=levels * steps_each, step_size=eps, generator=g),
    }
    ref = gm.sample(n_ref if gm.one_d else n, seed=seed + 1000)
    rows = []
    for name, run in runs.items():
        g = torch.Generator().manual_seed(seed)
        x = run(S.prior_sample(process, shape, generator=g), g).numpy()
        mw = mode_weights(gm, x)
        row: dict[str, Any] = {"sampler": name, "process": kind, "n": n,
                               "mode_weights": mw.round(4).tolist(), "true_weights": gm.weights.round(4).tolist(),
                               "max_weight_error_points": float(100 * np.abs(mw - gm.weights).max())}
        if gm.one_d:
            row["w1"] = w1(x, ref)
        else:
            row["energy"], row["energy_p"] = energy_test(x[:2000], ref[:2000], seed=seed)
        rows.append(row)
    return rows
