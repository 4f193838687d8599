"""Synthetic slices for augmentation: the generator interface, adapters and a memorisation check.

A `SyntheticSource` is any callable `(class_index, n, seed) -> (n, H, W) float32 in [-1, 1]`.
`model_generator` wraps a class-conditional `genmed.models.GenerativeModel`, `run_generator`
a finished `genmed train --cond label` run, and `train_generators` trains one model per
family on the study's own (imbalanced) training slices with `genmed.train.train`.

Memorisation (design.md, "Evaluation honesty"): `genmed.metrics.memorisation_audit` compares
every synthetic slice's nearest-training-slice distance (RMS pixel difference) with the same
distance for held-out real slices. Synthetic slices much closer to the training set than
held-out real slices are (near-)copies.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from genmed.errors import UserError

SyntheticSource = Callable[[int, int, int], np.ndarray]


def _to_size(x: torch.Tensor, size: int) -> np.ndarray:
    """(n, 1, h, w) in [-1, 1] -> (n, size, size) numpy, area/bilinear resized when needed."""
    import torch.nn.functional as F

    x = x.detach().float().cpu()
    if x.shape[-1] != size:
        mode = "area" if x.shape[-1] > size else "bilinear"
        x = F.interpolate(x, size=(size, size), mode=mode)
    return x[:, 0].clamp(-1, 1).numpy().astype(np.float32)


def model_generator(model, size: int, steps: int | None = None, batch: int = 64,
                    conditional: bool = True) -> SyntheticSource:
    """A `SyntheticSource` sampling a `GenerativeModel`: class-conditional (label = class index),
    or, with `conditional=False`, a model trained on one class only (the class is ignored)."""

    def generate(cls: int, n: int, seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(int(seed))
        out = []
        with torch.no_grad():
            for b in range(0, n, batch):
                k = min(batch, n - b)
                cond = torch.full((k,), int(cls), dtype=torch.long) if conditional else None
                out.append(_to_size(model.sample(k, cond=cond, steps=steps, generator=g), size))
        return np.concatenate(out) if out else np.zeros((0, size, size), np.float32)

    return generate


def per_class(sources: Mapping[int, SyntheticSource]) -> SyntheticSource:
    """One source per class (e.g. unconditional models each trained on one class's slices)."""

    def generate(cls: int, n: int, seed: int) -> np.ndarray:
        if cls not in sources:
            raise UserError(f"no generator for class {cls}")
        return sources[cls](cls, n, seed)

    return generate


def run_generator(run_dir: str | os.PathLike, size: int, steps: int | None = None) -> SyntheticSource:
    """A `SyntheticSource` from a class-conditional `genmed train --cond label` run (EMA weights)."""
    from genmed.train import load_run

    model, cfg = load_run(run_dir)
    if cfg.cond != "label" or cfg.spatial_dims != 2:
        raise UserError(f"{run_dir}: needs a 2D class-conditional run (genmed train --cond label)")
    return model_generator(model, size, steps)


# the recorded study (pipeline_augment.json) sampled its diffusion model with DDIM
DEFAULT_OPTIONS: dict[str, dict] = {"diffusion": {"sampler": "ddim"}}


def supports_labels(family: str) -> bool:
    """Whether `family` can be class-conditional (the registry's capabilities)."""
    from genmed.models import capabilities

    return "label" in capabilities(family).conditioning


def train_generators(families: Sequence[str], images: np.ndarray, labels: np.ndarray, patient_ids: Sequence[str],
                     out: str | os.PathLike, *, size: int, steps: int, classes: Sequence[int] = (1, 2),
                     seed: int = 0, sample_steps: int | None = None,
                     batch_size: int = 32, device: str = "auto", precision: str = "auto",
                     options: Mapping[str, dict] | None = None,
                     autoencoder: str | None = None) -> dict[str, SyntheticSource]:
    """Train generators on (N, H, W) slices with `genmed.train.train` (each family's registry
    recipe "augment"); {family: source}. `autoencoder`: a trained autoencoder run the ldm
    family reuses instead of training its own stage one.

    Families that take labels get one class-conditional model; the others (the VAE samples
    unconditionally) get one model per class in `classes`, trained on that class's slices.
    `options` maps a family to its model options (default: DDIM sampling for diffusion).
    """
    from genmed.data.datasets import ImageDataset, _resize_batch
    from genmed.train import TrainConfig, load_run, train

    x = _resize_batch(torch.from_numpy(images)[:, None], size, "area")
    y = torch.from_numpy(np.asarray(labels, np.int64))
    pids = np.asarray(patient_ids).astype(str)
    sources: dict[str, SyntheticSource] = {}
    for fam in families:
        cond = supports_labels(fam)
        jobs = {None: np.arange(len(y))} if cond else {c: np.nonzero(y.numpy() == c)[0] for c in classes}
        per: dict[int, SyntheticSource] = {}
        for cls, idx in jobs.items():
            if len(idx) < 2:
                raise UserError(f"too few training slices of class {cls} to train a {fam} generator")
            run_dir = Path(out) / (f"gen_{fam}" if cls is None else f"gen_{fam}_class{cls}")
            cfg = TrainConfig(family=fam, recipe="augment", size=size, cond="label" if cond else "none",
                              steps=steps, batch_size=min(batch_size, len(idx)), seed=seed,
                              ckpt_every=steps, sample_n=16, log_every=max(1, steps // 20),
                              out=str(run_dir), sample_steps=sample_steps, device=device,
                              precision=precision, autoencoder=autoencoder if fam == "ldm" else None,
                              options=dict((options or DEFAULT_OPTIONS).get(fam, {})))
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            ds = ImageDataset(x[idx], y[idx], list(pids[idx]))
            train(cfg, dataset=ds)
            model, _ = load_run(run_dir)
            src = model_generator(model, images.shape[-1], sample_steps, conditional=cond)
            if cls is None:
                sources[fam] = src
            else:
                per[int(cls)] = src
        if per:
            sources[fam] = per_class(per)
    return sources


MEMO_COLUMNS = ("source", "n", "median_nn_dist", "median_heldout_nn_dist", "ratio", "share_flagged",
                "share_heldout_below", "mannwhitney_p")


def memorisation(synthetic: Mapping[str, np.ndarray], train: np.ndarray, held_out: np.ndarray) -> list[dict]:
    """One row per source, from `genmed.metrics.memorisation_audit` in pixel space (RMS).

    `ratio` = median nearest-training distance of the synthetic slices / that of held-out
    real slices (< 1: closer to the training set than new real data is); `share_flagged` =
    fraction closer than the 5% quantile of the held-out distances (about 0.05 if no copying).
    """
    from genmed.metrics.memorisation import flatten_rms, memorisation_audit

    t, h = flatten_rms(train), flatten_rms(held_out)
    rows = []
    for name, imgs in synthetic.items():
        a = memorisation_audit(flatten_rms(imgs), t, h)
        rows.append({"source": name, "n": len(imgs), "median_nn_dist": a.median_sample_distance,
                     "median_heldout_nn_dist": a.median_heldout_distance,
                     "ratio": a.median_sample_distance / a.median_heldout_distance
                     if a.median_heldout_distance > 0 else float("nan"),
                     "share_flagged": a.share_flagged, "share_heldout_below": a.share_heldout_below,
                     "mannwhitney_p": a.mannwhitney_p})
    return rows
