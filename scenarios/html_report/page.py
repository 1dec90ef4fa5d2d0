"""The HTML document: inlined Bokeh library, styles, sections, tables and figure blocks.

Everything the page needs is in the file (no CDN, no fetch): the browser opens it offline.
Figures are embedded with ``bokeh.embed.components`` in one call, so the whole page is one
Bokeh document and the library is inlined once.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bokeh.embed import components
from bokeh.model import Model
from bokeh.models import LayoutDOM
from bokeh.resources import Resources

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
p.caption { color: #555; font-size: 0.9em; margin: 0.3em 0 1.5em; }
table.numbers { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
table.numbers th, table.numbers td { border-bottom: 1px solid #e5e5e5; padding: 3px 8px; }
table.numbers td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.numbers th { text-align: left; background: #f6f6f6; }
table.numbers caption { text-align: left; font-weight: 600; padding-bottom: 4px; }
td.bad { color: #b00020; font-weight: 600; }
.figure { margin: 1em 0; }
ul.key { list-style: none; padding: 0; margin: 0.2em 0 0.5em; font-size: 0.85em;
         display: flex; flex-wrap: wrap; gap: 0.3em 1.6em; }
ul.key span.swatch { display: inline-block; width: 22px; height: 4px; margin-right: 6px;
                     vertical-align: middle; }
"""


@dataclass
class Cell:
    """One table cell: its text and the attributes tests and readers can find it by."""
    text: str
    numeric: bool = True
    attrs: dict[str, str] = field(default_factory=dict)
    bad: bool = False


@dataclass
class Page:
    """A report under construction: HTML blocks in order, with figures as placeholders."""
    title: str
    blocks: list[str] = field(default_factory=list)
    figures: dict[str, Model] = field(default_factory=dict)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def paragraph(self, text: str, css: str = "") -> None:
        klass = f' class="{css}"' if css else ""
        self.blocks.append(f"<p{klass}>{html.escape(text)}</p>")

    def figure(self, name: str, model: LayoutDOM, caption: str,
               key: Sequence[tuple[str, str]] = ()) -> None:
        """A figure (or grid of figures), its key when given, and the one sentence saying
        what to look for.

        ``key`` is a legend in the page under the figure, (label, colour) per line: one for all
        of a grid's panels, and never over a line as a legend inside a panel can be.
        """
        self.figures[name] = model
        self.blocks.append(f'<div class="figure" data-figure="{html.escape(name)}">'
                           f"{{{{figure:{name}}}}}</div>")
        if key:
            items = "".join(
                f'<li><span class="swatch" style="background:{html.escape(colour)}"></span>'
                f"{html.escape(label)}</li>" for label, colour in key)
            self.blocks.append(f'<ul class="key" data-key="{html.escape(name)}">{items}</ul>')
        self.paragraph(caption, "caption")

    def table(self, name: str, caption: str, header: Sequence[str],
              rows: Sequence[Sequence[Cell]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for cell in row:
                classes = " ".join(c for c in ("num" if cell.numeric else "",
                                               "bad" if cell.bad else "") if c)
                attrs = "".join(f' data-{k}="{html.escape(v)}"' for k, v in cell.attrs.items())
                klass = f' class="{classes}"' if classes else ""
                cells.append(f"<td{klass}{attrs}>{html.escape(cell.text)}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        self.blocks.append(
            f'<table class="numbers" data-table="{html.escape(name)}">'
            f"<caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")

    def render(self) -> str:
        script, divs = components(self.figures) if self.figures else ("", {})
        body = "\n".join(self.blocks)
        for name, div in divs.items():
            body = body.replace(f"{{{{figure:{name}}}}}", div)
        # Only the core library: tables are plain HTML, so no widgets or tables bundle.
        library = Resources(mode="inline", components=["bokeh"]).render_js()
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(self.title)}</title><style>{STYLE}</style>{library}</head>"
            f"<body><h1>{html.escape(self.title)}</h1>\n{body}\n{script}</body></html>\n")

    def write(self, path: Path) -> Path:
        path.write_text(self.render(), encoding="utf-8")
        return path
