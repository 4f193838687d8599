"""`distill(TEACHER_RUN, out=STUDENT_RUN)`: a few-step student of a trained diffusion or ldm
run, trained by the one engine on the teacher's own data.

    distill("runs/ddpm", "runs/ddpm-cd", steps=2000)      # consistency distillation
    model, _ = load_run("runs/ddpm-cd"); model.sample(16, steps=1)

Consistency distillation (Song et al. 2023, Algorithm 2; `genmed.models.consistency`): the
teacher's EMA weights are loaded, frozen and copied into the student, which the engine trains
with the "consistency" recipe into STUDENT_RUN. Data, size, classes, numerics and seed are the
teacher run's (its config.yaml), so class and mask conditioning carry over. The student run
is an ordinary run: its checkpoint holds teacher and student weights and both architectures,
so `load_run`, `genmed sample STUDENT_RUN --steps 1` and `--resume` need nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from genmed.errors import UserError, check_choice
from genmed.models.consistency import TEACHERS, consistency_from_teacher
from genmed.train import engine
from genmed.train.data import load_dataset
from genmed.train.engine import RunResult
from genmed.train.run import load_config_of, load_run

Method = Literal["consistency"]
METHODS: tuple[str, ...] = ("consistency",)  # progressive distillation (Salimans & Ho 2022): not yet
_RECIPE_FIELDS = ("lr", "betas", "weight_decay", "warmup", "schedule", "grad_clip", "ema_decay")


def distill(teacher_run: str | Path, out: str | Path, *, method: Method = "consistency",
            steps: int = 2000, batch_size: int | None = None, lr: float | None = None,
            device: str | None = None, precision: str | None = None, seed: int | None = None,
            options: dict[str, Any] | None = None, dataset: Dataset | None = None) -> RunResult:
    """Distil `teacher_run` into a new run `out` with `method`, `steps` optimiser steps;
    `options` are `ConsistencyConfig` fields (num_scales, guidance, distance, ...); `dataset`
    replaces the teacher's data (e.g. an application's image-conditioned set)."""
    check_choice("--method", method, METHODS)
    teacher_cfg = load_config_of(teacher_run)
    if teacher_cfg.family not in TEACHERS:
        raise UserError(f"{teacher_run}: a {teacher_cfg.family} run cannot be distilled; the "
                        f"teacher must be a {' or '.join(TEACHERS)} run")
    student, teacher_dir = Path(out).resolve(), Path(teacher_run).resolve()
    if student.is_relative_to(teacher_dir) or teacher_dir.is_relative_to(student):
        raise UserError(f"--out {out}: the student needs a run folder of its own, neither "
                        f"inside the teacher's run {teacher_run} nor holding it")
    engine.check_new_run_dir(out)  # before the teacher is loaded
    options = dict(options or {})
    teacher, _ = load_run(teacher_run)
    model = consistency_from_teacher(teacher, teacher_run=str(Path(teacher_run).resolve()),
                                     **options)
    given = {k: v for k, v in dict(batch_size=batch_size, lr=lr, device=device,
                                   precision=precision, seed=seed).items() if v is not None}
    cfg = teacher_cfg.replace(  # the teacher's data and numerics; the student's recipe
        family="consistency", recipe="default", steps=steps, out=str(out), options=options,
        autoencoder=None, autoencoder_steps=None, sample_steps=None,
        **{**{name: None for name in _RECIPE_FIELDS}, **given})
    data = dataset if dataset is not None else load_dataset(cfg)
    return engine.train(cfg, model=model, dataset=data)
