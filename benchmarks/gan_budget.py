"""The stabilised GAN at 64 px against its training budget (issue 14) -> results/gan_budget[_<recipe>].json.

The GAN's missing target is recall (0.41 [0.20, 0.62] against 0.5, results/families_64.json, at
12,000 training images = 375 steps of 32). Every sampling-side lever has been measured and left
recall at or below 0.42: BatchNorm statistics, the latent temperature, the EMA length
(results/gan_standing_stats.json, gan_temperature.json, gan_ema_length.json), and so have the
training-side levers that fit the same budget (augmentation policy, ADA, batch size, TTUR, MSGAN,
PacGAN). What is left is the budget itself: StyleGAN2-ADA trains for 10^4-10^5 steps, and at 375
steps the generator EMA (half-life 10,000 images) has barely left its start.

The recipe ("resnet_r1") has a constant learning rate, no warm-up and no schedule, so the
weights after k * 375 steps of one long run are exactly the weights of a run k times as long.
Per seed, the `gan` arm of benchmarks/families_64.py is trained once for up to 10x the budget
(3,750 steps) with a checkpoint every 375 steps, and the engine's EMA generator of every
checkpoint is sampled 256 times from the same latents and measured like the comparison
(genmed-phantom-cnn-v1 features, k = 5). The first checkpoint is the families_64 run itself:
`check` compares the EMA weights with every saved, separately trained run of the same recipe
and seed (`saved_runs`).

Rule, fixed before any run: the result is the largest budget that every seed reached (a run may be
stopped for time; constant LR makes any checkpoint a finished run). No budget is chosen by its
scores, so no validation seed is needed.

`--recipe slow_g` measures BigGAN's rates (G 5e-5, D 2e-4) the same way, into
results/gan_budget_slow_g.json; its checkpoints are checked against the saved 375- and 750-step
runs of results/families_64_gan_slow_g.json and families_64_gan_slow_g_24k.json. Its runs were
started for 4x (`--max-multiple 4`, the result) and resumed to 6x after it: `--merge
--planned-images 48000` shows the later checkpoints without judging them.

    python benchmarks/gan_budget.py --seed 0 [--max-multiple 10] [--recipe slow_g]  # one process per seed
    python benchmarks/gan_budget.py --seed 0 --resume [--max-multiple 6]  # after a stop, or further
    python benchmarks/gan_budget.py --measure 0                    # every checkpoint there
    python benchmarks/gan_budget.py --merge [--planned-images 48000]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from genmed.fileio import write_json

from gan_standing_stats import METRICS, held_out_column, issue14_targets, measure, pool_seeds, reference  # a sibling: benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGES = 12_000  # the comparison's budget (families_64.json)
BASE_STEPS = BASE_IMAGES // 32  # at the comparison's batch of 32
N_SAMPLES = 256
# The recipes measured: one rate of 2e-4 for G and D ("resnet_r1", the comparison's until
# 2026-12-06), and BigGAN's slower generator (G 5e-5, D 4x that; Brock et al. 2019), which led at
# 2x on two seeds (results/families_64_gan_slow_g_24k.json) and is the comparison's since.
RECIPES = {"resnet_r1": {"lr": 2e-4, "d_lr_scale": 1.0}, "slow_g": {"lr": 5e-5, "d_lr_scale": 4.0}}


def name(recipe: str) -> str:
    """The stem of a recipe's result JSON, figures and scratch folder."""
    return "gan_budget" if recipe == "resnet_r1" else f"gan_budget_{recipe}"


def saved_runs(recipe: str, seed: int) -> dict[int, Path]:
    """EMA weights of earlier, separately trained runs of `recipe` at `seed`, by step (git-ignored
    runs/ folders; absent ones are skipped by `check`)."""
    def ema(run: Path, step: int) -> Path:
        return run / "checkpoints" / f"step-{step:08d}.ema.safetensors"

    if recipe == "resnet_r1":  # results/gan_ema_length.json's runs
        return {BASE_STEPS: ema(ROOT / "runs" / "bench_gan_ema" / f"gan64_s{seed}" / "gan", BASE_STEPS)}
    # the two-seed studies of results/families_64_gan_<recipe>.json and ..._<recipe>_24k.json
    return {k * BASE_STEPS: ema(ROOT / "runs" / f"bench_families64_gan_{recipe}{tag}" / f"seed{seed}" / "runs" / "gan",
                                k * BASE_STEPS) for k, tag in ((1, ""), (2, "_24k"))}


