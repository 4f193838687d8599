"""A user's folder of scans -> a manifest: one row per volume, with what genmed will read.

`scan_folder` walks FOLDER recursively and finds the volumes in it:
- each NIfTI file (.nii, .nii.gz);
- classic DICOM files grouped by SeriesInstanceUID (wherever they lie under FOLDER), and
  enhanced multi-frame DICOM files (one series, usually one file); non-image DICOM objects
  (DICOMDIR, structured reports) are skipped;
- PNG/TIFF/JPEG: the files of one folder of same-size 2D images form one volume (slices in
  natural name order); a folder with a single picture, or pictures of different sizes, gives
  one 2D row per file; a multi-page TIFF is one volume.
Every volume is read as training will read it (`genmed.data.io.load`: rescale, canonical LPS
orientation, modality), so what the manifest says is what the model gets. A volume that cannot
be read (e.g. a series with two orientations) is listed as skipped with its one-line reason,
never silently dropped.

Patient id: the DICOM PatientID, else the first folder under FOLDER (under the class folder with
`labels="folders"`), else the file's own name. Labels are optional: `labels="folders"` takes
them from first-level folders named after LABELS (healthy, benign, malignant); without labels
the manifest has no `label` column and the data trains unconditionally.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from genmed.data.io import NIFTI_SUFFIXES, file_kind, load
from genmed.data.phantom import LABELS
from genmed.errors import UserError, check_choice

COLUMNS = ("path", "series_uid", "patient_id", "modality", "units", "shape", "spacing_mm",
           "orientation", "format", "n_files")


@dataclass
class Volume:
    """One manifest row."""

    path: str  # relative to the manifest's folder (absolute if on another drive)
    series_uid: str
    patient_id: str
    modality: str
    units: str
    shape: str  # "D x H x W" (or "H x W")
    spacing_mm: str  # same order
    orientation: str  # "LPS" (canonical) or "" for 2D images without geometry
    format: str
    n_files: int
    label: str = ""


@dataclass
class ScanResult:
    folder: Path
    volumes: list[Volume] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    labelled: bool = False
    left_out: Counter = field(default_factory=Counter)  # modality -> volumes not kept (--modality)


def _candidates(folder: Path, rel_to: Path):
    """(item path, series uid or "", what it is, n files) for every volume under `folder`."""
    from genmed.data.dicom import is_image, read_dicom

    series: dict[str, list[Path]] = {}
    items: list[tuple[Path, str, str, int]] = []
    skipped: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(root)
        pictures = []
        for name in sorted(files):
            if name.startswith("."):
                continue
            f = here / name
            kind = file_kind(f)
            if kind == "nifti":
                items.append((f, "", "nifti", 1))
            elif kind == "dicom":
                try:
                    head = read_dicom(f, stop_before_pixels=True)
                except UserError as exc:
                    skipped.append((_rel(f, rel_to), str(exc).split(": ", 1)[-1]))
                    continue
                if not is_image(head):
                    skipped.append((_rel(f, rel_to), "DICOM without an image (DICOMDIR, report, ...)"))
                    continue
                series.setdefault(str(head.get("SeriesInstanceUID", "")) or str(f), []).append(f)
            elif kind == "pil":
                pictures.append(f)
            elif kind == "npz":
                skipped.append((_rel(f, rel_to), "a .npz data set: give it to --data directly"))
            elif not name.lower().endswith((".csv", ".json", ".txt", ".md")):
                skipped.append((_rel(f, rel_to), "not an image file"))
        items += _picture_items(here, pictures)
    for uid, group in series.items():
        parent = Path(os.path.commonpath([str(f.parent) for f in group]))
        item = group[0] if len(group) == 1 else parent
        items.append((item, uid, "dicom", len(group)))
    return items, skipped


def _picture_items(folder: Path, pictures: list[Path]) -> list[tuple[Path, str, str, int]]:
    if len(pictures) <= 1:
        return [(p, "", "picture", 1) for p in pictures]
    from PIL import Image as PILImage

    sizes = set()
    for p in pictures:
        try:
            with PILImage.open(p) as im:
                sizes.add((im.size, getattr(im, "n_frames", 1)))
        except OSError:
            sizes.add(("unreadable", p.name))
    if len(sizes) == 1 and next(iter(sizes))[1] == 1:
        return [(folder, "", "picture folder", len(pictures))]
    return [(p, "", "picture", 1) for p in pictures]


def _rel(p: Path, base: Path) -> str:
    try:
        return os.path.relpath(p, base)
    except ValueError:  # another drive
        return str(p.resolve())


def _first_folder(item: Path, folder: Path, labelled: bool) -> tuple[str, str]:
    """(label or "", patient fallback) from the item's folders under `folder`."""
    parts = item.relative_to(folder).parts
    label = ""
    if labelled:
        label, parts = parts[0], parts[1:]
    if len(parts) > 1:
        return label, parts[0]
    name = parts[0] if parts else item.name
    for suffix in NIFTI_SUFFIXES:
        if name.lower().endswith(suffix):
            return label, name[: -len(suffix)]
    return label, Path(name).stem if "." in name else name


