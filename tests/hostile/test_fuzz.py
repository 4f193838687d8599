"""A small, seeded fuzz pass over the loaders: real small NIfTI / DICOM / PNG / TIFF / .npy /
.npz / CSV / config / checkpoint files, truncated, bit-flipped and overwritten at random.
Every outcome must be a success or a `UserError`; any other exception is a bug.

Bounded for the test suite (a few seconds); GENMED_FUZZ_N=200 runs 200 mutants per format.
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from genmed.errors import UserError

N = int(os.environ.get("GENMED_FUZZ_N", "24"))


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random corruption of `data` and a description of it."""
    op = rng.choice(["truncate", "flip", "flip_header", "overwrite", "zero_header", "insert"])
    b = bytearray(data)
    if op == "truncate":
        cut = rng.randrange(0, len(b))
        return bytes(b[:cut]), f"truncate at {cut}"
    if op in ("flip", "flip_header"):
        span = min(len(b), 600) if op == "flip_header" else len(b)
        where = []
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(span)
            b[i] ^= 1 << rng.randrange(8)
            where.append(i)
        return bytes(b), f"{op} at {where}"
    if op == "overwrite":
        i = rng.randrange(len(b))
        n = rng.randint(1, 64)
        b[i:i + n] = rng.randbytes(n)
        return bytes(b), f"overwrite {n} bytes at {i}"
    if op == "zero_header":
        i = rng.randrange(min(len(b), 400))
        b[i:i + 8] = b"\x00" * 8 if rng.random() < 0.5 else b"\xff" * 8
        return bytes(b), f"{op} at {i}"
    i = rng.randrange(len(b))
    return bytes(b[:i] + rng.randbytes(rng.randint(1, 32)) + b[i:]), f"insert at {i}"


def fuzz(name: str, original: Path, load: Callable[[Path], object], tmp: Path, seed: int,
         n: int = N, gz_inner: bool = False) -> dict[str, int]:
    """Load `n` mutants of `original` (same file name under `tmp`); count the outcomes."""
    rng = random.Random(f"{name}-{seed}")
    data = original.read_bytes()
    inner = gzip.decompress(data) if gz_inner else None
    counts = {"ok": 0, "user_error": 0}
    target = tmp / original.name
    for k in range(n):
        if inner is not None and k % 2:  # corrupt the content, not just the compressed stream
            mutant, how = mutate(inner, rng)
            mutant, how = gzip.compress(mutant), how + " (inside the gzip stream)"
        else:
            mutant, how = mutate(data, rng)
        target.write_bytes(mutant)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                load(target)
            counts["ok"] += 1
        except UserError as exc:
            assert "\n" not in str(exc)
            counts["user_error"] += 1
        except Exception:  # noqa: BLE001 - the point of the test
            pytest.fail(f"{name} mutant {k} ({how}) raised:\n{traceback.format_exc()}")
    return counts


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:
    import nibabel as nib
    from PIL import Image
    from pydicom.data import get_testdata_file

    from genmed.data.io import save_nifti

    folder = tmp_path_factory.mktemp("fuzz-originals")
    rng = np.random.default_rng(0)
    vol = rng.normal(40, 300, (4, 12, 10)).astype(np.float32)
    out = {"nii": save_nifti(folder / "vol.nii", vol, (2.0, 0.8, 0.8)),
           "niigz": save_nifti(folder / "vol.nii.gz", vol, (2.0, 0.8, 0.8))}
    nib.save(nib.Nifti1Image(vol[0].astype(np.int16), np.eye(4)), str(folder / "int.nii"))
    out["nii_int"] = folder / "int.nii"
    out["dcm"] = Path(get_testdata_file("CT_small.dcm"))
    Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(folder / "slice.png")
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / "rgb.png")
    frames = [Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)) for _ in range(3)]
    frames[0].save(folder / "stack.tif", save_all=True, append_images=frames[1:])
    out.update(png=folder / "slice.png", rgb=folder / "rgb.png", tif=folder / "stack.tif")
    np.savez_compressed(folder / "med.npz", train_images=rng.integers(0, 255, (6, 8, 8), dtype=np.uint8),
                        train_labels=rng.integers(0, 3, (6, 1)), images=rng.uniform(-1, 1, (6, 1, 8, 8)))
    np.save(folder / "fake.npy", rng.uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32))
    out.update(npz=folder / "med.npz", npy=folder / "fake.npy")
    ids = [f"x{i}" for i in range(12)]
    y = ["healthy", "benign", "malignant"] * 4
    (folder / "preds.csv").write_text("id,y_true,y_pred,patient_id\n" + "".join(
        f"{i},{t},{y[(k + (k % 3 == 0)) % 12]},p{k // 2}\n" for k, (i, t) in enumerate(zip(ids, y))))
    (folder / "tags.csv").write_text("id,tag,note\nx0,noisy,blurry\nx3,,\nx6,small lesion,\n")
    (folder / "split.csv").write_text("id,set\n" + "".join(f"{i},{'eyeball' if k < 6 else 'blackbox'}\n"
                                                            for k, i in enumerate(ids)))
    out.update(preds=folder / "preds.csv", tags=folder / "tags.csv", split=folder / "split.csv")
    return out


