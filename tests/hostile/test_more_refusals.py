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
