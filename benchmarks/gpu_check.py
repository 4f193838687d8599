"""GPU check: CUDA training and sampling through genmed's own code, and a torchrun launch.

Measures, for the diffusion family's default network (`genmed.models.build_model`):
  (1) training img/s through the engine (`genmed.train.train`, TrainConfig(device=...)) in
      fp32, bf16 and fp16 AMP at 64 and 128 px, and the peak GPU memory of each run
      (torch.cuda.max_memory_allocated, MiB); img/s is the median of the engine's logged
      windows after the first (warm-up: CUDA context, cuDNN autotuning);
  (2) sampling img/s of the bf16-trained EMA model (`genmed.train.load_run`) for two samplers
      (ddim, dpmpp_2m_sde) at 20 steps, in each precision;
  (3) a `torchrun --standalone --nproc_per_node 1` run: the child joins an nccl process group,
      all-reduces a tensor (the sum must be the world size), leaves the group and trains
      through the engine on the GPU that LOCAL_RANK names; its return code must be 0.
Writes benchmarks/results/gpu_check.json: the machine (`genmed.versions.machine()`) and every
figure. About 2-4 minutes on one recent GPU (`scripts/gpu_check.sh` caps it at 10 minutes).

Without CUDA it prints one line ("no CUDA device: ...") and exits with status 2. `--device cpu
--tiny` runs the same code at tiny size on CPU (fp32 and bf16, gloo instead of nccl) in a few
seconds, so tests/test_gpu_check.py can prove the script works; it writes gpu_check_tiny.json.

    python benchmarks/gpu_check.py [--device cuda|cpu] [--tiny] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results"
SAMPLERS = ("ddim", "dpmpp_2m_sde")


@dataclass(frozen=True)
class Plan:
    """How big the check is."""

    sizes: tuple[int, ...]  # image sides, px
    precisions: tuple[str, ...]  # engine precisions measured
    batch: int  # global training batch, images
    log_every: int  # steps per timing window (the first window is warm-up)
    windows: int  # timing windows per training run
    sample_n: int  # images per timed sampling call
    sample_steps: int  # sampler steps
    torchrun_size: int  # image side of the torchrun run, px
    torchrun_steps: int  # its optimiser steps
    torchrun_timeout_s: float  # its wall-clock limit, s


FULL = Plan(sizes=(64, 128), precisions=("fp32", "bf16", "fp16"), batch=32, log_every=10,
            windows=4, sample_n=32, sample_steps=20, torchrun_size=64, torchrun_steps=20,
            torchrun_timeout_s=300.0)
TINY = Plan(sizes=(16,), precisions=("fp32", "bf16"), batch=4, log_every=2, windows=2,
            sample_n=2, sample_steps=2, torchrun_size=16, torchrun_steps=2,
            torchrun_timeout_s=120.0)


def images(n: int, size: int):
    """`n` fixed random images in [-1, 1], (n, 1, size, size), as a genmed data set."""
    from genmed.train import DictDataset

    g = torch.Generator().manual_seed(0)
    return DictDataset(image=torch.rand(n, 1, size, size, generator=g) * 2 - 1)


def train_config(out: Path, size: int, precision: str, device: str, steps: int, plan: Plan):
    """An engine run of the diffusion family's default network, checkpoint only at the end."""
    from genmed.train import TrainConfig

    return TrainConfig(family="diffusion", size=size, steps=steps, batch_size=plan.batch,
                       precision=precision, device=device, log_every=plan.log_every,
                       ckpt_every=10**6, ckpt_minutes=0, sample_n=1, sample_steps=2,
                       out=str(out))


