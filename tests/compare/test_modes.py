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
