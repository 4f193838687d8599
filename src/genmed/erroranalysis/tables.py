"""Load and check the CSV files of error analysis: predictions, tags, parts and splits.

Every file is read as text (ids and labels stay strings, so `1` and `benign` both work) and
checked on entry. Anything a user can get wrong (a missing file, a binary file, no rows, a
missing column, a duplicate id, a predicted label that never occurs as a true label) raises
`UserError` with one line naming the file and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from genmed.errors import UserError

PRED_COLUMNS = ("id", "y_true", "y_pred")
TAG_COLUMNS = ("id", "tag")
SPLIT_COLUMNS = ("id", "set")
SPLIT_SETS = ("eyeball", "blackbox")
PERFECT_PREFIX = "y_pred_perfect_upto_"


def read_csv(path: str | os.PathLike, required: Iterable[str], what: str) -> pd.DataFrame:
    """Read `path` as a CSV of strings with at least the `required` columns.

    `what` names the file's role in messages ("predictions", "tags"). Cells are stripped;
    empty cells become "" (never NaN), so callers compare plain strings.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} file {path}: not found")
    try:  # the first 4 KiB only: the whole file may be huge, or a device that cannot be read
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise UserError(f"{what} file {path}: cannot be read ({exc.strerror or exc})") from None
    if not head.strip():
        raise UserError(f"{what} file {path}: is empty")
    if b"\x00" in head:
        raise UserError(f"{what} file {path}: not a CSV text file (binary content)")
    try:
        # plain text only: pandas would otherwise decompress by the name (.gz, .bz2, .zip, ...)
        # and fail with a raw gzip / zip error on a file that only has such a name
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, compression=None)
    except UnicodeDecodeError:
        raise UserError(f"{what} file {path}: not a CSV text file (not UTF-8)") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{what} file {path}: is empty") from None
    except pd.errors.ParserError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "parse error"
        raise UserError(f"{what} file {path}: not a valid CSV ({first})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        found = ", ".join(df.columns[:8]) or "nothing"
        raise UserError(
            f"{what} file {path}: missing column(s) {', '.join(missing)} "
            f"(needs {', '.join(required)}; found {found})"
        )
    if len(df) == 0:
        raise UserError(f"{what} file {path}: has a header but no rows")
    df = df.apply(lambda col: col.str.strip())
    for col in required:
        blank = np.flatnonzero((df[col] == "").to_numpy())
        if col != "tag" and len(blank):
            raise UserError(f"{what} file {path}: empty {col!r} in data row {int(blank[0]) + 1}")
    return df


def _check_unique_ids(df: pd.DataFrame, path: Path, what: str) -> None:
    dup = df["id"][df["id"].duplicated()].unique()
    if len(dup):
        shown = ", ".join(map(str, dup[:5])) + (" ..." if len(dup) > 5 else "")
        raise UserError(f"{what} file {path}: {len(dup)} duplicate id(s): {shown}")


def _check_labels(df: pd.DataFrame, columns: Iterable[str], path: Path, what: str) -> None:
    known = set(df["y_true"])
    for col in columns:
        bad = sorted(set(df[col]) - known)
        if bad:
            shown = ", ".join(map(repr, bad[:5]))
            raise UserError(
                f"{what} file {path}: column {col} has label(s) {shown} that never occur "
                f"in y_true (known: {', '.join(sorted(known))})"
            )


def load_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Predictions `id,y_true,y_pred` (+ any columns); adds a boolean `error` column."""
    path = Path(path)
    df = read_csv(path, PRED_COLUMNS, "predictions")
    _check_unique_ids(df, path, "predictions")
    _check_labels(df, ["y_pred"], path, "predictions")
    df = df.set_index("id", drop=False)
    df["error"] = df["y_true"] != df["y_pred"]
    return df


def load_parts(path: str | os.PathLike) -> pd.DataFrame:
    """Pipeline predictions `id,y_true,y_pred,y_pred_perfect_upto_<component>...`."""
    path = Path(path)
    df = read_csv(path, PRED_COLUMNS, "parts")
    _check_unique_ids(df, path, "parts")
    perfect = [c for c in df.columns if c.startswith(PERFECT_PREFIX)]
    if not perfect:
        raise UserError(
            f"parts file {path}: no {PERFECT_PREFIX}<component> column "
            "(the final prediction with that component and all before it made perfect)"
        )
    for col in perfect:
        blank = df.index[df[col] == ""]
        if len(blank):
            raise UserError(f"parts file {path}: empty {col!r} in data row {int(blank[0]) + 1}")
    _check_labels(df, ["y_pred", *perfect], path, "parts")
    return df.set_index("id", drop=False)


def load_tags(path: str | os.PathLike) -> pd.DataFrame:
    """Tags `id,tag` (one row per example and tag; an empty tag marks "reviewed, no tag").

    Extra columns (reviewer, time, note, image) are kept. Repeated (id, tag) rows are
    dropped, keeping the first.
    """
    path = Path(path)
    df = read_csv(path, TAG_COLUMNS, "tags")
    return df.drop_duplicates(subset=["id", "tag"]).reset_index(drop=True)


def load_split(path: str | os.PathLike) -> pd.Series:
    """A split file `id,set` (set in eyeball/blackbox) as a Series indexed by id."""
    path = Path(path)
    df = read_csv(path, SPLIT_COLUMNS, "split")
    _check_unique_ids(df, path, "split")
    bad = sorted(set(df["set"]) - set(SPLIT_SETS))
    if bad:
        raise UserError(
            f"split file {path}: set value(s) {', '.join(map(repr, bad[:5]))} "
            f"are not one of {', '.join(SPLIT_SETS)}"
        )
    return df.set_index("id")["set"]
