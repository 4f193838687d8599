"""The source's worked example (mission.md Part D.1) as files the workbench reads.

1000 dev examples with 15% error; 100 of the 150 errors reviewed and tagged benign 7,
malignant 63, noisy 6 (24 reviewed with no tag). The category table must give ceilings
1.05%, 9.45% and 0.9% of dev error: work on the malignant class, not on denoising.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from genmed.fileio import atomic_path


def write_source_example(folder: str | os.PathLike) -> tuple[Path, Path, list[str]]:
    """Write preds.csv and tags.csv of the source's example; return (preds, tags, error ids)."""
    folder = Path(folder)
    n = 1000
    ids = [f"s{i:04d}" for i in range(n)]
    y_true = np.array(["healthy", "benign", "malignant"] * 334, dtype=object)[:n]
    y_pred = y_true.copy()
    err = np.arange(150) * 6 + 5  # 150 errors spread over the set: 15% dev error
    y_pred[err] = np.where(y_true[err] == "healthy", "malignant", "healthy")
    err_ids = [ids[i] for i in err]
    rows = [(i, "benign") for i in err_ids[:7]] + [(i, "malignant") for i in err_ids[7:70]]
    rows += [(i, "noisy") for i in err_ids[70:76]] + [(i, "") for i in err_ids[76:100]]
    preds, tags = folder / "preds.csv", folder / "tags.csv"
    with atomic_path(preds) as tmp:
        pd.DataFrame({"id": ids, "y_true": y_true, "y_pred": y_pred}).to_csv(tmp, index=False)
    with atomic_path(tags) as tmp:
        pd.DataFrame(rows, columns=["id", "tag"]).to_csv(tmp, index=False)
    return preds, tags, err_ids
