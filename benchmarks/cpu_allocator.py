"""Training with and without `genmed.train.allocator.keep_freed_memory` (glibc mmap/trim
thresholds raised), pixel diffusion at 256 px on CPU -> results/cpu_allocator.json.

Each configuration runs in its own process (the tunables are process-wide), alternating
default / kept, `--repeats` times: one warm-up step, then `--steps` timed steps of `--batch`
(MONAI DiffusionModelUNet (32, 64, 64), bf16 autocast where the CPU has native bf16, one torch
thread). Reported per run: wall, user and system CPU seconds of the timed steps, img/s, peak
RSS and minor page faults.

    PYTHONPATH=src python benchmarks/cpu_allocator.py [--steps 6] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(size: int, batch: int, steps: int, precision: str) -> dict:
    """Figures of one process (the engine applies or skips the tunables by the environment)."""
    import resource
    import time

    import torch

    torch.set_num_threads(1)
    from genmed.models import build_model
    from genmed.train import DictDataset, fit

    data = DictDataset(image=torch.rand(4 * batch, 1, size, size) * 2 - 1)
    model = build_model("diffusion", size=size)
    fit(model, data, steps=1, batch_size=batch, seed=0, device="cpu", precision=precision)
    t0, start = os.times(), time.perf_counter()
    fit(model, data, steps=steps, batch_size=batch, seed=0, device="cpu", precision=precision)
    t1, wall = os.times(), time.perf_counter() - start
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {"wall_s": round(wall, 2), "user_s": round(t1.user - t0.user, 2),
            "system_s": round(t1.system - t0.system, 2), "img_per_s": round(steps * batch / wall, 3),
            "peak_rss_mb": round(r.ru_maxrss / 1024), "minor_faults": r.ru_minflt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cpu_allocator.json")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.size, args.batch, args.steps, args.precision)))
        return
    from genmed.train.allocator import ENV
    from genmed.versions import machine

    runs = []
    for _ in range(args.repeats):
        for mode, value in (("glibc default", "0"), ("keep freed memory", "1")):
            env = os.environ | {ENV: value, "OMP_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, __file__, "--one", "--size", str(args.size),
                                  "--batch", str(args.batch), "--steps", str(args.steps),
                                  "--precision", args.precision], env=env, check=True,
                                 capture_output=True, text=True).stdout
            runs.append({"mode": mode} | json.loads(out.strip().splitlines()[-1]))
            print(runs[-1], flush=True)

    def mean(mode: str, key: str) -> float:
        return sum(r[key] for r in runs if r["mode"] == mode) / args.repeats

    result = {"benchmark": "cpu_allocator", "machine": machine() | {"torch_threads": 1},
              "settings": {"model": "diffusion (32, 64, 64)", "size": args.size, "batch": args.batch,
                           "timed_steps": args.steps, "repeats": args.repeats, "precision": args.precision},
              "runs": runs,
              "kept_over_default": {k: round(mean("keep freed memory", k) / mean("glibc default", k), 3)
                                    for k in ("img_per_s", "system_s", "peak_rss_mb")}}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["kept_over_default"]))


if __name__ == "__main__":
    main()
