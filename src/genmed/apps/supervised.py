"""Supervised networks (denoiser, translator, segmenter, classifier) trained by the one engine.

`genmed.train.train` drives anything that follows `GenerativeModel` (per-sample losses from
`loss(batch)`), so the supervised baselines of the applications are wrapped here instead of
getting a second training loop: `SupervisedNet` maps batch["image"] -> a prediction and
compares it with batch["target"] (regression: L1 / MSE) or batch["label"] (classification:
cross-entropy; segmentation: MONAI `DiceLoss` + cross-entropy, per sample).
`fit()` is the one call the applications use to train any model on an in-memory data set.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from genmed.errors import check_choice
from genmed.models.base import GenerativeModel

Task = Literal["l1", "mse", "segment", "classify"]
TASKS: tuple[str, ...] = ("l1", "mse", "segment", "classify")


def unet(spatial_dims: int, in_channels: int, out_channels: int,
         channels: tuple[int, ...] = (16, 32, 64)) -> nn.Module:
    """MONAI residual UNet (Kerfoot et al. 2018), stride 2 per level."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                channels=channels, strides=(2,) * (len(channels) - 1), num_res_units=1)


def classifier(in_channels: int, size: int, num_classes: int,
               channels: tuple[int, ...] = (16, 32, 64)) -> nn.Module:
    """MONAI `Classifier` (strided residual conv stack + linear head) for (C, size, size)."""
    from monai.networks.nets import Classifier

    return Classifier(in_shape=(in_channels, size, size), classes=num_classes, channels=channels,
                      strides=(2,) * len(channels), num_res_units=1)


class SupervisedNet(GenerativeModel):
    """A supervised network behind the engine's model interface (one phase, "main").

    task "l1"/"mse": regress batch["target"] (same shape as the output); output clamped to
    [-1, 1] only at prediction time. "segment": batch["target"] (B, 1, *spatial) integer
    classes, output logits (B, K, *spatial). "classify": batch["label"] (B,), logits (B, K).
    """

    family = "supervised"

    def __init__(self, net: nn.Module, task: Task, out_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.task = check_choice("task", task, TASKS)
        self.net = net
        self.out_shape = out_shape  # (C, *spatial) of one input, for `sample`'s blank input

    def loss(self, batch: Mapping[str, Tensor], phase: str = "main") -> dict[str, Tensor]:
        out = self.net(batch["image"]).float()
        if self.task == "classify":
            loss = nn.functional.cross_entropy(out, batch["label"].long(), reduction="none")
        elif self.task == "segment":
            from monai.losses import DiceLoss

            target = batch["target"].long()
            dice = DiceLoss(to_onehot_y=True, softmax=True, reduction="none")(out, target)
            ce = nn.functional.cross_entropy(out, target[:, 0], reduction="none")
            loss = dice.flatten(1).mean(1) + ce.flatten(1).mean(1)
        else:
            diff = out - batch["target"].float()
            loss = (diff.abs() if self.task == "l1" else diff.pow(2)).flatten(1).mean(1)
        return {"loss": loss}

    @torch.no_grad()
    def predict(self, x: Tensor, batch_size: int = 64) -> Tensor:
        """Regression: output in [-1, 1]; segment: class map (B, 1, ...); classify: (B,) class."""
        was = self.training
        self.eval()
        outs = [self.net(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]
        self.train(was)
        out = torch.cat(outs)
        if self.task == "classify":
            return out.argmax(1)
        if self.task == "segment":
            return out.argmax(1, keepdim=True)
        return out.clamp(-1, 1)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        """Predictions for `n` blank (all -1, i.e. air) inputs: what the engine's end-of-run
        grid shows; a supervised net has no sampling of its own."""
        x = torch.full((n, *self.out_shape), -1.0, device=next(self.parameters()).device)
        y = self.predict(x)
        return y.float() if y.ndim > 1 else y.float().reshape(n, 1, 1, 1)


class DictDataset(Dataset):
    """Rows of equally long tensors as batch dicts {"image": ..., "target": ..., "label": ...}."""

    def __init__(self, **tensors: Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(v) for k, v in tensors.items()} }")
        self.tensors = tensors
        if "label" not in tensors:
            self.tensors["label"] = torch.zeros(lengths.pop(), dtype=torch.long)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def fit(model: GenerativeModel, dataset: Dataset, *, steps: int, batch_size: int = 16,
        lr: float = 1e-3, seed: int = 0, out: str | Path | None = None, ema: bool = False,
        precision: str = "fp32",
        betas: tuple[float, float] = (0.9, 0.999)) -> GenerativeModel:
    """Train `model` on `dataset` with `genmed.train.train` (AdamW, cosine LR, clipping).

    The run folder `out` (default: a temporary one, deleted) holds the engine's checkpoints and
    logs. With `ema`, the EMA weights (decay 0.999) are copied into `model` at the end.
    """
    from genmed.train import TrainConfig, train

    spatial = next(iter(dataset[0].values())).ndim - 1 if len(dataset) else 2
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(out) if out is not None else Path(tmp) / "run"
        cfg = TrainConfig(family=model.family, data="memory", spatial_dims=2 if spatial < 3 else 3,
                          steps=steps, batch_size=min(batch_size, len(dataset)), lr=lr,
                          warmup=min(20, steps // 10), ema_decay=0.999 if ema else 0.0,
                          precision=precision, device="cpu", seed=seed, betas=betas, ckpt_every=steps,
                          keep_checkpoints=1, log_every=max(1, steps // 10), sample_n=4,
                          out=str(run))
        train(cfg, model=model, dataset=dataset)
        if ema:
            from genmed.train import load_run

            load_run(run, ema=True, model=model)
    return model.eval()
