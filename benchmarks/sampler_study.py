"""Sampler study on a longer-trained phantom diffusion model -> benchmarks/results/sampler_study.json.

The comparison's diffusion run (40,000 images seen) is too short for the study's question, so
this trains one diffusion model alone for `--budget-images` (default 320,000 = 10,000 steps of
32) with the comparison's recipe (EMA 0.999 for the longer run), or loads `--run`, then
measures FID/KID of DDPM (1000 = the full chain, 100), DDIM (10/20/50), DPM-Solver++(2M) and
SDE-DPM-Solver++(2M) (10/20) on `--study-n` images each, all from the same initial noise,
against the held-out phantom patients. Verdict: best fast solver at <= 20 steps vs the full
chain (target: within 10%).

    python benchmarks/sampler_study.py [--run RUN] [--budget-images 320000] [--study-n 256]
    python benchmarks/sampler_study.py --run RUN --study-seed 1 --settings ddpm:1000,dpmpp_2m_sde:20
        # a repeat of chosen settings from fresh initial noise -> results/sampler_study_seed1.json
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
    ap.add_argument("--run", default="", help="an existing phantom diffusion run to study")
    ap.add_argument("--budget-images", type=int, default=320_000)
    ap.add_argument("--study-n", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_sampler_study"))
    ap.add_argument("--study-seed", type=int, default=None, help="repeat --settings on --run from this seed")
    ap.add_argument("--settings", default="ddpm:1000,dpmpp_2m_sde:10,dpmpp_2m_sde:20")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.study_seed is not None:
        return repeat(args)
    cfg = CompareConfig(families=("diffusion",), budget_images=args.budget_images, study_n=args.study_n,
                        ema_decay=0.999, runs=(args.run,) if args.run else (), out=args.out)
    result = compare(cfg, progress=lambda m: print(m, flush=True))
    write_json(ROOT / "benchmarks" / "results" / "sampler_study.json", result)
    shutil.copyfile(Path(args.out) / "img" / "sampler_study.png", ROOT / "docs" / "img" / "sampler_study.png")
    _print(result["sampler_study"])


def repeat(args) -> None:
    """The study's settings again on an existing run, from another seed's initial noise."""
    from genmed.compare.runner import autocast, load_family, load_splits
    from genmed.compare.samplers import sampler_study
    from genmed.metrics.features import load_extractor
    from genmed.versions import machine

    cfg = CompareConfig(families=("diffusion",), runs=(args.run,), study_n=args.study_n)
    _, real, _ = load_splits(cfg)
    ext = load_extractor(None)
    settings = [(name, int(steps)) for name, steps in (s.split(":") for s in args.settings.split(","))]
    study = sampler_study(load_family("diffusion", args.run).model, ext.features(real), ext, settings,
                          args.study_n, seed=args.study_seed, autocast=lambda: autocast(cfg.precision))
    result = {"run": args.run, "study_seed": args.study_seed, "sampler_study": study,
              "extractor": ext.info(), "machine": machine()}
    write_json(ROOT / "benchmarks" / "results" / f"sampler_study_seed{args.study_seed}.json", result)
    _print(study)


def _print(study: dict) -> None:
    for r in study["rows"]:
        f = r["fid"]
        print(f"{r['sampler']:>13} {r['steps']:>5} steps  FID {f['value']:.2f} [{f['low']:.2f}, {f['high']:.2f}]"
              f"  {r['seconds_per_image']:.3f} s/img")
    print(study["verdict"])


if __name__ == "__main__":
    main()
