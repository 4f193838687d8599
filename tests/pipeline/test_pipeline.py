"""Train/predict/analyse end to end on a tiny phantom; workbench formats; parts consistency."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from genmed.data.phantom import PhantomConfig
from genmed.pipeline.cases import phantom_cases
from genmed.pipeline.classifier import ClsConfig
from genmed.pipeline.pipeline import PERFECT_SEG, PipelineConfig, load_pipeline, predict_frames, \
    train_pipeline
from genmed.pipeline.segmentation import SegConfig

TINY = PipelineConfig(size=48, n_patients=20, slices_per_patient=6, fractions=(0.4, 0.1, 0.3, 0.2),
                      phantom=PhantomConfig(lesion_prob=1.0), seg=SegConfig(channels=(8, 16, 32), patch=32,
                      epochs=3), cls=ClsConfig(epochs=3, init_features=8, blocks=(1, 1)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipe") / "run"
    train_pipeline(TINY, folder)
    return folder


def test_train_writes_workbench_files(run, cli):
    preds = pd.read_csv(run / "dev" / "preds.csv", keep_default_na=False)
    assert list(preds.columns[:6]) == ["id", "y_true", "y_pred", "score", "patient_id", "image"]
    assert preds["id"].is_unique and set(preds["y_pred"]) <= {"healthy", "benign", "malignant"}
    assert all((run / "dev" / p).is_file() for p in preds["image"])
    parts = pd.read_csv(run / "dev" / "parts.csv", keep_default_na=False)
    assert list(parts.columns) == ["id", "y_true", "y_pred", PERFECT_SEG]
    assert (parts["y_pred"] == preds["y_pred"]).all()
    probs = preds[["p_healthy", "p_benign", "p_malignant"]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=2e-3)
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test"]["kidney_dice"]["value"] <= 1.0
    lo, hi = metrics["test"]["balanced_accuracy"]["ci95"]
    assert lo <= metrics["test"]["balanced_accuracy"]["value"] <= hi
    code, out, _ = cli(["errors", "by-parts", "--predictions", run / "dev" / "parts.csv"])
    assert code == 0 and json.loads(out)["components"][0]["name"] == "segmentation"


def test_analyse_outputs_and_workbench_summary(run, cli):
    code, out, err = cli(["pipeline", "analyse", run])
    assert code == 0, err
    folder = run / "analysis"
    html = (folder / "index.html").read_text()
    for text in ("Confusion matrix", "Category table", "AUTOMATIC", "by parts", "Recommendation",
                 "ceiling 95% CI"):
        assert text in html
    tags = pd.read_csv(folder / "tags_auto.csv", keep_default_na=False)
    assert set(tags["reviewer"]) == {"automatic"}
    assert set(tags["tag"]) <= {"", "benign", "malignant", "noisy", "small lesion", "segmentation miss"}
    preds = pd.read_csv(run / "dev" / "preds.csv", keep_default_na=False).set_index("id")
    split = pd.read_csv(folder / "split.csv").set_index("id")["set"]
    assert (split.loc[tags["id"]] == "eyeball").all()  # only eyeball errors are tagged
    assert (preds.loc[tags["id"], "y_true"] != preds.loc[tags["id"], "y_pred"]).all()
    mal = tags.loc[tags["tag"] == "malignant", "id"]
    assert (preds.loc[mal, "y_true"] == "malignant").all()
    code, out, err = cli(["errors", "summary", "--predictions", run / "dev" / "preds.csv",
                         "--tags", folder / "tags_auto.csv", "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["n_reviewed"] == tags["id"].nunique()
    code, _, err = cli(["errors", "by-parts", "--predictions", folder / "parts_eyeball.csv"])
    assert code == 0, err


def test_perfect_segmentation_gives_identical_parts_columns(run):
    pipe = load_pipeline(run)
    cases = phantom_cases(3, 4, PhantomConfig(size=48), seed=7)
    pipe.segment = lambda images: cases.kidney  # the segmenter is already perfect
    preds, parts, masks = predict_frames(pipe, cases)
    assert (parts["y_pred"] == parts[PERFECT_SEG]).all()
    assert (preds["kidney_dice"] == 1.0).all()


def test_predict_cli_and_reload(run, cli, tmp_path):
    out = tmp_path / "p" / "preds.csv"
    code, _, err = cli(["pipeline", "predict", run, "--split", "test", "--out", out])
    assert code == 0, err
    again = pd.read_csv(out, keep_default_na=False)
    first = pd.read_csv(run / "test" / "preds.csv", keep_default_na=False)
    assert (again["y_pred"] == first["y_pred"]).all()  # reloaded weights predict the same
    assert (out.parent / "parts.csv").is_file()


def test_clinical_window_holds_both_kidneys_at_native_resolution():
    """At 256 px the classifier's window must not shrink the kidneys (a resize would throw
    away the resolution the clinical setting exists for) and must show every lesion pixel."""
    from genmed.pipeline.classifier import crop_kidneys
    from genmed.pipeline.pipeline import clinical_config

    cfg = clinical_config()
    cases = phantom_cases(12, 8, PhantomConfig(size=cfg.size, lesion_prob=1.0), seed=3)
    h, w = cfg.cls.crop_shape(cfg.size)
    rows = cases.kidney.any(2).sum(1)  # rough box extents (pixels) per slice
    cols = np.array([np.ptp(np.nonzero(m.any(0))[0]) + 1 if m.any() else 0 for m in cases.kidney])
    assert (rows + 2 * cfg.cls.margin <= h).all() and (cols + 2 * cfg.cls.margin <= w).all()
    crops = crop_kidneys(cases.image, cases.kidney, (h, w), cfg.cls.margin)
    lesion_px = cases.lesion.reshape(len(cases), -1).sum(1)
    shown = crops[:, 1].reshape(len(cases), -1).sum(1).numpy()  # mask channel: kidney pixels shown
    assert (lesion_px > 0).sum() >= 20
    np.testing.assert_array_equal(shown, cases.kidney.reshape(len(cases), -1).sum(1))  # no pixel lost or resampled


def test_a_hand_edited_config_is_refused_before_prediction(run, cli, tmp_path):
    import shutil

    edited = tmp_path / "run"
    shutil.copytree(run, edited)
    config = json.loads((edited / "config.json").read_text())
    config["size"] = 64  # the networks were trained at 48 px
    (edited / "config.json").write_text(json.dumps(config))
    out = tmp_path / "p" / "preds.csv"
    code, _, err = cli(["pipeline", "predict", edited, "--split", "test", "--out", out])
    assert code == 2 and "segmenter size 64 does not match the trained network's 48" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
