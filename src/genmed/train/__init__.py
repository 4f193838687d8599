"""One training engine for everything trainable in `genmed.models`.

    from genmed.train import TrainConfig, train, resume, load_run, fit
    result = train(TrainConfig(family="diffusion", steps=2000, out="runs/ddpm"))
    train(TrainConfig(family="ldm", out="runs/ldm"))   # autoencoder, then latent diffusion
    model, cfg = load_run("runs/ddpm")          # EMA weights, ready to sample
    distill("runs/ddpm", "runs/ddpm-cd")        # a 1-4 step consistency student
    images = model.sample(16)
    seg = fit(build_model("segmenter", size=64), DictDataset(image=x, target=y), steps=500)

Names are imported on first use (PEP 562), so `genmed --help` does not pay for torch/MONAI.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

_EXPORTS = {
    "genmed.train.config": ("TrainConfig",),
    "genmed.train.distill": ("distill",),
    "genmed.train.engine": ("RunResult",),
    "genmed.train.fitting": ("Compute", "DictDataset", "fit"),
    "genmed.train.run": ("load_run", "resume", "sample_run"),
    "genmed.train.stages": ("train", "train_ldm"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
