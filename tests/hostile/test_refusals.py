"""Hostile input on every command group: each case must be refused with exit status 2, one
stderr line, no traceback and nothing new (or changed) on disk. Issue 17's classes:

- output path is an existing file / folder of the wrong kind (checked before any work);
- numbers that are not numbers or not sane (NaN, infinity, absurd sizes, out-of-range values);
- sizes from file headers and checkpoint sidecars checked before anything is allocated;
- weights of the wrong dtype or holding NaN / infinity;
- zip-looking garbage and other corrupt files;
- refusals that used to leave an empty database or folder behind.

Each case runs `genmed.cli.main` in this process (a traceback fails the test as an exception).
"""

from __future__ import annotations

import gzip
import json
import random
import re
import shutil
import socket
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from .conftest import refused


def touch(name: str):
    return lambda t, fx: (t / name).write_text("x")


def mkdir(name: str):
    return lambda t, fx: (t / name).mkdir(parents=True)


def copy_run(t: Path, fx: dict) -> Path:
    shutil.copytree(fx["run"], t / "run")
    return t / "run"


def nifti_bytes(shape: tuple[int, ...], gz: bool) -> bytes:
    """A NIfTI header claiming `shape` float32, followed by 16 bytes of data."""
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape(shape)
    hdr["vox_offset"] = 352
    raw = hdr.binaryblock + b"\x00" * 4 + b"\x01" * 16
    return gzip.compress(raw) if gz else raw


def npy_bytes(shape: tuple[int, ...]) -> bytes:
    """A .npy header claiming float32 `shape`, followed by 32 bytes."""
    text = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + b"\x00" * 32


