"""The stabilised GAN at 64 px, sampled from weight averages of several lengths (issue 14)
-> results/gan_ema_length.json.

The GAN's missing target is recall (0.41 against 0.5). Every GAN in genmed samples from the
engine's weight EMA, and on this 375-step budget that average is what makes the generator usable
(the raw weights give FID 5-20 and recall 0.00-0.41; results/gan_temperature.json). How long the
average should be was never measured. EDM2 (Karras et al. 2024, sec. 3) shows that the EMA length
moves FID as much as the recipe does and that it is best chosen after training: the power-function
EMA with decay beta_t = (1 - 1/t)^(gamma + 1) after t steps averages the last sigma_rel of the run
(sigma_rel, the averaging profile's standard deviation relative to the run's length, eq. 3). The
engine's EMA, decay min(0.9978, (1 + n) / (10 + n)) after n updates, is close to gamma = 8
(sigma_rel 0.09) at 375 steps, where its cap (the recipe's 0.9978) never binds.

Per seed, the `gan` arm of benchmarks/families_64.py is trained again exactly as there (its
`compare` training config, data and split; fp32 on a CPU without bf16), with one change that does
not touch training: a checkpoint after every step (`ckpt_every=1`). From those raw weights each
averaging profile is rebuilt exactly (the engine's EMA, to the last bit, as a check), and each
averaged generator is sampled 256 times from the same latents and measured like the comparison
(genmed-phantom-cnn-v1 features, k = 5).

The profile is chosen on a validation draw (phantom seed 100, other patients than the evaluation
seeds) by the rule of results/gan_temperature.json, fixed before any run: the highest coverage
(Naeem et al. 2020). The test seeds then report every profile.

    python benchmarks/gan_ema_length.py --seed 100       # validation; one process per core
    python benchmarks/gan_ema_length.py --seed 0         # test seeds
    python benchmarks/gan_ema_length.py --merge
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from genmed.fileio import write_json

from gan_standing_stats import METRICS, held_out_column, issue14_targets, measure, pool_seeds, reference  # a sibling: benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gan_ema_length.json"
SIGMA_RELS = (0.01, 0.02, 0.05, 0.09, 0.15, 0.2, 0.25)  # power-function EMA lengths (EDM2, eq. 3)
ENGINE, RAW = "engine", "raw"  # the engine's EMA (the comparison's sampler); the last raw weights
VALIDATION_SEED = 100
ENGINE_DECAY = 0.5 ** (32 / 10_000)  # the resnet_r1 recipe's ema_decay (docs/models.md)
N_SAMPLES = 256


def sigma_rel_of(gamma: float) -> float:
    """EDM2 eq. 3: the relative standard deviation of the power-function EMA profile."""
    return math.sqrt(gamma + 1) / ((gamma + 2) * math.sqrt(gamma + 3))


def gamma_of(sigma_rel: float) -> float:
    """The exponent gamma whose profile has this sigma_rel, in (0, 0.2887): sigma_rel_of falls
    monotonically in gamma, so scipy's Brent root finder on [0, 1e6]."""
    from scipy.optimize import brentq

    if not 0 < sigma_rel < sigma_rel_of(0.0):
        raise ValueError(f"sigma_rel {sigma_rel} outside (0, {sigma_rel_of(0.0):.4f})")
    return brentq(lambda g: sigma_rel_of(g) - sigma_rel, 0.0, 1e6, xtol=1e-12)


@lru_cache(maxsize=None)
def profile_gamma(profile: str) -> float:
    """gamma_of a power-EMA profile named by its sigma_rel ("0.05"), computed once."""
    return gamma_of(float(profile))


