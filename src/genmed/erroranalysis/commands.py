"""`genmed errors ...`: error analysis of any classifier's predictions (thin CLI layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from genmed.fileio import check_output_file

app = typer.Typer(
    help="Error analysis: category ceilings, eyeball/blackbox dev sets, error by parts, "
    "a tag store and a local tagging UI.",
    no_args_is_help=True,
)

PREDS = typer.Option(..., "--predictions", help="CSV with id,y_true,y_pred (+ image, patient_id, ...).")
SPLIT = typer.Option(..., "--split", help="CSV with id,set (eyeball/blackbox) from `genmed errors split`.")


def _warn(lines) -> None:
    for line in lines:
        typer.echo(f"genmed: warning: {line}", err=True)


def _emit(text: str, out: Optional[Path]) -> None:
    if out is None:
        typer.echo(text)
    else:
        from genmed.fileio import write_text

        write_text(out, text + "\n")
        typer.echo(f"wrote {out}", err=True)


@app.command()
def summary(
    predictions: Path = PREDS,
    tags: Path = typer.Option(..., "--tags", help="CSV with id,tag (or a .sqlite tag database)."),
    fmt: str = typer.Option("table", "--format", help="table, json or csv."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write here instead of stdout."),
) -> None:
    """Category table: share of reviewed errors per tag and its ceiling on dev error."""
    from genmed.erroranalysis import summarize
    from genmed.errors import check_choice

    check_choice("--format", fmt, ("table", "json", "csv"))
    if out is not None:
        check_output_file(out, inputs=(predictions, tags))
    table = summarize(predictions, tags)
    _warn(table.warnings)
    _emit(table.render(fmt), out)  # type: ignore[arg-type]


@app.command()
def split(
    predictions: Path = PREDS,
    eyeball_errors: int = typer.Option(100, "--eyeball-errors", help="Errors the eyeball set should hold."),
    group_col: Optional[str] = typer.Option(None, "--group-col", help="Keep each value (patient) in one set."),
    seed: int = typer.Option(0, "--seed", min=0),
    out: Path = typer.Option(..., "--out", help="Output CSV id,set."),
) -> None:
    """Split dev into an eyeball set (looked at) and a blackbox set (only measured)."""
    from genmed.erroranalysis import split_dev

    check_output_file(out, inputs=(predictions,))
    result = split_dev(predictions, eyeball_errors, group_col=group_col, seed=seed, out=out)
    typer.echo(result.describe())


@app.command()
def sample(
    predictions: Path = PREDS,
    split: Path = SPLIT,
    n: int = typer.Option(100, "--n", help="How many errors to draw."),
    seed: int = typer.Option(0, "--seed", min=0),
    out: Path = typer.Option(..., "--out", help="Output CSV of examples to review."),
) -> None:
    """Draw misclassified examples to review, from the eyeball set only."""
    from genmed.erroranalysis import sample_for_review

    check_output_file(out, inputs=(predictions, split))
    df = sample_for_review(predictions, split, n, seed=seed, out=out)
    if len(df) < n:
        _warn([f"the eyeball set has only {len(df)} errors; wrote all of them"])
    typer.echo(f"wrote {len(df)} eyeball errors to {out}")


@app.command()
def overfit(
    predictions: Path = PREDS,
    split: Path = SPLIT,
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Has the eyeball set been overfit? Eyeball vs blackbox error with a Fisher exact test."""
    import json

    from genmed.erroranalysis import check_overfit
    from genmed.errors import check_choice, check_range

    check_choice("--format", fmt, ("table", "json"))
    check_range("--alpha", alpha, 0, 1, low_open=True, high_open=True)
    res = check_overfit(predictions, split, alpha=alpha)
    if fmt == "json":
        typer.echo(json.dumps(res, indent=2))
        return
    for name in ("eyeball", "blackbox"):
        r = res[name]
        typer.echo(
            f"{name:<8} {r['n_errors']:>5} / {r['n']:<6} error {r['error_rate']:.2%} "
            f"(95% CI {r['ci'][0]:.2%}-{r['ci'][1]:.2%})"
        )
    typer.echo(res["message"])


@app.command("by-parts")
def by_parts(
    predictions: Path = typer.Option(..., "--predictions", help="parts.csv: id,y_true,y_pred,y_pred_perfect_upto_<component>..."),
    order: Optional[str] = typer.Option(None, "--order", help="Components in pipeline order, comma-separated (last one included)."),
    fmt: str = typer.Option("json", "--format", help="json or table."),
) -> None:
    """Blame each pipeline error on the earliest component whose perfect version fixes it."""
    from genmed.erroranalysis import analyse_parts
    from genmed.errors import check_choice

    check_choice("--format", fmt, ("json", "table"))
    report = analyse_parts(predictions, order.split(",") if order else None)
    typer.echo(report.render(fmt))  # type: ignore[arg-type]


@app.command("import")
def import_(
    tags: Path = typer.Option(..., "--tags", help="CSV with id,tag (+ reviewer, time, note, image)."),
    db: Path = typer.Option(..., "--db", help="SQLite tag database (created if absent)."),
    reviewer: str = typer.Option("", "--reviewer"),
) -> None:
    """Import a tags CSV into the SQLite tag database."""
    from genmed.erroranalysis import import_tags

    typer.echo(f"imported {import_tags(tags, db, reviewer=reviewer)} tag rows into {db}")


@app.command()
def export(
    db: Path = typer.Option(..., "--db", help="SQLite tag database."),
    out: Path = typer.Option(..., "--out", help="Output tags CSV."),
) -> None:
    """Export the SQLite tag database as a tags CSV (what `summary --tags` reads)."""
    from genmed.erroranalysis import export_tags

    check_output_file(out, inputs=(db,))
    typer.echo(f"wrote {export_tags(db, out)} rows to {out}")


@app.command()
def serve(
    predictions: Path = PREDS,
    split: Path = SPLIT,
    db: Path = typer.Option(..., "--db", help="SQLite tag database (created if absent)."),
    port: int = typer.Option(8765, "--port"),
    host: str = typer.Option("127.0.0.1", "--host", help="Only 127.0.0.1/localhost are allowed."),
    reviewer: str = typer.Option("", "--reviewer", help="Name stored with each tag."),
    tags: str = typer.Option("", "--tags", help="Tag buttons to start with, comma-separated."),
) -> None:
    """Local web UI to tag eyeball errors (binds 127.0.0.1 only)."""
    from genmed.erroranalysis import serve_ui

    start = [t.strip() for t in tags.split(",") if t.strip()]
    serve_ui(predictions, split, db, port=port, host=host, reviewer=reviewer, tags=start,
             on_ready=lambda: typer.echo(f"genmed errors: reviewing on http://127.0.0.1:{port}/ "
                                         "(Ctrl-C to stop)", err=True))
