"""The `genmed` command line: a thin typer layer over the library.

Each package contributes its own command group from `genmed/<package>/commands.py`; those
modules import heavy libraries (torch, monai) inside the command bodies so `--help` is fast.
Any `UserError` becomes one line on stderr and exit status 2; no traceback reaches the user.
"""

from __future__ import annotations

import sys

import typer

from genmed.errors import UserError

app = typer.Typer(
    name="genmed",
    help="Deep generative models for medical imaging (diffusion, GAN, VAE) on your scans "
    "or the built-in kidney CT phantom.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Deep generative models for medical imaging."""


@app.command()
def version() -> None:
    """Print the genmed, torch and monai versions."""
    from genmed.versions import versions

    for name, ver in versions().items():
        typer.echo(f"{name} {ver}")


@app.command()
def demo(
    out: str = typer.Option("runs/demo", help="Folder for every stage's outputs and index.html."),
    quick: bool = typer.Option(False, help="Smallest settings (used by the test suite)."),
    only: str = typer.Option("", help="Comma-separated stage names to run (default: all)."),
) -> None:
    """The main job: phantom, three families, comparison, score lab, error analysis, pipeline."""
    from rich.console import Console

    from genmed.demo import run_demo, stages
    from genmed.errors import check_choice
    from genmed.fileio import check_output_dir

    check_output_dir(out, files=("index.html", "demo.json"))
    for name in (s for s in only.split(",") if s):
        check_choice("--only", name, [stage.name for stage in stages()])
    console = Console(stderr=True)
    index, records = run_demo(out, quick=quick, only=[s for s in only.split(",") if s] or None,
                              progress=lambda title: console.log(f"stage: {title}"))
    for r in records:
        console.log(f"{r['stage']}: {r['seconds']} s" + ("" if r["ok"] else f"  FAILED {r['error']}"))
    typer.echo(str(index.resolve()))
    if not all(r["ok"] for r in records):
        raise typer.Exit(1)


MODES_ALIAS_HELP = ("Deprecated alias of `genmed compare modes`; will be removed in the next release. "
                    "Mode-collapse benchmark (VEEGAN/PacGAN ring of 8, grid of 25).")


def _register() -> None:
    """Attach every package's command group (one line each)."""
    from genmed.data.commands import app as data_app

    app.add_typer(data_app, name="data")
    from genmed.erroranalysis.commands import app as errors_app

    app.add_typer(errors_app, name="errors")
    from genmed.metrics.commands import app as eval_app

    app.add_typer(eval_app, name="eval")
    from genmed.apps.commands import app as apps_app

    app.add_typer(apps_app, name="apps")
    from genmed.train.commands import distill, sample, train

    app.command("train")(train)
    app.command("sample")(sample)
    app.command("distill")(distill)
    from genmed.compare.commands import app as compare_app
    from genmed.compare.commands import modes as compare_modes

    app.add_typer(compare_app, name="compare")
    # One-release alias (issue 12): the mode-collapse experiment moved from `eval` to `compare`.
    eval_app.command("modes", deprecated="Use `genmed compare modes`; this alias goes in the next release.",
                     help=MODES_ALIAS_HELP)(compare_modes)
    from genmed.scorelab.commands import app as score_app

    app.add_typer(score_app, name="score")
    from genmed.pipeline.commands import app as pipeline_app

    app.add_typer(pipeline_app, name="pipeline")


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `genmed` script: run the app, map user errors to exit status 2.

    A `UserError` raised by the library and a usage error (unknown option, a value of the
    wrong type, a missing argument) both become one line on stderr and exit status 2.
    """
    try:  # typer >= 0.16 vendors click as typer._click
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions as click
    try:
        rv = app(args=argv, prog_name="genmed", standalone_mode=False)
    except UserError as exc:
        _one_line(str(exc), UserError.exit_code)
    except click.NoArgsIsHelpError as exc:  # the help was printed: exit as click always did
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "genmed"
        _one_line(f"{exc.format_message()} (see '{where} --help')", exc.exit_code)
    except click.ClickException as exc:
        _one_line(exc.format_message(), exc.exit_code)
    except typer.Abort:
        _one_line("aborted", 1)
    sys.exit(rv if isinstance(rv, int) else 0)


def _one_line(message: str, code: int) -> None:
    print(f"genmed: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)
