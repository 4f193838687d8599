"""beta-VAE with KL annealing (Kingma & Welling 2014; Higgins et al. 2017; Bowman et al. 2016).

Per sample, with Gaussian decoder N(x; x_hat, sigma^2 I) over D = n_elements and prior N(0, I):
  loss = [ |x - x_hat|^2 / (2 sigma^2) (+ D log sigma if sigma is learned)
           + beta(step) * sum_j max(KL_j, free_bits) ] / D
  KL_j = 1/2 (mu_j^2 + exp(logvar_j) - 1 - logvar_j)   (Kingma & Welling 2014, appendix B),
divided by D so learning rates do not depend on image size.
KL annealing: beta(step) = beta * min(1, step / kl_warmup_steps) (linear warm-up).
Free bits (Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive
Flow"): a latent dimension whose KL is under `free_bits` nats costs `free_bits`, so the
optimiser gains nothing by collapsing it onto the prior. The paper clamps the minibatch mean
of each group's KL; here the clamp is per sample and per dimension, so a sample's loss does
not depend on its batch mates (the engine's contract: per-sample losses).
Calibrated decoder (Rybkin, Daniilidis & Levine 2021, "Simple and Effective VAE Training with
Calibrated Decoders", sigma-VAE): `likelihood="learned"` learns one shared log sigma by the
same gradient steps; its optimum is sigma^2 = E|x - x_hat|^2 / D, the decoder's mean squared
residual, which balances reconstruction against the KL instead of a hand-set weight.

Where `step` comes from: `batch["step"]` (an int or 0-d tensor, the optimiser step) if the
engine provides it; otherwise the model's own counter buffer `step`, which counts training-mode
loss calls and is saved in `state_dict()` (so a resumed run continues the warm-up).

Prior for sampling (`prior`): "standard" decodes z ~ N(0, I), the prior the ELBO is trained
against; its samples are blotches wherever the aggregate posterior q(z) = E_x q(z|x) leaves
holes in N(0, I) (the "prior hole" problem; Rosca et al. 2018, Dai & Wipf 2019). "fitted" keeps
running moments of q(z) during training (buffers, like BatchNorm's running statistics: the
batch's exact E[z] = mean(mu) and E[z z^T] = mean(mu mu^T + diag(sigma^2)), averaged with
weight max(`prior_momentum`, 1 / updates)) and samples from the full-covariance Gaussian with
those moments: ex-post density estimation (Ghosh et al. 2020) with one Gaussian, the simplest
form of Dai & Wipf's second stage. Training and the ELBO are unchanged.

Decoders: `decoder="resize"` (the default since the checkerboard fix) upsamples by nearest
resize + 3x3 convolution (Odena et al. 2016); `"transposed"` is MONAI's stride-2 transposed
convolution, which stamps a stride-period checkerboard on samples. A saved config without the
key is a run from before the option and rebuilds with "transposed" (`saved_defaults`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import Batch, GenerativeModel, ModelConfig, evaluating, randn
from genmed.models.nets import VectorVAE, var_autoencoder

LOG_SIGMA_MIN = math.log(1e-3)  # floor of a learned decoder log std ([-1, 1] units)
BITS_8BIT_OFFSET = math.log2(128)  # [-1, 1] -> [0, 256): density / 128 per dim = +7 bits


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
    likelihood_sigma: float = 0.1  # decoder std in data units ([-1, 1] images); initial if learned
    likelihood: Literal["fixed", "learned"] = "fixed"  # decoder std: `likelihood_sigma` or learned
    free_bits: float = 0.0  # KL floor per latent dimension and sample, nats (0: off)
    decoder: Literal["resize", "transposed"] = "resize"  # image upsampling (see module doc)
    upsample: Literal["nearest", "linear"] = "nearest"  # resize decoder: nearest or (bi/tri)linear
    prior: Literal["standard", "fitted"] = "standard"  # sampling prior (see module doc)
    prior_momentum: float = 0.01  # "fitted": weight of each training batch in the running moments

    # values of fields added after runs were saved, for a saved config that lacks them: what
    # those runs were built with (a new model gets the field's default instead)
    saved_defaults: ClassVar[Mapping[str, Any]] = {"decoder": "transposed"}

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("latent_dim", "hidden", "depth", "likelihood_sigma"):
            check_positive(name, getattr(self, name))
        check_positive("beta", self.beta, allow_zero=True)
        check_positive("kl_warmup_steps", self.kl_warmup_steps, allow_zero=True)
        check_positive("free_bits", self.free_bits, allow_zero=True)
        check_choice("likelihood", self.likelihood, ("fixed", "learned"))
        check_choice("decoder", self.decoder, ("resize", "transposed"))
        check_choice("upsample", self.upsample, ("nearest", "linear"))
        check_choice("prior", self.prior, ("standard", "fitted"))
        if not 0 < self.prior_momentum <= 1:
            raise UserError(f"prior_momentum={self.prior_momentum} must be in (0, 1]")
        if self.likelihood == "learned" and self.likelihood_sigma < 1e-3:
            raise UserError(f"likelihood_sigma={self.likelihood_sigma}: a learned sigma starts at "
                            "or above its floor 1e-3")
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
                                       cfg.latent_dim, cfg.num_res_units, cfg.decoder, cfg.upsample)
        if cfg.likelihood == "learned":  # only then: a fixed-sigma state_dict keeps its keys
            self.log_sigma = nn.Parameter(torch.tensor(math.log(cfg.likelihood_sigma)))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        if cfg.prior == "fitted":  # only then: a standard-prior state_dict keeps its keys
            d = cfg.latent_dim
            self.register_buffer("q_mean", torch.zeros(d))
            self.register_buffer("q_second", torch.eye(d))
            self.register_buffer("q_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _track_aggregate(self, mu: Tensor, logvar: Tensor) -> None:
        """Fold one batch's exact aggregate-posterior moments into the running ones."""
        mu, var = mu.float(), logvar.float().exp()
        second = (mu.T @ mu + torch.diag(var.sum(0))) / len(mu)
        self.q_updates += 1
        w = max(self.config.prior_momentum, 1.0 / float(self.q_updates))
        self.q_mean.lerp_(mu.mean(0), w)
        self.q_second.lerp_(second, w)

    def prior_moments(self) -> tuple[Tensor, Tensor]:
        """(mean (D,), covariance (D, D)) of the sampling prior: N(0, I), or the running
        moments of the aggregate posterior for prior="fitted"."""
        d, device = self.config.latent_dim, self.step.device
        if self.config.prior == "standard" or int(self.q_updates) == 0:
            return torch.zeros(d, device=device), torch.eye(d, device=device)
        cov = self.q_second - torch.outer(self.q_mean, self.q_mean)
        return self.q_mean.clone(), 0.5 * (cov + cov.T)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of q(z|x), each (B, latent_dim)."""
        mu, logvar = self.net.encode_forward(x)
        return mu, logvar.clamp(-30.0, 20.0)

    def decode(self, z: Tensor) -> Tensor:
        """Decoder mean x_hat (B, *sample_shape); images squashed to [-1, 1] by tanh."""
        out = self.net.decode_forward(z, False)
        return torch.tanh(out) if self.config.data_kind == "image" else out

    def log_sigma_now(self) -> Tensor:
        """0-d log of the decoder std in data units: learned (floored at 1e-3) or fixed."""
        if self.config.likelihood == "learned":
            return self.log_sigma.float().clamp(min=LOG_SIGMA_MIN)
        return torch.tensor(math.log(self.config.likelihood_sigma), device=self.step.device)

    def _rec(self, sq: Tensor) -> Tensor:
        """|x - x_hat|^2 / (2 sigma^2), (B,) nats."""
        if self.config.likelihood == "learned":
            return sq / (2 * (2 * self.log_sigma_now()).exp())
        return sq / (2 * self.config.likelihood_sigma**2)

    def _neg_elbo(self, x: Tensor, n_draws: int, generator: torch.Generator | None,
                  normalised: bool) -> Tensor:
        """(B,) -ELBO in nats (beta = 1, no free bits), mean over `n_draws` posterior draws;
        without the Gaussian's normalising term D (log sigma + log(2 pi) / 2) unless
        `normalised`."""
        check_positive("n_draws", n_draws)
        with evaluating(self):
            shape = (x.shape[0], self.config.latent_dim)
            vals = []
            for _ in range(n_draws):
                sq, kl, _ = self._terms(x, randn(shape, generator, x.device, x.dtype))
                vals.append(self._rec(sq) + kl.sum(1))
            out = torch.stack(vals).mean(0)
            if normalised:
                out = out + x[0].numel() * (self.log_sigma_now().to(out.device) + 0.5 * math.log(2 * math.pi))
        return out

    def beta_at(self, step: int) -> float:
        """KL weight after `step` optimiser steps (linear warm-up)."""
        warm = self.config.kl_warmup_steps
        return self.config.beta * (1.0 if warm == 0 else min(1.0, step / warm))

    def _terms(self, x: Tensor, z_noise: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """(|x - x_hat|^2 (B,), KL per latent dimension (B, latent_dim) in nats, x_hat) for one
        posterior draw z = mu + sigma_q * noise; a training step of a prior="fitted" model also
        updates the aggregate posterior's running moments."""
        mu, logvar = self.encode(x)
        if self.config.prior == "fitted" and self.training and torch.is_grad_enabled():
            self._track_aggregate(mu.detach(), logvar.detach())
        noise = torch.randn_like(mu) if z_noise is None else z_noise
        x_hat = self.decode(mu + (0.5 * logvar).exp() * noise)
        sq = (x.float() - x_hat.float()).pow(2).flatten(1).sum(1)
        kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - 1 - logvar.float())
        return sq, kl, x_hat

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample (rec + beta(step) KL) / n_elements; also logs rec, kl (nats), beta and
        sigma (the decoder std)."""
        x = batch["image"]
        if "step" in batch:
            step = int(torch.as_tensor(batch["step"]).reshape(-1)[0])
        else:
            step = int(self.step)
            if self.training and torch.is_grad_enabled():
                self.step += 1
        beta = self.beta_at(step)
        sq, kl, _ = self._terms(x, None)
        n_el = x[0].numel()
        log_sigma = self.log_sigma_now()
        rec = self._rec(sq)
        fit = rec + n_el * log_sigma if self.config.likelihood == "learned" else rec
        kl_cost = kl.clamp(min=self.config.free_bits) if self.config.free_bits else kl
        return {"loss": (fit + beta * kl_cost.sum(1)) / n_el, "rec": rec.mean().detach(),
                "kl": kl.sum(1).mean().detach(), "beta": torch.tensor(beta),
                "sigma": log_sigma.detach().exp()}

    def elbo_bits_per_dim(self, x: Tensor, *, n_draws: int = 1,
                          generator: torch.Generator | None = None) -> Tensor:
        """(B,) negative ELBO (beta = 1, no free bits) in bits per dimension, averaged over
        `n_draws` posterior draws made with `generator`:
          -ELBO = E_q[ |x - x_hat|^2 / (2 sigma^2) + D log sigma + D/2 log(2 pi) ] + KL  (nats),
          bits/dim = -ELBO / (D ln 2) + log2(128) for images.
        The Gaussian decoder is a density on continuous data, not a probability of 8-bit
        values (no discretised likelihood, no dequantisation). Images in [-1, 1] are counted
        in 8-bit units u = 128 (x + 1) in [0, 256): the density in u is the density in x
        divided by 128 per dimension, hence + log2(128) = 7 bits, the usual convention that
        makes figures comparable with continuous-density models reported on 8-bit scales
        (Theis et al. 2016, "A note on the evaluation of generative models"). Vectors get no
        offset (bits per dimension of the raw density). Lower is better; with a fixed sigma
        the figure depends on the hand-set sigma, which a learned sigma removes."""
        bits = self._neg_elbo(x, n_draws, generator, normalised=True) / (x[0].numel() * math.log(2))
        return bits + (BITS_8BIT_OFFSET if self.config.data_kind == "image" else 0.0)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """`n` decoder means at z from the sampling prior (N(0, I), or the fitted Gaussian:
        z = mean + L eps with L L^T = covariance); unconditional, `steps` ignored."""
        check_positive("n", n)
        if cond is not None:
            raise UserError("the vae family is unconditional: do not pass class labels")
        device = self.step.device
        z = randn((n, self.config.latent_dim), generator, device)
        if self.config.prior == "fitted":
            mean, cov = self.prior_moments()
            jitter = 1e-5 * float(cov.diagonal().mean()) * torch.eye(len(mean), device=device)
            z = mean + z @ torch.linalg.cholesky(cov + jitter).T
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
        return self._neg_elbo(x, n_draws, generator, normalised=False)
