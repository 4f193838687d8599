"""`genmed apps ...` in quick mode writes JSON + PNG; bad input is one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from genmed.cli import main
from genmed.models.slicewise import MAP_GUIDANCE


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.mark.parametrize("command,files", [
    ("anomaly", ["anomaly.json", "anomaly.png", "anomaly_sensitivity.png"]),
    ("anomaly-crops", ["anomaly_crops.json", "anomaly_crops.png"]),
    ("denoise", ["denoise.json", "denoise.png"]),
    ("translate", ["translate.json", "translate.png"]),
    ("generate-from-mask", ["generate_from_mask.json", "generate_from_mask.png"]),
    ("volumes3d", ["volumes3d.json", "volumes3d.png"]),
])
def test_quick_command_writes_metrics_and_figures(tmp_path, command, files):
    assert run(["apps", command, "--quick", "--out", str(tmp_path)]) == 0
    for name in files:
        assert (tmp_path / name).stat().st_size > 0, name
    data = json.loads((tmp_path / files[0]).read_text())
    if command == "anomaly":
        for det in ("intensity", "vae_recon", "vae_elbo", "gan", "diffusion"):
            auc = data["detectors"][det]["image"]["auroc"]
            assert 0.0 <= auc["low"] <= auc["value"] <= auc["high"] <= 1.0
        assert data["detectors"]["gan"]["pixel"] is None
        assert 0.0 <= data["detectors"]["diffusion"]["pixel"]["aupro"] <= 1.0
    elif command == "anomaly-crops":
        assert list(data["detectors"]) == ["intensity", "vae_recon", "vae_elbo", "gan", "gan_inversion",
                                           "diffusion", "diffusion_simplex", "ensemble"]
        assert data["test"]["n_lesion"] > 0 and data["test"]["n_healthy"] > 0
        assert data["detectors"]["gan"]["pixel"] is None and data["detectors"]["ensemble"]["pixel"] is None
    elif command in ("denoise", "translate"):
        for m in data["methods"].values():
            assert m["psnr_db"]["low"] <= m["psnr_db"]["value"] <= m["psnr_db"]["high"]
    elif command == "generate-from-mask":
        assert set(data["generated"]["dice"]) == {"kidney", "lesion"}
        assert 0.0 <= data["real"]["kind_accuracy"] <= 1.0
    else:
        assert data["train_volumes_per_s"] > 0 and data["sample_shape"] == [1, 16, 16, 16]
        assert data["peak_memory_mib"] > 0
        from genmed.data.io import load

        # 16^3 from volumes rendered at 64 px (360 mm) with 64 slices 3 mm apart
        assert np.allclose(load(tmp_path / "sample_0.nii.gz", ndim=3).spacing, (12.0, 22.5, 22.5))


def test_quick_clinical_denoise_scores_each_dose_with_a_matched_noise_estimate(tmp_path):
    """Projection-domain low dose: 10% dose is noisier than 25%, and the soft-tissue noise
    estimate the classical methods get follows the measured noise at both doses."""
    assert run(["apps", "denoise", "--quick", "--clinical", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "denoise.json").read_text())
    assert data["config"]["noise_model"] == "radon" and set(data["doses"]) == {"0.25", "0.1"}
    high, low = data["doses"]["0.25"], data["doses"]["0.1"]
    assert low["true_noise_hu_mean"] > 1.3 * high["true_noise_hu_mean"]
    assert low["methods"]["noisy"]["psnr_db"]["value"] < high["methods"]["noisy"]["psnr_db"]["value"]
    for d in (high, low):
        assert abs(d["estimated_noise_hu_mean"] / d["true_noise_hu_mean"] - 1) < 0.35
        assert d["methods"]["nlm"]["mae_hu"]["value"] < d["methods"]["noisy"]["mae_hu"]["value"]
        assert set(d["hu_bias"]["tv"]) == {"kidney", "lesion"}
    assert (tmp_path / "denoise.png").stat().st_size > 0


def test_quick_clinical_translate_scores_kidneys_and_lesions_for_every_method(tmp_path):
    assert run(["apps", "translate", "--quick", "--clinical", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "translate.json").read_text())
    methods = ["identity", "unet_l1", "pix2pix", "cond_diffusion", "sdedit"]
    assert list(data["methods"]) == methods and data["config"]["size"] == 64
    # the non-contrast source misses the kidneys' enhancement by tens of HU
    assert data["kidney_mae_hu"]["identity"]["kidney"]["value"] > 30
    assert set(data["lesion_bias_hu"]["pix2pix"]) == {"malignant", "benign", "malignant core",
                                                       "benign core"}
    assert (tmp_path / "translate.png").stat().st_size > 0


def test_denoise_user_dicom_writes_nifti_and_png(tmp_path):
    from pydicom.data import get_testdata_file

    from genmed.data.io import load

    src = get_testdata_file("CT_small.dcm")
    assert run(["apps", "denoise", "--input", src, "--method", "nlm", "--out", str(tmp_path)]) == 0
    out = load(tmp_path / "denoised.nii.gz")
    inp = load(src)
    assert out.array.shape == inp.array.shape
    assert np.allclose(out.spacing, inp.spacing, rtol=1e-4)
    info = json.loads((tmp_path / "denoise.json").read_text())
    assert info["noise_sd_after"] < info["noise_sd_estimated"] and info["units"] == "HU"
    assert (tmp_path / "denoise.png").stat().st_size > 0
    wavelet = info["noise_sd_estimated"]
    assert run(["apps", "denoise", "--input", src, "--noise-estimator", "mode", "--method", "tv",
                "--out", str(tmp_path / "mode")]) == 0
    info = json.loads((tmp_path / "mode" / "denoise.json").read_text())
    assert info["noise_estimator"] == "mode" and info["noise_sd_estimated"] > 2 * wavelet  # 37.8 vs 6.9 HU


def _mask_file(path, size: int, spacing: float, lesion: bool = True):
    from genmed.data.io import save_nifti

    m = np.zeros((size, size), np.uint8)
    m[2:-2, 2:-2] = 1
    m[5:9, 3:7] = 2
    if lesion:
        m[6:8, 4:6] = 3
    return save_nifti(path, m, (spacing, spacing))


def _expect_user_error(capsys, argv, out_dir):
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmed: error:") and "\n" not in err and "Traceback" not in err
    assert not any(out_dir.iterdir()) if out_dir.exists() else True
    return err


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    good = _mask_file(tmp_path / "mask.nii.gz", 16, 22.5)
    err = _expect_user_error(capsys, ["apps", "denoise", "--input", str(tmp_path / "nope.dcm"),
                                      "--out", str(out)], out)
    assert "nope.dcm" in err
    small = _mask_file(tmp_path / "small.nii.gz", 8, 22.5)
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(small),
                                      "--out", str(out)], out)
    assert "shape" in err
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(good),
                                      "--attributes", '{"kind": "malignant", "colour": "red"}',
                                      "--out", str(out)], out)
    assert "colour" in err
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(good),
                                      "--attributes", '{"kind": "healthy"}', "--out", str(out)], out)
    assert "lesion pixels" in err
    ref = _mask_file(tmp_path / "ref.nii.gz", 16, 1.0)
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(good),
                                      "--reference", str(ref), "--out", str(out)], out)
    assert "spacing" in err


def test_a_volume_map_with_a_2d_model_is_drawn_slice_by_slice(tmp_path, capsys):
    """A 3-D map for the 2-D model: one volume, the kind on the slices with lesion voxels only
    (as 2-D maps, the lesion-free slices would contradict "malignant"), at the file's spacing."""
    from genmed.data.io import load, save_nifti

    m = np.zeros((4, 16, 16), np.uint8)
    m[:, 2:-2, 2:-2] = 1
    m[:, 5:9, 3:7] = 2
    m[1:3, 6:8, 4:6] = 3
    path = save_nifti(tmp_path / "volume.nii.gz", m, (5.0, 22.5, 22.5))
    out = tmp_path / "out"
    assert run(["apps", "generate-from-mask", "--quick", "--mask", str(path), "--attributes",
                '{"kind": "malignant"}', "--out", str(out)]) == 0
    image = load(out / "generated.nii.gz", ndim=3)
    assert image.array.shape == (4, 16, 16) and np.allclose(image.spacing, (5.0, 22.5, 22.5))
    written = json.loads((out / "generated.json").read_text())
    assert written["slice_by_slice"] is True and written["noise_correlation"] == 0.98
    assert written["map_guidance"] == MAP_GUIDANCE
    refused = tmp_path / "refused"
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(path),
                                      "--attributes", '{"kind": "healthy"}', "--out", str(refused)], refused)
    assert "lesion voxels" in err
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(path),
                                      "--noise-correlation", "1.5", "--out", str(refused)], refused)
    assert "--noise-correlation 1.5" in err
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(path),
                                      "--map-guidance", "-1", "--out", str(refused)], refused)
    assert "--map-guidance -1" in err
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(path),
                                      "--map-guidance-healthy", "0.5", "--out", str(refused)], refused)
    assert "--map-guidance-healthy is for maps drawn whole" in err


