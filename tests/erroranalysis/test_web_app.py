"""The tagging app through Starlette's TestClient: pages, API, images and the security rules."""

from __future__ import annotations

import io

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from genmed.errors import UserError
from genmed.erroranalysis import TagStore, load_predictions, make_split
from genmed.erroranalysis.web import Review, check_host, create_app
from genmed.erroranalysis.web.images import read_image, render_png, window

from .conftest import grouped_dev


@pytest.fixture
def review(tmp_path):
    preds = load_predictions(grouped_dev(tmp_path, n_patients=20, per_patient=4, with_images=True))
    split = make_split(preds, eyeball_errors=6, group_col="patient_id", seed=0)
    (tmp_path / "img").mkdir()
    for i in preds.index:
        Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "img" / f"{i}.png")
    (tmp_path / "secret.txt").write_text("do not serve")
    r = Review.build(preds, split.sets, TagStore(tmp_path / "t.sqlite"), base_dir=tmp_path,
                     start_tags=["malignant", "noisy"])
    assert len(r.ids) >= 3
    return r, split.sets


def client(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1")


def test_pages_and_api(review):
    r, _ = review
    c = client(create_app(r))
    first = c.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == f"/example/{r.ids[0]}"
    page = c.get(first.headers["location"])
    assert page.status_code == 200
    assert r.predictions.at[r.ids[0], "y_true"] in page.text and 'data-tag="noisy"' in page.text
    img = c.get(f"/image/{r.ids[0]}")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert np.asarray(Image.open(io.BytesIO(img.content))).mean() == 100
    state = c.post("/api/toggle", json={"id": r.ids[0], "tag": "noisy"}).json()
    assert state["tags"] == ["noisy"] and state["table"]["categories"][0]["tag"] == "noisy"
    assert state["table"]["n_reviewed"] == 1
    c.post("/api/note", json={"id": r.ids[0], "note": "blurry"})
    assert r.store.note_for(r.ids[0]) == "blurry"
    c.post("/api/reviewed", json={"id": r.ids[1]})
    assert c.get("/", follow_redirects=False).headers["location"] == f"/example/{r.ids[2]}"
    assert c.get("/api/summary").json()["n_reviewed"] == 2


def test_blackbox_correct_and_traversal_are_404(review):
    r, sets = review
    c = client(create_app(r))
    blackbox = [i for i in r.predictions.index if sets[i] == "blackbox"]
    correct_eye = [i for i in r.predictions.index if sets[i] == "eyeball" and not r.predictions.at[i, "error"]]
    for eid in blackbox[:5] + correct_eye[:2]:
        assert c.get(f"/example/{eid}").status_code == 404
        assert c.get(f"/image/{eid}").status_code == 404
        assert c.post("/api/toggle", json={"id": eid, "tag": "x"}).status_code == 404
    for path in ("/image/../secret.txt", "/image/..%2Fsecret.txt", "/image/%2e%2e/%2e%2e/etc/passwd",
                 "/image//etc/passwd", "/image/img%2Fx000.png", "/example/..%2F..%2Fetc%2Fpasswd"):
        resp = c.get(path)
        assert resp.status_code == 404 and "do not serve" not in resp.text
    assert r.store.reviewed_ids() == set()


def test_host_binding_and_bad_requests(review):
    r, _ = review
    app = create_app(r)
    assert TestClient(app, base_url="http://evil.example").get("/api/summary").status_code == 400
    assert client(app).get("/api/summary", headers={"host": "localhost:8765"}).status_code == 200
    assert check_host("localhost") == "127.0.0.1" and check_host("127.0.0.1") == "127.0.0.1"
    for host in ("0.0.0.0", "::", "192.168.1.5", "example.org"):
        with pytest.raises(UserError, match="refused"):
            check_host(host)
    c = client(app)
    form = c.post("/api/toggle", data={"id": r.ids[0], "tag": "x"})  # cross-site form style
    assert form.status_code == 400
    assert c.post("/api/toggle", json={"id": r.ids[0], "tag": ""}).status_code == 400


def test_missing_image_is_a_visible_message(review):
    r, _ = review
    r.images[r.ids[0]].unlink()
    c = client(create_app(r))
    page = c.get(f"/example/{r.ids[0]}")
    assert page.status_code == 200
    assert 'id="image-missing"' in page.text and f"Image file not found: {r.ids[0]}.png" in page.text
    assert c.get(f"/image/{r.ids[0]}").status_code == 404


def test_ct_is_windowed(tmp_path):
    hu = np.full((6, 5, 3), -1000.0, np.float32)
    hu[:, :, 1] = np.linspace(-160, 240, 30).reshape(6, 5)  # exactly the abdomen window
    nib.save(nib.Nifti1Image(hu, np.eye(4)), tmp_path / "ct.nii.gz")
    arr, is_hu = read_image(tmp_path / "ct.nii.gz")
    assert is_hu and np.allclose(arr, hu[:, :, 1])
    grey = np.asarray(Image.open(io.BytesIO(render_png(tmp_path / "ct.nii.gz"))))
    assert grey.min() == 0 and grey.max() == 255
    assert window(np.array([-1000.0, 40.0, 3000.0])).tolist() == [0, 128, 255]
    (tmp_path / "junk.nii.gz").write_bytes(b"not nifti")
    with pytest.raises(UserError, match="cannot be read"):
        read_image(tmp_path / "junk.nii.gz")


def test_dicom_is_rescaled_to_hu(tmp_path):
    import shutil

    import pydicom
    from pydicom import examples

    src = examples.get_path("ct")  # CT_small.dcm, shipped inside pydicom
    shutil.copy(src, tmp_path / "slice.dcm")
    ds = pydicom.dcmread(src)
    arr, is_hu = read_image(tmp_path / "slice.dcm")
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert is_hu and np.array_equal(arr, expected.astype(np.float32))
    assert render_png(tmp_path / "slice.dcm")[:8] == b"\x89PNG\r\n\x1a\n"
