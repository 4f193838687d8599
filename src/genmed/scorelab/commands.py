"""`genmed score ...`: the score lab on the command line (thin layer over `scorelab.reports`)."""

from __future__ import annotations

from pathlib import Path

import typer

from genmed.errors import MAX_SEED, UserError, check_range
from genmed.fileio import check_output_dir

MAX_N = 10_000_000  # samples / Monte-Carlo draws / chains of one experiment
MAX_STEPS = 1_000_000  # optimiser, sampler or Langevin steps
MAX_VALUES = 1_000  # mixture components / times listed in one option

app = typer.Typer(help="Score lab: exact mixture scores under VE/VP noise, DSM vs ESM, manifold, samplers.",
                  no_args_is_help=True)


def _floats(name: str, text: str, limit: float = 1e6) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UserError(f"--{name}={text[:80]!r}: expected comma-separated numbers, e.g. 0.3,0.7") from None
    if len(values) > MAX_VALUES:  # each is a component or curve: work grows with the count
        raise UserError(f"--{name}: {len(values)} values; give at most {MAX_VALUES}")
    for v in values:  # finite and of a size double precision can square and sum
        check_range(f"--{name}", v, -limit, limit)
    return values


def _caps(**values: int) -> None:
    """Refuse sizes that would allocate or run without bound (before any work)."""
    for name, value in values.items():
        high = MAX_STEPS if "step" in name or name in ("levels", "n_levels", "checkpoint_every") else MAX_N
        check_range(f"--{name.replace('_', '-')}", value, 1, high)


@app.command()
def gmm(
    out: Path = typer.Option(..., help="output folder (gmm.png, gmm.csv, gmm.json, gmm.txt)"),
    weights: str = typer.Option("0.3,0.7", help="mixture weights, comma-separated, summing to 1"),
    means: str = typer.Option("-2,2", help="component means (write --means=-2,2 for negatives)"),
    stds: str = typer.Option("0.5,0.5", help="component standard deviations (> 0)"),
    t: str = typer.Option("0,0.1,1", help="times to show, comma-separated"),
    process: str = typer.Option("ve", help="ve (x0 + sigma sqrt(t) z) or vp (Song et al. 2021)"),
    sigma: float = typer.Option(1.0, help="VE noise scale: kernel std at t = 1"),
) -> None:
    """Density and score of a 1-D Gaussian mixture at several times (the source's t = 0 vs t > 0)."""
    from genmed.scorelab.mixture import GaussianMixture
    from genmed.scorelab.reports import write_gmm

    check_output_dir(out, files=("gmm.png", "gmm.csv", "gmm.json", "gmm.txt"))
    gm = GaussianMixture(_floats("weights", weights), _floats("means", means), _floats("stds", stds))
    times = _floats("t", t)
    for value in times:
        check_range("--t", value, 0, 1e6)
    check_range("--sigma", sigma, 0, 1e6, low_open=True)
    write_gmm(out, gm, times, process=process, sigma=sigma)
    typer.echo((out / "gmm.txt").read_text(encoding="utf-8").rstrip())


@app.command("dsm-vs-esm")
def dsm_vs_esm(
    out: Path = typer.Option(..., help="output folder (dsm.json, dsm.png, dsm.txt)"),
    n_eval: int = typer.Option(20000, help="Monte-Carlo samples shared by every theta"),
    n_random: int = typer.Option(20, help="randomly initialised networks"),
    train_steps: int = typer.Option(1500, help="Adam steps per objective"),
    checkpoint_every: int = typer.Option(150, help="theta taken along training every this many steps"),
    process: str = typer.Option("ve", help="ve or vp"),
    seed: int = typer.Option(0, min=0, max=MAX_SEED, help="random seed"),
) -> None:
    """Explicit (J_naive) vs denoising (J_mod) score matching: constant difference, same minimiser."""
    from genmed.scorelab.dsm import DSMConfig
    from genmed.scorelab.processes import check_process
    from genmed.scorelab.reports import write_dsm

    check_output_dir(out, files=("dsm.json", "dsm.png", "dsm.txt"))
    _caps(n_eval=n_eval, n_random=n_random, train_steps=train_steps, checkpoint_every=checkpoint_every)
    cfg = DSMConfig(process=check_process(process), n_eval=n_eval, n_random=n_random,  # type: ignore[arg-type]
                    train_steps=train_steps, checkpoint_every=checkpoint_every, seed=seed)
    write_dsm(out, cfg)
    typer.echo((out / "dsm.txt").read_text(encoding="utf-8").rstrip())


