"""Class -> layout -> image at 256 px (issue 13, "a visible mass when conditioned on malignant"):
a class-conditional layout model draws the condition map, the mask-conditioned latent diffusion
model draws the slice from it (`genmed.models.layout`; brainSPADE, Fernandez et al. 2022).

Train the layout model (v-predicting pixel diffusion of 64-px class-share maps, MONAI
DiffusionModelUNet (32, 64, 64), class-conditional with label dropout 0.1; loss weighted
1 + 4 x kidney share + 24 x lesion share, the mask model's weights) on `--patients` phantom
patients at 256 px (a lesion in 90%, 8 slices each, phantom seed 0); `--input-scale S` scales
the share maps to [-S, S], `--prediction eps` trains the eps model that session 46 found
speckled, `--init RUN` continues a run:

    PYTHONPATH=src python benchmarks/layout_then_image.py --train-only --patients 400 \
        --steps 2000 --out-run runs/layout64

Then measure it with a trained mask model (`benchmarks/apps_generate_from_mask_256.py`) and a
kidney pipeline at 256 px as the checker:

    PYTHONPATH=src python benchmarks/layout_then_image.py --run runs/layout64 \
        --image-model runs/mask400p --pipeline runs/pipe256

`--n` draws, a third per class: how many layout draws each class needed, the lesion area per
class against real held-out maps (24 patients, phantom seed 1000), and how often the checker
classes the images as the class they were drawn for; beside it the same checks on the real
slices and on images the mask model draws from the real maps (the ceiling of this route).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
CLASSES = ("healthy", "benign", "malignant")
REGION_WEIGHTS = (0.0, 0.0, 4.0, 24.0)  # air, body, kidney, lesion


def train_layout(args) -> dict:
    """Fit the layout model on `args.patients` phantom patients; its cost."""
    from genmed.apps.common import phantom
    from genmed.data.conditions import condition_maps
    from genmed.models.layout import check_layout_model, layout_diffusion, maps_to_shares
    from genmed.train import DictDataset, fit, load_run

    start = time.perf_counter()
    tr = phantom(args.patients, 256, args.seed, lesion_prob=0.9)
    shares = maps_to_shares(condition_maps(tr), args.size, args.input_scale)
    labels = torch.from_numpy(np.asarray(tr.label, dtype=np.int64))
    del tr
    prep = time.perf_counter() - start
    torch.manual_seed(args.seed)
    model = (check_layout_model(load_run(args.init)[0], str(args.init)) if args.init  # its EMA weights
             else layout_diffusion(args.size, prediction=args.prediction,
                                   region_loss_weights=() if args.plain_loss else REGION_WEIGHTS))
    start = time.perf_counter()
    regions = (shares / args.input_scale + 1) / 2  # the class shares, for the loss weights
    fit(model, DictDataset(image=shares, label=labels, regions=regions), steps=args.steps,
        batch_size=args.batch, lr=args.lr, seed=args.seed, out=args.out_run, device="cpu",
        precision=args.precision)
    wall = time.perf_counter() - start
    return {"slices": len(labels), "class_counts": np.bincount(labels.numpy(), minlength=3).tolist(),
            "prepare_s": round(prep, 1), "wall_s": round(wall, 1),
            "img_per_s": round(args.steps * args.batch / wall, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def lesion_areas(maps: np.ndarray, labels: np.ndarray) -> dict:
    """Per class: share of maps with a lesion, and the lesion area (pixels at 256 px) median and
    quartiles over maps that have one."""
    area = (maps == 3).reshape(len(maps), -1).sum(1)
    out = {}
    for c, name in enumerate(CLASSES):
        a = area[labels == c]
        has = a[a > 0]
        out[name] = {"n": int(len(a)), "with_lesion": round(float((a > 0).mean()), 3) if len(a) else None,
                     "lesion_px_q25_median_q75": [float(v) for v in np.percentile(has, [25, 50, 75])]
                     if len(has) else None}
    return out


def boundary_density(maps: np.ndarray) -> list[float]:
    """Share of horizontally adjacent pixel pairs with different labels, per map (N, H, W): a
    few per cent for a body with two kidneys, tens of per cent for a speckled draw."""
    return (maps[:, :, 1:] != maps[:, :, :-1]).mean((1, 2)).tolist()


def map_figure(path: Path, rows: list[tuple[str, list[tuple[np.ndarray | None, np.ndarray, str]]]], title: str) -> None:
    """One row per class: (condition map or None, slice in HU, caption) panels, each map beside
    its slice; maps in four colours, slices W400/L40 with an HU colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = ["black", "tan", "tab:blue", "red"]
    cols = max(sum(1 + (m is not None) for m, _, _ in panels) for _, panels in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(2.3 * cols + 1, 2.5 * len(rows) + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for r, (name, panels) in enumerate(rows):
        j = 0
        for m, img, caption in panels:
            if m is not None:
                axes[r, j].imshow(m, cmap=ListedColormap(colours), vmin=-0.5, vmax=3.5, interpolation="nearest")
                axes[r, j].set_title(f"drawn map ({name})", fontsize=8)
                j += 1
            im = axes[r, j].imshow(img, cmap="gray", vmin=-160, vmax=240)
            axes[r, j].set_title(caption, fontsize=8, color="tab:blue" if m is None else "black")
            j += 1
    fig.colorbar(im, ax=axes, fraction=0.015, label="HU (window W400/L40)")
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(colours, ("air", "body", "kidney", "lesion"))],
               loc="lower center", ncol=4, fontsize=9)
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    plt.close(fig)


