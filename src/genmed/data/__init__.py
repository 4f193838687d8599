"""Data: the kidney CT phantom, medical image I/O, transforms, datasets and patient splits.

Heavy pieces (torch datasets, MONAI transforms) are imported on first use of their functions.
"""

from genmed.data.datasets import ImageDataset, load_training_data, phantom_dataset
from genmed.data.export import write_phantom_dataset
from genmed.data.io import Image, describe, load, load_medmnist, save_nifti
from genmed.data.phantom import (LABELS, TISSUES, PhantomConfig, PhantomSlices, PhantomVolumes,
                                 make_slices, make_volumes)
from genmed.data.splits import patient_split
from genmed.data.transforms import (hu_to_unit, resize, unit_to_hu, window_to_uint8,
                                    window_transform)

__all__ = ["LABELS", "TISSUES", "Image", "ImageDataset", "PhantomConfig", "PhantomSlices",
           "PhantomVolumes", "describe", "hu_to_unit", "load", "load_medmnist", "load_training_data",
           "make_slices", "make_volumes", "patient_split", "phantom_dataset", "resize", "save_nifti",
           "unit_to_hu", "window_to_uint8", "window_transform", "write_phantom_dataset"]
