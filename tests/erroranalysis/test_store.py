"""SQLite tag store: toggling, notes, reviewed-without-tag, CSV round trip."""

from __future__ import annotations

import pandas as pd
import pytest

from genmed.errors import UserError
from genmed.erroranalysis import TagStore, export_tags, import_tags, load_tags, summarize


def test_toggle_note_and_reviewed(tmp_path):
    store = TagStore(tmp_path / "t.sqlite")
    assert store.toggle_tag("a", "noisy", "ann") is True
    store.add_tag("a", "malignant", "ann")
    assert store.tags_for("a") == ["malignant", "noisy"]
    assert store.toggle_tag("a", "noisy") is False
    assert store.tags_for("a") == ["malignant"]
    store.set_note("b", "motion artefact?", "bob")
    assert store.note_for("b") == "motion artefact?"
    assert store.reviewed_ids() == {"a", "b"}
    df = store.to_frame()
    assert df[["id", "tag"]].values.tolist() == [["a", "malignant"], ["b", ""]]
    assert df.loc[df["id"] == "a", "reviewer"].item() == "ann"
    with pytest.raises(UserError):
        store.add_tag("a", "  ")


def test_csv_round_trip(tmp_path, example_files):
    preds, tags, err_ids = example_files
    db = tmp_path / "tags.sqlite"
    assert import_tags(tags, db, reviewer="ann") == 76
    store = TagStore(db)
    store.set_note(err_ids[0], "small cyst, low contrast", "ann")
    store.mark_reviewed(err_ids[1], "ann", image="img/1.png")
    out = tmp_path / "export.csv"
    assert export_tags(db, out) == 100
    back = load_tags(out)
    assert set(back.columns) == {"id", "tag", "reviewer", "time", "note", "image"}
    orig = load_tags(tags)
    assert sorted(map(tuple, back[["id", "tag"]].values)) == sorted(map(tuple, orig[["id", "tag"]].values))
    # The exported file and the database give the same table as the original CSV.
    assert summarize(preds, out).to_dict() == summarize(preds, tags).to_dict() == summarize(preds, db).to_dict()
    db2 = tmp_path / "again.sqlite"
    import_tags(out, db2)
    again = TagStore(db2).to_frame()
    assert again.loc[again["id"] == err_ids[0], "note"].item() == "small cyst, low contrast"
    assert again.loc[again["id"] == err_ids[1], "image"].item() == "img/1.png"
    assert pd.Series(again["reviewer"]).eq("ann").all()


def test_not_a_database(tmp_path):
    bad = tmp_path / "tags.sqlite"
    bad.write_text("id,tag\n")
    with pytest.raises(UserError, match="not an SQLite file"):
        TagStore(bad)
    with pytest.raises(UserError, match="not found"):
        export_tags(tmp_path / "none.sqlite", tmp_path / "o.csv")


def test_reading_never_writes(tmp_path, example_files):
    """summary and export open the store read-only: an empty file stays empty (and reads as no
    reviews), a stored file keeps its bytes, and a foreign SQLite file is refused."""
    import sqlite3

    preds, tags, _ = example_files
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    assert export_tags(empty, tmp_path / "o.csv") == 0
    assert empty.stat().st_size == 0
    db = tmp_path / "tags.sqlite"
    import_tags(tags, db)
    before = db.read_bytes()
    summarize(preds, db)
    export_tags(db, tmp_path / "o2.csv")
    assert db.read_bytes() == before
    foreign = tmp_path / "other.sqlite"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE patients (id TEXT)")
    with pytest.raises(UserError, match="without genmed's tables"):
        export_tags(foreign, tmp_path / "o3.csv")
