"""Modality-aware intensities on real files: CT in HU (windowed), MR by percentiles, never 'HU'."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path as NIB_DATA
from pydicom.data import get_testdata_file

from genmed.data.io import load, save_nifti
from genmed.data.modality import CT_WINDOW, PERCENTILES, intensity_map, to_model_units
from genmed.data.transforms import hu_to_unit

CT_SERIES = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests" / "77654033" / "CT2"
MR_DICOM = get_testdata_file("MR_small.dcm")


@pytest.mark.parametrize("src", [get_testdata_file("CT_small.dcm"), str(CT_SERIES)])
def test_plain_nifti_ct_is_recognised_as_ct(tmp_path, src):
    """A CT written as a NIfTI without any modality field (as other tools write them)."""
    ct = load(src)
    out = tmp_path / "plain.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(ct.array.T), np.diag([-1.0, -1, 1, 1])), out)
    assert nib.load(out).header["descrip"].item() == b""
    img = load(out)
    assert img.modality == "CT" and img.units == "HU"
    assert img.meta["modality_from"] == "intensity heuristic"


def test_mr_is_not_ct_and_not_hu():
    mr = load(MR_DICOM)
    assert mr.modality == "MR" and mr.units == "a.u."
    anat = load(Path(NIB_DATA) / "anatomical.nii")  # SPM-normalised MR, values down to -610
    assert anat.modality == "unknown" and anat.units == "a.u."


def test_ct_window_and_mr_percentiles():
    ct = load(CT_SERIES)
    unit, m = to_model_units(ct.array, "CT")
    assert m == CT_WINDOW and np.array_equal(unit, hu_to_unit(ct.array))
    mr = load(MR_DICOM).array
    unit, m = to_model_units(mr, "MR")
    lo, hi = np.percentile(mr, PERCENTILES)
    assert (m.kind, m.units, m.low, m.high) == ("percentile", "a.u.", pytest.approx(lo), pytest.approx(hi))
    assert unit.min() == -1.0 and unit.max() == 1.0
    inside = (mr >= lo) & (mr <= hi)
    assert np.allclose(m.from_unit(unit)[inside], mr[inside], rtol=1e-5, atol=1e-3)
    assert intensity_map(mr, "MR").to_dict()["units"] == "a.u."


def test_save_nifti_records_modality_and_units(tmp_path):
    arr = load(MR_DICOM).array
    load_back = load(save_nifti(tmp_path / "mr.nii.gz", arr, (1.0, 1.0), modality="MR"))
    assert (load_back.modality, load_back.units) == ("MR", "a.u.")


def test_denoise_mr_reports_its_own_units(tmp_path):
    from genmed.apps.denoise import denoise_file

    info = denoise_file(MR_DICOM, tmp_path, "nlm")
    assert info["modality"] == "MR" and info["units"] == "a.u."
    assert not any("hu" in key.lower() for key in info)
    mr = load(MR_DICOM).array
    assert info["display_range"] == pytest.approx(list(np.percentile(mr, PERCENTILES)))
    assert 0 < info["noise_sd_after"] < info["noise_sd_estimated"]
    out = load(tmp_path / "denoised.nii.gz")
    assert (out.modality, out.units) == ("MR", "a.u.")
    saved = json.loads((tmp_path / "denoise.json").read_text())
    assert saved["units"] == "a.u."


@pytest.mark.parametrize("value", [0.0, 1e30, -3e38])
def test_constant_image_of_any_magnitude_has_a_usable_range(value):
    """`hi = lo + 1` left hi == lo at 1e30: `apps denoise --input` ended in ZeroDivisionError."""
    m = intensity_map(np.full((4, 4), value, np.float32), "MR")
    assert m.high > m.low and np.isfinite(2.0 / (m.high - m.low))
