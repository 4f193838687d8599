"""Training-engine throughput on the reference diffusion UNet, side by side with a bare loop.

Reference model (issue 3): MONAI DiffusionModelUNet, 2D, channels (32, 64, 64), attention at
the lowest level, one res block per level, 32x32 images, batch 32, DDPM noise-prediction loss.
In ONE run, alternating to share the machine's load fairly, it measures
  (1) engine overhead: `genmed.train.train` (defaults: grad clip, EMA, cosine LR, seeded
      sampler, logging) vs a bare hand-written loop (DataLoader, autocast, the same fused
      AdamW), fp32 and bf16;
  (2) bf16 / fp32 img/s for both;
  (3) MFU: model FLOPs (torch.utils.flop_counter, forward + backward) x steps/s over the
      matmul peak measured here in each precision;
  (4) the share of engine step time spent waiting for data, and where a step's time goes
      (torch.profiler self time by op category: convolution, attention, norm, optimizer);
  (5) sampling img/s per diffusion sampler and (6) GAN / VAE training and sampling img/s,
      through `genmed.models.build_model` (when that is installed).
Every figure is a best-of-repeats ratio within this run; the JSON records the machine.

    python benchmarks/train_throughput.py [--steps 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from genmed.fileio import write_json
from genmed.models.base import GenerativeModel, ModelConfig
from genmed.train import TrainConfig, train
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]

SIZE, BATCH = 32, 32
CLOCK = "cpu"  # see clock()


class RefDiffusion(GenerativeModel):
    """DDPM epsilon-prediction loss (Ho et al. 2020, eq. 14) on the reference UNet."""

    family = "diffusion"

    def __init__(self) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet
        from monai.networks.schedulers import DDPMScheduler

        self.unet = DiffusionModelUNet(spatial_dims=2, in_channels=1, out_channels=1,
                                       channels=(32, 64, 64),
                                       attention_levels=(False, False, True),
                                       num_res_blocks=1, num_head_channels=64)
        self.scheduler = DDPMScheduler(num_train_timesteps=1000)
        self.config = ModelConfig(size=SIZE)  # every model carries the config that describes it

    def loss(self, batch, phase="main"):
        x = batch["image"]
        t = torch.randint(0, 1000, (x.shape[0],), device=x.device)
        noise = torch.randn_like(x)
        pred = self.unet(self.scheduler.add_noise(x, noise, t), t)
        return {"loss": (pred.float() - noise).pow(2).flatten(1).mean(1)}

    def sample(self, n, cond=None, steps=None, generator=None):
        return torch.zeros(n, 1, SIZE, SIZE)  # grids are not part of the measurement


class Images(Dataset):
    """256 fixed random images in [-1, 1] (dict items, as genmed data sets give)."""

    def __init__(self, n: int = 256) -> None:
        self.x = torch.rand(n, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": torch.tensor(0)}


def matmul_peak(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best FLOP/s of an n x n x n matmul in `dtype`."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(reps):
        t0 = clock()
        torch.mm(a, b)
        best = min(best, clock() - t0)
    return 2 * n**3 / best


def train_flops(model: RefDiffusion, bf16: bool) -> float:
    """FLOPs of one training step's forward + backward on a batch."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = {"image": torch.randn(BATCH, 1, SIZE, SIZE)}
    with FlopCounterMode(display=False) as counter:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = model(batch)["loss"].mean()
        loss.backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def clock() -> float:
    """Seconds on the benchmark's clock: process CPU time (default) or wall time.

    The machines this runs on are often shared; with one torch thread the process CPU time
    of a step barely moves when other processes compete, while wall time can double."""
    return time.process_time() if CLOCK == "cpu" else time.perf_counter()


def bare_loop(precision: str, warm: int, steps: int) -> float:
    """Seconds per step of a plain PyTorch loop over the same model and data."""
    torch.manual_seed(0)
    model = RefDiffusion()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, fused=True)  # as the engine
    loader = DataLoader(Images(), batch_size=BATCH, shuffle=True, drop_last=True)
    done, t0 = 0, 0.0
    while done < warm + steps:
        for batch in loader:
            if done == warm:
                t0 = clock()
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                loss = model(batch)["loss"].mean()
            loss.backward()
            opt.step()
            done += 1
            if done == warm + steps:
                break
    return (clock() - t0) / steps


def engine_total(model: GenerativeModel, precision: str, steps: int, out: Path,
                 family: str = "diffusion") -> tuple[float, float]:
    """(clock seconds, data-wait share) of a whole `genmed.train.train` call of `steps` steps."""
    torch.manual_seed(0)
    cfg = TrainConfig(family=family, steps=steps, batch_size=BATCH, lr=2e-4, warmup=0,
                      precision=precision, log_every=steps, ckpt_every=10**6, sample_n=1,
                      out=str(out))
    t0 = clock()
    result = train(cfg, model=model, dataset=Images())
    return clock() - t0, result.data_wait_share


def engine_step(make_model, precision: str, warm: int, steps: int, out: Path,
                family: str = "diffusion") -> tuple[float, float]:
    """(seconds per step, data-wait share) of the engine: the difference of a run of
    warm + steps and one of warm steps, so set-up, final checkpoint and grid cancel."""
    short, _ = engine_total(make_model(), precision, warm, out / "short", family)
    long, wait = engine_total(make_model(), precision, warm + steps, out / "long", family)
    return (long - short) / steps, wait


