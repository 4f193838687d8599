"""Residual GAN networks for 2D/3D images (`spatial_dims` first), any size b * 2**k (4 <= b < 8).

Generator: BigGAN / SNGAN residual up-blocks (Brock et al. 2019, Fig. 15a; Miyato et al. 2018,
appendix B.4) with class-conditional BatchNorm (de Vries et al. 2017; Miyato & Koyama 2018,
sec. 4). Its gain and bias come either from one table row per class (`embed_dim` 0), or, as
in BigGAN (sec. 4 and appendix B: "shared embedding"), from linear maps of one class embedding
that is also concatenated with z at the input. Table rows start equal for every class, so the
label does nothing until training parts them, and a class's row learns only from that class's
samples: on 64-px kidney crops after 600 steps the rows differed by 0.4% and the generator drew
the same crop for every label (docs/pipeline.md). Random embeddings give the label an effect
from the first step, and every class trains the same maps. Discriminator: residual down-blocks (same papers,
Fig. 15b), a StyleGAN2-style epilogue at the lowest resolution (minibatch-std channel, 3x3 conv:
Karras et al. 2020, "Analyzing and improving the image quality of StyleGAN", appendix), global
sum pooling and a projection head for labels (Miyato & Koyama 2018, eq. 3). Widths double from
`base_channels` at full resolution per halving, capped at `max_channels`: (32, 64, 64, ...) by
default, the widths of the diffusion UNet.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers import Conv, Norm
from torch import Tensor, nn

from genmed.models.nets import MinibatchStd


def residual_levels(size: int) -> tuple[int, int]:
    """(k, b) with size = b * 2**k, 4 <= b < 8, k >= 1: halvings from `size` to the b-pixel
    base; (0, size) when `size` has no such form (callers refuse it)."""
    k, b = 0, size
    while b % 2 == 0 and b // 2 >= 4:
        b, k = b // 2, k + 1
    return (k, b) if 4 <= b < 8 and k >= 1 else (0, size)


def level_widths(levels: int, base_channels: int, max_channels: int) -> list[int]:
    """Channels at full resolution (index 0) down to the base (index `levels`)."""
    return [min(base_channels * 2 ** i, max_channels) for i in range(levels + 1)]


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine, then a per-sample gain and bias: one table row per class
    (unconditional: one learned row), or with `embed_dim` > 0 gain 1 + W_g e and bias W_b e of
    the sample's class embedding e (BigGAN's shared embedding)."""

    def __init__(self, spatial_dims: int, channels: int, num_classes: int = 0, embed_dim: int = 0) -> None:
        super().__init__()
        self.bn = Norm[Norm.BATCH, spatial_dims](channels, affine=False)
        self.shared = embed_dim > 0
        if self.shared:
            self.gain: nn.Module = nn.Linear(embed_dim, channels, bias=False)
            self.bias: nn.Module = nn.Linear(embed_dim, channels, bias=False)
            return
        rows = max(num_classes, 1)
        self.gain = nn.Embedding(rows, channels)
        self.bias = nn.Embedding(rows, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, cond: Tensor | None) -> Tensor:
        """`cond`: class labels (B,) for the tables, class embeddings (B, embed_dim) for the
        shared embedding, None when unconditional."""
        shape = (x.shape[0], x.shape[1]) + (1,) * (x.ndim - 2)
        if self.shared:
            return self.bn(x) * (1 + self.gain(cond)).view(shape) + self.bias(cond).view(shape)
        y = cond if cond is not None else torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        return self.bn(x) * self.gain(y).view(shape) + self.bias(y).view(shape)


class UpBlock(nn.Module):
    """x -> cBN, ReLU, up x2, conv3, cBN, ReLU, conv3; plus conv1(up x2(x)) (BigGAN Fig. 15a)."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int, num_classes: int, embed_dim: int = 0) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.bn1 = ConditionalBatchNorm(spatial_dims, c_in, num_classes, embed_dim)
        self.conv1 = conv(c_in, c_out, 3, 1, 1)
        self.bn2 = ConditionalBatchNorm(spatial_dims, c_out, num_classes, embed_dim)
        self.conv2 = conv(c_out, c_out, 3, 1, 1)
        self.skip = conv(c_in, c_out, 1)

    def forward(self, x: Tensor, cond: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(self.bn1(x, cond)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class DownBlock(nn.Module):
    """x -> (LReLU), conv3, LReLU, conv3, avg-pool x2; plus avg-pool(conv1(x)) (BigGAN Fig. 15b;
    the first block takes the image without a leading activation)."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int, first: bool) -> None:
        super().__init__()
        conv = Conv[Conv.CONV, spatial_dims]
        self.first = first
        self.conv1 = conv(c_in, c_out, 3, 1, 1)
        self.conv2 = conv(c_out, c_out, 3, 1, 1)
        self.skip = conv(c_in, c_out, 1)
        self.pool = (F.avg_pool2d, F.avg_pool3d)[spatial_dims - 2]

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.first else F.leaky_relu(x, 0.2)
        h = self.conv2(F.leaky_relu(self.conv1(h), 0.2))
        return self.pool(h, 2) + self.pool(self.skip(x), 2)


