"""The tag store: one SQLite file shared by the CLI and the tagging UI (stdlib sqlite3).

Two tables: `reviews` (one row per reviewed example: reviewer, time, free-text note, image
reference) and `tags` (one row per example and tag: reviewer, time). An example reviewed
with no tag still counts as reviewed in the ceiling table. The CSV form is the `id,tag` file
of `genmed errors summary`, with a row whose tag is empty for a reviewed, untagged example.
Each call opens its own short connection, so the web server's worker threads never share one.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from genmed.errors import UserError
from genmed.fileio import atomic_path, check_output_file

EXPORT_COLUMNS = ("id", "tag", "reviewer", "time", "note", "image")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
  id TEXT PRIMARY KEY, reviewer TEXT NOT NULL DEFAULT '', time TEXT NOT NULL,
  note TEXT NOT NULL DEFAULT '', image TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS tags (
  id TEXT NOT NULL, tag TEXT NOT NULL, reviewer TEXT NOT NULL DEFAULT '', time TEXT NOT NULL,
  PRIMARY KEY (id, tag));
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class TagStore:
    """Tags and notes in the SQLite file `path` (created on first use).

    `readonly=True` is for reading an existing store (`errors summary`, `errors export`):
    the file must exist, is opened in SQLite's read-only mode and is never written, so an empty
    file stays empty and reads as a store with no reviews.
    """

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.is_file():
            raise UserError(f"tag database {self.path}: not found")
        if not self.path.exists():  # to be created: under a file, or in an unwritable folder
            check_output_file(self.path, "tag database")
        if self.path.exists() and self.path.is_file():
            with open(self.path, "rb") as fh:
                head = fh.read(16)
            if head and head != b"SQLite format 3\x00":
                raise UserError(f"tag database {self.path}: not an SQLite file")
        if readonly:
            with self._connect() as con:
                tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if tables and not {"reviews", "tags"} <= tables:
                raise UserError(f"tag database {self.path}: an SQLite file without genmed's tables")
            self._empty = not tables
            return
        self._empty = False
        with self._connect() as con:
            con.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            if self.readonly:
                con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=10)
        except sqlite3.Error as exc:
            raise UserError(f"tag database {self.path}: {exc}") from None
        try:
            with con:  # commit on success, roll back on error
                yield con
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a corrupt or foreign file
            raise UserError(f"tag database {self.path}: {str(exc)[:160]}") from None
        finally:
            con.close()

    # -- writing ---------------------------------------------------------------------------
    def mark_reviewed(self, example_id: str, reviewer: str = "", image: str = "") -> None:
        """Record that `example_id` was reviewed (keeps an existing note)."""
        with self._connect() as con:
            con.execute(
                "INSERT INTO reviews (id, reviewer, time, image) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET reviewer=excluded.reviewer, time=excluded.time, "
                "image=CASE WHEN excluded.image != '' THEN excluded.image ELSE reviews.image END",
                (example_id, reviewer, _now(), image),
            )

    def set_note(self, example_id: str, note: str, reviewer: str = "") -> None:
        """Set the free-text note of `example_id` (marks it reviewed)."""
        self.mark_reviewed(example_id, reviewer)
        with self._connect() as con:
            con.execute("UPDATE reviews SET note=? WHERE id=?", (note, example_id))

    def add_tag(self, example_id: str, tag: str, reviewer: str = "") -> None:
        """Give `example_id` the tag `tag` (marks it reviewed)."""
        tag = tag.strip()
        if not tag:
            raise UserError("a tag must not be empty")
        self.mark_reviewed(example_id, reviewer)
        with self._connect() as con:
            con.execute(
                "INSERT OR REPLACE INTO tags (id, tag, reviewer, time) VALUES (?, ?, ?, ?)",
                (example_id, tag, reviewer, _now()),
            )

    def remove_tag(self, example_id: str, tag: str) -> None:
        """Remove `tag` from `example_id` (the example stays reviewed)."""
        with self._connect() as con:
            con.execute("DELETE FROM tags WHERE id=? AND tag=?", (example_id, tag))

    def toggle_tag(self, example_id: str, tag: str, reviewer: str = "") -> bool:
        """Add the tag if absent, remove it if present; return whether it is now set."""
        if tag in self.tags_for(example_id):
            self.remove_tag(example_id, tag)
            return False
        self.add_tag(example_id, tag, reviewer)
        return True

    # -- reading ---------------------------------------------------------------------------
    def tags_for(self, example_id: str) -> list[str]:
        """The tags of one example, sorted."""
        with self._connect() as con:
            rows = con.execute("SELECT tag FROM tags WHERE id=? ORDER BY tag", (example_id,))
            return [r[0] for r in rows]

    def note_for(self, example_id: str) -> str:
        """The note of one example ("" if none)."""
        with self._connect() as con:
            row = con.execute("SELECT note FROM reviews WHERE id=?", (example_id,)).fetchone()
        return row[0] if row else ""

    def reviewed_ids(self) -> set[str]:
        """Every example that was reviewed (tagged or not)."""
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT id FROM reviews")}

    def known_tags(self) -> list[str]:
        """Every tag used so far, most used first."""
        with self._connect() as con:
            rows = con.execute("SELECT tag FROM tags GROUP BY tag ORDER BY COUNT(*) DESC, tag")
            return [r[0] for r in rows]

    def to_frame(self) -> pd.DataFrame:
        """All reviews as `id,tag,reviewer,time,note,image`; tag "" for untagged reviews."""
        if self._empty:
            return pd.DataFrame(columns=list(EXPORT_COLUMNS))
        with self._connect() as con:
            rows = con.execute(
                "SELECT r.id, COALESCE(t.tag, ''), COALESCE(t.reviewer, r.reviewer), "
                "COALESCE(t.time, r.time), r.note, r.image "
                "FROM reviews r LEFT JOIN tags t ON t.id = r.id ORDER BY r.id, t.tag"
            ).fetchall()
        return pd.DataFrame(rows, columns=list(EXPORT_COLUMNS))

    # -- CSV -------------------------------------------------------------------------------
    def export_csv(self, path: str | os.PathLike) -> int:
        """Write all reviews and tags as CSV (atomically); return the number of rows."""
        df = self.to_frame()
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False)
        return len(df)

    def import_csv(self, path: str | os.PathLike, reviewer: str = "") -> int:
        """Add the rows of a tags CSV (`id,tag` + optional reviewer, time, note, image).

        Existing tags are kept; the file's reviewer/time win where given. Returns the number
        of tag rows added or updated.
        """
        from genmed.erroranalysis.tables import load_tags

        df = load_tags(path)
        get = lambda row, col, default: (row.get(col) or default) if col in df.columns else default  # noqa: E731
        n = 0
        with self._connect() as con:
            for row in df.to_dict("records"):
                who, when = get(row, "reviewer", reviewer), get(row, "time", _now())
                con.execute(
                    "INSERT INTO reviews (id, reviewer, time, note, image) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET "
                    "note=CASE WHEN excluded.note != '' THEN excluded.note ELSE reviews.note END, "
                    "image=CASE WHEN excluded.image != '' THEN excluded.image ELSE reviews.image END",
                    (row["id"], who, when, get(row, "note", ""), get(row, "image", "")),
                )
                if row["tag"]:
                    con.execute(
                        "INSERT OR REPLACE INTO tags (id, tag, reviewer, time) VALUES (?, ?, ?, ?)",
                        (row["id"], row["tag"], who, when),
                    )
                    n += 1
        return n
