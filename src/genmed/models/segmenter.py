"""Segmentation network (MONAI UNet / BasicUNet) with Dice + cross-entropy, trained by the engine.

Loss per sample: soft Dice (Milletari et al. 2016, V-Net) over all classes plus pixel-mean
cross-entropy, i.e. MONAI's `DiceCELoss` per item. With `patch` > 0 each training item is a
random `patch`-sized crop, half of them centred on a foreground pixel (MONAI
`RandCropByPosNegLabel`, re-seeded from torch's RNG so an engine resume repeats it), and
inference tiles the whole image with `sliding_window_inference` (Gaussian-weighted overlap), so
images larger than the patch work unchanged. `components` > 0 keeps that many largest connected
foreground components of the predicted mask (MONAI `KeepLargestConnectedComponent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from genmed.data.augment import AUGMENTS, AugmentKind, augment, torch_seed
from genmed.errors import UserError, check_choice
from genmed.models.base import Batch, ModelConfig
from genmed.models.supervised import Norm, SupervisedModel, monai_unet, tiled


@dataclass(frozen=True, kw_only=True)
class SegmenterConfig(ModelConfig):
    """Segmenter: `out_channels` classes (0 = background); batch["target"] (B, 1, *spatial) ints."""

    out_channels: int = 2  # classes including background
    backbone: Literal["unet", "basicunet"] = "unet"
    channels: tuple[int, ...] = (16, 32, 64)  # UNet channels per level (BasicUNet: first 5 used)
    num_res_units: int = 1  # UNet residual units per level
    norm: Norm = "instance"  # UNet normalisation ("batch" needs batches of >= 2)
    patch: int = 0  # train on random patch-sized crops, infer by sliding window (0: whole image)
    overlap: float = 0.25  # sliding-window overlap fraction
    components: int = 0  # keep this many largest connected foreground components (0: all)
    augment: AugmentKind = "none"  # training-batch augmentation ("flip": left-right)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("backbone", self.backbone, ("unet", "basicunet"))
        check_choice("norm", self.norm, ("instance", "batch"))
        check_choice("augment", self.augment, AUGMENTS)
        if self.out_channels < 2:
            raise UserError(f"out_channels={self.out_channels}: a segmenter needs >= 2 classes")
        if self.patch and self.patch < 16:
            raise UserError(f"patch={self.patch} must be 0 (whole image) or >= 16 pixels")
        if not 0 <= self.overlap < 1:
            raise UserError(f"overlap={self.overlap} must be in [0, 1)")
        if self.components < 0:
            raise UserError(f"components={self.components} must be >= 0")


class Segmenter(SupervisedModel):
    """`predict` gives the class map (N, 1, *spatial); `predict_proba` the softmax."""

    family = "segmenter"

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config
        if cfg.backbone == "unet":
            self.net = monai_unet(cfg.spatial_dims, cfg.in_channels, cfg.out_channels,
                                  cfg.channels, cfg.num_res_units, cfg.norm)
        else:
            from monai.networks.nets import BasicUNet

            feats = (tuple(cfg.channels) + (cfg.channels[-1] * 2,) * 5)[:5] + (cfg.channels[0],)
            self.net = BasicUNet(spatial_dims=cfg.spatial_dims, in_channels=cfg.in_channels,
                                 out_channels=cfg.out_channels, features=feats)

    def _crops(self, image: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """One random patch per item, centred on foreground or background with equal odds."""
        from monai.transforms import RandCropByPosNegLabel

        size = (self.config.patch,) * self.config.spatial_dims
        if min(image.shape[2:]) < self.config.patch:
            raise UserError(f"images {tuple(image.shape[2:])} are smaller than the patch {size}")
        crop = RandCropByPosNegLabel(spatial_size=size, pos=1.0, neg=1.0, num_samples=1,
                                     allow_smaller=False)
        crop.set_random_state(torch_seed())
        xs, ys = [], []
        for img, lab in zip(image, target, strict=True):
            both = torch.as_tensor(crop(torch.cat([img, lab.to(img.dtype)]), label=lab)[0])
            xs.append(both[:img.shape[0]])
            ys.append(both[img.shape[0]:].round().long())
        return torch.stack(xs), torch.stack(ys)

    def loss(self, batch: Batch, phase: str = "main") -> dict[str, Tensor]:
        from monai.losses import DiceLoss

        x, target = batch["image"], batch["target"].long()
        if self.config.patch:
            x, target = self._crops(x, target)
        if self.config.augment != "none":
            both = augment(torch.cat([x, target.to(x.dtype)], 1), self.config.augment, x.shape[1])
            x, target = both[:, :x.shape[1]], both[:, x.shape[1]:].round().long()
        out = self.net(x).float()
        dice = DiceLoss(to_onehot_y=True, softmax=True, reduction="none")(out, target)
        ce = torch.nn.functional.cross_entropy(out, target[:, 0], reduction="none")
        return {"loss": dice.flatten(1).mean(1) + ce.flatten(1).mean(1)}

    def output(self, x: Tensor) -> Tensor:
        if not self.config.patch:
            return self.net(x)
        return tiled(self.net, x, self.config.patch, self.config.overlap)

    def to_labels(self, probs: Tensor) -> Tensor:
        """Class map (N, 1, *spatial) long from probabilities: argmax, then the largest
        connected foreground components when `components` > 0 (binary: threshold 0.5)."""
        pred = probs.argmax(1, keepdim=True)
        if self.config.components > 0:
            from monai.transforms import KeepLargestConnectedComponent

            keep = KeepLargestConnectedComponent(
                applied_labels=list(range(1, self.config.out_channels)),
                num_components=self.config.components)
            pred = torch.stack([torch.as_tensor(keep(p)) for p in pred])
        return pred.long()

    def postprocess(self, out: Tensor) -> Tensor:
        return self.to_labels(out.softmax(1))
