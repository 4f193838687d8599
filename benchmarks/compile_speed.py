"""`--compile` / `--channels-last` on CPU (issue 18): training-step and sampling speed of the
diffusion family's default UNet (MONAI DiffusionModelUNet, channels (32, 64, 64), attention at
the lowest level) compiled with TorchInductor vs eager, in fp32 and bf16, in one run.

Each variant is a fresh model built from one seed and `genmed.train.compiled.accelerate`d; its
first calls (compilation) are timed apart, then `--repeats` alternating rounds of `--steps`
training steps (DDPM loss, fused AdamW, autocast as the engine) and of sampler network
evaluations (one UNet forward on a batch, no grad) are timed; best round reported. A
torch.profiler table of self CPU time per op of one eager and one compiled training step says
where the time goes.

    PYTHONPATH=src python benchmarks/compile_speed.py [--size 64] [--steps 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {"eager": {}, "channels_last": {"channels_last": True}, "compile": {"compile": True},
            "compile+channels_last": {"compile": True, "channels_last": True}}


def build(size: int, variant: str):
    from genmed.models import build_model
    from genmed.train.compiled import accelerate

    torch.manual_seed(0)
    model = build_model("diffusion", size=size)
    return accelerate(model, **VARIANTS[variant])


def autocast(precision: str):
    """The engine's autocast context for `precision` on the CPU."""
    from genmed.train.precision import Numerics

    return Numerics(device=torch.device("cpu"), precision=precision).autocast()


def train_steps(model, opt, x: torch.Tensor, precision: str, n: int) -> float:
    """Seconds per training step over `n` steps."""
    start = time.perf_counter()
    for _ in range(n):
        with autocast(precision):
            loss = model.loss({"image": x})["loss"].mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / n


def sample_evals(model, x: torch.Tensor, precision: str, n: int) -> float:
    """Seconds per sampler network evaluation (one UNet forward of the batch) over `n`."""
    t = torch.full((len(x),), 500, dtype=torch.long)
    start = time.perf_counter()
    with torch.no_grad(), autocast(precision):
        for _ in range(n):
            model.net(x, timesteps=t)
    return (time.perf_counter() - start) / n


def profile_step(model, opt, x, precision: str, top: int = 8) -> list[dict]:
    """The `top` ops by self CPU time in one training step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_steps(model, opt, x, precision, 1)
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    total = sum(e.self_cpu_time_total for e in prof.key_averages())
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1e3, 1),
             "share": round(e.self_cpu_time_total / total, 3)} for e in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--evals", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compile_speed.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from genmed.versions import machine

    x = torch.randn(args.batch, 1, args.size, args.size, generator=torch.Generator().manual_seed(0))
    result: dict = {"benchmark": "compile_speed", "machine": machine() | {"torch_threads": args.threads},
                    "settings": vars(args) | {"out": str(args.out), "model": "diffusion default UNet"},
                    "precisions": {}}
    for precision in args.precisions.split(","):
        models, opts, first = {}, {}, {}
        for v in VARIANTS:  # build, then pay each variant's compilation up front
            models[v] = build(args.size, v)
            opts[v] = torch.optim.AdamW(models[v].parameters(), lr=1e-4, fused=True)
            start = time.perf_counter()
            train_steps(models[v], opts[v], x, precision, 1)
            sample_evals(models[v], x, precision, 1)
            first[v] = round(time.perf_counter() - start, 1)
            print(precision, v, "first calls", first[v], "s", flush=True)
        train_s = {v: [] for v in VARIANTS}
        eval_s = {v: [] for v in VARIANTS}
        for _ in range(args.repeats):  # alternate: every variant sees the same load
            for v in VARIANTS:
                train_s[v].append(train_steps(models[v], opts[v], x, precision, args.steps))
                eval_s[v].append(sample_evals(models[v], x, precision, args.evals))
        best_t = {v: min(s) for v, s in train_s.items()}
        best_e = {v: min(s) for v, s in eval_s.items()}
        result["precisions"][precision] = {
            "first_calls_s": first,
            "train_img_per_s": {v: round(args.batch / s, 2) for v, s in best_t.items()},
            "sample_evals_img_per_s": {v: round(args.batch / s, 2) for v, s in best_e.items()},
            "train_speedup_vs_eager": {v: round(best_t["eager"] / s, 3) for v, s in best_t.items()},
            "sample_speedup_vs_eager": {v: round(best_e["eager"] / s, 3) for v, s in best_e.items()},
            "profile_train_step": {v: profile_step(models[v], opts[v], x, precision)
                                   for v in ("eager", "compile")},
        }
        print(json.dumps(result["precisions"][precision], indent=1), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