def sync(device: str) -> None:
    """Wait for queued GPU work (a no-op on CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def peak_mib(device: str) -> float | None:
    """Peak GPU memory allocated since the last reset, MiB (None on CPU)."""
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def train_figures(out: Path, size: int, precision: str, device: str, plan: Plan) -> dict:
    """img/s (median of the logged windows after the first) and peak memory of one run."""
    from genmed.train import train

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    steps = plan.log_every * plan.windows
    t0 = time.perf_counter()
    result = train(train_config(out, size, precision, device, steps, plan),
                   dataset=images(8 * plan.batch, size))
    wall = time.perf_counter() - t0
    lines = (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    rates = [json.loads(line)["img_per_s"] for line in lines][1:]
    return {"img_per_s": statistics.median(rates), "img_per_s_windows": rates,
            "peak_mib": peak_mib(device), "run_wall_s": wall, "steps": result.step,
            "batch": plan.batch, "final_loss": result.metrics.get("main/loss"),
            "precision": result.precision, "device": result.device}


def sample_figures(run: Path, device: str, plan: Plan) -> dict:
    """img/s of each sampler, per precision, from the run's EMA model."""
    from genmed.train import load_run
    from genmed.train.precision import resolve_numerics

    model, _ = load_run(run, device=device)
    out: dict = {}
    for precision in plan.precisions:
        num = resolve_numerics(device, precision)
        for name in SAMPLERS:
            g = torch.Generator(num.device).manual_seed(0)
            with torch.no_grad(), num.autocast():
                model.sample(2, steps=plan.sample_steps, generator=g, sampler=name)  # warm-up
                sync(device)
                t0 = time.perf_counter()
                x = model.sample(plan.sample_n, steps=plan.sample_steps, generator=g, sampler=name)
                sync(device)
            key = f"{name}@{plan.sample_steps}steps/n{plan.sample_n}"
            rate = plan.sample_n / (time.perf_counter() - t0)
            out.setdefault(key, {})[precision] = rate if torch.isfinite(x).all() else -1.0
    return out  # -1: the samples held NaN or infinity


def torchrun_figures(tmp: Path, device: str, plan: Plan) -> dict:
    """Launch this script's child mode with torchrun (one process); its rc and report."""
    report = tmp / "torchrun.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
           str(Path(__file__).resolve()), "--child", str(report), "--device", device,
           "--size", str(plan.torchrun_size), "--steps", str(plan.torchrun_steps),
           "--batch", str(plan.batch)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                              timeout=plan.torchrun_timeout_s)
        rc, tail = proc.returncode, proc.stderr[-1500:]
    except subprocess.TimeoutExpired:
        rc, tail = 124, f"timed out after {plan.torchrun_timeout_s:.0f} s"
    child = json.loads(report.read_text()) if report.is_file() else None
    return {"command": " ".join(["torchrun", *cmd[3:6], "benchmarks/gpu_check.py", *cmd[7:]]),
            "rc": rc, "wall_s": time.perf_counter() - t0, "child": child,
            "stderr_tail": tail if rc else ""}


def child(report: Path, device: str, size: int, steps: int, batch: int) -> None:
    """Under torchrun: join the process group (nccl on CUDA, gloo on CPU), all-reduce, leave,
    then train through the engine and write `report`."""
    import torch.distributed as dist

    from genmed.train import TrainConfig, train

    backend = "nccl" if device == "cuda" else "gloo"
    local_rank = int(os.environ["LOCAL_RANK"])
    dev = torch.device("cuda", local_rank) if device == "cuda" else torch.device("cpu")
    if device == "cuda":
        torch.cuda.set_device(dev)
    dist.init_process_group(backend)
    total = torch.ones(1, device=dev)
    dist.all_reduce(total)
    world = dist.get_world_size()
    dist.destroy_process_group()  # with WORLD_SIZE 1 the engine runs without a group
    if total.item() != world:
        raise SystemExit(f"{backend} all_reduce gave {total.item()}, expected {world}")
    cfg = TrainConfig(family="diffusion", size=size, steps=steps, batch_size=batch,
                      device=device, precision="auto", log_every=steps, sample_n=1,
                      sample_steps=2, out=str(report.parent / "torchrun-run"))
    result = train(cfg, dataset=images(8 * batch, size))
    report.write_text(json.dumps({"backend": backend, "world": world,
                                  "all_reduce_sum": total.item(), "step": result.step,
                                  "img_per_s": result.img_per_s, "device": result.device,
                                  "precision": result.precision}))


def gpu(device: str) -> dict | None:
    """CUDA facts beyond `machine()`: versions, compute capability, memory (MiB)."""
    if device != "cuda":
        return None
    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}",
            "total_mib": props.total_memory / 2**20, "count": torch.cuda.device_count(),
            "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
            "bf16_supported": torch.cuda.is_bf16_supported()}