def config(seed: int, parts: Path):
    """The families_64 comparison config of `seed`, writing under parts/gan64_s<seed>."""
    from genmed.compare import CompareConfig

    return CompareConfig(families=("gan",), size=64, budget_images=BASE_IMAGES, n_samples=N_SAMPLES,
                         study=(), seed=seed, out=str(parts / f"gan64_s{seed}"))


def train_seed(seed: int, parts: Path, max_multiple: int, threads: int = 1, resume: bool = False,
               recipe: str = "resnet_r1") -> Path:
    """Train the `gan` arm at `seed` for max_multiple x 375 steps, an EMA checkpoint every 375
    (`resume`: go on from the run's newest checkpoint, after a stop for time; `recipe`: a key of
    RECIPES, its lr replacing the comparison's and its other entries added to the arm's options)."""
    import torch

    from genmed.compare.runner import _train_config, load_splits
    from genmed.train import train

    torch.set_num_threads(threads)
    cfg = config(seed, parts)
    steps = max_multiple * BASE_STEPS
    run_dir = Path(cfg.out) / "gan"
    train_ds, _, _ = load_splits(cfg)
    tcfg = replace(_train_config("gan", cfg, steps, run_dir), ckpt_every=BASE_STEPS, ckpt_minutes=0,
                   keep_checkpoints=max_multiple + 1)
    changes = dict(RECIPES[recipe])
    if "lr" in changes:
        tcfg = replace(tcfg, lr=changes.pop("lr"))
    tcfg = replace(tcfg, options={**tcfg.options, **changes})
    t0 = time.perf_counter()
    result = train(tcfg, dataset=train_ds, resume=resume)
    write_json(Path(cfg.out) / f"train_to_{steps}.json", {"wall_seconds": round(time.perf_counter() - t0, 1),
                                                         "img_per_s": result.img_per_s, "steps": steps,
                                                         "resumed": resume, "threads": threads})
    return run_dir


def checkpoints(run_dir: Path, every: int = BASE_STEPS) -> dict[int, Path]:
    """The EMA checkpoints of a run at multiples of `every` steps, by step: in its checkpoints/
    folder, or in keep/ beside the run (hard links a watcher made while it trained, before the
    engine's pruning; the runs of results/gan_budget.json also checkpointed every 10 minutes)."""
    found = {}
    for folder in (run_dir / "checkpoints", run_dir.parent / "keep"):
        for p in sorted(folder.glob("step-*.ema.safetensors")):
            step = int(p.name.split("-")[1].split(".")[0])
            if step % every == 0:
                found.setdefault(step, p)
    return dict(sorted(found.items()))


def check(seed: int, parts: Path, recipe: str) -> dict[str, float]:
    """Largest |difference| between this run's EMA checkpoints and the saved runs of the same
    recipe and seed (`saved_runs`), by step; steps with no file on either side are left out."""
    from safetensors.torch import load_file

    mine = checkpoints(Path(config(seed, parts).out) / "gan")
    diffs = {}
    for step, other in saved_runs(recipe, seed).items():
        if step in mine and other.exists():
            a, b = load_file(mine[step]), load_file(other)
            diffs[str(step)] = max(float((a[k].double() - b[k].double()).abs().max()) for k in a)
    return diffs


