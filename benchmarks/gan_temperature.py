"""The stabilised GAN at 64 px, sampled at several latent temperatures (issue 14)
-> results/gan_temperature.json.

The GAN's missing target is recall (0.41 against 0.5) at a precision well above the baselines'
(0.59 against 0.36). A GAN's precision and recall are one curve, not one point: the truncation
trick (Brock et al. 2019, BigGAN sec. 3.1) draws z from a narrower distribution and buys
precision with recall (Kynkaanniemi et al. 2019, fig. 5 traces it). The same knob the other way,
z ~ N(0, T^2 I) with T > 1 (the "temperature" of Kingma & Dhariwal 2018, Glow sec. 5), asks
whether recall is a choice of operating point or a coverage the generator lacks.

Per seed, the `gan` arm of benchmarks/families_64.py is trained again exactly as there (one
`genmed.compare` run with families=("gan",): same phantom draw, split, 12,000 training images,
genmed-phantom-cnn-v1 features; fp32 on a CPU without bf16, so gan_standing_stats.json's fp32
rerun to the digit), then its EMA generator is sampled 256 times at every temperature in TEMPS
from the same base latents (z = T * e, e ~ N(0, I)) and measured like the comparison; so is
its raw generator (the weights before EMA) at T = 1.

The temperature is chosen on a validation draw (phantom seed 100, the recipe sweep's: other
patients than the evaluation seeds) by a rule fixed before any run: the highest coverage
(Naeem et al. 2020), the diversity measure that outliers cannot inflate (recall can: a sample
far from everything has a large k-NN ball). The test seeds then report every temperature.

    python benchmarks/gan_temperature.py --seed 100      # validation; one process per core
    python benchmarks/gan_temperature.py --seed 0        # test seeds 0-4
    python benchmarks/gan_temperature.py --merge
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from genmed.fileio import write_json

from gan_standing_stats import METRICS, held_out_column, issue14_targets, measure, pool_seeds, reference, train_seed  # a sibling: benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "gan_temperature.json"
TEMPS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
VALIDATION_SEED = 100
RAW = "raw 1.0"  # the raw generator (the engine's weights before EMA) at T = 1


def run_seed(seed: int, parts: Path, threads: int = 1) -> dict:
    """Train (unless done) and measure one seed: the EMA generator at every temperature, and the
    raw (not averaged) generator at T = 1 ("raw 1.0"); settings already in
    parts/gan64_s<seed>/temperature.json are kept, the rest measured and added to it."""
    import torch

    from genmed.train import load_run

    cfg, out = train_seed(seed, parts, threads)
    path = out / "temperature.json"
    result = json.loads(path.read_text()) if path.exists() else {}
    settings = [(str(t), t, True) for t in TEMPS] + [(RAW, 1.0, False)]
    todo = [s for s in settings if s[0] not in result]
    if not todo:
        return result
    ref = reference(cfg)
    models = {ema: load_run(out / "runs" / "gan", ema=ema)[0] for ema in (True, False)}
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(256, models[True].config.latent_dim, generator=gen)  # the same e at every T
    for key, temp, ema in todo:
        g = models[ema].generator.eval()
        with torch.no_grad():
            fake = torch.cat([g(temp * e, None).float() for e in base.split(64)]).clamp(-1, 1).numpy()
        result[key] = measure(fake, ref, seed)
        print(seed, key, json.dumps(result[key]), flush=True)
        if seed in (0, VALIDATION_SEED) and ema:
            np.save(out / f"samples_T{temp}.npy", fake[:16])
        write_json(path, result)
    return result


def merge(parts: Path) -> dict:
    """Choose T on the validation seed, pool the test seeds at every T, judge issue 14's GAN
    targets at the chosen T (baselines' precision and diffusion's coverage from
    results/families_64.json: same seeds, data and extractor)."""
    done = {int(p.parent.name.split("_s")[1]): json.loads(p.read_text())
            for p in parts.glob("gan64_s*/temperature.json")}
    if VALIDATION_SEED not in done or len(done) < 2:
        raise SystemExit(f"{parts}: need the validation seed {VALIDATION_SEED} and a test seed")
    validation = done.pop(VALIDATION_SEED)
    chosen = max(TEMPS, key=lambda t: validation[str(t)]["coverage"])
    seeds = sorted(done)
    real_share = np.mean([done[s]["1.0"]["real_share"] for s in seeds], 0)
    test = {str(t): pool_seeds([done[s][str(t)] for s in seeds], real_share) for t in TEMPS}
    raw = pool_seeds([done[s][RAW] for s in seeds], real_share) if all(RAW in done[s] for s in seeds) else None
    at = test[str(chosen)]
    meta = json.loads((parts / f"gan64_s{seeds[0]}" / "metrics.json").read_text())
    return {"rule": "T with the highest coverage on the validation seed", "temperatures": list(TEMPS),
            "validation_seed": VALIDATION_SEED, "validation": validation, "chosen_temperature": chosen,
            "test_seeds": seeds, "test": test, "real_class_share": real_share.tolist(),
            "raw_generator_T1": {"validation": validation.get(RAW), "test": raw},
            "targets_at_chosen": issue14_targets(at),
            "extractor": meta["extractor"], "machine": meta["machine"], "budget": meta["budget"],
            "data": meta["data"],
            "train_seconds": {s: json.loads((parts / f"gan64_s{s}" / "metrics.json").read_text())
                              ["families"]["gan"]["train_seconds"] for s in [*seeds, VALIDATION_SEED]}}


def figures(result: dict, parts: Path, n: int = 6) -> None:
    """docs/img/gan_temperature.png (precision against recall and coverage against T, every
    seed) and docs/img/gan_temperature_samples.png (the first `n` draws of test seed 0 at every
    T, the same base latents; HU, abdomen window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.apps.common import hu_columns_figure
    from genmed.data.transforms import unit_to_hu
    from genmed.fileio import save_figure

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4.2))
    runs = {f"validation (seed {VALIDATION_SEED})": result["validation"]}
    runs.update({f"test seed {s}": {str(t): {k: result["test"][str(t)][k]["per_seed"][i]
                                              for k in METRICS} for t in TEMPS}
                 for i, s in enumerate(result["test_seeds"])})
    for name, r in runs.items():
        style = "--" if name.startswith("validation") else "-"
        rec = [r[str(t)]["recall"] for t in TEMPS]
        pre = [r[str(t)]["precision"] for t in TEMPS]
        line, = ax.plot(rec, pre, style + "o", label=name)
        for t, x, y in zip(TEMPS, rec, pre):
            ax.annotate(f"T={t:g}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        bx.plot(TEMPS, [r[str(t)]["coverage"] for t in TEMPS], style + "o", color=line.get_color(),
                label=name)
    ax.axvline(0.5, color="grey", lw=0.8, ls=":")
    ax.text(0.505, 0.02, "recall target 0.5", fontsize=7, color="grey")
    ax.axhline(result["targets_at_chosen"]["precision_ge_baselines"]["baseline"], color="grey", lw=0.8, ls=":")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("recall (diversity) ↑")
    ax.set_ylabel("precision (quality) ↑")
    ax.set_title("precision against recall as T varies\n(dotted: recall target, best baseline GAN's "
                 "precision)", fontsize=9)
    ax.grid(alpha=0.3)
    bx.axvline(result["chosen_temperature"], color="grey", lw=0.8, ls=":")
    bx.set_xlabel("latent temperature T (z ~ N(0, T² I))")
    bx.set_ylabel("coverage ↑")
    bx.set_title(f"coverage against T (dotted: T chosen on validation, "
                 f"{result['chosen_temperature']:g})", fontsize=9)
    bx.grid(alpha=0.3)
    bx.legend(fontsize=7)
    fig.suptitle(f"Stabilised GAN, 64 px phantom, 12,000 training images, 256 draws per point; "
                 f"k = 5 in {result['extractor']['name']} features", fontsize=9)
    fig.tight_layout()
    save_figure(fig, ROOT / "docs" / "img" / "gan_temperature.png")
    seed = result["test_seeds"][0]
    cfg, _ = train_seed(seed, parts)  # the run exists: its config, to load the held-out slices
    cols = held_out_column(cfg, seed, n)
    cols.update({f"T = {t:g}": unit_to_hu(np.load(parts / f"gan64_s{seed}" / f"samples_T{t}.npy")[:n, 0])
                 for t in TEMPS})
    fig = hu_columns_figure(cols, n=n, panel_in=1.6, row_labels=[f"#{i + 1}" for i in range(n)],
                            title=f"Stabilised GAN, 64 px, test seed {seed}: the same base latents "
                                  f"e at temperature T (z = T e)")
    save_figure(fig, ROOT / "docs" / "img" / "gan_temperature_samples.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, help="train and measure this seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--parts", default=str(ROOT / "runs" / "bench_gan_temperature"),
                    help="scratch folder of the per-seed runs (git-ignored)")
    ap.add_argument("--merge", action="store_true", help="pool the seeds into the result JSON")
    args = ap.parse_args()
    parts = Path(args.parts)
    if args.seed is not None:
        run_seed(args.seed, parts, args.threads)
    if args.merge:
        result = merge(parts)
        write_json(OUT, result)
        figures(result, parts)
        print("chosen T", result["chosen_temperature"], json.dumps(result["targets_at_chosen"]))
        for t, row in result["test"].items():
            print(t, {k: round(row[k]["mean"], 3) for k in METRICS})


if __name__ == "__main__":
    main()
