"""`genmed data scan`: a folder of real scans -> one manifest row per volume -> training data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest
from nibabel.testing import data_path as NIB_DATA
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from genmed.data import load_training_data
from genmed.data.scan import scan_folder, write_manifest

from .test_dicom import _enhanced_from_classic

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"


@pytest.fixture
def scans(tmp_path: Path) -> Path:
    """pydicom's two CT patients (classic series, one mixed-orientation series, CR images,
    a DICOMDIR), one enhanced CT made from a real series, nibabel's MR volume, PNG slices."""
    root = tmp_path / "scans"
    shutil.copytree(DICOMDIR_TESTS / "77654033", root / "77654033")
    shutil.copytree(DICOMDIR_TESTS / "98892001", root / "98892001")
    shutil.copy(DICOMDIR_TESTS / "DICOMDIR", root / "DICOMDIR")
    (root / "enh").mkdir()
    _enhanced_from_classic(sorted((DICOMDIR_TESTS / "98892001" / "CT5N").iterdir()),
                           root / "enh" / "ct5n_enhanced.dcm", order=[4, 2, 0, 1, 3])
    shutil.copy(Path(NIB_DATA) / "anatomical.nii", root / "sub-01.nii")
    pngs = root / "slices"
    pngs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        PILImage.fromarray(rng.integers(0, 255, (12, 10), dtype=np.uint8)).save(pngs / f"s{i}.png")
    return root


def test_scan_finds_every_volume_and_says_what_it_skipped(scans):
    res = scan_folder(scans)
    rows = {v.path: v for v in res.volumes}
    ct2 = rows["77654033/CT2"]
    assert (ct2.patient_id, ct2.modality, ct2.units, ct2.shape, ct2.orientation) == (
        "77654033", "CT", "HU", "4 x 16 x 16", "LPS")
    assert ct2.series_uid == pydicom.dcmread(next((scans / "77654033" / "CT2").iterdir())).SeriesInstanceUID
    assert ct2.n_files == 4 and ct2.spacing_mm == "1.25 x 0.4883 x 0.4883"
    enh = rows["enh/ct5n_enhanced.dcm"]
    assert (enh.patient_id, enh.modality, enh.shape) == ("98890234", "CT", "5 x 16 x 16")
    assert enh.spacing_mm == rows["98892001/CT5N"].spacing_mm == "2.5 x 0.4883 x 0.4883"
    mr = rows["sub-01.nii"]
    assert (mr.patient_id, mr.modality, mr.units, mr.shape) == ("sub-01", "unknown", "a.u.", "25 x 41 x 33")
    assert (rows["slices"].shape, rows["slices"].units, rows["slices"].patient_id) == ("3 x 12 x 10", "grey level", "slices")
    assert {rows[f"77654033/CR{i}/{n}"].modality for i, n in ((1, 6154), (2, 6247), (3, 6278))} == {"CR"}
    reasons = dict(res.skipped)
    assert reasons["DICOMDIR"].startswith("DICOM without an image")
    assert any(p.startswith("98892001/CT2N") and "2 different orientations" in r for p, r in res.skipped)


def test_unlabelled_ct_manifest_trains_unconditionally_only(scans, tmp_path, cli):
    out = tmp_path / "ct.csv"
    code, text, err = cli(["data", "scan", str(scans), "--out", str(out), "--modality", "CT"])
    assert code == 0, err
    assert "3 volume(s) of 2 patient(s)" in text and "unlabelled" in text and "skipped 1:" in text
    df = pd.read_csv(out)
    assert "label" not in df.columns and set(df.modality) == {"CT"} and len(df) == 3
    ds = load_training_data(out, size=8, spatial_dims=2, split="all")
    assert len(ds) == 4 + 5 + 5 and not ds.labelled and set(ds.labels.tolist()) == {-1}
    assert sorted(set(ds.patient_ids)) == ["77654033", "98890234"]
    assert ds.info["modality"] == "CT" and ds.info["units"] == "HU" and ds.info["n_volumes"] == 3
    code, _, err = cli(["train", "--family", "diffusion", "--data", str(out), "--cond", "label",
                        "--size", "8", "--steps", "1", "--batch-size", "2", "--out", str(tmp_path / "run")])
    err = err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--cond label needs class labels" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_labels_from_class_folders(tmp_path):
    root = tmp_path / "classes"
    shutil.copytree(DICOMDIR_TESTS / "77654033" / "CT2", root / "healthy" / "p1")
    shutil.copytree(DICOMDIR_TESTS / "98892001" / "CT5N", root / "malignant" / "p2")
    res = scan_folder(root, labels="folders")
    assert [(v.label, v.patient_id) for v in res.volumes] == [("healthy", "77654033"), ("malignant", "98890234")]
    out = write_manifest(res, root / "m.csv")
    ds = load_training_data(out, size=8, split="all")
    assert ds.labelled and ds.labels.tolist() == [0] * 4 + [2] * 5
    with pytest.raises(Exception, match="already exists"):
        write_manifest(res, out)


def test_scan_refuses_its_output_before_scanning(tmp_path, cli_refuses, monkeypatch):
    import genmed.data.scan as scan

    def no_scan(*a, **k):
        raise AssertionError("scanned before checking --out")

    monkeypatch.setattr(scan, "scan_folder", no_scan)
    (tmp_path / "m.csv").write_text("mine")
    (tmp_path / "d.csv").mkdir()
    (tmp_path / "f").write_text("x")
    cli_refuses(["data", "scan", tmp_path, "--out", tmp_path / "m.csv"], "already exists")
    cli_refuses(["data", "scan", tmp_path, "--out", tmp_path / "d.csv"], "is a folder")
    cli_refuses(["data", "scan", tmp_path, "--out", tmp_path / "f" / "m.csv"], "is a file, not a folder")
    cli_refuses(["data", "scan", tmp_path, "--out", tmp_path / "m.txt"], "must be a .csv")
    assert (tmp_path / "m.csv").read_text() == "mine"
