"""3D latent diffusion at 128^3 (issue 13): both stages within a CPU-time budget, peak memory,
and samples in three orthogonal planes beside a real volume.

One `genmed train --family ldm --spatial-dims 3 --size 128` run through the engine, bf16:
stage one, MONAI AutoencoderKL (channels (16, 32, 32), 4x, 3 latent channels) trained on random
64^3 crops (`train_crop`) of the phantom's 128^3 volumes with the patch-adversarial term after
a warm-up; stage two, the DiffusionModelUNet (32, 64, 64), attention at the lowest level, on
the 3 x 32^3 latents, each volume's posterior moments encoded once (`LatentCache`) in the
autoencoder's 64^3 training windows. CPU time is
the process's user + system time (all threads), the budget of the issue's target; peak RSS is
the process's high-water mark. Anatomy, with no 3-D feature extractor for FID: the checks of
`genmed.metrics.anatomy` (tissue shares by HU range, a body outline in each axial slice, a spine
through the stack) on `--n-check` samples beside the held-out real volumes and their
reconstructions through stage one (the most stage two can reach), with the reconstructions'
mean absolute error in HU.

    PYTHONPATH=src python benchmarks/ldm3d_quality.py [--ae-steps 500] [--steps 1500] [--run RUN] \
        [--ae-option latent_channels=4 --ae-option adv_weight=0] [--autoencoder STAGE_ONE_RUN]

With `--autoencoder`, only stage two trains here: add the stage-one run's own CPU time
(its metrics.jsonl) to `training.cpu_s` for the budget.
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


def cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def figure(path: Path, vols: list[tuple[np.ndarray, str]], spacing: list[float], title: str) -> None:
    """One row per volume, three planes each, W400/L40 HU colour bar; axes in mm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.report.planes import orthogonal_planes

    fig, axes = plt.subplots(len(vols), 3, figsize=(12, 4.0 * len(vols)), squeeze=False,
                             layout="constrained")
    for r, (vol, name) in enumerate(vols):
        for c, (img, plane, extent, origin) in enumerate(orthogonal_planes(vol, tuple(spacing))):
            ax = axes[r, c]
            im = ax.imshow(img, cmap="gray", vmin=-160, vmax=240, extent=extent, origin=origin)
            ax.set_title(f"{name}: {plane}", fontsize=9)
            ax.set_xlabel("mm")
            ax.set_ylabel("mm")
    fig.colorbar(im, ax=axes, fraction=0.02, label="HU (window W400/L40)")
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def summarise(checks: list[dict[str, float]]) -> dict:
    """Per check: mean, min and max over volumes, and the number of volumes."""
    out = {k: [round(float(np.mean(v)), 3), round(float(np.min(v)), 3), round(float(np.max(v)), 3)]
           for k, v in ((k, [c[k] for c in checks]) for k in checks[0])}
    return out | {"volumes": len(checks)}