def decay_at(profile: str, n: int, cap: float = ENGINE_DECAY) -> float:
    """The decay of `profile`'s update after n earlier updates (torch AveragedModel's n_averaged):
    the engine's min(cap, (1 + n) / (10 + n)) (genmed.train.engine.ema_update; cap: the recipe's
    ema_decay), or the power EMA's (1 - 1/t)^(gamma + 1) at step t = n + 1."""
    if profile == ENGINE:
        return min(cap, (1 + n) / (10 + n))
    return (n / (n + 1)) ** (profile_gamma(profile) + 1)


def train_seed(seed: int, parts: Path, threads: int = 1):
    """The families_64 `gan` arm at `seed`, trained (unless done) into parts/gan64_s<seed>/gan
    with a checkpoint after every step: (its CompareConfig, the run folder)."""
    import torch

    from genmed.compare import CompareConfig
    from genmed.compare.runner import _train_config, load_splits
    from genmed.train import train

    torch.set_num_threads(threads)
    out = parts / f"gan64_s{seed}"
    cfg = CompareConfig(families=("gan",), size=64, budget_images=12_000, n_samples=N_SAMPLES, study=(),
                        seed=seed, out=str(out))
    steps = int(cfg.budget[1]) // cfg.batch_size
    run_dir = out / "gan"
    if not (run_dir / "checkpoints" / f"step-{steps:08d}.model.safetensors").exists():
        train_ds, _, _ = load_splits(cfg)
        tcfg = replace(_train_config("gan", cfg, steps, run_dir), ckpt_every=1, keep_checkpoints=steps + 1)
        t0 = time.perf_counter()
        result = train(tcfg, dataset=train_ds)
        write_json(out / "train.json", {"wall_seconds": round(time.perf_counter() - t0, 1),
                                        "img_per_s": result.img_per_s, "steps": steps,
                                        "images": steps * cfg.batch_size, "threads": threads})
        for state in (run_dir / "checkpoints").glob("*.state.pt"):  # optimiser moments: not needed
            if state.name != f"step-{steps:08d}.state.pt":
                state.unlink()
    return cfg, run_dir


def engine_sigma_rel(steps: int) -> float:
    """sigma_rel of the engine's EMA after `steps` updates: the standard deviation of the weight
    each step's raw weights get in the average, over the run's length (EDM2's definition)."""
    weights = np.zeros(steps)
    keep = 1.0
    for t in range(steps, 0, -1):  # step t's weights enter with 1 - decay, then decay at each later step
        d = 0.0 if t == 1 else decay_at(ENGINE, t - 1)
        weights[t - 1] = keep * (1 - d)
        keep *= d
    times = np.arange(1, steps + 1) / steps
    mean = float((weights * times).sum())
    return float(np.sqrt((weights * (times - mean) ** 2).sum()))


def averages(run_dir: Path, steps: int) -> dict[str, dict]:
    """Every profile's averaged weights, rebuilt step by step from the per-step checkpoints the way
    the engine's `AveragedModel` builds its EMA (copy at the first update, then torch's EMA update
    with this profile's decay), and the last raw weights (RAW)."""
    import torch
    from safetensors.torch import load_file
    from torch.optim.swa_utils import get_ema_multi_avg_fn

    from genmed.train.run import load_config_of

    cap = load_config_of(run_dir).ema_decay
    profiles = [ENGINE, *map(str, SIGMA_RELS)]
    avg: dict[str, dict] = {}
    for t in range(1, steps + 1):
        w = load_file(run_dir / "checkpoints" / f"step-{t:08d}.model.safetensors")
        groups = ([k for k in w if w[k].is_floating_point()], [k for k in w if not w[k].is_floating_point()])
        for p in profiles:
            if t == 1:
                avg[p] = {k: v.clone() for k, v in w.items()}
                continue
            update = get_ema_multi_avg_fn(decay_at(p, t - 1, cap))
            with torch.no_grad():
                for keys in groups:
                    update([avg[p][k] for k in keys], [w[k] for k in keys], None)
        avg[RAW] = w
    return avg


