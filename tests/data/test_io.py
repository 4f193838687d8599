"""Reading real files shipped inside pydicom and nibabel, and writing NIfTI."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path as NIB_DATA
from PIL import Image as PILImage
from pydicom.data import get_testdata_file

from genmed.data.io import describe, load, load_medmnist, save_nifti
from genmed.errors import UserError

CT_SERIES = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests" / "77654033" / "CT2"


def test_single_ct_dicom_in_hu():
    path = get_testdata_file("CT_small.dcm")
    img = load(path)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert img.meta["modality"] == "CT" and img.array.shape == (128, 128)
    assert np.array_equal(img.array, expected.astype(np.float32))
    assert img.spacing == tuple(float(v) for v in ds.PixelSpacing)
    assert -1100 < img.array.min() < 0 < img.array.max()


def test_ct_dicom_series_sorted_by_position():
    img = load(CT_SERIES)
    files = sorted(CT_SERIES.iterdir(), key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    assert img.array.shape == (len(files), 16, 16) and img.meta["n_files"] == 4
    for k, f in enumerate(files):
        ds = pydicom.dcmread(f)
        assert np.array_equal(img.array[k], ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert img.spacing[0] == pytest.approx(1.25) and img.spacing[1] == pytest.approx(0.488281)


def test_mr_dicom_from_nibabel():
    img = load(Path(NIB_DATA) / "0.dcm")
    assert img.meta["modality"] == "MR" and img.array.ndim == 2


@pytest.mark.parametrize("name", ["example4d.nii.gz", "anatomical.nii"])
def test_nibabel_bundled_nifti(name):
    """Both files are stored LAS; genmed reads them in LPS: nibabel's RAS canonical, x flipped."""
    path = Path(NIB_DATA) / name
    ref = nib.load(path)
    img = load(path)
    assert nib.aff2axcodes(ref.affine) == ("L", "A", "S")
    canonical = nib.as_closest_canonical(ref)  # RAS+
    lps = np.asarray(canonical.dataobj, np.float32)[::-1, ::-1]
    assert img.array.shape == ref.shape[::-1]
    assert np.array_equal(img.array, lps.T)
    assert img.spacing == tuple(float(z) for z in ref.header.get_zooms())[::-1]
    assert img.meta["format"] == "nifti" and img.meta["source"] == str(path)
    assert img.orientation == "LPS" and img.meta["orientation_source"] == "LAS"


def test_save_nifti_round_trip(tmp_path):
    arr = np.random.default_rng(0).normal(size=(5, 7, 9)).astype(np.float32) * 100
    out = save_nifti(tmp_path / "x.nii.gz", arr, (3.0, 0.5, 0.7), modality="CT")
    img = load(out)
    assert np.allclose(img.array, arr) and img.spacing == pytest.approx((3.0, 0.5, 0.7))
    assert img.meta["modality"] == "CT" and img.meta["modality_from"] == "header"
    assert [p.name for p in tmp_path.iterdir()] == ["x.nii.gz"]  # no temporary left behind


def test_png_file_folder_and_tiff(tmp_path):
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 255, (12, 10), dtype=np.uint8) for _ in range(3)]
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, f in enumerate(frames):
        PILImage.fromarray(f).save(folder / f"slice{i + 1}.png")
    PILImage.fromarray(frames[0]).save(folder / "slice10.png")  # natural sort: after slice3
    single = load(folder / "slice2.png")
    assert np.array_equal(single.array, frames[1]) and single.meta["modality"] == "OT"
    stack = load(folder)
    assert stack.array.shape == (4, 12, 10) and np.array_equal(stack.array[3], frames[0])
    tif = tmp_path / "multi.tiff"
    PILImage.fromarray(frames[0]).save(tif, save_all=True, append_images=[PILImage.fromarray(f) for f in frames[1:]])
    assert np.array_equal(load(tif).array, np.stack(frames))
    rgb = tmp_path / "rgb.png"
    PILImage.fromarray(np.dstack([frames[0]] * 3)).save(rgb)
    assert load(rgb).array.shape == (12, 10)


@pytest.mark.parametrize("shape", [(6, 28, 28), (6, 28, 28, 3), (6, 8, 8, 8)])
def test_medmnist(tmp_path, shape):
    rng = np.random.default_rng(2)
    path = tmp_path / "toy.npz"
    np.savez(path, train_images=rng.integers(0, 255, shape, dtype=np.uint8),
             train_labels=rng.integers(0, 4, (shape[0], 1)), test_images=np.zeros((2, *shape[1:]), np.uint8),
             test_labels=np.zeros((2, 1), np.int64))
    images, labels, info = load_medmnist(path)
    assert images.shape == shape and labels.shape == (6,) and labels.dtype == np.int64
    assert info["spatial_dims"] == (3 if len(shape) == 4 and shape[-1] != 3 else 2)
    assert load_medmnist(path, "test")[0].shape[0] == 2
    img = load(path)
    assert img.array.shape == shape and len(img.meta["labels"]) == 6
    assert describe(path)["n_labels"] == 6


