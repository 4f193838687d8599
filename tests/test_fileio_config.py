"""Atomic writes and dataclass configs."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from genmed.config import from_dict, load_config, save_config
from genmed.errors import UserError
from genmed.fileio import atomic_path, write_json


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text().strip().startswith("{")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


@dataclasses.dataclass(frozen=True)
class Inner:
    size: int = 32
    channels: tuple[int, ...] = (32, 64)


@dataclasses.dataclass(frozen=True)
class Outer:
    family: Literal["diffusion", "gan", "vae"] = "diffusion"
    lr: float = 1e-4
    inner: Inner = Inner()


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_round_trip(tmp_path, suffix):
    cfg = Outer(family="gan", lr=2e-4, inner=Inner(size=64, channels=(8, 16, 32)))
    path = save_config(cfg, tmp_path / f"cfg{suffix}")
    assert load_config(Outer, path) == cfg


def test_config_rejects_unknown_key_and_bad_literal():
    with pytest.raises(UserError, match="unknown key"):
        from_dict(Outer, {"famly": "gan"})
    with pytest.raises(UserError, match="'flow' is not one of"):
        from_dict(Outer, {"family": "flow"})
    with pytest.raises(UserError, match="should be int"):
        from_dict(Outer, {"inner": {"size": "big"}})


@pytest.mark.parametrize("text", ["", "\n\n", "# all settings commented out\n"])
def test_empty_config_file_is_refused(tmp_path, text):
    """An emptied config (a pipeline run's config.json, a --config file) silently meant every
    default: `pipeline predict` then ran at another size than the run was trained at."""
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(UserError, match="empty config file"):
        load_config(Outer, tmp_path / "c.yaml")


def test_atomic_write_uses_normal_file_mode(tmp_path):
    import os

    path = write_json(tmp_path / "m.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_unwritable_output_place_is_one_user_error(tmp_path, monkeypatch):
    """A folder the process cannot write (read-only, a pseudo file system) is refused up front
    by the output checks, and by `atomic_path` as the late safety net, never an OSError."""
    import os
    import tempfile

    from genmed.fileio import check_output_dir, check_output_file

    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(UserError, match="not writable"):
        check_output_file(tmp_path / "new" / "m.csv")
    with pytest.raises(UserError, match="not writable"):
        check_output_dir(tmp_path / "run")
    monkeypatch.undo()

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(UserError, match="cannot write here"):
        with atomic_path(tmp_path / "m.json"):
            pass
    monkeypatch.setattr(type(tmp_path), "mkdir", refuse)
    with pytest.raises(UserError, match="cannot create its folder"):
        with atomic_path(tmp_path / "sub" / "m.json"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_root_is_refused_where_access_says_yes_but_nothing_can_be_made(tmp_path, monkeypatch):
    """`os.access` answers yes to root for /proc; the check probes instead, and a writable
    folder passes with no probe left behind."""
    import os
    import tempfile

    from genmed.fileio import check_output_dir

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(os, "access", lambda p, mode: True)  # what root is told
    check_output_dir(tmp_path / "run")
    assert list(tmp_path.iterdir()) == []

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)  # what /proc does
    with pytest.raises(UserError, match="not writable"):
        check_output_dir(tmp_path / "run")


def test_parse_assignments_reads_values_as_yaml_and_refuses_bad_items():
    from genmed.config import parse_assignments

    assert parse_assignments(["pack=2", "lr=0.0002", "channels=[32, 64]", "diffaug=a,b", "off=false"]) == {
        "pack": 2, "lr": 2e-4, "channels": [32, 64], "diffaug": "a,b", "off": False}
    for bad in ("pack", "=2", "x=[1, 2"):
        with pytest.raises(UserError, match="--set"):
            parse_assignments([bad])
