"""Shared pieces of the applications: phantom arrays in model units, per-image paired metrics in
HU, bootstrap confidence intervals and figure helpers.

Units: models see CT through the abdomen window (level 40 HU, width 400 HU) mapped onto
[-1, 1] (`genmed.data.transforms.hu_to_unit`); every reported image metric is computed on HU
clipped to a stated window (`HU_WINDOW`), so a PSNR is comparable only under the same window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from genmed.data.phantom import PhantomConfig, PhantomSlices, make_slices
from genmed.data.transforms import hu_to_unit, unit_to_hu
from genmed.errors import UserError

HU_WINDOW = (40.0, 400.0)  # (level, width) HU of every reported PSNR/SSIM/MAE
UNIT_PER_HU = 2.0 / HU_WINDOW[1]  # one HU in model units ([-1, 1] over the 400 HU window)


def phantom(n_patients: int, size: int, seed: int, slices: int = 8, **cfg: Any) -> PhantomSlices:
    """Phantom slices rendered directly at `size` pixels (same field of view, coarser spacing)."""
    return make_slices(n_patients, slices, PhantomConfig(size=size, **cfg), seed=seed)


def to_unit(hu: np.ndarray) -> torch.Tensor:
    """HU (N, *spatial) -> float tensor (N, 1, *spatial) in [-1, 1] (abdomen window, clipped)."""
    return torch.from_numpy(np.ascontiguousarray(hu_to_unit(np.asarray(hu, np.float32))))[:, None]


def to_hu(x: torch.Tensor) -> np.ndarray:
    """Model output (N, 1, *spatial) in [-1, 1] -> HU (N, *spatial) float32."""
    return unit_to_hu(x.detach().float().clamp(-1, 1)[:, 0].cpu().numpy()).astype(np.float32)


def window(hu: np.ndarray, win: tuple[float, float] = HU_WINDOW) -> np.ndarray:
    """Clip HU to [level - width/2, level + width/2]."""
    level, width = win
    return np.clip(np.asarray(hu, np.float32), level - width / 2, level + width / 2)


def paired_per_image(pred_hu: np.ndarray, target_hu: np.ndarray,
                     win: tuple[float, float] = HU_WINDOW) -> dict[str, np.ndarray]:
    """Per-image PSNR (dB), SSIM and MAE (HU) of (N, *spatial) HU arrays inside window `win`.

    Both images are clipped to the window and the data range is its width (MONAI PSNRMetric,
    SSIMMetric: Wang et al. 2004, Gaussian window 11 shrunk to the image for tiny images).
    """
    from monai.metrics import PSNRMetric, SSIMMetric

    pred_hu, target_hu = np.asarray(pred_hu), np.asarray(target_hu)
    if pred_hu.shape != target_hu.shape:
        raise UserError(f"prediction shape {pred_hu.shape} differs from target shape {target_hu.shape}")
    p = torch.from_numpy(window(pred_hu, win))[:, None]
    t = torch.from_numpy(window(target_hu, win))[:, None]
    width = win[1]
    win_size = min(11, *p.shape[2:])
    win_size -= 1 - win_size % 2
    psnr = PSNRMetric(max_val=width, reduction="none")(p, t).reshape(-1)
    ssim = SSIMMetric(spatial_dims=p.ndim - 2, data_range=width, win_size=win_size,
                      reduction="none")(p, t).reshape(-1)
    mae = (p - t).abs().flatten(1).mean(1)
    return {"psnr_db": psnr.numpy(), "ssim": ssim.numpy(), "mae_hu": mae.numpy()}


def ci(statistic: Callable[..., float], *arrays: np.ndarray, n_boot: int = 200,
       seed: int = 0) -> dict[str, float]:
    """Point value and 95% percentile-bootstrap CI of `statistic(*arrays)`, each array
    resampled on its own (`scipy.stats.bootstrap`, paired=False; Efron & Tibshirani 1993,
    ch. 13). For AUROC pass (positives, negatives): a stratified bootstrap."""
    from scipy.stats import bootstrap

    data = tuple(np.asarray(a, np.float64) for a in arrays)
    if any(len(a) < 2 for a in data):
        raise UserError("a bootstrap CI needs at least 2 values in every group")
    value = float(statistic(*data))
    if n_boot < 2 or all(np.ptp(a) == 0 for a in data):  # constant data: the CI is the point
        return {"value": value, "low": value, "high": value}
    res = bootstrap(data, statistic, n_resamples=n_boot, method="percentile", paired=False,
                    vectorized=False, confidence_level=0.95, rng=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return {"value": value, "low": float(low), "high": float(high)}


def mean_ci(values: np.ndarray, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Mean of per-image `values` with its 95% bootstrap CI."""
    return ci(lambda v: float(np.mean(v)), values, n_boot=n_boot, seed=seed)


def paired_table(outputs: dict[str, np.ndarray], target_hu: np.ndarray, seconds: dict[str, float],
                 n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per method: mean and bootstrap CI of each paired metric against `target_hu`, plus seconds."""
    table: dict[str, dict[str, Any]] = {}
    for method, pred in outputs.items():
        per = paired_per_image(pred, target_hu)
        table[method] = {k: mean_ci(v, n_boot, seed) for k, v in per.items()}
        table[method]["seconds"] = seconds[method]
    return table


def hu_columns_figure(cols: dict[str, np.ndarray], n: int = 4, stride: int = 1, title: str = ""):
    """A matplotlib grid: one column per named (N, H, W) HU stack, `n` rows (every `stride`-th
    slice), all shown in the abdomen window `HU_WINDOW`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = HU_WINDOW[0] - HU_WINDOW[1] / 2, HU_WINDOW[0] + HU_WINDOW[1] / 2
    fig, axes = plt.subplots(n, len(cols), figsize=(1.6 * len(cols), 1.6 * n), squeeze=False)
    for j, (name, arr) in enumerate(cols.items()):
        for i in range(n):
            axes[i, j].imshow(arr[i * stride], cmap="gray", vmin=lo, vmax=hi)
            axes[i, j].axis("off")
        axes[0, j].set_title(name, fontsize=8)
    if title:
        fig.suptitle(f"{title}, window [{lo:.0f}, {hi:.0f}] HU", fontsize=9)
    return fig


def fmt(c: dict[str, float], digits: int = 3) -> str:
    """'value [low, high]' for tables."""
    return f"{c['value']:.{digits}f} [{c['low']:.{digits}f}, {c['high']:.{digits}f}]"


def seeded(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed`."""
    return torch.Generator(device).manual_seed(int(seed))
