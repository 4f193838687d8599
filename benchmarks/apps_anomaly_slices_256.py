"""Anomaly detection on whole 256-px slices through their kidney crops (issue 16).

A detector trained on healthy kidney crops (`genmed.apps.anomaly_crops`, 64 px = 90 mm at
1.41 mm/px) scores a whole slice by its most anomalous kidney: the kidneys are found by a
trained 256-px kidney segmenter (`genmed pipeline train --clinical`; `--pipeline RUN`), each
side is cropped at native spacing (`genmed.data.crops.crop_kidneys`), and the slice score is the
maximum of its crops' scores (`anomaly_crops.slice_scores`). The same detectors also score the
crops the phantom's true kidney masks place, so the segmenter's share of the result is visible.

Test slices: `--test-patients` held-out phantom patients (seed + 1000), half with a lesion of
10-36 mm; positives are slices with a lesion >= 10 mm in plane, negatives slices without lesion
pixels (mostly from the patients without a lesion); slices with a smaller lesion are left out.
Image AUROC with a 95% bootstrap CI over slices, and over patients (`patient_ci`).

    PYTHONPATH=src python benchmarks/apps_anomaly_slices_256.py --pipeline runs/pipe256
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def patient_ci(scores: np.ndarray, y: np.ndarray, patient: np.ndarray, n_boot: int, seed: int) -> list[float]:
    """95% percentile CI of the AUROC when whole patients are resampled (a resample with one
    class only is dropped)."""
    from sklearn.metrics import roc_auc_score

    from genmed.metrics.stats import bootstrap_ci

    def auroc(rows: np.ndarray) -> float:
        return roc_auc_score(y[rows], scores[rows]) if 0 < y[rows].sum() < len(rows) else float("nan")

    e = bootstrap_ci(auroc, np.arange(len(y)), groups=patient, n_boot=n_boot, seed=seed)
    return [e.low, e.high]


def figure(path: Path, slices, y: np.ndarray, crops, crop_scores: np.ndarray, slice_score: np.ndarray,
           detector: str, threshold: float) -> None:
    """Four lesion slices (largest lesions first) and two healthy ones, W400/L40 HU, lesion in
    red, each kidney crop boxed and coloured by its score (colour bar), the slice score and the
    decision at `threshold` (the score at 95% specificity on the healthy slices)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    from genmed.data.transforms import ABDOMEN_RANGE_HU
    from genmed.fileio import save_figure

    lo, hi = ABDOMEN_RANGE_HU
    pos = np.nonzero(y == 1)[0]
    pos = pos[np.argsort(-slices.lesion_diameter_mm[pos])][:4]
    neg = np.nonzero(y == 0)[0][:2]
    norm = Normalize(np.percentile(crop_scores, 1), np.percentile(crop_scores, 99))
    cmap = plt.get_cmap("plasma")
    fig, axes = plt.subplots(1, 6, figsize=(24, 5.2), layout="constrained")
    for ax, i in zip(axes, [*pos, *neg]):
        ax.imshow(slices.image[i], cmap="gray", vmin=lo, vmax=hi)
        if slices.lesion_mask[i].any():
            ax.contour(slices.lesion_mask[i], levels=[0.5], colors="red", linewidths=1.2)
        for k in np.nonzero(crops.slice_id == i)[0]:
            r, c = crops.origin[k]
            size = crops.hu.shape[-1]
            ax.add_patch(Rectangle((c - 0.5, r - 0.5), size, size, fill=False, lw=2.5,
                                   edgecolor=cmap(norm(crop_scores[k]))))
        truth = f"lesion {slices.lesion_diameter_mm[i]:.0f} mm" if y[i] == 1 else "no lesion"
        flag = "flagged" if slice_score[i] >= threshold else "not flagged"
        ax.set_title(f"{truth}: {flag}", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    im = axes[0].images[0]
    fig.colorbar(im, ax=axes[-1], fraction=0.05).set_label(f"HU (window W{hi - lo:.0f}/L{(hi + lo) / 2:.0f})")
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes[0], location="left", fraction=0.05).set_label(f"crop score ({detector})")
    fig.suptitle(f"Whole 256-px slices scored by their kidney crops ({detector}; boxes: the crops the "
                 "segmenter placed, coloured by score; red: lesion; flagged at 95% specificity)", fontsize=12)
    save_figure(fig, path, dpi=72)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, default=ROOT / "runs" / "bench_pipeline_256")
    ap.add_argument("--test-patients", type=int, default=80)
    ap.add_argument("--detectors", default="intensity,vae_recon,vae_elbo,gan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="a few steps and patients (a smoke run)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "apps_anomaly_slices_256.json")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "anomaly_slices_256.png")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from genmed.apps.anomaly_crops import (CropAnomalyConfig, detect, kidney_crops, lesion_slices,
                                           quick_crop_anomaly_config, slice_scores)
    from genmed.apps.common import to_unit
    from genmed.config import to_dict
    from genmed.metrics.anomaly import image_level
    from genmed.pipeline.pipeline import load_pipeline
    from genmed.versions import machine

    make = quick_crop_anomaly_config if args.quick else CropAnomalyConfig
    extra = {"size": 256, "crop": 64, "n_train_patients": 2} if args.quick else {}
    cfg = make(detectors=tuple(args.detectors.split(",")), n_test_patients=args.test_patients,
               seed=args.seed, **extra)
    pipe = load_pipeline(args.pipeline)
    start = time.perf_counter()
    tr = kidney_crops(cfg.n_train_patients, cfg, cfg.seed)
    train = tr.subset(~tr.lesion.any((1, 2)))
    test_seed = cfg.seed + 1000
    placed = {"segmenter": lesion_slices(cfg.n_test_patients, cfg, test_seed,
                                         segment=lambda hu: pipe.segment(to_unit(hu)[:, 0].numpy())),
              "true_masks": lesion_slices(cfg.n_test_patients, cfg, test_seed)}
    y = placed["true_masks"][1]
    assert np.array_equal(y, placed["segmenter"][1])  # one phantom draw, placed two ways
    n_slices = len(y)
    keep = y >= 0
    patient = np.repeat(np.arange(cfg.n_test_patients), cfg.slices_per_patient)
    crops = [c for c, _, _ in placed.values()]
    rendered = placed["segmenter"][2]
    res = detect(cfg, train.hu, np.concatenate([c.hu for c in crops]), log=print)
    bounds = np.cumsum([0, *(len(c.hu) for c in crops)])
    result = {
        "benchmark": "apps_anomaly_slices_256", "machine": machine() | {"torch_threads": args.threads},
        "config": to_dict(cfg), "pipeline": str(args.pipeline), "train_healthy_crops": len(train.hu),
        "test": {"patients": cfg.n_test_patients, "slices": n_slices, "lesion_slices": int((y == 1).sum()),
                 "healthy_slices": int((y == 0).sum()), "left_out_small_lesion": int((y == -1).sum()),
                 "crops": {name: len(c.hu) for name, c in zip(placed, crops)}},
        "slice_score": "max over the slice's kidney crops", "detectors": {}}
    best = (-1.0, "", None, None)
    for d, r in res.items():
        row = {"seconds": round(r["seconds"], 1)}
        for k, (name, c) in enumerate(zip(placed, crops)):
            s = slice_scores(r["scores"][bounds[k]:bounds[k + 1]], c.slice_id, n_slices)
            s = np.where(np.isfinite(s), s, s[np.isfinite(s)].min() - 1)  # no kidney found: lowest
            row[name] = image_level(s[keep], y[keep] == 1, cfg.n_boot, cfg.seed)
            row[name]["auroc_patient_ci"] = patient_ci(s[keep], y[keep], patient[keep], 200, cfg.seed)
            if name == "segmenter" and row[name]["auroc"]["value"] > best[0]:
                best = (row[name]["auroc"]["value"], d, r["scores"][:bounds[1]], s)
        result["detectors"][d] = row
        print(d, {n: round(row[n]["auroc"]["value"], 3) for n in placed})
    _, name, crop_s, slice_s = best
    threshold = float(np.percentile(slice_s[y == 0], 95))
    figure(args.figure, rendered, y, crops[0], crop_s, slice_s, name, threshold)
    result["figure"] = {"path": str(args.figure), "detector": name, "threshold_95pct_specificity": threshold,
                        "sensitivity_at_it": float((slice_s[y == 1] >= threshold).mean())}
    result["seconds_total"] = round(time.perf_counter() - start, 1)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
