"""The demo's stage runner: index page, timings, and a failing stage that loses nothing."""

from __future__ import annotations

import json

from genmed import demo


def test_demo_stages_write_index_and_timings(tmp_path):
    index, records = demo.run_demo(tmp_path, quick=True, only=["phantom", "errors"])
    assert [r["stage"] for r in records] == ["phantom", "errors"]
    assert all(r["ok"] for r in records)
    html = index.read_text()
    assert 'href="phantom/contact_sheet.png"' in html and 'href="errors/report.html"' in html
    summary = json.loads((tmp_path / "errors" / "summary.json").read_text())
    ceilings = {c["tag"]: c["ceiling"] for c in summary["categories"]}
    assert ceilings == {"malignant": 0.0945, "benign": 0.0105, "noisy": 0.009}


def test_failing_stage_is_reported_and_others_still_run(tmp_path, monkeypatch):
    def boom(out, quick):
        raise RuntimeError("stage exploded")

    real = demo.stages()
    monkeypatch.setattr(demo, "stages", lambda: [demo.Stage("bad", "Bad", boom), *real])
    index, records = demo.run_demo(tmp_path, quick=True, only=["bad", "errors"])
    assert [r["ok"] for r in records] == [False, True]
    assert "stage exploded" in records[0]["error"]
    assert (tmp_path / "bad" / "error.txt").exists()
    assert "FAILED: RuntimeError: stage exploded" in index.read_text()
