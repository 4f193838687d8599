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


def test_atomic_write_uses_normal_file_mode(tmp_path):
    import os

    path = write_json(tmp_path / "m.json", {})
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
