"""Latent vs pixel diffusion: training throughput and peak memory at 128 and 256 px (issue 13, 4).

Both train through the engine (`genmed.train.train`) with the same UNet (MONAI
DiffusionModelUNet, channels (32, 64, 64), attention at the lowest level, one res block):
  pixel:  `diffusion` on (1, S, S) images;
  latent: `ldm` on the (3, S/4, S/4) latents of the default `autoencoder` (AutoencoderKL,
          channels (32, 64, 64), no attention), frozen; each step also runs its encoder on
          the batch (no gradient), as latent training does.
The autoencoder's own training (stage one) is not counted: it is trained once and reused.
Each configuration runs in its own process (peak RSS = that process's high-water mark, minus
its RSS after imports for the training increment); img/s is the difference of a run of
warm + steps and one of warm steps (after a first, discarded one-step run), so set-up,
checkpoint and grid cancel. One torch thread;
process CPU time as the clock (the machines this runs on are shared).

    PYTHONPATH=src python benchmarks/latent_vs_pixel.py [--steps 2] [--batch 4]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNET = dict(channels=(32, 64, 64), attention_levels=(False, False, True), num_res_blocks=1,
            sample_steps=1)


def _rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(kind: str, size: int, batch: int, warm: int, steps: int, precision: str) -> dict:
    """Figures of one configuration (run in a fresh process)."""
    import torch

    torch.set_num_threads(1)
    from genmed.models import build_model, latent_diffusion
    from genmed.train import DictDataset, TrainConfig, train

    base_rss = _rss_mb()
    images = torch.rand(max(batch, 8), 1, size, size, generator=torch.Generator().manual_seed(0))
    data = DictDataset(image=images * 2 - 1)

    def make():
        torch.manual_seed(0)
        if kind == "pixel":
            return build_model("diffusion", size=size, **UNET)
        ae = build_model("autoencoder", size=size, adv_weight=0.0)
        return latent_diffusion(ae, data.tensors["image"], **UNET)

    def run(n: int, out: Path) -> float:
        model = make()
        cfg = TrainConfig(family="diffusion" if kind == "pixel" else "ldm", data="memory",
                          size=size, steps=n, batch_size=batch, warmup=0, precision=precision,
                          device="cpu", log_every=n, ckpt_every=10**6, sample_n=1,
                          sample_steps=1, out=str(out))
        t0 = time.process_time()
        train(cfg, model=model, dataset=data)
        return time.process_time() - t0

    with tempfile.TemporaryDirectory() as tmp:
        run(1, Path(tmp) / "first")  # one-time costs of the process (lazy imports, allocator)
        short = run(warm, Path(tmp) / "short")
        long = run(warm + steps, Path(tmp) / "long")
    model = make()
    trained = model.diffusion if kind == "latent" else model
    return {"kind": kind, "size": size, "img_per_s": batch * steps / (long - short),
            "peak_rss_mb": _rss_mb(), "rss_after_imports_mb": base_rss,
            "train_rss_increment_mb": _rss_mb() - base_rss,
            "trained_params_M": sum(p.numel() for p in trained.parameters()) / 1e6,
            "diffusion_input": list(trained.config.sample_shape)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="measured steps per configuration")
    parser.add_argument("--warm", type=int, default=1, help="warm-up steps")
    parser.add_argument("--batch", type=int, default=4, help="images per step")
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--one", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/latent_vs_pixel.json"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]), args.batch, args.warm, args.steps,
                             args.precision)))
        return
    from genmed.fileio import write_json
    from genmed.versions import machine

    runs = []
    for size in map(int, args.sizes.split(",")):
        for kind in ("pixel", "latent"):
            cmd = [sys.executable, __file__, "--one", kind, str(size), "--steps", str(args.steps),
                   "--warm", str(args.warm), "--batch", str(args.batch),
                   "--precision", args.precision]
            t0 = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                                 env={**__import__("os").environ, "OMP_NUM_THREADS": "1",
                                      "GENMED_QUIET": "1"})
            runs.append({**json.loads(out.stdout.strip().splitlines()[-1]),
                         "wall_s": time.perf_counter() - t0})
            print(runs[-1], flush=True)
    by = {(r["kind"], r["size"]): r for r in runs}
    sizes = sorted({r["size"] for r in runs})
    result = {
        "benchmark": "latent_vs_pixel",
        "machine": machine() | {"torch_threads": 1},
        "settings": {"unet": {k: list(v) if isinstance(v, tuple) else v for k, v in UNET.items()},
                     "autoencoder": "default AutoencoderConfig (channels (32, 64, 64), 4x, "
                                    "3 latent channels, no attention), frozen",
                     "batch": args.batch, "steps": args.steps, "warm": args.warm,
                     "precision": args.precision, "clock": "process CPU time"},
        "runs": runs,
        "latent_over_pixel": {str(s): {
            "img_per_s": by["latent", s]["img_per_s"] / by["pixel", s]["img_per_s"],
            "peak_rss": by["latent", s]["peak_rss_mb"] / by["pixel", s]["peak_rss_mb"],
            "train_rss_increment": (by["latent", s]["train_rss_increment_mb"]
                                    / by["pixel", s]["train_rss_increment_mb"])}
            for s in sizes},
    }
    write_json(args.out, result)
    print(json.dumps(result["latent_over_pixel"], indent=1))


if __name__ == "__main__":
    main()
