"""`genmed train` / `genmed sample`: bad input is one line on stderr, exit 2, nothing written."""

from __future__ import annotations

import pytest

from genmed.cli import main

from .toys import Blobs, ToyDenoiser, toy_config


def test_help_lists_train_and_sample(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "train" in out and "sample" in out


def test_unknown_family_writes_nothing(cli_refuses, tmp_path):
    cli_refuses(["train", "--family", "flow", "--out", str(tmp_path / "run")],
           "family='flow' is not one of")
    assert not (tmp_path / "run").exists()


def test_bad_option_values(cli_refuses, tmp_path):
    out = str(tmp_path / "run")
    cli_refuses(["train", "--precision", "fp8", "--out", out], "precision='fp8'")
    cli_refuses(["train", "--spatial-dims", "4", "--out", out], "spatial_dims=4")
    cli_refuses(["train", "--steps", "0", "--out", out], "steps=0 must be > 0")
    cli_refuses(["train", "--family", "gan"], "--out RUN_DIR is required")
    assert not (tmp_path / "run").exists()


def test_config_file_errors(cli_refuses, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text("family: gan\nlearning_rate: 0.1\n")
    cli_refuses(["train", "--config", str(cfg), "--out", str(tmp_path / "r")],
           "unknown key(s) learning_rate")
    cli_refuses(["train", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "r")],
           "config file not found")


@pytest.mark.parametrize("setup, text", [
    (lambda out: (out / "checkpoints").mkdir(parents=True) or (out / "checkpoints" / "step-00000002.json")
     .write_text("{}"), "already holds a run"),
    (lambda out: out.write_text("mine"), "not a folder"),
    (lambda out: out.parent.joinpath("f").write_text("x"), "is a file, not a folder"),
], ids=["a run", "a file", "under a file"])
def test_out_is_refused_before_the_data_is_read(cli_refuses, tmp_path, monkeypatch, setup, text):
    import genmed.train.commands as commands

    def no_data(*a, **k):
        raise AssertionError("read the data before checking --out")

    monkeypatch.setattr(commands, "_data_with_summary", no_data)
    out = tmp_path / "run"
    setup(out)
    if text == "is a file, not a folder":
        out = tmp_path / "f" / "run"
    cli_refuses(["train", "--family", "vae", "--size", "16", "--steps", "2", "--out", str(out)], text)


def test_resume_to_fewer_steps_is_refused_before_the_data_is_read(cli_refuses, tmp_path, monkeypatch):
    import json

    import genmed.train.commands as commands

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("family: vae\nsize: 16\nsteps: 4\n")
    (run / "checkpoints" / "step-00000004.json").write_text(json.dumps({"step": 4}))

    def no_data(*a, **k):
        raise AssertionError("read the data before checking --steps")

    monkeypatch.setattr(commands, "_data_with_summary", no_data)
    cli_refuses(["train", "--resume", str(run), "--steps", "1"], "already trained 4 steps")


def test_batch_larger_than_the_data_leaves_no_run_folder(cli_refuses, tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("n_patients: 2\noptions: {channels: [8, 16], latent_dim: 8}\n")
    cli_refuses(["train", "--config", cfg, "--family", "vae", "--size", "16", "--steps", "2",
                 "--batch-size", "256", "--out", tmp_path / "run"], "fewer than batch_size=256")
    assert not (tmp_path / "run").exists()


def test_resume_and_sample_need_a_run(cli_refuses, tmp_path):
    cli_refuses(["train", "--resume", str(tmp_path / "nowhere")], "run directory not found")
    cli_refuses(["sample", str(tmp_path / "nowhere"), "--out", str(tmp_path / "s")],
           "run directory not found")
    (tmp_path / "empty").mkdir()
    cli_refuses(["sample", str(tmp_path / "empty"), "--out", str(tmp_path / "s")],
           "no config.yaml")
    assert not (tmp_path / "s").exists()


def test_resume_rejects_other_options_and_foreign_sidecar(cli_refuses, tmp_path):
    from genmed.train import train

    run = train(toy_config(str(tmp_path / "run"), 4), model=ToyDenoiser(), dataset=Blobs()).run_dir
    cli_refuses(["train", "--resume", str(run), "--family", "gan"],
           "--resume takes only --steps; drop family")
    (run / "checkpoints/step-00000004.json").write_text('{"format": "other"}')
    cli_refuses(["sample", str(run), "--out", str(tmp_path / "s")],
           "not a genmed-checkpoint/1 checkpoint")
    cli_refuses(["sample", str(run), "-n", "0", "--out", str(tmp_path / "s")], "-n 0")
    assert not (tmp_path / "s").exists()


def test_size_the_network_cannot_use_is_exit_2(cli_refuses, tmp_path):
    cli_refuses(["train", "--family", "gan", "--size", "24", "--out", str(tmp_path / "run")],
           "size=24")
    assert not (tmp_path / "run").exists()


def test_train_then_sample_a_real_family_on_the_phantom(capsys, tmp_path, cli_refuses):
    import nibabel as nib
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "family": "diffusion", "size": 16, "n_patients": 4, "batch_size": 8, "warmup": 0,
        "sample_n": 4, "cond": "label",
        "options": {"channels": [16, 16], "attention_levels": [False, False],
                    "norm_num_groups": 8, "sample_steps": 2}}))
    run = tmp_path / "run"
    main_ok = ["train", "--config", str(config), "--steps", "3", "--precision", "fp32",
               "--channels-last", "--out", str(run)]
    with pytest.raises(SystemExit) as exc:
        main(main_ok)
    assert exc.value.code in (0, None), capsys.readouterr().err
    assert "trained 3 steps" in capsys.readouterr().out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["steps"] == 3 and saved["size"] == 16 and saved["options"]["channels"] == [16, 16]
    assert saved["channels_last"] is True and saved["compile"] is False
    assert (run / "samples/step-00000003.png").is_file()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(run), "--steps", "4"])
    assert exc.value.code in (0, None) and "trained 4 steps" in capsys.readouterr().out

    out = tmp_path / "samples"
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(run), "-n", "3", "--sampler", "ddim", "--steps", "2",
              "--guidance", "2.0", "--class", "malignant", "--precision", "fp32", "--out", str(out)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    images = sorted(out.glob("sample_*.nii.gz"))
    assert len(images) == 3 and (out / "grid.png").is_file()
    hu = nib.load(images[0]).get_fdata()
    assert hu.shape == (16, 16) and -1200 < hu.min() and hu.max() < 1300  # HU, not [-1, 1]
    assert hu.max() - hu.min() > 2
    fast = tmp_path / "samples-compiled"  # the same draw through torch.compile, channels-last
    with pytest.raises(SystemExit) as exc:
        main(["sample", str(run), "-n", "3", "--sampler", "ddim", "--steps", "2", "--guidance",
              "2.0", "--class", "malignant", "--precision", "fp32", "--compile", "--channels-last",
              "--out", str(fast)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    hu_fast = nib.load(sorted(fast.glob("sample_*.nii.gz"))[0]).get_fdata()
    assert abs(hu_fast - hu).max() < 0.5  # HU; float32 rounding through a fused graph
    cli_refuses(["sample", str(run), "--class", "kidney", "--out", str(tmp_path / "s2")],
           "--class 'kidney' is not one of")
    cli_refuses(["sample", str(run), "--sampler", "euler", "--out", str(tmp_path / "s2")],
           "sampler='euler'")
    cli_refuses(["sample", str(run), "--precision", "fp64", "--out", str(tmp_path / "s2")],
           "--precision")
    cli_refuses(["sample", str(run), "--guidance", "3", "--out", str(tmp_path / "s2")],  # was ignored
                "without --class it changes nothing")
    cli_refuses(["sample", str(run), "--temperature", "1.5", "--out", str(tmp_path / "s2")],
                "takes no latent temperature")  # a GAN option, not a diffusion one
    cli_refuses(["sample", str(run), "--temperature", "0", "--out", str(tmp_path / "s2")],
                "--temperature=0.0 must be in (0, 4]")
    assert not (tmp_path / "s2").exists()


def test_gan_samples_at_a_latent_temperature(capsys, tmp_path):
    """`genmed sample --temperature` reaches the GAN: the same seed at T = 0.25 draws images
    closer together than at T = 2 (the truncation direction), in HU NIfTI files."""
    import nibabel as nib
    import numpy as np
    import yaml

    config = tmp_path / "gan.yaml"
    config.write_text(yaml.safe_dump({
        "family": "gan", "size": 32, "n_patients": 4, "batch_size": 8, "warmup": 0, "sample_n": 4,
        "options": {"variant": "resnet_r1", "latent_dim": 8, "base_channels": 8, "max_channels": 16}}))
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(config), "--steps", "2", "--precision", "fp32", "--out", str(run)])
    assert exc.value.code in (0, None), capsys.readouterr().err
    spread = {}
    for t in ("0.25", "2"):
        out = tmp_path / f"T{t}"
        with pytest.raises(SystemExit) as exc:
            main(["sample", str(run), "-n", "8", "--temperature", t, "--precision", "fp32",
                  "--out", str(out)])
        assert exc.value.code in (0, None), capsys.readouterr().err
        hu = np.stack([nib.load(p).get_fdata() for p in sorted(out.glob("sample_*.nii.gz"))])
        spread[t] = hu.std(0).mean()
    assert spread["0.25"] < 0.5 * spread["2"], spread
