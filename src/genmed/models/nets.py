"""Backbones for the three families, 2D/3D images (`spatial_dims` first) or vectors (B, D).

Image backbones are MONAI networks (`DiffusionModelUNet`, `VarAutoEncoder`, `AutoencoderKL`,
`PatchDiscriminator`) or short DCGAN conv
stacks built from MONAI's layer factories (Radford et al. 2016), so one class serves 2D and 3D.
Vector backbones are small MLPs with the same call signatures, used by the 2-D mixture
mode-coverage benchmark (ring of 8 / grid of 25 Gaussians). No hand-written UNets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from monai.networks.blocks import Convolution, ResidualUnit
from monai.networks.layers import Conv, Norm
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet, PatchDiscriminator, VarAutoEncoder
from monai.networks.nets.diffusion_model_unet import get_timestep_embedding
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


def diffusion_unet(
    spatial_dims: int,
    in_channels: int,
    channels: Sequence[int],
    attention_levels: Sequence[bool],
    num_res_blocks: int,
    norm_num_groups: int,
    num_class_embeds: int | None,
    cond_channels: int = 0,
    cond_kind: str = "concat",
) -> nn.Module:
    """MONAI's DiffusionModelUNet predicting noise eps (`in_channels` out).

    With `cond_channels` > 0 an image condition (a label map or a source image) enters either
    stacked onto x_t at the input ("concat": Saharia et al. 2022, Palette) or through every
    normalisation layer of MONAI's `SPADEDiffusionModelUNet` ("spade": Park et al. 2019;
    Wang et al. 2022, semantic diffusion); call it as `net(x, timesteps, class_labels=...,
    seg=cond)` in both cases (`ConditionedUNet`).
    """
    common = dict(spatial_dims=spatial_dims, out_channels=in_channels, channels=tuple(channels),
                  attention_levels=tuple(attention_levels), num_res_blocks=num_res_blocks,
                  norm_num_groups=norm_num_groups, num_head_channels=[c for c in channels],
                  num_class_embeds=num_class_embeds)  # one attention head per level
    if not cond_channels:
        return DiffusionModelUNet(in_channels=in_channels, **common)
    if cond_kind == "spade":
        from monai.networks.nets import SPADEDiffusionModelUNet

        return SPADEDiffusionModelUNet(in_channels=in_channels, label_nc=cond_channels,
                                       spade_intermediate_channels=32, **common)
    return ConditionedUNet(DiffusionModelUNet(in_channels=in_channels + cond_channels, **common))


class ConditionedUNet(nn.Module):
    """A DiffusionModelUNet fed [x_t, cond] along channels, called like the SPADE UNet."""

    def __init__(self, unet: DiffusionModelUNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, timesteps: Tensor, seg: Tensor,
                class_labels: Tensor | None = None) -> Tensor:
        return self.unet(torch.cat([x, seg.to(x.dtype)], 1), timesteps=timesteps,
                         class_labels=class_labels)


class VectorDenoiserMLP(nn.Module):
    """eps-predictor for vectors (B, D): MLP on [x, sinusoidal(t) (+ class embedding)].

    Call signature matches `DiffusionModelUNet.forward(x, timesteps, class_labels=...)`.
    """

    def __init__(self, dim: int, hidden: int = 128, depth: int = 3,
                 num_class_embeds: int | None = None) -> None:
        super().__init__()
        self.hidden = hidden
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(num_class_embeds, hidden) if num_class_embeds else None
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth)
        )
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor, timesteps: Tensor, class_labels: Tensor | None = None) -> Tensor:
        emb = self.time(get_timestep_embedding(timesteps, self.hidden).to(x.dtype))
        if self.label is not None and class_labels is not None:
            emb = emb + self.label(class_labels)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + emb)  # residual MLP, time/class added at every block
        return self.out(h)


def mlp(dims: Sequence[int], *, act: type[nn.Module] = nn.LeakyReLU, sn: bool = False) -> nn.Sequential:
    """Plain MLP: Linear layers of `dims`, activation between (not after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        lin = nn.Linear(a, b)
        layers.append(spectral_norm(lin) if sn else lin)
        if i < len(dims) - 2:
            layers.append(act(0.2) if act is nn.LeakyReLU else act())
    return nn.Sequential(*layers)


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al. 2016): z -> (C0, 4, ...) -> [ConvT 4/2, BN, ReLU]* -> tanh.

    Output (B, out_channels, size, ...) in [-1, 1]; `size` = 4 * 2**k. Class conditioning
    concatenates a label embedding to z.
    """

    def __init__(self, spatial_dims: int, out_channels: int, size: int, latent_dim: int,
                 base_channels: int, num_classes: int = 0) -> None:
        super().__init__()
        n_up = dcgan_levels(size)
        self.spatial_dims = spatial_dims
        self.c0 = base_channels * 2 ** n_up
        self.label = nn.Embedding(num_classes, latent_dim) if num_classes else None
        z_in = latent_dim * (2 if num_classes else 1)
        self.fc = nn.Linear(z_in, self.c0 * 4 ** spatial_dims)
        convt, bn = Conv[Conv.CONVTRANS, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        layers: list[nn.Module] = [bn(self.c0), nn.ReLU()]
        c = self.c0
        for _ in range(n_up):
            layers += [convt(c, c // 2, 4, 2, 1, bias=False), bn(c // 2), nn.ReLU()]
            c //= 2
        layers += [Conv[Conv.CONV, spatial_dims](c, out_channels, 3, 1, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.label is not None:
            z = torch.cat([z, self.label(labels)], dim=1)
        h = self.fc(z).view(z.shape[0], self.c0, *([4] * self.spatial_dims))
        return self.net(h)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: [Conv 4/2, (BN), LeakyReLU 0.2]* down to 4^d, then a linear logit.

    `spectral=True` wraps every conv/linear in spectral norm and drops BatchNorm (Miyato et
    al. 2018). Class conditioning by projection (Miyato & Koyama 2018): logit += <embed(y), h>.
    `mbstd_group` > 0 gives the head a minibatch-std feature (`MinibatchStd`).
    """

    def __init__(self, spatial_dims: int, in_channels: int, size: int, base_channels: int,
                 num_classes: int = 0, spectral: bool = False, mbstd_group: int = 0) -> None:
        super().__init__()
        n_down = dcgan_levels(size)
        sn = spectral_norm if spectral else (lambda m: m)
        conv, bn = Conv[Conv.CONV, spatial_dims], Norm[Norm.BATCH, spatial_dims]
        layers: list[nn.Module] = []
        c_in, c = in_channels, base_channels
        for i in range(n_down):
            layers.append(sn(conv(c_in, c, 4, 2, 1, bias=spectral or i == 0)))
            if i > 0 and not spectral:
                layers.append(bn(c))
            layers.append(nn.LeakyReLU(0.2))
            c_in, c = c, c * 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        feat = c_in * 4 ** spatial_dims
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else None
        self.head = sn(nn.Linear(feat + (1 if mbstd_group else 0), 1))
        self.embed = sn(nn.Embedding(num_classes, feat)) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return _logit(self, self.features(x), labels)  # (B,)