def measure(args) -> dict:
    """Draw `args.n` class -> layout -> image samples (a third per class) and check them."""
    from genmed.apps.common import phantom, to_unit
    from genmed.data.conditions import attributes_of, condition_maps
    from genmed.data.modality import CT_WINDOW
    from genmed.apps.generate_from_mask import texture_of
    from genmed.models.layout import (check_layout_model, draw_in_batches, generate_from_class, maps_to_shares,
                                      shares_to_maps)
    from genmed.models.mask_generation import check_mask_model
    from genmed.pipeline.pipeline import load_pipeline
    from genmed.train.run import load_run
    from ldm_quality import agreement, band_figure

    layout_model = check_layout_model(load_run(args.run)[0].eval(), str(args.run))
    image_model = check_mask_model(load_run(args.image_model)[0].eval(), str(args.image_model))
    texture = texture_of(args.image_model)
    pipe = load_pipeline(args.pipeline)
    labels = np.arange(args.n) % 3

    start = time.perf_counter()
    layouts, fake = generate_from_class(layout_model, image_model, labels, seed=1, texture=texture,
                                        layout_guidance=args.layout_guidance, map_guidance=args.map_guidance[0],
                                        map_guidance_healthy=args.map_guidance[1])
    fake = fake.clamp(-1, 1)[:, 0].float().numpy()
    sample_s = time.perf_counter() - start

    te = phantom(args.real_patients, 256, 1000, lesion_prob=0.9)  # the mask model's test patients
    real_maps, real_labels = condition_maps(te), np.asarray(te.label)
    real = to_unit(te.image)[:, 0].numpy()
    on_real_maps = draw_in_batches(image_model, real_maps, attributes_of(te), seed=1, steps=20, texture=texture,
                                   map_guidance=args.map_guidance[0], map_guidance_healthy=args.map_guidance[1])
    on_real_maps = on_real_maps.clamp(-1, 1)[:, 0].float().numpy()
    round_trip = shares_to_maps(maps_to_shares(real_maps, args.size), 256)
    with torch.no_grad():
        out = {
            "s_per_slice_layout_and_image": round(sample_s / args.n, 3),
            "layout_draws": {name: {"mean": round(float(layouts.draws[labels == c].mean()), 2),
                                    "max": int(layouts.draws[labels == c].max())}
                             for c, name in enumerate(CLASSES)},
            "boundary_density_median_max": {
                name: [round(float(np.median(v)), 4), round(float(np.max(v)), 4)]
                for name, v in (("drawn_maps", boundary_density(layouts.maps)),
                                ("real_maps", boundary_density(real_maps)))},
            "lesion_areas_px_at_256": {"drawn_maps": lesion_areas(layouts.maps, labels),
                                       "real_maps": lesion_areas(real_maps, real_labels),
                                       f"real_maps_through_{args.size}_px": lesion_areas(round_trip, real_labels)},
            "pipeline_agreement": {"pipeline": str(args.pipeline),
                                   "class_layout_image": agreement(pipe, fake, labels),
                                   "real": agreement(pipe, real, real_labels),
                                   "image_model_on_real_maps": agreement(pipe, on_real_maps, real_labels)},
        }
    fake_hu, real_hu = CT_WINDOW.from_unit(fake), CT_WINDOW.from_unit(real)
    band_figure(args.band_figure, real_hu[real_labels == 2], fake_hu, labels,
                "Class -> layout -> image at 256 px: the kidney band of malignant- and healthy-conditioned "
                "draws beside held-out real malignant slices")
    rows = []
    for c, name in enumerate(CLASSES):
        ri = np.nonzero(real_labels == c)[0][:2]
        fi = np.nonzero(labels == c)[0][:3]
        rows.append((name, [(None, real_hu[i], f"real ({name})") for i in ri]
                     + [(layouts.maps[i], fake_hu[i], f"sample | {name}") for i in fi]))
    map_figure(args.figure, rows, "Class -> layout (64-px diffusion) -> image (mask-conditioned latent "
               "diffusion) at 256 px (1.41 mm/px); blue: held-out real slices")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-only", action="store_true")
    ap.add_argument("--run", type=Path, help="a trained layout run to measure")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "layout64")
    ap.add_argument("--init", type=Path, help="continue a trained layout run (its EMA weights, fresh optimiser)")
    ap.add_argument("--patients", type=int, default=400)
    ap.add_argument("--prediction", choices=("v", "eps"), default="v", help="what the layout model predicts")
    ap.add_argument("--plain-loss", action="store_true", help="the plain mean instead of the region weights "
                    "(weights that depend on the map being generated tilt it towards larger weighted regions)")
    ap.add_argument("--input-scale", type=float, default=1.0, help="share maps scaled to [-s, s] "
                    "(`maps_to_shares`; below 1: lower signal-to-noise at every step)")
    ap.add_argument("--size", type=int, default=64, help="layout size (px); maps are drawn at 256")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--image-model", type=Path, help="a mask-conditioned ldm run at 256 px")
    ap.add_argument("--pipeline", type=Path, help="a `genmed pipeline train` run at 256 px (the checker)")
    ap.add_argument("--n", type=int, default=240, help="draws, a third per class")
    ap.add_argument("--real-patients", type=int, default=24, help="held-out patients (phantom seed 1000)")
    ap.add_argument("--layout-guidance", type=float, default=1.0)
    ap.add_argument("--map-guidance", type=float, nargs=2, default=(0.0, 0.5), metavar=("W_L", "W_H"),
                    help="the image model's map guidance for maps with / without a lesion")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "layout_then_image_256.png")
    ap.add_argument("--band-figure", type=Path, default=ROOT / "docs" / "img" / "layout_then_image_256_band.png")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "layout_then_image.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from genmed.versions import machine

    result = {"benchmark": "layout_then_image", "machine": machine() | {"torch_threads": args.threads},
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}}
    if args.run is None:
        result["training"] = train_layout(args)
        args.run = args.out_run
    if not args.train_only:
        result["measured"] = measure(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
