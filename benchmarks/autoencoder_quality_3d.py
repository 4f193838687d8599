"""3-D stage one: how much of held-out 128^3 volumes the autoencoder gives back (issues 13, 16).

Stage two of 3-D latent diffusion can draw no more than its autoencoder decodes: the 128^3
mask-conditioned model's kidneys (Dice 0.07 against real 0.89) sat near its stage-one
reconstructions' (0.11). This benchmark measures stage-one runs side by side on the same
held-out phantom volumes (another seed than training, the mask benchmark's volumes), all in
the W400/L40 window (-160..240 HU, PSNR data range 400 HU):
- PSNR, SSIM (3-D, skimage) and MAE against the noise-free volume, and against the scanned
  (noisy) input the autoencoder saw;
- the mean HU of body, kidney and lesion in the reconstruction against the clean volume, and
  the lesion-to-kidney contrast kept (a lesion the decoder fills in with kidney is lost);
- a yardstick: the clean volume blurred by a Gaussian of 1 and 2 voxels (SD), scored the
  same way; on the slice segmenter, a 1-voxel blur keeps kidney Dice 0.81, a 2-voxel 0.34.
The figure shows three planes through the largest test lesion: clean, input, each run.

    PYTHONPATH=src python benchmarks/autoencoder_quality_3d.py --run A --name before \
        --run B --name after [--test-patients 4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
WINDOW_HU = (-160.0, 240.0)


def scores(recon: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """PSNR (dB), SSIM and MAE (HU) of windowed volumes (N, D, H, W) against `ref`."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    lo, hi = WINDOW_HU
    a, b = np.clip(recon, lo, hi), np.clip(ref, lo, hi)
    return {"psnr_db": float(np.mean([peak_signal_noise_ratio(r, x, data_range=hi - lo) for r, x in zip(b, a)])),
            "ssim": float(np.mean([structural_similarity(r, x, data_range=hi - lo) for r, x in zip(b, a)])),
            "mae_hu": float(np.abs(a - b).mean())}


def regions(recon: np.ndarray, clean: np.ndarray, maps: np.ndarray) -> dict[str, float]:
    """Mean HU (windowed) of body, kidney and lesion in `recon` and their bias against `clean`;
    the lesion-to-kidney contrast kept."""
    lo, hi = WINDOW_HU
    a, b = np.clip(recon, lo, hi), np.clip(clean, lo, hi)
    out: dict[str, float] = {}
    for name, label in (("body", 1), ("kidney", 2), ("lesion", 3)):
        m = maps == label
        out[f"{name}_hu"] = float(a[m].mean())
        out[f"{name}_bias_hu"] = float(a[m].mean() - b[m].mean())
    out["lesion_minus_kidney_hu"] = out["lesion_hu"] - out["kidney_hu"]
    return out


def reconstruct(run: Path, images_hu: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Stage one's reconstructions (HU) of each volume, the seconds per volume, and the step of
    the checkpoint used (the newest; a run may still be training)."""
    from genmed.apps.common import to_hu, to_unit
    from genmed.train import load_run
    from genmed.train.checkpoint import latest_checkpoint

    step = latest_checkpoint(run).step
    ae, _ = load_run(run)
    start = time.perf_counter()
    with torch.no_grad():
        recon = torch.cat([ae.reconstruct(v) for v in to_unit(images_hu).split(1)])
    return to_hu(recon), (time.perf_counter() - start) / len(images_hu), step


def figure(path: Path, rows: dict[str, np.ndarray], maps: np.ndarray, spacing: tuple[float, float, float]) -> None:
    """Three planes through the largest test lesion's centre, one row per volume in `rows`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.fileio import save_figure
    from genmed.report.planes import orthogonal_planes

    k = int(np.argmax((maps == 3).sum((1, 2, 3))))
    where = np.argwhere(maps[k] == 3)
    centre = tuple(int(c) for c in (where.mean(0) if len(where) else np.array(maps[k].shape) // 2))
    fig, ax = plt.subplots(len(rows), 3, figsize=(11, 3.4 * len(rows)), squeeze=False, layout="constrained")
    for r, (name, vol) in enumerate(rows.items()):
        for c, (img, plane, ext, origin) in enumerate(orthogonal_planes(vol[k], spacing, centre)):
            im = ax[r, c].imshow(img, cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1], extent=ext, origin=origin)
            ax[r, c].set_title(f"{name}: {plane}", fontsize=9)
            ax[r, c].set_xlabel("mm", fontsize=8)
            ax[r, c].set_ylabel("mm", fontsize=8)
            ax[r, c].tick_params(labelsize=7)
    fig.colorbar(im, ax=ax.ravel().tolist(), fraction=0.03, label="HU (W400/L40)")
    d, h, w = maps.shape[1:]
    fig.suptitle(f"3-D stage one on a held-out volume, {d} x {h} x {w} voxels ({spacing[0]:.2f} x "
                 f"{spacing[1]:.2f} x {spacing[2]:.2f} mm); planes through the lesion centre, superior up",
                 fontsize=10)
    save_figure(fig, path, dpi=72)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, action="append", required=True, help="a 3-D autoencoder run (repeat)")
    ap.add_argument("--name", action="append", default=[], help="a label per --run (default: its folder)")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--test-patients", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0, help="training seed; the test volumes use seed + 1000")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "autoencoder_quality_3d.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "autoencoder_3d_planes.png")
    args = ap.parse_args()
    if args.name and len(args.name) != len(args.run):
        ap.error(f"{len(args.name)} --name for {len(args.run)} --run")
    names = args.name or [r.name for r in args.run]
    torch.set_num_threads(args.threads)

    from scipy.ndimage import gaussian_filter

    from apps_generate_from_mask_3d import volumes
    from genmed.data.conditions import condition_maps
    from genmed.versions import machine

    te = volumes(args.test_patients, args.size, args.seed + 1000)
    maps, spacing = condition_maps(te), tuple(float(s) for s in te.spacing_mm)
    results: dict[str, dict] = {}
    for sd in (1.0, 2.0):  # the yardstick: the clean volume blurred
        blurred = np.stack([gaussian_filter(v, sd) for v in te.clean])
        results[f"clean blurred, {sd:g} voxel"] = {"vs_clean": scores(blurred, te.clean),
                                                  "regions": regions(blurred, te.clean, maps)}
    rows = {"clean": te.clean, "input (scanned)": te.image}
    for run, name in zip(args.run, names):
        recon, seconds, step = reconstruct(run, te.image)
        results[name] = {"run": str(run), "checkpoint_step": step, "s_per_volume": round(seconds, 1),
                         "vs_clean": scores(recon, te.clean), "vs_input": scores(recon, te.image),
                         "regions": regions(recon, te.clean, maps)}
        rows[name] = recon
    figure(args.figure, rows, maps, spacing)
    result = {"benchmark": "autoencoder_quality_3d", "machine": machine() | {"torch_threads": args.threads},
              "settings": {k: [str(v) for v in vals] if isinstance(vals, list) else
                           (str(vals) if isinstance(vals, Path) else vals) for k, vals in vars(args).items()},
              "test": {"volumes": args.test_patients, "spacing_mm": spacing,
                       "clean_regions": regions(te.clean, te.clean, maps),
                       "input_vs_clean": scores(te.image, te.clean)},
              "results": results,
              "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure)}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
