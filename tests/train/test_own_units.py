"""A model trained on real MR writes MR samples: the data's units and spacing, never HU / 1 mm."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path as NIB_DATA

from genmed.data.io import load
from genmed.data.modality import PERCENTILES


def test_sample_of_an_mr_model_is_in_mr_units(tmp_path, cli):
    data = tmp_path / "mr"
    data.mkdir()
    for name in ("0.dcm", "1.dcm"):  # nibabel's two-slice MR series (256 x 256, 1.797 mm)
        shutil.copy(Path(NIB_DATA) / name, data / name)
    run = tmp_path / "run"
    assert cli(["train", "--family", "vae", "--data", str(data), "--size", "16", "--steps", "1",
                "--batch-size", "2", "--out", str(run)])[0] == 0
    record = json.loads((run / "data.json").read_text())
    volume = load(data)
    ds = pydicom.dcmread(data / "0.dcm")
    assert record["modality"] == "MR" and record["units"] == "a.u."
    lo, hi = np.percentile(volume.array, PERCENTILES)
    assert record["intensity"]["low"] == pytest.approx(lo) and record["intensity"]["high"] == pytest.approx(hi)
    assert record["spacing_mm"] == pytest.approx([float(v) * 256 / 16 for v in ds.PixelSpacing], abs=1e-4)
    assert cli(["sample", str(run), "-n", "2", "--out", str(tmp_path / "s")])[0] == 0
    meta = json.loads((tmp_path / "s" / "samples.json").read_text())
    assert meta["units"] == "a.u." and meta["modality"] == "MR"
    sample = load(tmp_path / "s" / "sample_0000.nii.gz")
    assert (sample.modality, sample.units) == ("MR", "a.u.")
    assert sample.spacing == pytest.approx(tuple(record["spacing_mm"]), abs=1e-4)
    assert lo - 1e-3 <= sample.array.min() and sample.array.max() <= hi + 1e-3
