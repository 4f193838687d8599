"""End to end in headless Chromium (selenium + Debian chromium-driver): tag, note, next, table, DB."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from genmed.erroranalysis import TagStore, load_predictions, make_split
from genmed.erroranalysis.web import Review, create_app

from .conftest import grouped_dev

# Serial with the torchrun launches: see tests/train/test_distributed.py
pytestmark = pytest.mark.xdist_group("ports")


def ct_slice(seed: int, size: int = 64) -> np.ndarray:
    """A toy axial CT slice in HU: air, body (fat/soft tissue), two kidneys, a lesion."""
    yy, xx = np.mgrid[:size, :size] / size
    hu = np.full((size, size), -1000.0, np.float32)
    hu[((xx - 0.5) / 0.42) ** 2 + ((yy - 0.5) / 0.32) ** 2 < 1] = 40
    for cx in (0.33, 0.67):
        hu[((xx - cx) / 0.08) ** 2 + ((yy - 0.55) / 0.12) ** 2 < 1] = 150
    rng = np.random.default_rng(seed)
    hu[(xx - 0.33 - 0.02 * rng.random()) ** 2 + (yy - 0.5) ** 2 < 0.03**2] = 10
    return hu + rng.normal(0, 15, hu.shape).astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """The UI on a free 127.0.0.1 port in a thread (uvicorn), with CT images for eyeball errors."""
    import uvicorn

    preds_df = load_predictions(grouped_dev(tmp_path, n_patients=20, per_patient=4, with_images=True))
    split = make_split(preds_df, eyeball_errors=6, group_col="patient_id", seed=0)
    store = TagStore(tmp_path / "tags.sqlite")
    review = Review.build(preds_df, split.sets, store, base_dir=tmp_path, reviewer="tester",
                          start_tags=["malignant", "benign", "noisy"])
    (tmp_path / "img").mkdir()
    for k, eid in enumerate(review.ids):
        path = tmp_path / "img" / f"{eid}.nii.gz"
        nib.save(nib.Nifti1Image(np.rot90(ct_slice(k), -1).copy(), np.eye(4)), path)
        review.images[eid] = path
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(review), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "server did not start"
    yield f"http://127.0.0.1:{port}", review
    srv.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-dev-shm-usage", "--window-size=1200,860"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"),
                              options=opts)
    yield driver
    driver.quit()


def table_rows(driver) -> dict[str, tuple[str, str]]:
    """The ceiling table as {tag: (count, ceiling)}, read in one script (no stale elements)."""
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#ceilings tbody tr')]"
        ".map(tr => [...tr.cells].map(td => td.textContent.trim()))")
    return {c[0]: (c[1], c[4]) for c in cells}


@pytest.mark.browser
def test_review_in_headless_chromium(server, browser, artifacts_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    base, review = server
    first, second = review.ids[0], review.ids[1]
    wait = WebDriverWait(browser, 10)
    browser.get(base + "/")
    wait.until(lambda d: d.current_url.endswith(f"/example/{first}"))
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('image'); return i && i.complete && i.naturalWidth > 0"))
    body = browser.find_element(By.TAG_NAME, "body")
    button = lambda tag: browser.find_element(By.CSS_SELECTOR, f'#tags .tag[data-tag="{tag}"]')  # noqa: E731

    body.send_keys("1")  # keyboard: first tag button
    wait.until(lambda d: "on" in button("malignant").get_attribute("class").split())
    button("noisy").click()  # mouse
    wait.until(lambda d: button("noisy").get_attribute("aria-pressed") == "true")
    wait.until(lambda d: set(table_rows(d)) == {"malignant", "noisy"})
    assert browser.find_element(By.ID, "n-reviewed").text == "1"

    body.send_keys("e")  # focus the note
    browser.switch_to.active_element.send_keys("low contrast lesion", Keys.ESCAPE)
    body.send_keys("n")  # next: saves the note, marks reviewed, moves on
    wait.until(lambda d: d.current_url.endswith(f"/example/{second}"))
    wait.until(lambda d: d.find_element(By.ID, "eid").text == second)
    assert set(table_rows(browser)) == {"malignant", "noisy"}

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("t")  # a new tag, typed
    browser.switch_to.active_element.send_keys("motion", Keys.ENTER)
    wait.until(lambda d: "motion" in table_rows(d))
    wait.until(lambda d: d.find_element(By.ID, "n-reviewed").text == "2")
    rows = table_rows(browser)
    n_err, n = int(review.predictions["error"].sum()), len(review.predictions)
    # Each tag is on 1 of 2 reviewed errors: ceiling = error rate x 1/2.
    assert rows["motion"] == ("1", f"{100 * n_err / n / 2:.2f}%")
    assert browser.find_element(By.ID, "recommendation").text.startswith("Largest ceiling: ")
    wait.until(lambda d: d.execute_script(
        "const i = document.getElementById('image'); return i && i.complete && i.naturalWidth > 0"))

    store = TagStore(review.store.path)
    assert store.tags_for(first) == ["malignant", "noisy"]
    assert store.note_for(first) == "low contrast lesion"
    assert store.tags_for(second) == ["motion"]
    assert store.to_frame().set_index("tag").loc["motion", "reviewer"] == "tester"
    shot = Path(artifacts_dir) / "errors_ui.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 1000
