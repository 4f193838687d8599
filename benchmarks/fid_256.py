"""Pixel vs latent diffusion at 256 px, measured by a 256-px domain extractor (issue 13).

Both arms train the same UNet (MONAI DiffusionModelUNet, channels (32, 64, 64), attention at
the lowest level, one res block, epsilon, cosine LR, EMA 0.999) through the engine on the same
training slices, unconditional, for the same number of training images (`--images`):
  pixel:  `diffusion` on the (1, 256, 256) slices;
  latent: `ldm` on the (C, 64, 64) latents of a trained, frozen 256-px autoencoder run
          (`--autoencoder`, e.g. `benchmarks/autoencoder_quality.py --set latent_channels=4`).
Each arm then draws `--n` samples (SDE-DPM-Solver++(2M), 20 steps, bf16 autocast) into its run
folder and writes a part JSON (training wall time, img/s, peak RSS, sampling s/image).
`--merge` scores every part against the held-out test patients' slices with one domain
extractor trained at 256 px (`genmed eval train-extractor --size 256`): FID, KID, precision,
density (quality) and recall, coverage (diversity) with bootstrap CIs, the extractor's name
and weights hash; beside them two references on the validation patients' slices: real against
real (the floor) and, with `--autoencoder`, the same slices through stage one (the latent arm's
ceiling); and it draws real | pixel | latent side by side in the abdomen window.
Data: the phantom's patient-level split at 256 px (`load_training_data`, `--patients`, seed 0).

    PYTHONPATH=src python benchmarks/fid_256.py --arm pixel --images 2400 --out-run RUN_P
    PYTHONPATH=src python benchmarks/fid_256.py --arm latent --images 2400 --autoencoder AE --out-run RUN_L
    PYTHONPATH=src python benchmarks/fid_256.py --merge RUN_P RUN_L --extractor EXT.safetensors --autoencoder AE
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
UNET = dict(channels=(32, 64, 64), attention_levels=(False, False, True), num_res_blocks=1)
SAMPLER, SAMPLE_STEPS = "dpmpp_2m_sde", 20
PART, SAMPLES = "fid256_part.json", "fid256_samples.npy"


def split(args, name: str):
    """The phantom's `name` split at `args.size` px (patient-level, seed 0)."""
    from genmed.data.datasets import load_training_data

    return load_training_data("phantom", size=args.size, split=name, n_patients=args.patients, seed=0)


def build(args, images: torch.Tensor):
    """The arm's untrained model: pixel `diffusion`, or `ldm` on the frozen autoencoder."""
    from genmed.models import build_model
    from genmed.models.latent import latent_diffusion
    from genmed.train import load_run

    torch.manual_seed(args.seed)
    if args.arm == "pixel":
        return build_model("diffusion", size=args.size, sampler=SAMPLER, sample_steps=SAMPLE_STEPS, **UNET)
    ae, _ = load_run(args.autoencoder)
    return latent_diffusion(ae, images[:64], autoencoder_run=str(args.autoencoder), sampler=SAMPLER,
                            sample_steps=SAMPLE_STEPS, generator=torch.Generator().manual_seed(args.seed),
                            **UNET)


def run_arm(args) -> dict:
    """Train one arm for `args.images` images, draw `args.n` samples, write its part."""
    from genmed.train import DictDataset, fit

    train = split(args, "train")
    model = build(args, train.images)
    steps = args.images // args.batch
    start = time.perf_counter()
    fit(model, DictDataset(image=train.images), steps=steps, batch_size=args.batch, lr=args.lr,
        seed=args.seed, out=args.out_run, device="cpu", precision=args.precision)
    wall = time.perf_counter() - start
    model.eval()
    g = torch.Generator().manual_seed(args.seed + 1)
    start = time.perf_counter()
    draws = []
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
        for i in range(0, args.n, 8):
            draws.append(model.sample(min(8, args.n - i), generator=g).float().clamp(-1, 1))
    sample_s = (time.perf_counter() - start) / args.n
    np.save(args.out_run / SAMPLES, torch.cat(draws).numpy().astype(np.float32))
    part = {"arm": args.arm, "run": str(args.out_run),
            "autoencoder": str(args.autoencoder) if args.arm == "latent" else None,
            "diffusion_input": list(model.config.latent_config.sample_shape) if args.arm == "latent"
            else [1, args.size, args.size],
            "train_images": steps * args.batch, "steps": steps, "batch": args.batch, "lr": args.lr,
            "precision": args.precision, "train_slices": len(train),
            "train_patients": len(set(train.patient_ids)), "wall_s": round(wall, 1),
            "img_per_s": round(steps * args.batch / wall, 3),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "n_samples": args.n, "sampler": SAMPLER, "sample_steps": SAMPLE_STEPS,
            "sample_s_per_image": round(sample_s, 2)}
    (args.out_run / PART).write_text(json.dumps(part, indent=2) + "\n")
    return part


