"""Data: the kidney CT phantom, medical image I/O, transforms, datasets and patient splits.

Names are imported on first use (PEP 562), so `genmed --help` does not pay for torch/MONAI.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "genmed.data.phantom": ("LABELS", "TISSUES", "PhantomConfig", "PhantomSlices", "PhantomVolumes",
                            "make_slices", "make_volumes"),
    "genmed.data.transforms": ("hu_to_unit", "unit_to_hu", "resize", "window_to_uint8",
                               "window_transform"),
    "genmed.data.datasets": ("ImageDataset", "load_training_data", "phantom_dataset"),
    "genmed.data.splits": ("patient_split",),
    "genmed.data.io": ("Image", "describe", "load", "load_medmnist", "save_nifti"),
    "genmed.data.export": ("write_phantom_dataset",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'genmed.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
