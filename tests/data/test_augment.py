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
