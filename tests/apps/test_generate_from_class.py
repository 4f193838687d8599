"""`genmed apps generate-from-class`: a layout run and a mask-model run draw slices of a class,
written with their maps; the same seed draws the same slices; a wrong run, a class the layout
model never agrees with, or a bad option is one line and exit 2 with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genmed.cli import main
from genmed.data.io import load
from genmed.models.layout import LESION, layout_diffusion, maps_to_shares
from genmed.train import DictDataset, fit


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def one_line_error(capsys, argv: list[str], out) -> str:
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmed: error:") and "\n" not in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())
    return err


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 16-px mask model (`generate-from-mask --quick`'s OUT/model) and a 16-px layout model
    after one step: its draws are near noise, so every map holds lesion pixels (a lesion class
    agrees at once, healthy never does)."""
    root = tmp_path_factory.mktemp("class")
    assert run(["apps", "generate-from-mask", "--quick", "--out", str(root / "mask")]) == 0
    torch.manual_seed(0)
    maps = np.ones((4, 16, 16), np.uint8)
    maps[:, 4:12, 4:8] = 2
    maps[:2, 6:8, 4:6] = LESION
    layout = layout_diffusion(16, channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                              num_train_timesteps=50, sample_steps=3)
    fit(layout, DictDataset(image=maps_to_shares(maps, 16), label=torch.tensor([2, 1, 0, 0])), steps=1,
        out=root / "layout", device="cpu")
    return root / "layout", root / "mask" / "model"


def test_slices_of_a_class_are_written_with_the_maps_they_were_drawn_from(runs, tmp_path):
    layout, mask = runs
    argv = ["apps", "generate-from-class", "--layout", str(layout), "--model", str(mask), "--kind", "malignant",
            "--n", "3", "--seed", "4"]
    assert run([*argv, "--out", str(tmp_path / "a")]) == 0
    images = load(tmp_path / "a" / "generated.nii.gz", ndim=(2, 3))
    maps = load(tmp_path / "a" / "layouts.nii.gz", ndim=(2, 3)).array
    assert images.array.shape == maps.shape == (3, 16, 16) and np.isfinite(images.array).all()
    assert ((maps == LESION).reshape(3, -1).any(1)).all()  # every malignant map holds a lesion
    np.testing.assert_allclose(images.spacing[-2:], (22.5, 22.5))  # 360 mm over 16 px
    info = json.loads((tmp_path / "a" / "generated.json").read_text())
    assert info["kind"] == "malignant" and info["layout_draws"] == [1, 1, 1]
    assert (tmp_path / "a" / "generated.png").stat().st_size > 0
    assert run([*argv, "--out", str(tmp_path / "b")]) == 0
    np.testing.assert_array_equal(load(tmp_path / "b" / "generated.nii.gz", ndim=(2, 3)).array, images.array)


def test_wrong_runs_classes_and_options_are_refused_in_one_line(runs, tmp_path, capsys):
    layout, mask = runs
    out = tmp_path / "out"
    base = ["apps", "generate-from-class", "--out", str(out)]
    err = one_line_error(capsys, [*base, "--layout", str(mask), "--model", str(mask), "--kind", "benign"], out)
    assert "not a layout model" in err
    err = one_line_error(capsys, [*base, "--layout", str(layout), "--model", str(layout), "--kind", "benign"], out)
    assert "not a model that generates from a label map" in err
    err = one_line_error(capsys, [*base, "--layout", str(layout), "--model", str(mask), "--kind", "cyst"], out)
    assert "--kind" in err
    err = one_line_error(capsys, [*base, "--layout", str(layout), "--model", str(mask), "--kind", "healthy",
                                  "--n", "2"], out)
    assert "no map that agrees with healthy" in err
    err = one_line_error(capsys, [*base, "--layout", str(layout), "--model", str(mask), "--kind", "benign",
                                  "--noise", "ultra"], out)
    assert "--noise" in err
