"""DICOM -> `Image`: classic series (one slice per file) and enhanced multi-frame files.

Classic files carry geometry and rescale at the top level: ImagePositionPatient,
ImageOrientationPatient, PixelSpacing, RescaleSlope/Intercept (or a Modality LUT, applied
with pydicom's `apply_rescale`). Enhanced files (Enhanced CT/MR/PET, `NumberOfFrames` > 1)
keep them per frame in functional groups: each frame's item of PerFrameFunctionalGroupsSequence,
else the SharedFunctionalGroupsSequence item, holds PlanePositionSequence,
PlaneOrientationSequence, PixelMeasuresSequence (PixelSpacing, SliceThickness,
SpacingBetweenSlices) and PixelValueTransformationSequence (RescaleSlope/Intercept), so an
enhanced CT reads in HU with its real spacing.

Frames are sorted along the slice normal (row x column direction) by position, else by
InstanceNumber / InStackPositionNumber; the slice spacing is the median gap between positions.
Slices with different orientations, or several frames at one position (a time series, several
echoes), are refused: a volume has one geometry. Uneven gaps (missing slices) are read as evenly
spaced by the median and flagged in `meta["irregular_slices"]`. Volumes are turned to the
canonical LPS orientation (`genmed.data.orientation`).

RT dose files are volumes: frame positions from GridFrameOffsetVector, values x DoseGridScaling.
A Modality LUT indexes the stored integers; palette colour goes through its palette, and colour
is averaged to grey. Files without preamble or file meta (ACR-NEMA style) are read when they
name a SOP class. Every reading is checked against pydicom's own on every file that ships with
pydicom and pydicom-data (tests/data/test_real_files.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genmed.data.limits import MAX_ELEMENTS
from genmed.data.orientation import CANONICAL, axcodes, dicom_affine, reorient
from genmed.errors import UserError

ORIENTATION_TOL = 1e-4  # direction cosines that differ by more are different orientations


@dataclass
class Frame:
    """One 2D plane of a series: where it lies and how its stored values become real ones."""

    file: Path
    index: int  # frame number inside a multi-frame file (0 for single-frame files)
    position: np.ndarray | None  # ImagePositionPatient, mm (LPS)
    orientation: np.ndarray | None  # ImageOrientationPatient (row cosine, column cosine)
    pixel_spacing: tuple[float, float] | None  # (row spacing, column spacing) mm
    thickness: float | None  # SliceThickness or SpacingBetweenSlices, mm
    rescale: tuple[float, float] | None  # (slope, intercept) from functional groups
    order: float  # InstanceNumber / InStackPositionNumber


def read_dicom(p: Path, stop_before_pixels: bool = False):
    """pydicom dataset of `p`, or a `UserError` naming the file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(str(p), stop_before_pixels=stop_before_pixels)
    except InvalidDicomError as exc:  # no preamble/file meta (ACR-NEMA style): a dataset
        try:                          # that names its SOP class is still DICOM
            ds = pydicom.dcmread(str(p), stop_before_pixels=stop_before_pixels, force=True)
            if "SOPClassUID" in ds:
                _set_transfer_syntax(ds)
                return ds
        except Exception:  # noqa: BLE001  (forced parsing of garbage raises anything)
            pass
        raise UserError(f"{p}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{p}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None


def _set_transfer_syntax(ds) -> None:
    """Give a dataset read without file meta the transfer syntax its parser found (pydicom
    needs one to decode the pixels)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if "TransferSyntaxUID" in getattr(ds, "file_meta", {}):
        return
    implicit, little = ds.original_encoding
    ds.file_meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                                      ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def is_image(ds) -> bool:
    """Whether a header (read without pixels) describes an image (not a DICOMDIR, SR, ...)."""
    return "Rows" in ds and "Columns" in ds


def is_enhanced(ds) -> bool:
    return "PerFrameFunctionalGroupsSequence" in ds or "SharedFunctionalGroupsSequence" in ds


def n_frames(ds) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def _floats(value, n: int) -> np.ndarray | None:
    try:
        arr = np.array([float(v) for v in value], float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.isfinite(arr).all() else None


def _float(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if np.isfinite(v) and v > 0 else None


def _item(ds, per_frame, keyword: str):
    """The first item of functional-group macro `keyword`: the frame's own, else shared."""
    for group in (per_frame, _shared(ds)):
        if group is not None and keyword in group and len(group[keyword].value):
            return group[keyword][0]
    return None


def _shared(ds):
    seq = ds.get("SharedFunctionalGroupsSequence")
    return seq[0] if seq is not None and len(seq) else None


def frames_of(f: Path, ds) -> list[Frame]:
    """The frames of one file (header) with their geometry."""
    if is_enhanced(ds):
        per = ds.get("PerFrameFunctionalGroupsSequence") or []
        out = []
        for i in range(n_frames(ds)):
            item = per[i] if i < len(per) else None
            pos = _item(ds, item, "PlanePositionSequence")
            ori = _item(ds, item, "PlaneOrientationSequence")
            meas = _item(ds, item, "PixelMeasuresSequence")
            pvt = _item(ds, item, "PixelValueTransformationSequence")
            content = _item(ds, item, "FrameContentSequence")
            rescale = None
            if pvt is not None and "RescaleSlope" in pvt and "RescaleIntercept" in pvt:
                rescale = (float(pvt.RescaleSlope), float(pvt.RescaleIntercept))
            elif "RescaleSlope" in ds and "RescaleIntercept" in ds:
                rescale = (float(ds.RescaleSlope), float(ds.RescaleIntercept))
            out.append(Frame(
                f, i,
                _floats(pos.get("ImagePositionPatient"), 3) if pos is not None else None,
                _floats(ori.get("ImageOrientationPatient"), 6) if ori is not None else _floats(
                    ds.get("ImageOrientationPatient"), 6),
                _pair(meas.get("PixelSpacing") if meas is not None else ds.get("PixelSpacing")),
                _float(meas.get("SpacingBetweenSlices", meas.get("SliceThickness")))
                if meas is not None else _float(ds.get("SliceThickness")),
                rescale,
                float(content.get("InStackPositionNumber", i) or i) if content is not None else float(i)))
        return out
    thickness = _float(ds.get("SpacingBetweenSlices", ds.get("SliceThickness")))
    dose = _float(ds.get("DoseGridScaling"))  # RT dose: stored value x scaling = dose
    common = dict(orientation=_floats(ds.get("ImageOrientationPatient"), 6),
                  pixel_spacing=_pair(ds.get("PixelSpacing")), thickness=thickness,
                  rescale=(dose, 0.0) if dose is not None else None)
    offsets = _floats(ds.get("GridFrameOffsetVector"), n_frames(ds))
    origin = _floats(ds.get("ImagePositionPatient"), 3)
    ori = common["orientation"]
    if n_frames(ds) > 1 and offsets is not None and origin is not None and ori is not None:
        normal = np.cross(ori[:3], ori[3:])  # RT dose: frame k lies offsets[k] along the normal
        return [Frame(f, i, position=origin + (offsets[i] - offsets[0]) * normal, order=float(i),
                      **common) for i in range(n_frames(ds))]
    if n_frames(ds) > 1:  # a classic multi-frame file (NM, US, ...): frames share one geometry
        return [Frame(f, i, position=None, order=float(i), **common) for i in range(n_frames(ds))]
    inst = ds.get("InstanceNumber")
    return [Frame(f, 0, position=_floats(ds.get("ImagePositionPatient"), 3),
                  order=float(inst) if _float(inst) is not None else 0.0, **common)]


def _pair(value) -> tuple[float, float] | None:
    v = _floats(value, 2)
    return (float(v[0]), float(v[1])) if v is not None and (v > 0).all() else None


def _pixels(f: Path, ds) -> np.ndarray:
    """Stored pixel values (frames, rows, columns), integers as stored (a modality LUT indexes
    them); colour, and palette colour through its LUT, averaged to grey (float64)."""
    if "PixelData" not in ds:
        raise UserError(f"{f}: DICOM file has no pixel data")
    try:  # the header's size is checked before the pixels are decoded (and allocated)
        n = 1
        for key in ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel"):
            n *= max(1, int(ds.get(key, 1) or 1))
    except (TypeError, ValueError) as exc:
        raise UserError(f"{f}: malformed DICOM image size ({exc})") from None
    if n > MAX_ELEMENTS:
        raise UserError(f"{f}: the DICOM header claims {n} pixels; more than {MAX_ELEMENTS}")
    try:
        arr = ds.pixel_array
    except Exception as exc:  # truncated data, unsupported compression, ...
        raise UserError(f"{f}: cannot decode DICOM pixels ({type(exc).__name__}: {exc})") from None
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:
            arr = apply_color_lut(arr, ds)
        except Exception as exc:  # noqa: BLE001  (missing or malformed palette)
            raise UserError(f"{f}: cannot apply the DICOM colour palette ({type(exc).__name__}: "
                            f"{exc})") from None
    if arr.ndim == (4 if n_frames(ds) > 1 else 3):  # colour samples last
        arr = arr.mean(axis=-1)
    return arr if n_frames(ds) > 1 else arr[None]


def _values(f: Path, ds, frames: list[Frame]) -> list[np.ndarray]:
    """Each frame's real-world values: functional-group rescale, else pydicom's modality LUT."""
    from pydicom.pixels import apply_rescale

    raw = _pixels(f, ds)
    if max(fr.index for fr in frames) >= len(raw):
        raise UserError(f"{f}: {len(raw)} frames of pixels but NumberOfFrames says more")
    out = []
    for fr in frames:
        plane = raw[fr.index]
        if fr.rescale is not None:
            plane = plane.astype(np.float64) * fr.rescale[0] + fr.rescale[1]
        else:
            plane = apply_rescale(plane, ds)
        out.append(np.asarray(plane, np.float32))
    return out


def load_series(files: list[Path], where: Path, series_uid: str | None = None
                ) -> tuple[np.ndarray, tuple[float, ...], dict[str, Any]]:
    """(array, spacing mm, meta) of one DICOM file, or of the files of one series
    (`series_uid` picks one in a mixed folder); `genmed.data.io.load` makes it an `Image`."""
    headers = [(f, read_dicom(f, stop_before_pixels=True)) for f in files]
    headers = [(f, h) for f, h in headers if is_image(h)]
    if series_uid is not None:
        headers = [(f, h) for f, h in headers if str(h.get("SeriesInstanceUID", "")) == series_uid]
    if not headers:
        what = f"series {series_uid}" if series_uid else "DICOM image"
        raise UserError(f"{where}: no {what} found")
    series = {str(h.get("SeriesInstanceUID", "")) for _, h in headers}
    if len(series) > 1:
        raise UserError(f"{where}: folder holds {len(series)} DICOM series; point to one series "
                        "(or run `genmed data scan` and train on its manifest)")
    frames = [fr for f, h in headers for fr in frames_of(f, h)]
    _check_orientation(frames, where)
    frames = _sort(frames, where)
    planes = _read_planes(frames)
    shapes = {a.shape for a in planes}
    if len(shapes) > 1:
        raise UserError(f"{where}: DICOM slices differ in size {sorted(shapes)}")
    first = headers[0][1]
    spacings = {fr.pixel_spacing for fr in frames}
    if len(spacings) > 1:
        raise UserError(f"{where}: DICOM slices differ in pixel spacing {sorted(map(str, spacings))}")
    row_col = frames[0].pixel_spacing or (1.0, 1.0)
    meta: dict[str, Any] = {
        "modality": str(first.get("Modality", "unknown") or "unknown"), "format": "dicom",
        "source": str(where), "n_files": len(headers), "n_frames": len(frames),
        "series_uid": str(first.get("SeriesInstanceUID", "")),
        "patient_id": str(first.get("PatientID", "") or ""),
        "enhanced": is_enhanced(first), "spacing_from": "PixelSpacing" if frames[0].pixel_spacing
        else "default 1 mm (no PixelSpacing)"}
    declared = str(first.get("Units", "") or "") if meta["modality"] == "PT" else ""
    if meta["modality"] == "RTDOSE" and first.get("DoseGridScaling") is not None:
        declared = {"GY": "Gy", "RELATIVE": "relative dose"}.get(str(first.get("DoseUnits", "")), "")
    if declared:
        meta["units"] = declared
    if len(planes) == 1:
        meta["orientation"] = None  # a 2D image keeps its stored orientation
        return planes[0], tuple(row_col), meta
    arr = np.stack(planes)
    dz = _slice_step(frames)
    along = _normal_positions(frames)
    if along is not None:
        gaps = np.abs(np.diff(along))
        if np.abs(gaps - dz).max() > max(0.01 * dz, 1e-3):  # missing slices, uneven spacing
            meta["irregular_slices"] = (f"slice gaps {gaps.min():.4g} .. {gaps.max():.4g} mm; "
                                        f"read as evenly spaced by the median, {dz:.4g} mm")
    if frames[0].orientation is None or any(fr.position is None for fr in frames):
        meta["orientation"] = None  # no geometry: stacked as stored
        return arr, (dz, *row_col), meta
    ori = frames[0].orientation
    affine = dicom_affine(ori[:3], ori[3:], frames[0].position, row_col, dz)
    meta["orientation_source"] = axcodes(affine)
    xyz, sp, new_affine = reorient(arr.T, affine, (row_col[1], row_col[0], dz))
    meta["orientation"] = CANONICAL
    meta["affine"] = np.round(new_affine, 6).tolist()
    return np.ascontiguousarray(xyz.T), sp[::-1], meta


def _read_planes(frames: list[Frame]) -> list[np.ndarray]:
    """Every frame's values, each file read once."""
    by_file: dict[Path, list[int]] = {}
    for k, fr in enumerate(frames):
        by_file.setdefault(fr.file, []).append(k)
    planes: list[np.ndarray | None] = [None] * len(frames)
    for f, ks in by_file.items():
        ds = read_dicom(f)
        for k, plane in zip(ks, _values(f, ds, [frames[k] for k in ks]), strict=True):
            planes[k] = plane
    return planes  # type: ignore[return-value]


def _check_orientation(frames: list[Frame], where: Path) -> None:
    known = [fr.orientation for fr in frames if fr.orientation is not None]
    if not known:
        return
    if len(known) < len(frames):
        raise UserError(f"{where}: some slices lack ImageOrientationPatient; cannot build one volume")
    distinct: list[np.ndarray] = []
    for o in known:
        if not any(np.abs(o - d).max() <= ORIENTATION_TOL for d in distinct):
            distinct.append(o)
    if len(distinct) > 1:
        shown = "; ".join("[" + ", ".join(f"{v:.3g}" for v in d) + "]" for d in distinct[:3])
        raise UserError(f"{where}: the slices have {len(distinct)} different orientations "
                        f"(ImageOrientationPatient {shown}); one volume needs one orientation: "
                        "export each orientation as its own series")


def _normal_positions(frames: list[Frame]) -> np.ndarray | None:
    if any(fr.position is None for fr in frames) or frames[0].orientation is None:
        return None
    o = frames[0].orientation
    normal = np.cross(o[:3], o[3:])
    return np.array([float(normal @ fr.position) for fr in frames])


def _sort(frames: list[Frame], where: Path) -> list[Frame]:
    along = _normal_positions(frames)
    if along is None:
        return sorted(frames, key=lambda fr: (fr.order, fr.file.name, fr.index))
    if len(frames) > 1:
        rounded = np.round(along, 3)
        if len(np.unique(rounded)) < len(rounded):
            raise UserError(f"{where}: {len(rounded) - len(np.unique(rounded)) + 1} frames share a "
                            "slice position (a time series or several echoes?); split them into "
                            "one series per volume")
    order = np.argsort(along, kind="stable")
    return [frames[i] for i in order]


def _slice_step(frames: list[Frame]) -> float:
    """Median gap between sorted slice positions, else the slice thickness, else 1 mm."""
    along = _normal_positions(frames)
    if along is not None and len(along) > 1:
        gap = float(np.median(np.abs(np.diff(along))))
        if gap > 0:
            return gap
    return frames[0].thickness or 1.0
