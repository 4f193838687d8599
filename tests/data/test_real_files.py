"""Every real image file shipped with pydicom, pydicom-data and nibabel, read by genmed and by
the library itself, and compared.

DICOM (pydicom's test files, pydicom-data's, nibabel's and nibabel.nicom's): a file is an image
when pydicom finds pixel data in it. genmed's `load` must match pydicom's own reading
(`pixel_array`, then the modality LUT / rescale, the functional groups' rescale for enhanced
files, DoseGridScaling for RT dose; colour and palette colour averaged to grey, as genmed
documents) or refuse the file with a one-line `UserError` whose reason is listed in
`DICOM_REFUSED`. Where the file places its frames in space, the check is made in patient
coordinates: each pixel's position (ImagePositionPatient + row/column cosines x PixelSpacing)
is mapped through genmed's affine to the voxel that must hold its value, so sorting, slice
spacing, flips and axis permutations to LPS are all checked at once. Files with no pixel data
(DICOMDIR, SR, RT plan/structure set, waveforms, headers) must be refused with a `UserError`.

NIfTI (nibabel's data_path, the formats genmed claims: .nii, .nii.gz): compared with
nibabel's `as_closest_canonical` (RAS) flipped in x and y (LPS), voxel sizes from the
canonical affine. Other formats nibabel reads (Analyze, MGH, MINC, PAR/REC, AFNI) are not
claimed and must be refused as an unknown file type.

Tolerances: spacing 1e-4 mm; values exact up to float32 rounding (1e-6 of the largest
magnitude); voxel positions within 1e-3 voxel of the pixel's.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path as NIB_DATA
from pydicom.data import get_testdata_file, get_testdata_files
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

from genmed.data.io import NIFTI_SUFFIXES, load
from genmed.errors import UserError

# pydicom-data (the `test` extra) ships half the files; without it pydicom would try to download them
data_store = pytest.importorskip("data_store", reason="pydicom-data (the test extra) is not installed")

SPACING_TOL = 1e-4  # mm
VOXEL_TOL = 1e-3  # voxel
SAMPLED_FRAMES = 16  # above this many frames pydicom decodes frames 0, 1, middle, last (speed)

PYDICOM_DIR = Path(get_testdata_file("CT_small.dcm")).parent
ROOTS = {  # where each library keeps its files -> the label used in test ids and lists
    PYDICOM_DIR: "pydicom",
    Path(data_store.__file__).parent / "data": "pydicom-data",
    Path(NIB_DATA): "nibabel",
    Path(nib.__file__).parent / "nicom" / "tests" / "data": "nibabel-nicom",
}
NIB_UNCLAIMED = (".hdr", ".img", ".mgz", ".mgh", ".mnc", ".par", ".rec", ".head", ".brik",
                 ".brik.gz", ".v")  # image formats nibabel reads and genmed does not claim

# DICOM images genmed refuses, with the reason its UserError must give. Anything else must read.
_NO_DECODER = "cannot decode DICOM pixels .*(missing dependencies|Pillow does not support)"
DICOM_REFUSED: dict[str, str] = {
    # compressed with a codec only pylibjpeg / GDCM / pyjpegls decode (none is a dependency)
    "pydicom-data/JPEG-LL.dcm": _NO_DECODER,  # JPEG lossless, process 14
    "pydicom-data/JPGLosslessP14SV1_1s_1f_8b.dcm": _NO_DECODER,
    "pydicom-data/bad_sequence.dcm": _NO_DECODER,
    "pydicom/SC_rgb_jpeg_gdcm.dcm": _NO_DECODER,
    "pydicom/JPEG-lossy.dcm": _NO_DECODER,  # JPEG extended (12 bit)
    "pydicom/JPGExtended.dcm": _NO_DECODER,
    "pydicom-data/emri_small_jpeg_ls_lossless.dcm": _NO_DECODER,  # JPEG-LS
    "pydicom/MR_small_jpeg_ls_lossless.dcm": _NO_DECODER,
    "pydicom/JPEGLSNearLossless_08.dcm": _NO_DECODER,
    "pydicom/JPEGLSNearLossless_16.dcm": _NO_DECODER,
    "pydicom/SC_rgb_jls_lossy_line.dcm": _NO_DECODER,
    "pydicom/SC_rgb_jls_lossy_sample.dcm": _NO_DECODER,
    # broken on purpose in pydicom's test set
    "pydicom/GDCMJ2K_TextGBR.dcm": "cannot decode DICOM pixels",
    "pydicom/JPEG2000-embedded-sequence-delimiter.dcm": "cannot decode DICOM pixels",
    "pydicom/MR_truncated.dcm": "cannot decode DICOM pixels .*less than expected",
    "pydicom/badVR.dcm": "malformed DICOM image size",
    # gzip-compressed DICOM: not a format genmed reads (decompress it first)
    "pydicom/zipMR.gz": "unknown file type",
    "nibabel-nicom/philips_mprage.dcm.gz": "unknown file type",
    "nibabel-nicom/siemens_dwi_0.dcm.gz": "unknown file type",
    "nibabel-nicom/siemens_dwi_1000.dcm.gz": "unknown file type",
}
# NIfTI files genmed refuses, with the reason.
NIFTI_REFUSED: dict[str, str] = {
    "nibabel/resampled_anat_moved.nii": "NaN/Inf voxel",  # NaN outside the resampled field
    "nibabel/row_major.dconn.nii": "cannot read NIfTI",  # CIFTI-2 connectivity matrix, no affine
}
# Folders of pydicom's dicomdirtests that genmed refuses as one volume, with the reason.
SERIES_REFUSED: dict[str, str] = {
    "pydicom/dicomdirtests/98892001/CT2N": "2 different orientations",  # sagittal + coronal
    "pydicom/dicomdirtests/98892003/MR1": "holds 3 DICOM series",
    "pydicom/dicomdirtests/98892003/MR2": "holds 3 DICOM series",
    "pydicom/dicomdirtests/98892003/MR700": "7 different orientations",  # radial localiser
}
# Series with slices missing: genmed reads them evenly spaced by the median gap and says so in
# meta["irregular_slices"]; pydicom's positions are then not genmed's (checked: order, values).
SERIES_IRREGULAR = {"pydicom/dicomdirtests/77654033/CT2"}  # slices at z -99.5, 103, 104.3, 105.5


def _label(f: Path) -> str:
    for root, name in ROOTS.items():
        if f.is_relative_to(root):
            return f"{name}/{f.relative_to(root).as_posix()}"
    raise AssertionError(f"{f} is under no known root")


def _all_files() -> list[Path]:
    files = {Path(f) for f in get_testdata_files()}
    for root in list(ROOTS)[2:]:  # nibabel's DICOM files
        files |= {f for f in root.iterdir() if f.name.lower().endswith((".dcm", ".dcm.gz"))}
    return sorted((f for f in files if f.is_file()), key=_label)


@functools.cache
def _header(f: Path) -> pydicom.Dataset | None:
    """pydicom's dataset (pixels deferred, not read), forced as pydicom's tests read them;
    gzip files decompressed; None where pydicom finds no DICOM at all."""
    try:
        if f.name.endswith(".gz"):
            with gzip.open(f) as fh:
                return pydicom.dcmread(fh, force=True)
        return pydicom.dcmread(f, force=True, defer_size=1024)
    except Exception:  # noqa: BLE001  (README, JSON, ICC profiles, dumps, broken files)
        return None


def _is_image(f: Path) -> bool:
    ds = _header(f)
    return ds is not None and "Rows" in ds and "Columns" in ds and any(
        k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


FILES = _all_files()
DICOM_IMAGES = [f for f in FILES if _is_image(f)]
NOT_IMAGES = [f for f in FILES if not _is_image(f)]
NIFTI = sorted((f for f in Path(NIB_DATA).iterdir() if f.name.endswith(NIFTI_SUFFIXES)), key=_label)
NIB_OTHER = sorted(f for f in Path(NIB_DATA).iterdir() if f.name.lower().endswith(NIB_UNCLAIMED))
SERIES = sorted({f.parent for f in DICOM_IMAGES if "dicomdirtests" in f.parts}, key=_label)


@dataclass
class RefFrame:
    """One frame as pydicom reads it: real-world values and where its pixels lie."""

    values: np.ndarray | None  # (rows, columns) float64; None: frame not decoded (sampled)
    shape: tuple[int, int]  # (rows, columns)
    position: np.ndarray | None  # LPS mm of pixel (0, 0)
    row: np.ndarray | None  # direction of increasing column index (LPS)
    col: np.ndarray | None  # direction of increasing row index
    spacing: tuple[float, float]  # (between rows, between columns) mm


def _group(ds: pydicom.Dataset, k: int, name: str) -> pydicom.Dataset | None:
    """Functional-group macro `name` of frame k: the frame's own item, else the shared one."""
    per = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    for item in (per[k] if k < len(per) else None, shared[0] if len(shared) else None):
        if item is not None and item.get(name):
            return item[name][0]
    return None


