"""Contact sheet: a grid of windowed CT slices with label text and colour-coded outlines.

Lesion outlines: benign green, malignant red; kidney outline blue. Text above each tile:
patient id, slice index, label and scan noise (HU). For people to look at, not for models.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage

from genmed.data.phantom import LABELS
from genmed.data.transforms import window_to_uint8
from genmed.fileio import atomic_path

COLOURS = {"kidney": (80, 140, 255), "benign": (40, 220, 90), "malignant": (255, 50, 50)}


def _outline(mask: np.ndarray) -> np.ndarray:
    mask = mask.astype(bool)
    return mask & ~ndimage.binary_erosion(mask)


def render_sheet(images_hu: np.ndarray, captions: Sequence[str], labels: Sequence[int],
                 kidney: np.ndarray | None = None, lesion: np.ndarray | None = None, *,
                 columns: int = 6, zoom: int = 2) -> np.ndarray:
    """(n, H, W) HU slices -> one RGB uint8 grid image (abdomen window L40/W400)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    n, h, w = images_hu.shape
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    text_h = 12
    th, tw = h * zoom + text_h, w * zoom
    sheet = np.zeros((rows * th, columns * tw, 3), np.uint8)
    up = np.ones((zoom, zoom), np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        tile = np.kron(window_to_uint8(images_hu[i]), up)
        rgb = np.repeat(tile[:, :, None], 3, axis=2)
        if kidney is not None:
            rgb[_outline(np.kron(kidney[i], up))] = COLOURS["kidney"]
        if lesion is not None and labels[i] > 0:
            rgb[_outline(np.kron(lesion[i], up))] = COLOURS[LABELS[labels[i]]]
        sheet[r * th + text_h:(r + 1) * th, c * tw:(c + 1) * tw] = rgb
    pil = PILImage.fromarray(sheet)
    draw = ImageDraw.Draw(pil)
    for i, text in enumerate(captions):
        r, c = divmod(i, columns)
        colour = (230, 230, 230) if labels[i] == 0 else COLOURS[LABELS[labels[i]]]
        draw.text((c * tw + 2, r * th), text, fill=colour)
    return np.asarray(pil)


def save_sheet(path: str | os.PathLike, sheet: np.ndarray) -> Path:
    """Atomically write the sheet as a palette PNG (small enough for docs)."""
    from PIL import Image as PILImage

    pil = PILImage.fromarray(sheet).quantize(colors=128, method=PILImage.Quantize.MEDIANCUT)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG", optimize=True)
    return Path(path)


def pick_slices(labels: np.ndarray, patient_ids: np.ndarray, count: int) -> np.ndarray:
    """Indices to show: lesion slices (largest first per patient) and healthy ones, interleaved."""
    order: list[int] = []
    seen: set[str] = set()
    lesion = [i for i in np.nonzero(labels > 0)[0]]
    healthy = [i for i in np.nonzero(labels == 0)[0]]
    # one slice per patient first, so the sheet shows many patients
    for pool in (lesion, healthy):
        for i in pool:
            if patient_ids[i] not in seen and len(order) < count:
                order.append(int(i))
                seen.add(patient_ids[i])
    for i in list(lesion) + list(healthy):
        if len(order) >= count:
            break
        if int(i) not in order:
            order.append(int(i))
    return np.array(sorted(order, key=lambda i: (patient_ids[i], i)), np.int64)