CATEGORIES = (  # (category, substrings of aten op names), first match wins
    ("convolution", ("conv",)),
    ("attention/matmul", ("mm", "attention", "addmm", "linear", "matmul", "softmax")),
    ("group norm", ("group_norm",)),
    ("optimizer", ("adam",)),
    ("dtype casts", ("_to_copy", "copy_", "to")),
)


def time_breakdown(precision: str, steps: int = 2) -> dict[str, float]:
    """Share of one training step's self CPU time per op category (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = RefDiffusion()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, fused=True)
    batch = {"image": Images().x[:BATCH]}

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            loss = model(batch)["loss"].mean()
        loss.backward()
        opt.step()

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    shares: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key.lower()
        cat = next((c for c, keys in CATEGORIES if any(k in name for k in keys)), "other")
        shares[cat] = shares.get(cat, 0.0) + event.self_cpu_time_total
    total = sum(shares.values()) or 1.0
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def _sample_rate(model: GenerativeModel, n: int, precision: str, **kw) -> float:
    """img/s of `model.sample(n, **kw)` (after a 2-image warm-up call)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        model.sample(2, generator=g, **kw)
        t0 = clock()
        model.sample(n, generator=g, **kw)
    return n / (clock() - t0)


def family_figures(warm: int, steps: int, out: Path) -> dict:
    """(5) sampling img/s of each diffusion sampler at the family's default step count, and
    (6) GAN and VAE training (engine) and sampling img/s, on the families' default 32x32 nets."""
    try:
        from genmed.models import SAMPLERS, build_model
    except ImportError:
        return {"skipped": "genmed.models.build_model is not installed"}
    figures: dict = {"sampling_img_per_s": {}, "train_img_per_s": {}}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        diffusion = build_model("diffusion", size=SIZE).eval()
        for name in SAMPLERS:
            key = f"diffusion/{name}@{diffusion.config.sample_steps}steps/n8"
            figures["sampling_img_per_s"].setdefault(key, {})[precision] = _sample_rate(
                diffusion, 8, precision, sampler=name)
        for family in ("gan", "vae"):
            sec, _ = engine_step(lambda f=family: build_model(f, size=SIZE), precision, warm,
                                 steps, out / f"{family}-{precision}", family)
            figures["train_img_per_s"].setdefault(family, {})[precision] = BATCH / sec
            figures["sampling_img_per_s"].setdefault(f"{family}/n64", {})[precision] = (
                _sample_rate(build_model(family, size=SIZE).eval(), 64, precision))
        print(f"families {precision}: {figures}", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="measured steps per run")
    parser.add_argument("--warm", type=int, default=1, help="warm-up steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch default)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="cpu: process CPU time (robust on shared machines); wall")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    global CLOCK
    CLOCK = args.clock
    if args.threads:
        torch.set_num_threads(args.threads)
    figures: dict[str, list[float]] = {}
    waits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for precision in ("fp32", "bf16"):
                bare = BATCH / bare_loop(precision, args.warm, args.steps)
                sec, wait = engine_step(RefDiffusion, precision, args.warm, args.steps,
                                        Path(tmp) / f"{precision}-{rep}")
                figures.setdefault(f"bare_{precision}", []).append(bare)
                figures.setdefault(f"engine_{precision}", []).append(BATCH / sec)
                waits.append(wait)
                print(f"rep {rep} {precision}: bare {bare:.2f} img/s, engine {BATCH / sec:.2f} "
                      f"img/s ({CLOCK} clock)", flush=True)
    best = {k: max(v) for k, v in figures.items()}
    peak = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    model = RefDiffusion()
    flops = {p: train_flops(model, p == "bf16") for p in ("fp32", "bf16")}
    result = {
        "benchmark": "train_throughput",
        "machine": machine(),
        "reference_model": "MONAI DiffusionModelUNet 2D, channels (32,64,64), attention "
                           "(F,F,T), 1 res block, 32x32, batch 32, DDPM eps loss",
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "clock": args.clock, "steps_per_run": args.steps, "warm_steps": args.warm,
        "repeats": args.repeats,
        "img_per_s_best": best, "img_per_s_all": figures,
        "engine_overhead": {p: 1 - best[f"engine_{p}"] / best[f"bare_{p}"] for p in ("fp32", "bf16")},
        "bf16_over_fp32": {"bare": best["bare_bf16"] / best["bare_fp32"],
                           "engine": best["engine_bf16"] / best["engine_fp32"]},
        "matmul_peak_tflops": {p: v / 1e12 for p, v in peak.items()},
        "train_gflop_per_image": {p: f / BATCH / 1e9 for p, f in flops.items()},
        "mfu": {f"{who}_{p}": best[f"{who}_{p}"] / BATCH * flops[p] / peak[p]
                for who in ("bare", "engine") for p in ("fp32", "bf16")},
        "self_time_share_by_op": {p: time_breakdown(p) for p in ("fp32", "bf16")},
        "data_wait_share": {"median": statistics.median(waits), "max": max(waits)},
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["families"] = family_figures(args.warm, args.steps, Path(tmp))
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("img_per_s_best", "engine_overhead",
                                             "bf16_over_fp32", "mfu", "data_wait_share")},
                     indent=1))


if __name__ == "__main__":
    main()
