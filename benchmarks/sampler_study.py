"""Sampler study on a longer-trained phantom diffusion model -> benchmarks/results/sampler_study.json.

The comparison's diffusion run (40,000 images seen) is too short for the study's question, so
this trains one diffusion model alone for `--budget-images` (default 320,000 = 10,000 steps of
32) with the comparison's recipe (EMA 0.999 for the longer run), or loads `--run`, then
measures FID/KID of DDPM (1000 = the full chain, 100), DDIM (10/20/50), DPM-Solver++(2M) and
SDE-DPM-Solver++(2M) (10/20) on `--study-n` images each, all from the same initial noise,
against the held-out phantom patients. Verdict: best fast solver at <= 20 steps vs the full
chain (target: within 10%).

    python benchmarks/sampler_study.py [--run RUN] [--budget-images 320000] [--study-n 256]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genmed.compare import CompareConfig, compare  # noqa: E402
from genmed.fileio import write_json  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="", help="an existing phantom diffusion run to study")
    ap.add_argument("--budget-images", type=int, default=320_000)
    ap.add_argument("--study-n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_sampler_study"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cfg = CompareConfig(families=("diffusion",), budget_images=args.budget_images, study_n=args.study_n,
                        ema_decay=0.999, runs=(args.run,) if args.run else (), out=args.out)
    result = compare(cfg, progress=lambda m: print(m, flush=True))
    write_json(ROOT / "benchmarks" / "results" / "sampler_study.json", result)
    shutil.copyfile(Path(args.out) / "img" / "sampler_study.png", ROOT / "docs" / "img" / "sampler_study.png")
    for r in result["sampler_study"]["rows"]:
        f = r["fid"]
        print(f"{r['sampler']:>13} {r['steps']:>5} steps  FID {f['value']:.2f} [{f['low']:.2f}, {f['high']:.2f}]"
              f"  {r['seconds_per_image']:.3f} s/img")
    print(result["sampler_study"]["verdict"])


if __name__ == "__main__":
    main()
