"""`genmed data make` / `genmed data info`, the manifest round trip, and bad input via the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image as PILImage

from genmed.cli import main
from genmed.data.datasets import load_training_data
from genmed.data.io import load

from .test_io import bad_inputs


def run(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("make") / "phantom"
    main_args = ["data", "make", "--out", str(out), "--patients", "6", "--slices-per-patient", "4",
                 "--size", "32", "--seed", "3", "--lesion-prob", "1"]
    with pytest.raises(SystemExit) as exc:
        main(main_args)
    assert exc.value.code in (0, None)
    return out


def test_make_writes_everything(made):
    df = pd.read_csv(made / "manifest.csv")
    assert list(df.columns[:8]) == ["path", "mask_path", "patient_id", "slice", "label", "noise_hu",
                                    "noisy", "split"]
    assert len(df) == 24 and df["patient_id"].nunique() == 6
    assert (df.groupby("patient_id")["split"].nunique() == 1).all()  # split by patient
    assert set(df["label"]) <= {"healthy", "benign", "malignant"} and (df["label"] != "healthy").any()
    for col in ("path", "mask_path", "clean_path", "nc_path", "clean_nc_path", "tissue_path"):
        assert all((made / p).is_file() for p in df[col])
    img = load(made / df["path"][0])
    mask = load(made / df["mask_path"][0])
    assert img.array.shape == (4, 32, 32) and img.meta["modality"] == "CT"
    assert img.spacing == pytest.approx((6.0, 11.25, 11.25))
    # a slice is labelled with a lesion iff its mask has lesion pixels (value 2)
    for row in df[df.patient_id == df.patient_id[0]].itertuples():
        assert (row.label != "healthy") == bool((mask.array[row.slice] == 2).any())
    sheet = np.asarray(PILImage.open(made / "contact_sheet.png"))
    assert sheet.shape[0] > 100 and (made / "contact_sheet.png").stat().st_size < 200_000
    assert json.loads((made / "phantom.json").read_text())["seed"] == 3
    assert not [p for p in made.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_manifest_as_training_data(made):
    ds = load_training_data(made / "manifest.csv", size=16, split="all")
    df = pd.read_csv(made / "manifest.csv")
    assert len(ds) == len(df) and ds[0]["image"].shape == (1, 16, 16)
    assert ds.labels.tolist() == [("healthy", "benign", "malignant").index(v) for v in df["label"]]
    train = load_training_data(made / "manifest.csv", size=16, split="train")
    assert set(train.patient_ids) == set(df.patient_id[df.split == "train"])


def test_manifest_unknown_label_and_missing_column(made, tmp_path, capsys):
    df = pd.read_csv(made / "manifest.csv")
    df["path"] = [str(made / p) for p in df["path"]]
    df.loc[3, "label"] = "tumour"
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    code, _, err = run(["data", "info", str(bad)], capsys)  # info reads manifests like training
    assert code == 2 and "row 5: label 'tumour' is not one of" in err
    from genmed.errors import UserError

    with pytest.raises(UserError, match=r"row 5: label 'tumour' is not one of"):
        load_training_data(bad, size=16, split="all")
    df.drop(columns=["path"]).to_csv(bad, index=False)
    with pytest.raises(UserError, match="lacks column"):
        load_training_data(bad, size=16)


@pytest.mark.parametrize("column, value, text", [
    ("slice", "abc", "row 4: slice 'abc' is not a whole number"),
    ("slice", "inf", "row 4: slice 'inf' is not a whole number"),
    ("slice", "1.5", "row 4: slice '1.5' is not a whole number"),
    ("noise_hu", "loud", "row 4: noise_hu 'loud' is not a finite number"),
    ("path", "", "row 4: empty path"),
])
def test_manifest_cells_that_are_not_numbers_or_paths(made, tmp_path, capsys, column, value, text):
    df = pd.read_csv(made / "manifest.csv", dtype=str)
    df["path"] = [str(made / p) for p in df["path"]]
    df.loc[2, column] = value
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    code, _, err = run(["train", "--family", "vae", "--size", "16", "--steps", "2", "--data", str(bad),
                        "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and text in err, err
    assert not (tmp_path / "run").exists()


def test_make_3d(tmp_path, capsys):
    out = tmp_path / "vol"
    code, text, err = run(["data", "make", "--out", str(out), "--3d", "--patients", "2", "--size", "16",
                           "--depth", "8", "--seed", "1"], capsys)
    assert code == 0, err
    df = pd.read_csv(out / "manifest.csv")
    assert len(df) == 2 and df["slice"].isna().all() and "2 volumes" in text
    assert load(out / df["path"][0]).array.shape == (8, 16, 16)
    assert load_training_data(out / "manifest.csv", size=8, spatial_dims=3, split="all")[0]["image"].shape == (1, 8, 8, 8)


def test_info_text_and_json(made, capsys):
    path = made / "images" / sorted(p.name for p in (made / "images").iterdir())[0]
    code, text, _ = run(["data", "info", str(path)], capsys)
    assert code == 0 and "shape" in text and "CT" in text
    code, text, _ = run(["data", "info", str(path), "--format", "json"], capsys)
    facts = json.loads(text)
    assert facts["shape"] == [4, 32, 32] and facts["min"] < -900 and facts["modality"] == "CT"


def test_info_bad_inputs_exit_2_one_line(tmp_path, capsys):
    cases = bad_inputs(tmp_path)
    two, _ = cases.pop("two series")  # what `train --data` takes: info lists its volumes
    code, out, err = run(["data", "info", str(two)], capsys)
    assert code == 0 and out.startswith("2 volume(s) of 2 patient(s)") and err == ""
    for name, (path, text) in cases.items():
        code, out, err = run(["data", "info", str(path)], capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and text in lines[0] and str(path) in lines[0], (name, err)
        assert "Traceback" not in err and out == ""
    code, _, err = run(["data", "info", str(cases["missing"][0]), "--format", "xml"], capsys)
    assert code == 2 and "--format" in err


@pytest.mark.parametrize("args, text", [
    (["--size", "4"], "size=4"),
    (["--lesion-prob", "2"], "lesion_prob"),
    (["--patients", "0"], "--patients"),
    (["--lesion-min-mm", "30", "--lesion-max-mm", "5"], "lesion_diameter_mm"),
])
def test_make_bad_options_leave_nothing(tmp_path, capsys, args, text):
    out = tmp_path / "out"
    code, _, err = run(["data", "make", "--out", str(out), *args], capsys)
    assert code == 2 and text in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_make_refuses_non_empty_out_and_failure_leaves_nothing(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, err = run(["data", "make", "--out", str(out), "--patients", "1", "--size", "16"], capsys)
    assert code == 2 and "not empty" in err and (out / "keep.txt").read_text() == "mine"

    import genmed.data.export as export

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(export, "save_sheet", boom)
    fresh = tmp_path / "fresh"
    with pytest.raises(OSError):
        export.write_phantom_dataset(fresh, n_patients=1, slices_per_patient=2,
                                     cfg=export.PhantomConfig(size=16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("cmd", [["data", "make", "--patients", "1", "--size", "16"],
                                 ["data", "crop-kidneys", "phantom", "--patients", "1", "--slices-per-patient", "1",
                                  "--phantom-size", "64", "--size", "32"]], ids=["make", "crop-kidneys"])
@pytest.mark.parametrize("where, extra, text", [("f/sub", [], "is a file, not a folder"),
                                                ("f", ["--overwrite"], "exists and is not a folder")],
                         ids=["under a file", "a file with --overwrite"])
def test_out_folder_that_is_a_file_is_refused_and_kept(tmp_path, capsys, cmd, where, extra, text):
    (tmp_path / "f").write_text("mine")
    code, _, err = run([*cmd, *extra, "--out", str(tmp_path / where)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and text in err, err
    assert "Traceback" not in err
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_text() == "mine"


@pytest.mark.parametrize("cmd, text", [
    (["data", "make", "--patients", "100000"], "pixels per image array"),
    (["data", "make", "--patients", "2", "--3d", "--size", "1024"], "pixels per image array"),
    (["data", "crop-kidneys", "phantom", "--patients", "100000000"], "pixels per image array"),
    (["data", "crop-kidneys", "phantom", "--seed", "-1"], "--seed"),
], ids=["make 10**5 patients", "make 3d 1024", "crop 10**8 patients", "crop seed -1"])
def test_phantom_sizes_and_seed_refused_before_work(tmp_path, capsys, cmd, text):
    code, _, err = run([*cmd, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and text in err, err
    assert list(tmp_path.iterdir()) == []


def test_help_explains_options(capsys):
    code, text, _ = run(["data", "make", "--help"], capsys)
    assert code == 0
    for opt in ("--out", "--patients", "--slices-per-patient", "--size", "--3d", "--seed", "--overwrite"):
        assert opt in text
    code, text, _ = run(["data", "--help"], capsys)
    assert "make" in text and "info" in text
