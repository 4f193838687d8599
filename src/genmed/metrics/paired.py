"""Image-quality metrics for paired tasks (denoising, translation, reconstruction).

PSNR and SSIM come from MONAI (`monai.metrics.PSNRMetric`, `SSIMMetric`; SSIM: Wang et al.
2004, Eq. 13, Gaussian window 11, sigma 1.5, shrunk to the image for tiny images). CT images
are compared in HU through a stated window (default: the abdomen window, level 40 HU, width
400 HU, `genmed.data.transforms`): both images are clipped to [level - width/2, level + width/2]
HU and the data range is the window width, so numbers are comparable only between runs with
the same window. MAE is reported in HU inside that window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from genmed.data.transforms import ABDOMEN_WINDOW_HU
from genmed.errors import UserError

Window = tuple[float, float]  # (level, width) in HU


@dataclass(frozen=True)
class PairedMetrics:
    psnr_db: float  # mean over images, dB
    ssim: float  # mean over images, in [-1, 1]
    mae_hu: float  # mean absolute error in HU after windowing
    window_level_hu: float
    window_width_hu: float
    n_images: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _as_batch(name: str, x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if t.ndim == 2:
        t = t[None]
    if t.ndim == 3:  # (N, H, W) -> (N, 1, H, W)
        t = t[:, None]
    if t.ndim not in (4, 5):
        raise UserError(f"{name}: expected (H, W), (N, H, W), (N, C, H, W) or (N, C, D, H, W), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise UserError(f"{name}: contains NaN or infinite values")
    return t


def _pair(pred, target) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = _as_batch("pred", pred), _as_batch("target", target)
    if p.shape != t.shape:
        raise UserError(f"pred shape {tuple(p.shape)} differs from target shape {tuple(t.shape)}")
    return p, t


def _check_range(data_range: float) -> None:
    if data_range <= 0:
        raise UserError(f"data_range={data_range} must be > 0")


def _psnr(p: torch.Tensor, t: torch.Tensor, data_range: float) -> torch.Tensor:
    """Per-image PSNR (dB) of (N, C, *spatial) tensors."""
    from monai.metrics import PSNRMetric

    return PSNRMetric(max_val=data_range, reduction="none")(p, t).reshape(-1)


def _ssim(p: torch.Tensor, t: torch.Tensor, data_range: float, win_size: int = 11) -> torch.Tensor:
    """Per-image SSIM of (N, C, *spatial) tensors; the window shrinks to the image (odd size)."""
    from monai.metrics import SSIMMetric

    win = min(win_size, *p.shape[2:])
    win -= 1 - win % 2
    if win < 3:
        raise UserError(f"images of shape {tuple(p.shape[2:])} are too small for SSIM")
    metric = SSIMMetric(spatial_dims=p.ndim - 2, data_range=data_range, win_size=win, reduction="none")
    return metric(p, t).reshape(-1)


def psnr(pred, target, data_range: float) -> float:
    """Mean PSNR (dB) over images; `data_range` is max - min of the intensity scale."""
    _check_range(data_range)
    return float(_psnr(*_pair(pred, target), data_range).mean())


def ssim(pred, target, data_range: float, win_size: int = 11) -> float:
    """Mean SSIM over images (Gaussian window `win_size`, shrunk for smaller images)."""
    _check_range(data_range)
    return float(_ssim(*_pair(pred, target), data_range, win_size).mean())


def window_hu(x, level: float, width: float) -> np.ndarray:
    """Clip HU values to the window [level - width/2, level + width/2] (float32)."""
    if width <= 0:
        raise UserError(f"window width={width} HU must be > 0")
    return np.clip(np.asarray(x, dtype=np.float32), level - width / 2, level + width / 2)


def paired_per_image(pred_hu: np.ndarray, target_hu: np.ndarray,
                     window: Window = ABDOMEN_WINDOW_HU) -> dict[str, np.ndarray]:
    """Per-image PSNR (dB), SSIM and MAE (HU) of (N, *spatial) HU arrays inside the HU window
    (level, width): both clipped to it, data range = width."""
    pred_hu, target_hu = np.asarray(pred_hu), np.asarray(target_hu)
    if pred_hu.shape != target_hu.shape:
        raise UserError(f"prediction shape {pred_hu.shape} differs from target shape {target_hu.shape}")
    level, width = map(float, window)
    p = torch.from_numpy(window_hu(pred_hu, level, width))[:, None]
    t = torch.from_numpy(window_hu(target_hu, level, width))[:, None]
    mae = (p - t).abs().flatten(1).mean(1)
    return {"psnr_db": _psnr(p, t, width).numpy(), "ssim": _ssim(p, t, width).numpy(),
            "mae_hu": mae.numpy()}


def paired_metrics(pred_hu, target_hu, window: Window = ABDOMEN_WINDOW_HU) -> PairedMetrics:
    """PSNR, SSIM and MAE (HU) of `pred_hu` vs `target_hu` in the (level, width) HU window,
    means over images; inputs as (H, W), (N, H, W), (N, C, H, W) or (N, C, D, H, W)."""
    level, width = map(float, window)
    p, t = _pair(pred_hu, target_hu)
    pw = torch.from_numpy(window_hu(p.numpy(), level, width))
    tw = torch.from_numpy(window_hu(t.numpy(), level, width))
    return PairedMetrics(
        psnr_db=float(_psnr(pw, tw, width).mean()),
        ssim=float(_ssim(pw, tw, width).mean()),
        mae_hu=float(np.abs(pw.numpy() - tw.numpy()).mean()),
        window_level_hu=level,
        window_width_hu=width,
        n_images=int(p.shape[0]),
    )
