"""Read one example's image (NIfTI, DICOM, PNG/TIFF/JPEG, .npy) and render it as a PNG.

CT in Hounsfield units (NIfTI, DICOM, .npy) is shown through a window (abdomen: level 40 HU,
width 400 HU); 8-bit pictures (PNG) are shown as stored. A 3D volume shows its middle slice
along the last axis. `read_image` is the single place to swap for `genmed.data.io.load`.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from genmed.errors import UserError

WINDOW_LEVEL_HU = 40.0  # abdomen window (HU)
WINDOW_WIDTH_HU = 400.0  # (HU)


def read_image(path: str | Path) -> tuple[np.ndarray, bool]:
    """Return (2D float array, is_hu) for the image at `path`; `UserError` if unreadable."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise UserError(f"image file {path}: not found")
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            from genmed.data.io import check_nifti_size

            nii = nib.load(str(path))
            check_nifti_size(path, nii)  # header sizes checked before allocating
            arr, is_hu = np.asarray(nii.dataobj, dtype=np.float32), True
        elif name.endswith((".dcm", ".dicom")):
            import pydicom

            ds = pydicom.dcmread(str(path))
            slope = float(getattr(ds, "RescaleSlope", 1.0))
            intercept = float(getattr(ds, "RescaleIntercept", 0.0))
            arr, is_hu = ds.pixel_array.astype(np.float32) * slope + intercept, True
        elif name.endswith(".npy"):
            from genmed.data.io import check_npy_file

            check_npy_file(path)
            arr, is_hu = np.load(path, allow_pickle=False).astype(np.float32), True
        else:
            from genmed.data.io import open_picture

            with open_picture(path) as im:
                arr, is_hu = np.asarray(im.convert("L"), dtype=np.float32), False
    except UserError:
        raise
    except Exception as exc:  # any reader failure is a bad file, shown to the reviewer
        raise UserError(f"image file {path}: cannot be read ({type(exc).__name__})") from None
    arr = np.squeeze(arr)
    while arr.ndim > 2:
        arr = arr[..., arr.shape[-1] // 2]
    if arr.ndim != 2:
        raise UserError(f"image file {path}: expected a 2D or 3D image, got shape {arr.shape}")
    return arr, is_hu


def window(hu: np.ndarray, level: float = WINDOW_LEVEL_HU, width: float = WINDOW_WIDTH_HU) -> np.ndarray:
    """Map HU to uint8 grey levels through the window [level - width/2, level + width/2]."""
    lo = level - width / 2
    return (np.clip((hu - lo) / width, 0.0, 1.0) * 255).round().astype(np.uint8)


def render_png(path: str | Path, level: float = WINDOW_LEVEL_HU, width: float = WINDOW_WIDTH_HU) -> bytes:
    """PNG bytes of the image at `path`, windowed if it is CT in HU."""
    from PIL import Image

    arr, is_hu = read_image(path)
    img = window(arr, level, width) if is_hu else np.clip(arr, 0, 255).astype(np.uint8)
    if is_hu and path_is_nifti(path):
        img = np.rot90(img)  # NIfTI stores (x, y): show rows top to bottom
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG")
    return buf.getvalue()


def path_is_nifti(path: str | Path) -> bool:
    """True for .nii / .nii.gz."""
    return str(path).lower().endswith((".nii", ".nii.gz"))
