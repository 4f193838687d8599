"""`--compile` and `--channels-last`: torch.compile (TorchInductor) and the channels-last
memory format for a model's networks, applied in place.

Each network's `forward` is replaced by its `torch.compile`d self on that instance, so
parameter names, state dicts and checkpoints do not change: a run trained compiled resumes or
samples eager, and the reverse. (`nn.Module.compile()` would do the same, but in torch 2.13
it silently runs eager for a network whose forward lives in torch.nn, e.g. `nn.Sequential`.)
The first call of each input shape pays the compilation (46-119 s for the diffusion UNet on
one CPU core; docs/training.md has what it returns, from benchmarks/compile_speed.py).
"""

from __future__ import annotations

import torch
from torch import nn

from genmed.errors import UserError


def networks(model: nn.Module) -> list[nn.Module]:
    """The model's direct sub-networks that hold parameters (UNet, generator, encoder...)."""
    return [child for child in model.children() if next(child.parameters(), None) is not None]


def to_channels_last(model: nn.Module) -> nn.Module:
    """`model` with its 4-D/5-D convolution weights channels-last (NHWC in 2D, NDHWC in 3D)."""
    dims = {p.dim() for p in model.parameters() if p.dim() in (4, 5)}
    if not dims:
        raise UserError("--channels-last: the model has no convolutions (a vector model)")
    return model.to(memory_format=torch.channels_last_3d if 5 in dims else torch.channels_last)


def compile_networks(model: nn.Module) -> nn.Module:
    """`model` with each network's forward `torch.compile`d in place."""
    for net in networks(model):
        net.forward = torch.compile(net.forward)
    return model


def accelerate(model: nn.Module, *, compile: bool = False, channels_last: bool = False) -> nn.Module:
    """`model` channels-last (`channels_last`), then compiled (`compile`), in place."""
    if channels_last:
        to_channels_last(model)
    return compile_networks(model) if compile else model
