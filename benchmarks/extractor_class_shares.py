"""Can the extractor's classifier measure class shares at 64 px? (issue 14's class-share target)

The families_64 benchmark judges "class shares of GAN samples within 5 points of the data's"
with the classifier head of `genmed-phantom-cnn-v1` on samples and on held-out real slices
alike. This script asks what that classifier measures: on the held-out real slices of each
families_64 seed (same phantom draw and split as `genmed compare --size 64`), the true lesion
class shares beside the classifier's shares, its balanced accuracy and confusion matrix.
Writes benchmarks/results/extractor_class_shares.json (about 30 s on one core).

    PYTHONPATH=src python benchmarks/extractor_class_shares.py [--seeds 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "extractor_class_shares.json")
    args = ap.parse_args()
    import torch
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix

    from genmed.compare import CompareConfig
    from genmed.compare.runner import load_splits
    from genmed.fileio import write_json
    from genmed.metrics.features import load_extractor
    from genmed.versions import machine

    torch.set_num_threads(1)
    extractor = load_extractor(None)
    k = len(extractor.class_names)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            _, real, labels = load_splits(CompareConfig(size=64, seed=seed, out=tmp))
            pred = extractor.predict(real)
            rows.append({"seed": seed, "n": len(labels),
                         "true_share": (np.bincount(labels, minlength=k) / len(labels)).tolist(),
                         "classifier_share": (np.bincount(pred, minlength=k) / len(pred)).tolist(),
                         "balanced_accuracy": float(balanced_accuracy_score(labels, pred)),
                         "confusion_true_by_predicted": confusion_matrix(labels, pred, labels=range(k)).tolist()})
    gap = [float(np.max(np.abs(np.subtract(r["true_share"], r["classifier_share"])))) for r in rows]
    result = {"benchmark": "extractor_class_shares", "machine": machine() | {"torch_threads": 1},
              "extractor": extractor.info(), "class_names": list(extractor.class_names),
              "size": 64, "per_seed": rows,
              "mean_balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in rows])),
              "largest_share_error_on_real_slices": {"per_seed": gap, "mean": float(np.mean(gap))}}
    write_json(args.out, result)
    for r, g in zip(rows, gap, strict=True):
        print(f"seed {r['seed']}: true {np.round(r['true_share'], 3)} classifier "
              f"{np.round(r['classifier_share'], 3)} balanced accuracy {r['balanced_accuracy']:.3f} "
              f"largest share error {g:.3f}")


if __name__ == "__main__":
    main()
