"""Small CSV fixtures for error analysis: the source's worked example and a grouped dev set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genmed.erroranalysis.example import write_source_example


def worked_example(folder: Path) -> tuple[Path, Path, list[str]]:
    """The source's example (see `genmed.erroranalysis.example`)."""
    return write_source_example(folder)


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
