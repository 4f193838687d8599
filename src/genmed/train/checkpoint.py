"""Checkpoints: atomic writes, safe loads, exact resume.

A checkpoint at step s is four files in RUN_DIR/checkpoints/, each written to a temporary name
and then `os.replace`d, the JSON sidecar last, so a checkpoint exists only once it is whole:

    step-0000000s.model.safetensors   model weights (safetensors: no code, just tensors)
    step-0000000s.ema.safetensors     EMA weights (and its `n_averaged` counter)
    step-0000000s.state.pt            optimisers, LR schedulers, grad scaler, RNG states
                                      (torch.save; read back with weights_only=True)
    step-0000000s.json                format tag, step, resolved config, versions

Nothing is ever unpickled beyond tensors, numbers, strings and containers: a state file with
any other object (e.g. a payload in `__reduce__`) is refused with a `UserError`, unrun.
"""

from __future__ import annotations

import json
import pickle
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_model
from torch import nn

from genmed.errors import UserError, warn
from genmed.fileio import atomic_path, write_json
from genmed.models.base import device_of
from genmed.versions import versions

FORMAT = "genmed-checkpoint/1"
T = TypeVar("T")


@dataclass(frozen=True)
class CheckpointFiles:
    """The files of the checkpoint at `step` under `folder`."""

    folder: Path
    step: int

    def path(self, part: str) -> Path:
        """Path of one part: "model", "ema", "state" or "meta"."""
        suffix = {"model": ".model.safetensors", "ema": ".ema.safetensors",
                  "state": ".state.pt", "meta": ".json"}[part]
        return self.folder / f"step-{self.step:08d}{suffix}"


def capture_rng() -> dict[str, Any]:
    """This process's torch, CUDA, numpy and python RNG states as tensors and numbers."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy_keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
        "numpy_pos": int(np_state[2]), "numpy_has_gauss": int(np_state[3]),
        "numpy_gauss": float(np_state[4]),
        "python_version": int(py_state[0]),
        "python_state": torch.tensor(py_state[1], dtype=torch.int64),
        "python_gauss": py_state[2],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Set the RNGs from a `capture_rng` dict."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32),
                         state["numpy_pos"], state["numpy_has_gauss"], state["numpy_gauss"]))
    random.setstate((state["python_version"], tuple(state["python_state"].tolist()),
                     state["python_gauss"]))


def save_checkpoint(folder: Path, step: int, *, model: nn.Module, ema: nn.Module | None,
                    state: dict[str, Any], config: dict[str, Any], keep: int = 2) -> Path:
    """Write the checkpoint at `step` (atomically, sidecar last); prune to the newest `keep`."""
    files = CheckpointFiles(Path(folder), step)
    with atomic_path(files.path("model")) as tmp:
        save_model(model, str(tmp))
    if ema is not None:
        with atomic_path(files.path("ema")) as tmp:
            save_model(ema, str(tmp))
    with atomic_path(files.path("state")) as tmp:
        torch.save({"format": FORMAT, "step": step, **state}, tmp)
    write_json(files.path("meta"), {"format": FORMAT, "step": step, "ema": ema is not None,
                                    "config": config, "versions": versions()})
    for old in list_checkpoints(folder)[:-keep]:
        for part in ("meta", "model", "ema", "state"):  # sidecar first: never a half checkpoint
            old.path(part).unlink(missing_ok=True)
    return files.path("meta")


def list_checkpoints(folder: Path) -> list[CheckpointFiles]:
    """Complete checkpoints (those with a sidecar) in `folder`, oldest first."""
    found = []
    for meta in Path(folder).glob("step-*.json"):
        try:
            found.append(CheckpointFiles(Path(folder), int(meta.name[5:-5])))
        except ValueError:
            continue
    return sorted(found, key=lambda c: c.step)


def latest_checkpoint(run_dir: Path) -> CheckpointFiles:
    """The newest complete checkpoint of a run, or a `UserError` if there is none."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    found = list_checkpoints(run_dir / "checkpoints")
    if not found:
        raise UserError(f"{run_dir}: no checkpoint in {run_dir / 'checkpoints'}")
    return found[-1]


