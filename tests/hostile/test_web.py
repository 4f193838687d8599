"""The tagging UI under hostile requests (Starlette TestClient): cross-origin state changes,
oversized and deeply nested bodies, image paths from the CSV outside the data folder, and the
`serve` command refusing before it prints or creates anything."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from starlette.testclient import TestClient

from genmed.erroranalysis import TagStore
from genmed.erroranalysis.web import Review, app as web_app, create_app

MAX_BODY = getattr(web_app, "MAX_BODY", 1 << 20)  # getattr: the suite also runs on older code
MAX_DEPTH = getattr(web_app, "MAX_DEPTH", 32)

from .conftest import refused


@pytest.fixture
def site(tmp_path):
    """A data folder whose predictions CSV points at a good image, an absolute path outside
    the folder, a `../` path outside it and a missing file."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "img").mkdir(parents=True)
    outside.mkdir()
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(data / "img" / "ok.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(outside / "secret.png")
    rows = {"e0": "img/ok.png", "e1": str(outside / "secret.png"), "e2": "img/missing.png",
            "e3": "../outside/secret.png"}
    preds = pd.DataFrame({"id": list(rows) + ["c0", "c1"], "y_true": ["benign"] * 6,
                          "y_pred": ["malignant"] * 4 + ["benign"] * 2, "image": list(rows.values()) + [""] * 2})
    preds["error"] = preds["y_true"] != preds["y_pred"]
    preds = preds.set_index("id", drop=False)
    sets = pd.Series(["eyeball"] * 5 + ["blackbox"], index=preds.index)
    review = Review.build(preds, sets, TagStore(tmp_path / "t.sqlite"), base_dir=data)
    return TestClient(create_app(review), base_url="http://127.0.0.1:8765"), review, tmp_path


def test_images_outside_the_data_folder_are_not_served(site):
    c, review, root = site
    assert c.get("/image/e0").status_code == 200
    for eid in ("e1", "e2", "e3"):
        resp = c.get(f"/image/{eid}")
        assert resp.status_code == 404 and str(root) not in resp.text and "secret" not in resp.text
        page = c.get(f"/example/{eid}")
        assert page.status_code == 200 and str(root) not in page.text


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "http://127.0.0.1:1"},
    {"Origin": "https://127.0.0.1:8765"}, {"Origin": "http://localhost.evil.example:8765"},
    {"Sec-Fetch-Site": "cross-site"},
])
def test_cross_origin_state_changes_are_403(site, headers):
    c, review, _ = site
    for path, body in (("/api/toggle", {"id": "e0", "tag": "x"}), ("/api/note", {"id": "e0", "note": "x"}),
                       ("/api/reviewed", {"id": "e0"})):
        assert c.post(path, json=body, headers=headers).status_code == 403
    assert review.store.reviewed_ids() == set()


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:8765", "http://localhost:8765"])
def test_same_origin_and_no_origin_pass(site, origin):
    c, review, _ = site
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"} if origin else {}
    resp = c.post("/api/toggle", json={"id": "e0", "tag": "x"}, headers=headers)
    assert resp.status_code == 200 and review.store.tags_for("e0") == ["x"]


def test_oversized_bodies_are_413(site):
    c, review, _ = site
    big = b'{"id": "e0", "note": "' + b"a" * MAX_BODY + b'"}'
    assert c.post("/api/note", content=big, headers={"Content-Type": "application/json"}).status_code == 413

    def chunks():  # no Content-Length: streamed, cut at the limit
        yield b'{"id": "e0", "note": "'
        for _ in range(40):
            yield b"a" * 65536
        yield b'"}'
    resp = c.post("/api/note", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert c.post("/api/note", content=b"{}", headers={"Content-Type": "application/json",
                                                       "Content-Length": "abc"}).status_code in (400, 413)
    assert review.store.note_for("e0") == ""


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1),
                                  b'{"id": "e0", "note": "\xff"}', b'{"id": "e0", "note": ' + b"1" * 5000 + b"}"])
def test_nested_or_malformed_json_is_400(site, body):
    c, _, _ = site
    resp = c.post("/api/note", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text


def test_brackets_inside_strings_do_not_count(site):
    c, review, _ = site
    note = "[" * 500 + "{" * 500
    assert c.post("/api/note", json={"id": "e0", "note": note}).status_code == 200
    assert review.store.note_for("e0") == note


def test_serve_refuses_before_printing_or_creating(capsys, tmp_path, ea):
    line = refused(capsys, ["errors", "serve", "--predictions", ea["preds"], "--split", ea["split"],
                            "--db", tmp_path / "t.sqlite", "--host", "0.0.0.0"], [tmp_path, ea["root"]], "refused")
    assert "reviewing on" not in line
    refused(capsys, ["errors", "serve", "--predictions", ea["preds"], "--split", tmp_path / "none.csv",
                     "--db", tmp_path / "t.sqlite"], [tmp_path], "not found")