def measure_seed(seed: int, parts: Path, recipe: str) -> dict:
    """Every EMA checkpoint of `seed` sampled 256 times (same latents) and measured; writes
    parts/gan64_s<seed>/budget.json (measured checkpoints are kept, new ones added)."""
    import torch

    from genmed.train import load_run
    from genmed.train.checkpoint import read_weights

    cfg = config(seed, parts)
    out = Path(cfg.out)
    path = out / "budget.json"
    result = json.loads(path.read_text()) if path.exists() else {"by_images": {}}
    result["check_saved_max_abs_diff"] = check(seed, parts, recipe)
    ref = reference(cfg)
    model = load_run(out / "gan", ema=False)[0]
    base = torch.randn(N_SAMPLES, model.config.latent_dim, generator=torch.Generator().manual_seed(seed))
    for step, ckpt in checkpoints(out / "gan").items():
        images = step * cfg.batch_size
        if str(images) in result["by_images"]:
            continue
        model.load_state_dict(read_weights(ckpt, averaged=True))
        g = model.generator.eval()
        with torch.no_grad():
            fake = torch.cat([g(e, None).float() for e in base.split(64)]).clamp(-1, 1).numpy()
        result["by_images"][str(images)] = measure(fake, ref, seed)
        print(seed, images, json.dumps(result["by_images"][str(images)]), flush=True)
        if seed == 0:
            np.save(out / f"samples_{images}.npy", fake[:16])
        write_json(path, result)  # after each checkpoint: a stopped measurement keeps what it did
    write_json(path, result)  # the check, also when every checkpoint was measured before
    return result


def merge(parts: Path, planned_images: int | None = None) -> dict:
    """Pool the seeds at every budget all of them reached; judge issue 14's GAN targets at the
    largest (the pre-registered rule) up to `planned_images`, the end the runs were started for.
    Budgets beyond it (runs resumed after the result) are pooled under "beyond_plan_images" and
    not judged."""
    done = {int(p.parent.name.split("_s")[1]): json.loads(p.read_text())
            for p in parts.glob("gan64_s*/budget.json")}
    if len(done) < 2:
        raise SystemExit(f"{parts}: need at least two measured seeds")
    seeds = sorted(done)
    reached = sorted(set.intersection(*(set(map(int, d["by_images"])) for d in done.values())))
    common = [n for n in reached if planned_images is None or n <= planned_images]
    real_share = np.mean([done[s]["by_images"][str(common[0])]["real_share"] for s in seeds], 0)
    by_images = {str(n): pool_seeds([done[s]["by_images"][str(n)] for s in seeds], real_share) for n in reached}
    result = {"rule": "the largest budget every seed reached", "seeds": seeds, "budgets_images": common,
              "planned_images": planned_images, "beyond_plan_images": reached[len(common):],
              "chosen_images": common[-1], "by_images": by_images, "real_class_share": real_share.tolist(),
              "check_saved_max_abs_diff": {s: done[s]["check_saved_max_abs_diff"] for s in seeds},
              "targets_at_chosen": issue14_targets(by_images[str(common[-1])]),
              "targets_at_base": issue14_targets(by_images[str(common[0])])}
    result["train"] = {s: {p.stem: json.loads(p.read_text()) for p in sorted((parts / f"gan64_s{s}").glob("train_to_*.json"))}
                       for s in seeds}
    return result


