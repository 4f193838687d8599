"""Crop study arms corrected for their training class prior, from a finished study's files.

Reads RUN/crop_test_proba.npz and RUN/crop_study.json of `benchmarks/pipeline_crop_study.py`
and applies `genmed.pipeline.crop_study.prior_corrected_table` (Bayes' rule to a uniform
prior; Saerens et al. 2002, Menon et al. 2021). No training: seconds on one core. Studies run
before the npz recorded each arm's prior ("prior:<arm>") get it from the JSON: the scarce set's
class counts plus the arm's added malignant crops, uniform for "reweight".

    python benchmarks/pipeline_crop_prior_shift.py RUN --tag m32_ldm

Writes benchmarks/results/pipeline_crop_prior_shift_TAG.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def priors_from_json(study: dict, arms: list[str]) -> dict[str, np.ndarray]:
    """Each arm's training prior from the study's crop counts and training-set sizes: the
    scarce set's counts plus the malignant crops the arm added; uniform for "reweight"."""
    from genmed.data.phantom import LABELS

    scarce = study["crop_counts"]["train_scarce"]
    counts = np.array([scarce[name] for name in LABELS], np.float64)
    n_train = {row["arm"]: row["n_train"] for row in study["table"]}
    out = {}
    for arm in arms:
        added = np.eye(len(LABELS))[-1] * (n_train[arm] - counts.sum())  # malignant crops only
        c = np.ones(len(LABELS)) if arm == "reweight" else counts + added
        out[arm] = c / c.sum()
    return out


def main(run: Path, tag: str) -> dict:
    from genmed.fileio import write_json
    from genmed.pipeline.crop_study import prior_corrected_table
    from genmed.versions import machine

    study = json.loads((run / "crop_study.json").read_text())
    with np.load(run / "crop_test_proba.npz") as f:
        probas = {k.removeprefix("arm:"): f[k] for k in f.files if k.startswith("arm:")}
        priors = {k.removeprefix("prior:"): f[k] for k in f.files if k.startswith("prior:")}
        label, patients = f["label"], f["patient_id"]
    if set(priors) != set(probas):
        priors = priors_from_json(study, list(probas))
    table = prior_corrected_table(label, patients, probas, priors, seed=study["config"]["data_seed"])
    uncorrected = {row["arm"]: row for row in study["table"]}
    result = {"run": str(run), "study_tag": tag, "target_prior": "uniform",
              "priors": {a: p.round(5).tolist() for a, p in priors.items()},
              "corrected": table.to_dict("records"),
              "uncorrected": [{k: uncorrected[a][k] for k in ("arm", "malignant_recall", "balanced_accuracy",
                                                             "auroc_malignant", "recall_diff", "recall_diff_lo",
                                                             "recall_diff_hi")} for a in table["arm"]],
              "machine": machine()}
    write_json(RESULTS / f"pipeline_crop_prior_shift_{tag}.json", result)
    return result


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--tag", required=True, help="names the result file")
    a = ap.parse_args()
    out = main(a.run, a.tag)
    for row in out["corrected"]:
        print(f"{row['arm']:>16}: malignant recall {row['malignant_recall']:.3f} "
              f"({row['malignant_recall_lo']:.3f}-{row['malignant_recall_hi']:.3f}), "
              f"bal. acc. {row['balanced_accuracy']:.3f}, vs real {row['recall_diff']:+.3f} "
              f"({row['recall_diff_lo']:+.3f} to {row['recall_diff_hi']:+.3f})")
