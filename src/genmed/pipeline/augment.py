"""Augmentation study: does generated data help the weakest class? Measured, whatever the result.

Training patients come from a class-imbalanced phantom (`malignant_fraction` of lesions are
malignant); held-out test patients from the default (balanced) phantom with another seed, so
malignant recall is measured on enough malignant slices. The classifier (`classifier.py`) is
trained on ground-truth kidney crops and tested on ground-truth crops: the study isolates the
classification step. Arms:

- real: real slices only;
- classic: + MONAI augmentation (random affine, intensity shift, Gaussian noise, flips);
- <family> x<r>: real + synthetic slices of each class in `synth_classes` from a
  class-conditional generator, r x as many as the real slices of that class (synthetic:real
  ratio r). Synthetic slices are cropped with a segmenter trained on the training slices.

Every arm is trained with each seed; the table gives mean and 95% Student-t CI over seeds of
malignant recall, balanced accuracy and AUROC (malignant vs rest, sklearn).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genmed.data.phantom import LABELS, PhantomConfig
from genmed.errors import UserError
from genmed.fileio import atomic_path, save_figure, write_json
from genmed.metrics.classification import auroc, balanced_accuracy, class_recall
from genmed.metrics.stats import mean_ci
from genmed.pipeline.cases import Cases, phantom_cases
from genmed.pipeline.classifier import ClsConfig, crop_kidneys, predict_proba, train_classifier
from genmed.pipeline.segmentation import SegConfig, predict_masks, train_segmenter
from genmed.pipeline.synthetic import MEMO_COLUMNS, SyntheticSource, memorisation
from genmed.train.fitting import Compute

METRICS = ("malignant_recall", "balanced_accuracy", "auroc_malignant")


@dataclass(frozen=True)
class AugmentConfig:
    """Study settings (pixels, patients, epochs)."""

    size: int = 64
    n_patients: int = 60  # imbalanced training patients
    n_test_patients: int = 40  # held-out test patients (balanced phantom)
    slices_per_patient: int = 8
    malignant_fraction: float = 0.1  # fraction of training lesions that are malignant
    seeds: tuple[int, ...] = (0, 1, 2)
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)  # synthetic:real per augmented class
    synth_classes: tuple[str, ...] = ("malignant", "benign")
    cls: ClsConfig = field(default_factory=lambda: ClsConfig(epochs=30))
    seg: SegConfig = field(default_factory=lambda: SegConfig(epochs=15))
    data_seed: int = 100  # training phantom seed; test phantom uses data_seed + 1
    compute: Compute = field(default_factory=Compute)  # training device and precision

    def __post_init__(self) -> None:
        if not 0.0 <= self.malignant_fraction <= 1.0:
            raise UserError(f"malignant_fraction={self.malignant_fraction} must be in [0, 1]")
        if len(self.seeds) < 1 or self.n_patients < 2 or self.n_test_patients < 2:
            raise UserError("augment study needs >= 1 seed and >= 2 training and test patients")
        if any(r <= 0 for r in self.ratios):
            raise UserError(f"ratios {self.ratios} must be > 0")
        bad = [c for c in self.synth_classes if c not in LABELS]
        if bad:
            raise UserError(f"synth_classes {bad} are not in {', '.join(LABELS)}")


def quick_augment_config(**overrides) -> AugmentConfig:
    """Test-suite settings: tiny phantom, 3 seeds, 2 epochs, one ratio."""
    base = dict(size=48, n_patients=10, n_test_patients=6, slices_per_patient=4, ratios=(1.0,),
                cls=ClsConfig(epochs=2), seg=SegConfig(epochs=2), malignant_fraction=0.3)
    return AugmentConfig(**{**base, **overrides})


def class_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Malignant recall, balanced accuracy and AUROC (malignant vs rest) of class probabilities."""
    pred, mal = proba.argmax(1), LABELS.index("malignant")
    return {"malignant_recall": class_recall(y, pred, mal), "balanced_accuracy": balanced_accuracy(y, pred),
            "auroc_malignant": auroc(y == mal, proba[:, mal])}


def study_data(cfg: AugmentConfig) -> tuple[Cases, Cases]:
    """(imbalanced training cases, balanced held-out test cases)."""
    train_ph = PhantomConfig(size=cfg.size, malignant_fraction=cfg.malignant_fraction)
    train = phantom_cases(cfg.n_patients, cfg.slices_per_patient, train_ph, cfg.data_seed)
    test = phantom_cases(cfg.n_test_patients, cfg.slices_per_patient, PhantomConfig(size=cfg.size),
                         cfg.data_seed + 1)
    return train, test


