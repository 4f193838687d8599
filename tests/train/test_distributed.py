"""DDP through torchrun (2 CPU processes, gloo) equals one process with the same global batch,
launched on one "node" (`--standalone`) and as two "nodes" on localhost (c10d rendezvous)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch.distributed import TCPStore

from genmed.train import train

from .toys import Blobs, make, toy_config

# One pytest-xdist worker runs every test that opens localhost ports (`--dist loadgroup`,
# Makefile; group "ports": these torchrun launches, the gpu_check torchrun run, the browser
# tests with their uvicorn server and chromedriver). Two launchers probing for free ports at the
# same moment can take each other's port, and two torchrun agents then hang or abort. CI once
# saw rank 1 SIGABRT in a standalone launch, on both tries, with its cause cut from the log;
# `launch` now keeps the cause lines. A gloo job poked by stray connections and HTTP requests
# after it has connected survives them (checked by hand), so the group is a precaution.
pytestmark = pytest.mark.xdist_group("ports")

TOYS = Path(__file__).with_name("toys.py")
SRC = Path(__file__).resolve().parents[2] / "src"
STEPS = 12  # 8 steps per epoch: crosses an epoch boundary
RUN = "gan"  # the toy GAN with z from the batch: two phases, deterministic
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def launch(commands, out: Path, timeout_s: float = 120.0, attempts: int = 3) -> None:
    """Run `commands()` (a list of argv lists, started together) until all exit 0, up to
    `attempts` times (a port probed free can be taken by another process before it binds).

    A failure reports, for every attempt, each process's exit status, the lines of its stderr
    that give a cause (a C++ `terminate` / `what()`, a Python error) and the stderr's tail."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    report = []
    for attempt in range(attempts):
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for cmd in commands()]
        errors = []
        try:
            for proc in procs:
                _, err = proc.communicate(timeout=timeout_s)
                errors.append(err)
        except subprocess.TimeoutExpired:
            errors += [f"still running after {timeout_s:.0f} s"] * (len(procs) - len(errors))
        finally:
            for proc in procs:  # one node failed and the other waits for it: end it
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        if all(p.returncode == 0 for p in procs):
            return
        report += [f"attempt {attempt + 1}, process {i}: rc {p.returncode}\n{_causes(e)}"
                   for i, (p, e) in enumerate(zip(procs, errors))]
        shutil.rmtree(out, ignore_errors=True)
    raise AssertionError("\n".join(report))


def _causes(stderr: str, tail: int = 1500) -> str:
    """The lines of a torchrun stderr that say why a rank died, then its last `tail` chars."""
    keys = ("terminate called", "what()", "Error", "error:", "Exception", "Signal")
    lines = [line for line in stderr.splitlines() if any(k in line for k in keys)]
    return "\n".join(["cause lines:", *lines[:40], "tail:", stderr[-tail:]])


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The one-process reference run, with the same global batch."""
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("single")
    train(toy_config(str(out), STEPS), model=make(RUN), dataset=Blobs(64))
    return out


def assert_same_run(ddp: Path, single: Path) -> None:
    """The final weights of `ddp` equal `single`'s, and both moved from an early checkpoint."""
    name = f"checkpoints/step-{STEPS:08d}.model.safetensors"
    a, b = load_file(ddp / name), load_file(single / name)
    assert a.keys() == b.keys()
    start = load_file(single / "checkpoints/step-00000004.model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
        assert not torch.equal(a[key], start[key])  # the comparison is not vacuous


def test_two_process_ddp_equals_single_process(tmp_path, single):
    ddp = tmp_path / "ddp"
    # --standalone probes for a free port itself
    launch(lambda: [[*TORCHRUN, "--nproc_per_node", "2", "--standalone",
                     str(TOYS), RUN, str(ddp), str(STEPS)]], ddp)
    assert_same_run(ddp, single)


def test_two_node_rendezvous_equals_single_process(tmp_path, single):
    """Two torchrun agents, one per "node" (`--nnodes 2 --node_rank 0|1`), meeting at a c10d
    rendezvous endpoint on localhost: how a multi-machine run starts (docs/scaling.md).

    The rendezvous store lives in this test process (`is_host=false` on both agents), as on a
    cluster where it runs on a stable host: when node 0's agent hosts it, node 0 can finish and
    take the store away while node 1 still polls it (RendezvousConnectionError, then SIGABRT)."""
    ddp = tmp_path / "ddp"
    stores: list[TCPStore] = []

    def nodes() -> list[list[str]]:
        stores.append(TCPStore("localhost", 0, is_master=True, wait_for_workers=False))
        endpoint = f"localhost:{stores[-1].port}"
        return [[*TORCHRUN, "--nnodes", "2", "--node_rank", str(rank), "--nproc_per_node", "1",
                 "--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint,
                 "--rdzv_conf", "is_host=false", "--rdzv_id", f"genmed-{len(stores)}",
                 str(TOYS), RUN, str(ddp), str(STEPS)] for rank in (0, 1)]

    launch(nodes, ddp)
    assert_same_run(ddp, single)


def test_one_rank_diverging_stops_every_rank(tmp_path):
    """A NaN loss on rank 1 only: both processes stop at the next check (no rank waits forever
    in a collective), both say why, and the checkpoint saved before it is kept, finite."""
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*TORCHRUN, "--nproc_per_node", "2", "--standalone", str(TOYS),
                           "diverge-rank1", str(out), str(STEPS)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.count("training diverged: a NaN or infinite loss by step 6") == 2, proc.stderr[-2000:]
    kept = sorted(p.name for p in (out / "checkpoints").glob("step-*.model.safetensors"))
    assert kept == ["step-00000004.model.safetensors"]
    assert all(torch.isfinite(t).all() for t in load_file(out / "checkpoints" / kept[0]).values())
