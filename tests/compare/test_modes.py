"""`genmed compare modes --quick`: the mode-collapse table has the published keys; exact samples score 8/8."""

from __future__ import annotations

import json

import pytest

from genmed.cli import main
from genmed.compare.modes import ModeBenchConfig, table_rows
from genmed.errors import UserError


def _run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


def test_quick_mode_benchmark_table(tmp_path, capsys):
    out = tmp_path / "modes"
    assert _run(["compare", "modes", "--quick", "--mixtures", "ring", "--seeds", "2", "--steps", "60",
                 "--n-samples", "4000", "--out", str(out)]) == 0
    result = json.loads((out / "modes.json").read_text())
    cells = {r["variant"]: r for r in result["table"]}
    assert set(cells) == {"exact", "diffusion", "gan_dcgan", "gan_pacgan4", "gan_hinge_sn", "vae"}
    for cell in cells.values():
        for key in ("modes_captured", "modes_captured_strict", "high_quality", "reverse_kl"):
            assert set(cell[key]) == {"mean", "sem", "n"}
    exact = cells["exact"]
    assert exact["modes_captured"]["mean"] == 8 and exact["modes_captured_strict"]["mean"] == 8
    assert 0.97 < exact["high_quality"]["mean"] < 1.0 and exact["reverse_kl"]["mean"] < 0.01
    assert len(result["runs"]) == 12 and all(r["n_samples"] == 4000 for r in result["runs"])
    assert (out / "modes.png").is_file()
    printed = capsys.readouterr().out
    assert "PacGAN4 (PacGAN Table 1)" in printed and "| ring (8 modes) | exact | 8.0 ± 0.0 |" in printed
    rows = table_rows(result)
    assert {"mixture", "model", "modes captured", "modes, strict 1%", "high quality %", "reverse KL"} == set(rows[0])


def test_bad_variant_exits_2(tmp_path, capsys):
    out = tmp_path / "modes"
    assert _run(["compare", "modes", "--quick", "--variants", "gan,wgan", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "variant='gan' is not one of" in err and "\n" not in err
    assert not out.exists()


def test_eval_modes_is_a_deprecated_alias(tmp_path, capsys):
    """`genmed eval modes` (before issue 12) forwards to `genmed compare modes` for one release."""
    assert _run(["eval", "modes", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "Deprecated alias of `genmed compare modes`; will be removed in the next release." in help_text
    out = tmp_path / "modes"
    assert _run(["eval", "modes", "--quick", "--variants", "gan,wgan", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "deprecated" in err and "genmed compare modes" in err and "variant='gan' is not one of" in err
    assert not out.exists()


def test_config_rejects_bad_numbers():
    with pytest.raises(UserError, match="seeds=0 must be > 0"):
        ModeBenchConfig(seeds=0)
    with pytest.raises(UserError, match="mixture='spiral'"):
        ModeBenchConfig(mixtures=("spiral",))


def test_variant_training_overrides_reach_the_run(tmp_path):
    """`TRAINING` changes a variant's optimiser and EMA; the others keep the "toy" recipe."""
    from genmed.compare.modes import TRAINING, VARIANTS, train_variant
    from genmed.train.run import load_config_of

    cfg = ModeBenchConfig(variants=("gan_resnet_r1_res_z2_sg2", "gan_resnet_r1_res_z2"), seeds=1,
                          steps=3, n_train=64, batch_size=16, hidden=8, depth=1, out=str(tmp_path))
    assert TRAINING["gan_resnet_r1_res_z2_sg2"]["betas"] == (0.0, 0.99)
    assert VARIANTS["gan_resnet_r1_res_z2_sg2"][1] == VARIANTS["gan_resnet_r1_res_z2"][1]
    seen = {}
    for v in cfg.variants:
        model = train_variant(v, "ring", 0, cfg)
        assert model.config.residual_mlp and model.config.latent_dim == 2
        seen[v] = load_config_of(tmp_path / "runs" / f"ring-{v}-seed0")
    sg2, toy = seen["gan_resnet_r1_res_z2_sg2"], seen["gan_resnet_r1_res_z2"]
    assert (tuple(sg2.betas), sg2.schedule, sg2.warmup, sg2.grad_clip, sg2.ema_decay) == \
        ((0.0, 0.99), "constant", 0, 0.0, 0.999)
    assert (tuple(toy.betas), toy.schedule, toy.ema_decay, toy.lr) == ((0.5, 0.999), "cosine", 0.0, 1e-3)
    assert sg2.lr == toy.lr  # the same peak learning rate
    from genmed.compare.modes import _ema

    assert _ema(ModeBenchConfig(ema_decay=0.0), "gan_resnet_r1_res_z2_sg2") == 0.0  # the config's wins


def test_the_stabilised_gan_is_the_full_recipe():
    """Issue 14: the variant the docs point to has R1, minibatch std, residual nets, latent 2."""
    from genmed.compare.modes import STABILISED_GAN, TRAINING, VARIANTS
    from genmed.models import build_model

    family, options = VARIANTS[STABILISED_GAN]
    cfg = build_model(family, data_kind="vector", size=2, **options).config
    assert (cfg.variant, cfg.r1_gamma, cfg.r1_every, cfg.mbstd_group) == ("resnet_r1", 0.1, 16, 4)
    assert cfg.residual_mlp and cfg.latent_dim == 2 and STABILISED_GAN not in TRAINING
