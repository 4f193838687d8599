"""The report of `genmed eval images`: OUT/report.html beside metrics.json.

What a reader needs to judge the numbers on one page: real and generated slices side by side in
the data's own window (CT: the abdomen window W400/L40 in HU; MR and other images: the
percentile range `genmed sample` recorded, in arbitrary units), quality and diversity in
separate tables with their confidence intervals, the feature extractor's name and weights
hash, and every warning (domain mismatch, degenerate sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from genmed.data.modality import IntensityMap
from genmed.fileio import atomic_path
from genmed.report.html import Page

TILES = 8  # images per row of the side-by-side figure


def _rows(group: dict[str, Any]) -> list[dict[str, Any]]:
    """Table rows of the estimates in `group` ({name: {value, low, high, ...}})."""
    rows = []
    for name, est in group.items():
        if isinstance(est, dict) and "value" in est:
            rows.append({"metric": name, "value": est["value"], "95% CI low": est.get("low"),
                         "95% CI high": est.get("high"), "method": est.get("method", "")})
    return rows


def side_by_side(path: Path, real: np.ndarray, fake: np.ndarray, intensity: IntensityMap | None) -> Path:
    """Up to TILES real (top) and generated (bottom) slices, (N, C, H, W) in model units
    [-1, 1], shown in the data's units with a labelled colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(TILES, len(real), len(fake))
    if intensity is None:
        to_units, label, window = (lambda a: a), "model units", (-1.0, 1.0)
    else:
        to_units = intensity.from_unit
        label = f"{intensity.modality} ({intensity.units})"
        window = (float(intensity.low), float(intensity.high))
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n + 1.2, 3.8), squeeze=False)
    for row, (name, images) in enumerate((("real", real), ("generated", fake))):
        for i in range(n):
            ax = axes[row, i]
            im = ax.imshow(to_units(np.asarray(images[i, 0], np.float32)), cmap="gray",
                           vmin=window[0], vmax=window[1])
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(name)
    what = "window" if intensity is not None and intensity.kind == "window" else "display range"
    fig.suptitle(f"real (top) vs generated (bottom); {what} {window[0]:.4g} to {window[1]:.4g} {label}",
                 fontsize=9)
    fig.colorbar(im, ax=axes, fraction=0.02, label=label)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return path


def write_report(out: Path, result: dict[str, Any], real: np.ndarray, fake: np.ndarray,
                 intensity: IntensityMap | None) -> Path:
    """OUT/report.html (and OUT/real_vs_generated.png) for one `evaluate_images` result."""
    figure = side_by_side(out / "real_vs_generated.png", real, fake, intensity)
    ext = result["extractor"]
    page = Page("genmed eval images")
    page.text(f"{result['n_real']} real vs {result['n_fake']} generated images; features from "
              f"{ext['name']} (weights {ext['weights_hash'][:12]}).")
    for warning in result["warnings"]:
        page.text(f"warning: {warning}", "warn")
    page.figures([(figure, "real vs generated slices")], out)
    page.heading("Quality (fidelity)").table(_rows(result["quality"]))
    page.heading("Diversity").table(_rows(result["diversity"]))
    if "memorisation" in result:
        page.heading("Memorisation audit").text(
            ", ".join(f"{k}: {v}" for k, v in result["memorisation"].items()
                      if not isinstance(v, (dict, list))))
    return page.write(out / "report.html")
