"""Resampling to one spacing (`genmed.data.spacing`): one physical object, one size in pixels."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from genmed.data.datasets import load_training_data
from genmed.data.spacing import check_spacing, parse_spacing
from genmed.errors import UserError

RADIUS_MM = 40.0


def write_sphere(path: Path, spacing_mm: float, n: int) -> Path:
    """A CT NIfTI of n^3 voxels at `spacing_mm`: air (-1000 HU) around a centred sphere of
    radius RADIUS_MM at 240 HU (+1 in model units)."""
    centre = (np.arange(n) - (n - 1) / 2) * spacing_mm
    z, y, x = np.meshgrid(centre, centre, centre, indexing="ij")
    hu = np.where(x**2 + y**2 + z**2 <= RADIUS_MM**2, 240.0, -1000.0).astype(np.float32)
    affine = np.diag([-spacing_mm, -spacing_mm, spacing_mm, 1.0])  # LPS, genmed's own layout
    nib.save(nib.Nifti1Image(hu.T, affine), str(path))
    return path


@pytest.fixture(scope="module")
def spheres(tmp_path_factory) -> Path:
    """One folder, the same sphere at 1 mm (100 mm field of view) and 2 mm (160 mm)."""
    folder = tmp_path_factory.mktemp("spheres")
    write_sphere(folder / "fine.nii.gz", 1.0, 100)
    write_sphere(folder / "coarse.nii.gz", 2.0, 80)
    return folder


def radius_px(items: np.ndarray) -> float:
    """Radius (pixels) of the ball (3D) or disc (2D) of voxels above 0 in (1, *spatial)."""
    count = float((items > 0).sum())
    return (3 * count / (4 * math.pi)) ** (1 / 3) if items.ndim == 4 else math.sqrt(count / math.pi)


def per_volume(ds) -> dict[str, np.ndarray]:
    vids = np.asarray(ds.volume_ids)
    return {Path(v).name: ds.images.numpy()[vids == v] for v in dict.fromkeys(ds.volume_ids)}


def test_resized_volumes_differ_in_object_size(spheres):
    ds = load_training_data(spheres, size=32, spatial_dims=3, split="all")
    r = {k: radius_px(v[0]) for k, v in per_volume(ds).items()}
    assert r["fine.nii.gz"] == pytest.approx(40 * 32 / 100, abs=0.5)  # 100 mm over 32 px
    assert r["coarse.nii.gz"] == pytest.approx(40 * 32 / 160, abs=0.5)  # 160 mm over 32 px
    assert ds.info["resampled_to_mm"] is None
    assert ds.info["spacing_range_mm"] == [[3.125, 5.0]] * 3


def test_resampled_volumes_match_in_3d(spheres):
    ds = load_training_data(spheres, size=32, spatial_dims=3, split="all", spacing_mm=4.0)
    vols = per_volume(ds)
    r = {k: radius_px(v[0]) for k, v in vols.items()}
    assert r["fine.nii.gz"] == pytest.approx(r["coarse.nii.gz"], abs=1.0)
    assert r["fine.nii.gz"] == pytest.approx(RADIUS_MM / 4.0, abs=1.0)
    assert ds.images.shape[1:] == (1, 32, 32, 32)
    assert ds.info["spacing_mm"] == [4.0, 4.0, 4.0] and ds.info["resampled_to_mm"] == [4.0, 4.0, 4.0]
    assert ds.info["spacing_range_mm"] == [[4.0, 4.0]] * 3
    # the 1 mm scan spans 100 mm = 25 px of 32: padded with air (-1, the window's bottom)
    assert vols["fine.nii.gz"][0, 0, 0, 0, 0] == -1.0
    assert ds.summary["resampled_to_mm"] == [4.0, 4.0, 4.0]


def test_resampled_slices_match_in_2d(spheres):
    ds = load_training_data(spheres, size=32, spatial_dims=2, split="all", spacing_mm=(4.0, 4.0))
    r = {k: max(radius_px(s) for s in v) for k, v in per_volume(ds).items()}  # the widest slice
    assert r["fine.nii.gz"] == pytest.approx(r["coarse.nii.gz"], abs=1.0)
    assert r["fine.nii.gz"] == pytest.approx(RADIUS_MM / 4.0, abs=1.0)
    assert ds.info["spacing_mm"] == [4.0, 4.0] and ds.info["resampled_to_mm"] == [4.0, 4.0]


def test_anisotropic_target_per_axis(spheres):
    ds = load_training_data(spheres, size=32, spatial_dims=3, split="all", spacing_mm=(8.0, 4.0, 4.0))
    fine = per_volume(ds)["fine.nii.gz"][0, 0]
    assert ds.info["spacing_mm"] == [8.0, 4.0, 4.0]
    zs = np.nonzero((fine > 0).any(axis=(1, 2)))[0]
    ys = np.nonzero((fine > 0).any(axis=(0, 2)))[0]
    assert len(zs) == pytest.approx(len(ys) / 2, abs=1)  # 80 mm: 10 slices at 8 mm, 20 rows at 4 mm


@pytest.mark.parametrize("bad", [0, -1.5, float("nan"), float("inf"), (1.0, 2.0), (1, 1, 1, 1), "a"])
def test_bad_spacing_is_one_user_error(bad):
    with pytest.raises(UserError) as err:
        check_spacing(bad, 3)
    assert "\n" not in str(err.value)


def test_parse_spacing():
    assert parse_spacing("1.5") == (1.5,)
    assert parse_spacing(" 2.5, 1.5,1.5") == (2.5, 1.5, 1.5)
    assert check_spacing((2,), 2) == (2.0,) and check_spacing(None, 2) is None
    with pytest.raises(UserError, match="one number"):
        parse_spacing("1.5x1.5")


def test_phantom_and_too_fine_targets_are_refused(spheres):
    with pytest.raises(UserError, match="phantom"):
        load_training_data("phantom", size=16, spacing_mm=1.0)
    with pytest.raises(UserError, match="too large"):
        load_training_data(spheres, size=16, spatial_dims=3, split="all", spacing_mm=0.01)


def test_train_and_sample_at_the_target_spacing(spheres, tmp_path, cli):
    import json

    from genmed.data.io import load

    run = tmp_path / "run"
    code, _, err = cli(["train", "--family", "vae", "--data", str(spheres), "--size", "16",
                     "--spacing", "10", "--steps", "2", "--batch-size", "2", "--out", str(run)])
    assert code == 0, err
    record = json.loads((run / "data.json").read_text())
    assert record["resampled_to_mm"] == [10.0, 10.0] and record["spacing_mm"] == [10.0, 10.0]
    assert record["summary"]["resampled_to_mm"] == [10.0, 10.0]
    assert "spacing_mm:\n- 10.0" in (run / "config.yaml").read_text()
    code, _, err = cli(["sample", str(run), "-n", "1", "--out", str(tmp_path / "s")])
    assert code == 0, err
    assert load(tmp_path / "s" / "sample_0000.nii.gz").spacing == pytest.approx((10.0, 10.0))
    assert json.loads((tmp_path / "s" / "samples.json").read_text())["resampled_to_mm"] == [10.0, 10.0]
    # eval images loads the real set as the run was trained: at the samples' recorded spacing
    from genmed.metrics.imagesets import data_source_sets, sample_spacing

    assert sample_spacing(tmp_path / "s") == (10.0, 10.0)
    real, *_ = data_source_sets(spheres, 16, "all", 0, spacing_mm=sample_spacing(tmp_path / "s"))
    expected = load_training_data(spheres, size=16, split="all", spacing_mm=10.0).images.numpy()
    resized, *_ = data_source_sets(spheres, 16, "all", 0)
    assert np.array_equal(real, expected) and not np.array_equal(real, resized)


@pytest.mark.parametrize(("value", "needle"), [
    ("0", "spacing_mm=0.0 must be in (0, 1000]"), ("-2", "must be in"), ("nan", "spacing_mm=nan"),
    ("1,2,3", "give one number or 2 (y,x)"), ("1.5mm", "--spacing '1.5mm'"), ("", "--spacing ''"),
])
def test_bad_spacing_exits_2(spheres, tmp_path, cli, value, needle):
    code, _, err = cli(["train", "--data", str(spheres), "--spacing", value, "--out", str(tmp_path / "r")])
    assert code == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "r").exists()


def test_phantom_refuses_spacing(tmp_path, cli):
    code, _, err = cli(["train", "--spacing", "1.5", "--out", str(tmp_path / "r")])
    assert code == 2 and "phantom is rendered at its own spacing" in err