class ResidualMLP(nn.Module):
    """(B, d_in) -> (B, d_out): Linear in, `depth` pre-activation residual blocks h + W act(h)
    (He et al. 2016, "Identity mappings in deep residual networks", eq. 3; one layer per
    block, as in `VectorDenoiserMLP`), then act and Linear out. The vector counterpart of the
    residual GAN nets (`gan_resnets`); `sn` wraps every layer in spectral norm."""

    def __init__(self, d_in: int, hidden: int, depth: int, d_out: int, *,
                 act: type[nn.Module] = nn.LeakyReLU, sn: bool = False) -> None:
        super().__init__()
        wrap = spectral_norm if sn else (lambda m: m)
        make_act = (lambda: act(0.2)) if act is nn.LeakyReLU else act
        self.inp = wrap(nn.Linear(d_in, hidden))
        self.blocks = nn.ModuleList(nn.Sequential(make_act(), wrap(nn.Linear(hidden, hidden)))
                                    for _ in range(depth))
        self.out = nn.Sequential(make_act(), wrap(nn.Linear(hidden, d_out)))

    def forward(self, x: Tensor) -> Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class VectorGenerator(nn.Module):
    """MLP generator for vectors: [z (, embed(y))] -> (B, dim), unbounded; `residual`: a
    `ResidualMLP` of `depth` blocks instead of `depth` hidden layers."""

    def __init__(self, dim: int, latent_dim: int, hidden: int, depth: int, num_classes: int = 0,
                 residual: bool = False) -> None:
        super().__init__()
        self.label = nn.Embedding(num_classes, latent_dim) if num_classes else None
        z_in = latent_dim * (2 if num_classes else 1)
        self.net = (ResidualMLP(z_in, hidden, depth, dim, act=nn.ReLU) if residual
                    else mlp([z_in] + [hidden] * depth + [dim], act=nn.ReLU))

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.label is not None:
            z = torch.cat([z, self.label(labels)], dim=1)
        return self.net(z)


