"""Generation from a label map plus attributes at 256 px through latent diffusion (issue 16).

The 32-px app (`apps_generate_from_mask.py`) trains a pixel-space SPADE diffusion UNet. At
256 px (1.41 mm per pixel) this benchmark conditions the latent diffusion model instead: the
frozen 256-px autoencoder of `autoencoder_quality.py`, and a latent UNet (32, 64, 64; v-prediction,
the ldm default since 2026-12-02, eps before) that takes
the one-hot condition map (0 air, 1 body, 2 kidney, 3 lesion), area-averaged onto its 64 x 64
latent grid, by concatenation with the latents (Rombach et al. 2022's semantic synthesis; SPADE
normalisation with `--cond-kind spade`: one training step of batch 16 took 2.1 s against 1.2 s
for concatenation, same machine and run, so it was not affordable here), and the attribute pair kind x dose as a
class embedding (6 classes, label dropout 0.1 for classifier-free guidance). Trained through the
engine (`genmed.train.fit`, the ldm's default recipe: AdamW, warm-up + cosine, EMA 0.999) on
phantom patients with a lesion in 90% of them and 30% low-dose scans.

Checks on held-out patients (another phantom seed), each also run on the real slices with the
same maps, with a trained 256-px kidney pipeline (`genmed pipeline train --clinical`):
- its segmenter recovers the conditioning kidney mask (kidney + lesion) from the generated
  image: Dice, pooled and per slice (target: >= 0.9x its Dice on the real slices);
- its lesion classifier (on kidney crops of the predicted mask) agrees with the requested kind
  (target: accuracy >= 0.9x its accuracy on the real slices);
- the noise SD (HU; the soft-tissue local-SD mode, Christianson et al. 2015, since 2026-12-02;
  the wavelet MAD before) of generated slices per requested dose level against the real ones
  (target: within 20%). The autoencoder drops scan noise, so the generated slices get it
  after decoding, inside the map's body: Gaussian noise with the noise power spectrum of each
  dose level, fitted on the autoencoder's residuals of 16 other phantom patients' scans
  (`fit_scan_noise`, saved as RUN/noise_texture.npz); the JSON also holds the checks without it,
  and on stage one's reconstructions of the real slices (the best stage two could reach).
  Since 2026-12-04 each request also names its scan's noise SD ("noise_hu", the phantom's
  per-patient value) and the level's spectrum is scaled to it: a binary level spans 8-25 or
  45-90 HU, so the level's mean alone followed the fit scans' patients, not the requested
  ones. "dose_following" holds the per-slice agreement, "generated_level_noise_only" the
  checks with the level's mean SD (the method before).

    PYTHONPATH=src python benchmarks/apps_generate_from_mask_256.py --autoencoder runs/ae256 \
        --pipeline runs/pipe256 [--run RUN] [--steps 4000]

`--train-only` trains the model without a pipeline (the two can train side by side); then
`--run OUT_RUN --pipeline PIPE` checks it. `--init RUN` starts from a trained mask model's
(EMA) weights instead of a new model (its autoencoder too: `--autoencoder` is then unused), and
`--cond-loss-weights B K L` weights the latent loss by the map's body, kidney and lesion
shares (`DiffusionConfig.cond_loss_weights`; air gets 0). `--map-guidance W` samples with map
guidance (`genmed.models.map_guidance`), `--map-guidance-healthy W_H` gives the maps without a
lesion their own weight (`weights_by_lesion`), and `--validation` checks on validation patients
(phantom seed + 3000) instead, so that W is chosen on patients the test does not see. The JSON
keeps each slice's requested kind ("slice_kinds"), predicted kind ("kind_predicted") and whether
its map holds a lesion ("map_has_lesion"), so that per-class weights can be read off runs with
one weight (`apps_generate_from_mask_256_weights.py`).

The trained model's run folder (`--out-run`) then generates from a user's map:
`genmed apps generate-from-mask --mask MAP.nii.gz --model RUN --attributes '{"kind": "malignant"}'`.
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


def slices(n_patients: int, size: int, seed: int):
    """Phantom slices for the generator: a lesion in 90% of patients, 30% low-dose scans."""
    from genmed.apps.common import phantom

    return phantom(n_patients, size, seed, lesion_prob=0.9, noisy_fraction=0.3)


def dice(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pooled Dice of binary masks (N, H, W) and the mean of per-slice Dice
    (`pipeline.segmentation.dice_per_slice`) over slices whose truth is not empty."""
    from genmed.pipeline.segmentation import dice_per_slice

    has = truth.any((1, 2))
    return {"pooled": float(2 * (pred & truth).sum() / max(pred.sum() + truth.sum(), 1)),
            "per_slice_mean": float(dice_per_slice(pred[has], truth[has]).mean())}


