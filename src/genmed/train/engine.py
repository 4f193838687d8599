"""The one training loop for every family (design.md, "Training engine").

Each step takes one batch (plus "step", the optimiser steps done so far, for models with
step-dependent losses such as KL annealing) and, for every phase the model names (`model.phases()`: "main" for
diffusion and VAE, "discriminator" then "generator" for a GAN), zeroes the gradients, reduces
the model's per-sample losses to their mean, back-propagates (through DDP when launched by
torchrun), clips, and steps that phase's AdamW optimiser and LR schedule. Then the EMA of the
weights is updated. The loop never asks which family it drives.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset

from genmed.config import save_config, to_dict
from genmed.errors import UserError
from genmed.fileio import check_output_dir, folder_lock, remove_stale_temps
from genmed.models.base import GenerativeModel
from genmed.train import checkpoint as ckpt
from genmed.train.allocator import keep_freed_memory
from genmed.train.compiled import compile_networks, to_channels_last
from genmed.train.config import TrainConfig, effective_warmup
from genmed.train.data import BatchOrder, check_batches, load_dataset, to_device, write_data_record
from genmed.train.distributed import (Topology, agree, gather_objects, init_from_env,
                                      local_rank_from_env, shutdown)
from genmed.train.precision import Numerics, resolve_numerics
from genmed.train.tracking import Tracker
from genmed.train.warm_start import warm_start


@dataclass(frozen=True)
class RunResult:
    """What a finished (or resumed-and-finished) run reports."""

    run_dir: Path
    step: int  # optimiser steps done in total
    metrics: dict[str, float] = field(default_factory=dict)  # last logged record
    img_per_s: float = 0.0  # global images per second of training (checkpoints, grids excluded)
    data_wait_share: float = 0.0  # fraction of that training time spent waiting for batches
    precision: str = "fp32"
    device: str = "cpu"


def build_model(cfg: TrainConfig) -> GenerativeModel:
    """The model `cfg` describes, from the family registry (`genmed.models.build_model`);
    an unknown family or option, or a size the network cannot use, is a `UserError`. Only the
    generative families train on `cfg.data` alone; a supervised model needs its targets and
    is trained with `genmed.train.fit` (or the pipeline); a family that builds on another
    trained model (ldm) with `genmed.train.stages.train`."""
    from genmed.models import FAMILIES, capabilities
    from genmed.models import build_model as build

    if cfg.family not in FAMILIES:
        raise UserError(f"family={cfg.family!r} cannot train on --data alone (it needs targets); "
                        f"generative families: {', '.join(FAMILIES)}")
    first = capabilities(cfg.family).builds_on
    if first:
        raise UserError(f"the {cfg.family} model trains on a trained {first} in stages: use "
                        "genmed.train.train (genmed train) or pass the model built on it")

    return build(cfg.family, spatial_dims=cfg.spatial_dims, in_channels=cfg.in_channels,
                 size=cfg.size, num_classes=cfg.num_classes if cfg.cond == "label" else 0,
                 **cfg.options)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """LR multiplier after `step` optimiser steps: linear warm-up ((step + 1) / warmup), then
    cosine decay to 0 at `cfg.steps` (Loshchilov & Hutter 2017, SGDR eq. 5, no restarts) or
    constant. A closed form of the step, so a run resumed with more steps follows the
    stretched curve. Warm-up is capped at a fifth of the run (`effective_warmup`)."""
    warmup = effective_warmup(cfg)
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, cfg.steps - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> LRScheduler:
    """`torch.optim.lr_scheduler.LambdaLR` over `lr_factor` (its state is just the step)."""
    return LambdaLR(opt, lambda step: lr_factor(step, cfg))


def ema_update(decay: float, warmup: bool = True):
    """`multi_avg_fn` for `AveragedModel`: EMA with decay min(decay, (1 + n) / (10 + n)) after
    n updates (the num_updates warm-up of TensorFlow's ExponentialMovingAverage), so short
    runs are not dominated by the initial weights; `warmup=False` is torch's
    `get_ema_multi_avg_fn(decay)` exactly."""
    fixed = get_ema_multi_avg_fn(decay)
    if not warmup:
        return fixed

    def update(ema_params, params, n_averaged) -> None:
        n = int(n_averaged)
        get_ema_multi_avg_fn(min(decay, (1 + n) / (10 + n)))(ema_params, params, n_averaged)

    return update


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed torch, numpy and python; optionally force deterministic kernels."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False


def train(cfg: TrainConfig, *, model: GenerativeModel | None = None,
          dataset: Dataset | None = None, resume: bool = False) -> RunResult:
    """Train `model` (default: built from `cfg`) on `dataset` (default: `cfg.data`).

    Writes RUN_DIR=`cfg.out`: config.yaml, checkpoints/, metrics.jsonl, tensorboard/,
    samples/. With `resume`, continues from RUN_DIR's newest checkpoint to `cfg.steps`.
    Under torchrun (WORLD_SIZE > 1) every process calls this; rank 0 writes.
    """
    numerics = resolve_numerics(cfg.device, cfg.precision, local_rank_from_env())
    if numerics.device.type == "cpu":
        keep_freed_memory()  # opt-in (GENMED_KEEP_FREED_MEMORY=1): reuse freed activations
    topo = init_from_env(numerics.device.type)
    finished = False
    try:
        with run_lock(cfg.out, topo.is_main):  # one writer per run folder (rank 0 holds it)
            result = _fit(cfg, numerics, topo, model, dataset, resume)
        finished = True
        return result
    finally:
        shutdown(topo, finished)


def check_new_run_dir(run_dir: str | Path) -> Path:
    """Refuse, before any data is read, a folder that cannot take a new run: a file, a path
    under a file, an unwritable place, or a folder that already holds a run."""
    run_dir = check_output_dir(run_dir)
    if ckpt.list_checkpoints(run_dir / "checkpoints"):
        raise UserError(f"{run_dir}: already holds a run; use --resume or a new --out")
    return run_dir


@contextmanager
def run_lock(run_dir: str | Path, active: bool = True) -> Iterator[None]:
    """Lock RUN_DIR for this process (`genmed.fileio.folder_lock`) and delete the temporary
    files a killed writer left there; a no-op on DDP ranks other than 0."""
    if not active:
        yield
        return
    with folder_lock(run_dir, what="run folder") as folder:
        for sub in ("", "checkpoints", "samples"):
            remove_stale_temps(folder / sub)
        yield


def _fit(cfg: TrainConfig, num: Numerics, topo: Topology, model: GenerativeModel | None,
         dataset: Dataset | None, resume: bool) -> RunResult:
    run_dir, device = Path(cfg.out), num.device
    if not resume:
        check_new_run_dir(run_dir)
    seed_everything(cfg.seed + topo.rank, cfg.deterministic)
    model = (model if model is not None else build_model(cfg)).to(device)
    if cfg.init is not None and not resume:  # before the EMA copy and the optimiser state
        warm_start(model, cfg.init, cfg.family)
    if cfg.channels_last:  # before the optimiser state exists
        to_channels_last(model)
    dataset = dataset if dataset is not None else load_dataset(cfg)
    check_batches(len(dataset), cfg.batch_size, topo.world)  # before config.yaml is written
    phases = model.phases()
    lr_scales = {p: model.phase_lr_scale(p) for p in phases}  # 1 but for a GAN's TTUR
    optimizers = {p: torch.optim.AdamW(list(model.phase_parameters(p)), lr=cfg.lr * lr_scales[p],
                                       betas=cfg.betas, weight_decay=cfg.weight_decay,
                                       fused=True)  # one kernel per step: ~9x the foreach CPU path
                  for p in phases}
    schedulers = {p: make_scheduler(optimizers[p], cfg) for p in phases}
    scaler = num.grad_scaler()
    ema = (AveragedModel(model, multi_avg_fn=ema_update(cfg.ema_decay, cfg.ema_warmup),
                         use_buffers=True) if cfg.ema_decay > 0 else None)
    step = 0
    if resume:
        step = _restore(run_dir, topo, model, ema, optimizers, schedulers, scaler)
    if topo.is_main:  # the resolved config (a resume may have raised `steps`)
        save_config(cfg, run_dir / "config.yaml")
        write_data_record(run_dir, dataset)  # modality, units, spacing: for `genmed sample`
    # what the model trains on, once its weights are restored (an ldm encodes its latents here)
    dataset = model.training_data(dataset)
    order = BatchOrder(dataset, cfg, rank=topo.rank, world=topo.world,
                       pin_memory=device.type == "cuda")
    if cfg.compile:  # after the EMA copy: a deep copy of a compiled forward runs the original
        compile_networks(model)
    net = (DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None, find_unused_parameters=len(phases) > 1)
           if topo.world > 1 else model)
    params = {p: [q for q in model.phase_parameters(p)] for p in phases}
    tracker = Tracker(run_dir, active=topo.is_main, total_steps=cfg.steps, start_step=step)
    sums: dict[str, Tensor] = {}
    last: dict[str, float] = {}
    start_step, t_start, wait_total, aside = step, time.perf_counter(), 0.0, 0.0
    t_saved = t_start
    t_win, steps_win = t_start, 0
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)  # a NaN/inf loss since the start
    try:
        while step < cfg.steps:
            batches = iter(order.epoch_loader(step))
            while step < cfg.steps:
                t0 = time.perf_counter()
                raw = next(batches, None)
                if raw is None:
                    break
                batch = to_device(raw, device)
                batch["step"] = torch.tensor(step, device=device)  # optimiser steps so far
                wait_total += time.perf_counter() - t0
                for phase in phases:
                    _phase_step(net, model, batch, phase, optimizers[phase], params[phase],
                                schedulers[phase], scaler, num, cfg.grad_clip, sums, nonfinite)
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                steps_win += 1
                if (step % cfg.log_every == 0 or step % cfg.ckpt_every == 0
                        or step == cfg.steps):  # before anything is logged or saved
                    _check_finite(nonfinite, step, cfg, topo)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    now = time.perf_counter()
                    last = _reduce(sums, steps_win, topo)
                    last.update(img_per_s=steps_win * cfg.batch_size / (now - t_win),
                                **_learning_rates(optimizers, lr_scales))
                    tracker.log(step, last)
                    sums, t_win, steps_win = {}, now, 0
                t_aside = time.perf_counter()  # checkpoints and grids: not training time
                # by steps, or by wall time (checked at log steps, rank 0's clock decides)
                overdue = step % cfg.log_every == 0 and agree(
                    cfg.ckpt_minutes > 0 and t_aside - t_saved >= 60 * cfg.ckpt_minutes, topo)
                if step % cfg.ckpt_every == 0 or step == cfg.steps or overdue:
                    _save(run_dir, step, cfg, topo, model, ema, optimizers, schedulers, scaler)
                    t_saved = time.perf_counter()
                if (cfg.sample_every and step % cfg.sample_every == 0) or step == cfg.steps:
                    if topo.is_main:
                        tracker.grid(step, grid_images(ema.module if ema else model, cfg, num,
                                                       dataset, t_aside - t_start - aside))
                tracker.advance(step)
                aside += time.perf_counter() - t_aside
                t_win += time.perf_counter() - t_aside
        if step == start_step and topo.is_main and not tracker.has_grid(step):  # a resume of a
            # run killed while drawing its final grid: draw it now
            tracker.grid(step, grid_images(ema.module if ema else model, cfg, num, dataset, 0.0))
    finally:
        tracker.close()
    elapsed = time.perf_counter() - t_start - aside
    done = step - start_step
    return RunResult(run_dir=run_dir, step=step, metrics=last,
                     img_per_s=done * cfg.batch_size / elapsed if done else 0.0,
                     data_wait_share=wait_total / elapsed if done else 0.0,
                     precision=num.precision, device=str(device))


def _phase_step(net: torch.nn.Module, model: torch.nn.Module, batch: dict[str, Tensor],
                phase: str, opt: torch.optim.Optimizer, params: list[torch.nn.Parameter],
                sched: LRScheduler, scaler: torch.amp.GradScaler | None, num: Numerics,
                grad_clip: float, sums: dict[str, Tensor], nonfinite: Tensor) -> None:
    """Zero, forward (autocast), reduce the per-sample loss, backward, clip, step one phase;
    a non-finite loss sets `nonfinite` (on the device: no host sync here)."""
    model.zero_grad(set_to_none=True)
    with num.autocast():
        out = net(batch, phase)
    loss = out["loss"].float().mean()
    nonfinite.logical_or_(~torch.isfinite(loss.detach()))
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    else:
        loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    sched.step()
    for key, value in out.items():
        name = f"{phase}/{key}"
        value = value.detach().float().mean()
        sums[name] = sums[name] + value if name in sums else value


def _check_finite(nonfinite: Tensor, step: int, cfg: TrainConfig, topo: Topology) -> None:
    """Stop a diverged run before it logs or checkpoints NaN weights: a `UserError` if any
    process saw a non-finite loss (the checkpoints already written are kept)."""
    flag = nonfinite.float()
    if topo.world > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item():
        raise UserError(f"training diverged: a NaN or infinite loss by step {step} at lr "
                        f"{cfg.lr:g}; lower --lr or set --grad-clip (earlier checkpoints are kept)")


def _learning_rates(optimizers: dict[str, torch.optim.Optimizer],
                    scales: dict[str, float]) -> dict[str, float]:
    """The learning rates now: "lr", the recipe's after warm-up and decay, and "PHASE/lr" for
    each phase that runs at its own multiple of it (`GenerativeModel.phase_lr_scale`)."""
    rates = {p: opt.param_groups[0]["lr"] for p, opt in optimizers.items()}
    first = next(iter(rates))
    out = {"lr": rates[first] / scales[first]}
    out.update({f"{p}/lr": rate for p, rate in rates.items() if scales[p] != 1.0})
    return out


def _reduce(sums: dict[str, Tensor], n: int, topo: Topology) -> dict[str, float]:
    """Window means of the logged losses, averaged over DDP processes."""
    if not sums:
        return {}
    keys = sorted(sums)
    stacked = torch.stack([sums[k] for k in keys]) / n
    if topo.world > 1:
        dist.all_reduce(stacked)
        stacked = stacked / topo.world
    return dict(zip(keys, stacked.tolist()))


def preview_batch(dataset: Dataset, n: int) -> dict[str, Tensor]:
    """The first `n` items of `dataset`, collated: what the end-of-run grid is made from."""
    from torch.utils.data import default_collate

    items = [dataset[i] for i in range(min(n, len(dataset)))]  # type: ignore[arg-type]
    return {k: v for k, v in default_collate(items).items() if isinstance(v, Tensor)}


GRID_MIN_S = 30.0  # a grid may always take this long...
GRID_SHARE = 0.1  # ...or this share of the training time before it


def grid_images(model: GenerativeModel, cfg: TrainConfig, num: Numerics, dataset: Dataset,
                train_s: float) -> Tensor:
    """A sample grid sized to the run: the first image is timed, then only as many of
    `cfg.sample_n` are drawn as fit in max(GRID_MIN_S, GRID_SHARE * train_s) seconds, so a
    short 3D run does not spend most of its time drawing volumes."""
    batch = preview_batch(dataset, cfg.sample_n)
    start = time.perf_counter()
    first = sample_images(model, cfg, num, {k: v[:1] for k, v in batch.items()})
    each = time.perf_counter() - start
    n = min(len(next(iter(batch.values()))), max(1, int(max(GRID_MIN_S, GRID_SHARE * train_s) / each)))
    if n == 1:
        return first
    rest = sample_images(model, cfg, num, {k: v[1:n] for k, v in batch.items()}, seed=cfg.seed + 1)
    return torch.cat([first, rest])


@torch.no_grad()
def sample_images(model: GenerativeModel, cfg: TrainConfig, num: Numerics,
                  batch: dict[str, Tensor], seed: int | None = None) -> Tensor:
    """The model's `preview` of `batch` (samples, or predictions for a supervised model) for
    a grid, without touching the global RNG."""
    devices = [num.device.index or 0] if num.device.type == "cuda" else []
    batch = to_device(batch, num.device)
    with torch.random.fork_rng(devices=devices):
        generator = torch.Generator(num.device).manual_seed(cfg.seed if seed is None else seed)
        was_training = model.training
        model.eval()
        try:
            with num.autocast():
                images = model.preview(batch, steps=cfg.sample_steps, generator=generator)
        finally:
            model.train(was_training)
    return images.float()


def _save(run_dir: Path, step: int, cfg: TrainConfig, topo: Topology, model: torch.nn.Module,
          ema: AveragedModel | None, optimizers: dict, schedulers: dict,
          scaler: torch.amp.GradScaler | None) -> None:
    rng = gather_objects(ckpt.capture_rng(), topo)  # every rank's RNG, for exact resume
    if not topo.is_main:
        return
    state = {"optimizers": {p: o.state_dict() for p, o in optimizers.items()},
             "schedulers": {p: s.state_dict() for p, s in schedulers.items()},
             "scaler": scaler.state_dict() if scaler is not None else {},
             "rng": rng, "world": topo.world}
    from genmed.models import model_config_dict

    # how to rebuild the network, even if it was built in Python rather than from `cfg`
    config = {**to_dict(cfg), "model": model_config_dict(model)}
    ckpt.save_checkpoint(run_dir / "checkpoints", step, model=model, ema=ema, state=state,
                         config=config, keep=cfg.keep_checkpoints)


def _restore(run_dir: Path, topo: Topology, model: torch.nn.Module, ema: AveragedModel | None,
             optimizers: dict, schedulers: dict, scaler: torch.amp.GradScaler | None) -> int:
    """Load the newest usable checkpoint into the live objects; return its step."""
    return ckpt.load_newest(run_dir, lambda files: _restore_from(
        files, topo, model, ema, optimizers, schedulers, scaler))


def _restore_from(files: ckpt.CheckpointFiles, topo: Topology, model: torch.nn.Module,
                  ema: AveragedModel | None, optimizers: dict, schedulers: dict,
                  scaler: torch.amp.GradScaler | None) -> int:
    meta = ckpt.read_meta(files)
    ckpt.load_weights(model, files.path("model"))
    if ema is not None and meta.get("ema"):
        ckpt.load_weights(ema, files.path("ema"))
    state = ckpt.load_state(files)
    try:
        for p, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][p])
            schedulers[p].load_state_dict(state["schedulers"][p])
        if scaler is not None and state["scaler"]:
            scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        if len(rng) == topo.world:  # same world size: every process continues its own streams
            ckpt.restore_rng(rng[topo.rank])
    except (KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError) as exc:
        raise UserError(f"{files.path('state')}: does not fit this model's optimisers "
                        f"({type(exc).__name__}: {str(exc)[:160]})") from None
    return files.step
