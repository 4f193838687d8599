"""Matplotlib figures of the score lab (returned, not saved: `genmed.fileio.save_figure` saves)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_gmm(x: np.ndarray, curves: dict[float, dict[str, np.ndarray]], title: str) -> Any:
    """Density (top) and score (bottom) against x, one line per time t."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True)
    for t, c in curves.items():
        ax1.plot(x, c["density"], label=f"t = {t:g}")
        ax2.plot(x, c["score"], label=f"t = {t:g}")
    ax1.set_ylabel("p_t(x)")
    ax2.set_ylabel("d/dx log p_t(x)")
    ax2.axhline(0, color="0.6", lw=0.7)
    ax2.set_xlabel("x")
    lim = np.nanpercentile(np.abs(np.concatenate([c["score"] for c in curves.values()])), 95)
    ax2.set_ylim(-1.2 * lim, 1.2 * lim)
    ax1.legend()
    ax1.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_dsm(result: dict[str, Any]) -> Any:
    """Left: J_naive, J_mod and J_mod - J_naive (+- 2 SE) for every theta. Right: trained scores."""
    plt = _plt()
    rows = result["rows"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    idx = np.arange(len(rows))
    ax1.plot(idx, [r["j_naive"] for r in rows], "o-", ms=3, label="J_naive (explicit)")
    ax1.plot(idx, [r["j_mod"] for r in rows], "s-", ms=3, label="J_mod (denoising)")
    d = np.array([r["diff"] for r in rows])
    se = np.array([r["diff_se"] for r in rows])
    ax1.errorbar(idx, d, yerr=2 * se, fmt="k.", ms=3, capsize=2, label="J_mod - J_naive (+-2 SE)")
    n_random = sum(r["theta"].startswith("random") for r in rows)
    ax1.axvline(n_random - 0.5, color="0.6", ls=":")
    ax1.set_xlabel(f"theta (0..{n_random - 1}: random nets; then checkpoints along training)")
    ax1.set_yscale("symlog", linthresh=1e-3)
    ax1.legend(fontsize=8)
    s = result["summary"]
    ax1.set_title(f"spread of difference / SE = {s['spread_over_se']:.2f}; C = {s['constant_c']:.4f}", fontsize=10)
    gm, proc, cfg = result["mixture"], result["process"], result["config"]
    xs = torch.linspace(-5, 5, 400)
    for t, color in zip((cfg["t_min"], 0.5, 1.0), ("C0", "C1", "C2")):
        tt = torch.full_like(xs, t)
        v = proc.variance(tt)
        exact = gm.score(xs.double(), t, proc.kind, sigma=proc.sigma).float()
        ax2.plot(xs, exact, color=color, lw=2.5, alpha=0.4, label=f"exact, t = {t:g}")
        with torch.no_grad():
            ax2.plot(xs, result["nets"]["naive"](xs, v), color=color, ls="--", lw=1)
            ax2.plot(xs, result["nets"]["mod"](xs, v), color=color, ls=":", lw=1.5)
    ax2.plot([], [], "k--", label="trained on J_naive")
    ax2.plot([], [], "k:", label="trained on J_mod")
    ax2.set_ylim(-12, 12)
    ax2.set_xlabel("x")
    ax2.set_ylabel("score")
    ax2.legend(fontsize=8)
    ax2.set_title(f"rel. L2 error: J_naive {s['rel_l2_trained_naive']:.3f}, J_mod {s['rel_l2_trained_mod']:.3f}",
                  fontsize=10)
    fig.tight_layout()
    return fig


def plot_manifold(result: dict[str, Any], field_sigmas: tuple[float, ...] = (1.0, 0.3, 0.05)) -> Any:
    """Top: exact score field of the noised circle at several sigma. Bottom: samples of each method."""
    from genmed.scorelab.manifold import circle_score

    plt = _plt()
    cfg = result["config"]
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.5))
    g = torch.linspace(-cfg["box"], cfg["box"], 17)
    gx, gy = torch.meshgrid(g, g, indexing="xy")
    pts = torch.stack([gx.ravel(), gy.ravel()], -1)
    th = np.linspace(0, 2 * np.pi, 200)
    for ax, s in zip(axes[0], field_sigmas):
        sc = circle_score(pts, s, cfg["radius"])
        norm = sc.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        ax.quiver(pts[:, 0], pts[:, 1], *(sc / norm).T, norm.log10().ravel(), cmap="viridis", scale=25)
        ax.plot(cfg["radius"] * np.cos(th), cfg["radius"] * np.sin(th), "r-", lw=1)
        ax.set_title(f"exact score direction, sigma = {s:g} (colour: log10 |score|)", fontsize=8)
        ax.set_aspect("equal")
    titles = {"single_level_learned": "Langevin, one tiny sigma (learned)",
              "annealed_learned": "annealed Langevin (learned)",
              "single_level_exact": "Langevin, one tiny sigma (EXACT score)"}
    for ax, row in zip(axes[1], result["rows"]):
        x = result["samples"][row["method"]].numpy()
        start = result["start_points"].numpy()
        ax.plot(start[:, 0], start[:, 1], ".", color="0.8", ms=2)
        ax.plot(x[:, 0], x[:, 1], ".", ms=2)
        ax.plot(cfg["radius"] * np.cos(th), cfg["radius"] * np.sin(th), "r-", lw=0.8)
        ax.set_xlim(-cfg["box"] * 1.1, cfg["box"] * 1.1)
        ax.set_ylim(-cfg["box"] * 1.1, cfg["box"] * 1.1)
        ax.set_aspect("equal")
        ax.set_title(f"{titles.get(row['method'], row['method'])}\nmean dist {row['mean_distance']:.3f}, "
                     f"within {cfg['tol']:g}: {100 * row['fraction_within_tol']:.0f}%", fontsize=8)
    fig.tight_layout()
    return fig


def plot_samplers(rows: list[dict[str, Any]]) -> Any:
    """Bar charts: W1 (or 1 - energy p) and largest mode-weight error per sampler and process."""
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    labels = [f"{r['sampler']}\n{r['process']}" for r in rows]
    key = "w1" if "w1" in rows[0] else "energy"
    ax1.bar(range(len(rows)), [r[key] for r in rows])
    ax1.set_yscale("log")
    ax1.set_ylabel("W1 to exact samples" if key == "w1" else "energy distance")
    ax2.bar(range(len(rows)), [r["max_weight_error_points"] for r in rows])
    ax2.axhline(2.0, color="r", ls="--", lw=1, label="2 points")
    ax2.set_ylabel("largest mode-weight error (points)")
    ax2.legend()
    for ax in (ax1, ax2):
        ax.set_xticks(range(len(rows)), labels, fontsize=7, rotation=45)
    fig.tight_layout()
    return fig