def noise_sd(images_hu: np.ndarray) -> np.ndarray:
    """(N,) noise SD (HU) of 360-mm slices: the soft-tissue local-SD mode, which sees FBP's
    correlated noise (the wavelet MAD of a whole raw slice is mostly air)."""
    from genmed.apps.denoisers import estimate_sigma_mode

    return estimate_sigma_mode(images_hu, 360.0 / images_hu.shape[-1])


def dose_following(requested_hu: np.ndarray, generated: np.ndarray, real: np.ndarray,
                   noisy: np.ndarray) -> dict:
    """How the generated slices' measured noise SD follows the requested one, slice by slice:
    Spearman correlation with the request, and the median ratio to the real slice's SD per level."""
    from scipy.stats import spearmanr

    ratio = generated / real
    return {"spearman_generated_vs_requested": float(spearmanr(requested_hu, generated).statistic),
            "spearman_real_vs_requested": float(spearmanr(requested_hu, real).statistic),
            "median_ratio_generated_to_real": {name: float(np.median(ratio[m])) for name, m in
                                               (("standard", ~noisy), ("low-dose", noisy)) if m.any()}}


def kind_scores(pred: np.ndarray, kinds: np.ndarray) -> dict:
    """Lesion-kind accuracy of predicted kinds `pred` against requested `kinds` (0 healthy,
    1 benign, 2 malignant) with its Wilson 95% interval, recall per kind and balanced accuracy."""
    from genmed.metrics.stats import wilson_interval

    by_kind = {str(k): float((pred[kinds == k] == k).mean()) for k in range(3) if (kinds == k).any()}
    hits = int((pred == kinds).sum())
    return {"kind_accuracy": hits / len(kinds), "kind_accuracy_ci95": list(wilson_interval(hits, len(kinds))),
            "kind_recall": by_kind, "kind_balanced_accuracy": float(np.mean(list(by_kind.values())))}


def check(pipe, images_hu: np.ndarray, maps: np.ndarray, kinds: np.ndarray, noisy: np.ndarray) -> dict:
    """The pipeline's kidney Dice against the maps, its kind accuracy (with its Wilson 95%
    interval), noise SD per dose level (soft-tissue local-SD mode: the wavelet MAD of a whole
    raw slice is mostly air)."""
    from genmed.apps.common import to_unit

    x = to_unit(images_hu)[:, 0].numpy()
    masks = pipe.segment(x)
    pred = pipe.classify(x, masks).argmax(1)
    sd = noise_sd(images_hu)
    return {"kidney_dice": dice(masks > 0, maps >= 2), **kind_scores(pred, kinds), "kind_predicted": pred.tolist(),
            "noise_sd_hu": {name: float(sd[m].mean()) if m.any() else None
                            for name, m in (("standard", ~noisy), ("low-dose", noisy))}}


def warm_started(run: Path, options: dict):
    """The mask model of `run` (EMA weights), its config updated with `options`."""
    from dataclasses import replace

    from genmed.models.mask_generation import check_mask_model
    from genmed.train import load_run

    old = check_mask_model(load_run(run)[0], str(run))
    model = type(old)(replace(old.config, **options))
    model.load_state_dict(old.state_dict())
    return model


