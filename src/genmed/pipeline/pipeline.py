"""The kidney CT pipeline: slice -> kidney segmentation -> lesion classification.

`train_pipeline(cfg, out)` trains both parts on the training patients, then predicts the dev
and test patients into the error-analysis workbench's formats:

    RUN/config.json             the resolved `PipelineConfig`
    RUN/segmenter/ RUN/classifier/   the two engine runs (config.yaml, checkpoints/, metrics.jsonl)
    RUN/metrics.json            test kidney Dice, balanced accuracy, malignant recall, AUROC
                                (95% bootstrap CIs over patients), confusion matrix, seconds
    RUN/<split>/preds.csv       id,y_true,y_pred,score,patient_id,image,p_<class>...,noisy,
                                noise_hu,lesion_mm,kidney_dice,lesion_coverage
    RUN/<split>/parts.csv       id,y_true,y_pred,y_pred_perfect_upto_segmentation
    RUN/<split>/images/<id>.png the slice (abdomen window W400/L40; 64-px slices upscaled 4x,
                                nearest) for the tagging UI

`score` is the probability of the predicted class. `y_pred_perfect_upto_segmentation` is
the classifier's answer on the ground-truth kidney mask instead of the predicted one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from genmed.config import load_config, save_config
from genmed.data.phantom import LABELS, PhantomConfig
from genmed.data.transforms import unit_to_hu, window_to_uint8
from genmed.errors import UserError
from genmed.fileio import atomic_path, write_json, write_png
from genmed.metrics.classification import auroc, balanced_accuracy, class_recall, confusion
from genmed.metrics.stats import bootstrap_ci
from genmed.models import Classifier, Segmenter
from genmed.pipeline.cases import Cases, label_names, load_cases, split_cases
from genmed.pipeline.classifier import ClsConfig, crop_kidneys, predict_proba, train_classifier
from genmed.pipeline.segmentation import SegConfig, dice_per_slice, lesion_coverage, predict_masks, \
    train_segmenter
from genmed.train.fitting import Compute

PERFECT_SEG = "y_pred_perfect_upto_segmentation"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a run needs; saved as RUN/config.json."""

    data: str = "phantom"  # "phantom" or a manifest CSV with mask_path
    size: int = 64  # slice size (pixels)
    n_patients: int = 240  # phantom patients (the classifier needs many lesion patients)
    slices_per_patient: int = 8
    phantom: PhantomConfig = field(default_factory=PhantomConfig)
    fractions: tuple[float, float, float, float] = (0.5, 0.1, 0.2, 0.2)  # train, val, dev, test patients
    seg: SegConfig = field(default_factory=SegConfig)
    cls: ClsConfig = field(default_factory=ClsConfig)
    seed: int = 0
    compute: Compute = field(default_factory=Compute)  # training device and precision

    def __post_init__(self) -> None:
        if not 32 <= self.size <= 512:
            raise UserError(f"size={self.size} must be between 32 and 512 pixels")
        if self.n_patients < 4 or self.slices_per_patient < 1:
            raise UserError(f"n_patients={self.n_patients} must be >= 4, slices_per_patient >= 1")


def quick_config(**overrides) -> PipelineConfig:
    """Settings for tests and the demo: 32 patients, few epochs."""
    base = dict(n_patients=32, seg=SegConfig(epochs=10), cls=ClsConfig(epochs=15))
    return PipelineConfig(**{**base, **overrides})


def clinical_config(**overrides) -> PipelineConfig:
    """The pipeline at clinical resolution: 256-px slices (1.41 mm pixels over the 360 mm field),
    where a 6-36 mm lesion spans 4-26 pixels instead of 1-6 at 64 px.

    The classifier's window (96 x 192 px = 135 x 270 mm) holds both kidneys at the source
    spacing, so it sees the lesion at native resolution; the mask is dilated by 4 px (5.6 mm,
    the 1 px of the 64-px setting) so a lesion edge the segmenter misses stays visible.
    1,250 patients: 350 train, 50 validation, 600 dev, 250 test. The dev set is that large so
    that its eyeball set still holds about the source's 100 errors from a classifier that errs
    on about 4% of slices (1,000 patients and 400 dev patients left 66-68); 250 test patients
    give the CIs. The DenseNet is twice the default width (stem 32, growth 16): on single-kidney
    crops that width added 5 points of balanced accuracy
    (`benchmarks/pipeline_crop_classifier.py`). Precision
    "auto": bf16 autocast where the device runs it fast (CUDA, CPUs with AVX-512 BF16 or AMX).
    """
    base = dict(size=256, n_patients=1250, fractions=(0.28, 0.04, 0.48, 0.2),
                seg=SegConfig(patch=96, epochs=20),
                cls=ClsConfig(epochs=60, margin=4, init_features=32, growth_rate=16),
                compute=Compute(precision="auto"))
    return PipelineConfig(**{**base, **overrides})