def _truncate(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def bad_inputs(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, text the one-line error must contain). Shared with the CLI tests."""
    (tmp / "empty").mkdir()
    good = save_nifti(tmp / "good.nii.gz", np.zeros((4, 5, 6), np.float32), (1.0, 1.0, 1.0))
    nan = np.zeros((4, 5), np.float32)
    nan[1, 2] = np.nan
    one_d = tmp / "line.nii"
    nib.save(nib.Nifti1Image(np.zeros(7, np.float32), np.eye(4)), one_d)
    png = tmp / "img.png"
    PILImage.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(png)
    (tmp / "notes.txt").write_text("hello")
    two = tmp / "two_series"
    two.mkdir()
    for f in (get_testdata_file("CT_small.dcm"), next(iter(sorted(CT_SERIES.iterdir())))):
        (two / Path(f).name).write_bytes(Path(f).read_bytes())
    (tmp / "mixed").mkdir()
    PILImage.fromarray(np.zeros((4, 4), np.uint8)).save(tmp / "mixed" / "a.png")
    PILImage.fromarray(np.zeros((5, 4), np.uint8)).save(tmp / "mixed" / "b.png")
    return {
        "missing": (tmp / "nope.nii.gz", "no such file"),
        "empty folder": (tmp / "empty", "empty folder"),
        "truncated nifti": (_truncate(good, tmp / "trunc.nii.gz", 0.6), "cannot read NIfTI"),
        "truncated dicom": (Path(get_testdata_file("MR_truncated.dcm")), "DICOM"),
        "corrupt dicom": (_truncate(Path(get_testdata_file("CT_small.dcm")), tmp / "cut.dcm", 0.05), "DICOM"),
        "truncated png": (_truncate(png, tmp / "cut.png", 0.5), "cannot read image"),
        "wrong dims": (one_d, "got 1D"),
        "nan voxels": (save_nifti(tmp / "nan.nii.gz", nan, (1.0, 1.0)), "NaN/Inf"),
        "unknown type": (tmp / "notes.txt", "unknown file type"),
        "two series": (two, "2 DICOM series"),
        "mixed sizes": (tmp / "mixed", "same size"),
    }


def test_every_bad_input_is_one_user_error(tmp_path):
    for name, (path, text) in bad_inputs(tmp_path).items():
        with pytest.raises(UserError) as exc:
            load(path)
        msg = str(exc.value)
        assert text in msg and str(path) in msg and "\n" not in msg, (name, msg)


def test_expected_dims_and_bad_npz(tmp_path):
    with pytest.raises(UserError, match="expected a 2D image, got 3D"):
        load(CT_SERIES, ndim=2)
    bad = tmp_path / "x.npz"
    np.savez(bad, images=np.zeros((2, 4, 4)))
    with pytest.raises(UserError, match="no 'train_images'"):
        load_medmnist(bad)
    (tmp_path / "junk.npz").write_bytes(os.urandom(100))
    with pytest.raises(UserError, match="not a readable .npz"):
        load(tmp_path / "junk.npz")


def test_nifti_with_nan_spacing_is_refused_on_load(tmp_path, capsys):
    """A NaN pixdim passed through: `data info` printed it, `apps denoise --input` and
    `generate-from-mask --mask` ended in a nibabel HeaderDataError traceback when saving."""
    header = nib.Nifti1Header()
    pixdim = header["pixdim"].copy()
    pixdim[1] = np.nan
    header["pixdim"] = pixdim
    nib.save(nib.Nifti1Image(np.zeros((16, 16), np.float32), None, header), str(tmp_path / "s.nii.gz"))
    with pytest.raises(UserError, match="pixel spacing .* not a positive finite"):
        load(tmp_path / "s.nii.gz")
    from genmed.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["apps", "denoise", "--method", "tv", "--input", str(tmp_path / "s.nii.gz"), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_nifti_with_zero_spacing_is_refused(tmp_path, caplog):
    """nibabel replaces a zero pixdim with 1 mm on load (a log line only), so a corrupt header
    was read as 1 mm pixels; the header as written is checked."""
    image = nib.Nifti1Image(np.zeros((16, 16, 4), np.float32), np.eye(4))
    image.header.set_zooms((0.0, 1.0, 1.0))
    path = tmp_path / "z.nii.gz"
    nib.save(image, str(path))
    with pytest.raises(UserError, match=r"pixel spacing \(0.0, 1.0, 1.0\) mm .* not a positive finite"):
        load(path)
    from genmed.cli import main

    caplog.clear()
    with pytest.raises(SystemExit) as exc:
        main(["data", "info", str(path)])
    assert exc.value.code == 2
    # nibabel's own log line ("setting 0 dims to 1") would be a second line on stderr
    assert not [r for r in caplog.records if r.name.startswith("nibabel")], caplog.records


def test_complex_images_are_refused_not_cast_to_real(tmp_path):
    """A cast to float32 dropped the imaginary part with only a numpy warning."""
    values = (np.ones((16, 16, 4)) + 2j).astype(np.complex64)
    nib.save(nib.Nifti1Image(values, np.eye(4)), str(tmp_path / "c.nii.gz"))
    with pytest.raises(UserError, match="complex voxels"):
        load(tmp_path / "c.nii.gz")
    np.savez(tmp_path / "c.npz", train_images=values[None], train_labels=np.zeros(1))
    with pytest.raises(UserError, match="complex64 values, not real numbers"):
        load(tmp_path / "c.npz")
