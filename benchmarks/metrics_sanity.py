"""Sanity figures of the metrics on the phantom and the toy mixtures (docs/evaluation.md).

Writes benchmarks/results/metrics_sanity.json and docs/img/metrics_sanity.png:
- FID/KID (shipped phantom CNN) of held-out phantom slices vs real slices, then with added
  Gaussian noise and with Gaussian blur; FID of a set against itself;
- precision/recall/density/coverage when one lesion class is dropped from the fake set;
- memorisation audit of copied training slices vs fresh slices;
- mode metrics of exact ring/grid samples (100k samples, 5 seeds, mean +- s.e.).
Run: PYTHONPATH=src python benchmarks/metrics_sanity.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from genmed.data.phantom import make_slices
from genmed.data.toy import get_mixture, sample_mixture
from genmed.fileio import save_figure, write_json
from genmed.metrics import (
    fid, fid_ci, flatten_rms, kid_ci, load_extractor, memorisation_audit, mode_metrics, prdc,
    summarise_seeds,
)
from genmed.metrics.extractor_train import window_unit
from genmed.versions import machine

ROOT = Path(__file__).resolve().parents[1]


def phantom(n_patients: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    s = make_slices(n_patients, seed=seed)
    return window_unit(s.image)[:, None], np.asarray(s.label)


def main() -> None:
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    ext = load_extractor()
    real, _ = phantom(60, seed=101)  # 480 slices
    other, other_lab = phantom(60, seed=202)
    fr = ext.features(real)
    out: dict = {"machine": machine(), "extractor": ext.info(), "n_real": len(real), "n_fake": len(other)}
    out["fid_self"] = fid(fr, fr)
    curves = {}
    for kind, levels in (("noise_sd_unit", (0.0, 0.05, 0.1, 0.2, 0.4)), ("blur_sigma_px", (0.0, 0.5, 1.0, 1.5, 2.5))):
        rows = []
        rng = np.random.default_rng(0)
        for lv in levels:
            if kind.startswith("noise"):
                fake = np.clip(other + rng.normal(0, lv, other.shape), -1, 1) if lv else other
            else:
                fake = gaussian_filter(other, sigma=(0, 0, lv, lv)) if lv else other
            ff = ext.features(fake.astype(np.float32))
            f_e, k_e = fid_ci(fr, ff, n_boot=30), kid_ci(fr, ff)
            rows.append({"level": lv, "fid": f_e.to_dict(), "kid": k_e.to_dict()})
        curves[kind] = rows
    out["degradation"] = curves
    # Drop the malignant class from the fakes at an equal sample count (recall and coverage
    # depend on the number of fakes): diversity should fall, fidelity not.
    ff = ext.features(other)
    rng = np.random.default_rng(0)
    n_eq = int((other_lab != 2).sum())
    out["prdc_full"] = prdc(fr, ff[rng.choice(len(ff), n_eq, replace=False)]).to_dict()
    out["prdc_drop_malignant"] = prdc(fr, ff[other_lab != 2]).to_dict()
    # Memorisation: copies of training slices (+1 HU-ish noise) vs fresh slices.
    train, _ = phantom(60, seed=303)
    rng = np.random.default_rng(1)
    copies = train[rng.choice(len(train), 200)] + rng.normal(0, 0.005, (200, *train.shape[1:]))
    fresh = other[:200]
    out["memorisation_fresh"] = memorisation_audit(flatten_rms(fresh), flatten_rms(train), flatten_rms(real)).to_dict()
    out["memorisation_copies"] = memorisation_audit(flatten_rms(copies), flatten_rms(train), flatten_rms(real)).to_dict()
    for key in ("memorisation_fresh", "memorisation_copies"):
        out[key]["closest_pairs"] = out[key]["closest_pairs"][:3]
    # Exact mixture samples: the reference row of the mode-collapse table.
    for name in ("ring", "grid"):
        spec = get_mixture(name)
        runs = [mode_metrics(sample_mixture(spec, 100_000, torch.Generator().manual_seed(s))[0], spec) for s in range(5)]
        out[f"modes_exact_{name}"] = summarise_seeds(runs)
    out["wall_s"] = time.perf_counter() - t0
    write_json(ROOT / "benchmarks" / "results" / "metrics_sanity.json", out)
    _figure(curves)
    print(f"done in {out['wall_s']:.0f} s")


def _figure(curves: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(7, 2.6))
    for ax, (kind, rows) in zip(axes, curves.items()):
        lv = [r["level"] for r in rows]
        val = [r["fid"]["value"] for r in rows]
        lo = [r["fid"]["low"] for r in rows]
        hi = [r["fid"]["high"] for r in rows]
        ax.plot(lv, val, "o-")
        ax.fill_between(lv, lo, hi, alpha=0.3)
        ax.set_xlabel(kind.replace("_", " "))
        ax.set_ylabel("FID (phantom CNN)")
        ax.set_yscale("symlog", linthresh=1e-3)
    fig.suptitle("FID vs degradation of held-out phantom slices (95% bootstrap CI)", fontsize=9)
    save_figure(fig, ROOT / "docs" / "img" / "metrics_sanity.png", dpi=90)


if __name__ == "__main__":
    main()
