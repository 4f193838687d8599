"""Image classifier (MONAI `DenseNet` or `Classifier`) with class-weighted cross-entropy.

Per-sample loss: w_y * CE(logits, y), with w the class weights (e.g. inversely proportional to
class frequency, `balanced_weights`); the engine takes the batch mean. Training batches can be
augmented on the fly (`augment`: "flip" or MONAI's "classic" affine + intensity set, drawn
from torch's RNG so that a resumed run repeats it). DenseNet: Huang et al. 2017.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from genmed.data.augment import AUGMENTS, AugmentKind, augment
from genmed.errors import UserError, check_choice
from genmed.models.base import Batch, ModelConfig
from genmed.models.supervised import SupervisedModel


@dataclass(frozen=True, kw_only=True)
class ClassifierConfig(ModelConfig):
    """A `classes`-way classifier of (B, in_channels, H, W) inputs; batch["label"] (B,) ints."""

    classes: int = 3  # output classes
    backbone: Literal["densenet", "classifier"] = "densenet"
    shape: tuple[int, ...] = ()  # input (H, W) when not size x size (the "classifier" needs it)
    channels: tuple[int, ...] = (16, 32, 64)  # "classifier": strided residual conv channels
    init_features: int = 16  # DenseNet stem channels
    growth_rate: int = 8  # DenseNet growth rate
    blocks: tuple[int, ...] = (2, 2, 2)  # DenseNet dense layers per block
    class_weights: tuple[float, ...] = ()  # cross-entropy weight per class (empty: all 1)
    augment: AugmentKind = "none"  # training-batch augmentation ("flip", "classic")
    image_channels: int = 1  # leading channels that are image (the rest: masks) for "classic"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("backbone", self.backbone, ("densenet", "classifier"))
        check_choice("augment", self.augment, AUGMENTS)
        if self.classes < 2:
            raise UserError(f"classes={self.classes}: a classifier needs >= 2 classes")
        if self.class_weights and (len(self.class_weights) != self.classes
                                   or min(self.class_weights) < 0):
            raise UserError(f"class_weights={self.class_weights} must be {self.classes} "
                            "non-negative numbers")
        if self.shape and len(self.shape) != self.spatial_dims:
            raise UserError(f"shape={self.shape} must have {self.spatial_dims} sides")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.in_channels, *(self.shape or (self.size,) * self.spatial_dims))


def balanced_weights(labels: np.ndarray, classes: int) -> tuple[float, ...]:
    """Class weights n / (K n_k), 0 for a class absent from `labels` (sklearn's "balanced")."""
    counts = np.bincount(np.asarray(labels, np.int64), minlength=classes).astype(np.float64)
    w = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 0.0)
    return tuple(float(v) for v in w)


class Classifier(SupervisedModel):
    """`predict` gives class indices (N,); `predict_proba` the softmax (N, classes)."""

    family = "classifier"

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        if cfg.backbone == "densenet":
            from monai.networks.nets import DenseNet

            self.net = DenseNet(spatial_dims=cfg.spatial_dims, in_channels=cfg.in_channels,
                                out_channels=cfg.classes, init_features=cfg.init_features,
                                growth_rate=cfg.growth_rate, block_config=tuple(cfg.blocks),
                                bn_size=2)
        else:
            from monai.networks.nets import Classifier as MonaiClassifier

            self.net = MonaiClassifier(in_shape=cfg.input_shape, classes=cfg.classes,
                                       channels=tuple(cfg.channels),
                                       strides=(2,) * len(cfg.channels), num_res_units=1)
        weights = torch.tensor(cfg.class_weights or (1.0,) * cfg.classes, dtype=torch.float32)
        self.register_buffer("class_weights", weights, persistent=False)

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        x = augment(batch["image"], self.config.augment, self.config.image_channels)
        y = batch["label"].long()
        ce = torch.nn.functional.cross_entropy(self.net(x).float(), y, reduction="none")
        return {"loss": self.class_weights[y] * ce}

    def postprocess(self, out: Tensor) -> Tensor:
        return out.argmax(1)

    def predict_proba(self, x: Tensor, batch_size: int = 256) -> Tensor:
        """Class probabilities (N, classes) on the CPU; (0, classes) for no input."""
        if len(x) == 0:
            return torch.zeros((0, self.config.classes))
        return super().predict_proba(x, batch_size)