def figures(result: dict, parts: Path, recipe: str, n: int = 6) -> None:
    """docs/img/<name>.png (precision, recall, coverage and FID against images seen, every seed
    and the mean) and docs/img/<name>_samples.png (seed 0's first `n` draws at every budget, the
    same latents; HU, abdomen window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.apps.common import hu_columns_figure
    from genmed.data.transforms import unit_to_hu
    from genmed.fileio import save_figure

    budgets = result["budgets_images"] + result.get("beyond_plan_images", [])
    x = [b / 1000 for b in budgets]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for ax, metric in zip(axes, ("precision", "recall", "coverage", "fid")):
        for i, s in enumerate(result["seeds"]):
            ax.plot(x, [result["by_images"][str(b)][metric]["per_seed"][i] for b in budgets], "-o", ms=3,
                    alpha=0.6, label=f"seed {s}")
        ax.plot(x, [result["by_images"][str(b)][metric]["mean"] for b in budgets], "k-", lw=2.5, label="mean")
        ax.set_xlabel("training images seen (thousands; 32 per step)")
        ax.set_ylabel(f"{metric} {'↓' if metric == 'fid' else '↑'}")
        if metric != "fid":
            ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[1].axhline(0.5, color="grey", lw=0.8, ls=":")
    axes[1].text(x[0], 0.52, "recall target 0.5", fontsize=7, color="grey")
    base = result["targets_at_base"]
    axes[0].axhline(base["precision_ge_baselines"]["baseline"], color="grey", lw=0.8, ls=":")
    axes[0].text(x[0], base["precision_ge_baselines"]["baseline"] - 0.05, "best baseline GAN (12k images)", fontsize=7, color="grey")
    axes[2].axhline(0.5 * base["coverage_ge_half_diffusion"]["diffusion"], color="grey", lw=0.8, ls=":")
    axes[2].text(x[0], 0.5 * base["coverage_ge_half_diffusion"]["diffusion"] - 0.05,
                 "half of diffusion's coverage (12k images)", fontsize=7, color="grey")
    if result.get("beyond_plan_images"):  # runs resumed after the result: shown, not judged
        for ax in axes:
            ax.axvline(result["chosen_images"] / 1000, color="grey", lw=0.8, ls="--")
        axes[1].text(result["chosen_images"] / 1000, 0.05, " planned end: the result", fontsize=7, color="grey")
    axes[3].legend(fontsize=7)
    fig.suptitle(f"Stabilised GAN ({label(recipe)}), 64 px phantom: engine EMA generator against training "
                 f"budget; 256 draws per point, k = 5 in {result['extractor']['name']} features", fontsize=9)
    fig.tight_layout()
    save_figure(fig, ROOT / "docs" / "img" / f"{name(recipe)}.png")
    seed = result["seeds"][0]
    cols = held_out_column(config(seed, parts), seed, n)
    cols.update({f"{b // 1000}k images": unit_to_hu(np.load(parts / f"gan64_s{seed}" / f"samples_{b}.npy")[:n, 0])
                 for b in budgets})
    fig = hu_columns_figure(cols, n=n, panel_in=1.5, row_labels=[f"#{i + 1}" for i in range(n)],
                            title=f"Stabilised GAN ({label(recipe)}), 64 px, seed {seed}: the same latents "
                                  "after more training")
    save_figure(fig, ROOT / "docs" / "img" / f"{name(recipe)}_samples.png")


def label(recipe: str) -> str:
    """A recipe's learning rates, for figure titles."""
    changes = RECIPES[recipe]
    if not changes:
        return f"{recipe}, the comparison's"
    return f"{recipe}: G lr {changes['lr']:g}, D lr x{changes['d_lr_scale']:g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="train this seed")
    ap.add_argument("--max-multiple", type=int, default=10, help="train for this many times 12,000 images")
    ap.add_argument("--resume", action="store_true", help="with --seed: go on from the newest checkpoint")
    ap.add_argument("--measure", type=int, help="measure every checkpoint of this seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--recipe", choices=sorted(RECIPES), default="resnet_r1",
                    help="the GAN recipe to train (slow_g: BigGAN's rates)")
    ap.add_argument("--parts", default=None,
                    help="scratch folder of the per-seed runs (git-ignored; default runs/bench_<name>)")
    ap.add_argument("--merge", action="store_true", help="pool the seeds into the result JSON")
    ap.add_argument("--planned-images", type=int, default=None,
                    help="with --merge: the budget the runs were started for; later checkpoints "
                         "(resumed runs) are shown, not judged")
    args = ap.parse_args()
    parts = Path(args.parts or ROOT / "runs" / f"bench_{name(args.recipe)}")
    if args.seed is not None:
        train_seed(args.seed, parts, args.max_multiple, args.threads, args.resume, args.recipe)
    if args.measure is not None:
        measure_seed(args.measure, parts, args.recipe)
    if args.merge:
        from genmed.metrics.features import load_extractor
        from genmed.versions import machine

        result = merge(parts, args.planned_images)
        result.update(extractor=load_extractor(None).info(), machine=machine(), base_images=BASE_IMAGES,
                      recipe={"name": args.recipe, "changes_to_comparison": RECIPES[args.recipe]})
        write_json(ROOT / "benchmarks" / "results" / f"{name(args.recipe)}.json", result)
        figures(result, parts, args.recipe)
        print("chosen", result["chosen_images"], json.dumps(result["targets_at_chosen"]))
        for n, row in result["by_images"].items():
            print(n, {k: round(row[k]["mean"], 3) for k in METRICS}, "share gap", round(row["class_share_max_gap"], 3))


if __name__ == "__main__":
    main()
