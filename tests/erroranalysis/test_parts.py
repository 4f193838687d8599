"""Error analysis by parts on a 3-component pipeline, including 'made worse' examples."""

from __future__ import annotations

import pandas as pd
import pytest

from genmed.errors import UserError
from genmed.erroranalysis import analyse_parts, error_by_parts, load_parts

P = "y_pred_perfect_upto_"


def _parts(tmp_path):
    # Pipeline: detection -> segmentation -> classification.
    rows = [
        # id, truth, pred, perfect detection, perfect detection+segmentation
        ("e1", "m", "b", "m", "m"),  # fixed by perfect detection -> detection
        ("e2", "m", "b", "b", "m"),  # fixed only once segmentation is perfect too
        ("e3", "b", "m", "m", "b"),  # segmentation
        ("e4", "b", "m", "m", "m"),  # nothing upstream fixes it -> classification
        ("e5", "m", "n", "n", "n"),  # classification
        ("e6", "n", "m", "n", "m"),  # detection (first fix counts)
        ("c1", "m", "m", "b", "m"),  # correct, a perfect detector makes it wrong
        ("c2", "n", "n", "n", "m"),  # correct, perfect detection+segmentation makes it wrong
        ("c3", "b", "b", "b", "b"),
    ]
    df = pd.DataFrame(rows, columns=["id", "y_true", "y_pred", P + "detection", P + "segmentation"])
    path = tmp_path / "parts.csv"
    df.to_csv(path, index=False)
    return path


def test_three_components(tmp_path):
    report = analyse_parts(_parts(tmp_path), ["detection", "segmentation", "classification"])
    d = report.to_dict()
    assert d["n_errors"] == 6
    assert d["components"] == [
        {"name": "detection", "n_attributed": 2, "share": 2 / 6},
        {"name": "segmentation", "n_attributed": 2, "share": 2 / 6},
        {"name": "classification", "n_attributed": 2, "share": 2 / 6},
    ]
    assert report.attribution.to_dict() == {
        "e1": "detection", "e2": "segmentation", "e3": "segmentation",
        "e4": "classification", "e5": "classification", "e6": "detection",
    }
    assert d["made_worse"] == [
        {"component": "detection", "n": 1, "ids": ["c1"]},
        {"component": "segmentation", "n": 1, "ids": ["c2"]},
    ]
    assert "makes 1 correct example(s) wrong: c1" in report.to_text()
    assert sum(c["n_attributed"] for c in d["components"]) == d["n_errors"]


def test_recommendation_names_the_largest(tmp_path):
    df = pd.DataFrame({"id": list("abcd"), "y_true": list("xxxx"), "y_pred": list("yyyx"),
                       P + "seg": list("xxyx")})
    report = error_by_parts(df.set_index("id", drop=False), ["seg", "cls"])
    assert [c.n_attributed for c in report.components] == [2, 1]
    assert report.recommendation().startswith("Fix 'seg' first: it is to blame for 2 of 3")


def test_default_order_and_bad_orders(tmp_path):
    parts = load_parts(_parts(tmp_path))
    report = error_by_parts(parts)
    assert [c.name for c in report.components] == ["detection", "segmentation", "last component"]
    with pytest.raises(UserError, match="no column y_pred_perfect_upto_seg"):
        error_by_parts(parts, ["seg", "classification"])
    with pytest.raises(UserError, match="does not place component"):
        error_by_parts(parts, ["detection", "classification"])
    with pytest.raises(UserError, match="twice"):
        error_by_parts(parts, ["detection", "detection"])