@app.command()
def manifold(
    out: Path = typer.Option(..., help="output folder (manifold.json, manifold.png, manifold.txt)"),
    sigma_min: float = typer.Option(0.01, help="the single tiny noise level"),
    n_levels: int = typer.Option(10, help="annealed noise levels"),
    steps_each: int = typer.Option(100, help="Langevin steps per level"),
    n_samples: int = typer.Option(1000, help="chains per method"),
    train_steps: int = typer.Option(2000, help="Adam steps per score network"),
    seed: int = typer.Option(0, min=0, max=MAX_SEED, help="random seed"),
) -> None:
    """Circle in R^2: Langevin at one tiny noise level fails, annealed Langevin succeeds."""
    from genmed.scorelab.manifold import ManifoldConfig
    from genmed.scorelab.reports import write_manifold

    check_output_dir(out, files=("manifold.json", "manifold.png", "manifold.txt"))
    _caps(n_levels=n_levels, steps_each=steps_each, n_samples=n_samples, train_steps=train_steps)
    cfg = ManifoldConfig(sigma_min=sigma_min, n_levels=n_levels, steps_each=steps_each, n_samples=n_samples,
                         train_steps=train_steps, seed=seed)
    write_manifold(out, cfg)
    typer.echo((out / "manifold.txt").read_text(encoding="utf-8").rstrip())


@app.command()
def samplers(
    out: Path = typer.Option(..., help="output folder (samplers.json, samplers.png, samplers.txt)"),
    weights: str = typer.Option("0.3,0.7", help="mixture weights"),
    means: str = typer.Option("-2,2", help="component means (1-D)"),
    stds: str = typer.Option("0.5,0.5", help="component standard deviations"),
    n: int = typer.Option(4000, help="samples per sampler"),
    n_steps: int = typer.Option(300, help="reverse-SDE / ODE steps"),
    levels: int = typer.Option(20, help="annealed Langevin noise levels"),
    steps_each: int = typer.Option(50, help="Langevin steps per level"),
    ve_sigma: float = typer.Option(50.0, help="VE sigma (prior N(0, sigma^2))"),
    seed: int = typer.Option(0, min=0, max=MAX_SEED, help="random seed"),
) -> None:
    """Every sampler with the exact mixture score, VE and VP: W1 and mode weights vs the truth."""
    from genmed.scorelab.mixture import GaussianMixture
    from genmed.scorelab.processes import NoiseProcess
    from genmed.scorelab.reports import write_samplers

    check_output_dir(out, files=("samplers.json", "samplers.png", "samplers.txt"))
    _caps(n=n, n_steps=n_steps, levels=levels, steps_each=steps_each)
    check_range("--ve-sigma", ve_sigma, 0, 1e6, low_open=True)
    gm = GaussianMixture(_floats("weights", weights), _floats("means", means), _floats("stds", stds))
    if n < 10 or n_steps < 1 or levels < 2 or steps_each < 1:
        raise UserError(f"need n >= 10, n_steps >= 1, levels >= 2, steps_each >= 1; got {n}, {n_steps}, "
                        f"{levels}, {steps_each}")
    write_samplers(out, gm, [NoiseProcess("ve", sigma=ve_sigma), NoiseProcess("vp")], n=n, n_steps=n_steps,
                   levels=levels, steps_each=steps_each, seed=seed)
    typer.echo((out / "samplers.txt").read_text(encoding="utf-8").rstrip())