def read_meta(files: CheckpointFiles) -> dict[str, Any]:
    """The JSON sidecar, checked to be a genmed checkpoint of this format."""
    path = files.path("meta")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: unreadable checkpoint sidecar ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} checkpoint")
    return meta


def load_weights(module: nn.Module, path: Path) -> None:
    """Load safetensors weights into `module`; a corrupt or foreign file, or one whose tensors
    have other dtypes than the model's or hold NaN/infinity, is a `UserError`."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint weights missing")
    try:
        check_dtypes(path, module.state_dict())
        load_model(module, str(path), strict=True, device=str(device_of(module)))
    except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
        kind = "corrupt" if isinstance(exc, SafetensorError) else "foreign (weights do not fit the model)"
        raise UserError(f"{path}: {kind} checkpoint weights: {str(exc).splitlines()[0][:160]}") from None
    check_finite_weights(module.state_dict(), path)


def read_weights(path: Path, *, averaged: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors weights file on the CPU (no code is loaded), checked to be
    finite; `averaged`: an `AveragedModel`'s (EMA) file, returned with the bare model's names
    (its `module.` prefix and `n_averaged` counter dropped). A corrupt file is a `UserError`."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint weights missing")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise UserError(f"{path}: corrupt checkpoint weights ({str(exc)[:120]})") from None
    if averaged:
        tensors = {k.removeprefix("module."): v for k, v in tensors.items() if k != "n_averaged"}
    check_finite_weights(tensors, path)
    return tensors


def check_dtypes(path: Path, expected: dict[str, torch.Tensor], prefix: str = "") -> None:
    """Refuse a safetensors file whose tensors have other dtypes than the model's (e.g. weights
    converted to int32 would otherwise be cast silently on load). Reads headers only."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        for key in fh.keys():
            want = expected.get(key.removeprefix(prefix))
            if want is None:
                continue
            got = fh.get_slice(key).get_dtype()
            if _DTYPES.get(got) != want.dtype:
                raise UserError(f"{path}: tensor {key} is {got}, the model's is "
                                f"{str(want.dtype).removeprefix('torch.')}; not this model's weights")


_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
           "U8": torch.uint8, "BOOL": torch.bool}


def check_finite_weights(state: dict[str, torch.Tensor], path: Path) -> None:
    """Refuse weights holding NaN or infinity (they would only ever sample NaN images)."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise UserError(f"{path}: tensor {key} holds NaN or infinite values; the weights are "
                            "corrupt (or training diverged)")


def load_newest(run_dir: Path, load: Callable[[CheckpointFiles], T]) -> T:
    """`load(files)` of the newest checkpoint; if it is unusable (`UserError`), of the one
    before, with a one-line warning. If none loads, the newest one's error is raised."""
    run_dir = Path(run_dir)
    latest_checkpoint(run_dir)  # a UserError when there is none
    found = list_checkpoints(run_dir / "checkpoints")[::-1]
    first: UserError | None = None
    for files in found:
        try:
            result = load(files)
        except UserError as exc:
            first = first or exc
            continue
        if first is not None:
            warn(f"{first}; using the previous checkpoint (step {files.step}) instead")
        return result
    assert first is not None
    if len(found) > 1:
        raise UserError(f"{first} (no older checkpoint loads either)")
    raise first


def load_state(files: CheckpointFiles) -> dict[str, Any]:
    """The optimiser/scheduler/RNG state, read with `torch.load(weights_only=True)`."""
    path = files.path("state")
    if not path.is_file():
        raise UserError(f"{path}: checkpoint state missing")
    if not zipfile.is_zipfile(path):  # torch.save always writes a zip archive
        raise UserError(f"{path}: corrupt checkpoint state (not a torch.save archive)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(f"{path}: refused: holds objects other than tensors and numbers "
                        "(not unpickled)") from None
    except Exception as exc:  # a corrupt archive fails in many ways (KeyError, RuntimeError, ...)
        raise UserError(f"{path}: corrupt checkpoint state ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a {FORMAT} state file")
    if state.get("step") != files.step:
        raise UserError(f"{path}: step {state.get('step')} does not match its name")
    return state

