"""`ImageDataset`: in-memory images with labels, patient ids and extras, and batch resizing.

Its own module so that the phantom (`datasets`) and the manifest/folder readers (`manifest`)
both build it without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from genmed.data.phantom import LABELS
from genmed.data.transforms import resize
from genmed.errors import UserError

__all__ = ["ImageDataset"]


class ImageDataset(Dataset):
    """In-memory images (N, 1, *spatial) in [-1, 1] with labels, patient ids and extras.

    `volume_ids` (default: the patient ids) name the scan each item comes from (2D slices of
    one volume share it); `info` describes the data as a whole: "modality", "units",
    "intensity" (the `IntensityMap` dict that maps model units back to the data's units),
    "spacing_mm" (of a model pixel), "orientation", "labelled", "source" (see
    `genmed.data.manifest`). Unlabelled data has labels -1 and no class names.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, patient_ids: Sequence[str],
                 extras: Mapping[str, torch.Tensor] | None = None,
                 class_names: Sequence[str] = LABELS, *,
                 volume_ids: Sequence[str] | None = None,
                 info: Mapping[str, Any] | None = None) -> None:
        n = len(images)
        if images.ndim not in (4, 5) or images.shape[1] != 1:
            raise UserError(f"images must be (N, 1, H, W) or (N, 1, D, H, W), got {tuple(images.shape)}")
        if len(labels) != n or len(patient_ids) != n:
            raise UserError(f"{n} images but {len(labels)} labels and {len(patient_ids)} patient ids")
        self.images = images.float()
        self.labels = labels.long()
        self.patient_ids = [str(p) for p in patient_ids]
        self.extras = dict(extras or {})
        self.class_names = tuple(class_names)
        self.volume_ids = [str(v) for v in volume_ids] if volume_ids is not None else list(self.patient_ids)
        if len(self.volume_ids) != n:
            raise UserError(f"{n} images but {len(self.volume_ids)} volume ids")
        self.info = dict(info or {})
        self.summary: dict[str, Any] | None = None  # set by load_training_data (splits)

    @property
    def labelled(self) -> bool:
        """Whether the items carry class labels (False: unconditional training only)."""
        return bool(self.info.get("labelled", True))

    @property
    def spatial_dims(self) -> int:
        return self.images.ndim - 2

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = {"image": self.images[i], "label": self.labels[i], "patient_id": self.patient_ids[i]}
        for key, value in self.extras.items():
            item[key] = value[i]
        return item

    def subset(self, index: Sequence[int] | np.ndarray) -> ImageDataset:
        """A new dataset with the items at `index` (same extras)."""
        idx = torch.as_tensor(np.asarray(index, np.int64))
        return ImageDataset(self.images[idx], self.labels[idx], [self.patient_ids[int(i)] for i in idx],
                            {k: v[idx] for k, v in self.extras.items()}, self.class_names,
                            volume_ids=[self.volume_ids[int(i)] for i in idx], info=self.info)


def _resize_batch(x: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Resize (N, C, *spatial) to `size` per spatial axis (no-op when already that size)."""
    if all(s == size for s in x.shape[2:]) or len(x) == 0:
        return x
    n, c = x.shape[:2]
    flat = resize(x.reshape(n * c, *x.shape[2:]), size, mode)  # items as channels: one call
    return flat.reshape(n, c, *flat.shape[1:])
