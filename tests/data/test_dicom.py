"""Enhanced (multi-frame) DICOM: rescale and geometry from the functional groups.

A real classic CT series shipped inside pydicom, rewritten as one enhanced multi-frame file
(per-frame positions and rescale, shuffled frame order), must read exactly like the classic
series. (pydicom-data's real enhanced files, `eCT_Supplemental.dcm` among them, are compared
with pydicom's own reading in test_real_files.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from genmed.data.io import load
from genmed.errors import UserError

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"
CT5N = DICOMDIR_TESTS / "98892001" / "CT5N"  # 5 axial CT slices, 16 x 16
CT2N = DICOMDIR_TESTS / "98892001" / "CT2N"  # 2 slices of one series: sagittal and coronal


def _enhanced_from_classic(files: list[Path], out: Path, order: list[int]) -> None:
    """Write the classic slices `files` as one Enhanced CT file, frames in `order`, each
    frame with its own rescale (slope 1 or 0.5, so the stored values stay exact)."""
    heads = [pydicom.dcmread(f) for f in files]
    first = heads[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CT", first.PatientID
    ds.SeriesInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.NumberOfFrames = first.Rows, first.Columns, len(files)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    ori, meas = Dataset(), Dataset()
    ori.ImageOrientationPatient = first.ImageOrientationPatient
    meas.PixelSpacing = first.PixelSpacing
    meas.SliceThickness = 99.0  # wrong on purpose: the spacing must come from the positions
    shared.PlaneOrientationSequence = Sequence([ori])
    shared.PixelMeasuresSequence = Sequence([meas])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per, planes = [], []
    for k in order:
        hu = heads[k].pixel_array * float(heads[k].RescaleSlope) + float(heads[k].RescaleIntercept)
        slope, intercept = 0.5 ** (k % 2), -1024.0 + 10 * k
        stored = (hu - intercept) / slope
        assert np.array_equal(stored, np.round(stored)) and np.abs(stored).max() < 32767
        planes.append(stored.astype(np.int16))
        item, pos, pvt = Dataset(), Dataset(), Dataset()
        pos.ImagePositionPatient = heads[k].ImagePositionPatient
        pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = slope, intercept, "HU"
        item.PlanePositionSequence = Sequence([pos])
        item.PixelValueTransformationSequence = Sequence([pvt])
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = np.stack(planes).tobytes()
    ds.save_as(out, enforce_file_format=True)


def test_enhanced_ct_reads_like_its_classic_series(tmp_path):
    files = sorted(CT5N.iterdir())
    classic = load(CT5N)
    assert classic.array.shape == (5, 16, 16) and classic.spacing[0] == pytest.approx(2.5)
    out = tmp_path / "enhanced.dcm"
    _enhanced_from_classic(files, out, order=[3, 0, 4, 1, 2])
    enhanced = load(out)
    assert enhanced.meta["enhanced"] and enhanced.meta["n_frames"] == 5
    assert np.array_equal(enhanced.array, classic.array)
    assert enhanced.spacing == pytest.approx(classic.spacing, abs=1e-9)
    assert enhanced.units == "HU" and enhanced.orientation == classic.orientation == "LPS"
    # positions along z, as pydicom reads them: slices go inferior -> superior
    z = sorted(float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files)
    first = min(files, key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    ds = pydicom.dcmread(first)
    assert np.array_equal(enhanced.array[0], ds.pixel_array * float(ds.RescaleSlope)
                          + float(ds.RescaleIntercept))
    assert enhanced.spacing[0] == pytest.approx(z[1] - z[0])


def test_series_with_two_orientations_is_refused():
    with pytest.raises(UserError, match="2 different orientations") as err:
        load(CT2N)
    assert "\n" not in str(err.value)


def test_cli_refuses_mixed_orientations_in_one_line():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "genmed", "data", "info", str(CT2N)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "different orientations" in lines[0]
