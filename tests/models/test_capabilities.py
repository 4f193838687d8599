"""The registry's recipes and capabilities: callers ask, never guess; impossible requests are
refused before any training."""

from __future__ import annotations

import pytest

from genmed.cli import main
from genmed.errors import UserError
from genmed.models import REGISTRY, capabilities, check_request, recipe
from genmed.train import TrainConfig


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_entry_has_a_default_recipe_and_consistent_capabilities(name: str) -> None:
    spec = REGISTRY[name]
    assert "default" in spec.recipes and recipe(name).lr > 0
    assert recipe(name, "no-such-preset") == recipe(name)
    assert spec.model.family == name  # the saved family name rebuilds this class
    caps = spec.capabilities
    assert caps.guidance <= bool(caps.samplers)  # guidance needs a sampler that applies it
    if not caps.generative:
        assert caps.conditioning == ("none",) and not caps.samplers


def test_train_config_takes_unset_settings_from_the_family_recipe() -> None:
    gan = TrainConfig(family="gan", steps=1000)
    assert gan.betas == (0.5, 0.999) and gan.lr == recipe("gan").lr
    assert TrainConfig(family="gan", steps=1000, betas=(0.9, 0.99)).betas == (0.9, 0.99)
    short = TrainConfig(family="diffusion", recipe="short", steps=100)
    assert (short.lr, short.warmup, short.ema_decay) == (2e-3, 10, 0.999)
    assert TrainConfig(family="diffusion", recipe="short", steps=1000).warmup == 20


def test_impossible_requests_are_refused_up_front() -> None:
    with pytest.raises(UserError, match="cannot be conditioned on 'label'"):
        TrainConfig(family="vae", cond="label")
    with pytest.raises(UserError, match="sampler='euler'"):
        check_request("diffusion", sampler="euler")
    with pytest.raises(UserError, match="takes no sampler"):
        check_request("gan", sampler="ddim")
    with pytest.raises(UserError, match="guidance"):
        check_request("vae", guidance=2.0)
    check_request("diffusion", cond="image", sampler="dpmpp_2m_sde", guidance=3.0)
    assert "label" in capabilities("gan").conditioning


def test_cli_refuses_a_vae_with_labels_before_training(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--family", "vae", "--cond", "label", "--size", "16", "--steps", "2",
              "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "vae" in err
    assert not out.exists()


def test_a_supervised_model_cannot_train_on_images_alone(tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--family", "segmenter", "--size", "16", "--steps", "2",
              "--out", str(tmp_path / "seg")])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2 and len(err.splitlines()) == 1 and "needs targets" in err
