"""Error analysis for any classifier (the source's Part D): where to spend effort.

- `summarize`: category table with ceilings (error rate x share of reviewed errors) and
  Wilson intervals;
- `split_dev`, `sample_for_review`, `check_overfit`: eyeball/blackbox dev sets;
- `analyse_parts`: error analysis by parts of a pipeline of any length;
- `TagStore`, `import_tags`, `export_tags`: the SQLite tag store;
- `serve_ui`: the local tagging web UI.
Each function is one CLI command (`genmed errors ...`).
"""

from genmed.erroranalysis.api import (
    analyse_parts,
    check_overfit,
    export_tags,
    import_tags,
    sample_for_review,
    serve_ui,
    split_dev,
    summarize,
)
from genmed.erroranalysis.categories import Category, CategoryTable, category_table, wilson_interval
from genmed.erroranalysis.parts import ComponentShare, PartsReport, error_by_parts
from genmed.erroranalysis.split import Split, make_split, overfit_test, sample_errors
from genmed.erroranalysis.store import TagStore
from genmed.erroranalysis.tables import load_parts, load_predictions, load_split, load_tags

__all__ = [
    "Category", "CategoryTable", "ComponentShare", "PartsReport", "Split", "TagStore",
    "analyse_parts", "category_table", "check_overfit", "error_by_parts", "export_tags",
    "import_tags", "load_parts", "load_predictions", "load_split", "load_tags", "make_split",
    "overfit_test", "sample_errors", "sample_for_review", "serve_ui", "split_dev", "summarize",
    "wilson_interval",
]
