"""Canonical LPS orientation on load: copies of one volume in other orientations read the same."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from nibabel.testing import data_path as NIB_DATA

from genmed.data.io import load, save_nifti
from genmed.data.orientation import reorient

ANAT = Path(NIB_DATA) / "anatomical.nii"  # a real MR volume, stored LAS, 33 x 41 x 25


def _copy(tmp_path: Path, name: str, data: np.ndarray, affine: np.ndarray, zooms) -> Path:
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms)
    path = tmp_path / name
    nib.save(img, path)
    return path


def test_ras_lps_and_permuted_copies_load_identically(tmp_path):
    src = nib.load(ANAT)
    data = np.asarray(src.dataobj, np.float32)
    ras = nib.as_closest_canonical(src)
    ras_path = _copy(tmp_path, "ras.nii.gz", np.asarray(ras.dataobj, np.float32), ras.affine,
                     ras.header.get_zooms())
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])  # flip x and y: an LPS-stored copy
    flip[:2, 3] = [s - 1 for s in ras.shape[:2]]
    lps_path = _copy(tmp_path, "lps.nii.gz", np.asarray(ras.dataobj, np.float32)[::-1, ::-1],
                     ras.affine @ flip, ras.header.get_zooms())
    perm = np.eye(4)[[2, 0, 1, 3]].T  # voxel (k, i, j) -> (i, j, k): axes stored z, x, y
    zyx_path = _copy(tmp_path, "szx.nii.gz", np.transpose(data, (2, 0, 1)), src.affine @ perm,
                     tuple(np.asarray(src.header.get_zooms())[[2, 0, 1]]))
    assert nib.aff2axcodes(nib.load(ras_path).affine) == ("R", "A", "S")
    assert nib.aff2axcodes(nib.load(lps_path).affine) == ("L", "P", "S")
    assert nib.aff2axcodes(nib.load(zyx_path).affine) == ("S", "L", "A")
    images = [load(p) for p in (ANAT, ras_path, lps_path, zyx_path)]
    for img in images[1:]:
        assert np.array_equal(img.array, images[0].array)
        assert img.spacing == images[0].spacing == (2.0, 2.0, 2.0)
        assert img.orientation == "LPS"
    assert [img.meta["orientation_source"] for img in images] == ["LAS", "RAS", "LPS", "SLA"]


def test_reorient_equals_monai_orientation():
    from monai.data import MetaTensor
    from monai.transforms import Orientation

    src = nib.load(ANAT)
    data = np.asarray(src.dataobj, np.float32)
    ours, spacing, affine = reorient(data, src.affine, src.header.get_zooms())
    labels = (("L", "R"), ("P", "A"), ("I", "S"))  # nibabel axis codes
    theirs = Orientation(axcodes="LPS", labels=labels)(MetaTensor(torch.from_numpy(data)[None], affine=torch.tensor(src.affine)))
    assert np.array_equal(ours, theirs.numpy()[0])
    assert np.allclose(affine, theirs.affine.numpy())


def test_genmed_files_keep_their_orientation(tmp_path):
    arr = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    img = load(save_nifti(tmp_path / "x.nii.gz", arr, (3.0, 2.0, 1.0), modality="MR"))
    assert np.array_equal(img.array, arr) and img.meta["orientation_source"] == "LPS"
    assert img.spacing == pytest.approx((3.0, 2.0, 1.0))
