"""Mode-collapse benchmark: every family (MLP backbones) on the ring of 8 and grid of 25.

Settings follow VEEGAN (Srivastava et al. 2017, Sec. 5.1) and PacGAN (Lin et al. 2018,
Sec. 5.1, Table 1): ring of 8 Gaussians (radius 1, std 0.01) and grid of 25 ({-4..4}^2, std
0.05); each run is scored on `n_samples` (published: 100,000) samples with
`genmed.metrics.mode_metrics` (high quality = within 3 std of the nearest mode; modes
captured; reverse KL of the HQ mode histogram; strict variant: >= 1% of the expected share),
and every cell is the mean and standard error over `seeds` independent runs (weights, data
draw and batch order all seeded). Every run goes through the one training engine
(`genmed.train.train`) on a `ToyDataset`; the loop does not know which family it drives.

    result = run_mode_benchmark(ModeBenchConfig(out="runs/modes"))   # JSON-ready dict
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from genmed.errors import UserError, check_choice, check_positive

# variant -> (family, model options). Widths follow the published MLPs in spirit (PacGAN: G 4x400,
# D 3x200) at a CPU-friendly size; all variants share them. Training settings are each family's
# registry recipe "toy" (`TRAINING` below lists the exceptions): every GAN shares one optimiser
# (Adam 1e-3, beta1 0.5) and samples its
# raw generator (weight EMA off: averaging a generator that still moves between modes blurs it
# onto the space between them; measured in the issue-14 probes, EMA 0.999 under this cosine
# schedule moved HQ by 0 to -2.3 points, never up, while with a constant LR it is essential,
# docs/evaluation.md); they differ only in the loss / regulariser under test.
# Diffusion samples with the stochastic SDE-DPM-Solver++(2M) at 50 steps: on the grid it matches
# the 1000-step ancestral chain (HQ 96.6% vs 97.3%, one seed) where the deterministic
# DPM-Solver++(2M) at 30 steps gave 90.2%.
RECIPE = "toy"
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "diffusion": ("diffusion", dict(num_train_timesteps=1000, sampler="dpmpp_2m_sde", sample_steps=50)),
    "gan_dcgan": ("gan", dict(variant="dcgan", latent_dim=8)),
    "gan_pacgan4": ("gan", dict(variant="dcgan", latent_dim=8, pack=4)),
    "gan_mbstd4": ("gan", dict(variant="dcgan", latent_dim=8, mbstd_group=4)),
    "gan_dcgan_z2": ("gan", dict(variant="dcgan", latent_dim=2)),
    "gan_mbstd4_z2": ("gan", dict(variant="dcgan", latent_dim=2, mbstd_group=4)),
    "gan_hinge_sn": ("gan", dict(variant="hinge_sn", latent_dim=8)),
    "gan_hinge_sn_r1": ("gan", dict(variant="hinge_sn", latent_dim=8, r1_gamma=0.1)),
    "gan_dcgan_r1": ("gan", dict(variant="dcgan", latent_dim=8, r1_gamma=0.1)),
    # StyleGAN2's objective on the shared MLPs: logistic loss, lazy R1 (gamma 0.1, every 16),
    # minibatch std (group 4); the "toy" optimiser like every GAN here
    "gan_resnet_r1": ("gan", dict(variant="resnet_r1", latent_dim=8)),
    # The issue-14 sweep of that recipe (docs/evaluation.md, "stabilised GAN sweep"); each
    # changes one thing against its neighbour. A 2-D latent, as in the published 2-D setups:
    "gan_resnet_r1_z2": ("gan", dict(variant="resnet_r1", latent_dim=2)),
    # residual MLPs for G and D (the vector counterpart of the residual image nets), latent 8:
    "gan_resnet_r1_res": ("gan", dict(variant="resnet_r1", latent_dim=8, residual_mlp=True)),
    # both: the stabilised GAN recipe the docs point to (STABILISED_GAN)
    "gan_resnet_r1_res_z2": ("gan", dict(variant="resnet_r1", latent_dim=2, residual_mlp=True)),
    # the same with StyleGAN2's optimiser and generator EMA (`TRAINING` below)
    "gan_resnet_r1_res_z2_sg2": ("gan", dict(variant="resnet_r1", latent_dim=2, residual_mlp=True)),
    # ablation: residual MLPs and latent 2 without R1 and minibatch std (the DCGAN objective)
    "gan_dcgan_res_z2": ("gan", dict(variant="dcgan", latent_dim=2, residual_mlp=True)),
    "vae": ("vae", dict(latent_dim=8, likelihood_sigma=0.05)),
}
# variant -> `TrainConfig` fields that differ from its family's "toy" recipe (optimiser, weight
# EMA); a variant not listed trains with the recipe as it is.
TRAINING: dict[str, dict[str, Any]] = {
    # StyleGAN2 (Karras et al. 2020, appendix B): Adam betas (0, 0.99), constant LR, no warm-up
    # or clipping; the generator sampled through a weight EMA (0.999: a half-life of 693 steps)
    "gan_resnet_r1_res_z2_sg2": dict(betas=(0.0, 0.99), schedule="constant", warmup=0,
                                     grad_clip=0.0, ema_decay=0.999),
}
STABILISED_GAN = "gan_resnet_r1_res_z2"  # the stabilised GAN of the 2-D benchmark (issue 14)
DEFAULT_VARIANTS = ("exact", "diffusion", "gan_dcgan", "gan_pacgan4", "gan_hinge_sn", "vae")
EXACT = "exact"  # not a model: draws from the true mixture (the metrics' ceiling, e.g. HQ 98.9%)

# PacGAN (Lin et al. 2018) Table 1, reported with the same definitions (mean over trials).
PUBLISHED = {
    ("ring", "GAN (PacGAN Table 1)"): dict(modes_captured=6.3, high_quality=0.982, reverse_kl=0.45),
    ("ring", "PacGAN4 (PacGAN Table 1)"): dict(modes_captured=7.8, high_quality=0.959, reverse_kl=0.07),
    ("grid", "GAN (PacGAN Table 1)"): dict(modes_captured=17.3, high_quality=0.948, reverse_kl=0.70),
    ("grid", "PacGAN4 (PacGAN Table 1)"): dict(modes_captured=24.8, high_quality=0.936, reverse_kl=0.04),
}


@dataclass(frozen=True, kw_only=True)
class ModeBenchConfig:
    """One benchmark: every variant x mixture x seed is one engine run."""

    variants: tuple[str, ...] = DEFAULT_VARIANTS  # keys of VARIANTS
    mixtures: tuple[str, ...] = ("ring", "grid")
    seeds: int = 5  # independent runs per cell (seeds 0..seeds-1)
    steps: int = 8000  # optimiser steps per run
    batch_size: int = 256  # points per batch
    n_train: int = 50_000  # points in each run's fixed training draw
    n_samples: int = 100_000  # samples scored per run (published: 100,000)
    hidden: int = 128  # MLP width (all families)
    depth: int = 3  # MLP hidden layers / residual blocks
    precision: str = "fp32"  # tiny MLPs: bf16 would cost accuracy at std 0.01 and gain no speed
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    mode_std_scale: float = 0.1  # every family trains on x * (this / mode std); samples mapped back
    ema_decay: float | None = None  # weight EMA for every variant; None: the variant's own (GANs:
    # off; others 0.999 at >= 2000 steps, else 0.99); 0: off
    out: str = "runs/modes"  # run folders and modes.json

    def __post_init__(self) -> None:
        if not self.variants or not self.mixtures:
            raise UserError("the mode benchmark needs at least one variant and one mixture")
        for v in self.variants:
            check_choice("variant", v, (EXACT, *VARIANTS))
        for m in self.mixtures:
            check_choice("mixture", m, ("ring", "grid"))
        for name in ("seeds", "steps", "batch_size", "n_train", "n_samples", "hidden", "depth",
                     "mode_std_scale"):
            check_positive(name, getattr(self, name))
        check_choice("precision", self.precision, ("auto", "bf16", "fp32"))
        check_choice("device", self.device, ("auto", "cpu", "cuda"))


QUICK = dict(seeds=2, steps=200, n_train=4096, n_samples=5000, hidden=64, depth=2)


class _Exact(torch.nn.Module):
    """Samples of the true mixture, in the scaled coordinates a trained model would use."""

    def __init__(self, mixture: str, scale: float) -> None:
        super().__init__()
        from genmed.data.toy import get_mixture

        self.spec, self.scale = get_mixture(mixture), scale

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        from genmed.data.toy import sample_mixture

        return sample_mixture(self.spec, n, generator)[0] * self.scale


def data_scale(mixture: str, cfg: ModeBenchConfig) -> float:
    """The fixed factor s applied to the data for training (samples are divided by s).

    Scaling so that each mode has std `mode_std_scale` (ring: s = 10, grid: s = 2 at 0.1) keeps
    the fine structure inside the noise range where a diffusion model is trained most and lets
    small MLPs resolve it; it is one affine map, the same for every family, and the metrics
    are computed on the samples mapped back to the published coordinates.
    """
    from genmed.data.toy import get_mixture

    return cfg.mode_std_scale / get_mixture(mixture).stds[0]


def train_variant(variant: str, mixture: str, seed: int, cfg: ModeBenchConfig) -> torch.nn.Module:
    """Train one variant on one mixture with the engine; return its EMA model (eval mode)."""
    from genmed.data.toy import ToyDataset
    from genmed.train import TrainConfig, load_run, train

    if variant == EXACT:
        return _Exact(mixture, data_scale(mixture, cfg))
    family, options = VARIANTS[variant]
    run_dir = Path(cfg.out) / "runs" / f"{mixture}-{variant}-seed{seed}"
    tcfg = TrainConfig(
        family=family, recipe=RECIPE, data=f"toy:{mixture}", size=2, steps=cfg.steps,
        batch_size=cfg.batch_size, **{**TRAINING.get(variant, {}), "ema_decay": _ema(cfg, variant)},
        precision=cfg.precision,
        device=cfg.device, seed=seed, log_every=max(1, cfg.steps // 20), ckpt_every=cfg.steps,
        keep_checkpoints=1, out=str(run_dir),
        options={**dict(data_kind="vector", hidden=cfg.hidden, depth=cfg.depth), **options})
    if run_dir.exists():  # a fresh run each time: the benchmark never mixes old weights in
        import shutil

        shutil.rmtree(run_dir)
    data = ToyDataset(mixture, n=cfg.n_train, seed=seed)
    data.x = data.x * data_scale(mixture, cfg)
    train(tcfg, dataset=data)
    model, _ = load_run(run_dir)
    return model


@torch.no_grad()
def draw_samples(model: torch.nn.Module, n: int, seed: int, chunk: int = 25_000) -> torch.Tensor:
    """`n` samples (n, 2) in chunks, from a generator seeded by `seed`."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    parts = [model.sample(min(chunk, n - s), generator=gen) for s in range(0, n, chunk)]
    return torch.cat(parts).float()


