"""The one exception a user can cause.

Everything a user can get wrong (a missing file, a corrupt NIfTI, an unknown option) raises
`UserError` with a one-line message that names the file or value and the problem. The CLI
prints that line and exits with status 2; Python callers catch it like any exception.
"""

from __future__ import annotations

import math
import sys
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
    """Return `value` if it is a finite number > 0 (or >= 0 with `allow_zero`), else raise a
    `UserError` (NaN and infinity are refused too)."""
    check_finite(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(f"{name}={value!r} must be {bound}")
    return value


def check_finite(name: str, value: Any) -> Any:
    """Return `value` if it is a finite real number (not NaN, not +-inf), else raise a `UserError`."""
    try:
        ok = not isinstance(value, (bool, str)) and math.isfinite(value)
    except TypeError:
        ok = False
    if not ok:
        raise UserError(f"{name}={value!r} must be a finite number")
    return value


MAX_SEED = 2**63 - 1  # the largest seed torch.manual_seed takes (a larger one overflows)


def check_range(name: str, value: Any, low: float | None = None, high: float | None = None, *,
                low_open: bool = False, high_open: bool = False) -> Any:
    """Return `value` if it is finite and within [low, high] (an end is excluded with
    `low_open` / `high_open`; None: unbounded), else raise a `UserError` naming the range."""
    check_finite(name, value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise UserError(f"{name}={value!r} must be in {interval}")
    return value


def warn(message: str) -> None:
    """One line `genmed: warning: ...` on stderr (for a problem that was worked around)."""
    print(f"genmed: warning: {' '.join(str(message).split())}", file=sys.stderr)
