"""The dataset summary: every split counted, what is trained on and what is held out, and why."""

from __future__ import annotations

import numpy as np

from genmed.data import load_training_data
from genmed.data.splits import patient_split
from genmed.data.summary import summary_lines


def test_phantom_summary_counts_every_split():
    train = load_training_data("phantom", size=8, n_patients=10, split="train")
    s = train.summary
    everything = load_training_data("phantom", size=8, n_patients=10, split="all")
    idx = patient_split(everything.patient_ids, seed=0)
    for name in ("train", "val", "test"):
        assert s["splits"][name]["items"] == len(idx[name])
        assert s["splits"][name]["patients"] == len(set(np.asarray(everything.patient_ids)[idx[name]]))
    assert s["splits"]["train"]["items"] == len(train) and s["trained_on"] == "train"
    assert "val: 2 patient(s), test: 1 patient(s) held out by patient" in s["held_out"]
    assert s["split_from"] == "by patient, 70/15/15 % of 10 patients (seed 0)"
    lines = summary_lines(s)
    assert lines[0].startswith("data: phantom: CT (HU), slices at 45 x 45 mm per model pixel")
    assert any(ln.split()[:2] == ["train", "7"] and ln.endswith("<- trained on") for ln in lines)
    assert any(ln.split()[0] == "test" and ln.endswith("held out") for ln in lines)


def test_manifest_split_column_is_named(tmp_path):
    from genmed.cli import main

    out = tmp_path / "ph"
    try:
        main(["data", "make", "--out", str(out), "--patients", "4", "--slices-per-patient", "2",
              "--size", "16", "--sheet-count", "2"])
    except SystemExit as exc:
        assert not exc.code
    ds = load_training_data(out / "manifest.csv", size=8, split="train")
    assert ds.summary["split_from"] == "the source's own split column"
    assert sum(c["items"] for c in ds.summary["splits"].values()) == 8
