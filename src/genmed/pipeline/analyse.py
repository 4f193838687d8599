"""`genmed pipeline analyse RUN`: the source's error analysis (Part D) on the pipeline's dev set.

1. Confusion matrix of the dev predictions.
2. Eyeball/blackbox split of dev, whole patients per set (`genmed.erroranalysis.make_split`).
3. Automatic tags for every eyeball error from what the phantom knows (`auto_tags`), written
   with reviewer "automatic" so a person can review and overwrite them in the tagging UI
   (`genmed errors serve --predictions RUN/dev/preds.csv --split ... --db ...`).
4. Category table with ceilings (error rate x share of reviewed errors).
5. Error analysis by parts on the eyeball set: an error is blamed on the segmentation when
   the classifier fed the ground-truth kidney mask gets it right.
6. The recommendation, and an HTML page with example images per category.

Outputs go to RUN/analysis/: split.csv, tags_auto.csv, categories.csv, parts_eyeball.csv,
confusion.csv, analysis.json, index.html.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from genmed.data.phantom import LABELS
from genmed.errors import UserError
from genmed.fileio import atomic_path, check_output_dir, write_json

PERFECT_SEG = "y_pred_perfect_upto_segmentation"
TAGS: tuple[str, ...] = ("benign", "malignant", "noisy", "small lesion", "segmentation miss")
AUTO_REVIEWER = "automatic"
EYEBALL_ERRORS = 100  # the source's eyeball set: about 100 misclassified dev examples


def _flag(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.zeros(len(df), bool)
    return df[col].astype(str).str.lower().isin(("true", "1", "yes")).to_numpy()


def _num(df: pd.DataFrame, col: str) -> np.ndarray:
    if col not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)


def auto_tags(errors: pd.DataFrame, *, small_mm: float = 10.0, min_dice: float = 0.8,
              min_coverage: float = 0.5) -> pd.DataFrame:
    """Tags `id,tag,reviewer,note` for misclassified examples, from ground truth only.

    benign / malignant: the true class; noisy: a low-dose scan; small lesion: a lesion whose
    in-plane diameter is below `small_mm` (mm); segmentation miss: predicted kidney Dice below
    `min_dice` or less than `min_coverage` of the lesion inside the predicted mask. An error
    with none of these gets one row with an empty tag (reviewed, no category).
    """
    truth = errors["y_true"].astype(str).to_numpy()
    lesion_mm, dice, cover = _num(errors, "lesion_mm"), _num(errors, "kidney_dice"), _num(errors, "lesion_coverage")
    rules = {
        "benign": truth == "benign",
        "malignant": truth == "malignant",
        "noisy": _flag(errors, "noisy"),
        "small lesion": (truth != "healthy") & (lesion_mm < small_mm),
        "segmentation miss": (dice < min_dice) | (cover < min_coverage),
    }
    rows = []
    for k, eid in enumerate(errors["id"].astype(str)):
        tags = [t for t in TAGS if rules[t][k]]
        for t in tags or [""]:
            rows.append({"id": eid, "tag": t, "reviewer": AUTO_REVIEWER,
                         "note": "automatic from phantom ground truth; review in the tagging UI"})
    return pd.DataFrame(rows, columns=["id", "tag", "reviewer", "note"])


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """A pipeline CSV as strings indexed by id, with an `error` column (y_true != y_pred)."""
    from genmed.erroranalysis.tables import read_csv

    df = read_csv(path, columns, "pipeline predictions").set_index("id", drop=False)
    df["error"] = df["y_true"] != df["y_pred"]
    return df


def _write_csv(df: pd.DataFrame, path: Path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


ANALYSIS_FILES = ("split.csv", "tags_auto.csv", "categories.csv", "parts_eyeball.csv", "confusion.csv",
                  "analysis.json", "index.html")  # what `analyse` writes to RUN/analysis


def analyse(run: str | os.PathLike, *, split: str = "dev", eyeball_errors: int | None = None,
            seed: int = 0, examples: int = 6) -> tuple[Path, dict]:
    """Run the analysis on RUN/<split>/preds.csv and parts.csv; returns (index.html, summary)."""
    from genmed.erroranalysis import category_table, error_by_parts, make_split

    run = Path(run)
    src = run / split
    preds_path, parts_path = src / "preds.csv", src / "parts.csv"
    if not preds_path.is_file() or not parts_path.is_file():
        raise UserError(f"{run}: no {split}/preds.csv and parts.csv (run `genmed pipeline train` or predict first)")
    out = check_output_dir(run / "analysis", "analysis folder", files=ANALYSIS_FILES)  # before any work
    preds = _read(preds_path, ("id", "y_true", "y_pred", "patient_id"))
    n_err = int(preds["error"].sum())
    if n_err < 2:
        raise UserError(f"{preds_path}: {n_err} error(s) in {len(preds)} examples: too few to analyse")
    want = eyeball_errors if eyeball_errors is not None else min(EYEBALL_ERRORS, max(1, n_err // 2))
    sp = make_split(preds, want, group_col="patient_id", seed=seed)
    _write_csv(sp.to_frame(), out / "split.csv")
    eye = preds[sp.sets.reindex(preds.index).eq("eyeball").to_numpy()]
    eye_err = eye[eye["error"]]
    tags = auto_tags(eye_err)
    _write_csv(tags, out / "tags_auto.csv")
    table = category_table(preds, tags)
    _write_csv(table.to_frame(), out / "categories.csv")
    parts = _read(parts_path, ("id", "y_true", "y_pred", PERFECT_SEG))
    parts_eye = parts[parts["id"].isin(eye.index)]
    _write_csv(parts_eye.drop(columns="error"), out / "parts_eyeball.csv")
    report = error_by_parts(parts_eye, ["segmentation", "classification"])
    cm = pd.crosstab(pd.Categorical(preds["y_true"], LABELS), pd.Categorical(preds["y_pred"], LABELS),
                     rownames=["true"], colnames=["predicted"], dropna=False)
    with atomic_path(out / "confusion.csv") as tmp:
        cm.to_csv(tmp)
    summary = {
        "predictions": str(preds_path), "split": sp.describe(), "n_dev": len(preds), "n_dev_errors": n_err,
        "dev_error_rate": n_err / len(preds), "n_eyeball_errors": len(eye_err),
        "confusion": {"labels": list(LABELS), "rows_true_cols_pred": cm.to_numpy().tolist()},
        "categories": table.to_dict(), "parts": report.to_dict(),
        "recommendation": [table.recommendation(), report.recommendation()],
        "tags_are_automatic": True,
    }
    write_json(out / "analysis.json", summary)
    page = _page(run, src, out, preds, cm, tags, table, report, summary, examples)
    return page, summary


def _page(run: Path, src: Path, out: Path, preds: pd.DataFrame, cm: pd.DataFrame, tags: pd.DataFrame, table,
          report, summary: dict, examples: int) -> Path:
    from genmed.report import Page

    page = Page(f"Pipeline error analysis: {run.name}")
    page.text(f"Dev set {summary['n_dev']} slices, {summary['n_dev_errors']} errors "
              f"({summary['dev_error_rate']:.1%}). {summary['split']}.", "note")
    page.heading("Recommendation")
    for line in summary["recommendation"]:
        page.text(line)
    page.heading("Confusion matrix (rows: truth, columns: prediction)")
    page.table([{"true": t, **{p: int(cm.loc[t, p]) for p in LABELS}} for t in LABELS], ["true", *LABELS])
    page.heading("Category table (tags are AUTOMATIC, from phantom ground truth)")
    page.text("Each eyeball error was tagged automatically by rules on what the phantom knows; "
              "a reviewer can overwrite them: genmed errors serve --predictions "
              f"{src / 'preds.csv'} --split {out / 'split.csv'} --db tags.sqlite, after "
              f"genmed errors import --tags {out / 'tags_auto.csv'} --db tags.sqlite.", "note")
    page.table([{"tag": c.tag, "count": c.count, "share": f"{c.share:.1%}",
                 "share 95% CI": f"{c.share_ci[0]:.1%}-{c.share_ci[1]:.1%}", "ceiling": f"{c.ceiling:.2%}",
                 "ceiling 95% CI": f"{c.ceiling_ci[0]:.2%}-{c.ceiling_ci[1]:.2%}"}
                for c in table.categories])
    page.text(table.recommendation())
    page.heading("Error analysis by parts (eyeball errors)")
    page.table([{"component": c.name, "errors": c.n_attributed, "share": f"{c.share:.1%}"}
                for c in report.components])
    page.text(report.recommendation())
    page.heading("Examples per category")
    page.text("Whole slices in the abdomen window (W400/L40 HU: black <= -160 HU, white >= 240 HU); "
              "caption: id, true -> predicted class, predicted kidney Dice.")
    for tag in [t for t in TAGS if t in set(tags["tag"])]:
        ids = tags.loc[tags["tag"] == tag, "id"].head(examples)
        page.text(f"{tag} ({int((tags['tag'] == tag).sum())} eyeball errors)")
        items = []
        for eid in ids:
            row = preds.loc[eid]
            cap = f"{eid}: {row['y_true']} -> {row['y_pred']}"
            if "kidney_dice" in row:
                cap += f", Dice {float(row['kidney_dice']):.2f}"
            items.append((src / row["image"], cap))
        page.figures(items, base=out)
    return page.write(out / "index.html")
