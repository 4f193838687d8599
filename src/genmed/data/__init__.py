"""Data: the kidney CT phantom, medical image I/O, transforms, datasets and patient splits.

Names are imported on first use (PEP 562), so `genmed --help` does not pay for torch/MONAI.
"""

from __future__ import annotations

from genmed._lazy import lazy_exports

_EXPORTS = {
    "genmed.data.phantom": ("LABELS", "TISSUES", "PhantomConfig", "PhantomSlices", "PhantomVolumes",
                            "make_slices", "make_volumes"),
    "genmed.data.transforms": ("hu_to_unit", "unit_to_hu", "resize", "window_to_uint8",
                               "window_transform"),
    "genmed.data.imageset": ("ImageDataset",),
    "genmed.data.datasets": ("load_training_data", "phantom_dataset"),
    "genmed.data.splits": ("patient_split",),
    "genmed.data.io": ("Image", "describe", "load", "load_medmnist", "save_nifti"),
    "genmed.data.export": ("write_phantom_dataset",),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
