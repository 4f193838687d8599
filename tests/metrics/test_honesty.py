"""Evaluation honesty on user data: point inside its interval, degenerate sets flagged, domain
warnings, strictly valid JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from nibabel.testing import data_path as NIB_DATA

from genmed.fileio import write_json
from genmed.metrics import fid_ci, kid_ci
from genmed.metrics.evaluate import EvalConfig, evaluate_images


def strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_fid_self_comparison_point_inside_its_interval():
    f = np.random.default_rng(0).normal(size=(80, 16))
    e = fid_ci(f, f, n_boot=50)
    assert e.value == 0.0 and e.low == 0.0 and e.low <= e.value <= e.high
    assert e.method.startswith("bias-corrected")
    for seed in range(4):  # and for two different sets, over several resampling seeds
        rng = np.random.default_rng(seed)
        a, b = rng.normal(size=(60, 8)), rng.normal(size=(60, 8)) + 0.3
        e = fid_ci(a, b, n_boot=30, seed=seed)
        assert e.low <= e.value <= e.high
        k = kid_ci(a, b, subset_size=30, n_subsets=20, seed=seed)
        assert k.low <= k.value <= k.high


def test_all_black_samples_are_flagged_not_scored():
    from genmed.metrics.imagesets import phantom_image_set

    real, _ = phantom_image_set("test", size=16, n_patients=16)
    black = -np.ones((12, 1, 16, 16), np.float32)
    out = evaluate_images(real, black, cfg=EvalConfig(n_boot=4, kid_subset=8, kid_subsets=4,
                                                      ms_ssim_pairs=8),
                          data={"source": "phantom", "modality": "CT", "phantom": True})
    assert out["degenerate"]["fake"].startswith("fake images are constant")
    assert out["degenerate"]["real"] is None
    assert any(w.startswith("degenerate fake set") for w in out["warnings"])
    for name in ("fid", "kid", "precision", "density"):
        assert out["quality"][name]["reliable"] is False and "degenerate fake" in out["quality"][name]["flag"]
    assert out["diversity"]["recall"]["reliable"] is False
    assert out["domain"]["matches"] is True  # phantom CT: the extractor's own domain
    clean = evaluate_images(real, real[::-1].copy(), cfg=EvalConfig(n_boot=4, kid_subset=8,
                                                                    kid_subsets=4, ms_ssim_pairs=8))
    assert clean["degenerate"] == {"real": None, "fake": None} and "flag" not in clean["quality"]["fid"]


def test_json_is_strict():
    path = write_json(Path(__import__("tempfile").mkdtemp()) / "x.json",
                      {"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": np.array([np.nan, 2.0])})
    assert strict(path.read_text()) == {"a": None, "b": [None, 1.5], "c": [None, 2.0]}


def test_eval_on_mr_folder_warns_once_and_flags_black_samples(tmp_path, cli):
    real = tmp_path / "mr"
    real.mkdir()
    shutil.copy(Path(NIB_DATA) / "anatomical.nii", real / "sub-01.nii")  # 25 axial MR slices
    fake = tmp_path / "black.npy"
    np.save(fake, -np.ones((8, 1, 16, 16), np.float32))
    out = tmp_path / "ev"
    code, _, err = cli(["eval", "images", str(real), str(fake), "--out", str(out), "--n-boot", "4"])
    assert code == 2 and "split 'test' is empty" in err  # one patient: nothing held out
    code, out_text, err = cli(["eval", "images", str(real), str(fake), "--out", str(out), "--n-boot",
                               "4", "--real-split", "all"])
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("genmed: warning:")]
    assert len(warnings) == 2 and "the data is unknown, not CT" in warnings[0]
    assert "degenerate fake set" in warnings[1]
    assert "the real set includes training patients" in out_text
    result = strict((out / "metrics.json").read_text())
    assert result["domain"]["matches"] is False and result["domain"]["data_modality"] == "unknown"
    assert result["quality"]["precision"]["reliable"] is False
    assert result["real_data"]["splits"]["train"]["items"] == 25
    assert result["warnings"] == [w.removeprefix("genmed: warning: ") for w in warnings]


@pytest.mark.parametrize("modality,needle", [("MR", "the data is MR, not CT"),
                                             ("CT", "the data is real CT, not the phantom")])
def test_domain_warning_names_the_mismatch(modality, needle):
    from genmed.metrics.honesty import domain_check

    info, warnings = domain_check("genmed-phantom-cnn-v1", True, {"modality": modality, "phantom": False})
    assert info["matches"] is False and len(warnings) == 1 and needle in warnings[0]
    assert domain_check("callable:mine", False, {"modality": "MR"})[1] == []


@pytest.mark.parametrize("data,needle", [
    ({"modality": "CT", "phantom": False, "source": "ct.csv"}, None),
    ({"modality": "MR", "phantom": False, "source": "mr.csv"}, "the data is MR, not CT"),
    ({"modality": "CT", "phantom": True, "source": "phantom"}, "the data is the phantom, not the CT"),
])
def test_domain_of_an_extractor_trained_on_own_data(data, needle):
    """An extractor from `genmed eval train-extractor --data ct.csv` records CT / not phantom."""
    from genmed.metrics.honesty import domain_check

    meta = {"modality": "CT", "units": "HU", "phantom": "false", "source": "ct.csv", "size": "64"}
    info, warnings = domain_check("genmed-domain-cnn-v2", False, data, meta)
    assert info["extractor_domain"] == "CT (HU) slices of ct.csv at 64 px"
    if needle is None:
        assert warnings == [] and info["matches"] is True and info["same_source"] is True
    else:
        assert info["matches"] is False and len(warnings) == 1 and needle in warnings[0]
    phantom_meta = {**meta, "phantom": "true", "source": "phantom"}
    real_ct = domain_check("x", False, {"modality": "CT", "phantom": False}, phantom_meta)[1]
    assert len(real_ct) == 1 and "the data is real CT, not the phantom" in real_ct[0]
