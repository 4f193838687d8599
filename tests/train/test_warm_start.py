"""`genmed train --init RUN`: a new run that starts from a trained run's weights (fine-tuning),
with a fresh optimiser and step count; parts a recipe adds or drops are allowed, any other
difference is a one-line error before training."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from genmed.errors import UserError
from genmed.train import TrainConfig, load_run, train
from genmed.train.engine import build_model
from genmed.train.warm_start import warm_start

# an autoencoder with its adversarial term (two phases) and the same network without it
AE = {"channels": [4, 4], "norm_num_groups": 4, "latent_channels": 2, "adv_weight": 0.01,
      "adv_warmup_steps": 1, "disc_layers": 2, "disc_channels": 4}
TINY = {"family": "autoencoder", "size": 16, "n_patients": 4, "batch_size": 8, "warmup": 0,
        "sample_n": 2, "precision": "fp32", "lr": 3e-3}


def _losses(run) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r.get("main/loss", r.get("generator/rec")) for r in rows if "step" in r]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 60-step adversarial autoencoder run."""
    run = tmp_path_factory.mktemp("warm") / "source"
    train(TrainConfig(**TINY, steps=60, log_every=1, options=AE, out=str(run)))
    return run


def test_copies_the_ema_weights_and_leaves_behind_a_dropped_discriminator(trained, tmp_path):
    source, _ = load_run(trained)  # EMA weights
    cfg = TrainConfig(**TINY, steps=1, options={**AE, "adv_weight": 0.0}, out=str(tmp_path / "b"))
    fresh = build_model(cfg)
    assert fresh.discriminator is None
    copied, total = warm_start(fresh, trained, "autoencoder")
    assert copied == total == len(fresh.state_dict())
    for key, value in fresh.net.state_dict().items():
        assert torch.equal(value, source.net.state_dict()[key]), key


def test_a_warm_started_run_begins_where_the_source_ended(trained, tmp_path):
    """Fine-tuning without the adversarial term: the first losses are those of a trained
    model, far below a fresh run's at the same seed."""
    base = {**TINY, "steps": 3, "log_every": 1, "options": {**AE, "adv_weight": 0.0}}
    warm, cold = tmp_path / "warm", tmp_path / "cold"
    train(TrainConfig(**base, init=str(trained), out=str(warm)))
    train(TrainConfig(**base, out=str(cold)))
    assert max(_losses(warm)) < 0.5 * min(_losses(cold))
    assert min(_losses(trained)[-5:]) < 2 * _losses(warm)[0]
    recorded = yaml.safe_load((warm / "config.yaml").read_text())
    assert recorded["init"] == str(trained) and recorded["steps"] == 3  # its own step count


def test_an_added_discriminator_starts_fresh(trained, tmp_path):
    plain = tmp_path / "plain"
    train(TrainConfig(**TINY, steps=2, options={**AE, "adv_weight": 0.0}, out=str(plain)))
    cfg = TrainConfig(**TINY, steps=1, options=AE, out=str(tmp_path / "adv"))
    model = build_model(cfg)
    copied, total = warm_start(model, plain, "autoencoder")
    assert copied == len(model.net.state_dict()) < total  # the discriminator's tensors are new


@pytest.mark.parametrize("change, message", [
    ({"latent_channels": 3}, "must match"),            # same names, other shapes
    ({"channels": [4, 4, 4]}, "network differs"),       # another depth
])
def test_other_networks_are_refused(trained, tmp_path, change, message):
    cfg = TrainConfig(**TINY, steps=1, options={**AE, **change}, out=str(tmp_path / "x"))
    with pytest.raises(UserError, match=message):
        warm_start(build_model(cfg), trained, "autoencoder")


def test_cli_refuses_a_foreign_family_a_missing_run_or_a_resume_before_training(trained, tmp_path, cli_refuses):
    cli_refuses(["train", "--family", "vae", "--size", "16", "--steps", "1", "--init", str(trained),
                 "--out", str(tmp_path / "v")], "trained as family 'autoencoder', not 'vae'")
    cli_refuses(["train", "--family", "vae", "--size", "16", "--steps", "1",
                 "--init", str(tmp_path / "nowhere"), "--out", str(tmp_path / "w")], "not found")
    cli_refuses(["train", "--resume", str(trained), "--init", str(trained)], "drop init")
    assert not (tmp_path / "v").exists() and not (tmp_path / "w" / "config.yaml").exists()
    with pytest.raises(UserError, match="reuse a trained stage one"):
        TrainConfig(family="ldm", size=16, init=str(trained))
