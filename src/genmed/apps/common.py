"""Shared pieces of the applications: phantom arrays in model units, the per-method table of
paired metrics, and figure helpers.

Units: models see CT through the abdomen window (level 40 HU, width 400 HU) mapped onto
[-1, 1] (`genmed.data.transforms.hu_to_unit`); every reported image metric is computed on HU
clipped to that window (`ABDOMEN_WINDOW_HU`, `genmed.metrics.paired_per_image`), so a PSNR is
comparable only under the same window.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from genmed.data.phantom import PhantomConfig, PhantomSlices, make_slices
from genmed.data.transforms import ABDOMEN_RANGE_HU, ABDOMEN_WIDTH_HU, ABDOMEN_WINDOW_HU, hu_to_unit, unit_to_hu

UNIT_PER_HU = 2.0 / ABDOMEN_WIDTH_HU  # one HU in model units ([-1, 1] over the 400 HU window)


def phantom(n_patients: int, size: int, seed: int, slices: int = 8, **cfg: Any) -> PhantomSlices:
    """Phantom slices rendered directly at `size` pixels (same field of view, coarser spacing)."""
    return make_slices(n_patients, slices, PhantomConfig(size=size, **cfg), seed=seed)


def to_unit(hu: np.ndarray) -> torch.Tensor:
    """HU (N, *spatial) -> float tensor (N, 1, *spatial) in [-1, 1] (abdomen window, clipped)."""
    return torch.from_numpy(np.ascontiguousarray(hu_to_unit(np.asarray(hu, np.float32))))[:, None]


def to_hu(x: torch.Tensor) -> np.ndarray:
    """Model output (N, 1, *spatial) in [-1, 1] -> HU (N, *spatial) float32."""
    return unit_to_hu(x.detach().float().clamp(-1, 1)[:, 0].cpu().numpy()).astype(np.float32)


def paired_table(outputs: dict[str, np.ndarray], target_hu: np.ndarray, seconds: dict[str, float],
                 n_boot: int, seed: int) -> dict[str, dict[str, Any]]:
    """Per method: mean of each per-image paired metric against `target_hu` (HU, abdomen
    window) with its 95% percentile-bootstrap CI as {"value", "low", "high"}, plus seconds."""
    from genmed.metrics import bootstrap_ci, paired_per_image

    table: dict[str, dict[str, Any]] = {}
    for method, pred in outputs.items():
        per = paired_per_image(pred, target_hu, ABDOMEN_WINDOW_HU)
        table[method] = {k: bootstrap_ci(np.mean, v.astype(np.float64), n_boot=n_boot,
                                         seed=seed).interval() for k, v in per.items()}
        table[method]["seconds"] = seconds[method]
    return table


def region_error(outputs: dict[str, np.ndarray], target_hu: np.ndarray, regions: dict[str, np.ndarray],
                n_boot: int, seed: int, absolute: bool = False) -> dict[str, dict[str, Any]]:
    """Per method and region: the mean signed error (HU; `absolute`: the mean absolute error) of
    `outputs` against `target_hu` inside each (N, H, W) boolean region, both clipped to the
    abdomen window, averaged over the images that hold the region, with its 95% bootstrap CI
    ({"value", "low", "high", "n_images"}; None when fewer than two images hold it). A denoiser
    that shifts lesion HU is dangerous."""
    from genmed.metrics import bootstrap_ci

    lo, hi = ABDOMEN_RANGE_HU
    truth = np.clip(target_hu, lo, hi)
    table: dict[str, dict[str, Any]] = {}
    for method, pred in outputs.items():
        err = np.clip(pred, lo, hi) - truth
        if absolute:
            err = np.abs(err)
        table[method] = {}
        for name, region in regions.items():
            n = region.reshape(len(region), -1).sum(1)
            per = (err * region).reshape(len(err), -1).sum(1)[n > 0] / n[n > 0]
            table[method][name] = None if len(per) < 2 else {
                **bootstrap_ci(np.mean, per.astype(np.float64), n_boot=n_boot, seed=seed).interval(),
                "n_images": int(len(per))}
    return table


def patch_set(patch: int, seed: int, *tensors: torch.Tensor, per_image: int = 4) -> list[torch.Tensor]:
    """A fixed training set of `per_image` random `patch`-sized crops per image, cut at the same
    place in every (N, C, H, W) tensor and seeded by `seed` (for models without patch training of
    their own, e.g. diffusion UNets that are then applied to whole slices)."""
    from genmed.models.supervised import random_crops

    torch.manual_seed(seed)
    return random_crops(patch, *(t.repeat(per_image, *([1] * (t.ndim - 1))) for t in tensors))


def kidney_view(kidney_mask: np.ndarray, spacing_mm: float, stacks: dict[str, np.ndarray],
                indices: list[int], margin_mm: float = 15.0) -> dict[str, np.ndarray]:
    """Slices `indices` of every (N, H, W) stack, each cut to a square centred on that slice's
    kidneys, one side for all (the largest kidney extent plus `margin_mm` each side, at most the
    image), for figures where 256-px details must be visible: {name: (len(indices), S, S)}."""
    size = kidney_mask.shape[-1]
    boxes = [np.nonzero(kidney_mask[i]) for i in indices]
    extent = max([max(r.max() - r.min(), c.max() - c.min()) for r, c in boxes if len(r)], default=size)
    half = min(size // 2, int(np.ceil(extent / 2 + margin_mm / spacing_mm)))
    cuts: dict[str, list[np.ndarray]] = {k: [] for k in stacks}
    for i, (r, c) in zip(indices, boxes, strict=True):
        r0 = int(np.clip((r.min() + r.max()) // 2 - half, 0, size - 2 * half)) if len(r) else 0
        c0 = int(np.clip((c.min() + c.max()) // 2 - half, 0, size - 2 * half)) if len(c) else 0
        for k, v in stacks.items():
            cuts[k].append(v[i, r0:r0 + 2 * half, c0:c0 + 2 * half])
    return {k: np.stack(v) for k, v in cuts.items()}


def hu_columns_figure(cols: dict[str, np.ndarray], n: int = 4, stride: int = 1, title: str = "",
                      row_labels: list[str] | None = None, panel_in: float = 1.6,
                      outlines: np.ndarray | None = None):
    """A matplotlib grid: one column per named (N, H, W) HU stack, `n` rows (every `stride`-th
    slice, labelled `row_labels`), panels `panel_in` inches wide, all shown in the abdomen
    window `ABDOMEN_WINDOW_HU`; `outlines` (N, H, W) bool, e.g. lesion masks, are drawn in red
    on every panel of their row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo, hi = ABDOMEN_RANGE_HU
    fig, axes = plt.subplots(n, len(cols), figsize=(panel_in * len(cols) + 0.9, panel_in * n + 0.4),
                             squeeze=False)
    for j, (name, arr) in enumerate(cols.items()):
        for i in range(n):
            im = axes[i, j].imshow(arr[i * stride], cmap="gray", vmin=lo, vmax=hi)
            if outlines is not None and outlines[i * stride].any():
                axes[i, j].contour(outlines[i * stride].astype(float), levels=[0.5], colors="red",
                                   linewidths=0.8)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
            if j == 0 and row_labels:
                axes[i, j].set_ylabel(row_labels[i], fontsize=8)
        axes[0, j].set_title(name, fontsize=8)
    fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.03).set_label("HU", fontsize=8)
    window = f"window W{hi - lo:.0f}/L{(hi + lo) / 2:.0f} HU ([{lo:.0f}, {hi:.0f}])"
    fig.suptitle(f"{title}, {window}" if title else window, fontsize=9)
    return fig


def seeded(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed`."""
    return torch.Generator(device).manual_seed(int(seed))
