"""Error analysis for any classifier (the source's Part D): where to spend effort.

- `summarize`: category table with ceilings (error rate x share of reviewed errors) and
  Wilson intervals (`genmed.metrics.wilson_interval`);
- `split_dev`, `sample_for_review`, `check_overfit`: eyeball/blackbox dev sets;
- `analyse_parts`: error analysis by parts of a pipeline of any length;
- `TagStore`, `import_tags`, `export_tags`: the SQLite tag store;
- `serve_ui`: the local tagging web UI.
Each function is one CLI command (`genmed errors ...`). Names are imported on first use.
"""

from __future__ import annotations


from genmed._lazy import lazy_exports

_EXPORTS = {
    ".api": ("analyse_parts", "check_overfit", "export_tags", "import_tags", "sample_for_review",
             "serve_ui", "split_dev", "summarize"),
    ".categories": ("Category", "CategoryTable", "category_table"),
    ".parts": ("ComponentShare", "PartsReport", "error_by_parts"),
    ".split": ("Split", "make_split", "overfit_test", "sample_errors"),
    ".store": ("TagStore",),
    ".tables": ("load_parts", "load_predictions", "load_split", "load_tags"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
