"""Warm start: a new run that begins from the weights of a trained one.

`TrainConfig.init` (`genmed train --init RUN`) names the trained run: fine-tuning a model on
your own scans, or training on with another recipe (e.g. an autoencoder without its
adversarial term). Unlike `--resume`, the optimiser, learning-rate schedule, EMA and step count
start anew, and the new run has its own config.

The newest checkpoint's EMA weights (its model weights when it kept no EMA) are copied into
the tensors of the new model with the same names. One model must be the other plus or minus
whole parts: a discriminator the new recipe adds starts fresh, one it drops is left behind.
Any other difference (another width, latent size or family) is refused before training.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from genmed.errors import UserError
from genmed.train import checkpoint as ckpt


def source_weights(run_dir: str | Path, family: str) -> tuple[dict[str, torch.Tensor], Path]:
    """The weights of the newest checkpoint of `run_dir` (EMA when saved; safetensors, so no
    code is loaded), refused when the run is of another family than `family`."""
    run_dir = Path(run_dir)
    files = ckpt.latest_checkpoint(run_dir)
    meta = ckpt.read_meta(files)
    record = meta.get("config", {}).get("model") if isinstance(meta.get("config"), dict) else None
    source = record.get("family") if isinstance(record, dict) else None
    if source is not None and source != family:
        raise UserError(f"--init {run_dir}: trained as family {source!r}, not {family!r}")
    path = files.path("ema" if meta.get("ema") else "model")
    return ckpt.read_weights(path, averaged=bool(meta.get("ema"))), path


def warm_start(model: nn.Module, run_dir: str | Path, family: str) -> tuple[int, int]:
    """Copy a trained run's weights into `model` in place; (tensors copied, tensors in the
    model). A `UserError` when the two networks differ other than by whole parts."""
    tensors, path = source_weights(run_dir, family)
    own = model.state_dict()
    mine, theirs = set(own), set(tensors)
    if not (mine <= theirs or theirs <= mine):
        missing = sorted(mine - theirs)[0]
        raise UserError(f"--init {run_dir}: its network differs from this one ({missing} is not in "
                        f"{path.name}); the family options must match but for added or dropped parts")
    common = sorted(mine & theirs)
    for key in common:
        if tensors[key].shape != own[key].shape or tensors[key].dtype != own[key].dtype:
            raise UserError(f"--init {run_dir}: {key} is {tuple(tensors[key].shape)} {tensors[key].dtype} "
                            f"there and {tuple(own[key].shape)} {own[key].dtype} here; the family options "
                            "(widths, latent channels, size) must match")
    model.load_state_dict({k: tensors[k] for k in common}, strict=False)
    return len(common), len(own)
