"""A domain feature extractor trained by the engine: supervised and/or self-supervised.

The network is the `PhantomCNN` encoder (models/encoder.py) at the data's resolution; what
`genmed.metrics` uses afterwards is its pooled features (`features`). Per-sample losses:
- "contrastive": NT-Xent between two random views of each slice (Chen et al. 2020, SimCLR,
  eq. 1; temperature tau; cosine similarity of projections z = g(h) through a two-layer MLP
  head g that is dropped after training, as SimCLR does). Needs no labels. Sample i's loss is
  the mean of l(2i-1, 2i) and l(2i, 2i-1); the other 2(B-1) views of the batch are negatives.
- "supervised": class-weighted cross-entropy of the class head on the first view (items with
  label < 0, i.e. unlabelled, contribute 0);
- "both": their sum, the contrastive term scaled by `contrastive_weight`.
Views are drawn by `genmed.data.augment.contrastive_view` from torch's RNG (the engine seeds it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from genmed.data.augment import contrastive_view
from genmed.errors import UserError, check_choice
from genmed.models.base import Batch, ModelConfig
from genmed.models.encoder import MAX_INPUT, MIN_INPUT, PhantomCNN
from genmed.models.supervised import SupervisedModel

Objective = Literal["contrastive", "supervised", "both"]


@dataclass(frozen=True, kw_only=True)
class DomainExtractorConfig(ModelConfig):
    """Encoder at `size` px (2-D, one channel); `classes` > 0 adds the class head's loss."""

    width: int = 16  # base channels of the encoder (widths w, 2w, 4w, 8w, 8w, ...)
    depth: int = 0  # conv blocks (0: 4 at <= 64 px, one more per doubling)
    classes: int = 0  # class-head outputs (0: unlabelled data)
    objective: Objective = "contrastive"
    class_weights: tuple[float, ...] = ()  # cross-entropy weight per class (empty: all 1)
    temperature: float = 0.2  # NT-Xent tau (SimCLR: 0.1-0.5; lower for small batches)
    projection_dim: int = 64  # output of the projection head g
    contrastive_weight: float = 1.0  # weight of the NT-Xent term under "both"
    crop_scale: tuple[float, float] = (0.6, 1.0)  # area kept by the random resized crop
    jitter: float = 0.2  # contrast factor 1 +- jitter, brightness +- jitter (model units)
    noise: float = 0.03  # maximal SD of the added Gaussian noise (model units)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("objective", self.objective, ("contrastive", "supervised", "both"))
        if self.spatial_dims != 2 or self.data_kind != "image":
            raise UserError("the domain extractor takes 2-D image slices")
        if not MIN_INPUT <= self.size <= MAX_INPUT:
            raise UserError(f"size={self.size} must be between {MIN_INPUT} and {MAX_INPUT} pixels")
        if self.objective != "contrastive" and self.classes < 2:
            raise UserError(f"objective={self.objective!r} needs labels of >= 2 classes "
                            f"(classes={self.classes}); unlabelled data trains 'contrastive'")
        if self.class_weights and len(self.class_weights) != self.classes:
            raise UserError(f"class_weights={self.class_weights} must be {self.classes} numbers")
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise UserError(f"crop_scale={self.crop_scale} must satisfy 0 < low <= high <= 1")
        if self.temperature <= 0 or self.width < 1 or self.projection_dim < 1:
            raise UserError("temperature, width and projection_dim must be positive")


def nt_xent(z1: Tensor, z2: Tensor, temperature: float) -> Tensor:
    """Per-pair NT-Xent (Chen et al. 2020, eq. 1) of projections z1, z2 (B, D): (B,) losses,
    each the mean over the pair's two directions; cosine similarity / `temperature`."""
    b = z1.shape[0]
    z = nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = (torch.arange(2 * b, device=z.device) + b) % (2 * b)
    per_view = nn.functional.cross_entropy(sim, target, reduction="none")
    return 0.5 * (per_view[:b] + per_view[b:])


class DomainExtractor(SupervisedModel):
    """`features(x)`: (B, feature_dim) pooled encoder features; `predict`: class indices."""

    family = "extractor"

    def __init__(self, config: DomainExtractorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = PhantomCNN(width=config.width, n_classes=max(config.classes, 1), n_aux=0,
                              input_size=config.size, depth=config.depth or None)
        dim = self.net.feature_dim
        self.projector = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, config.projection_dim))
        weights = torch.tensor(config.class_weights or (1.0,) * max(config.classes, 1))
        self.register_buffer("class_weights", weights.float(), persistent=False)

    def features(self, x: Tensor) -> Tensor:
        return self.net.features(x)

    def output(self, x: Tensor) -> Tensor:
        if self.config.classes < 2:
            raise UserError("this extractor was trained without labels: it has no classifier")
        return self.net.class_head(self.net.features(x))

    def postprocess(self, out: Tensor) -> Tensor:
        return out.argmax(1)

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """The training inputs themselves (an extractor has no image output to show)."""
        return batch["image"][:, :1].float().cpu()

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        cfg = self.config
        x = batch["image"]
        b = x.shape[0]
        view = lambda: contrastive_view(x, cfg.crop_scale, cfg.jitter, cfg.noise)  # noqa: E731
        if cfg.objective == "supervised":
            h = self.net.features(view())
        else:
            h = self.net.features(torch.cat([view(), view()]))
        out: dict[str, Tensor] = {}
        total = torch.zeros(b, device=x.device)
        if cfg.objective != "supervised":
            z = self.projector(h)
            con = nt_xent(z[:b], z[b:], cfg.temperature)
            total = total + (cfg.contrastive_weight if cfg.objective == "both" else 1.0) * con
            out["contrastive"] = con.detach()
        if cfg.objective != "contrastive":
            y = batch["label"].long().to(x.device)
            known = y >= 0
            ce = nn.functional.cross_entropy(self.net.class_head(h[:b]).float(), y.clamp_min(0),
                                             reduction="none")
            ce = torch.where(known, self.class_weights[y.clamp_min(0)] * ce, torch.zeros_like(ce))
            total = total + ce
            out["class"] = ce.detach()
        out["loss"] = total
        return out
