"""Latent diffusion in two engine runs: `genmed train --family ldm` trains the autoencoder into
RUN/autoencoder and the latent UNet into RUN (or reuses `--autoencoder RUN`); both load, resume
and sample like any run, 2D and 3D; bad requests are one-line errors before any training."""

from __future__ import annotations

import pytest
import torch
import yaml

from genmed.cli import main
from genmed.errors import UserError
from genmed.models import AutoencoderModel, LatentDiffusionModel
from genmed.train import DictDataset, TrainConfig, load_run, train

UNET = {"channels": [8, 16], "attention_levels": [False, True], "norm_num_groups": 4,
        "num_train_timesteps": 50, "sample_steps": 2}
# both autoencoder phases: the adversarial term starts after one step
AE = {"channels": [4, 4], "norm_num_groups": 4, "latent_channels": 2, "adv_weight": 0.01,
      "adv_warmup_steps": 1, "disc_layers": 2, "disc_channels": 4}
TINY = {"size": 16, "n_patients": 4, "batch_size": 8, "warmup": 0, "sample_n": 2,
        "precision": "fp32", "cond": "label"}


def _run(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    captured = capsys.readouterr()
    assert exc.value.code in (0, None), captured.err
    return captured.out


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_two_stages_train_load_sample_resume_and_reuse(capsys, tmp_path, cli_refuses):
    import nibabel as nib

    config = tmp_path / "ldm.yaml"
    config.write_text(yaml.safe_dump({"family": "ldm", **TINY, "options": {**UNET, "autoencoder": AE}}))
    run = tmp_path / "run"
    out = _run(capsys, ["train", "--config", str(config), "--steps", "2",
                        "--autoencoder-steps", "3", "--out", str(run)])
    assert "trained 2 steps" in out
    # stage one is an ordinary autoencoder run, stage two an ordinary run next to it
    ae, ae_cfg = load_run(run / "autoencoder")
    assert isinstance(ae, AutoencoderModel) and ae_cfg.steps == 3 and ae_cfg.family == "autoencoder"
    assert '"discriminator/loss"' in (run / "autoencoder/metrics.jsonl").read_text()
    ldm, cfg = load_run(run)
    assert isinstance(ldm, LatentDiffusionModel) and cfg.family == "ldm"
    assert _same_weights(ldm.autoencoder.net, ae.net)  # the trained stage one, frozen inside
    assert ldm.config.autoencoder_run == str((run / "autoencoder").resolve())
    assert ldm.config.scale_factor > 0 and ldm.config.scale_factor != 1.0
    assert (run / "samples/step-00000002.png").is_file()

    samples = tmp_path / "samples"
    _run(capsys, ["sample", str(run), "-n", "2", "--sampler", "dpmpp_2m", "--steps", "2",
                  "--guidance", "2.0", "--class", "malignant", "--out", str(samples)])
    images = sorted(samples.glob("sample_*.nii.gz"))
    assert len(images) == 2 and (samples / "grid.png").is_file()
    hu = nib.load(images[0]).get_fdata()
    assert hu.shape == (16, 16) and -1200 < hu.min() and hu.max() < 1300 and hu.max() - hu.min() > 2

    assert "trained 3 steps" in _run(capsys, ["train", "--resume", str(run), "--steps", "3"])
    assert _same_weights(load_run(run)[0].autoencoder.net, ae.net)

    # stage two again on the same autoencoder: no new stage one
    cli_refuses(["train", "--config", str(config), "--autoencoder", str(run / "autoencoder"),
                    "--out", str(tmp_path / "bad")], "drop options.autoencoder")
    reuse = tmp_path / "reuse.yaml"
    reuse.write_text(yaml.safe_dump({"family": "ldm", **TINY, "options": UNET}))
    run2 = tmp_path / "run2"
    _run(capsys, ["train", "--config", str(reuse), "--steps", "2", "--autoencoder",
                  str(run / "autoencoder"), "--out", str(run2)])
    assert not (run2 / "autoencoder").exists()
    assert _same_weights(load_run(run2)[0].autoencoder.net, ae.net)

    cli_refuses(["train", "--config", str(reuse), "--autoencoder", str(run2),
                    "--out", str(tmp_path / "bad")], "not an autoencoder run (family ldm)")
    cli_refuses(["train", "--config", str(reuse), "--size", "32", "--autoencoder",
                    str(run / "autoencoder"), "--out", str(tmp_path / "bad")],
           "trained at size=16, this run has size=32")
    cli_refuses(["train", "--config", str(reuse), "--autoencoder", str(run / "autoencoder"),
                    "--autoencoder-steps", "5", "--out", str(tmp_path / "bad")],
           "autoencoder_steps trains a new autoencoder")
    cli_refuses(["train", "--config", str(reuse), "--out", str(run)], "already holds a run")
    assert not (tmp_path / "bad").exists()


def test_bad_ldm_requests_fail_before_any_training(cli_refuses, tmp_path):
    bad = tmp_path / "bad"
    cli_refuses(["train", "--family", "ldm", "--size", "18", "--out", str(bad)], "size=18")
    cli_refuses(["train", "--family", "vae", "--autoencoder", str(tmp_path), "--out", str(bad)],
           "only for the ldm family")
    config = tmp_path / "c.yaml"  # a latent UNet option error found before stage one trains
    config.write_text(yaml.safe_dump({"family": "ldm", **TINY, "options": {**UNET, "sampler": "euler"}}))
    cli_refuses(["train", "--config", str(config), "--out", str(bad)], "sampler='euler'")
    assert not bad.exists()
    from genmed.train.engine import train as engine_train

    with pytest.raises(UserError, match="trains on a trained autoencoder in stages"):
        engine_train(TrainConfig(family="ldm", size=16, steps=1, out=str(bad)))


def test_two_stages_in_3d_from_python(tmp_path):
    torch.manual_seed(0)
    volumes = torch.rand(8, 1, 16, 16, 16) * 2 - 1
    cfg = TrainConfig(family="ldm", data="memory", spatial_dims=3, size=16, steps=2,
                      autoencoder_steps=2, batch_size=4, precision="fp32", device="cpu",
                      sample_n=1, options={**UNET, "autoencoder": {**AE, "adv_weight": 0.0}},
                      out=str(tmp_path / "run3d"))
    result = train(cfg, dataset=DictDataset(image=volumes))
    assert result.step == 2
    model, _ = load_run(tmp_path / "run3d")
    x = model.sample(1, steps=2, sampler="ddim", generator=torch.Generator().manual_seed(0))
    assert x.shape == (1, 1, 16, 16, 16) and x.abs().max() <= 1


def test_resumed_stage_two_equals_an_uninterrupted_one(tmp_path):
    """A resumed ldm trains on the latents of its trained autoencoder (restored before they are
    encoded), so stopping at step 2 and resuming to 4 gives the weights of one 4-step run."""
    from safetensors.torch import load_file

    from genmed.train import resume

    tiny = {**TINY, "schedule": "constant", "ckpt_every": 2, "keep_checkpoints": 5}
    ae_run = tmp_path / "ae"
    torch.manual_seed(0)
    train(TrainConfig(family="autoencoder", steps=2, out=str(ae_run), options={**AE, "adv_weight": 0.0},
                      **{**tiny, "cond": "none"}))
    runs = {}
    for name, steps in (("whole", 4), ("resumed", 2)):
        runs[name] = tmp_path / name
        torch.manual_seed(1)  # the UNet is built before the engine seeds: the same start for both
        train(TrainConfig(family="ldm", steps=steps, autoencoder=str(ae_run), out=str(runs[name]),
                          options=UNET, **tiny))
    resume(runs["resumed"], steps=4)
    name = "checkpoints/step-00000004.model.safetensors"
    a, b = load_file(runs["whole"] / name), load_file(runs["resumed"] / name)
    start = load_file(runs["whole"] / "checkpoints/step-00000002.model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a[k], start[k]) for k in a)  # the last two steps moved the UNet
