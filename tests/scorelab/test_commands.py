"""`genmed score ...`: outputs written; bad input is one line on stderr, exit 2, no output left."""

from __future__ import annotations

import json
import pytest

from genmed.cli import main


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code, capsys.readouterr()


def test_gmm_writes_outputs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["score", "gmm", "--out", str(tmp_path), "--means=-2,2", "--t", "0,0.5", "--process", "vp"])
    assert exc.value.code in (0, None)
    for name in ("gmm.png", "gmm.csv", "gmm.json", "gmm.txt"):
        assert (tmp_path / name).stat().st_size > 0
    header = (tmp_path / "gmm.csv").read_text().splitlines()[0]
    assert header == "x,density_t0,score_t0,density_t0.5,score_t0.5"
    data = json.loads((tmp_path / "gmm.json").read_text())
    assert data["times"][1]["peak_density"] < data["times"][0]["peak_density"]


def test_experiment_commands_write_outputs(tmp_path, capsys):
    args = {
        "dsm-vs-esm": ["--n-eval", "500", "--n-random", "2", "--train-steps", "20", "--checkpoint-every", "10"],
        "manifold": ["--n-samples", "20", "--train-steps", "20", "--steps-each", "3", "--n-levels", "3"],
        "samplers": ["--n", "50", "--n-steps", "10", "--levels", "3", "--steps-each", "5"],
    }
    files = {"dsm-vs-esm": "dsm", "manifold": "manifold", "samplers": "samplers"}
    for cmd, extra in args.items():
        out = tmp_path / cmd
        with pytest.raises(SystemExit) as exc:
            main(["score", cmd, "--out", str(out), *extra])
        assert exc.value.code in (0, None), cmd
        for suffix in ("json", "png", "txt"):
            assert (out / f"{files[cmd]}.{suffix}").stat().st_size > 0, (cmd, suffix)


BAD = [
    ["gmm", "--weights", "0.3,0.6"],
    ["gmm", "--stds", "0.5,-1"],
    ["gmm", "--means", "0,1,2"],
    ["gmm", "--t=-0.5"],
    ["gmm", "--t", "2", "--process", "vp"],
    ["gmm", "--process", "vx"],
    ["gmm", "--weights", "a,b"],
    ["dsm-vs-esm", "--n-eval", "0"],
    ["manifold", "--sigma-min", "5"],
    ["dsm-vs-esm", "--seed", str(2**64)],  # was a torch.manual_seed overflow traceback
    ["manifold", "--seed", str(2**64)],
    ["samplers", "--seed", str(2**64)],
]


@pytest.mark.parametrize("argv", BAD, ids=[" ".join(a) for a in BAD])
def test_bad_input_exit_2_one_line_no_output(tmp_path, argv, capsys):
    out = tmp_path / "out"
    code, captured = _run(["score", argv[0], "--out", str(out), *argv[1:]], capsys)
    assert code == 2, captured.err
    assert captured.err.startswith("genmed: error: ") and len(captured.err.strip().splitlines()) == 1
    assert "Traceback" not in captured.err
    assert not out.exists() or not any(out.iterdir())


def test_too_many_components_refused_before_any_work(tmp_path, capsys):
    """The component count was unbounded: a million of them (weights summing to 1) ran for
    over ten minutes instead of a one-line refusal."""
    k = 2000
    argv = ["score", "gmm", "--out", str(tmp_path / "out"), "--weights", ",".join(["0.0005"] * k),
            "--means", ",".join(["0"] * k), "--stds", ",".join(["1"] * k)]
    code, captured = _run(argv, capsys)
    assert code == 2 and "at most 1000" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
