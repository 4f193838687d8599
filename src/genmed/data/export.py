"""Write the phantom to disk: NIfTI images and masks, a manifest CSV and a contact sheet.

Layout of the output folder (one NIfTI per patient; 2D slices are stacked along the first
axis, the manifest's `slice` column indexes them; 3D rows have an empty `slice`):

    images/<pid>.nii.gz     contrast-enhanced, with scan noise (HU)
    clean/<pid>.nii.gz      contrast-enhanced, noise-free
    nc/<pid>.nii.gz         non-contrast, with scan noise
    clean_nc/<pid>.nii.gz   non-contrast, noise-free
    masks/<pid>.nii.gz      uint8: 0 background, 1 kidney, 2 lesion
    tissue/<pid>.nii.gz     uint8 tissue label map (phantom.TISSUES)
    manifest.csv            path, mask_path, patient_id, slice, label, noise_hu, noisy, split, ...
    contact_sheet.png       windowed slices, labels, lesion outlines
    phantom.json            config, seed, versions

Everything is written into a hidden temporary folder next to `out` and renamed at the end,
so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genmed.data.contact_sheet import pick_slices, render_sheet, save_sheet
from genmed.data.io import save_nifti
from genmed.data.phantom import LABELS, TISSUES, PhantomConfig, make_slices, make_volumes
from genmed.data.splits import DEFAULT_FRACTIONS, patient_split
from genmed.errors import UserError
from genmed.fileio import check_output_dir, make_temp_dir, write_json

PHASES = {"images": "image", "clean": "clean", "nc": "image_nc", "clean_nc": "clean_nc"}


@dataclass(frozen=True)
class MakeResult:
    out: Path
    manifest: Path
    contact_sheet: Path
    n_items: int
    label_counts: dict[str, int]


def write_phantom_dataset(out: str | os.PathLike, *, n_patients: int = 16, slices_per_patient: int = 8,
                          three_d: bool = False, cfg: PhantomConfig = PhantomConfig(), seed: int = 0,
                          fractions: Mapping[str, float] = DEFAULT_FRACTIONS, sheet_count: int = 24,
                          overwrite: bool = False) -> MakeResult:
    """Generate the phantom and write it under `out` (see module docstring)."""
    out = Path(out)
    if n_patients < 1:
        raise UserError(f"--patients={n_patients} must be >= 1")
    check_output_dir(out)  # an existing file (even with --overwrite) or a path under one
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out}: exists and is not empty; choose a new folder or pass --overwrite")
    tmp = make_temp_dir(out)
    try:
        data = make_volumes(n_patients, cfg, seed) if three_d else make_slices(
            n_patients, slices_per_patient, cfg, seed)
        manifest, sheet = _write_all(tmp, data, three_d, cfg, seed, fractions, sheet_count)
        _swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    counts = {name: int((data.label == i).sum()) for i, name in enumerate(LABELS)}
    return MakeResult(out, out / manifest.name, out / sheet.name, len(data.label), counts)


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename the finished `tmp` folder onto `out` (an old `out` is removed only afterwards)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink()


def _write_all(tmp: Path, data, three_d: bool, cfg: PhantomConfig, seed: int,
               fractions: Mapping[str, float], sheet_count: int) -> tuple[Path, Path]:
    import pandas as pd

    from genmed.config import to_dict
    from genmed.versions import versions

    n_pat = len(np.unique(data.patient_id))
    per = len(data.label) // n_pat  # items per patient (2D: slices; 3D: 1)
    spacing = data.spacing_mm if three_d else (data.spacing_mm[0], data.spacing_mm[1], data.spacing_mm[1])
    pids = data.patient_id[::per]
    split_of = {}
    for name, idx in patient_split(pids, fractions, seed).items():
        split_of.update({pids[i]: name for i in idx})
    mask = data.kidney_mask + data.lesion_mask  # 0 background, 1 kidney, 2 lesion
    rows = []
    for j, pid in enumerate(pids):
        sl = slice(j, j + 1) if three_d else slice(j * per, (j + 1) * per)

        def vol(a: np.ndarray) -> np.ndarray:
            return a[j] if three_d else a[sl]

        for folder, field in PHASES.items():
            save_nifti(tmp / folder / f"{pid}.nii.gz", vol(getattr(data, field)), spacing,
                       modality="CT", description=f"phantom {folder}")
        save_nifti(tmp / "masks" / f"{pid}.nii.gz", vol(mask).astype(np.uint8), spacing,
                   modality="SEG", description="0 bg 1 kidney 2 lesion")
        save_nifti(tmp / "tissue" / f"{pid}.nii.gz", vol(data.tissue), spacing, modality="SEG",
                   description="phantom tissue map")
        items = [(j, None)] if three_d else [(i, int(data.slice_index[i])) for i in range(sl.start, sl.stop)]
        for i, s in items:
            rows.append({
                "path": f"images/{pid}.nii.gz", "mask_path": f"masks/{pid}.nii.gz", "patient_id": pid,
                "slice": s, "label": LABELS[int(data.label[i])], "noise_hu": round(float(data.noise_hu[i]), 2),
                "noisy": bool(data.noisy[i]), "split": split_of[pid],
                "clean_path": f"clean/{pid}.nii.gz", "nc_path": f"nc/{pid}.nii.gz",
                "clean_nc_path": f"clean_nc/{pid}.nii.gz", "tissue_path": f"tissue/{pid}.nii.gz",
                "lesion_diameter_mm": round(float(data.lesion_diameter_mm[i]), 2),
            })
    df = pd.DataFrame(rows)
    df["slice"] = df["slice"].astype("Int64")
    manifest = tmp / "manifest.csv"
    df.to_csv(manifest, index=False)
    sheet = tmp / "contact_sheet.png"
    save_sheet(sheet, contact_sheet_array(data, three_d, sheet_count))
    write_json(tmp / "phantom.json", {"config": to_dict(cfg), "seed": seed, "three_d": three_d,
                                      "n_patients": n_pat, "tissues": TISSUES, "labels": LABELS,
                                      "versions": versions()})
    return manifest, sheet


def contact_sheet_array(data, three_d: bool, count: int = 24) -> np.ndarray:
    """The contact sheet of phantom slices (2D) or each volume's most telling slice (3D)."""
    if three_d:
        area = data.lesion_mask.sum(axis=(2, 3)) * 1000 + data.kidney_mask.sum(axis=(2, 3))
        k = area.argmax(axis=1)[:count]
        n = np.arange(len(k))
        img, kid, les = data.image[n, k], data.kidney_mask[n, k], data.lesion_mask[n, k]
        labels = data.slice_label[n, k]
        caps = [f"{data.patient_id[i]} z{k[i]} {LABELS[labels[i]]} {data.noise_hu[i]:.0f}HU" for i in n]
    else:
        idx = pick_slices(data.label, data.patient_id, count)
        img, kid, les, labels = data.image[idx], data.kidney_mask[idx], data.lesion_mask[idx], data.label[idx]
        caps = [f"{data.patient_id[i]} z{data.slice_index[i]} {LABELS[data.label[i]]} "
                f"{data.noise_hu[i]:.0f}HU" for i in idx]
    return render_sheet(img, caps, labels, kid, les, zoom=2 if img.shape[-1] >= 96 else 3)
