"""`genmed pipeline ...` bad input: exit status 2, one line on stderr, nothing written."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args, needle", [
    (["pipeline", "predict", "NOPE", "--out", "{tmp}/x.csv"], "not a pipeline run folder"),
    (["pipeline", "predict", "{tmp}", "--split", "bogus", "--out", "{tmp}/x.csv"], "--split"),
    (["pipeline", "analyse", "{tmp}"], "no dev/preds.csv"),
    (["pipeline", "train", "--data", "{tmp}/data.txt", "--out", "{tmp}/r"], "manifest"),
    (["pipeline", "augment-study", "--quick", "--seeds", "0", "--out", "{tmp}/a"], "--seeds"),
    (["pipeline", "augment-study", "--quick", "--generator", "nonsense", "--out", "{tmp}/a"], "NAME=RUN_DIR"),
    (["pipeline", "few-labels", "--quick", "--fraction", "1.5", "--out", "{tmp}/f"], "fraction"),
    (["pipeline", "few-labels", "--quick", "--seeds", "1000000", "--out", "{tmp}/f"], "--seeds"),  # trained on
    (["pipeline", "augment-study", "--quick", "--seeds", "1000000", "--out", "{tmp}/a"], "--seeds"),
    (["pipeline", "train", "--quick", "--clinical", "--out", "{tmp}/r"], "choose one"),
    (["pipeline", "train", "--size", "64", "--seg-patch", "96", "--out", "{tmp}/r"], "--seg-patch"),
    (["pipeline", "train", "--seg-patch", "8", "--out", "{tmp}/r"], "--seg-patch"),
    (["pipeline", "train", "--clinical", "--patients", "2", "--out", "{tmp}/r"], "--patients"),
])
def test_bad_input_exit_2(cli, tmp_path, args, needle):
    (tmp_path / "data.txt").write_text("not a manifest")
    args = [a.format(tmp=tmp_path) for a in args]
    code, _, err = cli(args)
    assert code == 2
    assert err.strip().count("\n") == 0 and needle in err and "Traceback" not in err
    assert not any((tmp_path / name).exists() for name in ("x.csv", "a", "f", "r"))


@pytest.mark.parametrize("command", [["train", "--quick"], ["segment3d", "--quick"], ["crop-study", "--quick"],
                                     ["augment-study", "--quick"], ["few-labels", "--quick"]],
                         ids=lambda c: c[0])
def test_out_under_a_file_is_refused_before_any_work(cli, tmp_path, command):
    """segment3d ended in a NotADirectoryError traceback; train and crop-study were refused
    only once the first network's run folder was made."""
    (tmp_path / "f").write_text("mine")
    code, _, err = cli(["pipeline", *command, "--out", tmp_path / "f" / "run"])
    assert code == 2 and err.strip().count("\n") == 0 and "f is a file, not a folder" in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["f"] and (tmp_path / "f").read_text() == "mine"


def test_predict_with_an_emptied_config_json_is_refused(cli_refuses, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("")
    cli_refuses(["pipeline", "predict", tmp_path / "run", "--out", tmp_path / "p" / "preds.csv"],
                "empty config file")
    assert not (tmp_path / "p").exists()
