"""HTML pages and image grids."""

from __future__ import annotations

import numpy as np
import pytest

from genmed.report import Page, image_grid


def test_image_grid_layout_and_scaling():
    imgs = np.stack([np.full((4, 5), v, dtype=np.float32) for v in (-1.0, 0.0, 1.0)])
    grid = image_grid(imgs, ncol=2, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 6 + 1)
    assert grid[1, 1] == 0 and grid[1, 7] == 127 and grid[6, 1] == 255
    assert grid[0, 0] == 255  # padding is white


def test_image_grid_rejects_bad_shape():
    with pytest.raises(ValueError, match="expects"):
        image_grid(np.zeros((2, 3, 4, 5, 6)))


def test_page_escapes_and_links(tmp_path):
    (tmp_path / "img").mkdir()
    page = Page("Run <1>").heading("Metrics").table([{"family": "gan", "fid": 12.3456789}])
    page.figures([(tmp_path / "img" / "a.png", "samples & real")], base=tmp_path)
    out = page.write(tmp_path / "report.html")
    text = out.read_text()
    assert "Run &lt;1&gt;" in text and "12.35" in text
    assert 'src="img/a.png"' in text and "samples &amp; real" in text
