"""Train a domain feature extractor on a data source with the training engine (v2).

`genmed eval train-extractor --data SOURCE` builds the extractor that FID/KID/PRDC should use
on that data: the `PhantomCNN` encoder at the data's resolution (`size`), trained by
`genmed.train.fitting.fit` (the one engine: devices, bf16, clipping, seeded augmentations) on
the training split only (patient-level, as `genmed train` splits it) as the registry's
"extractor" model (models/extractor.py):
- labelled data (a manifest's label column, class folders, the phantom): class-weighted
  cross-entropy plus the SimCLR NT-Xent term (objective "both");
- unlabelled data: NT-Xent alone (Chen et al. 2020, "A simple framework for contrastive
  learning of visual representations").
The encoder (projection head dropped) is written as safetensors with metadata (name, source,
modality, units, size, objective, steps, seed) that `genmed eval images --extractor FILE`
loads; every metric output then records the name, this metadata and the weights hash, and the
domain check (metrics/honesty.py) compares the data's modality with the extractor's.
The frozen v1 extractor keeps its own loop (extractor_train.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from genmed.errors import UserError, check_choice, check_positive, check_range
from genmed.metrics.features import DOMAIN_EXTRACTOR, save_phantom_cnn
from genmed.models.encoder import MAX_INPUT, MIN_INPUT

OBJECTIVES = ("auto", "contrastive", "supervised", "both")


@dataclass(frozen=True)
class DomainTrainConfig:
    """One extractor training run; `steps` xor `epochs` (None and None: 1000 steps)."""

    source: str = "phantom"  # "phantom", a manifest CSV, a folder of scans or images
    size: int = 64  # input side in pixels (images are resized to it, here and at evaluation)
    steps: int | None = None  # optimiser steps
    epochs: int | None = None  # passes over the training split (converted to steps)
    batch_size: int = 64  # images per step (each seen as two views by the contrastive term)
    width: int = 16  # base channels of the encoder
    objective: str = "auto"  # auto: "both" with labels, "contrastive" without
    seed: int = 0  # seeds the patient split, the weights, the batches and the augmentations
    n_patients: int | None = None  # phantom patients (None: the loader's default, 48)
    device: str = "auto"  # "auto", "cpu" or "cuda"
    precision: str = "fp32"  # "auto", "bf16", "fp16" or "fp32"

    def __post_init__(self) -> None:
        check_range("size", self.size, MIN_INPUT, MAX_INPUT)
        check_choice("objective", self.objective, OBJECTIVES)
        check_positive("batch_size", self.batch_size)
        check_positive("width", self.width)
        if self.steps is not None and self.epochs is not None:
            raise UserError("give --steps or --epochs, not both")
        for name in ("steps", "epochs"):
            if getattr(self, name) is not None:
                check_positive(name, getattr(self, name))


def _split(cfg: DomainTrainConfig, split: str):
    from genmed.data import load_training_data

    return load_training_data(cfg.source, size=cfg.size, spatial_dims=2, split=split,
                              seed=cfg.seed, n_patients=cfg.n_patients)


def _classes(ds) -> tuple[str, ...]:
    """The class names when the data carries labels of at least two classes, else ()."""
    if not ds.labelled or not ds.class_names:
        return ()
    present = set(ds.labels[ds.labels >= 0].tolist())
    return tuple(ds.class_names) if len(present) >= 2 else ()


def _balanced_accuracy(model, ds) -> float | None:
    """Balanced accuracy of the class head on labelled items of `ds` (None: none)."""
    known = ds.labels >= 0
    if not bool(known.any()):
        return None
    pred = model.predict(ds.images[known]).numpy()
    y = ds.labels[known].numpy()
    return float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))


def train_domain_extractor(out: str | Path, cfg: DomainTrainConfig = DomainTrainConfig()) -> dict:
    """Train on `cfg.source`'s training split, write the encoder to `out` (.safetensors) and
    return a summary (weights hash, data, objective, held-out balanced accuracy if labelled)."""
    from genmed.models import balanced_weights, build_model
    from genmed.train.fitting import DictDataset, fit

    if Path(out).suffix != ".safetensors":
        raise UserError(f"{out}: the extractor file must end in .safetensors")
    train = _split(cfg, "train")
    if len(train) < 2:
        raise UserError(f"{cfg.source}: the training split has {len(train)} slice(s); need >= 2")
    names = _classes(train)
    objective = cfg.objective if cfg.objective != "auto" else ("both" if names else "contrastive")
    if objective != "contrastive" and not names:
        raise UserError(f"--objective {objective} needs labels of >= 2 classes; {cfg.source} has "
                        "none in its training split (use --objective contrastive)")
    labels = train.labels.clone()
    weights = balanced_weights(labels[labels >= 0].numpy(), len(names)) if names else ()
    batch = min(cfg.batch_size, len(train))
    steps = cfg.steps or (cfg.epochs * -(-len(train) // batch) if cfg.epochs else 1000)
    torch.manual_seed(cfg.seed)
    model = build_model("extractor", size=cfg.size, width=cfg.width, classes=len(names),
                        objective=objective, class_weights=weights)
    fit(model, DictDataset(image=train.images, label=labels), steps=steps, batch_size=batch,
        seed=cfg.seed, device=cfg.device, precision=cfg.precision)
    model = model.cpu().eval()
    heldout = None
    if names:
        try:
            heldout = _balanced_accuracy(model, _split(cfg, "val"))
        except UserError:  # too few patients for a validation split
            heldout = None
    info = train.info
    meta = {
        "name": DOMAIN_EXTRACTOR, "width": cfg.width, "depth": model.net.depth,
        "input_size": cfg.size, "size": cfg.size, "n_aux": 0, "class_names": ",".join(names),
        "seed": cfg.seed, "source": str(cfg.source), "modality": info.get("modality") or "",
        "units": info.get("units") or "", "phantom": str(str(cfg.source) == "phantom").lower(),
        "objective": objective, "steps": steps, "labelled": str(bool(names)).lower(),
        "trained_on": (f"{cfg.source} split=train patients={len(set(train.patient_ids))} "
                       f"slices={len(train)} objective={objective} steps={steps} size={cfg.size}"),
    }
    if heldout is not None:
        meta["heldout_balanced_accuracy"] = f"{heldout:.3f}"
    digest = save_phantom_cnn(model.net, out, meta)
    return {
        "path": str(out), "name": DOMAIN_EXTRACTOR, "weights_hash": digest, "objective": objective,
        "modality": meta["modality"], "units": meta["units"], "size": cfg.size, "steps": steps,
        "n_train": len(train), "train_patients": len(set(train.patient_ids)),
        "class_names": list(names), "heldout_balanced_accuracy": heldout, "config": asdict(cfg),
    }