class ResidualGenerator(nn.Module):
    """z (B, latent_dim) [+ labels (B,)] -> (B, out_channels, *[size]*dims) in [-1, 1]. A
    conditional generator with `embed_dim` > 0 maps each label to one embedding (N(0, 1) init),
    concatenates it with z and derives every BatchNorm's gain and bias from it (BigGAN)."""

    def __init__(self, spatial_dims: int, out_channels: int, size: int, latent_dim: int,
                 base_channels: int, max_channels: int, num_classes: int = 0, embed_dim: int = 0) -> None:
        super().__init__()
        levels, self.base = residual_levels(size)
        widths = level_widths(levels, base_channels, max_channels)
        self.spatial_dims = spatial_dims
        embed_dim = embed_dim if num_classes else 0
        self.embed = nn.Embedding(num_classes, embed_dim) if embed_dim else None
        self.fc = nn.Linear(latent_dim + embed_dim, widths[-1] * self.base ** spatial_dims)
        self.blocks = nn.ModuleList(UpBlock(spatial_dims, widths[i], widths[i - 1], num_classes, embed_dim)
                                    for i in range(levels, 0, -1))
        self.bn = ConditionalBatchNorm(spatial_dims, widths[0], num_classes, embed_dim)
        self.out = Conv[Conv.CONV, spatial_dims](widths[0], out_channels, 3, 1, 1)

    def forward(self, z: Tensor, labels: Tensor | None = None, class_weight: Tensor | float = 1.0) -> Tensor:
        """`class_weight` scales the class embedding (transitional conditioning: 0 makes G
        unconditional)."""
        cond = labels
        if self.embed is not None:
            if labels is None:
                raise ValueError("a class-conditional generator needs labels")
            cond = self.embed(labels) * class_weight
            z = torch.cat([z, cond], 1)
        h = self.fc(z).view(z.shape[0], -1, *([self.base] * self.spatial_dims))
        for block in self.blocks:
            h = block(h, cond)
        return torch.tanh(self.out(F.relu(self.bn(h, cond))))


class ResidualDiscriminator(nn.Module):
    """(B, in_channels, *[size]*dims) [+ labels] -> logit (B,): residual down-blocks to the base,
    minibatch-std channel (`mbstd_group` > 0), conv3, global sum pool, linear + projection."""

    def __init__(self, spatial_dims: int, in_channels: int, size: int, base_channels: int,
                 max_channels: int, num_classes: int = 0, mbstd_group: int = 0) -> None:
        super().__init__()
        levels, _ = residual_levels(size)
        widths = level_widths(levels, base_channels, max_channels)
        c_ins = [in_channels] + widths[1:-1]
        self.blocks = nn.Sequential(*(DownBlock(spatial_dims, c, w, i == 0)
                                      for i, (c, w) in enumerate(zip(c_ins, widths[1:]))))
        c = widths[-1]
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else None
        self.conv = Conv[Conv.CONV, spatial_dims](c + (1 if mbstd_group else 0), c, 3, 1, 1)
        self.head = nn.Linear(c, 1)
        self.embed = nn.Embedding(num_classes, c) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None, class_weight: Tensor | float = 1.0) -> Tensor:
        """`class_weight` scales the projection term (transitional conditioning: 0 makes D
        unconditional)."""
        h = F.leaky_relu(self.blocks(x), 0.2)
        if self.mbstd is not None:
            h = self.mbstd(h)
        phi = F.leaky_relu(self.conv(h), 0.2).flatten(2).sum(2)  # (B, C): global sum pooling
        logit = self.head(phi).squeeze(1)
        if self.embed is not None:
            logit = logit + class_weight * (self.embed(labels) * phi).sum(1)  # projection (Miyato & Koyama 2018)
        return logit
