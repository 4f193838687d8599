"""Full phantom comparison (the `make demo` setting) -> benchmarks/results/compare.json.

Trains diffusion, GAN (hinge + SN) and VAE on 96 phantom patients at 32 px with an equal budget
of 40,000 training images seen each (or loads such runs with --runs), samples 256 images per
family, measures every metric with CIs, runs the sampler study (ddpm 1000/100, ddim 10/20/50,
dpmpp_2m 10/20 on --study-n images from one checkpoint), and copies the figures used by
docs/evaluation.md to docs/img/compare_*.png.

    python benchmarks/compare.py [--runs runs/a,runs/b,runs/c] [--study-n 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from genmed.compare import CompareConfig, compare
from genmed.fileio import write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="", help="existing runs, one per family (diffusion,gan,vae)")
    ap.add_argument("--budget-images", type=int, default=40_000)
    ap.add_argument("--n-samples", type=int, default=256)
    ap.add_argument("--study-n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_compare"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cfg = CompareConfig(budget_images=args.budget_images, n_samples=args.n_samples, study_n=args.study_n,
                        runs=tuple(r for r in args.runs.split(",") if r), out=args.out)
    result = compare(cfg, progress=lambda m: print(m, flush=True))
    write_json(ROOT / "benchmarks" / "results" / "compare.json", result)
    img = Path(args.out) / "img"
    for name in ("samples_diffusion", "samples_gan", "samples_vae", "real", "sampler_study",
                 "precision_recall", "memorisation_diffusion"):
        shutil.copyfile(img / f"{name}.png", ROOT / "docs" / "img" / f"compare_{name}.png")
    for family, r in result["families"].items():
        q, d = r["quality"], r["diversity"]
        print(f"{family}: FID {q['fid']['value']:.2f} precision {q['precision']['value']:.2f} "
              f"recall {d['recall']['value']:.2f} coverage {d['coverage']['value']:.2f}")
    print(result["sampler_study"]["verdict"])


if __name__ == "__main__":
    main()