def scan_folder(folder: str | os.PathLike, *, manifest_dir: str | os.PathLike | None = None,
                labels: str = "none", modalities: tuple[str, ...] = ()) -> ScanResult:
    """Every volume under `folder` (see the module docstring); paths relative to `manifest_dir`
    (default: `folder`). `modalities` (e.g. ("CT",)): keep only those (one model, one modality)."""
    check_choice("labels", labels, ("none", "folders"))
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: not a folder")
    base = Path(manifest_dir) if manifest_dir is not None else folder
    labelled = labels == "folders"
    if labelled:
        firsts = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
        unknown = [d for d in firsts if d not in LABELS]
        if not firsts or unknown:
            raise UserError(f"{folder}: --labels folders needs first-level folders named "
                            f"{', '.join(LABELS)}; found {unknown or 'none'}")
    items, skipped = _candidates(folder, base)
    result = ScanResult(folder, skipped=skipped, labelled=labelled)
    for item, uid, what, n in sorted(items, key=lambda t: (str(t[0]), t[1])):
        try:
            img = load(item, ndim=(2, 3), series_uid=uid or None)
        except UserError as exc:
            where = _rel(item, base) + (f" (series ...{uid[-12:]})" if uid and item.is_dir() else "")
            result.skipped.append((where, str(exc).split(": ", 1)[-1]))
            continue
        if modalities and img.modality not in modalities:
            result.left_out[img.modality] += 1
            continue
        if labelled and (item == folder or (item.parent == folder and item.is_file())):
            result.skipped.append((_rel(item, base), "not inside a class folder"))
            continue
        label, fallback = _first_folder(item, folder, labelled)
        result.volumes.append(Volume(
            path=_rel(item, base), series_uid=uid if what == "dicom" else "",
            patient_id=str(img.meta.get("patient_id") or fallback), modality=img.modality,
            units=img.units, shape=" x ".join(str(s) for s in img.array.shape),
            spacing_mm=" x ".join(f"{s:.4g}" for s in img.spacing),
            orientation=img.orientation or "", format=str(img.meta.get("format", what)),
            n_files=n, label=label))
    return result


def scan_manifest(csv: str | os.PathLike) -> ScanResult:
    """A manifest's rows read as training reads them, as a `ScanResult` (for `data info`)."""
    from genmed.data.manifest import read_manifest

    csv = Path(csv)
    df = read_manifest(csv)
    result = ScanResult(csv, labelled="label" in df.columns)
    seen: set[tuple[str, str]] = set()
    for row in df.itertuples(index=False):
        uid = str(getattr(row, "series_uid", "") or "")
        uid = "" if uid == "nan" else uid
        if (row.path, uid) in seen:  # slice rows of one volume
            continue
        seen.add((row.path, uid))
        file = Path(row.path) if Path(row.path).is_absolute() else csv.parent / row.path
        try:
            img = load(file, series_uid=uid or None)
        except UserError as exc:
            result.skipped.append((row.path, str(exc).split(": ", 1)[-1]))
            continue
        pid = str(getattr(row, "patient_id", "") or "")
        label = getattr(row, "label", "")
        result.volumes.append(Volume(
            path=row.path, series_uid=uid,
            patient_id=pid if pid and pid != "nan" else str(img.meta.get("patient_id") or file.name),
            modality=str(getattr(row, "modality", "") or "") if str(getattr(row, "modality", "") or "")
            not in ("", "nan") else img.modality, units=img.units,
            shape=" x ".join(str(x) for x in img.array.shape),
            spacing_mm=" x ".join(f"{x:.4g}" for x in img.spacing), orientation=img.orientation or "",
            format=str(img.meta.get("format", "")), n_files=int(img.meta.get("n_files", 1)),
            label=LABELS[int(label)] if result.labelled else ""))
    return result


