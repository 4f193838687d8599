"""The demo stage: quick run writes the analysis page first among its links."""

from __future__ import annotations

import torch

from genmed.pipeline.demo import run_demo_stage


def test_demo_stage_quick(tmp_path):
    threads = torch.get_num_threads()
    links = run_demo_stage(tmp_path / "pipeline", quick=True)
    assert links[0][0].name == "index.html" and "analysis" in links[0][1]
    assert all(path.is_file() for path, _ in links)
    assert "Category table" in links[0][0].read_text()
    assert torch.get_num_threads() == threads  # the stage restores the thread setting
