"""Minimal self-contained HTML reports: headings, tables, image grids, links.

Reports are written next to the run they describe and reference their images by relative
path, so a run folder can be zipped and opened anywhere. No JavaScript, no external assets.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genmed.fileio import write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1b1f24;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;border-bottom:2px solid #2b6cb0;padding-bottom:.3rem}
h2{font-size:1.25rem;margin-top:2rem;color:#2b6cb0}
table{border-collapse:collapse;margin:.6rem 0;font-size:.92rem}
th,td{border:1px solid #cbd5e0;padding:.25rem .6rem;text-align:right}
th{background:#edf2f7} td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.4rem;vertical-align:top;text-align:center}
figure img{max-width:340px;image-rendering:pixelated;border:1px solid #cbd5e0}
figcaption{font-size:.85rem;color:#4a5568}
.note{color:#4a5568;font-size:.9rem} code{background:#edf2f7;padding:0 .2rem}
"""


@dataclass
class Page:
    """An HTML page built top to bottom; `write(path)` saves it atomically."""

    title: str
    parts: list[str] = field(default_factory=list)

    def heading(self, text: str) -> "Page":
        self.parts.append(f"<h2>{html.escape(text)}</h2>")
        return self

    def text(self, text: str, cls: str = "") -> "Page":
        attr = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{attr}>{html.escape(text)}</p>")
        return self

    def table(self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> "Page":
        """A table of dict rows; floats shown with 4 significant digits."""
        if not rows:
            return self.text("(no rows)", "note")
        columns = list(columns or rows[0].keys())
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c, '')))}</td>" for c in columns) + "</tr>"
            for row in rows
        )
        self.parts.append(f"<table><tr>{head}</tr>{body}</table>")
        return self

    def figures(self, items: Sequence[tuple[str | os.PathLike, str]], base: str | os.PathLike) -> "Page":
        """Images (path, caption), linked relative to the folder `base` the page lives in."""
        figs = []
        for path, caption in items:
            rel = os.path.relpath(Path(path), Path(base))
            figs.append(
                f'<figure><img src="{html.escape(rel)}" alt="{html.escape(caption)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
        self.parts.append("<div>" + "".join(figs) + "</div>")
        return self

    def links(self, items: Sequence[tuple[str | os.PathLike, str]], base: str | os.PathLike) -> "Page":
        """A bulleted list of links (path, label) relative to `base`."""
        lis = "".join(
            f'<li><a href="{html.escape(os.path.relpath(Path(p), Path(base)))}">{html.escape(label)}</a></li>'
            for p, label in items
        )
        self.parts.append(f"<ul>{lis}</ul>")
        return self

    def render(self) -> str:
        title = html.escape(self.title)
        return (
            f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f"<style>{_CSS}</style></head><body><h1>{title}</h1>\n" + "\n".join(self.parts) + "\n</body></html>\n"
        )

    def write(self, path: str | os.PathLike) -> Path:
        return write_text(path, self.render())


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