def huge_npz(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("train_images.npy", npy_bytes((100000, 1024, 1024)))
        z.writestr("train_labels.npy", npy_bytes((100000,)))
        z.writestr("images.npy", npy_bytes((100000, 1, 1024, 1024)))


def png_bomb(path: Path) -> None:
    """A 60,000 x 60,000 grey PNG header (3.6 G pixels) with a tiny deflated body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
                     + chunk(b"IEND", b""))


def write(name: str, data):
    return lambda t, fx: (t / name).write_bytes(data() if callable(data) else data)


def sidecars(key: str, value, family: str | None = None):
    """Copy the run and set `key` of the model record in every checkpoint sidecar."""
    def setup(t, fx):
        for meta in (copy_run(t, fx) / "checkpoints").glob("step-*.json"):
            data = json.loads(meta.read_text())
            if family:
                data["config"]["model"]["family"] = family
            data["config"]["model"]["config"][key] = value
            meta.write_text(json.dumps(data))
    return setup


def weights(how: str):
    """Copy the run and rewrite every safetensors file: int32, NaN or one infinity."""
    def setup(t, fx):
        from safetensors.numpy import load_file, save_file

        for f in (copy_run(t, fx) / "checkpoints").glob("*.safetensors"):
            out = {}
            for k, v in load_file(str(f)).items():
                if how == "int32":
                    v = v.astype(np.int32)
                elif v.dtype.kind == "f" and how == "nan":
                    v = np.full_like(v, np.nan)
                elif v.dtype.kind == "f" and how == "inf" and v.size > 4:
                    v = v.copy()
                    v.flat[0] = np.inf
                out[k] = v
            save_file(out, str(f))
    return setup


def cfg_file(text: str):
    return lambda t, fx: (t / "c.yaml").write_text(text)


QUICK_YAML = "family: vae\nsize: 16\nsteps: 2\nbatch_size: 8\nn_patients: 2\n"  # short even if accepted
TRAIN = ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", "{t}/r"]
SAMPLE = ["sample", "{run}", "-n", "2", "--out", "{t}/s"]

# (id, argv, setup, needle in the error line)
CASES = [
    # -- output path is an existing file / a folder where a file goes -------------------------
    ("train --out FILE", ["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", "{t}/f"],
     touch("f"), "not a folder"),
    ("sample --out FILE", ["sample", "{run}", "-n", "2", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("apps anomaly --out FILE", ["apps", "anomaly", "--quick", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("apps denoise --out FILE", ["apps", "denoise", "--quick", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("apps denoise --input --out FILE", ["apps", "denoise", "--input", "{nii}", "--method", "tv", "--out",
                                         "{t}/f"], touch("f"), "not a folder"),
    ("apps translate --out FILE", ["apps", "translate", "--quick", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("apps generate-from-mask --out FILE", ["apps", "generate-from-mask", "--quick", "--out", "{t}/f"],
     touch("f"), "not a folder"),
    ("apps volumes3d --out FILE", ["apps", "volumes3d", "--quick", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("eval images --out FILE", ["eval", "images", "{fake}", "{fake}", "--n-boot", "2", "--out", "{t}/f"],
     touch("f"), "not a folder"),
    ("compare modes --out FILE", ["compare", "modes", "--quick", "--variants", "exact", "--mixtures", "ring",
                               "--seeds", "1", "--n-samples", "100", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("compare --out FILE", ["compare", "--quick", "--families", "vae", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("score gmm --out FILE", ["score", "gmm", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("score dsm-vs-esm --out FILE", ["score", "dsm-vs-esm", "--n-eval", "100", "--n-random", "2", "--train-steps",
                                     "2", "--checkpoint-every", "1", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("score manifold --out FILE", ["score", "manifold", "--n-levels", "2", "--steps-each", "2", "--n-samples",
                                   "10", "--train-steps", "2", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("score samplers --out FILE", ["score", "samplers", "--n", "20", "--n-steps", "2", "--levels", "2",
                                   "--steps-each", "1", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("score gmm gmm.png is a folder", ["score", "gmm", "--out", "{t}/g"], mkdir("g/gmm.png"), "is a folder"),
    ("demo --out FILE", ["demo", "--quick", "--only", "scorelab", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("pipeline train --out FILE", ["pipeline", "train", "--quick", "--out", "{t}/f"], touch("f"), "not a folder"),
    ("errors summary --out DIR", ["errors", "summary", "--predictions", "{preds}", "--tags", "{tags}", "--out",
                                  "{t}/d"], mkdir("d"), "is a folder"),
    ("errors split --out DIR", ["errors", "split", "--predictions", "{preds}", "--eyeball-errors", "3", "--out",
                                "{t}/d"], mkdir("d"), "is a folder"),
    ("errors sample --out DIR", ["errors", "sample", "--predictions", "{preds}", "--split", "{split}", "--out",
                                 "{t}/d"], mkdir("d"), "is a folder"),
    ("errors export --out DIR", ["errors", "export", "--db", "{db}", "--out", "{t}/d"], mkdir("d"), "is a folder"),
    ("eval modes-metrics --out DIR", ["eval", "modes-metrics", "{ring}", "--mixture", "ring", "--out", "{t}/d"],
     mkdir("d"), "is a folder"),
    ("eval train-extractor --out DIR", ["eval", "train-extractor", "--n-patients", "2", "--epochs", "1", "--out",
                                        "{t}/d.safetensors"], mkdir("d.safetensors"), "is a folder"),
    ("pipeline predict --out DIR", ["pipeline", "predict", "{pipe}", "--out", "{t}/d/preds.csv"],
     mkdir("d/preds.csv"), "is a folder"),
    ("pipeline predict --out under a file", ["pipeline", "predict", "{pipe}", "--out", "{t}/f/preds.csv"],
     touch("f"), "is a file"),
    ("pipeline predict images/ is a file", ["pipeline", "predict", "{pipe}", "--out", "{t}/p/preds.csv"],
     lambda t, fx: (mkdir("p")(t, fx), touch("p/images")(t, fx)), "not a folder"),
    ("sample --out RUN/checkpoints", ["sample", "{t}/run", "-n", "2", "--out", "{t}/run/checkpoints"], copy_run,
     "inside the run folder"),
    ("sample --out RUN", ["sample", "{t}/run", "-n", "2", "--out", "{t}/run"], copy_run, "inside the run folder"),
    # -- numbers that are not numbers or not sane ----------------------------------------------
    ("train --lr nan", [*TRAIN, "--lr", "nan"], None, "lr=nan"),
    ("train --lr inf", [*TRAIN, "--lr", "inf"], None, "lr=inf"),
    ("train --size 100000", [*TRAIN[:-4], "--size", "100000", "--out", "{t}/r"], None, "size=100000"),
    ("train --seed -1", [*TRAIN, "--seed", "-1"], None, "seed=-1"),
    ("train --num-workers 100000", [*TRAIN, "--num-workers", "100000"], None, "num_workers"),
    ("train --batch-size 10**8", [*TRAIN, "--batch-size", "100000000"], None, "batch_size"),
    ("train --steps abc", [*TRAIN, "--steps", "abc"], None, "--steps"),
    ("train --config grad_clip nan", ["train", "--config", "{t}/c.yaml", "--out", "{t}/r"],
     cfg_file(QUICK_YAML + "grad_clip: .nan\n"), "grad_clip"),
    ("train --config channels huge", ["train", "--config", "{t}/c.yaml", "--out", "{t}/r"],
     cfg_file("family: vae\noptions: {channels: [100000, 100000]}\n"), "channels"),
    ("train --config sample_n 10**8", ["train", "--config", "{t}/c.yaml", "--out", "{t}/r"],
     cfg_file(QUICK_YAML + "sample_n: 100000000\n"), "sample_n"),
    ("sample -n 10**8", [*SAMPLE[:2], "-n", "100000000", "--out", "{t}/s"], None, "-n"),
    ("sample --steps 0", [*SAMPLE, "--steps", "0"], None, "--steps"),
    ("sample --steps 10**9", [*SAMPLE, "--steps", "1000000000"], None, "--steps"),
    ("sample --guidance nan", [*SAMPLE, "--guidance", "nan"], None, "--guidance"),
    ("sample --seed -1", [*SAMPLE, "--seed", "-1"], None, "--seed"),
    ("sample --class of an unconditional run", [*SAMPLE, "--class", "malignant"], None, "not class-conditional"),
    ("score gmm --t 1e308", ["score", "gmm", "--t", "1e308", "--out", "{t}/g"], None, "--t"),
    ("score gmm --t nan", ["score", "gmm", "--t", "nan", "--out", "{t}/g"], None, "t"),
    ("score gmm --sigma 1e300", ["score", "gmm", "--sigma", "1e300", "--out", "{t}/g"], None, "--sigma"),
    ("score samplers --n 10**9", ["score", "samplers", "--n", "1000000000", "--out", "{t}/g"], None, "--n"),
    ("score dsm-vs-esm --n-eval 10**10", ["score", "dsm-vs-esm", "--n-eval", "10000000000", "--out", "{t}/g"],
     None, "--n-eval"),
    ("score manifold --n-samples 10**10", ["score", "manifold", "--n-samples", "10000000000", "--out", "{t}/g"],
     None, "--n-samples"),
    ("errors overfit --alpha 2", ["errors", "overfit", "--predictions", "{preds}", "--split", "{split}",
                                  "--alpha", "2"], None, "--alpha"),
    ("errors overfit --alpha nan", ["errors", "overfit", "--predictions", "{preds}", "--split", "{split}",
                                    "--alpha", "nan"], None, "--alpha"),
    ("errors overfit --alpha 0", ["errors", "overfit", "--predictions", "{preds}", "--split", "{split}",
                                  "--alpha", "0"], None, "--alpha"),
    ("errors serve --port -1", ["errors", "serve", "--predictions", "{preds}", "--split", "{split}", "--db",
                                "{t}/t.sqlite", "--port", "-1"], None, "--port"),
    ("errors serve --port 70000", ["errors", "serve", "--predictions", "{preds}", "--split", "{split}", "--db",
                                   "{t}/t.sqlite", "--port", "70000"], None, "--port"),
    ("errors serve --host 0.0.0.0", ["errors", "serve", "--predictions", "{preds}", "--split", "{split}", "--db",
                                     "{t}/t.sqlite", "--host", "0.0.0.0"], None, "refused"),
    ("pipeline train --quick --patients 0", ["pipeline", "train", "--quick", "--patients", "0", "--out", "{t}/p"],
     None, "--patients"),
    ("pipeline train --quick --seg-epochs -1", ["pipeline", "train", "--quick", "--seg-epochs", "-1", "--out",
                                                "{t}/p"], None, "--seg-epochs"),
    ("pipeline augment-study --gen-steps -1", ["pipeline", "augment-study", "--quick", "--gen-steps", "-1",
                                               "--out", "{t}/a"], None, "--gen-steps"),
    ("pipeline augment-study --train-generators flow", ["pipeline", "augment-study", "--quick",
                                                        "--train-generators", "flow", "--out", "{t}/a"], None, "flow"),
    ("pipeline few-labels --gen-steps 0", ["pipeline", "few-labels", "--quick", "--gen-steps", "0", "--out",
                                           "{t}/a"], None, "--gen-steps"),
    ("apps denoise --quick --method foo", ["apps", "denoise", "--quick", "--method", "foo", "--out", "{t}/a"],
     None, "--method"),
    ("eval images --n-boot 10**9", ["eval", "images", "{fake}", "{fake}", "--n-boot", "1000000000", "--out",
                                    "{t}/e"], None, "--n-boot"),
    ("compare modes --n-samples 10**9", ["compare", "modes", "--quick", "--variants", "exact", "--mixtures", "ring",
                                      "--seeds", "1", "--n-samples", "1000000000", "--out", "{t}/m"],
     None, "--n-samples"),
    ("compare --size 100000", ["compare", "--quick", "--families", "vae", "--size", "100000", "--out", "{t}/c"],
     None, "--size"),
    ("compare --n-samples 10**9", ["compare", "--quick", "--families", "vae", "--n-samples", "1000000000",
                                   "--out", "{t}/c"], None, "--n-samples"),
    ("compare --budget-seconds nan", ["compare", "--quick", "--families", "vae", "--budget-seconds", "nan",
                                      "--out", "{t}/c"], None, "budget_seconds"),
    ("data make --seed -1", ["data", "make", "--patients", "2", "--size", "16", "--seed", "-1", "--out", "{t}/d"],
     None, "--seed"),
    ("errors split --seed -1", ["errors", "split", "--predictions", "{preds}", "--eyeball-errors", "3", "--seed",
                                "-1", "--out", "{t}/s.csv"], None, "--seed"),
    ("data make --sheet-count -1", ["data", "make", "--patients", "2", "--size", "16", "--sheet-count", "-1",
                                    "--out", "{t}/d"], None, "--sheet-count"),
    ("score gmm --means=1e308,-1e308", ["score", "gmm", "--means=1e308,-1e308", "--out", "{t}/g"], None, "--means"),
    ("apps generate-from-mask size_mm NaN", ["apps", "generate-from-mask", "--quick", "--mask", "{mask}",
                                             "--attributes", '{"size_mm": NaN}', "--out", "{t}/a"], None, "size_mm"),
    ("pipeline predict --data missing", ["pipeline", "predict", "{pipe}", "--data", "{t}/none.csv", "--out",
                                         "{t}/p/preds.csv"], None, "none.csv"),
    ("demo --only unknown", ["demo", "--quick", "--only", "nosuch", "--out", "{t}/d"], None, "--only"),
    # -- sizes from headers and sidecars checked before allocation ------------------------------
    ("data info .nii claims 2048x2048x1024", ["data", "info", "{t}/big.nii"],
     write("big.nii", lambda: nifti_bytes((2048, 2048, 1024), gz=False)), "big.nii"),
    ("data info .nii.gz claims 2048x2048x1024", ["data", "info", "{t}/big.nii.gz"],
     write("big.nii.gz", lambda: nifti_bytes((2048, 2048, 1024), gz=True)), "big.nii.gz"),
    ("data info .nii.gz claims 1024x1024x512", ["data", "info", "{t}/m.nii.gz"],
     write("m.nii.gz", lambda: nifti_bytes((1024, 1024, 512), gz=True)), "truncated or corrupt"),
    ("data info .nii claims 1024x1024x512", ["data", "info", "{t}/m.nii"],
     write("m.nii", lambda: nifti_bytes((1024, 1024, 512), gz=False)), "truncated or corrupt"),
    ("apps denoise --input claims 2048^2x1024", ["apps", "denoise", "--input", "{t}/big.nii.gz", "--method", "tv",
                                                "--out", "{t}/a"],
     write("big.nii.gz", lambda: nifti_bytes((2048, 2048, 1024), gz=True)), "big.nii.gz"),
    ("data info .npz claims 100000x1024x1024", ["data", "info", "{t}/big.npz"], lambda t, fx: huge_npz(t / "big.npz"),
     "truncated or corrupt"),
    ("eval images .npz claims huge", ["eval", "images", "{fake}", "{t}/big.npz", "--out", "{t}/e"],
     lambda t, fx: huge_npz(t / "big.npz"), "truncated or corrupt"),
    ("eval images .npy claims huge", ["eval", "images", "{fake}", "{t}/big.npy", "--out", "{t}/e"],
     write("big.npy", lambda: npy_bytes((100000, 1, 1024, 1024))), "truncated or corrupt"),
    ("eval modes-metrics .npy claims 10**10 x 2", ["eval", "modes-metrics", "{t}/big.npy", "--mixture", "ring"],
     write("big.npy", lambda: npy_bytes((10 ** 10, 2))), "truncated or corrupt"),
    ("data info PNG bomb", ["data", "info", "{t}/bomb.png"], lambda t, fx: png_bomb(t / "bomb.png"), "bomb.png"),
    ("eval images PNG bomb", ["eval", "images", "{fake}", "{t}/bomb.png", "--out", "{t}/e"],
     lambda t, fx: png_bomb(t / "bomb.png"), "bomb.png"),
    ("sample sidecar size=100000", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"], sidecars("size", 100000),
     "size=100000"),
    ("sample sidecar channels=[10**5]*2", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
     sidecars("channels", [100000, 100000]), "channels"),
    ("sample sidecar in_channels=10**5", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
     sidecars("in_channels", 100000), "in_channels"),
    ("sample sidecar latent_dim=10**9", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
     sidecars("latent_dim", 10 ** 9), "latent_dim"),
    ("sample sidecar num_train_timesteps=10**10", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"],
     sidecars("num_train_timesteps", 10 ** 10, family="diffusion"), "num_train_timesteps"),
    ("resume config.yaml size=100000", ["train", "--resume", "{t}/run", "--steps", "6"],
     lambda t, fx: (copy_run(t, fx) / "config.yaml").write_text(
         (fx["run"] / "config.yaml").read_text().replace("size: 16", "size: 100000")), "size=100000"),
    # -- weights that load but are wrong --------------------------------------------------------
    ("sample weights int32", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"], weights("int32"), "I32"),
    ("sample weights NaN", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"], weights("nan"), "NaN"),
    ("sample weights with one inf", ["sample", "{t}/run", "-n", "2", "--out", "{t}/s"], weights("inf"), "NaN"),
    ("resume weights NaN", ["train", "--resume", "{t}/run", "--steps", "6"], weights("nan"), "NaN"),
    # -- zip-looking garbage and other corrupt files ---------------------------------------------
    ("eval images zip garbage .npz", ["eval", "images", "{fake}", "{t}/g.npz", "--out", "{t}/e"],
     write("g.npz", lambda: b"PK\x03\x04" + random.Random(0).randbytes(400)), "g.npz"),
    ("eval images --train zip garbage", ["eval", "images", "{fake}", "{fake}", "--train", "{t}/g.npz", "--out",
                                         "{t}/e"], write("g.npz", lambda: b"PK\x03\x04" + bytes(300)), "g.npz"),
    ("data info zip garbage .npz", ["data", "info", "{t}/g.npz"],
     write("g.npz", lambda: b"PK\x03\x04" + random.Random(1).randbytes(400)), "g.npz"),
    ("eval images garbage .npy", ["eval", "images", "{fake}", "{t}/g.npy", "--out", "{t}/e"],
     write("g.npy", b"\x93NUMPY" + b"\xff" * 50), "g.npy"),
    ("eval images folder of garbage .npy", ["eval", "images", "{fake}", "{t}/f", "--out", "{t}/e"],
     lambda t, fx: (mkdir("f")(t, fx), write("f/a.npy", b"garbage")(t, fx)), "a.npy"),
    ("eval images object .npy", ["eval", "images", "{fake}", "{t}/o.npy", "--out", "{t}/e"],
     lambda t, fx: np.save(t / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True), "objects"),
    ("sample run with config.yaml a list", ["sample", "{t}/run", "--out", "{t}/s"],
     lambda t, fx: (copy_run(t, fx) / "config.yaml").write_text("- 1\n"), "mapping"),
    # -- refusals that used to leave an empty database / folder behind ---------------------------
    ("errors import bad CSV", ["errors", "import", "--tags", "{t}/bad.csv", "--db", "{t}/new.sqlite"],
     write("bad.csv", b"id,wrong\n1,2\n"), "tag"),
    ("compare missing --data", ["compare", "--quick", "--families", "vae", "--data", "{t}/none", "--out", "{t}/c"],
     None, "none"),
    ("train missing --data", ["train", "--family", "vae", "--size", "16", "--steps", "2", "--data", "{t}/none",
                              "--out", "{t}/r"], None, "none"),
    ("eval images missing fake", ["eval", "images", "{fake}", "{t}/none", "--out", "{t}/e"], None, "none"),
]


@pytest.mark.parametrize("argv, setup, needle", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_cleanly(capsys, tmp_path, tiny_run, pipe_run, ea, files, argv, setup, needle):
    fx = {"run": tiny_run, "pipe": pipe_run, **{k: v for k, v in ea.items() if k != "root"},
          **{k: v for k, v in files.items() if k != "root"}}
    if setup is not None:
        setup(tmp_path, fx)
    subs = {"t": tmp_path, **fx}
    args = [re.sub(r"\{(\w+)\}", lambda m: str(subs.get(m.group(1), m.group(0))), a) for a in argv]
    refused(capsys, args, [tmp_path, tiny_run, pipe_run, ea["root"], files["root"]], needle)


def test_serve_refuses_a_busy_port_before_creating_the_database(capsys, tmp_path, ea):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused(capsys, ["errors", "serve", "--predictions", ea["preds"], "--split", ea["split"],
                         "--db", tmp_path / "t.sqlite", "--port", port], [tmp_path, ea["root"]], "--port")
