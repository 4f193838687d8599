"""`genmed distill` / `genmed sample --steps 1`: a consistency student of a tiny phantom
diffusion run saves, loads, samples and resumes like any run; bad input is one line, exit 2."""

from __future__ import annotations

import pytest
import torch
import yaml

from genmed.cli import main

TINY = {"family": "diffusion", "size": 16, "n_patients": 4, "batch_size": 8, "warmup": 0,
        "sample_n": 2, "cond": "label", "precision": "fp32", "device": "cpu",
        "options": {"channels": [8, 8], "attention_levels": [False, False],
                    "norm_num_groups": 4, "num_train_timesteps": 100, "sample_steps": 2}}


def _ok(capsys, argv: list[str]) -> tuple[str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code in (0, None), err
    return out, err


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    config = root / "teacher.yaml"
    config.write_text(yaml.safe_dump(TINY))
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--steps", "2", "--out", str(root / "teacher")])
    return root / "teacher"


def test_distill_save_load_sample_resume(capsys, tmp_path, teacher, cli_refuses):
    from genmed.models import ConsistencyModel
    from genmed.train import load_run

    student = tmp_path / "student"
    out, _ = _ok(capsys, ["distill", str(teacher), "--out", str(student), "--steps", "3",
                          "--batch-size", "4", "--num-scales", "10", "--guidance", "2",
                          "--lr", "3e-5", "--prediction", "v",
                          "--distance", "pseudo_huber", "--weighting", "ict"])
    assert "distilled 3 steps" in out
    saved = yaml.safe_load((student / "config.yaml").read_text())
    assert saved["family"] == "consistency" and saved["cond"] == "label" and saved["lr"] == 3e-5
    assert saved["ema_decay"] == 0.999  # the recipe fills what --lr leaves unset
    model, _ = load_run(student)
    assert isinstance(model, ConsistencyModel) and model.config.guidance == 2.0
    assert model.config.prediction == "v" and model.config.distance == "pseudo_huber"
    assert model.config.weighting == "ict"
    teacher_model, _ = load_run(teacher)
    for name, value in teacher_model.state_dict().items():  # the frozen teacher is the run's
        assert torch.equal(model.teacher.state_dict()[name], value), name
    _, err = _ok(capsys, ["sample", str(student), "--steps", "1", "-n", "2", "--class",
                          "malignant", "--out", str(tmp_path / "s1")])
    assert "warning" not in err
    assert (tmp_path / "s1/grid.png").is_file() and (tmp_path / "s1/sample_0001.nii.gz").is_file()
    x = model.sample(2, cond=torch.tensor([0, 2]), steps=4, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 16, 16) and x.abs().max() <= 1
    _ok(capsys, ["train", "--resume", str(student), "--steps", "4"])
    assert yaml.safe_load((student / "config.yaml").read_text())["steps"] == 4
    cli_refuses(["sample", str(student), "--sampler", "ddim", "--out", str(tmp_path / "s2")],
           "sampler='ddim'")
    cli_refuses(["distill", str(teacher), "--out", str(student)], "already holds a run")


def test_one_step_of_a_non_distilled_run_warns_in_one_line(capsys, tmp_path, teacher):
    _, err = _ok(capsys, ["sample", str(teacher), "--steps", "1", "-n", "1",
                          "--out", str(tmp_path / "s")])
    lines = [line for line in err.splitlines() if "warning" in line]
    assert len(lines) == 1 and "blurry mean" in lines[0] and "genmed distill" in lines[0]
    _, err = _ok(capsys, ["sample", str(teacher), "--steps", "2", "-n", "1",
                          "--out", str(tmp_path / "s2")])
    assert "warning" not in err


def test_bad_distill_requests_are_one_line(cli_refuses, tmp_path, teacher):
    from genmed.config import save_config
    from genmed.train import TrainConfig

    vae = tmp_path / "vae"
    save_config(TrainConfig(family="vae", out=str(vae)), vae / "config.yaml")
    cli_refuses(["distill", str(vae), "--out", str(tmp_path / "s")],
           "a vae run cannot be distilled")
    cli_refuses(["distill", str(teacher), "--out", str(tmp_path / "s"), "--method",
                    "progressive"], "--method='progressive'")
    cli_refuses(["distill", str(teacher), "--out", str(tmp_path / "s"), "--prediction", "x0"],
                "prediction='x0'")
    cli_refuses(["distill", str(teacher), "--out", str(tmp_path / "s"), "--weighting", "snr"],
                "weighting='snr'")
    cli_refuses(["distill", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")],
           "run directory not found")
    cli_refuses(["distill", str(teacher), "--out", str(teacher)], "a run folder of its own")
    cli_refuses(["distill", str(teacher), "--out", str(teacher / "student")], "inside the teacher's")
    cli_refuses(["distill", str(teacher), "--out", str(teacher.parent)], "nor holding it")
    cli_refuses(["train", "--family", "consistency", "--size", "16", "--out",
                    str(tmp_path / "c")], "genmed distill TEACHER_RUN")
    assert not (tmp_path / "s").exists() and not (tmp_path / "c").exists()


def test_guidance_on_an_unconditional_teacher_is_refused(cli_refuses, tmp_path):
    """The teacher gets no labels, so the scale was silently ignored (a student trained, exit 0)."""
    config = tmp_path / "teacher.yaml"
    config.write_text(yaml.safe_dump({**TINY, "cond": "none"}))
    with pytest.raises(SystemExit):
        main(["train", "--config", str(config), "--steps", "1", "--out", str(tmp_path / "teacher")])
    cli_refuses(["distill", str(tmp_path / "teacher"), "--out", str(tmp_path / "s"), "--steps", "1",
                 "--batch-size", "4", "--num-scales", "10", "--guidance", "3"], "not class-conditional")
    assert not (tmp_path / "s").exists()