@pytest.mark.parametrize("kind", ["nii", "niigz", "nii_int", "dcm", "png", "rgb", "tif", "npz"])
def test_image_loaders(originals, tmp_path, kind):
    from genmed.data.io import load

    counts = fuzz(kind, originals[kind], load, tmp_path, 0, gz_inner=kind == "niigz")
    assert counts["user_error"] > 0  # the mutants did reach the checks


@pytest.mark.parametrize("kind", ["npy", "npz", "png"])
def test_image_set_reader(originals, tmp_path, kind):
    from genmed.metrics.imagesets import read_image_set

    fuzz(f"set-{kind}", originals[kind], read_image_set, tmp_path, 1)


def test_tagging_ui_image_reader(originals, tmp_path):
    from genmed.erroranalysis.web.images import render_png

    for kind in ("niigz", "npy", "png", "dcm"):
        fuzz(f"ui-{kind}", originals[kind], render_png, tmp_path, 2, n=max(4, N // 3))


@pytest.mark.parametrize("kind, reader", [("preds", "load_predictions"), ("tags", "load_tags"),
                                          ("split", "load_split")])
def test_csv_readers(originals, tmp_path, kind, reader):
    from genmed.erroranalysis import tables

    fuzz(kind, originals[kind], getattr(tables, reader), tmp_path, 3)


def test_tag_database(originals, tmp_path):
    from genmed.erroranalysis import TagStore

    TagStore(tmp_path / "seed" / "t.sqlite").import_csv(originals["tags"])

    def load(path: Path) -> None:
        store = TagStore(path)
        store.to_frame()
        store.import_csv(originals["tags"])

    fuzz("sqlite", tmp_path / "seed" / "t.sqlite", load, tmp_path, 4, n=max(4, N // 2))


@pytest.mark.parametrize("part", ["json", "ema.safetensors", "model.safetensors", "state.pt", "config.yaml"])
def test_checkpoint_files(tiny_run, tmp_path, part):
    """A run whose newest checkpoint part (or config.yaml) is corrupt: loading its model, and
    its training state, succeeds (possibly from the older checkpoint) or is a `UserError`."""
    from genmed.train import checkpoint as ckpt
    from genmed.train.run import load_run

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    # only the newest checkpoint: no fallback to hide the corruption
    for f in (run / "checkpoints").glob("step-00000002.*"):
        f.unlink()
    original = run / "config.yaml" if part == "config.yaml" else run / "checkpoints" / f"step-00000004.{part}"
    saved = tmp_path / f"orig-{original.name}"
    shutil.copy(original, saved)

    def load(path: Path) -> None:
        shutil.copy(path, original)
        load_run(run, ema=part != "model.safetensors")
        ckpt.load_state(ckpt.latest_checkpoint(run))

    (tmp_path / "m").mkdir()
    fuzz(part, saved, load, tmp_path / "m", 5, n=max(6, N // 2))
