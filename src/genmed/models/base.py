"""The one interface every trainable model implements (design.md, "The model protocol").

A model is an `nn.Module` whose `forward(batch, phase)` returns that phase's losses, so the one
training engine (and DDP, which only syncs gradients through `forward`) drives every family the
same way. Single-network families (diffusion, VAE) have one phase, "main"; a GAN has two,
"discriminator" then "generator", each with its own parameters and optimiser. A new family
plugs in by subclassing `GenerativeModel`; the loop never branches on the family. Supervised
networks (segmenter, classifier, regressor: `models/supervised.py`) implement the same protocol
so the same engine trains them; they predict instead of sampling.

Batches are dicts: "image" (B, C, *spatial) float in [-1, 1] (CT: HU through the abdomen
window, see `genmed.data.transforms`), optional "label" (B,) long, optional "mask".
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from genmed.errors import UserError, check_choice, check_positive

Batch = dict[str, Tensor]


class GenerativeModel(nn.Module, abc.ABC):
    """Base class of the three families. Subclasses implement `loss` and `sample`."""

    family: str = "base"
    config: "ModelConfig"  # the frozen dataclass that rebuilds this model (registry)

    def phases(self) -> tuple[str, ...]:
        """Optimisation phases, stepped in this order each training step."""
        return ("main",)

    def phase_parameters(self, phase: str) -> Iterator[nn.Parameter]:
        """Parameters optimised in `phase` (default: all)."""
        return self.parameters()

    def phase_lr_scale(self, phase: str) -> float:
        """`phase`'s learning rate as a multiple of the recipe's (default 1: one learning rate
        for every phase; a GAN's `d_lr_scale` gives its discriminator its own, TTUR)."""
        return 1.0

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

    def training_data(self, dataset: Dataset) -> Dataset:
        """The data set the engine trains on, given the one it loaded: `dataset` itself, or a
        cheaper view of it (latent diffusion: each item's latents, encoded once)."""
        return dataset

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """Images for the engine's end-of-run grid, given a few training items `batch`:
        `len(batch["image"])` samples, classes in turn for a class-conditional model."""
        n = batch["image"].shape[0]
        num_classes = self.config.num_classes
        cond = torch.arange(n) % num_classes if num_classes else None
        return self.sample(n, cond=cond, steps=steps, generator=generator)

    def reconstruct(self, x: Tensor, **kw) -> Tensor:
        """Map images to the model's reconstruction of them (same shape)."""
        raise UserError(f"the {self.family} family has no reconstruction")

    def anomaly_score(self, x: Tensor, **kw) -> Tensor:
        """(B,) score, higher = more anomalous."""
        raise UserError(f"the {self.family} family has no anomaly score")


DataKind = Literal["image", "vector"]


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Fields every family config shares. `data_kind="image"`: batches (B, C, *[size]*dims) on
    a MONAI/conv backbone; `"vector"`: batches (B, size) on an MLP backbone (in_channels and
    spatial_dims are then ignored). `num_classes` > 0 makes the model class-conditional."""

    spatial_dims: int = 2  # 2 (slices) or 3 (volumes)
    in_channels: int = 1  # image channels
    size: int = 32  # image side in pixels/voxels, or the vector dimension D
    num_classes: int = 0  # 0: unconditional
    data_kind: DataKind = "image"

    # Fields added after runs were saved whose default then changed behaviour: the value a
    # saved config that lacks the key was built with. `build_model_from_config` fills them in;
    # a new model (`build_model`) gets the field's default. Not a dataclass field.
    saved_defaults: ClassVar[Mapping[str, Any]] = {}

    def __post_init__(self) -> None:
        check_choice("data_kind", self.data_kind, ("image", "vector"))
        check_choice("spatial_dims", self.spatial_dims, (2, 3))
        for name in ("in_channels", "size"):
            check_positive(name, getattr(self, name))
        check_positive("num_classes", self.num_classes, allow_zero=True)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (C, *[size]*spatial_dims) or (size,)."""
        if self.data_kind == "vector":
            return (self.size,)
        return (self.in_channels, *([self.size] * self.spatial_dims))

    def check_divisible(self, factor: int, why: str) -> None:
        """UserError naming the size unless an image size is a multiple of `factor`."""
        if self.data_kind == "image" and self.size % factor:
            raise UserError(f"size={self.size} is not divisible by {factor} ({why})")


def device_of(model: nn.Module) -> torch.device:
    """The device a model's weights live on (where its inputs must go); CPU without weights."""
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def randn(shape: tuple[int, ...], generator: torch.Generator | None,
          device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> Tensor:
    """Standard normal noise drawn on the generator's device, then moved to `device`."""
    gen_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=gen_device, dtype=dtype).to(device)


@contextmanager
def evaluating(module: nn.Module) -> Iterator[nn.Module]:
    """Put `module` in eval mode (and no_grad) for the block; restore its mode afterwards."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            yield module
    finally:
        module.train(was_training)


def check_labels(cond: Tensor | None, num_classes: int, n: int) -> Tensor | None:
    """Validate class labels for sampling: (n,) ints in [0, num_classes) or None."""
    if cond is None:
        return None
    if num_classes == 0:
        raise UserError("class labels given but the model is unconditional (num_classes=0)")
    cond = torch.as_tensor(cond).long().reshape(-1)
    if cond.numel() == 1 and n > 1:
        cond = cond.expand(n)
    if cond.numel() != n:
        raise UserError(f"got {cond.numel()} class labels for {n} samples")
    if int(cond.min()) < 0 or int(cond.max()) >= num_classes:
        raise UserError(f"class labels must be in 0..{num_classes - 1}, got {cond.tolist()[:8]}")
    return cond


def batch_labels(batch: Batch, num_classes: int, device: torch.device) -> Tensor | None:
    """The batch's (B,) class labels for a conditional model (None if unconditional)."""
    if not num_classes:
        return None
    if "label" not in batch:
        raise UserError(f"the model is class-conditional (num_classes={num_classes}) "
                        "but the batch has no 'label'")
    return batch["label"].long().to(device)


def pixel_mean(per_pixel: Tensor, weight: Tensor | None = None) -> Tensor:
    """(B,) mean of a per-pixel loss (B, C, *spatial) per image; with `weight` (B, 1 or C,
    *spatial), the weighted mean sum(w * l) / sum(w)."""
    if weight is None:
        return per_pixel.flatten(1).mean(1)
    weight = weight.expand_as(per_pixel)
    return (weight * per_pixel).flatten(1).sum(1) / weight.flatten(1).sum(1)
