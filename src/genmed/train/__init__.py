"""One training engine for every generative family (diffusion, GAN, VAE).

    from genmed.train import TrainConfig, train, resume, load_run
    result = train(TrainConfig(family="diffusion", steps=2000, out="runs/ddpm"))
    model, cfg = load_run("runs/ddpm")          # EMA weights, ready to sample
    images = model.sample(16)

Names are imported on first use (PEP 562), so `genmed --help` does not pay for torch/MONAI.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

_EXPORTS = {
    "genmed.train.config": ("TrainConfig",),
    "genmed.train.engine": ("RunResult", "train"),
    "genmed.train.run": ("load_run", "resume", "sample_run"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
