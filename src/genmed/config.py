"""Typed dataclass configs, loaded from and saved to YAML or JSON.

Every run writes its resolved config next to its outputs, so a run can be repeated from the
file alone. Unknown keys and wrong types are a `UserError` naming the key, not a silent default.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from genmed.errors import UserError
from genmed.fileio import write_text

C = TypeVar("C")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain dict of a (nested) dataclass config, tuples as lists."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def from_dict(cls: type[C], data: dict[str, Any], *, where: str = "config") -> C:
    """Build dataclass `cls` from `data`, recursing into nested dataclass fields.

    Raises `UserError` for unknown keys or values of the wrong kind.
    """
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(fields)}")
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value, where=where)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return tuple(_coerce(item, v, where) for v in value)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        for arg in typing.get_args(hint):
            if arg is not type(None):
                return _coerce(arg, value, where)
    if origin is typing.Literal:
        options = typing.get_args(hint)
        if value not in options:
            raise UserError(f"{where}={value!r} is not one of {', '.join(map(repr, options))}")
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise UserError(f"{where}={value!r} should be {hint.__name__}")
    return value


def save_config(cfg: Any, path: str | os.PathLike) -> Path:
    """Atomically write a dataclass config as YAML (`.yaml`/`.yml`) or JSON (otherwise)."""
    path = Path(path)
    data = to_dict(cfg)
    if path.suffix in (".yaml", ".yml"):
        return write_text(path, yaml.safe_dump(data, sort_keys=False))
    return write_text(path, json.dumps(data, indent=2) + "\n")


def load_config(cls: type[C], path: str | os.PathLike) -> C:
    """Read a YAML or JSON file into dataclass `cls` (missing keys take their defaults)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))  # JSON is YAML too
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid YAML/JSON ({type(exc).__name__})") from None
    if data is None:  # an emptied or truncated file: all defaults would be another config
        raise UserError(f"{path}: empty config file (no settings in it)")
    return from_dict(cls, data, where=str(path))


def parse_assignments(items: list[str], where: str = "--set") -> dict[str, Any]:
    """`KEY=VALUE` strings as a dict, each VALUE read as YAML (8, 0.0, [32, 64], "a,b")."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{where} {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UserError(f"{where} {item!r}: the value is not valid YAML") from None
    return out
