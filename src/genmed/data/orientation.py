"""Canonical orientation of loaded volumes: every 3D image is turned to LPS on load.

Convention (the DICOM patient system and radiological display): for an array in genmed's
(slice, row, column) order, the column index grows toward the patient's Left, the row index
toward Posterior and the slice index toward Superior. In nibabel's voxel axis codes for
(x = column, y = row, z = slice) that is "LPS" (`save_nifti` writes exactly this affine, so
genmed's own files load unchanged). An RAS-stored NIfTI is flipped in x and y on load; a
sagittal or coronal volume is permuted so that slices are axial.

`reorient` is the same map as MONAI's `Orientation(axcodes="LPS")` (flips and axis
permutations only, no resampling; an oblique volume goes to its closest canonical axes,
`nibabel.orientations.io_orientation`), done with nibabel's pure-numpy functions so that
`genmed data info` need not import torch; a test checks it against MONAI's transform.
The axis codes found in the file are kept as `meta["orientation_source"]`.
"""

from __future__ import annotations

import numpy as np

CANONICAL = "LPS"  # voxel axis codes of (column, row, slice) after loading


def axcodes(affine_ras: np.ndarray) -> str:
    """Axis codes (e.g. "RAS") of a voxel->RAS+ mm affine's first three voxel axes."""
    import nibabel as nib

    return "".join(c or "?" for c in nib.aff2axcodes(np.asarray(affine_ras, float)))


def reorient(xyz: np.ndarray, affine_ras: np.ndarray, spacing_xyz: tuple[float, ...],
             target: str = CANONICAL) -> tuple[np.ndarray, tuple[float, ...], np.ndarray]:
    """Turn `xyz` (x, y, z[, ...] nibabel order) to `target` axis codes.

    Returns (array, spacing in the new x, y, z[, ...] order, new voxel->RAS affine). Axes past
    the third (time) are kept as they are.
    """
    import nibabel.orientations as no

    affine = np.asarray(affine_ras, float)
    current = no.io_orientation(affine)
    wanted = no.axcodes2ornt(tuple(target))
    transform = no.ornt_transform(current, wanted)
    out = no.apply_orientation(xyz, transform)
    spacing = list(spacing_xyz)
    new = list(spacing)
    for axis, (to, _flip) in enumerate(transform):
        new[int(to)] = spacing[axis]
    new_affine = affine @ no.inv_ornt_aff(transform, xyz.shape[:3])
    return np.ascontiguousarray(out), tuple(new), new_affine


def lps_to_ras(affine_lps: np.ndarray) -> np.ndarray:
    """A voxel->LPS (DICOM patient) affine as a voxel->RAS+ (NIfTI) affine."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine_lps, float)


def dicom_affine(row_cosine, col_cosine, first_position, pixel_spacing, slice_step,
                 normal=None) -> np.ndarray:
    """Voxel (column, row, slice) -> RAS+ mm affine of a DICOM stack.

    `row_cosine`, `col_cosine`: ImageOrientationPatient's two triplets (direction of increasing
    column and of increasing row index, in LPS); `pixel_spacing`: PixelSpacing (row spacing,
    column spacing) mm; `slice_step`: mm between consecutive slices along `normal` (default
    row x column cosine).
    """
    r = np.asarray(row_cosine, float)
    c = np.asarray(col_cosine, float)
    n = np.cross(r, c) if normal is None else np.asarray(normal, float)
    lps = np.eye(4)
    lps[:3, 0] = r * float(pixel_spacing[1])
    lps[:3, 1] = c * float(pixel_spacing[0])
    lps[:3, 2] = n * float(slice_step)
    lps[:3, 3] = np.asarray(first_position, float)
    return lps_to_ras(lps)
