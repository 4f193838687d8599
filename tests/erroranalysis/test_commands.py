"""`genmed errors ...` through the real CLI entry point: outputs, and bad input = exit 2, one line."""

from __future__ import annotations

import json

import pytest

from genmed.cli import main

from .conftest import grouped_dev


def run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(["errors", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_worked_example(capsys, example_files):
    preds, tags, _ = example_files
    code, out, _ = run(capsys, "summary", "--predictions", preds, "--tags", tags, "--format", "json")
    assert code == 0
    d = json.loads(out)
    assert [(c["tag"], c["ceiling"]) for c in d["categories"]] == [
        ("malignant", 0.0945), ("benign", 0.0105), ("noisy", 0.009)]
    code, out, _ = run(capsys, "summary", "--predictions", preds, "--tags", tags)
    assert code == 0 and "Work on 'malignant' first" in out


def test_summary_warns_on_unknown_tag_ids(capsys, example_files, tmp_path):
    preds, tags, _ = example_files
    with open(tags, "a") as fh:
        fh.write("ghost,noisy\ns0000,benign\n")
    code, out, err = run(capsys, "summary", "--predictions", preds, "--tags", tags)
    assert code == 0
    assert "genmed: warning: 1 tagged id(s) not in the predictions" in err
    assert "genmed: warning: 1 tagged id(s) are correctly classified" in err


def test_split_sample_overfit_flow(capsys, tmp_path):
    preds = grouped_dev(tmp_path, n_patients=40, per_patient=5)
    split, review = tmp_path / "split.csv", tmp_path / "review.csv"
    code, out, _ = run(capsys, "split", "--predictions", preds, "--eyeball-errors", "10",
                       "--group-col", "patient_id", "--out", split)
    assert code == 0 and "groups kept whole" in out
    assert split.read_text().splitlines()[0] == "id,set"
    code, out, _ = run(capsys, "sample", "--predictions", preds, "--split", split, "--n", "5", "--out", review)
    assert code == 0 and len(review.read_text().splitlines()) == 6
    code, out, _ = run(capsys, "overfit", "--predictions", preds, "--split", split, "--format", "json")
    assert code == 0 and set(json.loads(out)) >= {"eyeball", "blackbox", "p_value", "overfit"}


def test_by_parts_import_export(capsys, tmp_path, example_files):
    parts = tmp_path / "parts.csv"
    parts.write_text("id,y_true,y_pred,y_pred_perfect_upto_seg\na,1,0,1\nb,1,0,0\nc,0,0,0\n")
    code, out, _ = run(capsys, "by-parts", "--predictions", parts, "--order", "seg,cls")
    assert code == 0
    assert json.loads(out)["components"] == [
        {"name": "seg", "n_attributed": 1, "share": 0.5}, {"name": "cls", "n_attributed": 1, "share": 0.5}]
    _, tags, _ = example_files
    db, out_csv = tmp_path / "t.sqlite", tmp_path / "t.csv"
    assert run(capsys, "import", "--tags", tags, "--db", db)[0] == 0
    code, out, _ = run(capsys, "export", "--db", db, "--out", out_csv)
    assert code == 0 and "wrote 100 rows" in out


BAD_FILES = {
    "missing column": "id,y_true\na,1\n",
    "duplicate id": "id,y_true,y_pred\na,1,1\na,1,0\n",
    "unknown label": "id,y_true,y_pred\na,1,1\nb,0,7\n",
    "empty": "",
    "non-csv": b"\x89PNG\r\n\x1a\n\x00\x00binary",
}
COMMANDS = {
    "summary": lambda p, t, s, o: ["summary", "--predictions", p, "--tags", t, "--out", o],
    "split": lambda p, t, s, o: ["split", "--predictions", p, "--out", o],
    "sample": lambda p, t, s, o: ["sample", "--predictions", p, "--split", s, "--out", o],
    "overfit": lambda p, t, s, o: ["overfit", "--predictions", p, "--split", s],
    "by-parts": lambda p, t, s, o: ["by-parts", "--predictions", p],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_predictions_exit_2_one_line(capsys, tmp_path, case, command):
    bad = tmp_path / "bad.csv"
    content = BAD_FILES[case]
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    tags = tmp_path / "tags.csv"
    tags.write_text("id,tag\na,noisy\n")
    split = tmp_path / "split.csv"
    split.write_text("id,set\na,eyeball\nb,blackbox\n")
    out = tmp_path / "out.csv"
    code, stdout, err = run(capsys, *COMMANDS[command](bad, tags, split, out))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("genmed: error: ") and str(bad) in lines[0]
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing column", "empty", "non-csv"])
def test_bad_tags_and_split_files(capsys, tmp_path, example_files, case):
    preds, _, _ = example_files
    bad = tmp_path / "bad.csv"
    content = BAD_FILES[case]
    bad.write_bytes(content if isinstance(content, bytes) else content.encode())
    for args in (["summary", "--predictions", preds, "--tags", bad],
                 ["overfit", "--predictions", preds, "--split", bad],
                 ["import", "--tags", bad, "--db", tmp_path / "t.sqlite"]):
        code, _, err = run(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and str(bad) in err


def test_bad_options_exit_2(capsys, example_files, tmp_path):
    preds, tags, _ = example_files
    code, _, err = run(capsys, "summary", "--predictions", preds, "--tags", tags, "--format", "xml")
    assert code == 2 and "--format='xml' is not one of" in err
    code, _, err = run(capsys, "serve", "--predictions", preds, "--split", tags, "--db",
                       tmp_path / "d.sqlite", "--host", "0.0.0.0")
    assert code == 2 and "host '0.0.0.0' refused" in err
    code, _, err = run(capsys, "split", "--predictions", preds, "--eyeball-errors", "0", "--out", tmp_path / "s.csv")
    assert code == 2 and "eyeball_errors=0 must be > 0" in err


def test_summary_of_a_missing_database_is_refused_and_creates_nothing(capsys, example_files, tmp_path):
    preds, _, _ = example_files
    code, _, err = run(capsys, "summary", "--predictions", preds, "--tags", tmp_path / "none.sqlite")
    assert code == 2 and err.startswith("genmed: error: tag database") and "not found" in err, err
    assert not (tmp_path / "none.sqlite").exists()


def test_a_new_database_under_a_file_is_one_line(capsys, example_files, tmp_path):
    preds, tags, _ = example_files
    (tmp_path / "f").write_text("mine")
    code, _, err = run(capsys, "import", "--tags", tags, "--db", tmp_path / "f" / "t.sqlite")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is a file, not a folder" in err, err
    assert (tmp_path / "f").read_text() == "mine"


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(capsys, tmp_path, example_files):
    """--out naming an input file replaced the predictions, tags or the tag database (the
    reviewers' work) with the command's output."""
    preds, tags, _ = example_files
    (tmp_path / "dev").mkdir()  # grouped_dev writes preds.csv too
    dev = grouped_dev(tmp_path / "dev", n_patients=40, per_patient=5)
    split = tmp_path / "split.csv"
    assert run(capsys, "split", "--predictions", dev, "--eyeball-errors", "10", "--out", split)[0] == 0
    db = tmp_path / "t.sqlite"
    assert run(capsys, "import", "--tags", tags, "--db", db)[0] == 0
    for args, victim in ((["split", "--predictions", dev, "--eyeball-errors", "10", "--out", dev], dev),
                         (["sample", "--predictions", dev, "--split", split, "--n", "5", "--out", split], split),
                         (["summary", "--predictions", preds, "--tags", tags, "--out", tags], tags),
                         (["export", "--db", db, "--out", db], db)):
        before = victim.read_bytes()
        code, _, err = run(capsys, *args)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "is also the input" in err, (args, err)
        assert victim.read_bytes() == before, args