def run_seed(seed: int, parts: Path, threads: int = 1) -> dict:
    """Train (unless done) and measure one seed: every profile's averaged generator and the raw one,
    256 draws from the same latents; writes parts/gan64_s<seed>/ema_length.json."""
    import torch
    from safetensors.torch import load_file

    from genmed.train import load_run

    cfg, run_dir = train_seed(seed, parts, threads)
    out = run_dir.parent
    steps = int(cfg.budget[1]) // cfg.batch_size
    avg = averages(run_dir, steps)
    saved = load_file(run_dir / "checkpoints" / f"step-{steps:08d}.ema.safetensors")
    check = max(float((saved["module." + k].double() - v.double()).abs().max())
                for k, v in avg[ENGINE].items())
    ref = reference(cfg)
    model = load_run(run_dir, ema=False)[0]
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(N_SAMPLES, model.config.latent_dim, generator=gen)
    result = {"engine_ema_max_abs_diff_to_saved": check, "steps": steps,
              "train": json.loads((out / "train.json").read_text())}
    for profile, weights in avg.items():
        model.load_state_dict(weights)
        g = model.generator.eval()
        with torch.no_grad():
            fake = torch.cat([g(e, None).float() for e in base.split(64)]).clamp(-1, 1).numpy()
        result[profile] = measure(fake, ref, seed)
        print(seed, profile, json.dumps(result[profile]), flush=True)
        if seed in (0, VALIDATION_SEED):
            np.save(out / f"samples_{profile}.npy", fake[:16])
    write_json(out / "ema_length.json", result)
    return result


PROFILES = (RAW, *map(str, SIGMA_RELS), ENGINE)


def merge(parts: Path) -> dict:
    """Choose the profile on the validation seed, pool the test seeds for every profile, judge
    issue 14's GAN targets at the chosen one (baselines' precision and diffusion's coverage from
    results/families_64.json: same seeds, data and extractor)."""
    done = {int(p.parent.name.split("_s")[1]): json.loads(p.read_text())
            for p in parts.glob("gan64_s*/ema_length.json")}
    if VALIDATION_SEED not in done or len(done) < 2:
        raise SystemExit(f"{parts}: need the validation seed {VALIDATION_SEED} and a test seed")
    validation = done.pop(VALIDATION_SEED)
    chosen = max(PROFILES, key=lambda p: validation[p]["coverage"])
    seeds = sorted(done)
    real_share = np.mean([done[s][ENGINE]["real_share"] for s in seeds], 0)
    test = {p: pool_seeds([done[s][p] for s in seeds], real_share) for p in PROFILES}
    at = test[chosen]
    steps = done[seeds[0]]["steps"]
    return {"rule": "the averaging profile with the highest coverage on the validation seed",
            "profiles": {"raw": "the last raw weights (no average)",
                         "engine": f"the engine's EMA, decay min(0.9978, (1 + n) / (10 + n)): sigma_rel "
                                   f"{engine_sigma_rel(steps):.3f} at {steps} steps",
                         **{str(s): f"power-function EMA, gamma {gamma_of(s):.2f} (EDM2 eq. 3)"
                            for s in SIGMA_RELS}},
            "validation_seed": VALIDATION_SEED, "validation": validation, "chosen_profile": chosen,
            "test_seeds": seeds, "test": test, "real_class_share": real_share.tolist(),
            "engine_ema_rebuilt_max_abs_diff": max(d["engine_ema_max_abs_diff_to_saved"]
                                                   for d in [validation, *done.values()]),
            "targets_at_chosen": issue14_targets(at),
            "train": {s: d["train"] for s, d in [(VALIDATION_SEED, validation), *done.items()]},
            "steps": steps}


