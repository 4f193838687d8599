"""`fit`: train any registry model on an in-memory data set with the one engine.

The experiments (pipeline, applications, comparison) call this instead of writing a loop, so
they get the engine's devices, bf16/AMP, EMA, clipping, atomic checkpoints and logs:

    seg = fit(build_model("segmenter", size=64), DictDataset(image=x, target=y), steps=500)

The run folder `out` (default: a temporary one, deleted afterwards) receives the engine's
config.yaml, checkpoints/ and metrics.jsonl, so a kept run can be reloaded with `load_run`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genmed.errors import UserError, check_choice
from genmed.models.base import GenerativeModel


class DictDataset(Dataset):
    """Rows of equally long tensors as batch dicts {"image": ..., "target": ..., "label": ...};
    a "label" of zeros is added when none is given (the engine's batches always carry one)."""

    def __init__(self, **tensors: Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise UserError(f"tensors of different lengths: "
                            f"{ {k: len(v) for k, v in tensors.items()} }")
        self.tensors = dict(tensors)
        if "label" not in self.tensors:
            self.tensors["label"] = torch.zeros(lengths.pop(), dtype=torch.long)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def fit(model: GenerativeModel, dataset: Dataset, *, steps: int, recipe: str = "default",
        batch_size: int = 16, seed: int = 0, out: str | Path | None = None,
        device: str = "auto", precision: str = "fp32", resume: bool = False,
        **overrides: Any) -> GenerativeModel:
    """Train `model` on `dataset` for `steps` optimiser steps with `genmed.train.train`.

    Optimiser, schedule and EMA come from the model's registry recipe `recipe` (of the model's
    variant where it has one, e.g. the "resnet_r1" GAN); `overrides` are further `TrainConfig`
    fields (e.g. lr=...). `resume` continues the run in `out` from its newest checkpoint
    (the engine saves one every `ckpt_minutes`). With a weight EMA (recipe ema_decay > 0)
    the EMA weights are loaded into `model` at the end. Returns `model` in eval mode, on the
    training device.
    """
    from genmed.train.config import TrainConfig
    from genmed.train.engine import train
    from genmed.train.run import load_run

    item = dataset[0] if len(dataset) else {}
    spatial = next(iter(item.values())).ndim - 1 if item else 2
    variant = getattr(model.config, "variant", None)
    if isinstance(variant, str):  # the recipe is the variant's (`genmed.models.recipe`)
        overrides["options"] = {"variant": variant, **overrides.get("options", {})}
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(out) if out is not None else Path(tmp) / "run"
        settings = dict(ckpt_every=steps, keep_checkpoints=1, log_every=max(1, steps // 10),
                        sample_n=4)  # what `overrides` may change
        cfg = TrainConfig(family=model.family, recipe=recipe, data="memory",
                          spatial_dims=3 if spatial >= 3 else 2, steps=steps,
                          batch_size=min(batch_size, len(dataset)), precision=precision,
                          device=device, seed=seed, out=str(run), **{**settings, **overrides})
        if resume and out is None:
            raise UserError("resume needs the run folder `out` to continue")
        result = train(cfg, model=model, dataset=dataset, resume=resume)
        if cfg.ema_decay > 0:
            load_run(run, ema=True, model=model, device=result.device)
    return model.eval()


@dataclass(frozen=True, kw_only=True)
class Compute:
    """Device and numerics of an experiment's training (a field of the experiment configs)."""

    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    precision: str = "fp32"  # "auto" (bf16 where fast), "bf16", "fp16" (CUDA) or "fp32"

    def __post_init__(self) -> None:
        check_choice("device", self.device, ("auto", "cpu", "cuda"))
        check_choice("precision", self.precision, ("auto", "bf16", "fp16", "fp32"))

    def fit(self, model: GenerativeModel, dataset: Dataset, *, steps: int, seed: int,
            recipe: str = "short", batch_size: int = 16, **overrides: Any) -> GenerativeModel:
        """`fit` on this device and precision with the model's registry recipe `recipe`."""
        return fit(model, dataset, steps=steps, recipe=recipe, batch_size=batch_size, seed=seed,
                   device=self.device, precision=self.precision, **overrides)
