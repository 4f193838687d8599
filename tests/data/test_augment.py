"""Training-batch augmentation: "classic" (MONAI) works inside the engine's bf16 autocast."""

from __future__ import annotations

import torch

from genmed.data.augment import augment


def test_classic_augmentation_under_bf16_autocast():
    """The engine computes the loss, and so the augmentation, inside autocast; MONAI's affine
    grid used to come out in bf16 there and crash (TypeError: unsupported ScalarType BFloat16)."""
    torch.manual_seed(0)
    x = torch.rand(4, 2, 24, 24) * 2 - 1
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = augment(x, "classic", image_channels=1)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert not torch.equal(out, x)  # something was applied


def test_quality_augmentation_degrades_the_image_and_leaves_the_mask_alone():
    """"quality" (nnU-Net's noise, blur, low resolution, gamma) changes only the image channels:
    the mask channel is the input's, at most flipped left-right with its image; some images come
    out smoother than they went in; the same torch seed gives the same batch."""
    torch.manual_seed(0)
    img = torch.randn(32, 1, 32, 32) * 0.3
    mask = (torch.rand(32, 1, 32, 32) > 0.5).float()
    x = torch.cat([img, mask], 1)
    torch.manual_seed(1)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        out = augment(x, "quality", image_channels=1)
    torch.manual_seed(1)
    assert torch.equal(out, augment(x, "quality", image_channels=1))
    assert out.shape == x.shape and out.dtype == torch.float32 and type(out) is torch.Tensor
    flipped = (out[:, 1] == mask[:, 0].flip(-1)).flatten(1).all(1)
    assert ((out[:, 1] == mask[:, 0]).flatten(1).all(1) | flipped).all()
    image = torch.where(flipped[:, None, None], out[:, 0].flip(-1), out[:, 0])
    roughness = (image.diff(dim=-1) ** 2).flatten(1).mean(1) / (img[:, 0].diff(dim=-1) ** 2).flatten(1).mean(1)
    assert (roughness < 0.5).sum() >= 3  # blurred or low-resolution items
    assert (roughness.sub(1).abs() < 1e-6).sum() >= 3  # items left as they were