def check(device: str, tiny: bool) -> None:
    """Exit 2 with one line when the requested run cannot happen here."""
    if device == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "a CPU-only build"
        print(f"no CUDA device: torch {torch.__version__} ({build}) sees no GPU; install a CUDA "
              "build with `make install TORCH_BUILD=cu126`, or run `--device cpu --tiny` to test "
              "this script", file=sys.stderr)
        raise SystemExit(2)
    if device == "cpu" and not tiny:
        print("gpu_check: --device cpu runs only with --tiny (the full check needs a GPU)",
              file=sys.stderr)
        raise SystemExit(2)


def run(device: str, plan: Plan, out: Path) -> dict:
    """Every figure, written to `out`; the failures found (empty when all is well)."""
    from genmed.fileio import write_json
    from genmed.versions import machine

    result: dict = {"machine": machine(), "device": device, "plan": asdict(plan),
                    "cudnn_tf32": torch.backends.cudnn.allow_tf32,
                    "matmul_tf32": torch.backends.cuda.matmul.allow_tf32, "gpu": gpu(device),
                    "train": {}, "sampling_img_per_s": {}, "complete": False}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for size in plan.sizes:
            for precision in plan.precisions:
                key = f"diffusion/{size}px"
                figures = guarded(train_figures, Path(tmp) / f"{size}-{precision}", size,
                                  precision, device, plan)
                result["train"].setdefault(key, {})[precision] = figures
                write_json(out, result)  # partial figures survive a kill at the time limit
                print(f"train {key} {precision}: {figures}", flush=True)
            run_dir = Path(tmp) / f"{size}-{'bf16' if 'bf16' in plan.precisions else 'fp32'}"
            sampled = guarded(sample_figures, run_dir, device, plan)
            result["sampling_img_per_s"][f"diffusion/{size}px"] = sampled
            write_json(out, result)
            print(f"sample {size}px: {sampled}", flush=True)
        result["torchrun"] = torchrun_figures(Path(tmp), device, plan)
    result["wall_s"] = time.perf_counter() - t0
    result["train_speedup_vs_fp32"] = speedups(result["train"])
    result["failures"] = failures(result)
    result["complete"] = True
    write_json(out, result)
    return result


def speedups(train: dict) -> dict:
    """Training img/s of each AMP precision over fp32's, per size (where both ran)."""
    out: dict = {}
    for key, by in train.items():
        base = by.get("fp32", {}).get("img_per_s")
        for precision, figures in by.items():
            if precision != "fp32" and base and figures.get("img_per_s"):
                out.setdefault(key, {})[f"{precision}/fp32"] = figures["img_per_s"] / base
    return out


def guarded(measure, *args) -> dict:
    """`measure(*args)`, or {"error": ...} if it raised: one failure must not lose the rest."""
    try:
        return measure(*args)
    except Exception as exc:  # noqa: BLE001 (recorded in the JSON and listed as a failure)
        return {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}


def failures(result: dict) -> list[str]:
    """What went wrong: an error, a non-positive throughput, a torchrun that did not exit 0."""
    bad = [f"train {k} {p}: {f.get('error') or 'img/s ' + str(f['img_per_s'])}"
           for k, by in result["train"].items() for p, f in by.items()
           if "error" in f or not f["img_per_s"] > 0]
    for k, by in result["sampling_img_per_s"].items():
        if "error" in by:
            bad.append(f"sampling {k}: {by['error']}")
            continue
        bad += [f"sampling {k} {s} {p}: img/s {v}" for s, per in by.items()
                for p, v in per.items() if not v > 0]
    if result["torchrun"]["rc"] != 0:
        bad.append(f"torchrun rc {result['torchrun']['rc']}: {result['torchrun']['stderr_tail']}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (seconds; for tests)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (default benchmarks/results/gpu_check[_tiny].json)")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, default=64, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.device, args.size, args.steps, args.batch)
        return 0
    check(args.device, args.tiny)
    os.environ.setdefault("GENMED_QUIET", "1")
    out = args.out or RESULTS / ("gpu_check_tiny.json" if args.tiny else "gpu_check.json")
    result = run(args.device, TINY if args.tiny else FULL, out)
    print(f"wrote {out} ({result['wall_s']:.0f} s)")
    for line in result["failures"]:
        print(f"gpu_check: FAILED {line}", file=sys.stderr)
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