def figures(result: dict, parts: Path, n: int = 6) -> None:
    """docs/img/gan_ema_length.png (precision, recall and coverage against sigma_rel, every seed)
    and docs/img/gan_ema_length_samples.png (the first `n` draws of test seed 0 from every
    average, the same latents; HU, abdomen window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.apps.common import hu_columns_figure
    from genmed.data.transforms import unit_to_hu
    from genmed.fileio import save_figure

    runs = {f"validation (seed {VALIDATION_SEED})": result["validation"]}
    runs.update({f"test seed {s}": {p: {k: result["test"][p][k]["per_seed"][i] for k in METRICS}
                                     for p in PROFILES} for i, s in enumerate(result["test_seeds"])})
    engine_sigma = engine_sigma_rel(result["steps"])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, metric in zip(axes, ("precision", "recall", "coverage")):
        for name, r in runs.items():
            style = "--" if name.startswith("validation") else "-"
            line, = ax.plot(SIGMA_RELS, [r[str(s)][metric] for s in SIGMA_RELS], style + "o", ms=3,
                            label=name)
            ax.plot([engine_sigma], [r[ENGINE][metric]], "*", ms=9, color=line.get_color())
        mean = [result["test"][str(s)][metric]["mean"] for s in SIGMA_RELS]
        ax.plot(SIGMA_RELS, mean, "k-", lw=2.5, label="test mean")
        ax.set_xscale("log")
        ax.set_xlabel("EMA length sigma_rel (share of the run averaged; log scale)")
        ax.set_ylabel(f"{metric} ↑")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[1].text(SIGMA_RELS[0], 0.52, "recall target 0.5", fontsize=7, color="grey")
    axes[0].axhline(result["targets_at_chosen"]["precision_ge_baselines"]["baseline"], color="grey",
                    lw=0.8, ls=":")
    axes[0].text(SIGMA_RELS[0], 0.38, "best baseline GAN", fontsize=7, color="grey")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"Stabilised GAN, 64 px phantom, 12,000 training images, 256 draws per point, k = 5 in "
                 f"{result['extractor']['name']} features. Lines: power-function EMAs; stars: the engine's "
                 f"EMA (sigma_rel {engine_sigma:.2f})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, ROOT / "docs" / "img" / "gan_ema_length.png")
    seed = result["test_seeds"][0]
    cfg, _ = train_seed(seed, parts)  # the run exists: its config, to load the held-out slices
    cols = held_out_column(cfg, seed, n)
    names = {RAW: "raw weights", ENGINE: f"engine EMA ({engine_sigma:.2f})"}
    cols.update({names.get(p, f"sigma_rel {p}"): unit_to_hu(
        np.load(parts / f"gan64_s{seed}" / f"samples_{p}.npy")[:n, 0]) for p in PROFILES})
    fig = hu_columns_figure(cols, n=n, panel_in=1.5, row_labels=[f"#{i + 1}" for i in range(n)],
                            title=f"Stabilised GAN, 64 px, test seed {seed}: the same latents through "
                                  f"weight averages of different lengths")
    save_figure(fig, ROOT / "docs" / "img" / "gan_ema_length_samples.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="train and measure this seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parts", default=str(ROOT / "runs" / "bench_gan_ema"),
                    help="scratch folder of the per-seed runs (git-ignored)")
    ap.add_argument("--merge", action="store_true", help="pool the seeds into the result JSON")
    args = ap.parse_args()
    parts = Path(args.parts)
    if args.seed is not None:
        run_seed(args.seed, parts, args.threads)
    if args.merge:
        result = merge(parts)
        meta_cfg, _ = train_seed(result["test_seeds"][0], parts)
        from genmed.metrics.features import load_extractor
        from genmed.versions import machine

        result.update(extractor=load_extractor(None).info(), machine=machine(),
                      data={"source": meta_cfg.data, "size": meta_cfg.size, "n_patients": meta_cfg.n_patients})
        write_json(OUT, result)
        figures(result, parts)
        print("chosen", result["chosen_profile"], json.dumps(result["targets_at_chosen"]))
        for p, row in result["test"].items():
            print(p, {k: round(row[k]["mean"], 3) for k in METRICS})


if __name__ == "__main__":
    main()
