"""`genmed eval` commands: outputs, and bad input -> one line, exit 2, no file left."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from genmed.cli import main
from genmed.data.toy import get_mixture, sample_mixture


def _run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_modes_metrics_command(tmp_path, capsys):
    x, _ = sample_mixture(get_mixture("grid"), 5000, torch.Generator().manual_seed(0))
    np.save(tmp_path / "s.npy", x.numpy())
    out = tmp_path / "m.json"
    assert _run(["eval", "modes-metrics", str(tmp_path / "s.npy"), "--mixture", "grid", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["modes_captured"] == 25 and result["high_quality"] > 0.97
    assert json.loads(capsys.readouterr().out)["n_modes"] == 25


def test_images_command(tmp_path, ellipses, capsys):
    real, _ = ellipses(40, seed=0)
    train, _ = ellipses(40, seed=1)
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "train.npy", train)
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    from genmed.fileio import write_png

    fakes, _ = ellipses(30, seed=2)
    for i, im in enumerate(fakes):
        write_png(fake_dir / f"{i:03d}.png", np.round((im[0] + 1) * 127.5).astype(np.uint8))
    out = tmp_path / "eval"
    code = _run(["eval", "images", str(tmp_path / "real.npy"), str(fake_dir), "--out", str(out),
                 "--train", str(tmp_path / "train.npy"), "--n-boot", "5"])
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["n_fake"] == 30 and m["quality"]["fid"]["low"] <= m["quality"]["fid"]["high"]
    assert m["memorisation"]["space"].startswith("pixels") and m["extractor"]["weights_hash"]
    assert "FID" in capsys.readouterr().out


def test_images_command_against_phantom(tmp_path):
    """Fakes as `genmed sample` writes them: HU NIfTI files plus a grid.png in one folder."""
    import nibabel as nib

    from genmed.data import make_slices

    fake_dir = tmp_path / "samples"
    fake_dir.mkdir()
    for i, hu in enumerate(make_slices(6, seed=99).image[:, ::2, ::2]):  # 48 slices of 32 px
        nib.save(nib.Nifti1Image(np.ascontiguousarray(hu.T), np.eye(4)), str(fake_dir / f"sample_{i:04d}.nii.gz"))
    (fake_dir / "grid.png").write_bytes(b"ignored")
    out = tmp_path / "eval"
    assert _run(["eval", "images", "phantom", str(fake_dir), "--out", str(out), "--n-boot", "5"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    cc = m["diversity"]["class_coverage"]
    assert cc["reference"] == "real labels" and abs(sum(cc["data_share"]) - 1) < 1e-9
    assert m["memorisation"]["share_flagged"] < 0.5  # fresh patients are not copies
    assert m["inputs"]["real"] == "phantom" and m["image_shape_fake"] == [1, 32, 32]


@pytest.mark.parametrize("make,match", [
    (lambda p: np.save(p / "s.npy", np.zeros((10, 3))), r"expected shape \(n, 2\)"),
    (lambda p: (p / "s.npy").write_bytes(b"garbage"), "not a numeric .npy"),
    (lambda p: None, "not found"),
])
def test_modes_metrics_bad_input(tmp_path, capsys, make, match):
    make(tmp_path)
    out = tmp_path / "m.json"
    assert _run(["eval", "modes-metrics", str(tmp_path / "s.npy"), "--mixture", "ring", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmed: error:") and "\n" not in err
    assert re.search(match, err) and not out.exists()


def test_bad_mixture_and_images(tmp_path, capsys):
    np.save(tmp_path / "s.npy", np.zeros((10, 2)))
    assert _run(["eval", "modes-metrics", str(tmp_path / "s.npy"), "--mixture", "moon"]) == 2
    assert "mixture='moon'" in capsys.readouterr().err
    np.save(tmp_path / "big.npy", np.full((8, 1, 16, 16), 5.0, dtype=np.float32))
    out = tmp_path / "eval"
    assert _run(["eval", "images", str(tmp_path / "big.npy"), str(tmp_path / "big.npy"), "--out", str(out)]) == 2
    assert "must lie in [-1, 1]" in capsys.readouterr().err and not out.exists()
    assert _run(["eval", "images", str(tmp_path / "nope"), str(tmp_path / "s.npy"), "--out", str(out)]) == 2
    assert not out.exists()
    assert _run(["eval", "train-extractor", "--out", str(tmp_path / "e.pt")]) == 2
    assert ".safetensors" in capsys.readouterr().err


@pytest.mark.parametrize("name, content", [("none.safetensors", None), ("bad.pt", b"garbage")],
                         ids=["missing", "not TorchScript"])
def test_images_refuses_the_extractor_before_reading_images(tmp_path, capsys, monkeypatch, name, content):
    import genmed.metrics.imagesets as imagesets

    def no_read(*a, **k):
        raise AssertionError("read the images before checking --extractor")

    monkeypatch.setattr(imagesets, "read_image_set", no_read)
    if content is not None:
        (tmp_path / name).write_bytes(content)
    out = tmp_path / "eval"
    assert _run(["eval", "images", "phantom", str(tmp_path / "fake.npy"), "--extractor", str(tmp_path / name),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmed: error:") and "\n" not in err and name in err
    assert not out.exists()


@pytest.mark.parametrize("option", ["--n-patients", "--epochs"])
def test_train_extractor_zero_is_refused_not_the_default(tmp_path, capsys, option):
    """`--n-patients 0` / `--epochs 0` used to mean the defaults (300 patients, 15 epochs):
    minutes of training on a value that should be refused."""
    out = tmp_path / "e.safetensors"
    assert _run(["eval", "train-extractor", option, "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "must be > 0" in err and len(err.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("dtype", [bool, np.complex64])
def test_images_of_bool_or_complex_values_are_refused(tmp_path, capsys, dtype):
    """A boolean mask or complex k-space passed as an image set is one line, not a silent cast
    (complex lost its imaginary part; a mask read as 0/1 'images')."""
    np.save(tmp_path / "real.npy", np.zeros((12, 16, 16), dtype=np.float32))
    np.save(tmp_path / "fake.npy", np.ones((12, 16, 16), dtype=dtype))
    out = tmp_path / "eval"
    assert _run(["eval", "images", str(tmp_path / "real.npy"), str(tmp_path / "fake.npy"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "images are real numbers" in err and "\n" not in err and not out.exists()
