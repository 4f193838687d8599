"""Class-conditional latent diffusion at 256 px (issue 13): training cost and a sample grid per
class (healthy, benign, malignant) beside real slices of each class.

Stage two only: the diffusion UNet (MONAI DiffusionModelUNet, channels (32, 64, 64), attention
at the lowest level) trained through the engine on the latents of a trained 256-px autoencoder
run (`benchmarks/autoencoder_quality.py` trains one), conditioned on the slice's lesion class
with label dropout 0.1 for classifier-free guidance. Samples: SDE-DPM-Solver++(2M), 20 steps
(the default sampler), guidance scale `--guidance`.

    PYTHONPATH=src python benchmarks/ldm_quality.py --autoencoder runs/bench_autoencoder_256 \
        --steps 7000 [--run RUN] [--n 240 --fid-extractor EXTRACTOR.safetensors]

`--patients N` trains on N phantom patients rendered at 256 px with a lesion in 90% of them
(8 slices each; default: the phantom's own 34 training patients), and `--region-loss-weights
B K L` weights the latent loss by each slice's body, kidney and lesion shares
(`region_loss_weights`: a training-only map; the model is still conditioned on the class alone).

Then `--n` samples whose classes follow the held-out slices' are measured: the share that
looks like a slice (air corners, tissue in the middle: `slice_shape`), the kidney band of
malignant- and healthy-conditioned ones beside real malignant slices (`--band-figure`), with
`--pipeline RUN` how often a trained kidney pipeline classes them as the class they were drawn
for (against its accuracy on the held-out real slices) and, with `--fid-extractor` (a domain extractor trained at the same size, `genmed eval
train-extractor --size 256`), FID, KID, precision, recall, density and coverage against the
held-out slices with bootstrap CIs, named by the extractor and its weights hash.
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


def draw(model, labels: np.ndarray, args) -> tuple[np.ndarray, np.ndarray]:
    """`args.n` samples (N, 1, H, W) in [-1, 1] with classes drawn in the held-out slices'
    proportions (seed 1; with `args.balanced`, a third of each class), the grid's sampler and
    guidance; and those classes."""
    g = torch.Generator().manual_seed(1)
    if args.balanced:
        cond = torch.arange(args.n) % 3
    else:
        cond = torch.from_numpy(labels)[torch.randint(0, len(labels), (args.n,), generator=g)]
    with torch.no_grad():
        fake = torch.cat([model.sample(len(c), cond=c, steps=args.sample_steps, generator=g,
                                       sampler=args.sampler, guidance=args.guidance).float()
                          for c in cond.split(16)]).clamp(-1, 1).numpy()
    return fake, cond.numpy()


def slice_shape(hu: np.ndarray) -> dict[str, float]:
    """Shares of slices (N, H, W) in HU whose two 16-px corners are air (mean < -120 HU, the
    window's floor is -160) and whose central quarter is tissue (mean > 0 HU; spine and soft
    tissue put every held-out real slice above 79 HU): a flat grey sample fails the first, a
    dark empty one the second."""
    n, h, w = hu.shape
    corner = np.concatenate([hu[:, :16, :16].reshape(n, -1), hu[:, -16:, -16:].reshape(n, -1)], 1).mean(1)
    centre = hu[:, 3 * h // 8:5 * h // 8, 3 * w // 8:5 * w // 8].reshape(n, -1).mean(1)
    return {"air_corners": float((corner < -120).mean()), "tissue_centre": float((centre > 0).mean()),
            "both": float(((corner < -120) & (centre > 0)).mean())}


def band_figure(path: Path, real: np.ndarray, fake: np.ndarray, cond: np.ndarray, title: str) -> None:
    """The kidney band (rows 100-190, columns 32-224 of a 256-px slice) of four real malignant
    slices, eight malignant-conditioned and four healthy-conditioned samples, W400/L40."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = 256 / real.shape[-1]
    band = (slice(int(100 / k), int(190 / k)), slice(int(32 / k), int(224 / k)))
    mal, healthy = fake[cond == 2], fake[cond == 0]
    rows = [("real, malignant", real[:4]), ("sample | malignant", mal[:4]),
            ("sample | malignant", mal[4:8]), ("sample | healthy", healthy[:4])]
    fig, axes = plt.subplots(4, 4, figsize=(13, 8.2), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for c in range(4):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(imgs):
                im = ax.imshow(imgs[c][band], cmap="gray", vmin=-160, vmax=240)
                ax.set_title(name, fontsize=9, color="tab:blue" if r == 0 else "black")
    fig.colorbar(im, ax=axes, fraction=0.02, label="HU (window W400/L40)")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def agreement(pipe, images: np.ndarray, y: np.ndarray) -> dict:
    """How often a trained kidney pipeline (segmenter, then lesion classifier on kidney crops of
    the predicted mask) classes slices (N, H, W) in [-1, 1] as `y`: accuracy, recall per class
    (0 healthy, 1 benign, 2 malignant), balanced accuracy, confusion (rows: requested)."""
    from sklearn.metrics import confusion_matrix

    pred = pipe.classify(images, pipe.segment(images)).argmax(1)
    cm = confusion_matrix(y, pred, labels=[0, 1, 2])
    recall = {str(c): float(cm[c, c] / cm[c].sum()) for c in range(3) if cm[c].sum()}
    return {"n": len(y), "accuracy": float(np.trace(cm) / cm.sum()), "recall": recall,
            "balanced_accuracy": float(np.mean(list(recall.values()))), "confusion": cm.tolist()}


def measure(model, test, args) -> dict:
    """The drawn set's slice shape (and with `--fid-extractor` its FID/KID/PRDC with bootstrap
    CIs against the held-out slices) and the kidney-band figure."""
    from genmed.data.modality import CT_WINDOW

    labels, real = test.labels.numpy(), test.images.numpy()
    start = time.perf_counter()
    fake, cond = draw(model, labels, args)
    fake_hu, real_hu = CT_WINDOW.from_unit(fake[:, 0]), CT_WINDOW.from_unit(real[:, 0])
    out = {"n_fake": len(fake), "n_real": len(labels), "sample_s": round(time.perf_counter() - start, 1),
           "classes": "a third per class" if args.balanced else "drawn in the held-out slices' proportions (seed 1)",
           "slice_shape": {"fake": slice_shape(fake_hu), "real": slice_shape(real_hu)}}
    if args.band_figure is not None:
        band_figure(args.band_figure, real_hu[labels == 2], fake_hu, cond,
                    f"Latent diffusion at {args.size} px: the kidney band of class-conditional samples "
                    f"({args.sampler or model.config.sampler}, guidance {args.guidance}) beside held-out "
                    "real malignant slices")
    if args.pipeline is not None:
        from genmed.pipeline.pipeline import load_pipeline

        pipe = load_pipeline(args.pipeline)
        with torch.no_grad():  # stage one's ceiling: smooth like the samples, anatomy kept
            recon = torch.cat([model.autoencoder.reconstruct(b) for b in test.images.split(8)])
        out["pipeline_agreement"] = {"pipeline": str(args.pipeline),
                                     "fake": agreement(pipe, fake[:, 0], cond),
                                     "real": agreement(pipe, real[:, 0], labels),
                                     "real_reconstructed": agreement(
                                         pipe, recon.clamp(-1, 1).float().numpy()[:, 0], labels)}
    if args.fid_extractor is not None:
        from genmed.metrics.evaluate import EvalConfig, evaluate_images
        from genmed.metrics.features import load_extractor

        metrics = evaluate_images(real, fake, extractor=load_extractor(args.fid_extractor),
                                  real_labels=labels,
                                  cfg=EvalConfig(n_boot=200, kid_subset=min(100, len(real), len(fake))))
        out.update({"extractor": metrics["extractor"], "quality": metrics["quality"],
                    "diversity": {k: metrics["diversity"].get(k)
                                  for k in ("recall", "coverage", "class_coverage")}})
    return out


def fit_on_patients(args, run: Path) -> None:
    """Stage two on `args.patients` phantom patients (a lesion in 90%), class-conditional, with
    the latent loss weighted by a training-only region map when `args.region_loss_weights`."""
    from genmed.apps.common import phantom, to_unit
    from genmed.data.conditions import condition_maps
    from genmed.models.latent import latent_diffusion
    from genmed.train import DictDataset, fit, load_run

    tr = phantom(args.patients, args.size, args.seed, lesion_prob=0.9)
    x, y = to_unit(tr.image), torch.from_numpy(np.asarray(tr.label, dtype=np.int64))
    data = {"image": x, "label": y}
    weights = {}
    if args.region_loss_weights is not None:  # one-hot air, body, kidney, lesion as uint8
        maps = condition_maps(tr)
        data["regions"] = torch.stack([torch.from_numpy(maps == c) for c in range(4)], 1).to(torch.uint8)
        weights = {"region_loss_weights": (0.0, *args.region_loss_weights)}
    del tr
    ae, _ = load_run(args.autoencoder)
    torch.manual_seed(args.seed)
    model = latent_diffusion(ae, x[:64], num_classes=3, autoencoder_run=str(args.autoencoder),
                             generator=torch.Generator().manual_seed(args.seed), **weights)
    fit(model, DictDataset(**data), steps=args.steps, batch_size=args.batch, lr=args.lr, seed=args.seed,
        out=run, device="cpu", precision=args.precision)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--autoencoder", type=Path, default=ROOT / "runs" / "bench_autoencoder_256")
    ap.add_argument("--run", type=Path, help="a trained ldm run to sample (skip training)")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "bench_ldm_256")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=7000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--patients", type=int, help="train on this many phantom patients at --size "
                    "(a lesion in 90%%) instead of the phantom's own training split")
    ap.add_argument("--region-loss-weights", type=float, nargs=3, metavar=("BODY", "KIDNEY", "LESION"),
                    help="weight the latent loss by a training-only region map (air: 0); needs --patients")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--per-class", type=int, default=4)
    ap.add_argument("--guidance", type=float, default=2.0)
    ap.add_argument("--sampler", help="sampler of the grid (default: the model's)")
    ap.add_argument("--sample-steps", type=int, help="its steps (default: the model's)")
    ap.add_argument("--n", type=int, default=240, help="samples measured (slice shape, FID)")
    ap.add_argument("--balanced", action="store_true",
                    help="measure a third of the --n samples per class instead of the held-out proportions")
    ap.add_argument("--fid-extractor", type=Path, help="domain extractor file for FID/PRDC")
    ap.add_argument("--pipeline", type=Path, help="a `genmed pipeline train` run at the same size: does "
                    "its classifier class the samples as the class they were drawn for?")
    ap.add_argument("--band-figure", type=Path, default=ROOT / "docs" / "img" / "ldm_256_kidney_band.png")
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
    if args.region_loss_weights is not None and args.patients is None:
        ap.error("--region-loss-weights needs --patients")
    if args.run is None and args.patients is not None:
        start = time.perf_counter()
        fit_on_patients(args, run)
        wall = time.perf_counter() - start
        trained = {"wall_s": round(wall, 1), "img_per_s": round(args.steps * args.batch / wall, 2),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
    elif args.run is None:
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
                     "patients": args.patients, "region_loss_weights": args.region_loss_weights,
                     "unet_channels": list(cfg.channels), "latent_shape": list(cfg.latent_config.sample_shape)
                     if hasattr(cfg.latent_config, "sample_shape") else None,
                     "sampler": sampler, "sample_steps": sample_steps, "guidance": args.guidance},
        "training": trained,
        "sample_s_per_image": round(sample_s, 3),
        "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure),
    }
    if args.n > 0:
        result["measured"] = measure(model, test, args)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
