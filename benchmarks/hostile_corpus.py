"""Hostile-input corpus: run bad inputs through every command group and count what happens.

Each case is one `genmed` subprocess (or one HTTP request to a running `genmed errors serve`)
in its own folder. Outcomes:

    clean        refused with exit 2, exactly one stderr line, no traceback, nothing new on
                 disk (or, for the few "recover" cases, exit 0 and the run repaired)
    traceback    a Python traceback, an exit status other than 0/2, a timeout, or HTTP 500
    outputs      refused, but files were left behind or changed
    accepted     a bad value accepted with exit 0 (or HTTP 200 where a refusal was due)
    two_lines    refused, but with more than one stderr line
    memory       refused or failed only after allocating more than 1 GiB (peak RSS)

Children run with an address-space limit (8 GiB) so an absurd allocation fails instead of
swapping the machine. Results: benchmarks/results/hostile.json (one entry per --label).

    python benchmarks/hostile_corpus.py --label after                 # the installed genmed
    python benchmarks/hostile_corpus.py --label after --src src        # this checkout's code
    python benchmarks/hostile_corpus.py --label before --src /tmp/base/src
    python benchmarks/hostile_corpus.py --label after --src src --only web   # re-run one group

About 10 minutes with --jobs 2 on the fixed code (most refusals cost one CLI start-up); the
unfixed code takes ~40 minutes, as many bad inputs ran whole workloads before failing.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import http.client
import json
import os
import random
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "hostile.json"
MEM_LIMIT = 8 << 30
RSS_LIMIT_KB = 1 << 20  # 1 GiB


@dataclass
class Case:
    name: str
    group: str
    args: list[str]
    setup: Callable[[Path, dict], None] | None = None
    expect: str = "refuse"  # "refuse" or "recover"
    check: Callable[[Path, dict], str] | None = None  # recover: "" if repaired, else why not
    timeout: float = 120.0
    hold_lock: str = ""  # path (with placeholders) of a RUN/.lock the corpus holds meanwhile
    mem_limit: int = MEM_LIMIT  # address-space limit of the child (bytes)
    ignore: tuple[str, ...] = ()  # relative paths whose change is fine (recover cases)


# -- fixtures ------------------------------------------------------------------------------------

def genmed(env: dict, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "genmed", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def build_shared(root: Path, env: dict) -> dict:
    """Shared fixtures, built once with the genmed under test."""
    import nibabel as nib

    s = root / "shared"
    s.mkdir(parents=True)
    fx: dict = {"shared": s}
    steps = [
        ("run", ["train", "--family", "vae", "--size", "16", "--steps", "4", "--ckpt-every", "2",
                 "--batch-size", "8", "--out", s / "run"]),
        ("pipe", ["pipeline", "train", "--quick", "--out", s / "pipe"]),
        ("samples", ["sample", s / "run", "-n", "8", "--out", s / "samples"]),
    ]
    for name, args in steps:
        proc = genmed(env, *args, cwd=s)
        if proc.returncode != 0:
            raise SystemExit(f"fixture {name} failed: {proc.stderr[-2000:]}")
        fx[name] = s / args[-1] if name != "run" else s / "run"
    fx["run"], fx["pipe"], fx["samples"] = s / "run", s / "pipe", s / "samples"
    fx["preds"] = s / "pipe" / "dev" / "preds.csv"
    proc = genmed(env, "errors", "split", "--predictions", fx["preds"], "--eyeball-errors", "3",
                  "--group-col", "patient_id", "--out", s / "split.csv", cwd=s)
    if proc.returncode != 0:
        raise SystemExit(f"fixture split failed: {proc.stderr}")
    fx["split"] = s / "split.csv"
    ids = [ln.split(",")[0] for ln in fx["preds"].read_text().splitlines()[1:4]]
    (s / "tags.csv").write_text("id,tag\n" + "".join(f"{i},noisy\n" for i in ids))
    fx["tags"] = s / "tags.csv"
    genmed(env, "errors", "import", "--tags", fx["tags"], "--db", s / "tags.sqlite", cwd=s)
    fx["db"] = s / "tags.sqlite"
    arr = np.linspace(-1000, 400, 16 * 16, dtype=np.float32).reshape(16, 16)
    nib.save(nib.Nifti1Image(arr, np.eye(4)), str(s / "scan.nii.gz"))
    fx["nii"] = s / "scan.nii.gz"
    mask = np.zeros((16, 16), np.float32)
    mask[2:14, 2:14] = 1
    mask[6:10, 4:8] = 2
    nib.save(nib.Nifti1Image(mask, np.eye(4)), str(s / "mask.nii.gz"))
    fx["mask"] = s / "mask.nii.gz"
    np.save(s / "ring.npy", np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32))
    fx["ring"] = s / "ring.npy"
    return fx


def copy_run(t: Path, fx: dict) -> Path:
    dst = t / "run"
    shutil.copytree(fx["run"], dst)
    return dst


def nifti_header_bytes(shape: tuple[int, ...], gz: bool) -> bytes:
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(shape)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\x00" * 4 + b"\x01" * 16
    return gzip.compress(raw) if gz else raw


def npy_header_bytes(shape: tuple[int, ...]) -> bytes:
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\x00" * 32


def zip_garbage(seed: int = 0) -> bytes:
    return b"PK\x03\x04" + random.Random(seed).randbytes(400)


def huge_npz(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        z.writestr("train_images.npy", npy_header_bytes((100000, 1024, 1024)))
        z.writestr("train_labels.npy", npy_header_bytes((100000,)))
        z.writestr("images.npy", npy_header_bytes((100000, 1, 1024, 1024)))


def png_bomb(path: Path) -> None:
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 60001 * 64)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def edit_sidecars(run: Path, edit: Callable[[dict], None]) -> None:
    for meta in (run / "checkpoints").glob("step-*.json"):
        data = json.loads(meta.read_text())
        edit(data["config"]["model"]["config"])
        meta.write_text(json.dumps(data))


def edit_weights(run: Path, how: str) -> None:
    from safetensors.numpy import load_file, save_file

    for f in (run / "checkpoints").glob("*.safetensors"):
        tensors = load_file(str(f))
        out = {}
        for k, v in tensors.items():
            if how == "int32":
                out[k] = v.astype(np.int32)
            elif how == "nan" and v.dtype.kind == "f":
                out[k] = np.full_like(v, np.nan)
            elif how == "inf" and v.dtype.kind == "f" and v.size > 4:
                out[k] = np.where(np.arange(v.size).reshape(v.shape) == 0, np.inf, v).astype(v.dtype)
            else:
                out[k] = v
        save_file(out, str(f))


def newest(run: Path, suffix: str) -> Path:
    return sorted((run / "checkpoints").glob(f"step-*{suffix}"))[-1]


def web_fixture(t: Path) -> dict:
    """A predictions/split pair whose image column holds hostile paths."""
    from PIL import Image

    data, outside = t / "data", t / "outside"
    (data / "img").mkdir(parents=True)
    outside.mkdir()
    Image.fromarray(np.full((8, 8), 90, np.uint8)).save(data / "img" / "ok.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(outside / "secret.png")
    rows = [("e0", "img/ok.png"), ("e1", str(outside / "secret.png")), ("e2", "img/missing.png"),
            ("e3", "../outside/secret.png")]
    lines = ["id,y_true,y_pred,image"] + [f"{i},benign,malignant,{p}" for i, p in rows]
    lines += [f"c{k},{'malignant' if k % 2 else 'benign'},{'malignant' if k % 2 else 'benign'},img/ok.png"
              for k in range(8)]
    (data / "preds.csv").write_text("\n".join(lines) + "\n")
    split = ["id,set"] + [f"e{k},eyeball" for k in range(4)] + [f"c{k},{'eyeball' if k < 4 else 'blackbox'}"
                                                                 for k in range(8)]
    (data / "split.csv").write_text("\n".join(split) + "\n")
    return {"preds": data / "preds.csv", "split": data / "split.csv", "outside": outside}


# -- the corpus ------------------------------------------------------------------------------------

def cases() -> list[Case]:
    c: list[Case] = []
    add = c.append
    touch = lambda name: (lambda t, fx: (t / name).write_text("x"))  # noqa: E731
    mkdir = lambda name: (lambda t, fx: (t / name).mkdir(parents=True))  # noqa: E731

    # 1. output path is an existing file / folder of the wrong kind
    out_file = {
        "train": ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", "{t}/f"],
        "sample": ["sample", "{run}", "-n", "2", "--out", "{t}/f"],
        "apps-anomaly": ["apps", "anomaly", "--quick", "--out", "{t}/f"],
        "apps-denoise": ["apps", "denoise", "--quick", "--out", "{t}/f"],
        "apps-denoise-input": ["apps", "denoise", "--input", "{nii}", "--method", "nlm", "--out", "{t}/f"],
        "apps-translate": ["apps", "translate", "--quick", "--out", "{t}/f"],
        "apps-generate-from-mask": ["apps", "generate-from-mask", "--quick", "--out", "{t}/f"],
        "apps-volumes3d": ["apps", "volumes3d", "--quick", "--out", "{t}/f"],
        "eval-images": ["eval", "images", "phantom", "{samples}", "--n-boot", "5", "--out", "{t}/f"],
        "eval-modes": ["eval", "modes", "--quick", "--variants", "exact", "--mixtures", "ring",
                       "--seeds", "1", "--n-samples", "200", "--out", "{t}/f"],
        "compare": ["compare", "--quick", "--families", "vae", "--out", "{t}/f"],
        "score-gmm": ["score", "gmm", "--out", "{t}/f"],
        "score-dsm": ["score", "dsm-vs-esm", "--n-eval", "200", "--n-random", "2", "--train-steps", "4",
                      "--checkpoint-every", "2", "--out", "{t}/f"],
        "score-manifold": ["score", "manifold", "--n-levels", "2", "--steps-each", "2", "--n-samples", "20",
                           "--train-steps", "4", "--out", "{t}/f"],
        "score-samplers": ["score", "samplers", "--n", "20", "--n-steps", "5", "--levels", "2",
                           "--steps-each", "2", "--out", "{t}/f"],
        "data-make": ["data", "make", "--patients", "2", "--size", "16", "--out", "{t}/f"],
        "pipeline-train": ["pipeline", "train", "--quick", "--out", "{t}/f"],
        "pipeline-augment": ["pipeline", "augment-study", "--quick", "--out", "{t}/f"],
        "pipeline-fewlabels": ["pipeline", "few-labels", "--quick", "--out", "{t}/f"],
        "demo": ["demo", "--quick", "--only", "scorelab", "--out", "{t}/f"],
    }
    for name, args in out_file.items():
        add(Case(f"{name} --out FILE", "output-path", args, touch("f")))
    out_dir = {
        "errors-summary": ["errors", "summary", "--predictions", "{preds}", "--tags", "{tags}", "--out", "{t}/d"],
        "errors-split": ["errors", "split", "--predictions", "{preds}", "--eyeball-errors", "3", "--out", "{t}/d"],
        "errors-sample": ["errors", "sample", "--predictions", "{preds}", "--split", "{split}", "--out", "{t}/d"],
        "errors-export": ["errors", "export", "--db", "{db}", "--out", "{t}/d"],
        "errors-import-db": ["errors", "import", "--tags", "{tags}", "--db", "{t}/d"],
        "eval-modes-metrics": ["eval", "modes-metrics", "{ring}", "--mixture", "ring", "--out", "{t}/d"],
        "eval-train-extractor": ["eval", "train-extractor", "--n-patients", "2", "--epochs", "1",
                                 "--out", "{t}/d.safetensors"],
        "pipeline-predict": ["pipeline", "predict", "{pipe}", "--out", "{t}/d/preds.csv"],
    }
    for name, args in out_dir.items():
        target = "d.safetensors" if name == "eval-train-extractor" else (
            "d/preds.csv" if name == "pipeline-predict" else "d")
        add(Case(f"{name} --out DIR", "output-path", args, mkdir(target)))
    add(Case("pipeline-predict --out under a file", "output-path",
             ["pipeline", "predict", "{pipe}", "--out", "{t}/f/preds.csv"], touch("f")))
    add(Case("pipeline-predict images/ is a file", "output-path",
             ["pipeline", "predict", "{pipe}", "--out", "{t}/p/preds.csv"],
             lambda t, fx: ((t / "p").mkdir(), (t / "p" / "images").write_text("x"))))
    add(Case("sample --out RUN/checkpoints", "run-folder",
             ["sample", "{t}/run", "-n", "2", "--out", "{t}/run/checkpoints"], lambda t, fx: copy_run(t, fx)))
    add(Case("sample --out RUN", "run-folder",
             ["sample", "{t}/run", "-n", "2", "--out", "{t}/run"], lambda t, fx: copy_run(t, fx)))
    add(Case("train --out an existing run", "run-folder",
             ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", "{t}/run"],
             lambda t, fx: copy_run(t, fx)))

    # 2. numbers that are not numbers or not sane
    tr = ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", "{t}/r"]
    for opt, val in [("--lr", "nan"), ("--lr", "inf"), ("--lr", "-0.1"), ("--size", "100000"),
                     ("--size", "0"), ("--batch-size", "0"),
                     ("--sample-every", "-1"), ("--ckpt-every", "0"), ("--steps", "-3"),
                     ("--steps", "abc"), ("--spatial-dims", "7"), ("--seed", "-1")]:
        add(Case(f"train {opt} {val}", "numbers", [*tr, opt, val]))
    quick_yaml = "family: vae\nsize: 16\nsteps: 2\nbatch_size: 8\nn_patients: 2\n"  # short even if accepted
    cfg_file = lambda text: (lambda t, fx: (t / "c.yaml").write_text(  # noqa: E731
        text if text.startswith(("-", "a:")) else quick_yaml + text))
    for name, text in [("ema_decay nan", "ema_decay: .nan\n"), ("betas inf", "betas: [.inf, 0.9]\n"),
                       ("grad_clip nan", "grad_clip: .nan\n"), ("options channels huge",
                        "options: {channels: [100000, 100000]}\n"), ("sample_n huge", "sample_n: 100000000\n"),
                       ("not a mapping", "- 1\n- 2\n"), ("yaml bomb", "a: &a [1,1,1,1,1,1,1,1,1]\n" +
                        "".join(f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
                                f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
                                for i in range(8)))]:
        add(Case(f"train --config {name}", "numbers", ["train", "--config", "{t}/c.yaml", "--out", "{t}/r"],
                 cfg_file(text)))
    sm = ["sample", "{run}", "--out", "{t}/s"]
    for opts in (["-n", "100000000"], ["-n", "0"], ["--steps", "0"], ["--steps", "1000000000"],
                 ["--guidance", "nan"], ["--sampler", "nosuch"], ["--class", "malignant"], ["-n", "x"]):
        add(Case(f"sample {' '.join(opts)}", "numbers", [*sm, *opts]))
    for opts in (["--t", "1e308"], ["--t", "nan"], ["--t", "-1"], ["--sigma", "1e300"], ["--sigma", "nan"],
                 ["--stds", "0,1"], ["--means=1e308,-1e308"], ["--weights", "0.5,0.6"], ["--process", "xx"],
                 ["--t", "2", "--process", "vp"], ["--t", ""]):
        add(Case(f"score gmm {' '.join(opts)}", "numbers", ["score", "gmm", "--out", "{t}/g", *opts]))
    for opts in (["--n", "1000000000"], ["--ve-sigma", "nan"], ["--n-steps", "1000000000"], ["--levels", "1"]):
        add(Case(f"score samplers {' '.join(opts)}", "numbers", ["score", "samplers", "--out", "{t}/g", *opts]))
    for opts in (["--n-eval", "10000000000"], ["--n-random", "0"], ["--train-steps", "-1"],
                 ["--checkpoint-every", "0"], ["--process", "xx"]):
        add(Case(f"score dsm-vs-esm {' '.join(opts)}", "numbers", ["score", "dsm-vs-esm", "--out", "{t}/g", *opts]))
    for opts in (["--sigma-min", "nan"], ["--n-levels", "0"], ["--n-samples", "10000000000"],
                 ["--steps-each", "-1"]):
        add(Case(f"score manifold {' '.join(opts)}", "numbers", ["score", "manifold", "--out", "{t}/g", *opts]))
    ov = ["errors", "overfit", "--predictions", "{preds}", "--split", "{split}"]
    for a in ("2", "nan", "0", "-0.1", "1"):
        add(Case(f"errors overfit --alpha {a}", "numbers", [*ov, "--alpha", a]))
    add(Case("errors split --eyeball-errors -5", "numbers",
             ["errors", "split", "--predictions", "{preds}", "--eyeball-errors", "-5", "--out", "{t}/s.csv"]))
    add(Case("errors sample --n -1", "numbers",
             ["errors", "sample", "--predictions", "{preds}", "--split", "{split}", "--n", "-1", "--out", "{t}/s.csv"]))
    add(Case("errors sample --n 0", "numbers",
             ["errors", "sample", "--predictions", "{preds}", "--split", "{split}", "--n", "0", "--out", "{t}/s.csv"]))
    sv = ["errors", "serve", "--predictions", "{preds}", "--split", "{split}", "--db", "{t}/t.sqlite"]
    for opts in (["--port", "-1"], ["--port", "70000"], ["--host", "0.0.0.0"], ["--host", "example.com"]):
        add(Case(f"errors serve {' '.join(opts)}", "numbers", [*sv, *opts], timeout=30))
    add(Case("errors serve port in use", "numbers", [*sv, "--port", "{busy_port}"], timeout=30))
    pt = ["pipeline", "train", "--quick", "--out", "{t}/p"]
    for opts in (["--patients", "0"], ["--seg-epochs", "-1"], ["--cls-epochs", "0"], ["--size", "0"],
                 ["--patients", "-3"]):
        add(Case(f"pipeline train --quick {' '.join(opts)}", "numbers", [*pt, *opts]))
    add(Case("pipeline train --patients 0", "numbers", ["pipeline", "train", "--patients", "0", "--out", "{t}/p"]))
    for opts in (["--malignant-fraction", "2"], ["--malignant-fraction", "nan"], ["--gen-steps", "-1"],
                 ["--train-generators", "flow"]):
        add(Case(f"pipeline augment-study {' '.join(opts)}", "numbers",
                 ["pipeline", "augment-study", "--quick", "--out", "{t}/a", *opts]))
    for opts in (["--fraction", "nan"], ["--fraction", "0"], ["--gen-steps", "0"]):
        add(Case(f"pipeline few-labels {' '.join(opts)}", "numbers",
                 ["pipeline", "few-labels", "--quick", "--out", "{t}/a", *opts]))
    add(Case("pipeline analyse --eyeball-errors -1", "numbers",
             ["pipeline", "analyse", "{t}/pipe", "--eyeball-errors", "-1"],
             lambda t, fx: shutil.copytree(fx["pipe"], t / "pipe")))
    add(Case("pipeline predict --split bogus", "numbers",
             ["pipeline", "predict", "{pipe}", "--split", "bogus", "--out", "{t}/p/preds.csv"]))
    for opts in (["--method", "foo"], ["--seed", "-1"]):
        add(Case(f"apps denoise --quick {' '.join(opts)}", "numbers",
                 ["apps", "denoise", "--quick", "--out", "{t}/a", *opts]))
    add(Case("apps denoise --input --method foo", "numbers",
             ["apps", "denoise", "--input", "{nii}", "--method", "foo", "--out", "{t}/a"]))
    for v in ("-5", "100000"):
        add(Case(f"apps anomaly --t-start {v}", "numbers", ["apps", "anomaly", "--quick", "--t-start", v,
                                                              "--out", "{t}/a"]))
    for attrs in ('[1]', '{"kind": "alien"}', '{"size_mm": 1e308}', '{"size_mm": NaN}', "{bad"):
        add(Case(f"apps generate-from-mask --attributes {attrs}", "numbers",
                 ["apps", "generate-from-mask", "--quick", "--mask", "{mask}", "--attributes", attrs,
                  "--out", "{t}/a"]))
    for opts in (["--seeds", "0"], ["--steps", "-1"], ["--n-samples", "0"], ["--variants", "nosuch"],
                 ["--mixtures", "moon"]):
        add(Case(f"eval modes --quick {' '.join(opts)}", "numbers",
                 ["eval", "modes", "--quick", "--out", "{t}/m", *opts]))
    add(Case("eval images --n-boot 0", "numbers",
             ["eval", "images", "phantom", "{samples}", "--n-boot", "0", "--out", "{t}/e"]))
    add(Case("eval images --n-boot 1e9", "numbers",
             ["eval", "images", "phantom", "{samples}", "--n-boot", "1000000000", "--out", "{t}/e"]))
    add(Case("eval modes-metrics --mixture moon", "numbers",
             ["eval", "modes-metrics", "{ring}", "--mixture", "moon"]))
    cp = ["compare", "--quick", "--families", "vae", "--out", "{t}/c"]
    for opts in (["--size", "0"], ["--n-boot", "0"], ["--budget-seconds", "nan"], ["--budget-images", "-1"],
                 ["--families", "flow"], ["--n-samples", "1000000000"], ["--size", "100000"]):
        add(Case(f"compare {' '.join(opts)}", "numbers", [*cp, *opts]))
    for cmd in (["data", "make", "--patients", "2", "--size", "16", "--out", "{t}/d"],
                ["errors", "split", "--predictions", "{preds}", "--eyeball-errors", "3", "--out", "{t}/s.csv"],
                ["pipeline", "analyse", "{t}/pipe"], ["eval", "images", "phantom", "{samples}", "--out", "{t}/e"],
                ["compare", "--quick", "--families", "vae", "--out", "{t}/c"],
                ["score", "samplers", "--n", "20", "--n-steps", "2", "--levels", "2", "--out", "{t}/g"],
                ["sample", "{run}", "-n", "2", "--out", "{t}/s"]):
        add(Case(f"{cmd[0]} {cmd[1] if not cmd[1].startswith('-') else ''} --seed -1".replace("  ", " "), "numbers",
                 [*cmd, "--seed", "-1"],
                 (lambda t, fx: shutil.copytree(fx["pipe"], t / "pipe")) if cmd[1] == "analyse" else None))
    dm = ["data", "make", "--out", "{t}/d"]
    for opts in (["--patients", "0"], ["--size", "100000"], ["--lesion-prob", "nan"], ["--depth", "-1"],
                 ["--sheet-count", "-1"], ["--lesion-min-mm", "40", "--lesion-max-mm", "5"],
                 ["--slices-per-patient", "0"], ["--patients", "100000000"]):
        add(Case(f"data make {' '.join(opts)}", "numbers", [*dm, *opts]))

    # 3. headers and sidecars trusted before allocation
    def write(name: str, data: Callable[[], bytes]):
        return lambda t, fx: (t / name).write_bytes(data())

    add(Case("data info .nii header 2048x2048x1024", "headers", ["data", "info", "{t}/big.nii"],
             write("big.nii", lambda: nifti_header_bytes((2048, 2048, 1024), gz=False))))
    for shape in ((1024, 1024, 512), (768, 768, 512)):  # 2 GiB / 1.1 GiB claimed in a 60-byte file
        add(Case(f"data info .nii.gz header {'x'.join(map(str, shape))}", "headers",
                 ["data", "info", "{t}/m.nii.gz"], write("m.nii.gz", lambda shape=shape: nifti_header_bytes(shape, gz=True)),
                 mem_limit=1 << 30))
    add(Case("data info .nii.gz header 2048x2048x1024", "headers", ["data", "info", "{t}/big.nii.gz"],
             write("big.nii.gz", lambda: nifti_header_bytes((2048, 2048, 1024), gz=True))))
    add(Case("data info .nii.gz header 8 dims", "headers", ["data", "info", "{t}/big.nii.gz"],
             write("big.nii.gz", lambda: nifti_header_bytes((64, 64, 64, 64, 64, 64, 64), gz=True))))
    add(Case("apps denoise --input huge header", "headers",
             ["apps", "denoise", "--input", "{t}/big.nii.gz", "--out", "{t}/a"],
             write("big.nii.gz", lambda: nifti_header_bytes((2048, 2048, 1024), gz=True))))
    add(Case("data info .npz header 100000x1024x1024", "headers", ["data", "info", "{t}/big.npz"],
             lambda t, fx: huge_npz(t / "big.npz")))
    add(Case("eval images .npz header huge", "headers",
             ["eval", "images", "phantom", "{t}/big.npz", "--out", "{t}/e"], lambda t, fx: huge_npz(t / "big.npz")))
    add(Case("eval images .npy header huge", "headers",
             ["eval", "images", "phantom", "{t}/big.npy", "--out", "{t}/e"],
             write("big.npy", lambda: npy_header_bytes((100000, 1, 1024, 1024)))))
    add(Case("eval modes-metrics .npy header huge", "headers",
             ["eval", "modes-metrics", "{t}/big.npy", "--mixture", "ring"],
             write("big.npy", lambda: npy_header_bytes((10 ** 10, 2)))))
    add(Case("data info png bomb", "headers", ["data", "info", "{t}/bomb.png"], lambda t, fx: png_bomb(t / "bomb.png")))
    add(Case("eval images png bomb", "headers", ["eval", "images", "phantom", "{t}/bomb.png", "--out", "{t}/e"],
             lambda t, fx: png_bomb(t / "bomb.png")))
    for key, val in [("size", 100000), ("in_channels", 100000), ("channels", [100000, 100000]),
                     ("latent_dim", 10 ** 9), ("num_classes", 10 ** 9), ("size", -4), ("channels", "abc"),
                     ("spatial_dims", 9), ("hidden", 10 ** 9)]:
        def setup(t, fx, key=key, val=val):
            edit_sidecars(copy_run(t, fx), lambda m: m.__setitem__(key, val))
        add(Case(f"sample sidecar {key}={val}", "headers", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"], setup))

    def diffusion_sidecar(t, fx):
        run = copy_run(t, fx)

        def edit(data):
            data.clear()
            data.update(json.loads('{"spatial_dims": 2, "in_channels": 1, "size": 16, "num_classes": 0, '
                                   '"data_kind": "image", "channels": [8, 16], "attention_levels": [false, false], '
                                   '"norm_num_groups": 4, "num_train_timesteps": 10000000000}'))
        for meta in (run / "checkpoints").glob("step-*.json"):
            d = json.loads(meta.read_text())
            d["config"]["model"]["family"] = "diffusion"
            edit(d["config"]["model"]["config"])
            meta.write_text(json.dumps(d))
    add(Case("sample sidecar num_train_timesteps=1e10", "headers",
             ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"], diffusion_sidecar))

    def cfg_size(t, fx):
        run = copy_run(t, fx)
        p = run / "config.yaml"
        p.write_text(p.read_text().replace("size: 16", "size: 100000"))
    add(Case("resume config.yaml size=100000", "headers", ["train", "--resume", "{t}/run", "--steps", "6"],
             cfg_size))

    # 4. weights that load but are wrong
    for how in ("int32", "nan", "inf"):
        add(Case(f"sample weights {how}", "weights", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
                 lambda t, fx, how=how: edit_weights(copy_run(t, fx), how)))
    add(Case("resume weights nan", "weights", ["train", "--resume", "{t}/run", "--steps", "6"],
             lambda t, fx: edit_weights(copy_run(t, fx), "nan")))
    add(Case("sample weights truncated (both checkpoints)", "weights",
             ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
             lambda t, fx: [f.write_bytes(f.read_bytes()[:100]) for f in
                            (copy_run(t, fx) / "checkpoints").glob("*.safetensors")]))

    # 5. run folders
    add(Case("resume --steps fewer than done", "run-folder", ["train", "--resume", "{t}/run", "--steps", "1"],
             lambda t, fx: copy_run(t, fx)))
    add(Case("resume while another process holds the run", "run-folder",
             ["train", "--resume", "{t}/run", "--steps", "6"], lambda t, fx: copy_run(t, fx),
             hold_lock="{t}/run/.lock"))
    add(Case("train --out while another process holds it", "run-folder",
             ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", "{t}/r"],
             lambda t, fx: (t / "r").mkdir(), hold_lock="{t}/r/.lock"))

    def torn(t, fx):
        run = copy_run(t, fx)
        with open(run / "metrics.jsonl", "a") as fh:
            fh.write('{"step": 5, "loss/ma')
    add(Case("resume with a torn metrics.jsonl line", "run-folder",
             ["train", "--resume", "{t}/run", "--steps", "6"], torn, expect="recover",
             check=lambda t, fx: "" if all(json.loads(ln) for ln in
                                           (t / "run/metrics.jsonl").read_text().splitlines()) else "torn"))

    def stale(t, fx):
        run = copy_run(t, fx)
        # names as genmed.fileio.atomic_path makes them: .<name>.<8 random chars>.tmp<suffixes>
        (run / "checkpoints" / ".step-00000006.model.safetensors.ab12cd34.tmp.safetensors").write_bytes(b"")
        (run / "samples").mkdir(exist_ok=True)
        (run / "samples" / ".step-00000006.png.x_y9z8w7.tmp.png").write_bytes(b"")
    add(Case("resume cleans stale temp files", "run-folder", ["train", "--resume", "{t}/run", "--steps", "6"],
             stale, expect="recover",
             check=lambda t, fx: "" if not list((t / "run").rglob("*.tmp*")) else "temps left"))
    add(Case("resume of a finished run missing its final grid", "run-folder",
             ["train", "--resume", "{t}/run"],
             lambda t, fx: [p.unlink() for p in (copy_run(t, fx) / "samples").glob("*.png")], expect="recover",
             check=lambda t, fx: "" if (t / "run/samples/step-00000004.png").is_file() else "no grid"))
    add(Case("sample with the newest checkpoint corrupt", "run-folder",
             ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
             lambda t, fx: newest(copy_run(t, fx), ".ema.safetensors").write_bytes(b"garbage"), expect="recover",
             check=lambda t, fx: "" if (t / "s/grid.png").is_file() else "no samples"))
    add(Case("resume with the newest checkpoint corrupt", "run-folder",
             ["train", "--resume", "{t}/run", "--steps", "6"],
             lambda t, fx: newest(copy_run(t, fx), ".state.pt").write_bytes(b"garbage"), expect="recover",
             check=lambda t, fx: "" if (t / "run/checkpoints/step-00000006.json").is_file() else "not resumed"))
    add(Case("resume with metrics.jsonl a non-object line", "run-folder",
             ["train", "--resume", "{t}/run", "--steps", "6"],
             lambda t, fx: (copy_run(t, fx) / "metrics.jsonl").write_text("[1, 2]\n"), expect="recover"))

    # 6. zip-looking garbage and other corrupt files
    for cmd in (["eval", "images", "phantom", "{t}/g.npz", "--out", "{t}/e"], ["data", "info", "{t}/g.npz"],
                ["eval", "images", "phantom", "{samples}", "--train", "{t}/g.npz", "--out", "{t}/e"]):
        add(Case(f"{cmd[0]} {cmd[1]} zip garbage .npz", "corrupt", cmd, write("g.npz", zip_garbage)))
    for cmd in (["eval", "images", "phantom", "{t}/g.npy", "--out", "{t}/e"],
                ["eval", "modes-metrics", "{t}/g.npy", "--mixture", "ring"]):
        add(Case(f"{cmd[0]} {cmd[1]} garbage .npy", "corrupt", cmd, write("g.npy", lambda: b"\x93NUMPY" + b"\xff" * 50)))
    add(Case("eval images folder with garbage .npy", "corrupt",
             ["eval", "images", "phantom", "{t}/f", "--out", "{t}/e"],
             lambda t, fx: ((t / "f").mkdir(), (t / "f" / "a.npy").write_bytes(b"garbage"))))
    add(Case("eval images object .npy", "corrupt", ["eval", "images", "phantom", "{t}/o.npy", "--out", "{t}/e"],
             lambda t, fx: np.save(t / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)))
    add(Case("eval modes-metrics wrong shape", "corrupt", ["eval", "modes-metrics", "{t}/w.npy", "--mixture", "ring"],
             lambda t, fx: np.save(t / "w.npy", np.zeros((5, 3, 2), np.float32))))
    add(Case("eval modes-metrics nan samples", "corrupt", ["eval", "modes-metrics", "{t}/w.npy", "--mixture", "ring"],
             lambda t, fx: np.save(t / "w.npy", np.full((50, 2), np.nan, np.float32))))
    add(Case("data info truncated .nii.gz", "corrupt", ["data", "info", "{t}/c.nii.gz"],
             lambda t, fx: (t / "c.nii.gz").write_bytes(fx["nii"].read_bytes()[:60])))
    add(Case("data info empty file", "corrupt", ["data", "info", "{t}/e.nii"], touch("e.nii")))
    add(Case("errors summary binary tags", "corrupt",
             ["errors", "summary", "--predictions", "{preds}", "--tags", "{t}/b.csv"],
             write("b.csv", lambda: bytes(range(256)))))
    add(Case("errors summary tags not sqlite", "corrupt",
             ["errors", "summary", "--predictions", "{preds}", "--tags", "{t}/b.sqlite"], touch("b.sqlite")))
    add(Case("errors by-parts latin-1 csv", "corrupt",
             ["errors", "by-parts", "--predictions", "{t}/p.csv"],
             write("p.csv", lambda: "id,y_true,y_pred\n\xe9,a,b\n".encode("latin-1"))))
    add(Case("train --config binary", "corrupt", ["train", "--config", "{t}/c.yaml", "--out", "{t}/r"],
             write("c.yaml", lambda: bytes(range(256)))))
    add(Case("sample with config.yaml a list", "corrupt", ["sample", "{t}/run", "--out", "{t}/s"],
             lambda t, fx: (copy_run(t, fx) / "config.yaml").write_text("- 1\n")))
    add(Case("apps generate-from-mask mask with NaN", "corrupt",
             ["apps", "generate-from-mask", "--quick", "--mask", "{t}/m.nii.gz", "--out", "{t}/a"],
             lambda t, fx: __import__("nibabel").save(__import__("nibabel").Nifti1Image(
                 np.full((16, 16), np.nan, np.float32), np.eye(4)), str(t / "m.nii.gz"))))

    # 7. refusals that used to leave empty outputs
    add(Case("errors import bad CSV", "empty-output",
             ["errors", "import", "--tags", "{t}/bad.csv", "--db", "{t}/new.sqlite"], touch("bad.csv")))
    add(Case("errors import missing CSV", "empty-output",
             ["errors", "import", "--tags", "{t}/none.csv", "--db", "{t}/new.sqlite"]))
    add(Case("errors serve bad split", "empty-output",
             ["errors", "serve", "--predictions", "{preds}", "--split", "{t}/none.csv", "--db", "{t}/new.sqlite"],
             timeout=30))
    add(Case("compare missing --data", "empty-output",
             ["compare", "--quick", "--families", "vae", "--data", "{t}/none", "--out", "{t}/c"]))
    add(Case("compare missing --runs", "empty-output",
             ["compare", "--quick", "--families", "vae", "--runs", "{t}/none", "--out", "{t}/c"]))
    add(Case("eval images missing fake", "empty-output",
             ["eval", "images", "phantom", "{t}/none", "--out", "{t}/e"]))
    add(Case("train missing --data", "empty-output",
             ["train", "--family", "vae", "--size", "16", "--steps", "2", "--data", "{t}/none", "--out", "{t}/r"]))
    add(Case("train empty --data folder", "empty-output",
             ["train", "--family", "vae", "--size", "16", "--steps", "2", "--data", "{t}/e", "--out", "{t}/r"],
             mkdir("e")))
    add(Case("apps generate-from-mask missing mask", "empty-output",
             ["apps", "generate-from-mask", "--quick", "--mask", "{t}/none.nii", "--out", "{t}/a"]))
    add(Case("pipeline predict missing --data", "empty-output",
             ["pipeline", "predict", "{pipe}", "--data", "{t}/none.csv", "--out", "{t}/p/preds.csv"]))
    add(Case("pipeline augment-study bad --generator run", "empty-output",
             ["pipeline", "augment-study", "--quick", "--generator", "x={t}/none", "--out", "{t}/a"]))
    add(Case("apps denoise --input missing", "empty-output",
             ["apps", "denoise", "--input", "{t}/none.nii", "--out", "{t}/a"]))
    add(Case("demo --only unknown stage", "empty-output", ["demo", "--quick", "--only", "nosuch", "--out", "{t}/d"]))
    return c


WEB_REQUESTS = [
    # (name, method, path, headers, body, expected statuses, must not contain)
    ("absolute image path from the CSV", "GET", "/image/e1", {}, None, (404,), ""),
    ("../ image path from the CSV", "GET", "/image/e3", {}, None, (404,), ""),
    ("missing image echoes no path", "GET", "/image/e2", {}, None, (404,), "{root}"),
    ("missing image page echoes no path", "GET", "/example/e2", {}, None, (200,), "{root}"),
    ("cross-origin JSON POST", "POST", "/api/toggle", {"Origin": "http://evil.example",
                                                      "Content-Type": "application/json"},
     b'{"id": "e0", "tag": "x"}', (403,), ""),
    ("Origin: null POST", "POST", "/api/note", {"Origin": "null", "Content-Type": "application/json"},
     b'{"id": "e0", "note": "x"}', (403,), ""),
    ("cross-port localhost POST", "POST", "/api/reviewed", {"Origin": "http://127.0.0.1:1",
                                                           "Content-Type": "application/json"},
     b'{"id": "e0"}', (403,), ""),
    ("Sec-Fetch-Site cross-site POST", "POST", "/api/reviewed", {"Sec-Fetch-Site": "cross-site",
                                                                 "Content-Type": "application/json"},
     b'{"id": "e0"}', (403,), ""),
    ("5 MB note", "POST", "/api/note", {"Content-Type": "application/json"},
     b'{"id": "e0", "note": "' + b"a" * (5 << 20) + b'"}', (413,), ""),
    ("5 MB chunked note", "POST", "/api/note", {"Content-Type": "application/json", "chunked": "1"},
     b'{"id": "e0", "note": "' + b"a" * (5 << 20) + b'"}', (413,), ""),
    ("100,000 nested [", "POST", "/api/note", {"Content-Type": "application/json"}, b"[" * 100_000,
     (400,), ""),
    ("100,000 nested {", "POST", "/api/note", {"Content-Type": "application/json"},
     b'{"a":' * 100_000, (400,), ""),
    ("Host rebinding", "GET", "/", {"Host": "evil.example"}, None, (400,), ""),
    ("form POST", "POST", "/api/toggle", {"Content-Type": "application/x-www-form-urlencoded"},
     b"id=e0&tag=x", (400,), ""),
    ("blackbox id", "GET", "/example/c5", {}, None, (404,), ""),
    ("invalid UTF-8 JSON", "POST", "/api/note", {"Content-Type": "application/json"}, b'{"id": "\xff"}',
     (400,), ""),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, headers: dict, body: bytes | None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = dict(headers)
    chunked = headers.pop("chunked", None)
    headers.setdefault("Host", f"127.0.0.1:{port}")
    try:
        try:
            if chunked:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for k, v in headers.items():
                    conn.putheader(k, v)
                conn.putheader("Transfer-Encoding", "chunked")
                conn.endheaders()
                for i in range(0, len(body), 1 << 16):
                    part = body[i:i + (1 << 16)]
                    conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                conn.send(b"0\r\n\r\n")
            else:
                conn.request(method, path, body=body, headers=headers)
        except OSError:  # the server answered and hung up before the whole body was sent
            pass
        resp = conn.getresponse()
        return resp.status, resp.read()
    except (ConnectionError, OSError, http.client.HTTPException, AttributeError) as exc:
        return 0, str(exc).encode()  # no server, or it dropped the connection
    finally:
        conn.close()


def run_web(root: Path, env: dict) -> list[dict]:
    t = root / "web"
    t.mkdir()
    w = web_fixture(t)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "genmed", "errors", "serve", "--predictions", w["preds"],
                             "--split", w["split"], "--db", t / "tags.sqlite", "--port", str(port)],
                            env=env, cwd=t, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = []
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        if proc.poll() is not None:
            print(f"genmed errors serve did not start: {proc.stderr.read()[-400:]}", file=sys.stderr)
        for name, method, path, headers, body, ok, secret in WEB_REQUESTS:
            status, content = request(port, method, path, headers, body)
            secret = secret.format(root=str(t)) if secret else ""
            if status >= 500 or status == 0:
                outcome = "traceback"
            elif status in ok and not (secret and secret.encode() in content):
                outcome = "clean"
            elif status == 200:
                outcome = "accepted"
            else:
                outcome = "leak" if secret and secret.encode() in content else "wrong_status"
            results.append({"name": f"web: {name}", "group": "web", "outcome": outcome, "status": status,
                            "detail": content[:160].decode("utf-8", "replace")})
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return results


# -- running ---------------------------------------------------------------------------------------

def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for p in folder.rglob("*"):
        st = p.lstat()
        out[str(p.relative_to(folder))] = (st.st_size if p.is_file() else -1, st.st_mtime_ns)
    return out


def limit_memory(limit: int = MEM_LIMIT) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


# A refusal that names a failed allocation came only after genmed tried to reserve the memory.
ALLOC_MARKERS = ("MemoryError", "Unable to allocate", "can't allocate memory", "DefaultCPUAllocator")


def run_case(case: Case, root: Path, fx: dict, env: dict, index: int) -> dict:
    t = root / f"case{index:03d}"
    t.mkdir()
    if case.setup:
        case.setup(t, fx)
    subs = {"t": str(t), "run": str(fx["run"]), "pipe": str(fx["pipe"]), "samples": str(fx["samples"]),
            "preds": str(fx["preds"]), "split": str(fx["split"]), "tags": str(fx["tags"]), "db": str(fx["db"]),
            "nii": str(fx["nii"]), "mask": str(fx["mask"]), "ring": str(fx["ring"])}
    busy = None
    if "{busy_port}" in " ".join(case.args):
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        subs["busy_port"] = str(busy.getsockname()[1])
    args = [re.sub(r"\{(\w+)\}", lambda m: subs.get(m.group(1), m.group(0)), a) for a in case.args]
    lock_fh = None
    if case.hold_lock:
        lock_path = Path(case.hold_lock.format(**subs))
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock_fh = open(lock_path, "a+")
        fcntl.flock(lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    shared_before = snapshot(fx["shared"])
    before = snapshot(t)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "genmed", *args], cwd=t, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=limit_memory(case.mem_limit))
    timed_out = False
    try:
        out, err = proc.communicate(timeout=case.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        timed_out = True
    seconds = time.perf_counter() - t0
    rss_kb = getattr(proc, "_rss_kb", 0)
    if lock_fh:
        lock_fh.close()
    if busy:
        busy.close()
    after = snapshot(t)
    changed = sorted(k for k, v in after.items() if before.get(k) != v and not k.endswith(".lock")
                     and not any(k == i or k.startswith(i + "/") for i in case.ignore)
                     and not (before.get(k) and v[0] == -1))  # folder mtimes change with their files
    shared_changed = sorted(k for k, v in snapshot(fx["shared"]).items() if shared_before.get(k) != v and v[0] != -1)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    rc = proc.returncode
    why = ""
    if timed_out or rc not in (0, 2) or "Traceback" in err:
        outcome = "traceback"
    elif case.expect == "recover":
        why = case.check(t, fx) if (rc == 0 and case.check) else ""
        outcome = "clean" if rc == 0 and not why else ("refused" if rc == 2 else "unrepaired")
    elif rc == 0:
        outcome = "accepted"
    elif len(lines) != 1:
        outcome = "two_lines"
    elif changed or shared_changed:
        outcome = "outputs"
    elif rss_kb > RSS_LIMIT_KB or any(m in err for m in ALLOC_MARKERS):
        outcome = "memory"
    else:
        outcome = "clean"
    if case.expect == "refuse" and outcome == "clean" and rss_kb > RSS_LIMIT_KB:
        outcome = "memory"
    return {"name": case.name, "group": case.group, "outcome": outcome, "rc": None if timed_out else rc,
            "seconds": round(seconds, 1), "stderr_lines": len(lines), "stderr": (lines[-1] if lines else "")[:200],
            "left": (changed + [f"shared/{k}" for k in shared_changed])[:6], "why": why,
            "peak_rss_mb": round(rss_kb / 1024)}


class _Popen(subprocess.Popen):
    """Popen that records the child's peak RSS (via wait4) when it is reaped."""

    def _try_wait(self, wait_flags):
        try:
            pid, sts, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            pid, sts, usage = self.pid, 0, None
        if pid and usage is not None:
            self._rss_kb = usage.ru_maxrss
        return (pid, sts)


