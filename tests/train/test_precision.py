"""`auto` precision follows the CPU's bf16 support; an explicit bf16 without it is warned."""

from __future__ import annotations

import pytest

from genmed.train import precision


@pytest.mark.parametrize("flags, expected", [({"avx2"}, "fp32"), ({"avx2", "avx512_bf16"}, "bf16"),
                                             ({"amx_bf16"}, "bf16")])
def test_auto_picks_bf16_only_where_native(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert precision.resolve_numerics("cpu", "auto").precision == expected


def test_explicit_bf16_without_native_support_warns_once_per_call(monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})
    assert precision.resolve_numerics("cpu", "bf16").precision == "bf16"  # honoured, but warned
    err = capsys.readouterr().err
    assert err.count("genmed: warning:") == 1 and "slow reference kernel" in err


def test_native_bf16_and_fp32_are_not_warned(monkeypatch, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
    precision.resolve_numerics("cpu", "bf16")
    precision.resolve_numerics("cpu", "fp32")
    assert capsys.readouterr().err == ""
