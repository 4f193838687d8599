"""One call per CLI command: file paths in, results (and files) out.

Each function reads and checks its CSV files (`UserError` on bad input), does one job and
writes its output atomically when given `out`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pandas as pd

from genmed.erroranalysis.categories import CategoryTable, category_table
from genmed.erroranalysis.parts import PartsReport, error_by_parts
from genmed.erroranalysis.split import Split, make_split, overfit_test, sample_errors
from genmed.erroranalysis.store import TagStore
from genmed.erroranalysis.tables import load_parts, load_predictions, load_split, load_tags
from genmed.fileio import atomic_path

PathLike = str | os.PathLike


def _write_csv(df: pd.DataFrame, out: PathLike) -> None:
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)


def summarize(predictions: PathLike, tags: PathLike, *, confidence: float = 0.95) -> CategoryTable:
    """Category table with ceilings from `preds.csv` and `tags.csv` (or a tag database)."""
    preds = load_predictions(predictions)
    if str(tags).endswith((".sqlite", ".db", ".sqlite3")):
        tag_df = TagStore(tags, readonly=True).to_frame()  # reading: never create or write one
    else:
        tag_df = load_tags(tags)
    return category_table(preds, tag_df, confidence=confidence)


def split_dev(
    predictions: PathLike,
    eyeball_errors: int = 100,
    *,
    group_col: str | None = None,
    seed: int = 0,
    out: PathLike | None = None,
) -> Split:
    """Eyeball/blackbox split of the dev predictions; writes `id,set` to `out` if given."""
    split = make_split(load_predictions(predictions), eyeball_errors, group_col=group_col, seed=seed)
    if out is not None:
        _write_csv(split.to_frame(), out)
    return split


def sample_for_review(
    predictions: PathLike, split: PathLike, n: int = 100, *, seed: int = 0, out: PathLike | None = None
) -> pd.DataFrame:
    """Up to `n` misclassified eyeball examples (never blackbox); writes them to `out` if given."""
    df = sample_errors(load_predictions(predictions), load_split(split), n, seed=seed)
    if out is not None:
        _write_csv(df, out)
    return df


def check_overfit(predictions: PathLike, split: PathLike, *, alpha: float = 0.05) -> dict:
    """Eyeball vs blackbox error with a one-sided Fisher exact test (see `overfit_test`)."""
    return overfit_test(load_predictions(predictions), load_split(split), alpha=alpha)


def analyse_parts(parts: PathLike, order: Sequence[str] | None = None) -> PartsReport:
    """Error analysis by parts of a pipeline's `parts.csv`."""
    return error_by_parts(load_parts(parts), order)


def import_tags(tags_csv: PathLike, db: PathLike, *, reviewer: str = "") -> int:
    """Add a tags CSV to the SQLite store; returns the number of tag rows. The CSV is checked
    before the store is opened, so a bad file never creates an empty database."""
    load_tags(tags_csv)
    return TagStore(db).import_csv(tags_csv, reviewer=reviewer)


def export_tags(db: PathLike, out: PathLike) -> int:
    """Write the SQLite store as a tags CSV; returns the number of rows."""
    return TagStore(db, readonly=True).export_csv(out)


def serve_ui(
    predictions: PathLike,
    split: PathLike,
    db: PathLike,
    *,
    port: int = 8765,
    host: str = "127.0.0.1",
    reviewer: str = "",
    tags: Sequence[str] = (),
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run the tagging UI on http://127.0.0.1:`port` (eyeball errors only). Every input is
    checked (host, port free, CSV files) before the tag database is created; `on_ready` is
    called just before serving."""
    from pathlib import Path

    from genmed.erroranalysis.web import Review, check_host, serve
    from genmed.erroranalysis.web.app import check_port

    check_host(host)
    check_port(port)
    preds, sets = load_predictions(predictions), load_split(split)
    review = Review.build(
        preds,
        sets,
        TagStore(db),
        base_dir=Path(predictions).resolve().parent,
        reviewer=reviewer,
        start_tags=list(tags),
    )
    if on_ready is not None:
        on_ready()
    serve(review, host=host, port=port)
