"""The stabilised GAN at 64 px, sampled three ways (issue 14) -> results/gan_standing_stats.json.

Per seed, the `gan` arm of benchmarks/families_64.py is trained again exactly as there (one
`genmed.compare` run with families=("gan",): same phantom draw, split, 12,000 training images,
256 samples, genmed-phantom-cnn-v1 features), then its EMA generator is sampled with the same
latents three ways:
- "running stats": eval mode with the BatchNorm running statistics the engine's EMA averaged
  from the raw generator (how families_64 sampled);
- "batch stats": training mode, each chunk of 64 normalised by its own statistics;
- "standing stats": eval mode after `GANModel.standing_statistics` (2,048 draws at the EMA
  weights; Brock et al. 2019; `standing_stats=2048`).
Each is measured like the comparison (FID, precision, recall, coverage with 30 bootstrap
resamples; class shares from the extractor's classifier, against its shares on held-out
slices). Merge pools the seeds (mean and 95% t-interval) and judges issue 14's GAN targets,
taking diffusion's coverage from results/families_64.json (same seeds, data and extractor).

    python benchmarks/gan_standing_stats.py --seed 0      # one process per seed and core
    python benchmarks/gan_standing_stats.py --merge
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from genmed.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gan_standing_stats.json"
VARIANTS = ("running stats", "batch stats", "standing stats")
METRICS = ("fid", "precision", "recall", "coverage")


def train_seed(seed: int, parts: Path, threads: int = 1):
    """The families_64 `gan` arm at `seed` in parts/gan64_s<seed> (trained unless its run
    exists): (its CompareConfig, that folder)."""
    import torch

    from genmed.compare import CompareConfig, compare

    torch.set_num_threads(threads)
    out = parts / f"gan64_s{seed}"
    cfg = CompareConfig(families=("gan",), size=64, budget_images=12_000, n_samples=256, study=(),
                        seed=seed, out=str(out))
    if not (out / "metrics.json").exists():
        compare(cfg, progress=lambda m: print(f"[seed {seed}] {m}", flush=True))
    return cfg, out


def reference(cfg) -> dict:
    """What samples of the comparison `cfg` are measured against: its held-out real slices and
    labels, its training images, the shipped extractor and its class predictions on the reals."""
    from genmed.compare.runner import load_splits
    from genmed.metrics.features import load_extractor

    train_ds, real, real_labels = load_splits(cfg)
    ext = load_extractor(None)
    return {"real": real, "real_labels": real_labels, "train": train_ds.images.numpy(),
            "extractor": ext, "real_pred": ext.predict(real)}


def held_out_column(cfg, seed: int, n: int) -> dict[str, np.ndarray]:
    """The first column of a sample figure: `n` held-out real slices (HU) of the comparison
    `cfg`, picked by `seed`."""
    from genmed.compare.runner import load_splits
    from genmed.data.transforms import unit_to_hu

    _, real, _ = load_splits(cfg)
    pick = np.random.default_rng(seed).choice(len(real), n, replace=False)
    return {"real (held-out)": unit_to_hu(real[pick, 0])}


def measure(fake: np.ndarray, ref: dict, seed: int) -> dict:
    """FID, precision, recall and coverage of `fake` (N, 1, H, W) in [-1, 1] as the comparison
    measures them (30 bootstrap resamples), and the class shares of the extractor's classifier
    on the samples and on the reals."""
    from genmed.metrics.diversity import class_coverage
    from genmed.metrics.evaluate import EvalConfig, evaluate_images

    ext = ref["extractor"]
    m = evaluate_images(ref["real"], fake, extractor=ext, train=ref["train"], real_labels=ref["real_labels"],
                        cfg=EvalConfig(n_boot=30, seed=seed, kid_subset=100))
    shares = class_coverage(ext.predict(fake), ref["real_pred"], len(ext.class_names), ext.class_names)
    return {"fid": m["quality"]["fid"]["value"], "precision": m["quality"]["precision"]["value"],
            "recall": m["diversity"]["recall"]["value"], "coverage": m["diversity"]["coverage"]["value"],
            "class_share": [float(v) for v in shares.sample_share],
            "real_share": [float(v) for v in shares.data_share]}


def run_seed(seed: int, parts: Path, threads: int = 1) -> dict:
    """Train (unless done) and measure one seed; writes parts/gan64_s<seed>/bn_probe.json."""
    import copy

    import torch

    from genmed.compare.runner import load_family
    cfg, out = train_seed(seed, parts, threads)
    ref = reference(cfg)
    model = load_family("gan", out / "runs" / "gan").model
    standing = copy.deepcopy(model)
    standing.standing_statistics(2048, batch=64, seed=1000 + seed)
    generators = {"running stats": (model.generator, False), "batch stats": (model.generator, True),
                  "standing stats": (standing.generator, False)}
    result = {}
    for name, (g, train_mode) in generators.items():
        gen = torch.Generator().manual_seed(seed)
        chunks = []
        with torch.no_grad():
            for s in range(0, 256, 64):
                z = torch.randn(min(64, 256 - s), model.config.latent_dim, generator=gen)
                g.train(train_mode)
                chunks.append(g(z, None).float())
        g.eval()
        result[name] = measure(torch.cat(chunks).clamp(-1, 1).numpy(), ref, seed)
        print(seed, name, json.dumps(result[name]), flush=True)
    write_json(out / "bn_probe.json", result)
    return result


def pool_seeds(rows: list[dict], real_share: np.ndarray) -> dict:
    """One setting's per-seed measurements (dicts with METRICS and "class_share") pooled: each
    metric's mean, 95% t-interval over seeds and per-seed values; the mean class shares and
    their largest gap to `real_share`."""
    from genmed.metrics.stats import mean_ci

    row = {}
    for k in METRICS:
        values = [r[k] for r in rows]
        e = mean_ci(values)
        row[k] = {"mean": e.value, "low": e.low, "high": e.high, "per_seed": values}
    share = np.mean([r["class_share"] for r in rows], 0)
    row["class_share"] = share.tolist()
    row["class_share_max_gap"] = float(np.abs(share - real_share).max())
    return row


def issue14_targets(at: dict) -> dict:
    """Issue 14's GAN targets judged on one pooled setting `at` (a `pool_seeds` row), against the
    baseline GANs' precision and diffusion's coverage in results/families_64.json (same seeds,
    data and extractor)."""
    arms = json.loads((ROOT / "benchmarks" / "results" / "families_64.json").read_text())["arms"]
    baseline_precision = max(arms["dcgan"]["precision"]["mean"], arms["sngan"]["precision"]["mean"])
    diffusion_coverage = arms["diffusion"]["coverage"]["mean"]
    return {"recall_ge_0.5": {"value": at["recall"]["mean"], "met": at["recall"]["mean"] >= 0.5},
            "precision_ge_baselines": {"value": at["precision"]["mean"], "baseline": baseline_precision,
                                       "met": at["precision"]["mean"] >= baseline_precision},
            "coverage_ge_half_diffusion": {"value": at["coverage"]["mean"], "diffusion": diffusion_coverage,
                                           "met": at["coverage"]["mean"] >= 0.5 * diffusion_coverage},
            "class_shares_within_5_points": {"max_abs_diff": at["class_share_max_gap"],
                                             "met": at["class_share_max_gap"] <= 0.05}}


def merge(parts: Path) -> dict:
    """Pool the seeds and judge the GAN targets of issue 14."""
    seeds = sorted(int(p.parent.name.split("_s")[1]) for p in parts.glob("gan64_s*/bn_probe.json"))
    if not seeds:
        raise SystemExit(f"no seeds in {parts}")
    per_seed = {s: json.loads((parts / f"gan64_s{s}" / "bn_probe.json").read_text()) for s in seeds}
    meta = json.loads((parts / f"gan64_s{seeds[0]}" / "metrics.json").read_text())
    families = json.loads((ROOT / "benchmarks" / "results" / "families_64.json").read_text())
    diffusion_coverage = families["arms"]["diffusion"]["coverage"]["mean"]
    real_share = np.mean([per_seed[s]["running stats"]["real_share"] for s in seeds], 0)
    variants = {}
    for name in VARIANTS:
        row = pool_seeds([per_seed[s][name] for s in seeds], real_share)
        row["targets"] = {
            "recall_ge_0.5": row["recall"]["mean"] >= 0.5,
            "coverage_ge_half_diffusion": row["coverage"]["mean"] >= 0.5 * diffusion_coverage,
            "class_shares_within_5_points": row["class_share_max_gap"] <= 0.05}
        variants[name] = row
    return {"variants": variants, "real_class_share": real_share.tolist(), "seeds": seeds,
            "diffusion_coverage_families_64": diffusion_coverage,
            "published_gan_families_64": {k: families["arms"]["gan"][k]["mean"] for k in METRICS},
            "extractor": meta["extractor"], "machine": meta["machine"],
            "train_seconds": [json.loads((parts / f"gan64_s{s}" / "metrics.json").read_text())
                              ["families"]["gan"]["train_seconds"] for s in seeds],
            "budget": meta["budget"], "data": meta["data"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="train and measure this seed")
    ap.add_argument("--merge", action="store_true", help="pool the seeds into the result JSON")
    ap.add_argument("--parts", default=str(ROOT / "runs" / "bench_gan_standing"),
                    help="scratch folder of the per-seed runs (git-ignored)")
    args = ap.parse_args()
    parts = Path(args.parts)
    if args.seed is not None:
        run_seed(args.seed, parts)
    if args.merge:
        result = merge(parts)
        write_json(OUT, result)
        for name, row in result["variants"].items():
            print(name, {k: round(row[k]["mean"], 3) for k in METRICS},
                  "shares", np.round(row["class_share"], 3).tolist(), row["targets"])


if __name__ == "__main__":
    main()
