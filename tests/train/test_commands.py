"""`genmed train` / `genmed sample`: bad input is one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import pytest

from genmed.cli import main

from .toys import Blobs, ToyDenoiser, toy_config


def _fails(capsys, argv: list[str], needle: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2
    assert len(err.splitlines()) == 1 and needle in err, err


def test_help_lists_train_and_sample(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "train" in out and "sample" in out


def test_unknown_family_writes_nothing(capsys, tmp_path):
    _fails(capsys, ["train", "--family", "flow", "--out", str(tmp_path / "run")],
           "family='flow' is not one of")
    assert not (tmp_path / "run").exists()


def test_bad_option_values(capsys, tmp_path):
    out = str(tmp_path / "run")
    _fails(capsys, ["train", "--precision", "fp8", "--out", out], "precision='fp8'")
    _fails(capsys, ["train", "--spatial-dims", "4", "--out", out], "spatial_dims=4")
    _fails(capsys, ["train", "--steps", "0", "--out", out], "steps=0 must be > 0")
    _fails(capsys, ["train", "--family", "gan"], "--out RUN_DIR is required")
    assert not (tmp_path / "run").exists()


def test_config_file_errors(capsys, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("family: gan\nlearning_rate: 0.1\n")
    _fails(capsys, ["train", "--config", str(cfg), "--out", str(tmp_path / "r")],
           "unknown key(s) learning_rate")
    _fails(capsys, ["train", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "r")],
           "config file not found")


def test_resume_and_sample_need_a_run(capsys, tmp_path):
    _fails(capsys, ["train", "--resume", str(tmp_path / "nowhere")], "run directory not found")
    _fails(capsys, ["sample", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")],
           "run directory not found")
    (tmp_path / "empty").mkdir()
    _fails(capsys, ["sample", str(tmp_path / "empty"), "--out", str(tmp_path / "s")],
           "no config.yaml")
    assert not (tmp_path / "s").exists()


def test_resume_rejects_other_options_and_foreign_sidecar(capsys, tmp_path):
    from genmed.train import train

    run = train(toy_config(str(tmp_path / "run"), 4), model=ToyDenoiser(), dataset=Blobs()).run_dir
    _fails(capsys, ["train", "--resume", str(run), "--family", "gan"],
           "--resume takes only --steps; drop family")
    (run / "checkpoints/step-00000004.json").write_text('{"format": "other"}')
    _fails(capsys, ["sample", str(run), "--out", str(tmp_path / "s")],
           "not a genmed-checkpoint/1 checkpoint")
    _fails(capsys, ["sample", str(run), "-n", "0", "--out", str(tmp_path / "s")], "-n 0")
    assert not (tmp_path / "s").exists()
