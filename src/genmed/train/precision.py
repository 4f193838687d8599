"""Device and numeric precision: which device, which autocast, whether a grad scaler.

`auto` precision picks bf16 only where the hardware runs it fast:
- CPU: bf16 autocast when the CPU has AMX (`amx_bf16`) or AVX-512 BF16 (`avx512_bf16`);
  without them oneDNN emulates bf16 and fp32 is faster. benchmarks/train_throughput.py
  measures the ratio (2.0x for the MONAI diffusion UNet on an AMX Xeon). Asked for bf16
  explicitly on a CPU without them, convolutions fall to PyTorch's reference kernel
  (aten::_slow_conv2d): a 64-px autoencoder step took 23x as long as in fp32 on an AVX2-only
  AMD EPYC, so that request gets a one-line warning.
- CUDA: bf16 autocast when the GPU supports bf16 (Ampere and later), else fp32.
`fp16` (CUDA only) is autocast plus a `torch.amp.GradScaler` against gradient underflow.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from genmed.errors import UserError, warn
from genmed.versions import cpu_flags


@dataclass(frozen=True)
class Numerics:
    """The resolved device and precision of a run."""

    device: torch.device
    precision: str  # "bf16", "fp16" or "fp32" (never "auto")

    @property
    def dtype(self) -> torch.dtype | None:
        """The autocast dtype, None for fp32."""
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of a forward pass (a no-op in fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """A gradient scaler for fp16, else None (bf16 has fp32's exponent range)."""
        return torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """`auto` -> CUDA (this process's local rank) when present, else CPU."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device='cuda' but no CUDA GPU is visible to torch")
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def bf16_is_fast(device: torch.device) -> bool:
    """True where bf16 runs natively: AMX / AVX-512 BF16 CPUs, bf16-capable GPUs."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    flags = cpu_flags()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_numerics(device: str, precision: str, local_rank: int = 0) -> Numerics:
    """Resolve `device` and `precision` ("auto" included) for this process."""
    dev = resolve_device(device, local_rank)
    if precision == "fp16" and dev.type != "cuda":
        raise UserError("precision='fp16' needs a CUDA GPU; use bf16 or fp32 on CPU")
    if precision == "auto":
        precision = "bf16" if bf16_is_fast(dev) else "fp32"
    elif precision == "bf16" and dev.type == "cpu" and not bf16_is_fast(dev):
        warn("precision='bf16' on a CPU without AVX-512 BF16 or AMX: convolutions run on "
             "PyTorch's slow reference kernel (23x slower than fp32 on an AVX2 CPU); use fp32 or auto")
    return Numerics(device=dev, precision=precision)
