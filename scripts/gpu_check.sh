#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_check.py): CUDA training in fp32/bf16/fp16 at 64 and
# 128 px, sampler throughput, a one-GPU nccl torchrun run; at most 10 minutes on one GPU.
# Writes benchmarks/results/gpu_check.json. Exit status: 0 all well, 1 a check failed,
# 2 no CUDA device (one line), 124 over the 10-minute limit.
#   bash scripts/gpu_check.sh                       # needs a CUDA build: make install TORCH_BUILD=cu126
#   bash scripts/gpu_check.sh --device cpu --tiny   # the same code at tiny size on CPU (seconds)
#   PYTHON=python3 bash scripts/gpu_check.sh        # another interpreter with genmed's dependencies
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export GENMED_QUIET=1
command -v nvidia-smi >/dev/null 2>&1 \
  && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec timeout --kill-after=15 "${GPU_CHECK_LIMIT_S:-600}" "$PYTHON" benchmarks/gpu_check.py "$@"