def _ema(cfg: ModeBenchConfig, variant: str) -> float:
    """The weight EMA of a run: the config's, else the variant's own (`TRAINING`), else off
    where the family's "toy" recipe turns it off (GANs), else 0.999 for runs of >= 2000 steps
    and 0.99 for shorter ones."""
    from genmed.models import recipe

    if cfg.ema_decay is not None:
        return cfg.ema_decay
    if "ema_decay" in TRAINING.get(variant, {}):
        return TRAINING[variant]["ema_decay"]
    family = VARIANTS[variant][0]
    if recipe(family, RECIPE).ema_decay == 0:
        return 0.0
    return 0.999 if cfg.steps >= 2000 else 0.99


def run_mode_benchmark(cfg: ModeBenchConfig, progress: Callable[[str], None] | None = None) -> dict:
    """Train and score every (variant, mixture, seed); return the table (mean +- s.e.)."""
    from genmed.data.toy import get_mixture
    from genmed.metrics.modes import mode_metrics, summarise_seeds

    t_start = time.perf_counter()
    per_run: list[dict] = []
    table: list[dict] = []
    samples_for_plot: dict[str, dict[str, list]] = {}
    for mixture in cfg.mixtures:
        spec = get_mixture(mixture)
        for variant in cfg.variants:
            results = []
            for seed in range(cfg.seeds):
                if progress:
                    progress(f"{mixture} / {variant} / seed {seed}")
                t0 = time.perf_counter()
                model = train_variant(variant, mixture, seed, cfg)
                t1 = time.perf_counter()
                x = draw_samples(model, cfg.n_samples, seed) / data_scale(mixture, cfg)
                t2 = time.perf_counter()
                m = mode_metrics(x, spec)
                results.append(m)
                per_run.append({"mixture": mixture, "variant": variant, "seed": seed,
                                "train_seconds": round(t1 - t0, 2), "sample_seconds": round(t2 - t1, 2),
                                **m.to_dict()})
                if seed == 0:
                    samples_for_plot.setdefault(mixture, {})[variant] = x[:2000].tolist()
            table.append({"mixture": mixture, "variant": variant, **summarise_seeds(results)})
    return {
        "config": asdict(cfg),
        "table": table,
        "definitions": {v: {"family": VARIANTS[v][0], "options": VARIANTS[v][1],
                            "training": TRAINING.get(v, {})} for v in cfg.variants if v != EXACT},
        "published": [{"mixture": m, "model": name, **vals} for (m, name), vals in PUBLISHED.items()],
        "runs": per_run,
        "plot_samples": samples_for_plot,
        "seconds": round(time.perf_counter() - t_start, 1),
    }


