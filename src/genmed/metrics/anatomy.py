"""Does a CT volume look like an abdomen? Plausibility checks for generated volumes, which have
no feature extractor and so no FID: the share of voxels in each tissue's HU range, a body
outline in each axial slice, and a spine that runs through the stack.

All checks read HU in the abdomen window (W400/L40, [-160, 240] HU), the range generated
volumes live in: air sits at the floor and bone saturates at the ceiling. They are meant to be
read beside the same checks on real volumes (`anatomy_checks` on each), not against fixed
thresholds of "realism". numpy only; pure functions.
"""

from __future__ import annotations

import numpy as np

from genmed.errors import UserError

BONE_HU = 220.0  # cortical and cancellous bone (400-1000 HU) saturate at the window's 240 HU
# HU ranges in the W400/L40 window (the phantom's tissues: docs/data.md, "Hounsfield units")
TISSUE_HU = {"air": (-np.inf, -130.0), "fat": (-130.0, -50.0), "soft_tissue": (-50.0, BONE_HU),
             "bone": (BONE_HU, np.inf)}
SPINE_MIN_AREA_MM2 = 300.0  # one vertebra's bone in an axial slice: body + arch ~900-1600 mm^2
SPINE_MAX_EXTENT_MM = 100.0  # a vertebra with its processes is 50-80 mm wide
SPINE_MAX_DRIFT_MM = (45.0, 15.0)  # (y, x): a vertebral body and its arch lie 30-40 mm apart front to back


def _volume(hu: np.ndarray) -> np.ndarray:
    v = np.asarray(hu, dtype=np.float64)
    if v.ndim != 3 or min(v.shape) < 4:
        raise UserError(f"expected a (D, H, W) volume of at least 4 voxels a side, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise UserError("the volume holds NaN or infinite values")
    return v


def tissue_shares(hu: np.ndarray) -> dict[str, float]:
    """Share of voxels in each `TISSUE_HU` range (they tile the HU axis, so the shares sum to 1)."""
    v = _volume(hu)
    return {name: float(((v >= lo) & (v < hi)).mean()) for name, (lo, hi) in TISSUE_HU.items()}


def body_outline_share(hu: np.ndarray) -> float:
    """Share of axial slices (axis 0) whose four corner squares (side 1/16 of the slice) average
    below -120 HU (air around the body) and whose central quarter averages above 0 HU (tissue
    inside): a flat grey slice fails the first test, a dark empty one the second."""
    v = _volume(hu)
    _, h, w = v.shape
    c = max(1, h // 16), max(1, w // 16)
    corners = np.stack([v[:, :c[0], :c[1]], v[:, :c[0], -c[1]:], v[:, -c[0]:, :c[1]],
                        v[:, -c[0]:, -c[1]:]]).mean(axis=(0, 2, 3))
    centre = v[:, 3 * h // 8:5 * h // 8, 3 * w // 8:5 * w // 8].mean(axis=(1, 2))
    return float(((corners < -120) & (centre > 0)).mean())


def spine_share(hu: np.ndarray, spacing_mm: tuple[float, float, float]) -> float:
    """Share of axial slices that hold a spine: a connected region of bone (>= `BONE_HU`) of at
    least `SPINE_MIN_AREA_MM2`, at most `SPINE_MAX_EXTENT_MM` across, in the middle third of the
    slice left to right, and within `SPINE_MAX_DRIFT_MM` of where the stack's spine runs (the
    median position of the largest such region over the slices). So the spine must be one
    column: bright blobs (noise, or a decoder's texture) are scattered; contrast-enhanced kidneys
    (150-200 HU) stay below the threshold and lie lateral; a volume without bone has none.
    `spacing_mm` (z, y, x)."""
    from scipy import ndimage

    v = _volume(hu)
    if len(spacing_mm) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing_mm):
        raise UserError(f"spacing_mm={spacing_mm}: expected three positive (z, y, x) spacings in mm")
    _, _, w = v.shape
    step = np.array(spacing_mm[1:])
    min_pixels = SPINE_MIN_AREA_MM2 / (step[0] * step[1])
    candidates = []  # per slice: (k, 2) centroids in mm of its bone regions that could be spine, largest first
    for axial in v >= BONE_HU:
        labels, n = ndimage.label(axial)
        index = np.arange(1, n + 1)
        sizes = ndimage.sum_labels(axial, labels, index)
        centres = np.array(ndimage.center_of_mass(axial, labels, index)).reshape(-1, 2)
        extent_mm = np.array([max((sy.stop - sy.start) * step[0], (sx.stop - sx.start) * step[1])
                              for sy, sx in ndimage.find_objects(labels)]).reshape(-1)
        spine_like = ((sizes >= min_pixels) & (extent_mm <= SPINE_MAX_EXTENT_MM)
                      & (np.abs(centres[:, 1] - (w - 1) / 2) <= w / 6))
        order = np.argsort(-sizes[spine_like], kind="stable")
        candidates.append(centres[spine_like][order] * step)
    largest = [c[0] for c in candidates if len(c)]
    if not largest:
        return 0.0
    column = np.median(largest, axis=0)
    near = [len(c) and (np.abs(c - column) <= SPINE_MAX_DRIFT_MM).all(axis=1).any() for c in candidates]
    return float(np.mean(near))


def anatomy_checks(hu: np.ndarray, spacing_mm: tuple[float, float, float]) -> dict[str, float]:
    """All checks of one (D, H, W) volume in HU: tissue shares, body outline and spine shares."""
    return tissue_shares(hu) | {"body_outline": body_outline_share(hu),
                                "spine": spine_share(hu, spacing_mm)}
