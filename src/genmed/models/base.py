"""The one interface every generative family implements (design.md, "The model protocol").

A model is an `nn.Module` whose `forward(batch, phase)` returns that phase's losses, so the one
training engine (and DDP, which only syncs gradients through `forward`) drives every family the
same way. Single-network families (diffusion, VAE) have one phase, "main"; a GAN has two,
"discriminator" then "generator", each with its own parameters and optimiser. A new family
plugs in by subclassing `GenerativeModel`; the loop never branches on the family.

Batches are dicts: "image" (B, C, *spatial) float in [-1, 1] (CT: HU through the abdomen
window, see `genmed.data.transforms`), optional "label" (B,) long, optional "mask".
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from genmed.errors import UserError

Batch = dict[str, Tensor]


class GenerativeModel(nn.Module, abc.ABC):
    """Base class of the three families. Subclasses implement `loss` and `sample`."""

    family: str = "base"

    def phases(self) -> tuple[str, ...]:
        """Optimisation phases, stepped in this order each training step."""
        return ("main",)

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        """Parameters optimised in `phase` (default: all)."""
        return self.parameters()

    def forward(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:  # noqa: D401
        """Losses of one training step for `phase` (DDP hooks need this entry point)."""
        return self.loss(batch, phase)

    @abc.abstractmethod
    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        """Per-sample losses: key "loss" is (B,) and is what the engine reduces and
        back-propagates; other keys are logged (scalars or (B,) tensors)."""

    @abc.abstractmethod
    def sample(
        self,
        n: int,
        cond: Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """`n` new images (n, C, *spatial) in [-1, 1]; `cond` (n,) class labels or None."""

    def reconstruct(self, x: Tensor, **kw) -> Tensor:
        """Map images to the model's reconstruction of them (same shape)."""
        raise UserError(f"the {self.family} family has no reconstruction")

    def anomaly_score(self, x: Tensor, **kw) -> Tensor:
        """(B,) score, higher = more anomalous."""
        raise UserError(f"the {self.family} family has no anomaly score")
