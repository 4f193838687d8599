"""The pipeline's stage of `genmed demo`: train quickly, predict, analyse, link the pages.

Settings are small so the stage fits about 90 s on two shared CPU cores; the full settings
and their measured numbers are in benchmarks/pipeline_train.py and docs/pipeline.md.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from genmed.pipeline.classifier import ClsConfig
from genmed.pipeline.pipeline import PipelineConfig
from genmed.pipeline.segmentation import SegConfig


def demo_config(quick: bool) -> PipelineConfig:
    """Demo settings: 32 (quick: 24) phantom patients, small UNet on 32-px patches."""
    seg = SegConfig(channels=(8, 16, 32, 64), patch=32, batch_size=8, epochs=25 if quick else 30)
    return PipelineConfig(n_patients=24 if quick else 40, seg=seg, cls=ClsConfig(epochs=15 if quick else 30))


@contextmanager
def _one_thread():
    """One torch thread while the stage runs: on a shared 2-core machine more threads are slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_demo_stage(out_dir: Path, quick: bool) -> list[tuple[Path, str]]:
    """Train, predict dev/test and analyse into `out_dir`; links, the analysis page first."""
    from genmed.pipeline.analyse import analyse
    from genmed.pipeline.pipeline import train_pipeline

    out_dir = Path(out_dir)
    with _one_thread():
        train_pipeline(demo_config(quick), out_dir)
        page, _ = analyse(out_dir)
    return [
        (page, "pipeline error analysis (categories, parts, examples)"),
        (out_dir / "metrics.json", "pipeline test metrics (Dice, balanced accuracy, CIs)"),
        (out_dir / "dev" / "preds.csv", "dev predictions (preds.csv)"),
        (out_dir / "dev" / "parts.csv", "dev error-by-parts table (parts.csv)"),
        (out_dir / "analysis" / "tags_auto.csv", "automatic tags (review with genmed errors serve)"),
    ]