def test_a_2d_map_takes_map_guidance_by_lesion(tmp_path, capsys):
    """A 2-D map: --map-guidance weighs maps with a lesion, --map-guidance-healthy the others
    (neither given: the defaults), and generated.json records both."""
    from genmed.models.map_guidance import SLICE_MAP_GUIDANCE

    flat = _mask_file(tmp_path / "slice.nii.gz", 16, 22.5)
    out = tmp_path / "out"
    kind = ["--attributes", '{"kind": "malignant"}']
    assert run(["apps", "generate-from-mask", "--quick", "--mask", str(flat), *kind, "--map-guidance", "0.5",
                "--map-guidance-healthy", "0.25", "--out", str(out)]) == 0
    written = json.loads((out / "generated.json").read_text())
    assert (written["map_guidance"], written["map_guidance_healthy"]) == (0.5, 0.25)
    default = tmp_path / "default"
    assert run(["apps", "generate-from-mask", "--quick", "--mask", str(flat), *kind, "--out", str(default)]) == 0
    written = json.loads((default / "generated.json").read_text())
    assert (written["map_guidance"], written["map_guidance_healthy"]) == SLICE_MAP_GUIDANCE
    refused = tmp_path / "refused"
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--quick", "--mask", str(flat), *kind,
                                      "--map-guidance-healthy", "nan", "--out", str(refused)], refused)
    assert "--map-guidance-healthy nan" in err


