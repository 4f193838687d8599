"""`genmed demo` / `make demo`: the main job, end to end on the kidney CT phantom.

Runs each stage in order into its own folder under OUT, times it, and writes OUT/index.html
linking every stage's report plus OUT/demo.json with the timings. A stage that fails is
reported on the index page and in the exit status; the stages after it still run, and
nothing already written is lost.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from genmed.fileio import write_json
from genmed.report import Page

Links = list[tuple[Path, str]]


@dataclass(frozen=True)
class Stage:
    """One demo stage: `run(out_dir, quick)` returns the (path, label) links it produced."""

    name: str
    title: str
    run: Callable[[Path, bool], Links]


def _phantom(out: Path, quick: bool) -> Links:
    from genmed.data import write_phantom_dataset

    result = write_phantom_dataset(out, n_patients=4 if quick else 12, seed=0, overwrite=True)
    return [(result.contact_sheet, "phantom contact sheet"), (result.manifest, "manifest (CSV)")]


def _error_analysis(out: Path, quick: bool) -> Links:
    """The source's worked example through the workbench: ceilings and the recommendation."""
    from genmed.erroranalysis import summarize
    from genmed.erroranalysis.example import write_source_example
    from genmed.fileio import write_text

    preds, tags, _ = write_source_example(out)
    table = summarize(preds, tags)
    write_json(out / "summary.json", table.to_dict())
    write_text(out / "summary.txt", table.render("table"))
    page = Page("Error analysis: the source's worked example")
    page.text("1000 dev examples, 15% error, 100 reviewed errors tagged benign 7, malignant 63, "
              "noisy 6. Ceiling = dev error rate x share of reviewed errors with the tag "
              "(95% Wilson intervals).")
    page.table(table.to_frame().to_dict("records"))
    page.text(table.recommendation())
    return [(page.write(out / "report.html"), "category table with ceilings"),
            (out / "summary.json", "summary (JSON)")]


def _score_lab(out: Path, quick: bool) -> Links:
    """The source's score-based theory: t = 0 vs t > 0 mixture, DSM vs ESM, manifold."""
    from dataclasses import replace

    from genmed.scorelab import GaussianMixture
    from genmed.scorelab.dsm import DSMConfig
    from genmed.scorelab.manifold import ManifoldConfig
    from genmed.scorelab.reports import write_dsm, write_gmm, write_manifold

    write_gmm(out, GaussianMixture([0.3, 0.7], [-2.0, 2.0], [0.5, 0.5]), [0.0, 0.1, 1.0])
    dsm, manifold = DSMConfig(), ManifoldConfig()
    if quick:
        dsm = replace(dsm, n_eval=2000, n_random=4, train_steps=150, checkpoint_every=50)
        manifold = replace(manifold, n_samples=200, train_steps=600, steps_each=30)
    write_dsm(out, dsm)
    write_manifold(out, manifold)
    page = Page("Score lab: the theory under diffusion, computed")
    for name, title in (("gmm", "1-D mixture under VE noise: density and score at t = 0, 0.1, 1"),
                        ("dsm", "Denoising vs explicit score matching: equal minimiser, not equal value"),
                        ("manifold", "Data on a manifold: one tiny noise level vs annealed noise")):
        page.heading(title).text((out / f"{name}.txt").read_text())
        page.figures([(out / f"{name}.png", name)], base=out)
    return [(page.write(out / "report.html"), "score lab report")]


def _pipeline(out: Path, quick: bool) -> Links:
    from genmed.pipeline.demo import run_demo_stage

    return run_demo_stage(out, quick)


def _families(out: Path, quick: bool) -> Links:
    """Train diffusion, GAN and VAE briefly under one budget and compare them (genmed compare).

    Sized for <= 9 minutes on 2 idle CPU cores (bf16 autocast on AMX / AVX-512-BF16 CPUs) from
    measured CPU time per image (docs/evaluation.md): 32,000 training images seen per family,
    256 samples each, 20 bootstrap resamples, sampler study (incl. the 1000-step DDPM chain) on
    32 images.
    """
    from genmed.compare import CompareConfig, compare
    from genmed.compare.config import QUICK_STUDY, STUDY

    if quick:
        cfg = CompareConfig(quick=True, n_patients=10, budget_images=320, n_samples=24, study_n=12,
                            n_boot=5, study=QUICK_STUDY, out=str(out))
    else:
        cfg = CompareConfig(budget_images=32_000, n_samples=256, study_n=32, n_boot=20, study=STUDY,
                            out=str(out))
    compare(cfg)
    return [(out / "report.html", "family comparison report"), (out / "metrics.json", "metrics (JSON)")]


def stages() -> list[Stage]:
    """The demo's stages, in order."""
    return [
        Stage("phantom", "Kidney CT phantom", _phantom),
        Stage("families", "Diffusion vs GAN vs VAE (equal budget)", _families),
        Stage("scorelab", "Score lab", _score_lab),
        Stage("errors", "Error analysis (source's worked example)", _error_analysis),
        Stage("pipeline", "Kidney CT pipeline: segmentation -> classification, error analysis",
              _pipeline),
    ]


def run_demo(out: str | Path, quick: bool = False, only: Sequence[str] | None = None,
             progress: Callable[[str], None] | None = None) -> tuple[Path, list[dict]]:
    """Run the demo stages into `out`; return the index page path and per-stage records."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    page = Page("genmed demo")
    page.text("Every stage ran on the procedural kidney CT phantom (no downloads). "
              "Timings are wall-clock seconds on this machine.", "note")
    for stage in stages():
        if only and stage.name not in only:
            continue
        if progress:
            progress(stage.title)
        t0 = time.perf_counter()
        try:
            links, error = stage.run(out / stage.name, quick), None
        except Exception as exc:  # a failed stage must not lose the others' outputs
            links, error = [], f"{type(exc).__name__}: {exc}"
            (out / stage.name).mkdir(parents=True, exist_ok=True)
            (out / stage.name / "error.txt").write_text(traceback.format_exc())
        seconds = round(time.perf_counter() - t0, 1)
        records.append({"stage": stage.name, "seconds": seconds, "ok": error is None, "error": error})
        page.heading(f"{stage.title} ({seconds} s)")
        if error:
            page.text(f"FAILED: {error}")
        page.links(links, base=out)
    page.heading("Timings").table(records, ["stage", "seconds", "ok"])
    write_json(out / "demo.json", {"stages": records, "total_seconds": sum(r["seconds"] for r in records)})
    return page.write(out / "index.html"), records
