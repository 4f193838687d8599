"""Category table: the source's worked example exactly, overlapping tags, warnings, formats."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from genmed.erroranalysis import category_table, load_predictions, load_tags, summarize
from genmed.erroranalysis.categories import FORMATS


def test_worked_example_exact(example_files):
    preds, tags, _ = example_files
    table = summarize(preds, tags)
    d = table.to_dict()
    assert list(d) == ["n_examples", "n_errors", "error_rate", "n_reviewed", "categories"]
    assert (d["n_examples"], d["n_errors"], d["error_rate"], d["n_reviewed"]) == (1000, 150, 0.15, 100)
    got = {c["tag"]: (c["count"], c["share_of_reviewed_errors"], c["ceiling"]) for c in d["categories"]}
    assert got == {"benign": (7, 0.07, 0.0105), "malignant": (63, 0.63, 0.0945), "noisy": (6, 0.06, 0.009)}
    assert [c["tag"] for c in d["categories"]] == ["malignant", "benign", "noisy"]
    for c in d["categories"]:
        assert set(c) >= {"tag", "count", "share_of_reviewed_errors", "ceiling"}
        lo, hi = c["share_ci"]
        assert lo < c["share_of_reviewed_errors"] < hi
    assert table.warnings == ()
    text = table.render("table")
    assert "9.45%" in text and "1.05%" in text and "0.90%" in text
    assert text.splitlines()[-1].startswith("Work on 'malignant' first")
    assert "overlap" not in text


def test_overlapping_tags_are_counted_in_each_and_noted(example_files):
    preds, tags, err_ids = example_files
    df = load_tags(tags)
    extra = pd.DataFrame({"id": err_ids[7:37], "tag": "noisy"})  # 30 malignant errors also noisy
    table = category_table(load_predictions(preds), pd.concat([df, extra], ignore_index=True))
    counts = {c.tag: c.count for c in table.categories}
    assert counts == {"malignant": 63, "noisy": 36, "benign": 7}
    assert table.n_reviewed == 100
    assert table.overlapping
    assert "Note: tags overlap; shares sum to 106.0%" in table.to_text()


def test_tags_on_non_errors_and_unknown_ids_are_warned_not_counted(example_files):
    preds, tags, _ = example_files
    df = load_tags(tags)
    bad = pd.DataFrame({"id": ["s0000", "s0001", "nope"], "tag": ["malignant", "noisy", "benign"]})
    table = category_table(load_predictions(preds), pd.concat([df, bad], ignore_index=True))
    counts = {c.tag: c.count for c in table.categories}
    assert counts == {"malignant": 63, "benign": 7, "noisy": 6}
    assert table.n_reviewed == 100
    assert len(table.warnings) == 2
    assert "nope" in table.warnings[0] and "not in the predictions" in table.warnings[0]
    assert "s0000, s0001" in table.warnings[1] and "not errors" in table.warnings[1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_formats(example_files, fmt):
    preds, tags, _ = example_files
    out = summarize(preds, tags).render(fmt)
    if fmt == "json":
        assert json.loads(out)["categories"][0]["ceiling"] == 0.0945
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("tag,count,share_of_reviewed_errors")
        assert out.splitlines()[1].startswith("malignant,63,0.63")
    else:
        assert "malignant" in out
