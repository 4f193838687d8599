"""Input checks: every bad file is one `UserError` naming the file and the problem."""

from __future__ import annotations

import pytest

from genmed.errors import UserError
from genmed.erroranalysis import load_parts, load_predictions, load_split, load_tags

BAD = {
    "missing column": ("id,y_true\na,1\n", "missing column(s) y_pred"),
    "duplicate id": ("id,y_true,y_pred\na,1,1\na,0,1\n", "1 duplicate id(s): a"),
    "unknown label": ("id,y_true,y_pred\na,cat,cat\nb,cat,dog\n", "label(s) 'dog' that never occur"),
    "empty": ("", "is empty"),
    "header only": ("id,y_true,y_pred\n", "no rows"),
    "blank id": ("id,y_true,y_pred\n,1,1\n", "empty 'id'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_predictions(tmp_path, case):
    text, msg = BAD[case]
    path = tmp_path / "preds.csv"
    path.write_text(text)
    with pytest.raises(UserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        load_predictions(path)


def test_binary_file_is_not_csv(tmp_path):
    path = tmp_path / "scan.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    with pytest.raises(UserError, match="not a CSV text file"):
        load_predictions(path)


def test_an_unreadable_file_is_one_line():
    """/proc/self/mem is a regular file whose first bytes cannot be read (EIO): reading the
    whole file to look at its head was an OSError traceback."""
    with pytest.raises(UserError, match="cannot be read"):
        load_predictions("/proc/self/mem")


@pytest.mark.parametrize("name", ["preds.csv.gz", "preds.csv.bz2", "preds.zip", "preds.csv.xz"])
def test_a_compressed_looking_name_is_read_as_plain_text(tmp_path, name):
    """Text with no NUL byte passes the binary check; pandas then decompressed by the name and
    failed with a raw gzip / bz2 / zip / lzma error instead of one line."""
    path = tmp_path / name
    path.write_text("not compressed at all\n")
    with pytest.raises(UserError, match="missing column"):
        load_predictions(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_predictions(tmp_path / "nope.csv")


def test_labels_kept_as_strings_and_error_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("id,y_true,y_pred,score\n1,0,0,0.1\n2,1,0,0.4\n")
    df = load_predictions(path)
    assert list(df["error"]) == [False, True]
    assert df.loc["2", "y_true"] == "1"


def test_tags_and_split_checks(tmp_path):
    tags = tmp_path / "t.csv"
    tags.write_text("id,tag\na,x\na,x\nb,\n")
    assert load_tags(tags).to_dict("list") == {"id": ["a", "b"], "tag": ["x", ""]}
    split = tmp_path / "s.csv"
    split.write_text("id,set\na,eyeball\nb,test\n")
    with pytest.raises(UserError, match="'test' are not one of eyeball, blackbox"):
        load_split(split)


def test_parts_needs_a_perfect_column(tmp_path):
    path = tmp_path / "parts.csv"
    path.write_text("id,y_true,y_pred\na,1,1\n")
    with pytest.raises(UserError, match="no y_pred_perfect_upto_<component> column"):
        load_parts(path)
    path.write_text("id,y_true,y_pred,y_pred_perfect_upto_seg\na,1,1,7\n")
    with pytest.raises(UserError, match="y_pred_perfect_upto_seg has label"):
        load_parts(path)
