"""The training loop on toy models: learning, phases, EMA, bf16, LR schedule, data order."""

from __future__ import annotations

import json
import math
import time

import pytest
import torch
from safetensors.torch import load_file

from genmed.errors import UserError
from genmed.train import TrainConfig, train
from genmed.train.config import effective_warmup
from genmed.train.data import BatchOrder
from genmed.train.engine import make_scheduler

from .toys import Blobs, ToyDenoiser, ToyGAN


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(steps=40, batch_size=8, lr=1e-2, warmup=4, precision="fp32", log_every=5,
                ckpt_every=20, out=str(tmp_path / "run"))
    return TrainConfig(**{**base, **kw})


def _records(run_dir) -> list[dict]:
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_toy_denoiser_learns_and_writes_run(tmp_path):
    result = train(_cfg(tmp_path, steps=80, sample_every=40), model=ToyDenoiser(), dataset=Blobs())
    run = result.run_dir
    losses = [r["main/loss"] for r in _records(run)]
    assert result.step == 80 and len(losses) == 16
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:2]) / 2  # noise prediction improves
    assert (run / "config.yaml").is_file() and list((run / "tensorboard").glob("events.*"))
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "step-00000040.png", "step-00000080.png"]
    assert [c.name for c in sorted((run / "checkpoints").glob("*.json"))] == [
        "step-00000060.json", "step-00000080.json"]  # keep_checkpoints=2
    assert not list(run.rglob("*.tmp*"))
    assert 0.0 <= result.data_wait_share < 1.0 and result.img_per_s > 0


def test_two_phase_model_steps_each_phase_with_its_own_optimiser(tmp_path):
    model = ToyGAN()
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    d0 = [p.detach().clone() for p in model.discriminator.parameters()]
    train(_cfg(tmp_path, steps=10, log_every=10), model=model, dataset=Blobs())
    assert all(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters()))
    record = _records(tmp_path / "run")[-1]
    assert {"discriminator/loss", "generator/loss", "generator/d_mean"} <= set(record)
    state = torch.load(tmp_path / "run/checkpoints/step-00000010.state.pt", weights_only=True)
    assert set(state["optimizers"]) == {"discriminator", "generator"}
    # each optimiser holds only its phase's parameters (4 tensors each)
    assert [len(state["optimizers"][p]["state"]) for p in ("discriminator", "generator")] == [4, 2]


@pytest.mark.parametrize("warmup", [False, True])
def test_ema_is_the_exponential_average_of_the_weights(tmp_path, warmup):
    cfg = _cfg(tmp_path, steps=6, ckpt_every=1, keep_checkpoints=10, ema_decay=0.8,
               ema_warmup=warmup)
    train(cfg, model=ToyDenoiser(bn=True), dataset=Blobs())
    folder = tmp_path / "run/checkpoints"
    ema = None
    for step in range(1, 7):
        weights = load_file(folder / f"step-{step:08d}.model.safetensors")
        n = step - 1  # updates before this one
        decay = min(0.8, (1 + n) / (10 + n)) if warmup else 0.8
        ema = ({k: v.clone() for k, v in weights.items()} if ema is None else
               {k: decay * ema[k] + (1 - decay) * weights[k] if v.is_floating_point() else weights[k]
                for k, v in weights.items()})
    saved = load_file(folder / "step-00000006.ema.safetensors")
    assert saved["n_averaged"].item() == 6
    for key, value in ema.items():
        if value.is_floating_point():
            torch.testing.assert_close(saved["module." + key], value, rtol=1e-5, atol=1e-6)
    assert not torch.equal(saved["module.net.0.weight"], weights["net.0.weight"])


def test_bf16_autocast_path_trains(tmp_path):
    seen = []
    model = ToyDenoiser()
    model.net[0].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    result = train(_cfg(tmp_path, steps=10, precision="bf16"), model=model, dataset=Blobs())
    assert result.precision == "bf16"
    assert torch.bfloat16 in seen  # the convolution ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights fp32
    assert all(torch.isfinite(torch.tensor(r["main/loss"])) for r in _records(result.run_dir))


def test_fp16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        assert train(_cfg(tmp_path, steps=5, precision="fp16"), model=ToyDenoiser(),
                     dataset=Blobs()).precision == "fp16"
    else:
        with pytest.raises(UserError, match="fp16"):
            train(_cfg(tmp_path, steps=5, precision="fp16"), model=ToyDenoiser(), dataset=Blobs())


def test_lr_warmup_then_cosine():
    cfg = TrainConfig(steps=24, warmup=4, lr=1.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    sched = make_scheduler(opt, cfg)
    lrs = []
    for _ in range(cfg.steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:5] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert lrs[5] < 1.0 and all(a > b for a, b in zip(lrs[4:], lrs[5:]))
    assert lrs[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 19 / 20)), rel=1e-5)


