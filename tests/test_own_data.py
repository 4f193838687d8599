"""End to end on real scans, by the documented commands only (docs/own-data.md): a folder of
CT and MR DICOM (pydicom's and nibabel's own test files) -> scan -> train -> sample -> eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genmed.data.io import load


def strict_json(path: Path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("modality,units", [("CT", "HU"), ("MR", "a.u.")])
def test_scan_train_sample_eval(scans, tmp_path, cli, modality, units):
    manifest = tmp_path / f"{modality.lower()}.csv"
    run, samples, ev = tmp_path / "run", tmp_path / "samples", tmp_path / "eval"
    code, out, err = cli(["data", "scan", str(scans), "--out", str(manifest), "--modality", modality])
    assert code == 0, err
    assert "3 patient(s)" in out and "skipped 1: the slices have 2 different orientations" in out
    code, out, err = cli(["train", "--family", "vae", "--data", str(manifest), "--size", "16",
                          "--steps", "3", "--batch-size", "2", "--out", str(run)])
    assert code == 0, err
    assert out.startswith(f"data: {manifest}: {modality} ({units}), slices at")
    assert "held out: val: 1 patient(s), test: 1 patient(s) held out by patient" in out
    record = strict_json(run / "data.json")
    assert record["units"] == units and record["summary"]["splits"]["train"]["patients"] == 1
    code, out, err = cli(["sample", str(run), "-n", "8", "--out", str(samples)])
    assert code == 0, err
    img = load(samples / "sample_0003.nii.gz")
    assert (img.modality, img.units) == (modality, units)
    assert img.spacing == pytest.approx(tuple(record["spacing_mm"]), abs=1e-4)
    imap = record["intensity"]
    assert imap["low"] - 1e-3 <= img.array.min() and img.array.max() <= imap["high"] + 1e-3
    split = "test" if modality == "CT" else "all"  # MR's test patient has a single slice
    code, out, err = cli(["eval", "images", str(manifest), str(samples), "--out", str(ev),
                          "--n-boot", "4", "--k", "2", "--real-split", split])
    assert code == 0, err
    assert "<- real set" in out and out.splitlines()[-3].startswith("FID ")
    page = (ev / "report.html").read_text()
    assert "was trained on the kidney CT phantom" in page and "<h2>Diversity</h2>" in page
    assert (ev / "real_vs_generated.png").stat().st_size > 1000
    warnings = [ln for ln in err.splitlines() if ln.startswith("genmed: warning:")]
    assert warnings and "was trained on the kidney CT phantom" in warnings[0]
    result = strict_json(ev / "metrics.json")
    q = result["quality"]["fid"]
    assert q["low"] <= q["value"] <= q["high"]
    assert result["domain"]["data_modality"] == modality and result["domain"]["matches"] is False
    assert result["real_data"]["trained_on"] == split and result["n_real"] > 2
    assert np.isfinite(q["value"])
