"""The recipe sweep behind the comparison (issue 14, "fair tuning") -> results/families_sweep.json.

Every family gets the same small sweep: its registry "compare" recipe with the peak learning
rate scaled by 0.5, 1 and 2 (three trials), each trial at the comparison's budget in training
images seen, at 64 px, on a phantom draw of its own (seed 100: other patients than the five
evaluation seeds of `families_64.py`, so the choice is not fitted to the figures it is judged
by). Score: FID on the domain extractor (lower is better), with precision and recall beside it;
training seconds per trial are recorded so the CPU budget of the sweep is stated too.

    python benchmarks/families_sweep.py --arms diffusion --scales 0.5,1   # one process per core ...
    python benchmarks/families_sweep.py --arms diffusion --scales 2
    python benchmarks/families_sweep.py --merge                   # -> results/families_sweep.json

At another budget (`--budget-images 48000`: the equal-budget table of `families_48k.py`) the
trials go to runs/bench_families_sweep_48k and the result to results/families_sweep_48k.json.
A trial is resumable: it checkpoints every 10 minutes, a rerun of the same command continues it
from its newest checkpoint and skips the trials that have their trial.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genmed.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]
SCALES = (0.5, 1.0, 2.0)
SEED = 100
BUDGET = 12_000  # the comparison's budget when the sweep was first run


def _stem(budget: int) -> str:
    return "families_sweep" if budget == BUDGET else f"families_sweep_{budget // 1000}k"


def parts(budget: int) -> Path:
    """The scratch folder (git-ignored) of the sweep at `budget` training images."""
    return ROOT / "runs" / f"bench_{_stem(budget)}"


def result_path(budget: int) -> Path:
    return ROOT / "benchmarks" / "results" / f"{_stem(budget)}.json"


def run_arm(arm: str, budget: int, n_samples: int, threads: int,
            scales: tuple[float, ...] = SCALES) -> dict:
    """The trials of `arm` (LR scales `scales`); its part JSON, one per arm and scale set."""
    import torch

    from genmed.compare import CompareConfig
    from genmed.compare.runner import (
        FamilyRun,
        _train_config,
        load_splits,
        sample_family,
    )
    from genmed.metrics.evaluate import EvalConfig, evaluate_images
    from genmed.metrics.features import load_extractor
    from genmed.train import load_run

    from families_48k import train_resumable  # a sibling: benchmarks/ is on sys.path

    torch.set_num_threads(threads)
    cfg = CompareConfig(families=(arm,), size=64, budget_images=budget, n_samples=n_samples,
                        study=(), seed=SEED, out=str(parts(budget) / arm))
    train_ds, real, _ = load_splits(cfg)
    extractor = load_extractor(None)
    trials = []
    for scale in scales:
        run_dir = parts(budget) / arm / f"lr_x{scale:g}"
        done = run_dir / "trial.json"
        tcfg = _train_config(arm, cfg, budget // cfg.batch_size, run_dir)
        tcfg = tcfg.replace(lr=tcfg.lr * scale)
        if done.is_file():
            trials.append(json.loads(done.read_text()))
            continue
        seconds = train_resumable(tcfg, train_ds, f"{arm} lr x{scale:g}")
        model, _ = load_run(run_dir)
        run = FamilyRun(arm, model, run_dir, tcfg.steps, budget, seconds, None, dict(tcfg.options))
        fake, _ = sample_family(run, n_samples, SEED, cfg.precision)
        m = evaluate_images(real, fake, extractor=extractor, cfg=EvalConfig(n_boot=30, seed=SEED))
        trials.append({"lr_scale": scale, "lr": tcfg.lr, "train_seconds": seconds,
                       "fid": m["quality"]["fid"], "precision": m["quality"]["precision"],
                       "recall": m["diversity"]["recall"], "coverage": m["diversity"]["coverage"]})
        write_json(done, trials[-1])
        print(f"{arm} lr x{scale:g}: FID {m['quality']['fid']['value']:.2f}", flush=True)
    part = {"arm": arm, "trials": trials, "options": dict(tcfg.options), "recipe": "compare",
            "budget_images": budget, "seed": SEED, "size": 64}
    write_json(parts(budget) / arm / f"part-{'-'.join(f'x{v:g}' for v in scales)}.json", part)
    return part


def merge(budget: int) -> dict:
    from genmed.versions import machine

    found = [json.loads(p.read_text()) for p in sorted(parts(budget).glob("*/part*.json"))]
    if not found:
        raise SystemExit(f"no parts in {parts(budget)}")
    by_arm: dict[str, dict] = {}
    for p in found:  # an arm's trials may come from several parts (scales run side by side)
        entry = by_arm.setdefault(p["arm"], {**p, "trials": []})
        entry["trials"] = sorted(entry["trials"] + p["trials"], key=lambda t: t["lr_scale"])
    arms = {}
    for arm, p in by_arm.items():
        for t in p["trials"]:  # a trial at another scale (`--scales 4`) is reported, not chosen
            t["in_rule"] = t["lr_scale"] in SCALES
        ruled = [t for t in p["trials"] if t["in_rule"]]
        best = min(ruled, key=lambda t: t["fid"]["value"])
        arms[arm] = {**p, "best_lr_scale": best["lr_scale"],
                     "recipe_is_best": best["lr_scale"] == 1.0,
                     "sweep_seconds": round(sum(t["train_seconds"] for t in ruled), 1)}
    return {"arms": arms, "scales": list(SCALES), "seed": SEED, "machine": machine(),
            "rule": "the registry recipe's peak LR x 0.5, 1, 2; score FID (lower is better); "
                    "trials at other scales are reported with in_rule false"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arms", default="diffusion,gan,vae")
    ap.add_argument("--budget-images", type=int, default=BUDGET)
    ap.add_argument("--n-samples", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scales", default=",".join(f"{v:g}" for v in SCALES),
                    help="LR multipliers to run here (trials can run side by side)")
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    if args.merge:
        result = merge(args.budget_images)
        write_json(result_path(args.budget_images), result)
        for arm, r in result["arms"].items():
            row = ", ".join(f"x{t['lr_scale']:g}: {t['fid']['value']:.2f}" for t in r["trials"])
            print(f"{arm}: FID {row}; best x{r['best_lr_scale']:g}")
        return
    scales = tuple(float(v) for v in args.scales.split(","))
    for arm in args.arms.split(","):
        run_arm(arm, args.budget_images, args.n_samples, args.threads, scales)


if __name__ == "__main__":
    main()