def is_collection(path: str | os.PathLike) -> bool:
    """Whether `path` holds several volumes (what `train --data` takes as a folder) rather than
    one image: a manifest CSV, or a folder with sub-folders, NIfTI files or several DICOM series."""
    from genmed.data.dicom import read_dicom

    p = Path(path)
    if p.is_file():
        return p.name.lower().endswith(".csv")
    if not p.is_dir():
        return False
    entries = [e for e in p.iterdir() if not e.name.startswith(".")]
    if any(e.is_dir() for e in entries) or any(file_kind(e) == "nifti" for e in entries):
        return True
    uids = set()
    for e in entries:
        if e.is_file() and file_kind(e) == "dicom":
            try:
                uids.add(str(read_dicom(e, stop_before_pixels=True).get("SeriesInstanceUID", "")))
            except UserError:
                continue
    return len(uids) > 1


def check_manifest_out(out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse, before scanning, a manifest path `write_manifest` could not write: not a .csv
    name, an existing file without `overwrite`, a folder, or an unwritable place."""
    from genmed.fileio import check_output_file

    out = Path(out)
    if not out.name.lower().endswith(".csv"):
        raise UserError(f"{out}: the manifest must be a .csv file")
    check_output_file(out)
    if out.exists() and not overwrite:
        raise UserError(f"{out}: already exists (use --overwrite to replace it)")
    return out


def write_manifest(result: ScanResult, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Atomically write the scan as a manifest CSV (a `label` column only when labelled)."""
    import pandas as pd

    from genmed.fileio import atomic_path

    out = check_manifest_out(out, overwrite=overwrite)
    if not result.volumes:
        raise UserError(f"{result.folder}: no readable volumes found"
                        + (f" ({len(result.skipped)} file(s) skipped)" if result.skipped else ""))
    columns = list(COLUMNS) + (["label"] if result.labelled else [])
    df = pd.DataFrame([asdict(v) for v in result.volumes])[columns]
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return out


def summary_lines(result: ScanResult) -> list[str]:
    """What the scan found, for the terminal: totals, one line per volume, skipped files."""
    vols = result.volumes
    mods = Counter(v.modality for v in vols)
    lines = [f"{len(vols)} volume(s) of {len({v.patient_id for v in vols})} patient(s) in "
             f"{result.folder}: " + ", ".join(f"{n} {m}" for m, n in sorted(mods.items()))
             + ("; labels: " + ", ".join(f"{n} {k}" for k, n in sorted(Counter(v.label for v in vols).items()))
                if result.labelled else "; unlabelled (trains unconditionally)")]
    width = max([len(v.patient_id) for v in vols] + [7])
    lines.append(f"  {'patient':<{width}}  modality  units  {'shape':<15} {'spacing mm':<22} orient  path")
    for v in vols:
        lines.append(f"  {v.patient_id:<{width}}  {v.modality:<8}  {v.units:<5}  {v.shape:<15} "
                     f"{v.spacing_mm:<22} {v.orientation or '-':<6}  {v.path}")
    if len(mods) > 1:
        lines.append("  note: several modalities; a model trains on one: rerun with --modality "
                     "(e.g. --modality CT) or edit the manifest")
    if result.left_out:
        lines.append("  left out by --modality: " + ", ".join(
            f"{n} {m}" for m, n in sorted(result.left_out.items())))
    by_reason: dict[str, list[str]] = {}
    for path, reason in result.skipped:
        by_reason.setdefault(reason, []).append(path)
    for reason, paths in by_reason.items():
        more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
        lines.append(f"  skipped {len(paths)}: {reason}: {', '.join(paths[:3])}{more}")
    return lines
