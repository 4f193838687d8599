"""Run folders under hostile conditions: a second writer, a resume to fewer steps, torn logs,
stale temporary files, a missing final grid, a corrupt newest checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import refused, run_cli, snapshot


def test_a_second_writer_is_refused_while_the_run_is_locked(capsys, run_copy):
    from genmed.fileio import folder_lock

    with folder_lock(run_copy, what="run folder"):
        line = refused(capsys, ["train", "--resume", run_copy, "--steps", "6"], [run_copy],
                       "in use by another genmed process")
    assert str(os.getpid()) in line
    assert not (run_copy / ".lock").exists()  # released and removed


def test_a_new_run_folder_is_refused_while_locked(capsys, tmp_path):
    from genmed.fileio import folder_lock

    with folder_lock(tmp_path / "r"):
        refused(capsys, ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", tmp_path / "r"],
                [tmp_path], "in use")
    assert not (tmp_path / "r").exists()  # the lock created the folder; it is gone again


def test_two_trainers_on_one_folder_one_wins(tmp_path):
    """Two real processes: one trains, the other is refused with one line (locked, or the run
    already exists if it came second); the run is one run's config and checkpoints."""
    (tmp_path / "tiny.yaml").write_text("n_patients: 2\nsample_n: 4\nlog_every: 1\noptions: {channels: [8, 16], latent_dim: 8}\n")
    cmd = [sys.executable, "-m", "genmed", "train", "--config", str(tmp_path / "tiny.yaml"), "--family", "vae",
           "--size", "16", "--steps", "3", "--batch-size", "8", "--out", str(tmp_path / "run")]
    env = {**os.environ, "GENMED_QUIET": "1", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*cmd, "--seed", str(seed)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    err = next(e for code, e in results if code == 2).strip().splitlines()
    assert len(err) == 1 and ("in use" in err[0] or "already holds a run" in err[0]), err
    winner = 1 + [code for code, _ in results].index(0)
    assert "seed: %d" % winner in (tmp_path / "run" / "config.yaml").read_text()
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # one writer's log, not two interleaved


def test_only_rank_0_takes_the_lock(tmp_path):
    from genmed.train.engine import run_lock

    with run_lock(tmp_path / "r", active=False):
        assert not (tmp_path / "r").exists()
    with run_lock(tmp_path / "r", active=True):
        assert (tmp_path / "r" / ".lock").is_file()
        with pytest.raises(Exception, match="in use"):
            with run_lock(tmp_path / "r"):
                pass


def test_resume_to_fewer_steps_is_refused_and_config_kept(capsys, run_copy):
    refused(capsys, ["train", "--resume", run_copy, "--steps", "1"], [run_copy], "already trained 4 steps")
    assert "steps: 4" in (run_copy / "config.yaml").read_text()


def test_torn_log_line_and_stale_temps_are_repaired_on_resume(capsys, run_copy):
    with open(run_copy / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 5, "loss/ma')  # a kill in the middle of an append
    temps = [run_copy / "checkpoints" / ".step-00000006.model.safetensors.a1b2c3d4.tmp.safetensors",
             run_copy / ".config.yaml.zz99yy88.tmp.yaml"]
    for t in temps:
        t.write_bytes(b"")
    keep = run_copy / "checkpoints" / "notes.tmp"  # not an atomic_path temp: kept
    keep.write_text("mine")
    code, _, err = run_cli(capsys, ["train", "--resume", run_copy, "--steps", "6"])
    assert code == 0, err
    records = [json.loads(ln) for ln in (run_copy / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert not any(t.exists() for t in temps) and keep.exists()
    assert not (run_copy / ".lock").exists()


def test_resume_of_a_finished_run_draws_its_missing_final_grid(capsys, run_copy):
    grid = run_copy / "samples" / "step-00000004.png"
    grid.unlink()  # killed while drawing the final grid
    before = snapshot(run_copy / "checkpoints")
    code, _, err = run_cli(capsys, ["train", "--resume", run_copy])
    assert code == 0, err
    assert grid.is_file()
    assert snapshot(run_copy / "checkpoints") == before  # nothing retrained


@pytest.mark.parametrize("part", ["ema.safetensors", "model.safetensors", "state.pt", "json"])
def test_corrupt_newest_checkpoint_falls_back_with_one_warning(capsys, run_copy, tmp_path, part):
    newest = run_copy / "checkpoints" / f"step-00000004.{part}"
    newest.write_bytes(b"garbage")
    code, _, err = run_cli(capsys, ["sample", run_copy, "-n", "2", "--out", tmp_path / "s"])
    if part in ("ema.safetensors", "json"):  # what sampling reads
        lines = err.strip().splitlines()
        assert code == 0 and len(lines) == 1 and lines[0].startswith("genmed: warning: "), err
        assert "step 2" in lines[0]
    else:
        assert code == 0 and err.strip() == "", err
    assert (tmp_path / "s" / "grid.png").is_file()
    code, _, err = run_cli(capsys, ["train", "--resume", run_copy, "--steps", "6"])
    assert code == 0, err
    assert "using the previous checkpoint (step 2)" in err
    assert json.loads((run_copy / "checkpoints" / "step-00000006.json").read_text())["step"] == 6


def test_all_checkpoints_corrupt_is_one_line(capsys, run_copy, tmp_path):
    for f in (run_copy / "checkpoints").glob("*.ema.safetensors"):
        f.write_bytes(b"garbage")
    refused(capsys, ["sample", run_copy, "-n", "2", "--out", tmp_path / "s"], [run_copy, tmp_path],
            "no older checkpoint loads either")


def test_metrics_line_that_is_json_but_not_a_record(capsys, run_copy):
    (run_copy / "metrics.jsonl").write_text('[1, 2]\n{"step": 1, "x": 1}\n"text"\n')
    code, _, err = run_cli(capsys, ["train", "--resume", run_copy, "--steps", "5"])
    assert code == 0, err
    assert [json.loads(ln)["step"] for ln in (run_copy / "metrics.jsonl").read_text().splitlines()] == [1, 5]


def test_lock_file_of_a_killed_process_does_not_block(capsys, run_copy):
    (run_copy / ".lock").write_text("999999")  # left by a SIGKILLed trainer: no flock held
    code, _, err = run_cli(capsys, ["train", "--resume", run_copy, "--steps", "5"])
    assert code == 0, err
    assert not (run_copy / ".lock").exists()


def test_output_checks_are_instant(tmp_path):
    from genmed.errors import UserError
    from genmed.fileio import check_output_dir, check_output_file

    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        check_output_file(tmp_path / "d")
    with pytest.raises(UserError, match="is a file, not a folder"):
        check_output_file(tmp_path / "f" / "x" / "y.csv")
    with pytest.raises(UserError, match="not a folder"):
        check_output_dir(tmp_path / "f")
    (tmp_path / "d" / "grid.png").mkdir()
    with pytest.raises(UserError, match="grid.png there is a folder"):
        check_output_dir(tmp_path / "d", files=("grid.png",))
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert check_output_file(Path("relative.csv")) == Path("relative.csv")
    assert not (tmp_path / "new").exists()