def test_batch_order_is_seeded_and_resumable():
    data, cfg = Blobs(32), TrainConfig(batch_size=8, seed=3)
    order = BatchOrder(data, cfg)
    full = [b["patient_id"] for s in range(0, 8, 4) for b in order.epoch_loader(s)]
    resumed = [b["patient_id"] for b in order.epoch_loader(6)]
    assert resumed == full[6:]  # step 6 = epoch 1, third batch
    assert full[:4] != full[4:]  # a new permutation per epoch
    assert [b["patient_id"] for b in BatchOrder(data, cfg).epoch_loader(0)] == full[:4]


def test_bad_settings_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not divisible by the 3 DDP processes"):
        BatchOrder(Blobs(), TrainConfig(batch_size=8), world=3)
    with pytest.raises(UserError, match="fewer than batch_size=128"):
        train(_cfg(tmp_path, batch_size=128), model=ToyDenoiser(), dataset=Blobs())
    with pytest.raises(UserError, match="ema_decay"):
        TrainConfig(ema_decay=1.0)
    assert effective_warmup(TrainConfig(steps=10, warmup=10)) == 2  # capped, not an error
    train(_cfg(tmp_path, steps=5), model=ToyDenoiser(), dataset=Blobs())
    with pytest.raises(UserError, match="already holds a run"):
        train(_cfg(tmp_path, steps=5), model=ToyDenoiser(), dataset=Blobs())


def test_resume_with_more_steps_stretches_the_cosine(tmp_path):
    from genmed.train import resume
    from genmed.train.engine import lr_factor

    cfg = _cfg(tmp_path, steps=10, warmup=2, log_every=1, ckpt_every=5)
    train(cfg, model=ToyDenoiser(), dataset=Blobs())
    resume(cfg.out, steps=20, model=ToyDenoiser(), dataset=Blobs())
    lrs = {r["step"]: r["lr"] for r in _records(tmp_path / "run")}
    assert sorted(lrs) == list(range(1, 21))
    longer = cfg.replace(steps=20)
    for step in range(11, 21):  # the LR after `step` steps follows the 20-step curve
        assert lrs[step] == pytest.approx(cfg.lr * lr_factor(step, longer))
    assert lrs[20] == pytest.approx(0.0, abs=1e-12)
    assert "steps: 20" in (tmp_path / "run/config.yaml").read_text()


def test_sample_grid_shows_3d_volumes_by_their_middle_slice():
    from genmed.train.tracking import sample_grid

    volumes = -torch.ones(4, 1, 6, 8, 8)
    volumes[:, :, 3] = 1.0  # only the middle slice is bright
    grid = sample_grid(volumes)
    assert grid.dtype.name == "uint8" and grid.ndim == 2
    assert grid.shape == sample_grid(volumes[:, :, 3]).shape
    assert (grid == sample_grid(torch.ones(4, 1, 8, 8))).all()


@pytest.mark.parametrize("minutes,saved", [(0.0, [20]), (1e-9, [5, 10, 15, 20])])
def test_checkpoints_by_wall_time_as_well_as_steps(tmp_path, minutes, saved):
    # 1e-9 minutes: the clock is overdue at every log step (checked there, every 5 steps)
    train(_cfg(tmp_path, steps=20, ckpt_every=1000, ckpt_minutes=minutes, keep_checkpoints=10),
          model=ToyDenoiser(), dataset=Blobs())
    names = sorted((tmp_path / "run/checkpoints").glob("*.json"))
    assert [int(p.stem.split("-")[1]) for p in names] == saved


class SlowPreview(ToyDenoiser):
    """Each preview call takes at least `delay` seconds, whatever its size."""

    delay = 0.05

    def sample(self, n, cond=None, steps=None, generator=None):
        time.sleep(self.delay)
        return super().sample(n, cond, steps, generator)


def test_sample_grid_is_sized_to_the_run(tmp_path, monkeypatch):
    from genmed.train import engine
    from genmed.train.precision import resolve_numerics

    monkeypatch.setattr(engine, "GRID_MIN_S", 4 * SlowPreview.delay)
    cfg, num = _cfg(tmp_path, sample_n=16), resolve_numerics("cpu", "fp32")
    short = engine.grid_images(SlowPreview(), cfg, num, Blobs(), train_s=0.0)
    long = engine.grid_images(SlowPreview(), cfg, num, Blobs(), train_s=100.0)
    assert 1 <= len(short) <= 4 and len(long) == 16  # 10 % of 100 s fits every image


def test_a_diverged_run_stops_before_it_saves_nan_weights(tmp_path):
    """lr 1e30 drives the loss to NaN: the run stops with a one-line error at the first step
    that would log or checkpoint, and no NaN weights or NaN records are written."""
    cfg = _cfg(tmp_path, steps=40, ckpt_every=20, log_every=20, warmup=0, lr=1e30,
               out=str(tmp_path / "bad"))
    with pytest.raises(UserError, match="diverged.*by step 20 at lr 1e\\+30"):
        train(cfg, model=ToyDenoiser(), dataset=Blobs())
    assert not list((tmp_path / "bad").rglob("*.safetensors"))
    assert not (tmp_path / "bad" / "metrics.jsonl").exists() or not any(
        "NaN" in ln for ln in (tmp_path / "bad" / "metrics.jsonl").read_text().splitlines())