def stage_one_record(run: Path) -> dict:
    """What a reused stage-one run was (its steps and options) and its training speed, so the
    JSON's `settings.ae_steps` / `ae_option` (unused with `--autoencoder`) cannot mislead."""
    from genmed.train.run import load_config_of

    cfg = load_config_of(run)
    rates = [json.loads(line).get("img_per_s") for line in (run / "metrics.jsonl").open()]
    rates = [r for r in rates if r]
    return {"run": str(run), "steps": cfg.steps, "batch_size": cfg.batch_size,
            "precision": cfg.precision, "options": cfg.options,
            "img_per_s_median": round(float(np.median(rates)), 3) if rates else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a trained 3D ldm run to sample (skip training)")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "bench_ldm3d_128")
    ap.add_argument("--autoencoder", type=Path,
                    help="a trained 3D autoencoder run to reuse as stage one (train stage two only)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--patients", type=int, default=48)
    ap.add_argument("--ae-steps", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--ae-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a stage-one (AutoencoderConfig) field, VALUE as YAML, e.g. latent_channels=4")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-samples", type=int, default=2, help="samples in the figure")
    ap.add_argument("--n-check", type=int, default=8, help="samples read by the anatomy checks")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ldm3d_quality.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "ldm3d_128_planes.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.config import parse_assignments
    from genmed.data.datasets import load_training_data
    from genmed.data.modality import CT_WINDOW
    from genmed.metrics.anatomy import anatomy_checks
    from genmed.train import TrainConfig, train
    from genmed.train.run import load_run
    from genmed.versions import machine

    run = args.run or args.out_run
    trained = None
    if args.run is None:
        ae = {"channels": [16, 32, 32], "train_crop": args.crop, "adv_weight": 0.01,
              "adv_warmup_steps": args.ae_steps // 5} | parse_assignments(args.ae_option, "--ae-option")
        stage_one = ({"autoencoder": str(args.autoencoder)} if args.autoencoder else
                     {"autoencoder_steps": args.ae_steps})
        cfg = TrainConfig(family="ldm", spatial_dims=3, size=args.size, n_patients=args.patients,
                          steps=args.steps, batch_size=args.batch, precision=args.precision,
                          device="cpu", ckpt_every=250, sample_n=2, log_every=10, out=str(run),
                          options={"channels": [32, 64, 64], "attention_levels": [False, False, True]}
                          | ({} if args.autoencoder else {"autoencoder": ae}), **stage_one)
        start, c0 = time.perf_counter(), cpu_s()
        res = train(cfg)
        trained = {"wall_s": round(time.perf_counter() - start, 1), "cpu_s": round(cpu_s() - c0, 1),
                   "stage_two_img_per_s": round(res.img_per_s, 3),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        print(json.dumps(trained), flush=True)
    model, _ = load_run(run)
    model.eval()
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    with torch.no_grad():
        n = max(args.n_samples, args.n_check)
        fake = torch.cat([model.sample(1, generator=g) for _ in range(n)])[:, 0].float().numpy()
    sample_s = (time.perf_counter() - start) / n
    test = load_training_data("phantom", size=args.size, spatial_dims=3, n_patients=args.patients,
                              split="test")
    spacing = list(test.info["spacing_mm"])
    real = [CT_WINDOW.from_unit(v[0].numpy()) for v in test.images]
    with torch.no_grad():  # stage one's ceiling: the held-out volumes through the autoencoder
        recon = [CT_WINDOW.from_unit(model.autoencoder.reconstruct(v[None])[0, 0].float().numpy())
                 for v in test.images]
    real_checks = [anatomy_checks(v, spacing) for v in real]
    recon_checks = [anatomy_checks(v, spacing) for v in recon]
    recon_mae = float(np.mean([np.abs(r - v).mean() for r, v in zip(recon, real)]))
    fake_checks = [anatomy_checks(CT_WINDOW.from_unit(v), spacing) for v in fake[:args.n_check]]
    vols = [(real[0], "held-out real volume"), (recon[0], "its autoencoder reconstruction")]
    vols += [(CT_WINDOW.from_unit(v), f"sample {i + 1}") for i, v in enumerate(fake[:args.n_samples])]
    cfg = model.config
    figure(args.figure, vols, spacing,
           f"3D latent diffusion at {args.size}^3 ({spacing[1]:.2f} mm in-plane, {spacing[0]:.2f} mm "
           f"between slices); {cfg.prediction}-prediction, {cfg.sampler} {cfg.sample_steps} steps")
    result = {
        "benchmark": "ldm3d_quality",
        "machine": machine() | {"torch_threads": args.threads},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "training": trained,
        "stage_one_run": stage_one_record(args.autoencoder) if args.autoencoder else None,
        "sample_s_per_volume": round(sample_s, 2),
        "anatomy": {"note": "genmed.metrics.anatomy: voxel shares by HU range (W400/L40), share of "
                            "axial slices with a body outline, share with a spine; mean [min, max]",
                    "real": summarise(real_checks), "samples": summarise(fake_checks),
                    "autoencoder_reconstructions": summarise(recon_checks)},
        "autoencoder_recon_mae_hu": round(recon_mae, 1),
        "peak_rss_mb_total": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
