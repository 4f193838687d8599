"""Checkpoints: exact resume after SIGKILL, safe loading, corrupt and foreign files."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from genmed.errors import UserError
from genmed.train import checkpoint as ckpt
from genmed.train import load_run, resume, train

from .toys import Blobs, ToyDenoiser, ToyGAN, make, toy_config

TOYS = Path(__file__).with_name("toys.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _env() -> dict[str, str]:
    """The child's environment: our sources, and this process's torch thread count (another
    count changes the order of float reductions, and bit-exact resume tests compare weights)."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": str(torch.get_num_threads())}


def _final_weights(run: Path, step: int) -> dict[str, dict[str, torch.Tensor]]:
    return {part: load_file(run / f"checkpoints/step-{step:08d}.{part}.safetensors")
            for part in ("model", "ema")}


def test_sigkill_mid_run_then_resume_equals_unbroken_run(tmp_path):
    steps = 24
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(TOYS), "denoiser", str(killed), str(steps),
                             "train", "0.01"], env=_env())
    first = killed / "checkpoints/step-00000008.json"
    deadline = time.monotonic() + 60
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = ckpt.latest_checkpoint(killed).step
    assert 8 <= done < steps  # killed mid-run, after a checkpoint
    resume(killed, model=make("denoiser"), dataset=Blobs(64))

    torch.manual_seed(0)
    unbroken = tmp_path / "unbroken"
    train(toy_config(str(unbroken), steps), model=make("denoiser"), dataset=Blobs(64))
    a, b = _final_weights(killed, steps), _final_weights(unbroken, steps)
    for part in ("model", "ema"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), (part, key)
    logged = [json.loads(ln)["step"] for ln in (killed / "metrics.jsonl").read_text().splitlines()]
    assert logged == list(range(2, steps + 1, 2))  # no duplicated records after the resume


def _run(tmp_path, model=None) -> Path:
    cfg = toy_config(str(tmp_path / "run"), 4)
    return train(cfg, model=model or ToyDenoiser(), dataset=Blobs()).run_dir


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    run = _run(tmp_path)
    marker = tmp_path / "pwned.txt"
    state = run / "checkpoints/step-00000004.state.pt"
    torch.save({"format": ckpt.FORMAT, "step": 4, "evil": _Payload(marker)}, state)
    with pytest.raises(UserError, match="refused"):
        resume(run, steps=8, model=ToyDenoiser(), dataset=Blobs())
    assert not marker.exists()
    torch.load(state, weights_only=False)  # what an unsafe loader would have done
    assert marker.read_text() == "pwned"


def test_corrupt_and_foreign_checkpoints_are_user_errors(tmp_path):
    run = _run(tmp_path)
    files = ckpt.latest_checkpoint(run)
    with pytest.raises(UserError, match="foreign"):  # weights of another architecture
        ckpt.load_weights(ToyGAN(), files.path("model"))
    with pytest.raises(UserError, match="foreign"):
        load_run(run, model=ToyGAN())
    model_bytes = files.path("model").read_bytes()
    files.path("model").write_bytes(model_bytes[: len(model_bytes) // 2])
    with pytest.raises(UserError, match="corrupt"):
        ckpt.load_weights(ToyDenoiser(), files.path("model"))
    files.path("state").write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="corrupt checkpoint state"):
        ckpt.load_state(files)
    torch.save({"format": "other/9", "step": 4}, files.path("state"))
    with pytest.raises(UserError, match="not a genmed-checkpoint/1 state"):
        ckpt.load_state(files)
    files.path("meta").write_text(json.dumps({"format": "someone-else", "step": 4}))
    with pytest.raises(UserError, match="not a genmed-checkpoint/1 checkpoint"):
        ckpt.read_meta(files)
    files.path("meta").write_text("{truncated")
    with pytest.raises(UserError, match="unreadable"):
        load_run(run, model=ToyDenoiser())
    with pytest.raises(UserError, match="run directory not found"):
        load_run(tmp_path / "nowhere")


def test_load_run_gives_ema_weights_by_default(tmp_path):
    run = _run(tmp_path)
    ema_model, cfg = load_run(run, model=ToyDenoiser())
    raw_model, _ = load_run(run, model=ToyDenoiser(), ema=False)
    saved = load_file(ckpt.latest_checkpoint(run).path("ema"))
    assert torch.equal(ema_model.net[0].weight, saved["module.net.0.weight"])
    assert not torch.equal(ema_model.net[0].weight, raw_model.net[0].weight)
    assert cfg.steps == 4 and not ema_model.training


def test_rng_capture_restore_roundtrip():
    state = ckpt.capture_rng()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.rand(5), np.random.rand(5), random.random()
    ckpt.restore_rng(state)
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1])
    assert expected[2] == again[2]
