"""Every name a package lists in `__all__` resolves (lazy exports included)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import genmed


def _packages() -> list[str]:
    names = [genmed.__name__]
    for info in pkgutil.walk_packages(genmed.__path__, prefix="genmed."):
        if info.ispkg:
            names.append(info.name)
    return names


def test_every_subpackage_is_found():
    assert {"genmed.metrics", "genmed.pipeline", "genmed.apps"} <= set(_packages())


@pytest.mark.parametrize("package", _packages())
def test_all_names_resolve(package: str):
    mod = importlib.import_module(package)
    names = getattr(mod, "__all__", None)
    assert names is not None, f"{package} has no __all__"
    assert all(isinstance(n, str) for n in names), f"{package}.__all__: {names}"
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names that do not resolve: {missing}"
