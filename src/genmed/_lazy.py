"""Lazy package exports (PEP 562): names are imported on first use.

Package `__init__` modules list what they export and from where; nothing heavy (torch, MONAI)
is imported until a name is used, so `genmed --help` stays fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`(__getattr__, __dir__, __all__)` for `package`, exporting `modules[module] = names`.

    A module key starting with "." is relative to `package`. `names` must be a tuple or list:
    a bare string ("name") would export its characters.
    """
    bad = [module for module, names in modules.items() if isinstance(names, str)]
    if bad:
        raise TypeError(f"{package}: exports of {bad} are a string, not a tuple (missing comma?)")
    where = {
        name: (package + module if module.startswith(".") else module)
        for module, names in modules.items()
        for name in names
    }
    exported = sorted(where)

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # cache: later look-ups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exported))

    return __getattr__, __dir__, exported
