"""Run logging: TensorBoard events, metrics.jsonl, sample-grid PNGs and a progress bar.

Only rank 0 of a DDP run writes. The progress bar (rich) shows loss and images/s and is
quiet when stderr is not a terminal or GENMED_QUIET=1. On resume, records after the resumed
step are dropped (metrics.jsonl rewritten, TensorBoard `purge_step`), so the logs of a resumed
run read like an unbroken one.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from genmed.fileio import write_png, write_text


def progress_enabled() -> bool:
    """Progress bars only on a terminal and unless GENMED_QUIET=1."""
    return sys.stderr.isatty() and os.environ.get("GENMED_QUIET", "0") != "1"


def sample_grid(images: torch.Tensor) -> np.ndarray:
    """A uint8 grid of (N, C, *spatial) images in [-1, 1]; 3D volumes show the middle slice."""
    from genmed.report.grid import image_grid

    x = images.detach().float().cpu()[:, 0]
    while x.ndim > 3:
        x = x[:, x.shape[1] // 2]
    return image_grid(x.numpy(), upscale=2 if x.shape[-1] < 64 else 1)


def _record_step(line: str) -> float:
    """The step of one metrics.jsonl line; inf for a line that is not a whole JSON record (a
    write torn by a kill), so it is dropped."""
    try:
        record = json.loads(line)
    except ValueError:
        return float("inf")
    step = record.get("step") if isinstance(record, dict) else None
    return step if isinstance(step, int) else float("inf")


class Tracker:
    """Writes a run's logs under `run_dir` (a no-op object when `active` is False)."""

    def __init__(self, run_dir: Path, *, active: bool, total_steps: int, start_step: int) -> None:
        self.active, self.run_dir = active, Path(run_dir)
        self._writer = self._bar = None
        if not active:
            return
        from torch.utils.tensorboard import SummaryWriter

        self.jsonl = self.run_dir / "metrics.jsonl"
        if self.jsonl.exists():  # drop records a crash left past the resume point, and torn lines
            kept = [ln for ln in self.jsonl.read_text(encoding="utf-8", errors="replace").splitlines()
                    if _record_step(ln) <= start_step]
            write_text(self.jsonl, "".join(ln + "\n" for ln in kept))
        self._writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                     purge_step=start_step if start_step > 0 else None)
        if progress_enabled():
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self._bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                                 transient=False)
            self._bar.start()
            self._task = self._bar.add_task("train", total=total_steps, completed=start_step,
                                            info="")

    def log(self, step: int, metrics: dict[str, float]) -> None:
        """One record: a metrics.jsonl line, TensorBoard scalars and the progress text."""
        if not self.active:
            return
        with open(self.jsonl, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, **metrics}) + "\n")
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)
        if self._bar is not None:
            loss = metrics.get("loss/main", next(iter(metrics.values()), float("nan")))
            info = f"loss {loss:.4f}  {metrics.get('img_per_s', 0.0):.1f} img/s"
            self._bar.update(self._task, completed=step, info=info)

    def advance(self, step: int) -> None:
        """Move the progress bar to `step`."""
        if self._bar is not None:
            self._bar.update(self._task, completed=step)

    def grid_path(self, step: int) -> Path:
        """RUN_DIR/samples/step-<8-digit step>.png."""
        return self.run_dir / "samples" / f"step-{step:08d}.png"

    def has_grid(self, step: int) -> bool:
        """Whether the sample grid of `step` is on disk (always True when not writing)."""
        return not self.active or self.grid_path(step).is_file()

    def grid(self, step: int, images: torch.Tensor) -> Path | None:
        """Save a sample grid as RUN_DIR/samples/step-<8-digit step>.png and to TensorBoard."""
        if not self.active or images.ndim < 3:  # vector samples (B, D): no image grid
            return None
        grid = sample_grid(images)
        path = write_png(self.grid_path(step), grid)
        self._writer.add_image("samples", grid, step, dataformats="HW")
        return path

    def close(self) -> None:
        """Flush TensorBoard and stop the progress bar."""
        if self._writer is not None:
            self._writer.close()
        if self._bar is not None:
            self._bar.stop()
