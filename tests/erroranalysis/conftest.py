"""Small CSV fixtures for error analysis: the source's worked example and a grouped dev set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def worked_example(folder: Path) -> tuple[Path, Path, list[str]]:
    """The source's example: 1000 dev examples, 15% error, 100 reviewed errors tagged
    benign 7, malignant 63, noisy 6 (24 reviewed with no tag). Returns (preds, tags, error ids)."""
    n = 1000
    ids = [f"s{i:04d}" for i in range(n)]
    y_true = np.array(["healthy", "benign", "malignant"] * 334, dtype=object)[:n]
    y_pred = y_true.copy()
    err = np.arange(150) * 6 + 5
    y_pred[err] = np.where(y_true[err] == "healthy", "malignant", "healthy")
    preds = folder / "preds.csv"
    pd.DataFrame({"id": ids, "y_true": y_true, "y_pred": y_pred}).to_csv(preds, index=False)
    err_ids = [ids[i] for i in err]
    rows = [(i, "benign") for i in err_ids[:7]] + [(i, "malignant") for i in err_ids[7:70]]
    rows += [(i, "noisy") for i in err_ids[70:76]] + [(i, "") for i in err_ids[76:100]]
    tags = folder / "tags.csv"
    pd.DataFrame(rows, columns=["id", "tag"]).to_csv(tags, index=False)
    return preds, tags, err_ids


def grouped_dev(folder: Path, *, n_patients: int = 60, per_patient: int = 5, seed: int = 0,
                error_rate: float = 0.2, with_images: bool = False) -> Path:
    """A dev set of `n_patients` patients x `per_patient` slices with ~`error_rate` errors."""
    rng = np.random.default_rng(seed)
    n = n_patients * per_patient
    y_true = rng.choice(["healthy", "benign", "malignant"], size=n)
    wrong = rng.random(n) < error_rate
    y_pred = np.where(wrong, np.where(y_true == "healthy", "malignant", "healthy"), y_true)
    df = pd.DataFrame({
        "id": [f"x{i:03d}" for i in range(n)],
        "y_true": y_true,
        "y_pred": y_pred,
        "patient_id": [f"p{i // per_patient:02d}" for i in range(n)],
    })
    if with_images:
        df["image"] = [f"img/{i}.png" for i in df["id"]]
    path = folder / "preds.csv"
    df.to_csv(path, index=False)
    return path


@pytest.fixture
def example_files(tmp_path):
    return worked_example(tmp_path)
