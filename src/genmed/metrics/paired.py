"""Image-quality metrics for paired tasks (denoising, translation, reconstruction).

PSNR and SSIM come from MONAI (`monai.metrics.PSNRMetric`, `SSIMMetric`; SSIM: Wang et al.
2004, Eq. 13, Gaussian window 11, sigma 1.5). CT images are compared in HU through a stated
window: both images are clipped to [level - width/2, level + width/2] HU and the data range
is the window width, so numbers are comparable only between runs with the same window.
MAE is reported in HU inside that window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from genmed.errors import UserError

ABDOMEN_WINDOW = (40.0, 400.0)  # (level, width) in HU


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


def psnr(pred, target, data_range: float) -> float:
    """Mean PSNR (dB) over images; `data_range` is max - min of the intensity scale."""
    from monai.metrics import PSNRMetric

    if data_range <= 0:
        raise UserError(f"data_range={data_range} must be > 0")
    p, t = _pair(pred, target)
    return float(PSNRMetric(max_val=data_range)(p, t).mean())


def ssim(pred, target, data_range: float, win_size: int = 11) -> float:
    """Mean SSIM over images (MONAI SSIMMetric, Gaussian window); the window shrinks for
    images smaller than `win_size`."""
    from monai.metrics import SSIMMetric

    if data_range <= 0:
        raise UserError(f"data_range={data_range} must be > 0")
    p, t = _pair(pred, target)
    spatial = p.ndim - 2
    win = min(win_size, *p.shape[2:])
    win = win if win % 2 else win - 1
    if win < 3:
        raise UserError(f"images of shape {tuple(p.shape[2:])} are too small for SSIM")
    metric = SSIMMetric(spatial_dims=spatial, data_range=data_range, win_size=win)
    return float(metric(p, t).mean())


def window_hu(x, level: float, width: float) -> np.ndarray:
    """Clip HU values to the window [level - width/2, level + width/2]."""
    if width <= 0:
        raise UserError(f"window width={width} HU must be > 0")
    return np.clip(np.asarray(x, dtype=np.float32), level - width / 2, level + width / 2)


def paired_metrics(pred_hu, target_hu, window: tuple[float, float] = ABDOMEN_WINDOW) -> PairedMetrics:
    """PSNR, SSIM and MAE (HU) of `pred_hu` vs `target_hu` in the (level, width) HU window."""
    level, width = map(float, window)
    p, t = _pair(pred_hu, target_hu)
    pw = window_hu(p.numpy(), level, width)
    tw = window_hu(t.numpy(), level, width)
    return PairedMetrics(
        psnr_db=psnr(pw, tw, data_range=width),
        ssim=ssim(pw, tw, data_range=width),
        mae_hu=float(np.abs(pw - tw).mean()),
        window_level_hu=level,
        window_width_hu=width,
        n_images=int(p.shape[0]),
    )
