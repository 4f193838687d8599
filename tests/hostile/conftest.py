"""Fixtures of the hostile-input suite: one tiny trained run, a pipeline run folder, error-analysis
CSVs, small images; and `refused`, the one assertion every refusal must pass.

`refused(capsys, argv, roots)` runs `genmed ARGV` in this process and checks the contract of
issue 17: exit status 2, exactly one stderr line starting "genmed: error:", no traceback (any
other exception fails the test), and nothing new or changed under `roots` (a snapshot of every
path, size and mtime before and after).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genmed.cli import main


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every path under `roots` with its size (-1 for folders) and mtime."""
    out = {}
    for root in roots:
        for p in [root, *root.rglob("*")] if root.exists() else []:
            st = p.lstat()
            out[str(p)] = (-1 if p.is_dir() else st.st_size, 0 if p.is_dir() else st.st_mtime_ns)
    return out


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """`genmed ARGV` in-process: (exit status, stdout, stderr)."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, argv: list[str], roots: list[Path], needle: str = "") -> str:
    """Assert `genmed ARGV` is refused cleanly and leaves `roots` untouched; returns the line."""
    before = snapshot(*roots)
    code, _, err = run_cli(capsys, argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, f"exit {code}, stderr {err[-600:]!r}"
    assert len(lines) == 1 and lines[0].startswith("genmed: error: "), lines
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]
    after = snapshot(*roots)
    new = sorted(set(after) - set(before))
    changed = sorted(k for k in set(after) & set(before) if after[k] != before[k])
    gone = sorted(set(before) - set(after))
    assert not (new or changed or gone), f"left on disk: new {new[:5]} changed {changed[:5]} gone {gone[:5]}"
    return lines[0]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A 4-step VAE run on 16-pixel phantom slices, checkpoints at steps 2 and 4."""
    from genmed.train import TrainConfig, train

    out = tmp_path_factory.mktemp("hostile") / "run"
    train(TrainConfig(family="vae", size=16, steps=4, ckpt_every=2, batch_size=8, n_patients=4,
                      precision="fp32", device="cpu", log_every=1,
                      options={"channels": [8, 16], "latent_dim": 8}, out=str(out)))
    return out


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A private copy of the tiny run, to mutate."""
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst


@pytest.fixture(scope="session")
def pipe_run(tmp_path_factory) -> Path:
    """A pipeline run folder with barely trained (but valid) networks: enough for `predict`."""
    from genmed.config import save_config
    from genmed.data.phantom import PhantomConfig
    from genmed.pipeline.classifier import ClsConfig
    from genmed.pipeline.pipeline import PipelineConfig, fit, load_data
    from genmed.pipeline.segmentation import SegConfig

    cfg = PipelineConfig(size=32, n_patients=8, slices_per_patient=2, fractions=(0.4, 0.1, 0.3, 0.2),
                         phantom=PhantomConfig(lesion_prob=1.0),
                         seg=SegConfig(channels=(4, 8, 16), patch=32, epochs=1),
                         cls=ClsConfig(epochs=1, init_features=4, blocks=(1, 1)))
    out = tmp_path_factory.mktemp("hostile") / "pipe"
    cases, splits = load_data(cfg)
    fit(cfg, cases.subset(splits["train"]), out=out)  # one epoch each, through the engine
    save_config(cfg, out / "config.json")
    return out


@pytest.fixture(scope="session")
def ea(tmp_path_factory) -> dict[str, Path]:
    """Error-analysis inputs: preds.csv (40 examples, 2 per patient), split.csv, tags.csv, a db."""
    from genmed.erroranalysis import TagStore

    folder = tmp_path_factory.mktemp("ea")
    rng = np.random.default_rng(0)
    n = 40
    y_true = rng.choice(["healthy", "benign", "malignant"], size=n)
    wrong = np.arange(n) % 3 == 0
    y_pred = np.where(wrong, np.where(y_true == "healthy", "malignant", "healthy"), y_true)
    ids = [f"x{i:02d}" for i in range(n)]
    pd.DataFrame({"id": ids, "y_true": y_true, "y_pred": y_pred,
                  "patient_id": [f"p{i // 2:02d}" for i in range(n)]}).to_csv(folder / "preds.csv", index=False)
    pd.DataFrame({"id": ids, "set": ["eyeball" if i < 20 else "blackbox" for i in range(n)]}).to_csv(
        folder / "split.csv", index=False)
    errors = [i for i, w in zip(ids, wrong) if w][:3]
    (folder / "tags.csv").write_text("id,tag\n" + "".join(f"{i},noisy\n" for i in errors))
    TagStore(folder / "tags.sqlite").import_csv(folder / "tags.csv")
    return {"preds": folder / "preds.csv", "split": folder / "split.csv", "tags": folder / "tags.csv",
            "db": folder / "tags.sqlite", "root": folder}


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, Path]:
    """Small valid inputs: a NIfTI slice, a label mask, fake images (.npy), 2-D ring samples."""
    import nibabel as nib

    folder = tmp_path_factory.mktemp("files")
    arr = np.linspace(-1000, 400, 256, dtype=np.float32).reshape(16, 16)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(folder / "scan.nii.gz"))
    mask = np.zeros((16, 16), np.float32)
    mask[2:14, 2:14], mask[6:10, 4:8] = 1, 2
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(folder / "mask.nii.gz"))
    rng = np.random.default_rng(0)
    np.save(folder / "fake.npy", rng.uniform(-1, 1, (8, 1, 16, 16)).astype(np.float32))
    np.save(folder / "ring.npy", rng.normal(size=(64, 2)).astype(np.float32))
    return {"nii": folder / "scan.nii.gz", "mask": folder / "mask.nii.gz", "fake": folder / "fake.npy",
            "ring": folder / "ring.npy", "root": folder}
