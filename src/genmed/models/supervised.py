"""Supervised networks behind the one model protocol, so the one engine trains them too.

A supervised model maps batch["image"] (B, C, *spatial) in [-1, 1] to a prediction and its
`loss(batch)` returns per-sample losses, exactly like a generative family; the engine reduces
them and gets devices, bf16/AMP, DDP, EMA, checkpoints and resume for free. Three kinds:
`Regressor` (image -> image: denoising, translation; here), `Segmenter` (segmenter.py) and
`Classifier` (classifier.py). They do not sample: `sample` refuses, `predict` is their output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from genmed.errors import UserError, check_choice, check_positive
from genmed.models.base import Batch, GenerativeModel, ModelConfig, device_of, evaluating, pixel_mean

Norm = Literal["instance", "batch"]


def monai_unet(spatial_dims: int, in_channels: int, out_channels: int, channels: tuple[int, ...],
               num_res_units: int = 1, norm: Norm = "instance") -> nn.Module:
    """MONAI residual UNet (Kerfoot et al. 2018), stride 2 per level."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=out_channels,
                channels=tuple(channels), strides=(2,) * (len(channels) - 1),
                num_res_units=num_res_units, norm=norm)


def tiled(net: nn.Module, x: Tensor, patch: int, overlap: float) -> Tensor:
    """`net` applied to `x` (B, C, *spatial) by MONAI `sliding_window_inference` over
    `patch`-sized tiles with Gaussian-weighted overlap, so a net trained on patches sees the
    same field of view on images of any size."""
    from monai.inferers import sliding_window_inference

    roi = (patch,) * (x.ndim - 2)
    return torch.as_tensor(sliding_window_inference(x, roi, sw_batch_size=256, predictor=net,
                                                    overlap=overlap, mode="gaussian"))


