"""The CLI shell: help works, user errors become one line and exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from genmed.cli import main
from genmed.errors import UserError, check_choice


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "version" in capsys.readouterr().out


def test_user_error_is_one_line_exit_2():
    code = (
        "import genmed.cli as c\n"
        "from genmed.errors import UserError\n"
        "@c.app.command('boom')\n"
        "def boom():\n"
        "    raise UserError('bad.nii: not a NIfTI file\\n(second line)')\n"
        "c.main(['boom'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "genmed: error: bad.nii: not a NIfTI file (second line)"
    assert "Traceback" not in proc.stderr


def test_unknown_option_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["version", "--no-such-option"])
    assert exc.value.code == 2


def test_check_choice():
    assert check_choice("family", "gan", ["gan", "vae"]) == "gan"
    with pytest.raises(UserError, match="family='x' is not one of 'gan', 'vae'"):
        check_choice("family", "x", ["gan", "vae"])