def test_a_seed_torch_cannot_take_is_one_line(tmp_path, capsys):
    # --seed 2**64 was a torch.manual_seed "Overflow when unpacking long long" traceback
    # (SEED is shared by every apps command)
    out = tmp_path / "out"
    err = _expect_user_error(capsys, ["apps", "volumes3d", "--quick", "--seed", str(2**64), "--out", str(out)], out)
    assert "--seed" in err


def test_generate_from_mask_reuses_a_trained_model(tmp_path, capsys):
    """OUT/model of a run is a mask-conditioned model that --model generates from without
    training; a run of another kind of model, or --model without --mask, is refused."""
    import torch

    from genmed.data.io import load
    from genmed.models import build_model
    from genmed.train import DictDataset, fit

    first = tmp_path / "first"
    assert run(["apps", "generate-from-mask", "--quick", "--out", str(first)]) == 0
    mask = _mask_file(tmp_path / "mask.nii.gz", 16, 22.5)
    second = tmp_path / "second"
    argv = ["apps", "generate-from-mask", "--quick", "--mask", str(mask), "--model", str(first / "model"),
            "--attributes", '{"kind": "malignant"}']
    assert run([*argv, "--out", str(second)]) == 0
    info = json.loads((second / "generated.json").read_text())
    assert info["model"] == str(first / "model") and info["attributes"] == {"kind": "malignant"}
    image = load(second / "generated.nii.gz", ndim=(2, 3)).array
    assert image.shape[-2:] == (16, 16) and np.isfinite(image).all()
    assert run([*argv, "--out", str(tmp_path / "again")]) == 0  # same seed, same model: same images
    assert np.array_equal(load(tmp_path / "again" / "generated.nii.gz", ndim=(2, 3)).array, image)
    # a scan-noise texture in the run folder is used: the same draw plus noise of the level's SD
    from genmed.data.transforms import ABDOMEN_RANGE_HU
    from genmed.models.noise_texture import NoiseTexture

    NoiseTexture({"standard": np.full((16, 16), 30.0**2)}).save(first / "model" / "noise_texture.npz")
    assert run([*argv, "--out", str(tmp_path / "textured")]) == 0
    assert json.loads((tmp_path / "textured" / "generated.json").read_text())["scan_noise"].endswith("noise_texture.npz")
    added = load(tmp_path / "textured" / "generated.nii.gz", ndim=(2, 3)).array - image
    assert np.abs(added).max() > 1.0  # (the quick model's images are mostly clamped; the noise's SD is
    # checked in tests/models/test_mask_generation.py)
    NoiseTexture({"standard": np.ones((32, 32))}).save(first / "model" / "noise_texture.npz")
    out = tmp_path / "wrong_texture"
    assert "do not match" in _expect_user_error(capsys, [*argv, "--out", str(out)], out)
    out = tmp_path / "no_reference"  # a requested SD needs a texture fitted with the scans' SDs
    sd_argv = [*argv[:-1], '{"kind": "malignant", "noise_hu": 12}', "--out", str(out)]
    assert "noise_hu needs" in _expect_user_error(capsys, sd_argv, out)
    NoiseTexture({"standard": np.full((16, 16), 30.0**2)}, {"standard": 30.0}).save(first / "model" / "noise_texture.npz")
    assert run(sd_argv) == 0  # 12 HU requested of a 30-HU spectrum: the same draw at 0.4 x
    scaled = load(out / "generated.nii.gz", ndim=(2, 3)).array - image
    lo, hi = ABDOMEN_RANGE_HU  # away from the clamp at the window's ends
    free = (np.minimum(image, image + added) > lo + 1) & (np.maximum(image, image + added) < hi - 1) & (added != 0)
    assert free.sum() >= 3  # the quick model clamps most pixels; these few are exact
    np.testing.assert_allclose(scaled[free], 0.4 * added[free], atol=0.05)
    (first / "model" / "noise_texture.npz").unlink()

    out = tmp_path / "refused"
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--model", str(first / "model"),
                                      "--out", str(out)], out)
    assert "--mask" in err
    plain = fit(build_model("diffusion", size=16, channels=(8, 16), attention_levels=(False, False),
                            norm_num_groups=4), DictDataset(image=torch.zeros(4, 1, 16, 16)), steps=1,
                out=tmp_path / "plain", device="cpu")
    assert plain.config.cond_channels == 0
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--mask", str(mask), "--model",
                                      str(tmp_path / "plain"), "--out", str(out)], out)
    assert "not a model that generates from a label map" in err