def table_rows(result: dict) -> list[dict[str, str]]:
    """Printable rows: ours (mean +- s.e.) then the published ones, per mixture."""
    rows = []
    for mixture in result["config"]["mixtures"]:
        name = f"{mixture} ({8 if mixture == 'ring' else 25} modes)"
        for r in (r for r in result["table"] if r["mixture"] == mixture):
            rows.append({"mixture": name, "model": r["variant"],
                         "modes captured": _pm(r["modes_captured"], 1),
                         "modes, strict 1%": _pm(r["modes_captured_strict"], 1),
                         "high quality %": _pm(r["high_quality"], 1, scale=100),
                         "reverse KL": _pm(r["reverse_kl"], 3)})
        for p in (p for p in result["published"] if p["mixture"] == mixture):
            rows.append({"mixture": name, "model": p["model"],
                         "modes captured": f"{p['modes_captured']}",
                         "modes, strict 1%": "-",
                         "high quality %": f"{100 * p['high_quality']:.1f}",
                         "reverse KL": f"{p['reverse_kl']}"})
    return rows


def _pm(cell: dict, digits: int, scale: float = 1.0) -> str:
    if cell["mean"] is None:
        return "n/a"
    return f"{scale * cell['mean']:.{digits}f} ± {scale * cell['sem']:.{digits}f}"