@dataclass
class Pipeline:
    """A trained pipeline: its config and the two networks (eval mode)."""

    cfg: PipelineConfig
    segmenter: Segmenter
    classifier: Classifier

    def classify(self, images: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """Class probabilities (N, 3) of slices given kidney masks."""
        shape = self.cfg.cls.crop_shape(self.cfg.size)
        return predict_proba(self.classifier, crop_kidneys(images, masks, shape, self.cfg.cls.margin))

    def segment(self, images: np.ndarray) -> np.ndarray:
        """Predicted kidney masks (N, H, W) uint8."""
        return predict_masks(self.segmenter, images)


def load_data(cfg: PipelineConfig, data: str | os.PathLike | None = None) -> tuple[Cases, dict[str, np.ndarray]]:
    """The run's cases (or `data` instead of the configured source) and their patient splits."""
    cases = load_cases(data if data is not None else cfg.data, size=cfg.size, n_patients=cfg.n_patients,
                       slices_per_patient=cfg.slices_per_patient, phantom=cfg.phantom, seed=cfg.seed)
    return cases, split_cases(cases, cfg.fractions, cfg.seed)


def fit(cfg: PipelineConfig, train: Cases, log: Callable[[str], None] = lambda s: None,
        out: str | os.PathLike | None = None) -> tuple[Pipeline, dict]:
    """Train the segmenter and the classifier (on ground-truth kidney crops) with the engine,
    into OUT/segmenter and OUT/classifier when `out` is given; returns seconds too."""
    runs = {k: None if out is None else Path(out) / k for k in ("segmenter", "classifier")}
    t0 = time.perf_counter()
    seg = train_segmenter(train.image, train.kidney, cfg.seg, seed=cfg.seed, compute=cfg.compute,
                          out=runs["segmenter"])
    t1 = time.perf_counter()
    log(f"segmenter trained in {t1 - t0:.1f} s")
    x = crop_kidneys(train.image, train.kidney, cfg.cls.crop_shape(cfg.size), cfg.cls.margin)
    cls = train_classifier(x, train.label, cfg.cls, seed=cfg.seed, augment="flip",
                           compute=cfg.compute, out=runs["classifier"])
    t2 = time.perf_counter()
    log(f"classifier trained in {t2 - t1:.1f} s")
    return Pipeline(cfg, seg, cls), {"train_segmenter": t1 - t0, "train_classifier": t2 - t1}


def predict_frames(pipe: Pipeline, cases: Cases) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """(preds, parts, predicted masks) for `cases`; the image column is filled by `write_predictions`."""
    masks = pipe.segment(cases.image)
    proba = pipe.classify(cases.image, masks)
    proba_gt = pipe.classify(cases.image, cases.kidney)
    y_pred, y_gt = proba.argmax(1), proba_gt.argmax(1)
    preds = pd.DataFrame({
        "id": cases.ids, "y_true": label_names(cases.label), "y_pred": label_names(y_pred),
        "score": proba.max(1).round(4), "patient_id": cases.patient_id, "image": "",
        **{f"p_{name}": proba[:, k].round(4) for k, name in enumerate(LABELS)},
        "noisy": cases.noisy, "noise_hu": np.round(cases.noise_hu, 1), "lesion_mm": np.round(cases.lesion_mm, 1),
        "kidney_dice": dice_per_slice(masks, cases.kidney).round(4),
        "lesion_coverage": np.round(lesion_coverage(masks, cases.lesion), 3),
    })
    parts = pd.DataFrame({"id": cases.ids, "y_true": preds["y_true"], "y_pred": preds["y_pred"],
                          PERFECT_SEG: label_names(y_gt)})
    return preds, parts, masks


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def write_predictions(pipe: Pipeline, cases: Cases, out: str | os.PathLike) -> tuple[Path, Path]:
    """Write preds.csv at `out`, parts.csv and images/ beside it; returns (preds, parts) paths."""
    out = Path(out)
    preds, parts, _ = predict_frames(pipe, cases)
    images = out.parent / "images"
    names = []
    zoom = np.ones((max(1, 256 // cases.image.shape[-1]),) * 2, np.uint8)  # at least 256 px on screen
    for i, sid in enumerate(cases.ids):
        grey = window_to_uint8(unit_to_hu(cases.image[i]))
        write_png(images / f"{sid}.png", np.kron(grey, zoom))
        names.append(f"images/{sid}.png")
    preds["image"] = names
    return _write_csv(preds, out), _write_csv(parts, out.parent / "parts.csv")


def evaluate(preds: pd.DataFrame, seed: int = 0) -> dict:
    """Dice and classification metrics with 95% patient-bootstrap CIs from a preds table."""
    yt = preds["y_true"].map(LABELS.index).to_numpy()
    yp = preds["y_pred"].map(LABELS.index).to_numpy()
    pm = preds["p_malignant"].to_numpy()
    dice = preds["kidney_dice"].to_numpy()
    groups = preds["patient_id"].to_numpy()
    n = len(preds)
    malignant = LABELS.index("malignant")

    def ci(fn):
        e = bootstrap_ci(fn, np.arange(n), groups=groups, n_boot=1000, level=0.95, seed=seed)
        return {"value": e.value, "ci95": [e.low, e.high]}

    return {
        "n_slices": n, "n_patients": int(len(np.unique(groups))),
        "kidney_dice": ci(lambda i: float(dice[i].mean())),
        "balanced_accuracy": ci(lambda i: balanced_accuracy(yt[i], yp[i])),
        "accuracy": ci(lambda i: float((yt[i] == yp[i]).mean())),
        "malignant_recall": ci(lambda i: class_recall(yt[i], yp[i], malignant)),
        "auroc_malignant": ci(lambda i: auroc(yt[i] == malignant, pm[i])),
        "confusion": {"labels": list(LABELS),
                      "rows_true_cols_pred": confusion(yt, yp, len(LABELS)).tolist()},
    }


def load_pipeline(run: str | os.PathLike, device: str = "cpu") -> Pipeline:
    """Rebuild a trained pipeline from its run folder: config.json plus the two engine runs
    (safetensors weights, never pickles)."""
    from genmed.train import load_run

    run = Path(run)
    if not (run / "config.json").is_file():
        raise UserError(f"{run}: not a pipeline run folder (no config.json)")
    cfg = load_config(PipelineConfig, run / "config.json")
    nets = {}
    for name, kind in (("segmenter", Segmenter), ("classifier", Classifier)):
        model, _ = load_run(run / name, device=device)
        if not isinstance(model, kind):
            raise UserError(f"{run / name}: holds a {model.family}, not a {name}")
        nets[name] = model
    shapes = {"segmenter size": (nets["segmenter"].config.size, cfg.size),
              "classifier window": (tuple(nets["classifier"].config.shape),
                                    cfg.cls.crop_shape(cfg.size))}
    for what, (trained, configured) in shapes.items():
        if trained != configured:  # a hand-edited config.json: refuse before any data is read
            raise UserError(f"{run / 'config.json'}: {what} {configured} does not match the "
                            f"trained network's {trained}; restore the run's config.json")
    return Pipeline(cfg, nets["segmenter"], nets["classifier"])


def train_pipeline(cfg: PipelineConfig, out: str | os.PathLike,
                   log: Callable[[str], None] = lambda s: None) -> dict:
    """Train, save, predict dev and test, write metrics.json; returns the metrics."""
    out = Path(out)
    torch.manual_seed(cfg.seed)
    t0 = time.perf_counter()
    cases, splits = load_data(cfg)
    seconds = {"data": time.perf_counter() - t0}
    log(f"{len(cases)} slices; " + ", ".join(f"{k} {len(v)}" for k, v in splits.items()))
    pipe, fit_s = fit(cfg, cases.subset(splits["train"]), log, out=out)
    seconds.update(fit_s)
    save_config(cfg, out / "config.json")
    results = {}
    for name in ("dev", "test"):
        if len(splits[name]) == 0:
            continue
        t = time.perf_counter()
        preds_path, _ = write_predictions(pipe, cases.subset(splits[name]), out / name / "preds.csv")
        seconds[f"predict_{name}"] = time.perf_counter() - t
        results[name] = evaluate(pd.read_csv(preds_path, keep_default_na=False), seed=cfg.seed)
    metrics = {"config": str(out / "config.json"), "splits": {k: len(v) for k, v in splits.items()},
               **results, "seconds": {k: round(v, 2) for k, v in seconds.items()}}
    write_json(out / "metrics.json", metrics)
    return metrics


def predict(run: str | os.PathLike, out: str | os.PathLike, data: str | None = None,
            split: str = "dev") -> tuple[Path, Path]:
    """Predict one split of `data` (default: the run's data) with a trained run."""
    from genmed.errors import check_choice

    check_choice("--split", split, ("train", "val", "dev", "test", "all"))
    pipe = load_pipeline(run)
    cases, splits = load_data(pipe.cfg, data)
    if split != "all":
        cases = cases.subset(splits[split])
    if len(cases) == 0:
        raise UserError(f"split {split!r} of {data or pipe.cfg.data} is empty")
    return write_predictions(pipe, cases, out)
