"""More hostile input, command by command: each case is refused with exit status 2, one stderr
line, no traceback, nothing new on disk, and before any large allocation or long work."""

from __future__ import annotations

import pytest

from .conftest import refused


@pytest.mark.parametrize("damage", ["empty", "size edited", "cut after 12 lines"])
@pytest.mark.parametrize("cmd", ["resume", "sample"])
def test_config_yaml_that_disagrees_with_the_checkpoint(capsys, run_copy, tmp_path, damage, cmd):
    """An emptied, edited or truncated config.yaml that still parses would resume another
    model (a shape error deep in training) or sample with the wrong settings."""
    path = run_copy / "config.yaml"
    text = path.read_text()
    path.write_text({"empty": "", "size edited": text.replace("size: 16", "size: 32"),
                     "cut after 12 lines": "".join(text.splitlines(keepends=True)[:12])}[damage])
    argv = (["train", "--resume", run_copy, "--steps", "6"] if cmd == "resume"
            else ["sample", run_copy, "-n", "2", "--out", tmp_path / "s"])
    refused(capsys, argv, [run_copy, tmp_path], "config.yaml: ")


@pytest.mark.parametrize("blocker", ["analysis/index.html", "analysis"], ids=["index.html a folder", "a file"])
def test_analyse_checks_its_output_folder_before_any_work(capsys, pipe_run, tmp_path, blocker):
    """A folder named index.html was only met at the last write: six analysis files were
    already written beside it."""
    import shutil

    from .conftest import run_cli

    run = tmp_path / "pipe"
    shutil.copytree(pipe_run, run)
    code, _, err = run_cli(capsys, ["pipeline", "predict", run, "--out", run / "dev" / "preds.csv"])
    assert code == 0, err
    if blocker.endswith(".html"):
        (run / blocker).mkdir(parents=True)
    else:
        (run / blocker).write_text("mine")
    refused(capsys, ["pipeline", "analyse", run], [run], "analysis folder")


@pytest.mark.parametrize("argv, blocker", [
    (["apps", "denoise", "--method", "tv", "--input", "{nii}"], "denoise.json"),
    (["apps", "generate-from-mask", "--quick", "--mask", "{mask}"], "generated.json"),
], ids=["denoise --input", "generate-from-mask --mask"])
def test_apps_on_user_files_check_their_output_names_first(capsys, files, tmp_path, argv, blocker):
    """A folder named like the last output was met only after the work and the first two
    files were written."""
    (tmp_path / "o" / blocker).mkdir(parents=True)
    args = [a.format(nii=files["nii"], mask=files["mask"]) for a in argv]
    refused(capsys, [*args, "--out", tmp_path / "o"], [tmp_path, files["root"]], "there is a folder")
