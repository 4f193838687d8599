"""Kidney crops at native resolution: shape, lesion coverage, spacing, left/right, CLI, bad input."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from genmed.data.crops import crop_kidneys, kidney_sides, write_kidney_crops
from genmed.data.datasets import load_training_data
from genmed.data.phantom import PhantomConfig, make_slices
from genmed.errors import UserError

from .test_commands import run

CFG = PhantomConfig(size=128, lesion_prob=1.0)  # 2.8 mm pixels


@pytest.fixture(scope="module")
def phantom():
    return make_slices(6, 4, CFG, seed=2)


def _patient(s, j, k=4):
    sl = slice(j * k, (j + 1) * k)
    return s.image[sl], s.kidney_mask[sl], s.lesion_mask[sl]


def test_crop_shape_spacing_and_sides(phantom):
    sp = (6.0, CFG.spacing_mm, CFG.spacing_mm)
    for j in range(6):
        img, kid, les = _patient(phantom, j)
        crops = crop_kidneys(img, kid, les, spacing_mm=sp, size=48, margin_mm=5.0)
        assert [c.side for c in crops] == ["right", "left"]
        for c in crops:
            assert c.image.shape[1:] == (48, 48) == c.kidney_mask.shape[1:] == c.lesion_mask.shape[1:]
            assert c.spacing_mm == sp and c.fits  # native spacing: mm per pixel unchanged
            d = c.image.shape[0]
            # the crop is exactly the source window (no resampling)
            src = img[c.z0:c.z0 + d, max(c.r0, 0):c.r0 + 48, max(c.c0, 0):c.c0 + 48]
            assert np.array_equal(c.image[:, max(-c.r0, 0):, max(-c.c0, 0):][:, :src.shape[1], :src.shape[2]], src)
        right, left = crops
        # the patient's right kidney is on the image's left (radiological display), and the two
        # crops hold all kidney pixels, each its own side's only
        assert right.c0 + 24 < CFG.size / 2 < left.c0 + 24
        assert right.kidney_mask.sum() + left.kidney_mask.sum() == kid.sum()


def test_lesion_inside_kidney_is_inside_the_crop(phantom):
    sp = (6.0, CFG.spacing_mm, CFG.spacing_mm)
    seen = 0
    for j in range(6):
        img, kid, les = _patient(phantom, j)
        if not les.any():
            continue
        crops = crop_kidneys(img, kid, les, spacing_mm=sp, size=48, margin_mm=5.0)
        assert sum(int(c.lesion_mask.sum()) for c in crops) == int(les.sum())
        holder = [c for c in crops if c.lesion_mask.any()]
        assert len(holder) == 1 and (holder[0].kidney_mask >= holder[0].lesion_mask).all()
        seen += 1
    assert seen >= 3


def test_window_padded_at_border_and_affine():
    img = np.full((1, 40, 40), 40.0, np.float32)
    kid = np.zeros((1, 40, 40), np.uint8)
    kid[0, 2:10, 1:6] = 1  # a "right" kidney at the image corner
    kid[0, 20:26, 30:36] = 1  # a "left" kidney
    crops = crop_kidneys(img, kid, spacing_mm=(2.0, 1.5), size=16, margin_mm=3.0)
    right, left = crops
    assert (right.r0, right.c0) == (-2, -5) and right.kidney_bbox == (2, 1, 10, 6)
    assert (right.image[0, :2] == -1000).all() and (right.image[0, 2:, 5:] == 40).all()
    assert right.kidney_mask.sum() == 40 and left.kidney_mask.sum() == 36
    # affine: crop voxel (col, row) -> source mm, in save_nifti's RAS+ convention
    a = right.affine()
    assert np.allclose(a @ [0, 0, 0, 1], [1.5 * 5, 2.0 * 2, 0, 1])
    assert np.allclose(np.abs(np.diag(a))[:2], [1.5, 2.0])
    # a kidney too big for the window is flagged, not refused
    kid[0, 2:38, 1:6] = 1
    big = crop_kidneys(img, kid, spacing_mm=(2.0, 1.5), size=16, margin_mm=3.0)[0]
    assert not big.fits and big.image.shape == (1, 16, 16)


def test_specks_dropped_and_midline():
    kid = np.zeros((30, 30), np.uint8)
    kid[10:16, 3:9] = 1
    kid[2, 20] = 1  # a one-pixel speck of a segmenter
    sides = kidney_sides(kid, spacing_mm=(1.0, 1.0), min_area_mm2=4.0)
    assert sides["right"].sum() == 36 and not sides["left"].any()
    sides = kidney_sides(kid, spacing_mm=(1.0, 1.0), midline_col=2.0, min_area_mm2=4.0)
    assert sides["left"].sum() == 36


@pytest.mark.parametrize("kwargs", [{"size": 4}, {"margin_mm": -1.0}, {"margin_mm": 1e308},
                                    {"spacing_mm": (0.0, 1.0)},
                                    {"kidney_mask": np.zeros((5, 5))}])
def test_bad_input_raises_user_error(kwargs):
    args = {"image": np.zeros((20, 20)), "kidney_mask": np.zeros((20, 20)), "spacing_mm": (1.0, 1.0), **kwargs}
    with pytest.raises(UserError):
        crop_kidneys(args.pop("image"), args.pop("kidney_mask"), **args)


def test_an_absurd_margin_is_refused_before_any_crop_is_written(tmp_path):
    """--margin-mm 1e308 was taken: the command ran to the end with exit 0."""
    with pytest.raises(UserError, match="between 0 and 500 mm"):
        write_kidney_crops("phantom", tmp_path / "crops", size=40, patients=1, slices_per_patient=1,
                           phantom_size=96, margin_mm=1e308)
    assert not (tmp_path / "crops").exists()


def test_write_from_phantom(tmp_path):
    res = write_kidney_crops("phantom", tmp_path / "crops", size=40, patients=3, slices_per_patient=3,
                             phantom_size=96, seed=1)
    df = pd.read_csv(res.manifest)
    assert res.n_crops == 6 and len(df) == res.n_rows > 0 and set(df["side"]) == {"right", "left"}
    nii = nib.load(str(tmp_path / "crops" / df["path"][0]))
    assert nii.shape[:2] == (40, 40)
    assert np.allclose(nii.header.get_zooms(), (3.75, 3.75, 6.0))
    assert np.allclose(nii.affine[:2, 3], [-3.75 * df["crop_c0"][0], -3.75 * df["crop_r0"][0]])
    assert ((df["kidney_r0"] >= df["crop_r0"]) & (df["kidney_r1"] <= df["crop_r1"])).all()
    assert np.allclose(df["crop_x1_mm"] - df["crop_x0_mm"], 40 * 3.75)
    ds = load_training_data(res.manifest, size=16, split="all")  # a manifest the loaders read
    assert len(ds) == len(df)


def test_cli_on_make_folder_and_bad_inputs(tmp_path, capsys):
    made = tmp_path / "made"
    code, _, err = run(["data", "make", "--out", str(made), "--patients", "3", "--slices-per-patient", "2",
                        "--size", "48", "--lesion-prob", "1"], capsys)
    assert code == 0, err
    code, out, err = run(["data", "crop-kidneys", str(made), "--out", str(tmp_path / "c"), "--size", "24"], capsys)
    assert code == 0, err
    df = pd.read_csv(tmp_path / "c" / "manifest.csv")
    src = pd.read_csv(made / "manifest.csv")
    assert set(df["patient_id"]) == set(src["patient_id"]) and (df["spacing_x_mm"] == 7.5).all()
    lesion_rows = df[df["label"] != "healthy"]
    assert len(lesion_rows) and (lesion_rows["lesion_px"] > 0).all() and (lesion_rows["lesion_diameter_mm"] > 0).all()
    # a mask of another shape than its image is refused
    bad = src.copy()
    bad["mask_path"] = str(tmp_path / "c" / "masks" / df["mask_path"][0].split("/")[-1])
    bad["path"] = [str(made / p) for p in bad["path"]]
    bad.to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = run(["data", "crop-kidneys", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "w")], capsys)
    assert code == 2 and "differs from image" in err
    for args, words in (
        (["data", "crop-kidneys", str(tmp_path / "missing"), "--out", str(tmp_path / "x")], "not 'phantom'"),
        (["data", "crop-kidneys", str(made), "--out", str(tmp_path / "c")], "not empty"),
        (["data", "crop-kidneys", str(made), "--out", str(tmp_path / "y"), "--mask-column", "nope"], "nope"),
        (["data", "crop-kidneys", "phantom", "--out", str(tmp_path / "z"), "--size", "2"], "--size"),
        (["data", "crop-kidneys", "phantom", "--out", str(tmp_path / "z"), "--noise-model", "x"], "noise-model"),
    ):
        code, _, err = run(args, capsys)
        assert code == 2 and words in err, (args, err)
    assert not (tmp_path / "x").exists() and not (tmp_path / "z").exists()
