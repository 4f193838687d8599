"""`genmed compare --quick`: trains the three families, writes report.html + metrics.json."""

from __future__ import annotations

import json

import pytest

from genmed.cli import main

QUICK = ["compare", "--quick", "--n-patients", "10", "--budget-images", "320", "--n-samples", "24",
         "--study-n", "12", "--n-boot", "5"]


def _run(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "out"
    with pytest.raises(SystemExit) as exc:
        main([*QUICK, "--out", str(out)])
    assert exc.value.code == 0
    return out


def test_quick_compare_writes_report_and_metrics(quick_run):
    result = json.loads((quick_run / "metrics.json").read_text())
    assert set(result["families"]) == {"diffusion", "gan", "vae"}
    assert result["budget"]["kind"] == "images" and "320" in result["budget"]["statement"]
    for family, r in result["families"].items():
        assert r["images_seen"] == 320, family  # equal budget: 10 steps of 32 images each
        quality, diversity = set(r["quality"]), set(r["diversity"])
        assert {"fid", "kid", "precision", "density"} <= quality
        assert {"recall", "coverage", "intra_ms_ssim_fake"} <= diversity
        assert not quality & diversity  # quality and diversity are separate numbers
        fid = r["quality"]["fid"]
        assert fid["low"] <= fid["high"] and fid["value"] > 0  # percentile CI: may not hold the value
        assert 0 <= r["memorisation"]["share_flagged"] <= 1
        assert r["sampling_seconds_per_image"] > 0
    ext = result["extractor"]
    assert ext["name"] == "genmed-phantom-cnn-v1" and len(ext["weights_hash"]) == 64
    study = result["sampler_study"]
    assert [(r["sampler"], r["steps"]) for r in study["rows"]] == [("ddpm", 200), ("ddim", 10), ("dpmpp_2m", 10)]
    # the full chain costs more network evaluations, hence more time per image, than 10 steps
    assert study["rows"][0]["nfe"] == 200 and study["rows"][0]["seconds_per_image"] > study["rows"][2]["seconds_per_image"]
    html = (quick_run / "report.html").read_text()
    for heading in ("Quality (fidelity)", "Diversity", "Memorisation", "Training curves", "sampler study",
                    "Settings and versions"):
        assert heading in html
    assert ext["weights_hash"] in html and "genmed-phantom-cnn-v1" in html
    assert "n/a" not in html  # every metric cell is filled
    for png in ("real", "samples_diffusion", "samples_gan", "samples_vae", "precision_recall",
                "training_curves", "sampler_study", "memorisation_gan"):
        assert (quick_run / "img" / f"{png}.png").is_file()
    assert (quick_run / "runs" / "gan" / "metrics.jsonl").is_file()


def test_the_gan_arm_is_the_stabilised_gan_with_its_own_recipe(quick_run):
    """Issue 14: `compare` uses each family's best recipe: "gan" is the resnet_r1 GAN (R1,
    minibatch std, DiffAugment) trained by StyleGAN2's Adam betas, not the DCGAN preset."""
    import numpy as np

    from genmed.train.run import load_config_of

    gan = load_config_of(quick_run / "runs" / "gan")
    assert gan.options["variant"] == "resnet_r1" and gan.betas == (0.0, 0.99)
    assert load_config_of(quick_run / "runs" / "vae").betas != (0.0, 0.99)
    with np.load(quick_run / "samples.npz") as samples:  # the measured samples, for audits
        assert set(samples.files) == {"diffusion", "gan", "vae"}
        assert samples["gan"].shape == (24, 1, 32, 32) and np.abs(samples["gan"]).max() <= 1


def test_the_gan_arm_trains_at_biggans_rates(quick_run):
    """The comparison's stabilised GAN: G at 5e-5 and D at 4x that (BigGAN's rates, the
    registry's "resnet_r1:compare"; results/families_48k.json), recorded in the run; the
    variant's own recipe elsewhere (genmed train) and the baseline GANs keep one rate of 2e-4."""
    from genmed.models import recipe
    from genmed.train.run import load_config_of

    gan = load_config_of(quick_run / "runs" / "gan")
    assert gan.lr == pytest.approx(5e-5) and gan.options["d_lr_scale"] == 4.0
    assert recipe("gan", "compare", "resnet_r1").lr == pytest.approx(5e-5)
    assert recipe("gan", "default", "resnet_r1").lr == recipe("gan", "compare", "dcgan").lr == pytest.approx(2e-4)


def test_baseline_gans_are_arms_of_their_own(tmp_path):
    out = tmp_path / "base"
    assert _run([*QUICK, "--families", "dcgan,sngan", "--budget-images", "64", "--n-samples", "16",
                 "--out", str(out)]) == 0
    result = json.loads((out / "metrics.json").read_text())
    assert {arm: r["options"]["variant"] for arm, r in result["families"].items()} == \
        {"dcgan": "dcgan", "sngan": "hinge_sn"}
    assert result["sampler_study"] is None  # no diffusion arm


def test_a_run_of_another_gan_variant_is_refused(quick_run, tmp_path, capsys):
    out = tmp_path / "again"
    assert _run([*QUICK, "--families", "sngan", "--runs", str(quick_run / "runs" / "gan"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a resnet_r1 GAN" in err and "sngan (hinge_sn)" in err and "\n" not in err
    assert not (out / "metrics.json").exists()


def test_runs_must_match_families(quick_run, tmp_path, capsys):
    runs = ",".join(str(quick_run / "runs" / f) for f in ("gan", "diffusion", "vae"))
    out = tmp_path / "again"
    assert _run([*QUICK, "--runs", runs, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("genmed: error:") and "is a gan run" in err and "\n" not in err
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize("extra, message", [
    (["--families", "diffusion,flow"], "family='flow' is not one of"),
    (["--budget-images", "0"], "budget_images=0 must be > 0"),
    (["--budget-images", "100", "--budget-seconds", "5"], "not both"),
    (["--budget-seconds", "-1"], "budget_seconds=-1.0 must be > 0"),
])
def test_bad_input_exits_2_without_output(tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert _run(["compare", "--quick", *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_run_is_the_default_command(tmp_path, capsys):
    """`genmed compare [OPTIONS]` (as before `modes` joined it) is `genmed compare run [OPTIONS]`."""
    assert _run(["compare", "--help"]) == 0
    listing = capsys.readouterr().out
    assert "run" in listing and "modes" in listing
    out = tmp_path / "out"
    for argv in (["compare"], ["compare", "run"]):
        assert _run([*argv, "--quick", "--families", "diffusion,flow", "--out", str(out)]) == 2
        assert "family='flow' is not one of" in capsys.readouterr().err
    assert _run(["compare", "--quick"]) == 2  # --out is still required
    assert "Missing option '--out'" in capsys.readouterr().err
    assert not out.exists()