def figure(path: Path, maps: np.ndarray, real: np.ndarray, fake: np.ndarray, attrs: list[dict]) -> None:
    """Four held-out slices with the largest lesions: condition map, real, generated; then the
    kidneys' bounding box (over the four maps, 12 px margin) of real and generated; W400/L40 HU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genmed.apps.generate_from_mask import map_and_hu_colorbars, map_style
    from genmed.data.transforms import ABDOMEN_RANGE_HU
    from genmed.fileio import save_figure

    lo, hi = ABDOMEN_RANGE_HU
    idx = np.argsort(-(maps == 3).sum((1, 2)))[:4]
    cmap, norm = map_style()
    rows, cols = np.nonzero((maps[idx] >= 2).any(0))
    r0, r1 = max(rows.min() - 12, 0), min(rows.max() + 13, maps.shape[1])
    c0, c1 = max(cols.min() - 12, 0), min(cols.max() + 13, maps.shape[2])
    band = (slice(r0, r1), slice(c0, c1))
    aspect = (r1 - r0) / (c1 - c0)
    fig, ax = plt.subplots(5, len(idx), figsize=(3.2 * len(idx) + 1.5, 3.2 * (3 + 2 * aspect) + 1),
                           squeeze=False, layout="constrained",
                           gridspec_kw={"height_ratios": [1, 1, 1, aspect, aspect]})
    for j, k in enumerate(idx):
        im_map = ax[0, j].imshow(maps[k], cmap=cmap, norm=norm, interpolation="nearest")
        sd = f" ({attrs[k]['noise_hu']:.0f} HU)" if "noise_hu" in attrs[k] else ""
        ax[0, j].set_title(f"requested: {attrs[k]['kind']}, {attrs[k]['noise']}{sd}", fontsize=9)
        ax[1, j].imshow(real[k], cmap="gray", vmin=lo, vmax=hi)
        im_hu = ax[2, j].imshow(fake[k], cmap="gray", vmin=lo, vmax=hi)
        ax[3, j].imshow(real[k][band], cmap="gray", vmin=lo, vmax=hi)
        ax[4, j].imshow(fake[k][band], cmap="gray", vmin=lo, vmax=hi)
    for a in ax.ravel():
        a.set_xticks([])
        a.set_yticks([])
    for row, label in enumerate(("condition map", "real (held out)", "generated", "real: kidneys",
                                 "generated: kidneys")):
        ax[row, 0].set_ylabel(label, fontsize=10)
    map_and_hu_colorbars(fig, im_map, ax[0], im_hu, ax[1:].ravel(), fraction=0.02)
    mm = 360 / maps.shape[-1]
    fig.suptitle(f"Latent diffusion at {maps.shape[-1]} px ({mm:.2f} mm/px) from a label map + attributes; "
                 f"kidneys: rows {r0}-{r1}, columns {c0}-{c1} ({(r1 - r0) * mm:.0f} x {(c1 - c0) * mm:.0f} mm)",
                 fontsize=11)
    save_figure(fig, path, dpi=72)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--autoencoder", type=Path, default=ROOT / "runs" / "bench_autoencoder_256")
    ap.add_argument("--pipeline", type=Path, default=ROOT / "runs" / "bench_pipeline_256",
                    help="a `genmed pipeline train --clinical` run: the checker")
    ap.add_argument("--run", type=Path, help="a trained model's run folder (skip training)")
    ap.add_argument("--train-only", action="store_true",
                    help="train into --out-run and stop (no pipeline needed); check later with --run")
    ap.add_argument("--out-run", type=Path, default=ROOT / "runs" / "bench_mask_ldm_256")
    ap.add_argument("--patients", type=int, default=150, help="training patients (8 slices each)")
    ap.add_argument("--test-patients", type=int, default=12)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--cond-kind", default="concat", choices=("spade", "concat"))
    ap.add_argument("--guidance", type=float, default=1.0)
    ap.add_argument("--map-guidance", type=float, default=0.0,
                    help="weight w of map guidance (genmed.models.map_guidance; 0: off)")
    ap.add_argument("--map-guidance-healthy", type=float,
                    help="map-guidance weight for maps without a lesion (default: --map-guidance)")
    ap.add_argument("--map-negative", default="organs", choices=("organs", "lesion"),
                    help="what map guidance's negative map erases (genmed.models.map_guidance)")
    ap.add_argument("--validation", action="store_true",
                    help="check on validation patients (phantom seed + 3000) instead of the test "
                         "patients (seed + 1000): for choosing sampling settings")
    ap.add_argument("--init", type=Path, help="start from this trained mask model's weights")
    ap.add_argument("--cond-loss-weights", type=float, nargs=3, metavar=("BODY", "KIDNEY", "LESION"),
                    help="region-weighted latent loss: extra weight per map class (air: 0)")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apps_generate_from_mask_256.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "generate_from_mask_256.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.apps.common import to_hu, to_unit
    from genmed.data.conditions import attributes_of, condition_maps, encode
    from genmed.models.map_guidance import weights_by_lesion
    from genmed.models.mask_generation import add_scan_noise, fit_scan_noise, mask_ldm
    from genmed.pipeline.pipeline import load_pipeline
    from genmed.train import DictDataset, fit, load_run
    from genmed.versions import machine

    size = 256
    if args.train_only and args.run is not None:
        ap.error("--train-only trains a model; --run names one already trained")
    pipe = None if args.train_only else load_pipeline(args.pipeline)  # fail early on a wrong path
    trained = None
    if args.run is None:
        tr = slices(args.patients, size, args.seed)
        cond, ids = encode(condition_maps(tr), attributes_of(tr), size)
        x = to_unit(tr.image)
        weights = {} if args.cond_loss_weights is None else {"cond_loss_weights": (0.0, *args.cond_loss_weights)}
        torch.manual_seed(args.seed)
        if args.init is not None:
            model = warm_started(args.init, weights)
        else:
            ae, _ = load_run(args.autoencoder)
            model = mask_ldm(ae, x[:64], cond_kind=args.cond_kind, autoencoder_run=str(args.autoencoder),
                             generator=torch.Generator().manual_seed(args.seed), **weights)
        start = time.perf_counter()
        fit(model, DictDataset(image=x, cond=cond, label=ids), steps=args.steps, batch_size=args.batch,
            lr=args.lr, seed=args.seed, out=args.out_run, device="cpu", precision=args.precision)
        wall = time.perf_counter() - start
        trained = {"n_slices": len(x), "wall_s": round(wall, 1),
                   "img_per_s": round(args.steps * args.batch / wall, 2),
                   "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        del tr, cond, x
        if args.train_only:
            print(json.dumps({"out_run": str(args.out_run), "training": trained}))
            return
    model, run_cfg = load_run(args.run or args.out_run)
    model.eval()

    te = slices(args.test_patients, size, args.seed + (3000 if args.validation else 1000))
    maps, attrs = condition_maps(te), attributes_of(te, noise_hu=True)
    cond, ids = encode(maps, attrs, size)
    g = torch.Generator().manual_seed(args.seed)
    w_healthy = args.map_guidance if args.map_guidance_healthy is None else args.map_guidance_healthy
    start = time.perf_counter()
    with torch.no_grad():
        fake = np.concatenate([to_hu(model.sample(len(c), cond=i, image_cond=c, generator=g, guidance=args.guidance,
                                                  map_guidance=weights_by_lesion(c, args.map_guidance, w_healthy),
                                                  map_negative=args.map_negative))
                               for c, i in zip(cond.split(16), ids.split(16))])
    sample_s = (time.perf_counter() - start) / len(fake)
    # scan noise the autoencoder drops, per dose level, fitted on other phantom scans and added
    # after decoding (genmed.models.noise_texture); kept in the run folder for --model RUN
    scans = slices(16, size, args.seed + 2000)
    texture = fit_scan_noise(model, to_unit(scans.image), [a["noise"] for a in attributes_of(scans)],
                             body=condition_maps(scans) > 0, noise_hu=scans.noise_hu)
    texture.save((args.run or args.out_run) / "noise_texture.npz")
    plain = fake
    fake = to_hu(add_scan_noise(to_unit(plain), attrs, texture, args.seed, body=maps > 0))
    kinds, noisy = te.label.astype(int), te.noisy.astype(bool)
    gen, real = check(pipe, fake, maps, kinds, noisy), check(pipe, te.image, maps, kinds, noisy)
    without_noise = check(pipe, plain, maps, kinds, noisy)
    level_attrs = [{k: v for k, v in a.items() if k != "noise_hu"} for a in attrs]
    level_only = check(pipe, to_hu(add_scan_noise(to_unit(plain), level_attrs, texture, args.seed, body=maps > 0)),
                       maps, kinds, noisy)
    following = dose_following(te.noise_hu, noise_sd(fake), noise_sd(te.image), noisy)
    with torch.no_grad():  # stage one alone: the best stage two could reach
        recon = torch.cat([model.autoencoder.reconstruct(b) for b in to_unit(te.image).split(16)])
    reconstructed = check(pipe, to_hu(recon), maps, kinds, noisy)
    ratios = {"kidney_dice": gen["kidney_dice"]["pooled"] / real["kidney_dice"]["pooled"],
              "kind_accuracy": gen["kind_accuracy"] / real["kind_accuracy"],
              **{f"noise_sd_{k}": gen["noise_sd_hu"][k] / real["noise_sd_hu"][k]
                 for k in gen["noise_sd_hu"] if real["noise_sd_hu"][k]}}
    figure(args.figure, maps, te.image, fake, attrs)
    cfg = model.config
    result = {
        "benchmark": "apps_generate_from_mask_256",
        "machine": machine() | {"torch_threads": args.threads},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        | {"trained_steps": run_cfg.steps, "size": size, "mm_per_px": 360 / size, "unet_channels": list(cfg.channels),
           "sampler": cfg.sampler, "sample_steps": cfg.sample_steps,
           "training_data": "phantom, lesion_prob 0.9, noisy_fraction 0.3, 8 slices per patient",
           "checker": "kidney pipeline (segmenter; lesion classifier on kidney crops of the predicted mask)"},
        "training": trained, "sample_s_per_image": round(sample_s, 2),
        "n_test": len(fake), "test_kinds": np.bincount(kinds, minlength=3).tolist(),
        "slice_kinds": kinds.tolist(), "map_has_lesion": (maps == 3).any((1, 2)).tolist(),
        "test_low_dose": int(noisy.sum()),
        "generated": gen, "real": real, "ratio_generated_to_real": ratios,
        "generated_without_scan_noise": without_noise, "generated_level_noise_only": level_only,
        "dose_following": following, "reconstructed_by_stage_one": reconstructed,
        "scan_noise_sd_hu": texture.sd_hu(), "scan_noise_reference_hu": dict(texture.reference_hu),
        "targets": {"kidney_dice_ge_0.9x_real": ratios["kidney_dice"] >= 0.9,
                    "kind_accuracy_ge_0.9x_real": ratios["kind_accuracy"] >= 0.9,
                    "noise_within_20pct": all(abs(v - 1) <= 0.2 for k, v in ratios.items() if k.startswith("noise"))},
        "figure": str(args.figure.relative_to(ROOT)) if args.figure.is_relative_to(ROOT) else str(args.figure),
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("generated", "real", "ratio_generated_to_real", "targets")}, indent=1))


if __name__ == "__main__":
    main()