def augment_study(cfg: AugmentConfig, out: str | os.PathLike,
                  generators: Mapping[str, SyntheticSource] | None = None,
                  log: Callable[[str], None] = lambda s: None) -> dict:
    """Run every arm with every seed; write the table, per-seed rows, plot and memorisation check."""
    out = Path(out)
    t0 = time.perf_counter()
    train, test = study_data(cfg)
    counts = {name: int((train.label == k).sum()) for k, name in enumerate(LABELS)}
    log(f"training slices per class {counts}")
    shape = cfg.cls.crop_shape(cfg.size)
    x_train = crop_kidneys(train.image, train.kidney, shape, cfg.cls.margin)
    x_test = crop_kidneys(test.image, test.kidney, shape, cfg.cls.margin)
    arms: dict[str, tuple[torch.Tensor, np.ndarray, str, str, float]] = {
        "real": (x_train, train.label, "flip", "none", 0.0),
        "classic": (x_train, train.label, "classic", "none", 0.0),
    }
    synth_used: dict[str, np.ndarray] = {}
    if generators:
        seg = train_segmenter(train.image, train.kidney, cfg.seg, seed=cfg.data_seed,
                              compute=cfg.compute)
        for fam, gen in generators.items():
            for r in cfg.ratios:
                imgs, labs = [], []
                for cname in cfg.synth_classes:
                    k = LABELS.index(cname)
                    n = int(round(r * counts[cname]))
                    if n > 0:
                        s = np.asarray(gen(k, n, cfg.data_seed + k), np.float32)
                        if s.shape[1:] != (cfg.size, cfg.size):
                            raise UserError(f"generator {fam!r} gave slices {s.shape[1:]}, expected {cfg.size}")
                        imgs.append(s)
                        labs.append(np.full(n, k))
                if not imgs:
                    continue
                s_img, s_lab = np.concatenate(imgs), np.concatenate(labs)
                synth_used[f"{fam} x{r:g}"] = s_img
                x_s = crop_kidneys(s_img, predict_masks(seg, s_img), shape, cfg.cls.margin)
                arms[f"{fam} x{r:g}"] = (torch.cat([x_train, x_s]), np.concatenate([train.label, s_lab]),
                                         "flip", fam, r)
    rows = []
    for arm, (x, y, aug, fam, ratio) in arms.items():
        for seed in cfg.seeds:
            t = time.perf_counter()
            net = train_classifier(x, y, cfg.cls, seed=seed, augment=aug, compute=cfg.compute)
            m = class_metrics(test.label, predict_proba(net, x_test))
            rows.append({"arm": arm, "family": fam, "ratio": ratio, "seed": seed, "n_train": len(y), **m,
                         "seconds": round(time.perf_counter() - t, 2)})
            log(f"{arm} seed {seed}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()))
    per_seed = pd.DataFrame(rows)
    table = summarise(per_seed)
    mem = memorisation(synth_used, train.image, test.image) if synth_used else []
    write_tables(out, per_seed, table, mem)
    plot_table(table, out / "augment.png")
    result = {"config": _cfg_dict(cfg), "train_class_counts": counts,
              "test_class_counts": {n: int((test.label == k).sum()) for k, n in enumerate(LABELS)},
              "table": table.to_dict("records"), "memorisation": mem,
              "generators": sorted(generators or {}),
              "evaluation": "classifier on ground-truth kidney crops; held-out balanced test patients",
              "seconds": round(time.perf_counter() - t0, 1)}
    write_json(out / "augment.json", result)
    return result


def _cfg_dict(cfg: AugmentConfig) -> dict:
    from genmed.config import to_dict

    return to_dict(cfg)


def summarise(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% t-interval over seeds of every metric (clipped to [0, 1]), one row per arm."""
    rows = []
    for arm, g in per_seed.groupby("arm", sort=False):
        row = {"arm": arm, **{c: g[c].iloc[0] for c in ("family", "ratio") if c in g}, "n_seeds": len(g),
               **({"n_train": int(g["n_train"].iloc[0])} if "n_train" in g else {})}
        for m in METRICS:
            e = mean_ci(g[m].to_numpy())
            row.update({m: e.value, f"{m}_lo": max(e.low, 0.0), f"{m}_hi": min(e.high, 1.0)})
        rows.append(row)
    return pd.DataFrame(rows)


def write_tables(out: Path, per_seed: pd.DataFrame, table: pd.DataFrame, mem: list[dict],
                 prefix: str = "augment") -> None:
    """OUT/<prefix>_per_seed.csv, <prefix>_table.csv and the memorisation audit's CSV."""
    memo = "memorisation.csv" if prefix == "augment" else f"{prefix}_memorisation.csv"
    for df, name in ((per_seed, f"{prefix}_per_seed.csv"), (table, f"{prefix}_table.csv"),
                     (pd.DataFrame(mem, columns=list(MEMO_COLUMNS)), memo)):
        with atomic_path(out / name) as tmp:
            df.to_csv(tmp, index=False, float_format="%.4f")


def plot_table(table: pd.DataFrame, path: str | os.PathLike) -> Path:
    """One panel per metric: mean and 95% CI per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 0.45 * len(table) + 1.5), sharey=True,
                             layout="constrained")
    ypos = np.arange(len(table))
    for ax, m in zip(axes, METRICS, strict=True):
        mean = table[m].to_numpy()
        err = np.abs(np.stack([mean - table[f"{m}_lo"].to_numpy(), table[f"{m}_hi"].to_numpy() - mean]))
        ax.errorbar(mean, ypos, xerr=np.nan_to_num(err), fmt="o", capsize=3)
        ax.set_title(m.replace("_", " "))
        ax.set_xlabel(f"{m.replace('_', ' ')} (test crops or slices)")
        ax.set_xlim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_yticks(ypos, table["arm"])
    axes[0].invert_yaxis()
    fig.suptitle("Augmentation study (mean, 95% CI over seeds)")
    return save_figure(fig, path)
