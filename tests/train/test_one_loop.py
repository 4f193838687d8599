"""One training loop: only the engine back-propagates (design.md, "Training engine")."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "genmed"
# Each exception says why in its own docstring or comment.
ALLOWED = {
    "train/engine.py",  # the one loop
    "scorelab/dsm.py",  # teaching toy: explicit vs denoising score matching, same batches
    "scorelab/manifold.py",  # teaching toy: a 2-D score net on a circle
    "metrics/extractor_train.py",  # frozen reference extractor genmed-phantom-cnn-v1
    "apps/anomaly_crops.py",  # GAN inversion: Adam on the latent z of a frozen generator (no weights trained)
}


def test_only_the_engine_and_the_named_exceptions_call_backward() -> None:
    callers = {str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
               if re.search(r"\.backward\(|autograd\.backward\(", p.read_text())}
    assert callers == ALLOWED, f"training loops outside the engine: {sorted(callers - ALLOWED)}"
