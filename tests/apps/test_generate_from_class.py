"""`genmed apps generate-from-class`: a layout run and a mask-model run draw slices of a class,
written with their maps; the same seed draws the same slices; a wrong run, a class the layout
model never agrees with, or a bad option is one line and exit 2 with nothing written."""

from __future__ import annotations

import contextlib
import json

import numpy as np
import pytest
import torch

from genmed.cli import main
from genmed.data.io import load
from genmed.models.layout import LESION, layout_diffusion, maps_to_shares
from genmed.train import DictDataset, fit


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 16-px mask model (`generate-from-mask --quick`'s OUT/model) and a 16-px layout model
    after one step: its draws are near noise, so every map holds lesion pixels (a lesion class
    agrees at once, healthy never does)."""
    root = tmp_path_factory.mktemp("class")
    with contextlib.suppress(SystemExit):
        main(["apps", "generate-from-mask", "--quick", "--out", str(root / "mask")])
    assert (root / "mask" / "model").is_dir()
    torch.manual_seed(0)
    maps = np.ones((4, 16, 16), np.uint8)
    maps[:, 4:12, 4:8] = 2
    maps[:2, 6:8, 4:6] = LESION
    layout = layout_diffusion(16, channels=(8, 16), attention_levels=(False, False), norm_num_groups=4,
                              num_train_timesteps=50, sample_steps=3)
    fit(layout, DictDataset(image=maps_to_shares(maps, 16), label=torch.tensor([2, 1, 0, 0])), steps=1,
        out=root / "layout", device="cpu")
    return root / "layout", root / "mask" / "model"


def test_slices_of_a_class_are_written_with_the_maps_they_were_drawn_from(runs, tmp_path, cli):
    layout, mask = runs
    argv = ["apps", "generate-from-class", "--layout", str(layout), "--model", str(mask), "--kind", "malignant",
            "--n", "3", "--seed", "4"]
    assert cli([*argv, "--out", str(tmp_path / "a")])[0] == 0
    images = load(tmp_path / "a" / "generated.nii.gz", ndim=(2, 3))
    maps = load(tmp_path / "a" / "layouts.nii.gz", ndim=(2, 3)).array
    assert images.array.shape == maps.shape == (3, 16, 16) and np.isfinite(images.array).all()
    assert ((maps == LESION).reshape(3, -1).any(1)).all()  # every malignant map holds a lesion
    np.testing.assert_allclose(images.spacing[-2:], (22.5, 22.5))  # 360 mm over 16 px
    info = json.loads((tmp_path / "a" / "generated.json").read_text())
    assert info["kind"] == "malignant" and info["layout_draws"] == [1, 1, 1]
    assert (tmp_path / "a" / "generated.png").stat().st_size > 0
    assert cli([*argv, "--out", str(tmp_path / "b")])[0] == 0
    np.testing.assert_array_equal(load(tmp_path / "b" / "generated.nii.gz", ndim=(2, 3)).array, images.array)


def test_wrong_runs_classes_and_options_are_refused_in_one_line(runs, tmp_path, cli_refuses):
    layout, mask = runs
    out = tmp_path / "out"
    base = ["apps", "generate-from-class", "--out", str(out)]
    for argv, needle in [
        (["--layout", mask, "--model", mask, "--kind", "benign"], "not a layout model"),
        (["--layout", layout, "--model", layout, "--kind", "benign"], "not a model that generates from a label map"),
        (["--layout", layout, "--model", mask, "--kind", "cyst"], "--kind"),
        (["--layout", layout, "--model", mask, "--kind", "healthy", "--n", "2"], "no map that agrees with healthy"),
        (["--layout", layout, "--model", mask, "--kind", "benign", "--noise", "ultra"], "--noise"),
    ]:
        cli_refuses([*base, *argv], needle)
        assert not out.exists() or not any(out.iterdir())
