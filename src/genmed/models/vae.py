"""beta-VAE with KL annealing (Kingma & Welling 2014; Higgins et al. 2017; Bowman et al. 2016).

Per sample, with Gaussian decoder N(x; x_hat, sigma^2 I) and prior N(0, I):
  loss = [ |x - x_hat|^2 / (2 sigma^2) + beta(step) * KL(q(z|x) || p(z)) ] / n_elements
  KL = 1/2 sum(mu^2 + exp(logvar) - 1 - logvar)   (Kingma & Welling 2014, appendix B),
divided by the number of pixels so learning rates do not depend on image size.
KL annealing: beta(step) = beta * min(1, step / kl_warmup_steps) (linear warm-up).

Where `step` comes from: `batch["step"]` (an int or 0-d tensor, the optimiser step) if the
engine provides it; otherwise the model's own counter buffer `step`, which counts training-mode
loss calls and is saved in `state_dict()` (so a resumed run continues the warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import Batch, GenerativeModel, ModelConfig, evaluating, randn
from genmed.models.nets import VectorVAE, var_autoencoder


@dataclass(frozen=True, kw_only=True)
class VAEConfig(ModelConfig):
    """beta-VAE on MONAI's VarAutoEncoder (images) or an MLP encoder/decoder (vectors)."""

    channels: tuple[int, ...] = (32, 64, 64)  # encoder channels, one stride-2 level each
    latent_dim: int = 64  # z dimension
    num_res_units: int = 0  # MONAI residual units per level (>0 normalises a 1-channel map last)
    hidden: int = 128  # vector MLP width
    depth: int = 3  # vector MLP hidden layers
    beta: float = 1.0  # final KL weight (beta-VAE)
    kl_warmup_steps: int = 1000  # steps of linear beta warm-up from 0 (0: no warm-up)
    likelihood_sigma: float = 0.1  # decoder std in data units ([-1, 1] images)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("latent_dim", "hidden", "depth", "likelihood_sigma"):
            check_positive(name, getattr(self, name))
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("kl_warmup_steps", self.kl_warmup_steps, allow_zero=True)
        if not self.channels:
            raise UserError("channels must name at least one level")
        self.check_divisible(2 ** len(self.channels), f"the encoder halves it {len(self.channels)} times")


class VAEModel(GenerativeModel):
    """Encoder q(z|x), decoder p(x|z); one phase ("main")."""

    family = "vae"

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = cfg = config
        if cfg.data_kind == "vector":
            self.net: nn.Module = VectorVAE(cfg.size, cfg.latent_dim, cfg.hidden, cfg.depth)
        else:
            self.net = var_autoencoder(cfg.spatial_dims, cfg.in_channels, cfg.size, cfg.channels,
                                       cfg.latent_dim, cfg.num_res_units)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of q(z|x), each (B, latent_dim)."""
        mu, logvar = self.net.encode_forward(x)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder mean x_hat (B, *sample_shape); images squashed to [-1, 1] by tanh."""
        out = self.net.decode_forward(z, False)
        return torch.tanh(out) if self.config.data_kind == "image" else out

    def beta_at(self, step: int) -> float:
        """KL weight after `step` optimiser steps (linear warm-up)."""
        warm = self.config.kl_warmup_steps
        return self.config.beta * (1.0 if warm == 0 else min(1.0, step / warm))

    def _terms(self, x: Tensor, z_noise: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x)
        noise = torch.randn_like(mu) if z_noise is None else z_noise
        x_hat = self.decode(mu + (0.5 * logvar).exp() * noise)
        rec = (x.float() - x_hat.float()).pow(2).flatten(1).sum(1) / (2 * self.config.likelihood_sigma**2)
        kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float()).sum(1)
        return rec, kl, x_hat

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample (rec + beta(step) KL) / n_elements; also logs rec, kl (nats) and beta."""
        x = batch["image"]
        if "step" in batch:
            step = int(torch.as_tensor(batch["step"]).reshape(-1)[0])
        else:
            step = int(self.step)
            if self.training and torch.is_grad_enabled():
                self.step += 1
        beta = self.beta_at(step)
        rec, kl, _ = self._terms(x, None)
        n_el = x[0].numel()
        return {"loss": (rec + beta * kl) / n_el, "rec": rec.mean().detach(),
                "kl": kl.mean().detach(), "beta": torch.tensor(beta)}

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """`n` decoder means at z ~ N(0, I) (prior sampling); unconditional, `steps` ignored."""
        check_positive("n", n)
        if cond is not None:
            raise UserError("the vae family is unconditional: do not pass class labels")
        device = self.step.device
        z = randn((n, self.config.latent_dim), generator, device)
        with evaluating(self):
            return self.decode(z)

    def reconstruct(self, x: Tensor, **kw) -> Tensor:
        """Decoder mean at the posterior mean, decode(mu(x))."""
        with evaluating(self):
            return self.decode(self.encode(x)[0])

    def anomaly_score(self, x: Tensor, kind: Literal["recon", "elbo"] = "recon", *,
                      n_draws: int = 4, generator: torch.Generator | None = None) -> Tensor:
        """(B,) anomaly score: "recon" = mean squared error of `reconstruct(x)`;
        "elbo" = negative ELBO in nats (beta = 1, up to the Gaussian constant), averaged over
        `n_draws` posterior samples drawn with `generator`."""
        check_choice("kind", kind, ("recon", "elbo"))
        if kind == "recon":
            return (self.reconstruct(x) - x).pow(2).flatten(1).mean(1)
        check_positive("n_draws", n_draws)
        with evaluating(self):
            shape = (x.shape[0], self.config.latent_dim)
            vals = []
            for _ in range(n_draws):
                rec, kl, _ = self._terms(x, randn(shape, generator, x.device, x.dtype))
                vals.append(rec + kl)
        return torch.stack(vals).mean(0)