def figure(path: Path, real: np.ndarray, arms: dict[str, np.ndarray], title: str, k: int = 6) -> None:
    """Rows: held-out real slices, then each arm's first `k` samples, in W400/L40 (HU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.data.modality import CT_WINDOW

    rows = {"held-out real": real[:: max(1, len(real) // k)], **arms}  # real: spread over patients
    fig, axes = plt.subplots(len(rows), k, figsize=(2.6 * k + 1.2, 2.7 * len(rows) + 0.4), squeeze=False,
                             layout="constrained")
    for r, (name, imgs) in enumerate(rows.items()):
        for c in range(k):
            ax = axes[r, c]
            im = ax.imshow(CT_WINDOW.from_unit(imgs[c, 0]), cmap="gray", vmin=CT_WINDOW.low, vmax=CT_WINDOW.high)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(name, fontsize=10)
    fig.colorbar(im, ax=axes, shrink=0.5, label="HU (window W400 / L40)")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def merge(args) -> dict:
    """Score every part against the held-out slices with one extractor; JSON and figure."""
    from genmed.metrics.evaluate import EvalConfig, evaluate_images
    from genmed.metrics.features import load_extractor
    from genmed.versions import machine

    test = split(args, "test")
    real, labels = test.images.numpy(), test.labels.numpy()
    ext = load_extractor(args.extractor)

    def score(fake: np.ndarray) -> dict:
        m = evaluate_images(real, fake, extractor=ext, real_labels=labels,
                            cfg=EvalConfig(n_boot=200, kid_subset=min(100, len(real), len(fake))))
        return {"extractor": m["extractor"], "quality": m["quality"], "warnings": m.get("warnings", []),
                "diversity": {k: m["diversity"].get(k) for k in ("recall", "coverage", "class_coverage")}}

    # the floor (other held-out patients) and, with --autoencoder, the latent arm's ceiling
    val = split(args, "val").images
    references = {"real: the validation patients' slices": score(val.numpy())}
    if args.autoencoder is not None:
        from genmed.train import load_run

        ae, _ = load_run(args.autoencoder)
        with torch.no_grad():
            recon = torch.cat([ae.reconstruct(b) for b in val.split(8)]).float()  # clamped by decode
        references["the same slices through stage one"] = score(recon.numpy()) | {
            "autoencoder": str(args.autoencoder)}
    references = {k: v | {"n": len(val)} for k, v in references.items()}
    arms, fakes = [], {}
    for run in args.merge:
        part = json.loads((run / PART).read_text())
        fake = np.load(run / SAMPLES)
        arms.append(part | score(fake))
        fakes[f"{part['arm']}, {part['train_images']:,} training images"] = fake
    result = {"benchmark": "fid_256", "machine": machine() | {"torch_threads": args.threads},
              "settings": {"size": args.size, "patients": args.patients, "unet": UNET,
                           "reference": f"phantom test split: {len(real)} slices of "
                                        f"{len(set(test.patient_ids))} held-out patients",
                           "extractor_file": str(args.extractor)},
              "references": references, "arms": arms}
    figure(args.figure, real, fakes, f"Unconditional diffusion at {args.size} px (360 mm field of view, "
           f"{360 / args.size:.2f} mm/px), same UNet, {SAMPLER} {SAMPLE_STEPS} steps; "
           "first row: held-out real slices")
    result["figure"] = str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", choices=("pixel", "latent"))
    ap.add_argument("--merge", type=Path, nargs="+", metavar="RUN", help="score these arm runs")
    ap.add_argument("--autoencoder", type=Path, help="latent arm: a trained 256-px autoencoder run "
                    "(merge: also score held-out slices through it)")
    ap.add_argument("--out-run", type=Path, help="the arm's run folder")
    ap.add_argument("--images", type=int, default=2400, help="training images per arm")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--patients", type=int, default=96)
    ap.add_argument("--n", type=int, default=128, help="samples per arm")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--extractor", type=Path, help="merge: the 256-px domain extractor file")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fid_256.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "fid_256_samples.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.merge:
        if args.extractor is None:
            ap.error("--merge needs --extractor")
        print(json.dumps(merge(args), indent=1))
    elif args.arm:
        if args.out_run is None or (args.arm == "latent" and args.autoencoder is None):
            ap.error("--arm needs --out-run (and --autoencoder for the latent arm)")
        print(json.dumps(run_arm(args), indent=1))
    else:
        ap.error("give --arm or --merge")


if __name__ == "__main__":
    main()
