"""One training engine for every generative family (diffusion, GAN, VAE).

    from genmed.train import TrainConfig, train, resume, load_run
    result = train(TrainConfig(family="diffusion", steps=2000, out="runs/ddpm"))
    model, cfg = load_run("runs/ddpm")          # EMA weights, ready to sample
    images = model.sample(16)
"""

from genmed.train.config import TrainConfig
from genmed.train.engine import RunResult, train
from genmed.train.run import load_run, resume, sample_run

__all__ = ["RunResult", "TrainConfig", "load_run", "resume", "sample_run", "train"]
