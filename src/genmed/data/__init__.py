"""Data: the kidney CT phantom, medical image I/O, transforms, datasets and patient splits."""

from genmed.data.phantom import LABELS, TISSUES, PhantomConfig, make_slices, make_volumes
from genmed.data.transforms import hu_to_unit, unit_to_hu

__all__ = ["LABELS", "TISSUES", "PhantomConfig", "hu_to_unit", "make_slices", "make_volumes",
           "unit_to_hu"]
