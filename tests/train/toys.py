"""Tiny GenerativeModels and data for engine tests (the real families live in genmed.models)."""

from __future__ import annotations

import os
import sys
import time

import torch
from torch import nn
from torch.utils.data import Dataset

from genmed.models.base import GenerativeModel, ModelConfig

TOY_CONFIG = ModelConfig(size=8)  # every model carries the config that describes it


class ToyDenoiser(GenerativeModel):
    """One phase: predict the Gaussian noise added to the image (draws from the global RNG)."""

    family = "toy"

    def __init__(self, channels: int = 8, sigma: float = 0.5, bn: bool = False) -> None:
        super().__init__()
        self.config = TOY_CONFIG
        self.sigma = sigma
        norm = nn.BatchNorm2d(channels) if bn else nn.Identity()
        self.net = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), norm, nn.SiLU(),
                                 nn.Conv2d(channels, 1, 3, padding=1))

    def loss(self, batch, phase="main"):
        x = batch["image"]
        eps = torch.randn_like(x)
        pred = self.net(x + self.sigma * eps)
        return {"loss": (pred.float() - eps).pow(2).flatten(1).mean(1)}

    def sample(self, n, cond=None, steps=None, generator=None):
        z = torch.randn(n, 1, 8, 8, generator=generator, device=generator.device if generator else None)
        return (z - self.sigma * self.net(z)).clamp(-1, 1)


class ToyAutoencoder(GenerativeModel):
    """One deterministic phase: reconstruct the image (for DDP equivalence)."""

    family = "toy"

    def __init__(self) -> None:
        super().__init__()
        self.config = TOY_CONFIG
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Tanh(), nn.Conv2d(4, 1, 3, padding=1))

    def loss(self, batch, phase="main"):
        x = batch["image"]
        return {"loss": (self.net(x) - x).pow(2).flatten(1).mean(1)}

    def sample(self, n, cond=None, steps=None, generator=None):
        return torch.tanh(self.net(torch.randn(n, 1, 8, 8, generator=generator)))


class ToyDivergingOnRank1(ToyAutoencoder):
    """The toy autoencoder whose loss turns NaN on DDP rank 1 only, at step index 5, just before
    the check at step 6: rank 0's losses are finite until then, so only the engine's all-reduced
    flag can stop both ranks at that check (a local check leaves rank 0 waiting in a collective)."""

    def loss(self, batch, phase="main"):
        out = super().loss(batch, phase)
        if os.environ.get("RANK") == "1" and int(batch["step"]) == 5:
            out["loss"] = out["loss"] * float("nan")
        return out


class ToyGAN(GenerativeModel):
    """Two phases, discriminator then generator, each with its own parameters.

    `random_z=False` derives z from the batch so the run is deterministic (DDP equivalence)."""

    family = "toy-gan"

    def __init__(self, zdim: int = 8, random_z: bool = True) -> None:
        super().__init__()
        self.config = TOY_CONFIG
        self.zdim, self.random_z = zdim, random_z
        self.generator = nn.Sequential(nn.Linear(zdim, 64), nn.Tanh())
        self.discriminator = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.LeakyReLU(0.2),
                                           nn.Linear(16, 1))

    def phases(self):
        return ("discriminator", "generator")

    def phase_parameters(self, phase):
        return (self.discriminator if phase == "discriminator" else self.generator).parameters()

    def _z(self, x):
        if self.random_z:
            return torch.randn(x.shape[0], self.zdim, device=x.device)
        return x.flatten(1)[:, : self.zdim].flip(0)

    def loss(self, batch, phase="main"):
        x = batch["image"]
        fake = self.generator(self._z(x)).view_as(x)
        if phase == "discriminator":
            d = nn.functional.softplus(-self.discriminator(x)) + nn.functional.softplus(
                self.discriminator(fake.detach()))
        else:
            d = nn.functional.softplus(-self.discriminator(fake))
        return {"loss": d.float().flatten(), "d_mean": self.discriminator(x).detach().mean()}

    def sample(self, n, cond=None, steps=None, generator=None):
        z = torch.randn(n, self.zdim, generator=generator)
        return self.generator(z).view(n, 1, 8, 8)


class Blobs(Dataset):
    """`n` 8x8 images in [-1, 1]: a bright square at a random place; optional delay per item."""

    def __init__(self, n: int = 64, seed: int = 0, delay_s: float = 0.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.full((n, 1, 8, 8), -0.8)
        for i in range(n):
            r, c = torch.randint(0, 5, (2,), generator=g).tolist()
            self.images[i, :, r : r + 3, c : c + 3] = 0.8
        self.labels = torch.randint(0, 3, (n,), generator=g)
        self.delay_s = delay_s

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        if self.delay_s:
            time.sleep(self.delay_s)
        return {"image": self.images[i], "label": self.labels[i], "patient_id": f"p{i // 4}"}


def make(name: str) -> GenerativeModel:
    """A toy model by name (for subprocess scripts)."""
    return {"denoiser": ToyDenoiser, "autoencoder": ToyAutoencoder,
            "gan": lambda: ToyGAN(random_z=False), "diverge-rank1": ToyDivergingOnRank1}[name]()


def toy_config(out: str, steps: int):
    """The config of the subprocess runs (and of their in-process references)."""
    from genmed.train import TrainConfig

    return TrainConfig(family="diffusion", steps=steps, batch_size=8, lr=1e-2, warmup=3,
                       ema_decay=0.9, precision="fp32", log_every=2, ckpt_every=4,
                       keep_checkpoints=100, out=out)


if __name__ == "__main__":  # python toys.py MODEL OUT STEPS [resume] [delay]: subprocess runs
    from genmed.train import resume, train

    name, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "train"
    delay = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    torch.manual_seed(0)
    model, data = make(name), Blobs(64, delay_s=delay)
    if mode == "resume":
        resume(out, model=model, dataset=data)
    else:
        train(toy_config(out, steps), model=model, dataset=data)