class VectorDiscriminator(nn.Module):
    """MLP discriminator for vectors with optional projection conditioning; logit (B,).
    `residual`: features from a `ResidualMLP` of `depth` blocks."""

    def __init__(self, dim: int, hidden: int, depth: int, num_classes: int = 0,
                 spectral: bool = False, mbstd_group: int = 0, residual: bool = False) -> None:
        super().__init__()
        body = (ResidualMLP(dim, hidden, depth, hidden, sn=spectral) if residual
                else mlp([dim] + [hidden] * depth, sn=spectral))
        self.features = nn.Sequential(body, nn.LeakyReLU(0.2))
        sn = spectral_norm if spectral else (lambda m: m)
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group else None
        self.head = sn(nn.Linear(hidden + (1 if mbstd_group else 0), 1))
        self.embed = sn(nn.Embedding(num_classes, hidden)) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        return _logit(self, self.features(x), labels)


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN, Sec. 3): (B, F, *spatial) ->
    (B, F + 1, *spatial), e.g. (B, F) -> (B, F + 1).

    Samples are split into groups of `group` (a divisor of B: gcd(B, group)); the extra feature
    (a constant channel on feature maps) of each sample is the mean over features and positions
    of the std across its group. A generator whose samples look alike gives a small std that D
    learns to tell from real batches, while D still judges every sample on its own (unlike
    packing).
    """

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, h: Tensor) -> Tensor:
        b = h.shape[0]
        g = math.gcd(b, self.group)
        y = h.float().reshape(g, b // g, -1)  # sample i is in group i % (b // g)
        std = (y.var(0, unbiased=False) + 1e-8).sqrt().mean(1)  # (b // g,)
        feat = std.repeat(g).to(h.dtype).view(b, 1, *([1] * (h.ndim - 2)))
        return torch.cat([h, feat.expand(b, 1, *h.shape[2:])], dim=1)


def _logit(d: nn.Module, h: Tensor, labels: Tensor | None) -> Tensor:
    """Head of both discriminators: linear logit (+ minibatch std) + projection <embed(y), h>."""
    logit = d.head(d.mbstd(h) if d.mbstd is not None else h).squeeze(1)
    if d.embed is not None:
        logit = logit + (d.embed(labels) * h).sum(dim=1)
    return logit


def dcgan_levels(size: int) -> int:
    """Number of x2 up/down-sampling stages between 4 and `size` (size = 4 * 2**k, k >= 1)."""
    k = 0
    while 4 * 2 ** k < size:
        k += 1
    return k


def var_autoencoder(spatial_dims: int, in_channels: int, size: int, channels: Sequence[int],
                    latent_dim: int, num_res_units: int, decoder: str = "transposed",
                    upsample: str = "nearest") -> VarAutoEncoder:
    """MONAI VarAutoEncoder with stride-2 levels, raw (no sigmoid) output; we apply tanh.

    `decoder="transposed"`: MONAI's decoder, a stride-2 3x3 transposed convolution per level
    (uneven kernel overlap: a stride-period checkerboard, Odena et al. 2016). `"resize"`: the
    same levels as `upsample` x2 then a stride-1 3x3 convolution (`ResizeVarAutoEncoder`).
    The encoder is the same in both."""
    common = dict(
        spatial_dims=spatial_dims,
        in_shape=(in_channels, *([size] * spatial_dims)),
        out_channels=in_channels,
        latent_size=latent_dim,
        channels=tuple(channels),
        strides=tuple(2 for _ in channels),
        num_res_units=num_res_units,
        norm="INSTANCE",
        use_sigmoid=False,
    )
    if decoder == "transposed":
        return VarAutoEncoder(**common)
    return ResizeVarAutoEncoder(upsample=upsample, **common)


class ResizeVarAutoEncoder(VarAutoEncoder):
    """VarAutoEncoder whose decoder upsamples by resize-convolution (Odena, Dumoulin & Olah
    2016, "Deconvolution and Checkerboard Artifacts", Distill): each level is a nearest (or
    (bi/tri)linear) x`stride` upsampling followed by a stride-1 3x3 convolution with MONAI's
    norm + activation (none on the last level without residual units), then MONAI's residual
    unit when `num_res_units` > 0. Every output pixel sees the kernel the same number of
    times, so a constant feature map decodes to a constant image: no stride-period pattern.
    Same parameters and call signatures as `VarAutoEncoder` otherwise."""

    def __init__(self, *, upsample: str = "nearest", **kwargs) -> None:
        self.upsample = upsample  # read by `_get_decode_layer`, which the parent's init calls
        super().__init__(**kwargs)

    def _get_decode_layer(self, in_channels: int, out_channels: int, strides: int,
                          is_last: bool) -> nn.Sequential:
        """One decoder level: Upsample, Convolution (stride 1), optional ResidualUnit."""
        mode = "nearest" if self.upsample == "nearest" else ("bilinear", "trilinear")[self.dimensions - 2]
        block = dict(spatial_dims=self.dimensions, act=self.act, norm=self.norm,
                     dropout=self.dropout, bias=self.bias, padding=self.padding)
        layer = nn.Sequential()
        layer.add_module("up", nn.Upsample(scale_factor=strides, mode=mode,
                                           align_corners=None if mode == "nearest" else False))
        layer.add_module("conv", Convolution(in_channels=in_channels, out_channels=out_channels,
                                             strides=1, kernel_size=self.up_kernel_size,
                                             conv_only=is_last and self.num_res_units == 0, **block))
        if self.num_res_units > 0:
            layer.add_module("resunit", ResidualUnit(
                in_channels=out_channels, out_channels=out_channels, strides=1,
                kernel_size=self.kernel_size, subunits=1, last_conv_only=is_last, **block))
        return layer


class VectorVAE(nn.Module):
    """MLP encoder (-> mu, logvar) and decoder for vectors, VarAutoEncoder-like methods."""

    def __init__(self, dim: int, latent_dim: int, hidden: int, depth: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(mlp([dim] + [hidden] * depth), nn.LeakyReLU(0.2))
        self.mu = nn.Linear(hidden, latent_dim)
        self.logvar = nn.Linear(hidden, latent_dim)
        self.dec = mlp([latent_dim] + [hidden] * depth + [dim])

    def encode_forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.enc(x)
        return self.mu(h), self.logvar(h)

    def decode_forward(self, z: Tensor, use_sigmoid: bool = False) -> Tensor:
        return self.dec(z)


def autoencoder_kl(spatial_dims: int, in_channels: int, channels: Sequence[int],
                   latent_channels: int, num_res_blocks: int, norm_num_groups: int,
                   attention: bool) -> AutoencoderKL:
    """MONAI's KL-regularised autoencoder (Rombach et al. 2022, sec. 3.1): `len(channels) - 1`
    stride-2 levels, `latent_channels` latent maps, unbounded decoder output. `attention` adds
    self-attention at the deepest level and in the mid-blocks (off by default: at 256 px and
    4x downsampling that is 4096 tokens per image)."""
    return AutoencoderKL(
        spatial_dims=spatial_dims, in_channels=in_channels, out_channels=in_channels,
        channels=tuple(channels), latent_channels=latent_channels, num_res_blocks=num_res_blocks,
        norm_num_groups=norm_num_groups,
        attention_levels=(False,) * (len(channels) - 1) + (attention,),
        with_encoder_nonlocal_attn=attention, with_decoder_nonlocal_attn=attention,
    )


def patch_discriminator(spatial_dims: int, in_channels: int, channels: int,
                        num_layers: int) -> PatchDiscriminator:
    """MONAI's PatchGAN discriminator (Isola et al. 2017): one logit per patch, the last entry
    of its output list. Instance norm, as MONAI's 2d_ldm training script, so each image's
    logits do not depend on the rest of the batch (per-sample losses stay per sample)."""
    return PatchDiscriminator(spatial_dims=spatial_dims, channels=channels,
                              in_channels=in_channels, out_channels=1, num_layers_d=num_layers,
                              norm="INSTANCE")
