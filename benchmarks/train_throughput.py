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
  (4) the share of engine step time spent waiting for data;
  (5) sampling img/s per diffusion sampler and (6) GAN / VAE training and sampling img/s,
      through `genmed.models.build_model` (when that is installed).
Every figure is a best-of-repeats ratio within this run; the JSON records the machine.

    python benchmarks/train_throughput.py [--steps 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from genmed.fileio import write_json  # noqa: E402
from genmed.models.base import GenerativeModel  # noqa: E402
from genmed.train import TrainConfig, train  # noqa: E402
from genmed.versions import machine  # noqa: E402

SIZE, BATCH = 32, 32


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
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
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


def bare_loop(precision: str, warm: int, steps: int) -> float:
    """img/s of a plain PyTorch loop over the same model and data (after `warm` steps)."""
    torch.manual_seed(0)
    model = RefDiffusion()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4, fused=True)  # as the engine
    loader = DataLoader(Images(), batch_size=BATCH, shuffle=True, drop_last=True)
    done, t0 = 0, 0.0
    while done < warm + steps:
        for batch in loader:
            if done == warm:
                t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
                loss = model(batch)["loss"].mean()
            loss.backward()
            opt.step()
            done += 1
            if done == warm + steps:
                break
    return steps * BATCH / (time.perf_counter() - t0)


def engine_run(precision: str, warm: int, steps: int, out: Path) -> tuple[float, float]:
    """(img/s over the measured window, data-wait share) of `genmed.train.train`."""
    assert warm == steps, "the first log window is the warm-up"
    torch.manual_seed(0)
    cfg = TrainConfig(steps=warm + steps, batch_size=BATCH, lr=2e-4, warmup=1, precision=precision,
                      log_every=steps, ckpt_every=10**6, sample_n=1, out=str(out))
    result = train(cfg, model=RefDiffusion(), dataset=Images())
    records = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return records[-1]["img_per_s"], result.data_wait_share


def _sample_rate(model: GenerativeModel, n: int, precision: str, **kw) -> float:
    """img/s of `model.sample(n, **kw)` (second call timed; the first warms up)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        model.sample(2, generator=g, **kw)
        t0 = time.perf_counter()
        model.sample(n, generator=g, **kw)
    return n / (time.perf_counter() - t0)


def family_figures(steps: int, out: Path) -> dict:
    """(5)(6): sampling img/s per diffusion sampler (default steps) and GAN/VAE/diffusion
    training img/s through the engine, on the families' default 32x32 networks."""
    try:
        from genmed.models import SAMPLERS, build_model
    except ImportError:
        return {"skipped": "genmed.models.build_model is not installed"}
    figures: dict = {"sample_n": 8, "sampling_img_per_s": {}, "train_img_per_s": {}}
    for family in ("diffusion", "gan", "vae"):
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            model = build_model(family, size=SIZE).eval()
            names = SAMPLERS if family == "diffusion" else (None,)
            for name in names:
                kw = {"sampler": name} if name else {}
                key = f"{family}/{name}" if name else family
                if name:
                    key += f"@{model.config.sample_steps}steps"
                n = 8 if name else 64
                figures["sampling_img_per_s"].setdefault(key, {})[precision] = _sample_rate(
                    model, n, precision, **kw)
            cfg = TrainConfig(family=family, steps=2 * steps, batch_size=BATCH, warmup=1,
                              precision=precision, log_every=steps, ckpt_every=10**6,
                              sample_n=1, out=str(out / f"{family}-{precision}"))
            train(cfg, model=build_model(family, size=SIZE), dataset=Images())
            lines = (out / f"{family}-{precision}" / "metrics.jsonl").read_text().splitlines()
            figures["train_img_per_s"].setdefault(family, {})[precision] = json.loads(
                lines[-1])["img_per_s"]
            print(f"{family} {precision}: {figures['train_img_per_s'][family][precision]:.1f} "
                  "train img/s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="measured steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="alternating repeats (best kept)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/train_throughput.json"))
    args = parser.parse_args()
    figures: dict[str, list[float]] = {}
    waits: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for precision in ("fp32", "bf16"):
                bare = bare_loop(precision, args.steps, args.steps)
                eng, wait = engine_run(precision, args.steps, args.steps,
                                       Path(tmp) / f"{precision}-{rep}")
                figures.setdefault(f"bare_{precision}", []).append(bare)
                figures.setdefault(f"engine_{precision}", []).append(eng)
                waits.append(wait)
                print(f"rep {rep} {precision}: bare {bare:.2f} img/s, engine {eng:.2f} img/s",
                      flush=True)
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
        "steps_per_run": args.steps, "repeats": args.repeats,
        "img_per_s_best": best, "img_per_s_all": figures,
        "engine_overhead": {p: 1 - best[f"engine_{p}"] / best[f"bare_{p}"] for p in ("fp32", "bf16")},
        "bf16_over_fp32": {"bare": best["bare_bf16"] / best["bare_fp32"],
                           "engine": best["engine_bf16"] / best["engine_fp32"]},
        "matmul_peak_tflops": {p: v / 1e12 for p, v in peak.items()},
        "train_gflop_per_image": {p: f / BATCH / 1e9 for p, f in flops.items()},
        "mfu": {f"{who}_{p}": best[f"{who}_{p}"] / BATCH * flops[p] / peak[p]
                for who in ("bare", "engine") for p in ("fp32", "bf16")},
        "data_wait_share": {"median": statistics.median(waits), "max": max(waits)},
    }
    with tempfile.TemporaryDirectory() as tmp:
        result["families"] = family_figures(args.steps, Path(tmp))
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("img_per_s_best", "engine_overhead",
                                             "bf16_over_fp32", "mfu", "data_wait_share")},
                     indent=1))


if __name__ == "__main__":
    main()
