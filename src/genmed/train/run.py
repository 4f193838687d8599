"""Working with a finished or interrupted run directory: load, resume, sample.

A run directory holds config.yaml (the resolved `TrainConfig`) and checkpoints/; from those
alone the model can be rebuilt with its (EMA) weights, training resumed, or images sampled.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import torch
from safetensors import SafetensorError
from torch.utils.data import Dataset

from genmed.config import load_config, to_dict
from genmed.errors import MAX_SEED, UserError, check_choice, check_range, warn
from genmed.fileio import check_output_dir, write_json, write_png
from genmed.models.base import GenerativeModel
from genmed.train import checkpoint as ckpt
from genmed.train.allocator import keep_freed_memory
from genmed.train.compiled import accelerate
from genmed.train.config import (MAX_SAMPLE_ELEMENTS, MODEL_LIMITS, Precision, TrainConfig,
                                 check_model_limits)
from genmed.train.engine import RunResult, build_model, train
from genmed.train.precision import resolve_numerics
from genmed.train.tracking import sample_grid


def load_config_of(run_dir: str | Path) -> TrainConfig:
    """The resolved config of a run (its `out` set to `run_dir`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    if not (run_dir / "config.yaml").is_file():
        raise UserError(f"{run_dir}: not a genmed run (no config.yaml)")
    cfg = load_config(TrainConfig, run_dir / "config.yaml").replace(out=str(run_dir))
    _check_recorded_config(run_dir, cfg)
    return cfg


_MAY_DIFFER = ("model", "steps", "out")  # a resume may raise `steps`; a run folder may move


def _check_recorded_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Refuse a config.yaml that disagrees with the config its newest readable checkpoint
    recorded: an edited, truncated or emptied file would resume (or describe) another model."""
    for files in ckpt.list_checkpoints(run_dir / "checkpoints")[::-1]:
        try:
            recorded = ckpt.read_meta(files).get("config")
        except UserError:
            continue  # the loaders skip it too, with a warning
        if not isinstance(recorded, dict):
            return
        mine = to_dict(cfg)
        diff = [k for k in recorded if k not in _MAY_DIFFER and k in mine and mine[k] != recorded[k]]
        if diff:
            more = f" and {len(diff) - 1} more" if len(diff) > 1 else ""
            raise UserError(f"{run_dir / 'config.yaml'}: {diff[0]}={mine[diff[0]]!r} but its checkpoint "
                            f"{files.path('meta').name} was trained with {recorded[diff[0]]!r}{more}; the "
                            "file was edited or is damaged: restore it (the sidecar records the run's config)")
        return


def load_run(run_dir: str | Path, *, ema: bool = True, model: GenerativeModel | None = None,
             device: str = "cpu") -> tuple[GenerativeModel, TrainConfig]:
    """The model of a run's newest checkpoint (EMA weights unless `ema=False`) and its config.

    The model is rebuilt from the network config stored with the checkpoint (or the run's
    config) unless `model` (same architecture) is given.
    """
    cfg = load_config_of(run_dir)

    def load(files: ckpt.CheckpointFiles) -> GenerativeModel:
        meta = ckpt.read_meta(files)
        net = (model if model is not None else _rebuild(meta, cfg, files.path("meta"))).to(device)
        if ema and meta.get("ema"):
            _load_ema(net, files.path("ema"))
        else:
            ckpt.load_weights(net, files.path("model"))
        return net

    return ckpt.load_newest(Path(run_dir), load).eval(), cfg


def _rebuild(meta: dict, cfg: TrainConfig, where: Path) -> GenerativeModel:
    """The network recorded in the checkpoint sidecar, else the one `cfg` describes."""
    stored = meta.get("config", {}).get("model")
    if stored is None:
        return build_model(cfg)
    from genmed.models import build_model_from_config

    if not isinstance(stored, dict) or not isinstance(stored.get("config"), dict):
        raise UserError(f"{where}: malformed model record")
    check_model_limits(stored["config"], f"{where}: model")  # before anything is allocated
    return build_model_from_config(str(stored.get("family")), stored["config"])


def _load_ema(model: torch.nn.Module, path: Path) -> None:
    """Load the `module.`-prefixed weights of an `AveragedModel` file into the bare model."""
    state = ckpt.read_weights(path, averaged=True)
    try:
        ckpt.check_dtypes(path, model.state_dict(), prefix="module.")
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{path}: corrupt checkpoint weights ({str(exc)[:120]})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(f"{path}: foreign checkpoint weights (do not fit the model: "
                        f"{str(exc).splitlines()[0][:120]})") from None


def resume(run_dir: str | Path, *, steps: int | None = None, model: GenerativeModel | None = None,
           dataset: Dataset | None = None) -> RunResult:
    """Continue a run from its newest checkpoint to its `steps` (or a new, larger `steps`)."""
    cfg = load_config_of(run_dir)
    if steps is not None:
        check_resume_steps(run_dir, steps)
        cfg = cfg.replace(steps=steps)
    if model is None:  # the network its checkpoint records (e.g. an ldm built on a trained stage)
        model = ckpt.load_newest(Path(run_dir), lambda files: _rebuild(
            ckpt.read_meta(files), cfg, files.path("meta")))
    return train(cfg, model=model, dataset=dataset, resume=True)


def check_resume_steps(run_dir: str | Path, steps: int) -> None:
    """Refuse `--steps` below what the run has already trained (a run's config is never
    rewritten to fewer steps); cheap, so the CLI calls it before reading the data."""
    done = ckpt.latest_checkpoint(Path(run_dir)).step
    if steps < done:
        raise UserError(f"--steps {steps}: {run_dir} has already trained {done} steps; "
                        f"give at least {done}")


def sample_run(run_dir: str | Path, out: str | Path, *, n: int = 64, steps: int | None = None,
               sampler: str | None = None, guidance: float | None = None,
               temperature: float | None = None,
               class_name: str | None = None, seed: int = 0, device: str = "auto",
               precision: str = "auto", compile: bool = False,
               channels_last: bool = False) -> list[Path]:
    """Sample `n` images from a run's EMA model into `out`: one NIfTI per image in the training
    data's units and pixel spacing (RUN_DIR/data.json; CT: HU through the abdomen window),
    grid.png and samples.json. Returns the written paths. `precision` "auto": bf16 autocast
    where the CPU/GPU runs it fast (on the 64-px phantom teacher FID 13.4 [12.1, 14.8] in bf16
    vs 12.9 [11.6, 14.2] in fp32, 2.3x faster; benchmarks/distill_quality.py). `compile` /
    `channels_last`: `genmed.train.compiled.accelerate` first. `temperature` (GANs): z ~ N(0, T^2 I),
    below 1 for precision, above 1 for recall (`genmed.models.gan.check_temperature`)."""
    from genmed.models import capabilities, check_request

    check_sample_out(run_dir, out)
    check_range("-n", n, 1, 100_000)
    check_range("--seed", seed, 0, MAX_SEED)
    check_choice("--precision", precision, get_args(Precision))
    if steps is not None:
        check_range("--steps", steps, 1, MODEL_LIMITS["sample_steps"])
    if guidance is not None:
        check_range("--guidance", guidance, 0, 1000)
    if temperature is not None:
        from genmed.models.gan import check_temperature

        check_temperature(temperature, "--temperature")
    cfg = load_config_of(run_dir)
    check_request(cfg.family, sampler=sampler, guidance=guidance, temperature=temperature)
    if guidance is not None and class_name is None:  # unconditional sampling ignores the scale
        raise UserError(f"--guidance {guidance:g} scales the pull towards --class; without --class it "
                        "changes nothing: give --class (class-conditional runs) or drop --guidance")
    caps = capabilities(cfg.family)
    if steps == 1 and caps.samplers and not caps.few_step:
        warn(f"--steps 1 on {run_dir}, a {cfg.family} run that is not distilled: one step "
             "gives a blurry mean image, E[x0 | noise]; distil it first (genmed distill "
             f"{run_dir} --out STUDENT_RUN)")
    model, cfg = load_run(run_dir)
    shape = getattr(getattr(model, "config", None), "sample_shape", None)
    if shape is not None and n * int(np.prod(shape)) > MAX_SAMPLE_ELEMENTS:
        raise UserError(f"-n {n}: {n} samples of shape {tuple(shape)} need more than "
                        f"{MAX_SAMPLE_ELEMENTS * 4 >> 30} GiB; sample fewer per call (vary --seed)")
    num = resolve_numerics(device, precision)
    if num.device.type == "cpu":
        keep_freed_memory()
    model = accelerate(model.to(num.device), compile=compile, channels_last=channels_last)
    cond = None
    if class_name is not None:
        from genmed.data.phantom import LABELS

        if cfg.cond != "label":
            raise UserError(f"{run_dir}: the model is not class-conditional; drop --class")
        if class_name not in LABELS:
            raise UserError(f"--class {class_name!r} is not one of {', '.join(LABELS)}")
        cond = torch.full((n,), LABELS.index(class_name), dtype=torch.long, device=num.device)
    extra = {k: v for k, v in (("sampler", sampler), ("guidance", guidance),
                               ("temperature", temperature)) if v is not None}
    generator = torch.Generator(num.device).manual_seed(seed)
    with torch.no_grad(), num.autocast():
        images = model.sample(n, cond=cond, steps=steps, generator=generator, **extra)
    from genmed.train.data import read_data_record

    return write_samples(images.float().cpu(), Path(out), cfg, cond, read_data_record(run_dir))


def check_sample_out(run_dir: str | Path, out: str | Path) -> None:
    """Refuse a sample folder that is a file, or inside a run's checkpoints/ (or the run
    folder itself), before any work."""
    check_output_dir(out, files=("grid.png", "samples.json"))
    out, run = Path(out).resolve(), Path(run_dir).resolve()
    for folder in (out, *out.parents):
        if folder == run or ((folder / "config.yaml").is_file() and (folder / "checkpoints").is_dir()):
            raise UserError(f"--out {out}: inside the run folder {folder}; samples go in a folder "
                            "of their own")


def write_samples(images: torch.Tensor, out: Path, cfg: TrainConfig,
                  cond: torch.Tensor | None, data: dict | None = None) -> list[Path]:
    """Write (n, C, *spatial) images in [-1, 1] as NIfTI files in the data's units plus grid.png.

    `data`: the run's data record (`genmed.train.data.read_data_record`): its intensity map
    takes model units back to native ones (HU for CT, the data's own units otherwise), its
    `spacing_mm` is the spacing written (exactly the target of a run trained with --spacing,
    whose "resampled_to_mm" samples.json repeats). Without one (older runs): CT in HU, 1 mm.
    """
    from genmed.data.io import save_nifti
    from genmed.data.modality import CT_WINDOW, IntensityMap

    data = data or {}
    imap = IntensityMap.from_dict(data["intensity"]) if data.get("intensity") else CT_WINDOW
    spatial = images.ndim - 2
    spacing = data.get("spacing_mm") or [1.0] * spatial
    if len(spacing) != spatial:
        spacing = [1.0] * spatial
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, image in enumerate(images[:, 0].numpy()):
        native = np.asarray(imap.from_unit(image), dtype=np.float32)
        written.append(save_nifti(out / f"sample_{i:04d}.nii.gz", native, tuple(spacing),
                                  modality=imap.modality, units=imap.units,
                                  description=f"sample {cfg.family}"))
    written.append(write_png(out / "grid.png", sample_grid(images)))
    labels = cond.cpu().tolist() if cond is not None else None
    written.append(write_json(out / "samples.json", {
        "n": len(images), "family": cfg.family, "labels": labels, "modality": imap.modality,
        "units": imap.units, "intensity": imap.to_dict(), "spacing_mm": list(spacing),
        "spacing_from": "training data (RUN_DIR/data.json)" if data.get("spacing_mm")
        else "unknown: 1 mm", "resampled_to_mm": data.get("resampled_to_mm"),
        "orientation": "LPS"}))
    return written