def plot_mode_samples(result: dict, path: str | Path) -> Path:
    """Scatter of seed-0 samples per variant (columns) and mixture (rows), modes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from genmed.data.toy import get_mixture
    from genmed.fileio import save_figure

    mixtures = result["config"]["mixtures"]
    variants = result["config"]["variants"]
    fig, axes = plt.subplots(len(mixtures), len(variants), figsize=(2.6 * len(variants), 2.6 * len(mixtures)),
                             squeeze=False)
    for i, mixture in enumerate(mixtures):
        mu = get_mixture(mixture).means_array()
        lim = 1.6 if mixture == "ring" else 5.5
        cells = {r["variant"]: r for r in result["table"] if r["mixture"] == mixture}
        for j, variant in enumerate(variants):
            ax = axes[i][j]
            x = np.asarray(result["plot_samples"][mixture][variant])
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.3, color="#2b6cb0", rasterized=True)
            ax.scatter(mu[:, 0], mu[:, 1], s=12, marker="x", color="#c53030")
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_xticks([])
            ax.set_yticks([])
            c = cells[variant]
            ax.set_title(f"{variant}\n{c['modes_captured']['mean']:.1f} modes, "
                         f"HQ {100 * c['high_quality']['mean']:.0f}%", fontsize=8)
            if j == 0:
                ax.set_ylabel(mixture)
    fig.suptitle("Mode-collapse benchmark: 2,000 samples of seed 0 (x: true modes)", fontsize=9)
    return save_figure(fig, path, dpi=90)
