"""Kidney regions at native resolution: one fixed-size crop per kidney, no resampling.

`crop_kidneys(image, kidney_mask, lesion_mask, spacing_mm=...)` takes a stack of axial slices
(D, H, W) (or one slice (H, W)) and ANY binary kidney mask (the phantom's ground truth, a
manifest's mask file, or later a segmenter's prediction) and returns one `KidneyCrop` per kidney
side. Kidneys are separated by connected components (2D, per slice; components smaller than
`min_area_mm2` are dropped as specks), each assigned to the patient's right or left by its
centroid's side of the midline (image centre column unless given; columns grow toward the
patient's left, radiological display, so the patient's RIGHT kidney has the smaller columns).
A side's crop window is `size` x `size` pixels at the source spacing, centred on the bounding
box of that side's kidney over all slices (so one window serves the kidney's whole stack and the
crop is a proper sub-volume with one affine); z is cut to the slices showing the kidney plus
`margin_mm`. `fits` is False when the kidney's box plus `margin_mm` does not fit in the window
(the crop is then still centred and the kidney truncated). Outside the image the crop is padded
with `pad_hu` (air). MONAI does the bounding boxes (`generate_spatial_bounding_box`), cropping
(`SpatialCrop`) and padding (`BorderPad`).

`write_kidney_crops` is `genmed data crop-kidneys`: crops of the phantom or of a `genmed data
make` folder/manifest, written as NIfTI sub-volumes with their origin in the affine plus a
manifest CSV (one row per slice and side) that `load_training_data` reads directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from genmed.errors import UserError
from genmed.fileio import check_output_dir, make_temp_dir

SIDES = ("right", "left")  # the patient's right kidney (image left), then left kidney

__all__ = ["SIDES", "CropResult", "KidneyCrop", "crop_kidneys", "write_kidney_crops"]


@dataclass
class KidneyCrop:
    """One kidney's crop: arrays (d, size, size) at the source spacing and where they came from."""

    side: str  # "right" or "left" (the patient's)
    image: np.ndarray  # float32 (d, size, size), source intensities (HU for CT)
    kidney_mask: np.ndarray  # uint8 (d, size, size): this side's kidney only
    lesion_mask: np.ndarray  # uint8 (d, size, size): lesion pixels on this side
    z0: int  # first source slice of the crop (crop slice j = source slice z0 + j)
    r0: int  # source row of the crop's first row (may be < 0: padded)
    c0: int  # source column of the crop's first column (may be < 0: padded)
    spacing_mm: tuple[float, float, float]  # (z, row, column) mm, the source's
    kidney_bbox: tuple[int, int, int, int]  # union box over slices: r0, c0, r1, c1 (source px, end excl.)
    fits: bool  # kidney box + margin inside the window
    slice_bbox: list[tuple[int, int, int, int] | None] = field(default_factory=list)  # per crop slice

    @property
    def size(self) -> int:
        return self.image.shape[-1]

    def affine(self) -> np.ndarray:
        """NIfTI affine (RAS+, like `save_nifti`): voxel (col, row, slice) -> mm in the source frame."""
        dz, dy, dx = self.spacing_mm
        a = np.diag([-dx, -dy, dz, 1.0])
        a[:3, 3] = [-dx * self.c0, -dy * self.r0, dz * self.z0]
        return a