def test_generate_from_mask_with_a_3d_model_writes_a_volume(tmp_path, capsys):
    """A 3-D mask-conditioned ldm run folder generates one volume from a 3-D map file, saved with
    the map's spacing and shown in three planes; a 2-D map for it is refused in one line."""
    import torch

    from genmed.data.conditions import encode
    from genmed.data.io import load, save_nifti
    from genmed.models import build_model
    from genmed.models.mask_generation import mask_ldm
    from genmed.train import DictDataset, fit

    torch.manual_seed(0)
    ae = build_model("autoencoder", spatial_dims=3, size=16, channels=(4, 4), norm_num_groups=4,
                     latent_channels=2, adv_weight=0.0)
    x = torch.zeros(2, 1, 16, 16, 16)
    m = np.ones((16, 16, 16), np.uint8)
    m[4:12, 4:12, 4:12] = 2
    m[7:9, 7:9, 7:9] = 3
    cond, ids = encode(np.stack([m, m]), [{"kind": "malignant"}] * 2, 16, spatial_dims=3)
    fit(mask_ldm(ae, x, generator=torch.Generator().manual_seed(0)), DictDataset(image=x, cond=cond, label=ids),
        steps=1, out=tmp_path / "model3d", device="cpu")
    mask = save_nifti(tmp_path / "map3d.nii.gz", m, (4.0, 2.0, 2.0))
    out = tmp_path / "vol"
    assert run(["apps", "generate-from-mask", "--quick", "--mask", str(mask), "--model", str(tmp_path / "model3d"),
                "--attributes", '{"kind": "malignant", "size_mm": 5}', "--out", str(out)]) == 0
    vol = load(out / "generated.nii.gz", ndim=3)
    assert vol.array.shape == (16, 16, 16) and np.isfinite(vol.array).all()
    assert np.allclose(vol.spacing, (4.0, 2.0, 2.0))
    assert (out / "generated.png").stat().st_size > 0
    flat = _mask_file(tmp_path / "map2d.nii.gz", 16, 2.0)
    bad = tmp_path / "bad"
    err = _expect_user_error(capsys, ["apps", "generate-from-mask", "--mask", str(flat), "--model",
                                      str(tmp_path / "model3d"), "--out", str(bad)], bad)
    assert "map2d.nii.gz" in err


@pytest.mark.parametrize("shape", [(2, 2), (4, 1, 1), (16, 5), (8, 8, 4)])
def test_denoise_refuses_slices_too_small_to_denoise(tmp_path, capsys, shape):
    """(8, 8, 4) used to reach BM3D, which segfaults on an 8 x 8 slice (exit 139)."""
    import nibabel as nib

    src = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).normal(size=shape).astype(np.float32), np.eye(4)), str(src))
    out = tmp_path / "out"
    err = _expect_user_error(capsys, ["apps", "denoise", "--input", str(src), "--method", "tv", "--out", str(out)],
                             out)
    assert "too small to denoise" in err
