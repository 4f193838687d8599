"""Diversity within one image set, and class/mode coverage against the data's class shares.

- Intra-set MS-SSIM (Odena et al. 2017, "Conditional image synthesis with auxiliary
  classifier GANs", Sec. 4.2): mean MS-SSIM (Wang et al. 2003) over random pairs of images of
  one set; lower = more diverse. Computed with MONAI's MultiScaleSSIMMetric. Small images
  (e.g. 32 px) cannot hold 5 scales with an 11-px window, so the number of scales and the
  window shrink to fit and the result says which were used; below 2 scales plain SSIM is used.
- Class coverage: the share of samples a classifier assigns to each class vs the share of
  each class in the real data, their total-variation distance, and the classes that receive
  no sample (a classifier-based view of mode coverage, cf. Santurkar et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from genmed.errors import UserError

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)  # Wang et al. 2003, Sec. 3.2


@dataclass(frozen=True)
class Diversity:
    ms_ssim: float  # mean over pairs; lower = more diverse
    ms_ssim_sem: float
    n_pairs: int
    method: str  # e.g. "MS-SSIM, 3 scales, window 7"

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def ms_ssim_setting(size: int) -> tuple[tuple[float, ...], int]:
    """(scale weights, window) that fit images of side `size` in MONAI's MS-SSIM check."""
    for n_scales in (5, 4, 3, 2):
        div = max(1, n_scales - 1) ** 2  # MONAI requires size // (n-1)^2 > window - 1
        for win in (11, 7, 5):
            if size // div > win - 1 and size // 2 ** (n_scales - 1) >= win:
                w = np.asarray(MS_SSIM_WEIGHTS[:n_scales])
                return tuple(float(v) for v in w / w.sum()), win
    return (), 0


def intra_ms_ssim(images, n_pairs: int = 200, data_range: float = 2.0, seed: int = 0) -> Diversity:
    """Mean MS-SSIM over `n_pairs` random distinct pairs of `images` (N, C, H, W) in [-1, 1]."""
    from monai.metrics import MultiScaleSSIMMetric, SSIMMetric

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise UserError(f"images: expected (N, C, H, W), got {tuple(x.shape)}")
    if len(x) < 2:
        raise UserError(f"images: need at least 2 images for diversity, got {len(x)}")
    if n_pairs < 1:
        raise UserError(f"n_pairs={n_pairs} must be >= 1")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(x), n_pairs)
    j = (i + rng.integers(1, len(x), n_pairs)) % len(x)  # j != i
    weights, win = ms_ssim_setting(min(x.shape[2:]))
    if len(weights) >= 2:
        metric = MultiScaleSSIMMetric(
            spatial_dims=2, data_range=data_range, kernel_size=win, weights=weights
        )
        method = f"MS-SSIM, {len(weights)} scales, window {win}"
    else:
        win = max(3, min(x.shape[2:]) // 2 * 2 - 1)
        metric = SSIMMetric(spatial_dims=2, data_range=data_range, win_size=win)
        method = f"SSIM, window {win}"
    vals = metric(x[i], x[j]).reshape(-1).double().numpy()
    sem = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else 0.0
    return Diversity(float(vals.mean()), sem, int(n_pairs), method)


@dataclass(frozen=True)
class ClassCoverage:
    sample_share: tuple[float, ...]
    data_share: tuple[float, ...]
    total_variation: float  # 0.5 * sum |sample - data|, in [0, 1]
    classes_missing: tuple[int, ...]  # classes present in the data but absent in samples
    class_names: tuple[str, ...]

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}


def class_coverage(
    sample_labels, data_labels, n_classes: int, class_names: tuple[str, ...] | None = None
) -> ClassCoverage:
    """Compare the class histogram of samples (predicted labels) with the data's labels."""
    names = tuple(class_names) if class_names else tuple(str(c) for c in range(n_classes))
    if len(names) != n_classes:
        raise UserError(f"{len(names)} class names for n_classes={n_classes}")
    shares = []
    for name, lab in (("sample_labels", sample_labels), ("data_labels", data_labels)):
        a = np.asarray(lab).reshape(-1)
        if a.size == 0:
            raise UserError(f"{name}: empty")
        if not np.issubdtype(a.dtype, np.integer) or a.min() < 0 or a.max() >= n_classes:
            raise UserError(f"{name}: labels must be integers in [0, {n_classes - 1}]")
        shares.append(np.bincount(a, minlength=n_classes) / a.size)
    s, d = shares
    return ClassCoverage(
        sample_share=tuple(float(v) for v in s),
        data_share=tuple(float(v) for v in d),
        total_variation=float(0.5 * np.abs(s - d).sum()),
        classes_missing=tuple(int(c) for c in np.flatnonzero((d > 0) & (s == 0))),
        class_names=names,
    )
