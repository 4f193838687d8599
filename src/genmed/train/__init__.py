"""One training engine for every generative family (diffusion, GAN, VAE).

    from genmed.train import TrainConfig, train, resume, load_run
    result = train(TrainConfig(family="diffusion", steps=2000, out="runs/ddpm"))
    model, cfg = load_run("runs/ddpm")          # EMA weights, ready to sample
    images = model.sample(16)

Names are imported on first use (PEP 562), so `genmed --help` does not pay for torch/MONAI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "genmed.train.config": ("TrainConfig",),
    "genmed.train.engine": ("RunResult", "train"),
    "genmed.train.run": ("load_run", "resume", "sample_run"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'genmed.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value
