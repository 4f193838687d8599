"""Autoencoder reconstruction at 256 px (issue 13): PSNR and SSIM in the abdomen window on
held-out phantom slices, and the lesion contrast the reconstruction keeps.

Stage one of latent diffusion (`--family autoencoder`, MONAI AutoencoderKL, 4x downsampling,
3 latent channels) trained through the engine on random 128-px crops of 256-px phantom slices
(`train_crop`, as Rombach et al. 2022 train their first stage on crops), then evaluated on
whole 256-px slices of the test patients (never trained on).

The phantom's slices carry white scan noise of 8-25 HU (SD, per patient), which no
autoencoder can or should reproduce, so PSNR against the noisy input is capped near
20 log10(400 / sigma) dB. Both references are reported: the input the autoencoder saw, and the
noise-free slice ("clean"); the cap is reported as the PSNR of the clean slice itself against
the input. All figures in the W400/L40 window (PSNR data range 400 HU).

    PYTHONPATH=src python benchmarks/autoencoder_quality.py --steps 2500 [--run RUN]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def train_autoencoder(run: Path, args: argparse.Namespace) -> float:
    """Stage one through the engine; returns its wall time (s)."""
    from genmed.config import parse_assignments
    from genmed.train import TrainConfig, train

    cfg = TrainConfig(family="autoencoder", size=args.size, steps=args.steps,
                      batch_size=args.batch, lr=args.lr, precision=args.precision, device="cpu",
                      ckpt_every=250, sample_n=4, out=str(run),
                      options={"train_crop": args.crop} | parse_assignments(args.set))
    start = time.perf_counter()
    train(cfg)
    return time.perf_counter() - start


def lesion_contrast(hu: np.ndarray, lesion: np.ndarray, kidney: np.ndarray) -> np.ndarray:
    """Per slice: mean HU in the lesion minus mean HU in the lesion-free kidney (NaN if none)."""
    out = np.full(len(hu), np.nan, np.float32)
    for i, (h, les, kid) in enumerate(zip(hu, lesion, kidney)):
        if les.any() and kid.any():
            out[i] = h[les].mean() - h[kid].mean()
    return out


def figure(path: Path, hu_in: np.ndarray, hu_rec: np.ndarray, hu_clean: np.ndarray,
           lesion: np.ndarray, rows: list[int], psnr: np.ndarray, name: str, zoom: int = 48) -> None:
    """Per row: input with the lesion outlined (red) | reconstruction | both zoomed to the
    `zoom`-px square around the lesion | |reconstruction - clean|; HU colour bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 5, figsize=(21, 4.2 * len(rows)), squeeze=False)
    for r, i in enumerate(rows):
        ys, xs = np.nonzero(lesion[i])
        cy, cx = int(ys.mean()), int(xs.mean())
        y0 = min(max(cy - zoom // 2, 0), hu_in.shape[-2] - zoom)
        x0 = min(max(cx - zoom // 2, 0), hu_in.shape[-1] - zoom)
        box = (slice(y0, y0 + zoom), slice(x0, x0 + zoom))
        panels = ((hu_in[i], "input", "gray", (-160, 240), None),
                  (hu_rec[i], f"reconstruction ({psnr[i]:.1f} dB vs clean)", "gray", (-160, 240), None),
                  (hu_in[i][box], f"input, {zoom} px around the lesion", "gray", (-160, 240), box),
                  (hu_rec[i][box], "reconstruction, same square", "gray", (-160, 240), box),
                  (np.abs(hu_rec[i] - hu_clean[i]), "|reconstruction - clean|", "magma", (0, 60), None))
        for c, (ax, (img, title, cmap, (lo, hi), sub)) in enumerate(zip(axes[r], panels)):
            extent = None if sub is None else (x0 - 0.5, x0 + zoom - 0.5, y0 + zoom - 0.5, y0 - 0.5)
            im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, extent=extent)
            if c in (0, 2):  # the lesion's outline on the input
                ax.contour(np.arange(hu_in.shape[-1]), np.arange(hu_in.shape[-2]), lesion[i],
                           levels=[0.5], colors="red", linewidths=0.8)
                if sub is not None:
                    ax.set_xlim(x0 - 0.5, x0 + zoom - 0.5)
                    ax.set_ylim(y0 + zoom - 0.5, y0 - 0.5)
            if c == 0:
                ax.add_patch(plt.Rectangle((x0, y0), zoom, zoom, fill=False, color="yellow", lw=0.8))
            ax.set_title(f"test slice {i}: {title}", fontsize=9)
            ax.set_xlabel("x (px, 1.41 mm)")
            ax.set_ylabel("y (px, 1.41 mm)")
            fig.colorbar(im, ax=ax, fraction=0.046, label="HU" if c < 4 else "HU error")
    fig.suptitle(f"{name} on held-out 256-px phantom slices with malignant lesions (red outline); "
                 "window W400/L40", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a trained autoencoder run to evaluate (skip training)")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "bench_autoencoder_256")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an autoencoder option for training, e.g. latent_channels=8 or adv_weight=0")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "autoencoder_quality.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "autoencoder_256_pairs.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.data.datasets import load_training_data
    from genmed.data.modality import CT_WINDOW
    from genmed.metrics.paired import paired_per_image
    from genmed.train.run import load_run
    from genmed.versions import machine

    run = args.run or args.out_run
    train_s = None if args.run else train_autoencoder(run, args)
    model, _ = load_run(run)
    model.eval()
    test = load_training_data("phantom", size=args.size, split="test")
    x = test.images
    clean = test.extras["clean"]
    mask = test.extras["mask"][:, 0].numpy()
    start = time.perf_counter()
    with torch.no_grad():
        rec = torch.cat([model.reconstruct(x[i:i + 8]) for i in range(0, len(x), 8)])
    recon_s = time.perf_counter() - start
    hu = {k: CT_WINDOW.from_unit(v[:, 0].float().numpy()) for k, v in
          (("input", x), ("rec", rec), ("clean", clean))}
    vs_input = paired_per_image(hu["rec"], hu["input"])
    vs_clean = paired_per_image(hu["rec"], hu["clean"])
    floor = paired_per_image(hu["clean"], hu["input"])
    lesion, kidney = mask == 2, mask == 1
    c_rec = lesion_contrast(hu["rec"], lesion, kidney)
    c_clean = lesion_contrast(hu["clean"], lesion, kidney)
    has = ~np.isnan(c_clean)

    def summary(d: dict[str, np.ndarray]) -> dict[str, float]:
        return {k: round(float(np.mean(v)), 3) for k, v in d.items()}

    malignant = [i for i in np.nonzero(has & (test.labels.numpy() == 2))[0]][:3]
    figure(args.figure, hu["input"], hu["rec"], hu["clean"], lesion, [int(i) for i in malignant],
           vs_clean["psnr_db"], f"AutoencoderKL ({model.config.downsampling}x, "
           f"{model.config.latent_channels} latent channels)")
    result = {
        "benchmark": "autoencoder_quality",
        "machine": machine() | {"torch_threads": args.threads},
        "settings": {"run": str(run), "size": args.size, "train_crop": args.crop, "steps": args.steps,
                     "batch": args.batch, "lr": args.lr, "precision": args.precision,
                     "autoencoder": model.config.__dict__ | {"channels": list(model.config.channels)},
                     "window_hu": "W400/L40 (data range 400 HU)",
                     "test": f"{len(x)} whole 256-px slices of {len(set(test.patient_ids))} test patients"},
        "train_wall_s": None if train_s is None else round(train_s, 1),
        "reconstruct_s_per_slice": round(recon_s / len(x), 4),
        "vs_clean": summary(vs_clean),
        "vs_input": summary(vs_input),
        "noise_cap_clean_vs_input": summary(floor),
        "lesion_contrast_hu": {"clean": round(float(np.mean(c_clean[has])), 1),
                               "reconstruction": round(float(np.mean(c_rec[has])), 1),
                               "slices": int(has.sum())},
        "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure),
    }
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("vs_clean", "vs_input", "noise_cap_clean_vs_input",
                                             "lesion_contrast_hu", "train_wall_s")}, indent=1))


if __name__ == "__main__":
    main()
