"""benchmarks/gpu_check.py: the same code path at tiny size on CPU, and its refusal without CUDA."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks/gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    """The script as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.mark.xdist_group("ports")  # with tests/train/test_distributed.py: see there
def test_tiny_cpu_run_measures_every_precision_and_torchrun(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("GENMED_QUIET", "1")  # main() would set it for the whole session
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    plan = gpu_check.TINY
    assert result["machine"]["torch"] == torch.__version__
    for size in plan.sizes:
        trained = result["train"][f"diffusion/{size}px"]
        assert sorted(trained) == sorted(plan.precisions)
        for precision, figures in trained.items():
            assert figures["img_per_s"] > 0 and figures["precision"] == precision
            assert figures["steps"] == plan.log_every * plan.windows
            assert math.isfinite(figures["final_loss"])
        sampled = result["sampling_img_per_s"][f"diffusion/{size}px"]
        assert len(sampled) == len(gpu_check.SAMPLERS)
        assert all(sorted(per) == sorted(plan.precisions) and min(per.values()) > 0
                   for per in sampled.values())
    run = result["torchrun"]
    assert run["rc"] == 0, run["stderr_tail"]
    assert run["child"]["backend"] == "gloo"
    assert run["child"]["all_reduce_sum"] == run["child"]["world"] == 1
    assert run["child"]["step"] == plan.torchrun_steps and run["child"]["img_per_s"] > 0
    assert result["failures"] == [] and result["complete"]
    assert set(result["train_speedup_vs_fp32"][f"diffusion/{plan.sizes[0]}px"]) == {"bf16/fp32"}


def test_failures_name_errors_bad_rates_and_a_failed_torchrun(gpu_check):
    result = {"train": {"diffusion/16px": {"fp32": {"img_per_s": 0.0},
                                           "bf16": {"error": "OutOfMemoryError: ..."},
                                           "fp16": {"img_per_s": 5.0}}},
              "sampling_img_per_s": {"diffusion/16px": {"ddim": {"fp32": 3.0, "bf16": -1.0}},
                                     "diffusion/32px": {"error": "RuntimeError: x"}},
              "torchrun": {"rc": 1, "stderr_tail": "boom"}}
    assert gpu_check.failures(result) == [
        "train diffusion/16px fp32: img/s 0.0", "train diffusion/16px bf16: OutOfMemoryError: ...",
        "sampling diffusion/16px ddim bf16: img/s -1.0", "sampling diffusion/32px: RuntimeError: x",
        "torchrun rc 1: boom"]


def test_a_failed_measurement_is_recorded_not_raised(gpu_check):
    assert gpu_check.guarded(lambda: 1 / 0) == {"error": "ZeroDivisionError: division by zero"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_one_line_and_status_2(gpu_check, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--out", str(tmp_path / "x.json")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("no CUDA device: ") and "\n" not in err
    assert not (tmp_path / "x.json").exists()


def test_cpu_needs_tiny(gpu_check, capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--device", "cpu"])
    assert exit_info.value.code == 2 and "--tiny" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_shell_wrapper_passes_the_status_through(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(SCRIPT.parents[1] / "scripts/gpu_check.sh"), "--out",
                           str(tmp_path / "x.json")], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("no CUDA device: ") and proc.stderr.count("\n") == 1