def random_crops(patch: int, *tensors: Tensor, focus: Tensor | None = None,
                 focus_fraction: float = 0.0) -> list[Tensor]:
    """The same random `patch`-sized crop of every tensor (B, C, *spatial), one offset per item,
    drawn from torch's RNG (so an engine resume repeats it). With a `focus` mask (B, 1, *spatial),
    a `focus_fraction` of the items whose mask is not empty are instead centred on one of its
    pixels, drawn at random (rare structures, e.g. lesions, seen in more crops)."""
    spatial = tensors[0].shape[2:]
    if min(spatial) < patch:
        raise UserError(f"images {tuple(spatial)} are smaller than the patch {patch}")
    starts = [torch.randint(0, n - patch + 1, (len(tensors[0]),)).tolist() for n in spatial]
    if focus is not None and focus_fraction > 0:
        for i in torch.nonzero(torch.rand(len(focus)) < focus_fraction).flatten().tolist():
            pixels = torch.nonzero(focus[i, 0] > 0)
            if len(pixels):
                centre = pixels[int(torch.randint(0, len(pixels), (1,)))].tolist()
                for d, (c, n) in enumerate(zip(centre, spatial, strict=True)):
                    starts[d][i] = min(max(c - patch // 2, 0), n - patch)
    crops: list[list[Tensor]] = [[] for _ in tensors]
    for i, corner in enumerate(zip(*starts)):
        index = tuple(slice(c, c + patch) for c in corner)
        for out, t in zip(crops, tensors, strict=True):
            out.append(t[(i, ...) + index])
    return [torch.stack(c) for c in crops]


class SupervisedModel(GenerativeModel):
    """Base of the supervised kinds: batched, device-aware `predict`; no sampling."""

    def output(self, x: Tensor) -> Tensor:
        """Raw network output (logits or image) for inputs `x`."""
        return self.net(x)

    def postprocess(self, out: Tensor) -> Tensor:
        """Map raw outputs of a batch to the prediction `predict` returns."""
        return out

    @torch.no_grad()
    def _in_chunks(self, fn, x: Tensor, batch_size: int) -> Tensor:
        """cat(fn(chunk)) over chunks of `x`, in eval mode on the model's device, on the CPU."""
        device = device_of(self)
        with evaluating(self):
            outs = [fn(x[i:i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)]
        if not outs:
            raise UserError("nothing to predict: the input is empty")
        return torch.cat(outs)

    def predict(self, x: Tensor, batch_size: int = 64) -> Tensor:
        """Predictions for `x` (N, C, *spatial), returned on the CPU."""
        return self._in_chunks(lambda b: self.postprocess(self.output(b).float()), x, batch_size)

    def predict_proba(self, x: Tensor, batch_size: int = 64) -> Tensor:
        """Softmax of the output over dim 1 (classes), on the CPU."""
        return self._in_chunks(lambda b: self.output(b).float().softmax(1), x, batch_size)

    def sample(self, n: int, cond: Tensor | None = None, steps: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
        raise UserError(f"a {self.family} does not sample images; use predict")

    def preview(self, batch: Batch, steps: int | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        """The predictions for a few training inputs (the engine's end-of-run grid)."""
        pred = self.predict(batch["image"])
        return pred.float() if pred.ndim > 2 else batch["image"][:, :1].float().cpu()


@dataclass(frozen=True, kw_only=True)
class RegressorConfig(ModelConfig):
    """Image-to-image regression (denoising, translation) on a MONAI UNet."""

    out_channels: int = 1  # output image channels
    channels: tuple[int, ...] = (16, 32, 64)  # UNet channels per level (stride 2 each)
    num_res_units: int = 1  # residual units per UNet level
    norm: Norm = "instance"  # normalisation layers
    loss: Literal["l1", "mse"] = "l1"  # per-pixel loss (pix2pix's L1 term: Isola et al. 2017 eq. 3)
    # predict target - image[:, :out_channels] (residual learning: DnCNN, Zhang et al. 2017;
    # RED-CNN's shortcut, Chen et al. 2017); output = input + net(input)
    residual: bool = False
    patch: int = 0  # train on random patch-sized crops, infer by sliding window (0: whole image)
    overlap: float = 0.25  # sliding-window overlap fraction
    # fraction of training crops centred on a pixel of batch["focus"] (e.g. lesion masks)
    focus_fraction: float = 0.0
    # extra per-pixel loss weight on batch["focus"] pixels: weights 1 + focus_weight there, 1
    # elsewhere, a weighted mean per image (the weight map of Ronneberger et al. 2015, eq. 1)
    focus_weight: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("loss", self.loss, ("l1", "mse"))
        if not 0 <= self.focus_fraction <= 1:
            raise UserError(f"focus_fraction={self.focus_fraction} must be in [0, 1]")
        check_positive("focus_weight", self.focus_weight, allow_zero=True)
        check_choice("norm", self.norm, ("instance", "batch"))
        if self.patch and self.patch < 16:
            raise UserError(f"patch={self.patch} must be 0 (whole image) or >= 16 pixels")
        if not 0 <= self.overlap < 1:
            raise UserError(f"overlap={self.overlap} must be in [0, 1)")
        if self.residual and self.in_channels < self.out_channels:
            raise UserError(f"residual needs in_channels >= out_channels, got {self.in_channels} "
                            f"< {self.out_channels}")
        self.check_divisible(2 ** (len(self.channels) - 1),
                             f"the UNet halves it {len(self.channels) - 1} times")


class Regressor(SupervisedModel):
    """Regress batch["target"] from batch["image"]; predictions clamped to [-1, 1]."""

    family = "regressor"

    def __init__(self, config: RegressorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = monai_unet(config.spatial_dims, config.in_channels, config.out_channels,
                              config.channels, config.num_res_units, config.norm)

    def training_pair(self, batch: Batch) -> tuple[Tensor, Tensor, Tensor | None]:
        """(input, target, per-pixel loss weights or None) of a training batch: random patches
        (focus-centred in part) or whole images; weights 1 + focus_weight on batch["focus"]."""
        x, target, focus = batch["image"], batch["target"], batch.get("focus")
        if self.config.patch:
            tensors = [x, target] if focus is None else [x, target, focus]
            x, target, *rest = random_crops(self.config.patch, *tensors, focus=focus,
                                            focus_fraction=self.config.focus_fraction)
            focus = rest[0] if rest else None
        if focus is None or not self.config.focus_weight:
            return x, target, None
        return x, target, 1 + self.config.focus_weight * (focus > 0).float()

    def _forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out + x[:, :self.config.out_channels] if self.config.residual else out

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        x, target, weight = self.training_pair(batch)
        diff = self._forward(x).float() - target.float()
        per_pixel = diff.abs() if self.config.loss == "l1" else diff.pow(2)
        return {"loss": pixel_mean(per_pixel, weight)}

    def output(self, x: Tensor) -> Tensor:
        if not self.config.patch:
            return self._forward(x)
        return tiled(self._forward, x, self.config.patch, self.config.overlap)

    def postprocess(self, out: Tensor) -> Tensor:
        return out.clamp(-1, 1)
