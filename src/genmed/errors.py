"""The one exception a user can cause.

Everything a user can get wrong (a missing file, a corrupt NIfTI, an unknown option) raises
`UserError` with a one-line message that names the file or value and the problem. The CLI
prints that line and exits with status 2; Python callers catch it like any exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class UserError(Exception):
    """Bad input from the user: printed as one line by the CLI, exit status 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would read like a traceback.
        super().__init__(" ".join(str(message).split()))


def check_choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """Return `value` if it is one of `options`, else raise a `UserError` naming both."""
    options = tuple(options)
    if value not in options:
        raise UserError(f"{name}={value!r} is not one of {', '.join(map(repr, options))}")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return `value` if it is > 0 (or >= 0 with `allow_zero`), else raise a `UserError`."""
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(f"{name}={value!r} must be {bound}")
    return value
