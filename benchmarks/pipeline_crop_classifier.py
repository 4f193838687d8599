"""How strong can the crop study's lesion classifier be with every training label?

The scarce-malignant study (`benchmarks/pipeline_crop_study.py`) trains a small DenseNet on
single-kidney 64-px crops (90 mm at 1.41 mm/px). Its "oracle", the same net on all 200
training patients' crops, reached test balanced accuracy 0.76 and malignant recall 0.69: weak
for a check on synthetic crops. This benchmark trains that net on all training crops in four
variants, width (stem features, growth rate) (16, 8) or (32, 16), with or without the crop's
kidney mask as a second channel (what the 256-px pipeline's window classifier gets), and
reports test metrics with 95% bootstrap CIs over the 120 test patients and malignant and
benign recall by the crop's lesion area: small areas are the lesions' first and last slices.

    python benchmarks/pipeline_crop_classifier.py     # ~20 min on one core (fp32, AVX2)

Writes benchmarks/results/pipeline_crop_classifier.json.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
AREA_BINS_MM2 = (0.0, 50.0, 150.0, 400.0, float("inf"))  # lesion area in the crop (mm^2)
VARIANTS = {"narrow": ((16, 8), False), "narrow+mask": ((16, 8), True),
            "wide": ((32, 16), False), "wide+mask": ((32, 16), True)}


def recall_by_area(y, pred, area) -> list[dict]:
    """Recall of each lesion class within each lesion-area bin (n = crops in the bin)."""
    import numpy as np

    from genmed.data.phantom import LABELS

    rows = []
    for lo, hi in zip(AREA_BINS_MM2[:-1], AREA_BINS_MM2[1:]):
        for k in (1, 2):
            s = (y == k) & (area >= lo) & (area < hi)
            rows.append({"class": LABELS[k], "area_mm2": [lo, hi if np.isfinite(hi) else None], "n": int(s.sum()),
                         "recall": float((pred[s] == k).mean()) if s.any() else None})
    return rows


def main() -> None:
    import numpy as np
    import torch

    from genmed.fileio import write_json
    from genmed.metrics.classification import balanced_accuracy, class_recall
    from genmed.metrics.stats import bootstrap_ci
    from genmed.pipeline.augment import class_metrics
    from genmed.pipeline.crop_study import (MALIGNANT, CropStudyConfig, crop_inputs, crop_proba, study_crops,
                                            train_crop_classifier)
    from genmed.versions import machine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ", ".join(VARIANTS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pipeline_crop_classifier.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = CropStudyConfig()
    t0 = time.perf_counter()
    full, _, test = study_crops(cfg)
    results = {}
    for name in args.variants.split(","):
        width, mask = VARIANTS[name]
        t = time.perf_counter()
        net = train_crop_classifier(crop_inputs(full, mask), full.label, cfg, args.seed, balanced=True, width=width)
        train_s = time.perf_counter() - t
        proba = crop_proba(net, crop_inputs(test, mask))
        pred, y = proba.argmax(1), test.label
        ci = {key: bootstrap_ci(fn, y, pred, groups=test.patient_id, n_boot=1000, seed=args.seed)
              for key, fn in (("balanced_accuracy", balanced_accuracy),
                              ("malignant_recall", lambda a, b: class_recall(a, b, MALIGNANT)))}
        results[name] = {"width": list(width), "mask_channel": mask, **class_metrics(y, proba),
                         **{f"{k}_ci95": [e.low, e.high] for k, e in ci.items()},
                         "confusion": np.bincount(y * 3 + pred, minlength=9).reshape(3, 3).tolist(),
                         "recall_by_lesion_area": recall_by_area(y, pred, test.lesion_mm2),
                         "train_s": round(train_s, 1)}
        print(name, {k: v for k, v in results[name].items() if k != "recall_by_lesion_area"}, flush=True)
    write_json(args.out, {
        "benchmark": "pipeline_crop_classifier", "machine": machine(),
        "settings": {"crop_px": cfg.crop, "slice_px": cfg.size, "mm_per_px": 360.0 / cfg.size,
                     "train_patients": cfg.n_patients, "test_patients": cfg.n_test_patients,
                     "epochs": cfg.epochs, "batch": cfg.batch_size, "class_weights": "balanced",
                     "augment": "flip", "seed": args.seed, "precision": cfg.compute.precision},
        "crop_counts": {"train": full.counts(), "test": test.counts()},
        "variants": results, "seconds": round(time.perf_counter() - t0, 1)})
    print(args.out)


if __name__ == "__main__":
    main()
