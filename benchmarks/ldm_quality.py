"""Class-conditional latent diffusion at 256 px (issue 13): training cost and a sample grid per
class (healthy, benign, malignant) beside real slices of each class.

Stage two only: the diffusion UNet (MONAI DiffusionModelUNet, channels (32, 64, 64), attention
at the lowest level) trained through the engine on the latents of a trained 256-px autoencoder
run (`benchmarks/autoencoder_quality.py` trains one), conditioned on the slice's lesion class
with label dropout 0.1 for classifier-free guidance. Samples: SDE-DPM-Solver++(2M), 20 steps
(the default sampler), guidance scale `--guidance`.

    PYTHONPATH=src python benchmarks/ldm_quality.py --autoencoder runs/bench_autoencoder_256 \
        --steps 3000 [--run RUN]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("healthy", "benign", "malignant")


def figure(path: Path, real: dict[int, np.ndarray], fake: dict[int, np.ndarray], title: str) -> None:
    """One row per class: two real slices, then the samples; W400/L40 HU colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_real, n_fake = len(real[0]), len(fake[0])
    cols = n_real + n_fake
    fig, axes = plt.subplots(3, cols, figsize=(2.6 * cols + 1, 8.4), squeeze=False)
    for c in range(3):
        for j, img in enumerate([*real[c], *fake[c]]):
            ax = axes[c, j]
            im = ax.imshow(img, cmap="gray", vmin=-160, vmax=240)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(("real" if j < n_real else "sample") + f" ({CLASSES[c]})", fontsize=9,
                         color="tab:blue" if j < n_real else "black")
        axes[c, 0].set_ylabel(CLASSES[c], fontsize=11)
    fig.colorbar(im, ax=axes, fraction=0.015, label="HU (window W400/L40)")
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--autoencoder", type=Path, default=ROOT / "runs" / "bench_autoencoder_256")
    ap.add_argument("--run", type=Path, help="a trained ldm run to sample (skip training)")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "bench_ldm_256")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--sampler", help="sampler of the grid (default: the model's)")
    ap.add_argument("--sample-steps", type=int, help="its steps (default: the model's)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ldm_quality.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "ldm_256_samples.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.data.datasets import load_training_data
    from genmed.data.modality import CT_WINDOW
    from genmed.train import TrainConfig, train
    from genmed.train.run import load_run
    from genmed.versions import machine

    run = args.run or args.out_run
    trained = None
    if args.run is None:
        cfg = TrainConfig(family="ldm", autoencoder=str(args.autoencoder), size=args.size,
                          cond="label", steps=args.steps, batch_size=args.batch, lr=args.lr,
                          precision=args.precision, device="cpu", ckpt_every=500, sample_n=6,
                          out=str(run))
        start = time.perf_counter()
        res = train(cfg)
        trained = {"wall_s": round(time.perf_counter() - start, 1), "img_per_s": round(res.img_per_s, 3),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    model, _ = load_run(run)
    model.eval()
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        fake = {c: CT_WINDOW.from_unit(model.sample(
            args.per_class, cond=torch.full((args.per_class,), c), steps=args.sample_steps, generator=g,
            sampler=args.sampler, guidance=args.guidance)[:, 0].float().numpy()) for c in range(3)}
    sample_s = (time.perf_counter() - start) / (3 * args.per_class)
    test = load_training_data("phantom", size=args.size, split="test")
    real = {}
    for c in range(3):
        idx = np.nonzero(test.labels.numpy() == c)[0][:2]
        real[c] = CT_WINDOW.from_unit(test.images[idx, 0].numpy())
    cfg = model.config
    sampler, sample_steps = args.sampler or cfg.sampler, args.sample_steps or cfg.sample_steps
    figure(args.figure, real, fake,
           f"Latent diffusion at {args.size} px ({360 / args.size:.2f} mm/px), conditioned on the lesion class; "
           f"{sampler} {sample_steps} steps, guidance {args.guidance}; blue: held-out real slices")
    result = {
        "benchmark": "ldm_quality",
        "machine": machine() | {"torch_threads": args.threads},
        "settings": {"run": str(run), "autoencoder": str(args.autoencoder), "size": args.size,
                     "steps": args.steps, "batch": args.batch, "lr": args.lr, "precision": args.precision,
                     "unet_channels": list(cfg.channels), "latent_shape": list(cfg.latent_config.sample_shape)
                     if hasattr(cfg.latent_config, "sample_shape") else None,
                     "sampler": sampler, "sample_steps": sample_steps, "guidance": args.guidance},
        "training": trained,
        "sample_s_per_image": round(sample_s, 3),
        "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
