"""`genmed eval train-extractor --data`: a domain extractor from the user's own scans, used by
`genmed eval images --extractor`; no domain warning on its own modality, one on another."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest



@pytest.fixture
def manifests(scans: Path, tmp_path: Path, cli) -> dict[str, Path]:
    """CT and MR manifests of the docs' folder (the `scans` fixture), by `genmed data scan`."""
    found = {}
    for modality in ("CT", "MR"):
        found[modality] = tmp_path / f"{modality.lower()}.csv"
        code, _, err = cli(["data", "scan", str(scans), "--out", str(found[modality]),
                            "--modality", modality])
        assert code == 0, err
    return found


def fake_set(manifest: Path, path: Path) -> Path:
    """'Generated' slices: the manifest's slices at 16 px with noise, as a .npy image set."""
    from genmed.data import load_training_data

    x = load_training_data(manifest, size=16, split="all").images.numpy()
    rng = np.random.default_rng(0)
    np.save(path, np.clip(x + rng.normal(0, 0.05, x.shape), -1, 1).astype(np.float32))
    return path


def test_train_extractor_on_own_scans_then_evaluate(manifests, tmp_path, cli):
    ext = tmp_path / "ct_extractor.safetensors"
    code, out, err = cli(["eval", "train-extractor", "--data", str(manifests["CT"]), "--size", "16",
                          "--steps", "3", "--batch-size", "4", "--out", str(ext)])
    assert code == 0, err
    summary = json.loads(out[: out.rindex("}") + 1])
    assert summary["objective"] == "contrastive" and summary["modality"] == "CT"  # unlabelled
    assert summary["train_patients"] == 1 and summary["size"] == 16 and ext.is_file()
    assert f"--extractor {ext}" in out.splitlines()[-1]
    ev = tmp_path / "eval"
    code, out, err = cli(["eval", "images", str(manifests["CT"]), str(fake_set(manifests["CT"], tmp_path / "f.npy")),
                          "--out", str(ev), "--extractor", str(ext), "--n-boot", "4", "--k", "2",
                          "--real-split", "all"])
    assert code == 0, err
    assert "genmed: warning: extractor" not in err
    m = json.loads((ev / "metrics.json").read_text())
    assert m["extractor"]["weights_hash"] == summary["weights_hash"]
    assert m["extractor"]["name"] == "genmed-domain-cnn-v2" and m["extractor"]["modality"] == "CT"
    assert m["extractor"]["input_size"] == 16 and "class_coverage" not in m["diversity"]
    assert m["domain"]["matches"] is True and m["domain"]["same_source"] is True
    assert summary["weights_hash"][:12] in out
    # the CT extractor on MR data warns, as the shipped phantom extractor does
    ev_mr = tmp_path / "eval_mr"
    code, out, err = cli(["eval", "images", str(manifests["MR"]), str(fake_set(manifests["MR"], tmp_path / "g.npy")),
                          "--out", str(ev_mr), "--extractor", str(ext), "--n-boot", "4", "--k", "2",
                          "--real-split", "all"])
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("genmed: warning: extractor")]
    assert len(warnings) == 1 and "the data is MR, not CT" in warnings[0]
    assert json.loads((ev_mr / "metrics.json").read_text())["domain"]["matches"] is False


def test_same_seed_same_weights_hash(tmp_path, cli):
    hashes = []
    for name in ("a", "b"):
        code, out, err = cli(["eval", "train-extractor", "--data", "phantom", "--n-patients", "8",
                              "--size", "16", "--steps", "2", "--batch-size", "8", "--device", "cpu",
                              "--out", str(tmp_path / f"{name}.safetensors")])
        assert code == 0, err
        summary = json.loads(out[: out.rindex("}") + 1])
        hashes.append(summary["weights_hash"])
    assert hashes[0] == hashes[1] and summary["objective"] == "both"
    assert summary["class_names"] == ["healthy", "benign", "malignant"]


@pytest.mark.parametrize("args,match", [
    (["--data", "{t}/missing.csv"], "no such file or folder"),
    (["--data", "phantom", "--size", "16", "--out", "{t}/e.pt"], r"must end in \.safetensors"),
    (["--size", "8"], r"size=8 .*16, 512"),
    (["--size", "1024"], r"size=1024"),
    (["--size", "16", "--steps", "2", "--epochs", "1"], "--steps or --epochs"),
    (["--objective", "supervised", "--data", "{t}/imgs", "--size", "16"], "needs labels"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, cli, args, match):
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    from genmed.fileio import write_png

    for i in range(6):
        write_png(imgs / f"{i}.png", np.full((16, 16), 40 * i, np.uint8))
    argv = [a.replace("{t}", str(tmp_path)) for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "e.safetensors")]
    code, _, err = cli(["eval", "train-extractor", *argv])
    err = err.strip()
    assert code == 2 and err.startswith("genmed: error:") and "\n" not in err, err
    assert re.search(match, err), err
    assert not (tmp_path / "e.safetensors").exists() and not (tmp_path / "e.pt").exists()