subprocess.Popen = _Popen  # type: ignore[misc]


KINDS = ("clean", "traceback", "outputs", "accepted", "two_lines", "memory")


def _entry(args: argparse.Namespace, results: list[dict], seconds: float) -> dict:
    totals = {"tried": len(results), **{k: sum(r["outcome"] == k for r in results) for k in KINDS}}
    totals["other"] = totals["tried"] - sum(totals[k] for k in KINDS)
    by_group = {}
    for g in sorted({r["group"] for r in results}):
        rows = [r for r in results if r["group"] == g]
        by_group[g] = {"tried": len(rows), **{k: sum(r["outcome"] == k for r in rows) for k in KINDS}}
    return {"label": args.label, "src": args.src or "installed", "seconds": seconds, "jobs": args.jobs,
            "totals": totals, "by_group": by_group, "cases": results}


def _dumps(data: dict) -> str:
    """Indented JSON with one line per case (the file stays readable and diffable)."""
    parts = []
    for label, entry in data.items():
        head = {k: v for k, v in entry.items() if k != "cases"}
        cases = ",\n    ".join(json.dumps(c, sort_keys=False) for c in entry.get("cases", []))
        body = json.dumps(head, indent=2)[:-2] + f',\n  "cases": [\n    {cases}\n  ]\n}}'
        parts.append(f"{json.dumps(label)}: " + body.replace("\n", "\n "))
    return "{\n " + ",\n ".join(parts) + "\n}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", default="after")
    ap.add_argument("--src", default="", help="PYTHONPATH for the genmed under test (default: installed)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated groups")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    env = {**os.environ, "GENMED_QUIET": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    root = Path(tempfile.mkdtemp(prefix="genmed-hostile-"))
    t0 = time.perf_counter()
    try:
        todo = [c for c in cases() if not args.only or c.group in args.only.split(",")]
        fx = build_shared(root, env) if todo else {}
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_case, c, root, fx, env, i) for i, c in enumerate(todo)]
            results = []
            for f in futures:
                r = f.result()
                results.append(r)
                print(f"{r['outcome']:<10} {r['seconds']:>6.1f}s  {r['group']:<12} {r['name']}  {r['stderr'][:90]}",
                      flush=True)
        if not args.only or "web" in args.only.split(","):
            for r in run_web(root, env):
                results.append(r)
                print(f"{r['outcome']:<10} {'':>7}  web          {r['name']}  {r['status']}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    entry = _entry(args, results, round(time.perf_counter() - t0))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    if args.only and args.label in data:  # merge: replace only the groups run now
        ran = set(args.only.split(","))
        kept = [c for c in data[args.label]["cases"] if c["group"] not in ran]
        entry = _entry(args, kept + results, data[args.label]["seconds"])
    data[args.label] = entry
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(_dumps(data) + "\n")
    os.replace(tmp, RESULTS)
    print(json.dumps(data[args.label]["totals"]))


if __name__ == "__main__":
    main()