def _as_stack(a: np.ndarray | None, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise UserError(f"{name} must be 2D (H, W) or a stack (D, H, W), got shape {a.shape}")
    if shape is not None and a.shape != shape:
        raise UserError(f"{name} shape {a.shape} differs from the image's {shape}")
    return a


def kidney_sides(kidney_mask: np.ndarray, *, spacing_mm: tuple[float, float], midline_col: float | None = None,
                 min_area_mm2: float = 20.0) -> dict[str, np.ndarray]:
    """{"right": mask, "left": mask} (bool, (D, H, W)): connected components per slice, by side."""
    mask = _as_stack(kidney_mask, "kidney mask").astype(bool)
    d, h, w = mask.shape
    mid = (w - 1) / 2.0 if midline_col is None else float(midline_col)
    min_px = max(1, int(np.ceil(min_area_mm2 / (spacing_mm[0] * spacing_mm[1]))))
    out = {s: np.zeros_like(mask) for s in SIDES}
    cols = np.arange(w)
    for k in range(d):
        lab, n = ndimage.label(mask[k])  # 4-connected in-plane
        if n == 0:
            continue
        area = np.bincount(lab.ravel(), minlength=n + 1)
        col_sum = np.bincount(lab.ravel(), weights=np.broadcast_to(cols, (h, w)).ravel(), minlength=n + 1)
        for j in range(1, n + 1):
            if area[j] < min_px:
                continue
            side = "right" if col_sum[j] / area[j] < mid else "left"
            out[side][k] |= lab == j
    return out


def _bbox(mask: np.ndarray) -> tuple[list[int], list[int]]:
    """MONAI's bounding box of a (D, H, W) mask: start, end (exclusive) per axis."""
    from monai.transforms.utils import generate_spatial_bounding_box

    start, end = generate_spatial_bounding_box(mask[None])
    return [int(v) for v in start], [int(v) for v in end]


def _crop_pad(a: np.ndarray, start: list[int], end: list[int], value: float) -> np.ndarray:
    """a[start:end] per axis (D, H, W) with out-of-range parts padded by `value` (MONAI)."""
    from monai.transforms import BorderPad, SpatialCrop

    shape = a.shape
    lo = [max(0, s) for s in start]
    hi = [min(n, e) for n, e in zip(shape, end, strict=True)]
    part = SpatialCrop(roi_start=lo, roi_end=hi)(a[None])
    border = []
    for s, e, l_, h_ in zip(start, end, lo, hi, strict=True):
        border += [l_ - s, e - h_]
    if any(border):
        part = BorderPad(spatial_border=border, mode="constant", value=value)(part)
    return np.asarray(part[0]).astype(a.dtype, copy=False)


MAX_MARGIN_MM = 500.0  # wider than any CT field of view: a larger margin is a typo


def check_margin(margin_mm: float, name: str) -> None:
    """Refuse a margin (mm) that is negative, not finite or over `MAX_MARGIN_MM`."""
    if not (np.isfinite(margin_mm) and 0 <= margin_mm <= MAX_MARGIN_MM):
        raise UserError(f"{name}={margin_mm} must be between 0 and {MAX_MARGIN_MM:g} mm")


def crop_kidneys(image: np.ndarray, kidney_mask: np.ndarray, lesion_mask: np.ndarray | None = None, *,
                 spacing_mm: tuple[float, ...], size: int = 96, margin_mm: float = 10.0,
                 midline_col: float | None = None, min_area_mm2: float = 20.0,
                 pad_value: float = -1000.0) -> list[KidneyCrop]:
    """Crop each kidney side of `image` ((H, W) or (D, H, W)) at native spacing; see the module doc.

    `spacing_mm` is (row, col) or (z, row, col) mm. Returns 0, 1 or 2 crops (right first).
    """
    img = _as_stack(image, "image")
    kid = _as_stack(kidney_mask, "kidney mask", img.shape)
    les = _as_stack(lesion_mask, "lesion mask", img.shape)
    sp = tuple(float(s) for s in spacing_mm)
    if len(sp) == 2:
        sp = (1.0, *sp)
    if len(sp) != 3 or not all(np.isfinite(s) and s > 0 for s in sp):
        raise UserError(f"spacing_mm={spacing_mm} must be 2 or 3 positive numbers (mm)")
    if not 8 <= int(size) <= 1024:
        raise UserError(f"crop size={size} must be between 8 and 1024 pixels")
    check_margin(margin_mm, "margin_mm")
    if not np.isfinite(img).all():
        raise UserError("image has NaN/Inf pixels")
    size = int(size)
    d, h, w = img.shape
    sides = kidney_sides(kid, spacing_mm=sp[1:], midline_col=midline_col, min_area_mm2=min_area_mm2)
    mid = (w - 1) / 2.0 if midline_col is None else float(midline_col)
    crops = []
    for side in SIDES:
        region = sides[side]
        if not region.any():
            continue
        (z_lo, r_lo, c_lo), (z_hi, r_hi, c_hi) = _bbox(region)
        mz = int(np.ceil(margin_mm / sp[0])) if d > 1 else 0
        my, mx = margin_mm / sp[1], margin_mm / sp[2]
        fits = (r_hi - r_lo) + 2 * my <= size and (c_hi - c_lo) + 2 * mx <= size
        r0 = int(np.floor((r_lo + r_hi) / 2.0 - size / 2.0))
        c0 = int(np.floor((c_lo + c_hi) / 2.0 - size / 2.0))
        z0, z1 = max(0, z_lo - mz), min(d, z_hi + mz)
        start, end = [z0, r0, c0], [z1, r0 + size, c0 + size]
        on_side = np.zeros((1, 1, w), bool)
        on_side[..., :] = (np.arange(w) < mid) if side == "right" else (np.arange(w) >= mid)
        side_lesion = (les.astype(bool) & on_side) if les is not None else np.zeros_like(region)
        crop = KidneyCrop(
            side=side, image=_crop_pad(img.astype(np.float32, copy=False), start, end, pad_value),
            kidney_mask=_crop_pad(region.astype(np.uint8), start, end, 0),
            lesion_mask=_crop_pad(side_lesion.astype(np.uint8), start, end, 0),
            z0=z0, r0=r0, c0=c0, spacing_mm=sp, kidney_bbox=(r_lo, c_lo, r_hi, c_hi), fits=bool(fits))
        for k in range(z0, z1):
            crop.slice_bbox.append(_slice_box(region[k]))
        crops.append(crop)
    return crops


def _slice_box(m: np.ndarray) -> tuple[int, int, int, int] | None:
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


# ---------------------------------------------------------------- writing (genmed data crop-kidneys)


@dataclass(frozen=True)
class CropResult:
    out: Path
    manifest: Path
    n_crops: int  # kidney sub-volumes written
    n_rows: int  # manifest rows (one per slice and side)
    n_truncated: int  # crops whose kidney + margin did not fit
    label_counts: dict[str, int]


@dataclass
class _Source:
    """One source stack: a patient's slices (2D) or volume (3D)."""

    patient_id: str
    image: np.ndarray  # (D, H, W)
    mask: np.ndarray  # (D, H, W) kidney mask (bool)
    lesion: np.ndarray  # (D, H, W) bool
    spacing: tuple[float, float, float]
    labels: np.ndarray  # (D,) int label index per slice (kind of the slice's lesion; 0 healthy)
    rows: np.ndarray  # (D,) bool: slice listed in the source (rows written only for these)
    source_path: str
    source_slice: np.ndarray  # (D,) int
    split: str
    noise_hu: np.ndarray  # (D,) float
    noisy: np.ndarray  # (D,) bool
    lesion_mm: np.ndarray  # (D,) in-plane lesion diameter (mm), NaN if unknown


def _phantom_sources(patients: int, slices_per_patient: int, size: int, seed: int, three_d: bool,
                     noise_model: str) -> Iterable[_Source]:
    from genmed.data.phantom import PhantomConfig, make_slices, make_volumes
    from genmed.data.splits import patient_split

    cfg = PhantomConfig(size=size, noise_model=noise_model)
    if three_d:
        v = make_volumes(patients, cfg, seed)
        split_idx = patient_split(v.patient_id, seed=seed)
        split_of = {v.patient_id[i]: n for n, idx in split_idx.items() for i in idx}
        for i, pid in enumerate(v.patient_id):
            d = v.image.shape[1]
            yield _Source(pid, v.image[i], v.kidney_mask[i].astype(bool), v.lesion_mask[i].astype(bool),
                          v.spacing_mm, v.slice_label[i], np.ones(d, bool), "phantom", np.arange(d),
                          split_of[pid], np.full(d, v.noise_hu[i]), np.full(d, bool(v.noisy[i])),
                          np.full(d, np.nan))
        return
    s = make_slices(patients, slices_per_patient, cfg, seed)
    split_idx = patient_split(s.patient_id, seed=seed)
    split_of = {s.patient_id[i]: n for n, idx in split_idx.items() for i in idx}
    k = slices_per_patient
    sp = (float(s.spacing_mm[0]), float(s.spacing_mm[1]), float(s.spacing_mm[1]))
    for j in range(patients):
        sl = slice(j * k, (j + 1) * k)
        pid = s.patient_id[j * k]
        yield _Source(pid, s.image[sl], s.kidney_mask[sl].astype(bool), s.lesion_mask[sl].astype(bool), sp,
                      s.label[sl], np.ones(k, bool), "phantom", s.slice_index[sl], split_of[pid],
                      s.noise_hu[sl], s.noisy[sl], s.lesion_diameter_mm[sl])


def _manifest_sources(path: Path, mask_column: str, lesion_column: str) -> Iterable[_Source]:
    from genmed.data.io import load
    from genmed.data.manifest import read_manifest

    df = read_manifest(path)
    for col, what in ((mask_column, "kidney masks (any mask: nonzero = kidney)"),
                      (lesion_column, "lesion masks (value 2 = lesion)")):
        if col not in df.columns:
            raise UserError(f"{path}: no column {col!r} with {what}")
        if df[col].isna().any():
            raise UserError(f"{path}: column {col!r} is empty in row {int(df[col].isna().argmax()) + 2}")
    has_slice = "slice" in df.columns

    def resolve(ref: str) -> Path:
        p = Path(str(ref))
        return p if p.is_absolute() else path.parent / p

    for (img_ref, mask_ref, les_ref), grp in df.groupby(["path", mask_column, lesion_column], sort=False):
        img = load(resolve(img_ref), ndim=(2, 3))
        arr = img.array
        m = load(resolve(mask_ref), ndim=(2, 3)).array
        lm = m if les_ref == mask_ref else load(resolve(les_ref), ndim=(2, 3)).array
        for ref, a in ((mask_ref, m), (les_ref, lm)):
            if a.shape != arr.shape:
                raise UserError(f"{resolve(ref)}: mask shape {a.shape} differs from image {resolve(img_ref)} "
                                f"{arr.shape}")
        if arr.ndim == 2:
            arr, m, lm = arr[None], m[None], lm[None]
            spacing = (1.0, *img.spacing)
        else:
            spacing = tuple(img.spacing)
        d = arr.shape[0]
        labels = np.zeros(d, np.int64)
        listed = np.zeros(d, bool)
        noise = np.full(d, np.nan)
        noisy = np.zeros(d, bool)
        diam = np.full(d, np.nan)
        for row in grp.itertuples(index=False):
            sl = getattr(row, "slice") if has_slice else None
            idx = range(d) if sl is None or (isinstance(sl, float) and np.isnan(sl)) else [int(sl)]
            for k in idx:
                if not 0 <= k < d:
                    raise UserError(f"{path}: slice {k} outside {resolve(img_ref)} ({d} slices)")
                labels[k], listed[k] = int(row.label), True
                noise[k] = float(getattr(row, "noise_hu", np.nan))
                noisy[k] = bool(getattr(row, "noisy", False))
                diam[k] = float(getattr(row, "lesion_diameter_mm", np.nan))
        pid = str(grp["patient_id"].iloc[0])
        split = str(grp["split"].iloc[0]) if "split" in grp.columns else ""
        yield _Source(pid, arr, m >= 0.5, lm >= 1.5, spacing, labels, listed, str(img_ref), np.arange(d), split,
                      noise, noisy, diam)


def write_kidney_crops(data: str | os.PathLike, out: str | os.PathLike, *, size: int = 96,
                       margin_mm: float = 10.0, mask_column: str = "mask_path",
                       lesion_column: str | None = None, patients: int = 8,
                       slices_per_patient: int = 8, phantom_size: int = 256, three_d: bool = False,
                       noise_model: str = "gaussian", seed: int = 0, overwrite: bool = False) -> CropResult:
    """Crop every kidney of `data` ("phantom", a manifest CSV or a `genmed data make` folder) to `out`.

    Manifest sources: kidneys from `mask_column` (nonzero = kidney: ground truth or a segmenter's
    prediction), lesions from `lesion_column` (value 2; default the same column). A crop row is
    labelled with its slice's lesion kind only when that kidney's crop holds lesion pixels.

    Layout: images/, kidney/, lesion/ and masks/ (0 background, 1 kidney, 2 lesion) hold one
    NIfTI sub-volume per patient and side (`<patient>_<side>.nii.gz`, affine = the crop's origin
    and spacing in the source frame); manifest.csv has one row per slice showing the kidney.
    Everything is written to a hidden folder next to `out` and renamed at the end.
    """
    from genmed.data.phantom import LABELS

    out = Path(out)
    if not 8 <= size <= 1024:
        raise UserError(f"--size={size} must be between 8 and 1024 pixels")
    check_margin(margin_mm, "--margin-mm")
    check_output_dir(out)  # an existing file (even with --overwrite) or a path under one
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: exists and is not empty; choose a new folder or pass --overwrite")
    if str(data) == "phantom":
        if patients < 1 or slices_per_patient < 1:
            raise UserError(f"--patients={patients} and --slices-per-patient={slices_per_patient} must be >= 1")
        from genmed.errors import check_choice

        check_choice("--noise-model", noise_model, ("gaussian", "radon"))
        sources = _phantom_sources(patients, slices_per_patient, phantom_size, seed, three_d, noise_model)
        source_desc = {"data": "phantom", "patients": patients, "slices_per_patient": slices_per_patient,
                       "phantom_size": phantom_size, "three_d": three_d, "noise_model": noise_model, "seed": seed}
    else:
        path = Path(data)
        if path.is_dir():
            path = path / "manifest.csv"
        if not path.is_file():
            raise UserError(f"{data}: not 'phantom', a manifest CSV or a folder with manifest.csv")
        if path.suffix.lower() != ".csv":
            raise UserError(f"{data}: expected a manifest .csv (from `genmed data make`)")
        lesion_column = lesion_column or mask_column
        sources = _manifest_sources(path, mask_column, lesion_column)
        source_desc = {"data": str(path), "mask_column": mask_column, "lesion_column": lesion_column}
    tmp = make_temp_dir(out)
    try:
        rows, n_crops, n_trunc = _write_all(tmp, sources, size, margin_mm, LABELS)
        if not rows:
            raise UserError(f"{data}: no kidney pixels in any mask; nothing to crop")
        import pandas as pd

        from genmed.fileio import write_json
        from genmed.versions import versions

        df = pd.DataFrame(rows)
        df.to_csv(tmp / "manifest.csv", index=False)
        write_json(tmp / "crops.json", {"source": source_desc, "size": size, "margin_mm": margin_mm,
                                        "n_crops": n_crops, "n_rows": len(df), "n_truncated": n_trunc,
                                        "versions": versions()})
        from genmed.data.export import _swap_in

        _swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    counts = {name: int((df["label"] == name).sum()) for name in LABELS}
    return CropResult(out, out / "manifest.csv", n_crops, len(df), n_trunc, counts)


def _write_all(tmp: Path, sources: Iterable[_Source], size: int, margin_mm: float, labels_names) -> tuple:
    rows: list[dict] = []
    n_crops = n_trunc = 0
    for src in sources:
        crops = crop_kidneys(src.image, src.mask, src.lesion, spacing_mm=src.spacing, size=size,
                             margin_mm=margin_mm)
        for c in crops:
            name = f"{src.patient_id}_{c.side}.nii.gz"
            combined = np.where(c.lesion_mask > 0, 2, c.kidney_mask).astype(np.uint8)
            for folder, arr, kind in (("images", c.image, "CT"), ("kidney", c.kidney_mask, "SEG"),
                                      ("lesion", c.lesion_mask, "SEG"), ("masks", combined, "SEG")):
                _save(tmp / folder / name, arr, c, kind, f"kidney crop {c.side} {folder}")
            n_crops += 1
            n_trunc += not c.fits
            dz, dy, dx = c.spacing_mm
            for j, box in enumerate(c.slice_bbox):
                k = c.z0 + j
                if box is None or not src.rows[k]:
                    continue
                lesion_px = int(c.lesion_mask[j].sum())
                label = labels_names[int(src.labels[k])] if lesion_px and src.labels[k] > 0 else labels_names[0]
                rows.append({
                    "path": f"images/{name}", "mask_path": f"masks/{name}", "patient_id": src.patient_id,
                    "slice": j, "label": label, "noise_hu": round(float(src.noise_hu[k]), 2),
                    "noisy": bool(src.noisy[k]), "split": src.split, "side": c.side,
                    "kidney_path": f"kidney/{name}", "lesion_path": f"lesion/{name}",
                    "source_path": src.source_path, "source_slice": int(src.source_slice[k]),
                    "crop_r0": c.r0, "crop_c0": c.c0, "crop_r1": c.r0 + c.size, "crop_c1": c.c0 + c.size,
                    "crop_y0_mm": round(c.r0 * dy, 3), "crop_x0_mm": round(c.c0 * dx, 3),
                    "crop_y1_mm": round((c.r0 + c.size) * dy, 3), "crop_x1_mm": round((c.c0 + c.size) * dx, 3),
                    "kidney_r0": box[0], "kidney_c0": box[1], "kidney_r1": box[2], "kidney_c1": box[3],
                    "kidney_y0_mm": round(box[0] * dy, 3), "kidney_x0_mm": round(box[1] * dx, 3),
                    "kidney_y1_mm": round(box[2] * dy, 3), "kidney_x1_mm": round(box[3] * dx, 3),
                    "spacing_y_mm": dy, "spacing_x_mm": dx, "spacing_z_mm": dz,
                    "lesion_px": lesion_px,
                    "lesion_diameter_mm": round(float(src.lesion_mm[k]), 2) if lesion_px else 0.0,
                    "fits": c.fits,
                })
    return rows, n_crops, n_trunc


def _save(path: Path, arr: np.ndarray, crop: KidneyCrop, modality: str, description: str) -> None:
    """Write a (d, size, size) crop as NIfTI with the crop's affine (atomic)."""
    import nibabel as nib

    from genmed.fileio import atomic_path

    nii = nib.Nifti1Image(np.ascontiguousarray(arr.T), crop.affine())
    dz, dy, dx = crop.spacing_mm
    nii.header.set_zooms((dx, dy, dz))
    nii.header.set_xyzt_units("mm", "sec")
    nii.header["descrip"] = f"genmed modality={modality} {description}"[:79].encode()
    with atomic_path(path) as tmp:
        nib.save(nii, str(tmp))
