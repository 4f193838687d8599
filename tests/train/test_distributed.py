"""DDP through torchrun (2 CPU processes, gloo) equals one process with the same global batch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from genmed.train import train

from .toys import Blobs, make, toy_config

TOYS = Path(__file__).with_name("toys.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def test_two_process_ddp_equals_single_process(tmp_path):
    steps = 12  # 8 steps per epoch: crosses an epoch boundary
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone",
           str(TOYS), "gan", str(ddp), str(steps)]
    for _attempt in range(2):  # --standalone picks a free port by probing; a race with another
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode == 0:  # process can take it between probe and bind: launch once more
            break
        shutil.rmtree(ddp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-2000:]

    torch.manual_seed(0)
    single = tmp_path / "single"
    train(toy_config(str(single), steps), model=make("gan"), dataset=Blobs(64))
    name = f"checkpoints/step-{steps:08d}.model.safetensors"
    a, b = load_file(ddp / name), load_file(single / name)
    assert a.keys() == b.keys()
    start = load_file(single / "checkpoints/step-00000004.model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
        assert not torch.equal(a[key], start[key])  # the comparison is not vacuous