def _reference(f: Path) -> tuple[pydicom.Dataset, list[RefFrame]]:
    """pydicom's reading of an image file, frame by frame."""
    ds = pydicom.dcmread(f, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:  # no file meta: pydicom's docs say to set it
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian if implicit else
                                          pydicom.uid.ExplicitVRLittleEndian if little else
                                          pydicom.uid.ExplicitVRBigEndian)
    n = int(ds.get("NumberOfFrames") or 1)
    keep = sorted({0, 1, n // 2, n - 1}) if n > SAMPLED_FRAMES else list(range(n))
    if n > SAMPLED_FRAMES:
        arr = np.stack([pixel_array(ds, index=k) for k in keep])
    else:
        arr = ds.pixel_array if n > 1 else ds.pixel_array[None]
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
    if arr.ndim == 4:  # colour: genmed's documented grey is the mean of the samples
        arr = arr.mean(axis=-1)
    enhanced = "SharedFunctionalGroupsSequence" in ds or "PerFrameFunctionalGroupsSequence" in ds
    offsets = ds.get("GridFrameOffsetVector")  # RT dose: frame positions along the normal
    frames = []
    for k in range(n):
        plane = arr[keep.index(k) if k in keep else 0]  # an undecoded frame's values are dropped
        if enhanced:
            pos, ori = _group(ds, k, "PlanePositionSequence"), _group(ds, k, "PlaneOrientationSequence")
            meas = _group(ds, k, "PixelMeasuresSequence")
            pvt = _group(ds, k, "PixelValueTransformationSequence")
            position = pos.get("ImagePositionPatient") if pos else None
            cosines = ori.get("ImageOrientationPatient") if ori else None
            spacing = meas.get("PixelSpacing") if meas else None
            if pvt is not None and "RescaleSlope" in pvt:
                plane = plane * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
            else:
                plane = apply_modality_lut(plane, ds)
        else:
            position, cosines = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
            spacing = ds.get("PixelSpacing")
            plane = apply_modality_lut(plane, ds)
            if "DoseGridScaling" in ds:
                plane = plane * float(ds.DoseGridScaling)
        r = c = p = None
        if cosines is not None and len(cosines) == 6:
            r, c = np.array(cosines[:3], float), np.array(cosines[3:], float)
        if position is not None:
            p = np.array(position, float)
            if offsets is not None and r is not None:
                p = p + (float(offsets[k]) - float(offsets[0])) * np.cross(r, c)
            elif n > 1 and not enhanced:
                p = None  # a classic multi-frame file gives one position for all its frames
        ok = spacing is not None and len(spacing) == 2 and all(float(v) > 0 for v in spacing)
        sp = (float(spacing[0]), float(spacing[1])) if ok else (1.0, 1.0)  # genmed's default
        values = np.asarray(plane, np.float64) if k in keep else None
        frames.append(RefFrame(values, (int(ds.Rows), int(ds.Columns)), p, r, c, sp))
    return ds, frames


def _assert_values(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    tol = 1e-6 * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def _assert_refused(path: Path, reason: str) -> None:
    with pytest.raises(UserError, match=reason) as err:
        load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def _check_world(img, frames: list[RefFrame]) -> None:
    """Every reference pixel, mapped through genmed's affine, lands on a voxel holding its value;
    together they fill the volume."""
    assert img.orientation == "LPS"
    affine = np.asarray(img.meta["affine"], float)  # voxel (column, row, slice) -> RAS mm
    assert nib.aff2axcodes(affine) == ("L", "P", "S")
    np.testing.assert_allclose(np.sqrt((affine[:3, :3] ** 2).sum(0)), img.spacing[::-1],
                               atol=SPACING_TOL)
    inv = np.linalg.inv(affine)
    seen = np.zeros(img.array.shape, int)
    for fr in frames:
        i, j = np.mgrid[: fr.shape[0], : fr.shape[1]]
        lps = (fr.position + j[..., None] * fr.spacing[1] * fr.row
               + i[..., None] * fr.spacing[0] * fr.col)
        idx = (lps * [-1.0, -1.0, 1.0]) @ inv[:3, :3].T + inv[:3, 3]
        vox = np.rint(idx)
        assert np.abs(idx - vox).max() < VOXEL_TOL
        x, y, z = vox.astype(int).transpose(2, 0, 1)
        assert (z >= 0).all() and (y >= 0).all() and (x >= 0).all()
        if fr.values is not None:
            _assert_values(img.array[z, y, x], fr.values)
        seen[z, y, x] += 1
    assert (seen == 1).all()  # the frames fill the volume, each voxel once


def _check_dicom(img, ds: pydicom.Dataset, frames: list[RefFrame]) -> None:
    assert img.meta["modality"] == str(ds.get("Modality", "unknown") or "unknown")
    if len(frames) == 1:  # a 2D image keeps its stored orientation
        assert img.ndim == 2 and img.orientation is None
        assert img.spacing == pytest.approx(frames[0].spacing, abs=SPACING_TOL)
        _assert_values(img.array, frames[0].values)
        return
    if all(fr.position is not None and fr.row is not None for fr in frames):
        _check_world(img, frames)
        normal = np.cross(frames[0].row, frames[0].col)
        gap = np.diff(sorted(float(normal @ fr.position) for fr in frames))
        want = sorted((*frames[0].spacing, float(np.median(gap))))
        assert sorted(img.spacing) == pytest.approx(want, abs=SPACING_TOL)
        return
    # frames without positions (cine, multi-frame US/SC, stripped enhanced MR): stored order;
    # slice spacing SpacingBetweenSlices, else SliceThickness, else 1 mm (genmed's rule)
    assert img.orientation is None
    assert img.array.shape == (len(frames), *frames[0].shape)
    step = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0
    assert img.spacing == pytest.approx((float(step), *frames[0].spacing), abs=SPACING_TOL)
    for k, fr in enumerate(frames):
        if fr.values is not None:
            _assert_values(img.array[k], fr.values)


def test_file_lists_are_complete():
    """The lists of refusals name real files of the right kind, and every kind is present."""
    labels = {_label(f) for f in DICOM_IMAGES}
    assert set(DICOM_REFUSED) <= labels, set(DICOM_REFUSED) - labels
    assert set(NIFTI_REFUSED) <= {_label(f) for f in NIFTI}
    assert set(SERIES_REFUSED) <= {_label(d) for d in SERIES}
    assert {"pydicom-data/eCT_Supplemental.dcm", "pydicom-data/liver.dcm", "pydicom/rtdose.dcm",
            "pydicom/MR_small.dcm", "nibabel/0.dcm"} <= labels
    assert len(DICOM_IMAGES) > 140 and len(NIFTI) >= 8 and len(SERIES) >= 8


@pytest.mark.parametrize("path", DICOM_IMAGES, ids=_label)
def test_dicom_image_matches_pydicom(path: Path):
    reason = DICOM_REFUSED.get(_label(path))
    if reason is not None:
        _assert_refused(path, reason)
        return
    img = load(path)
    ds, frames = _reference(path)
    _check_dicom(img, ds, frames)


@pytest.mark.parametrize("path", NOT_IMAGES, ids=_label)
def test_dicom_without_pixels_is_refused(path: Path):
    """DICOMDIRs, reports, RT plans and structure sets, waveforms, README/JSON files."""
    _assert_refused(path, "no DICOM image|unknown file type|not a readable DICOM|no pixel data")


@pytest.mark.parametrize("folder", SERIES, ids=_label)
def test_dicom_series_folder_matches_pydicom(folder: Path):
    """pydicom's dicomdirtests folders, each read as one series."""
    reason = SERIES_REFUSED.get(_label(folder))
    if reason is not None:
        _assert_refused(folder, reason)
        return
    img = load(folder)
    files = [f for f in sorted(folder.iterdir()) if _is_image(f)]
    refs = [_reference(f) for f in files]
    frames = [fr for _, frs in refs for fr in frs]
    assert img.meta["n_files"] == len(files)
    if _label(folder) in SERIES_IRREGULAR:
        assert "irregular_slices" in img.meta
        normal = np.cross(frames[0].row, frames[0].col)
        frames.sort(key=lambda fr: float(normal @ fr.position))
        for k, fr in enumerate(frames):  # LPS here is the stored orientation, flipped in z only
            _assert_values(img.array[k], fr.values)
        return
    assert "irregular_slices" not in img.meta
    _check_dicom(img, refs[0][0], frames)


@pytest.mark.parametrize("path", NIFTI, ids=_label)
def test_nifti_matches_nibabel(path: Path):
    reason = NIFTI_REFUSED.get(_label(path))
    if reason is not None:
        _assert_refused(path, reason)
        return
    img = load(path)
    ref = nib.load(path)
    canonical = nib.as_closest_canonical(ref)  # RAS
    lps = np.asarray(canonical.get_fdata())[::-1, ::-1]
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    assert img.orientation == "LPS"
    assert img.meta["orientation_source"] == "".join(nib.aff2axcodes(ref.affine))
    assert img.array.shape == lps.T.shape
    voxel = np.sqrt((canonical.affine[:3, :3] ** 2).sum(0))
    zooms = (*voxel, *ref.header.get_zooms()[3:])
    assert img.spacing == pytest.approx(tuple(float(z) for z in zooms)[::-1], abs=SPACING_TOL)
    _assert_values(img.array, lps.T)


@pytest.mark.parametrize("path", NIB_OTHER, ids=_label)
def test_unclaimed_nibabel_formats_are_refused(path: Path):
    _assert_refused(path, "unknown file type")
