"""Figure helpers shared by the reports: one look, rounding for size, waterfall, heat map."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource, HoverTool, LinearColorMapper
from bokeh.models.annotations.legends import ColorBar
from bokeh.palettes import Cividis256, RdBu11
from bokeh.plotting import figure

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
FONT = "11px"


def new_figure(title: str, x_label: str, y_label: str, *, width: int = 760, height: int = 320,
               tooltips: list[tuple[str, str]] | None = None, **kwargs: Any) -> Any:
    """A titled figure with labelled axes, zoom and pan, and a hover tool when given tips."""
    fig = figure(title=title, width=width, height=height, tools=TOOLS,
                 toolbar_location="right", **kwargs)
    fig.xaxis.axis_label = x_label
    fig.yaxis.axis_label = y_label
    fig.title.text_font_size = "12px"  # type: ignore[union-attr]  # set just above
    fig.axis.axis_label_text_font_size = FONT
    fig.axis.major_label_text_font_size = FONT
    if tooltips:
        fig.add_tools(HoverTool(tooltips=tooltips,
                                formatters={"@time": "datetime"}))
    fig.toolbar.logo = None
    return fig


def rounded(values: Iterable[float], digits: int = 4) -> list[float]:
    """Plot data to ``digits`` significant digits: the page carries no more than it shows.

    Full float64 text is ~18 characters a number; four digits are under a pixel of error on
    any of these figures and keep federation-sized pages small.
    """
    array = np.asarray(list(values), dtype=float)
    out = []
    for v in array:
        if not np.isfinite(v):
            out.append(float("nan"))
        elif v == 0:
            out.append(0.0)
        else:
            out.append(float(f"{v:.{digits}g}"))
    return out


def waterfall(title: str, unit: str, start: tuple[str, float], parts: Sequence[tuple[str, float]],
              end: tuple[str, float], colour_down: str, colour_up: str,
              width: int = 380) -> Any:
    """Bars from the baseline through each part to the result.

    A saving lowers the running total (colour_down), a loss raises it (colour_up); the first
    and last bars are totals from zero.
    """
    labels = [start[0], *(p[0] for p in parts), end[0]]
    tops, bottoms, colours, values = [start[1]], [0.0], ["#7f7f7f"], [start[1]]
    level = start[1]
    for _, saved in parts:
        new = level - saved
        tops.append(max(level, new))
        bottoms.append(min(level, new))
        colours.append(colour_down if saved >= 0 else colour_up)
        values.append(-saved)
        level = new
    tops.append(end[1])
    bottoms.append(0.0)
    colours.append("#333333")
    values.append(end[1])
    source = ColumnDataSource({"label": labels, "top": rounded(tops, 6),
                               "bottom": rounded(bottoms, 6), "colour": colours,
                               "change": rounded(values, 6)})
    fig = new_figure(title, "", unit, width=width, height=330, x_range=labels,
                     tooltips=[("step", "@label"), (f"change / total ({unit})",
                                                    "@change{0,0.00}")])
    fig.vbar(x="label", top="top", bottom="bottom", width=0.7, color="colour", source=source)
    fig.xaxis.major_label_orientation = 0.8
    fig.xgrid.grid_line_color = None
    return fig


def heat_map(title: str, x_label: str, y_label: str, xs: Sequence[str], ys: Sequence[str],
             values: dict[tuple[str, str], float], unit: str,
             fmt: Callable[[float], str] = "{:,.1f}".format, diverging: bool = False,
             size: int = 42) -> Any:
    """A labelled matrix: one cell per (x, y) with its value written in it.

    Sequential (flows, zero and up): empty cells stay white. Diverging (balances): red below
    zero, blue above, both deepening with the size of the number.
    """
    cells = [(x, y, values.get((x, y), 0.0)) for y in ys for x in xs]
    numbers = [v for *_, v in cells]
    top = max((abs(v) for v in numbers), default=0.0) or 1.0
    if diverging:
        # Bokeh's RdBu runs blue to red; reversed, negatives are red. Red-blue stays
        # readable for red-green colour blindness.
        mapper = LinearColorMapper(palette=list(reversed(RdBu11)), low=-top, high=top)
    else:
        # Cividis is built for colour-blind readers; anything below a billionth of the
        # largest cell is "nothing moved" and drawn white.
        mapper = LinearColorMapper(palette=list(reversed(Cividis256)), low=top * 1e-9,
                                   high=top, low_color="#ffffff")
    text = [fmt(v) if abs(v) > top * 1e-9 else "" for v in numbers]
    source = ColumnDataSource({"x": [c[0] for c in cells], "y": [c[1] for c in cells],
                               "value": rounded(numbers, 6), "text": text,
                               "ink": ["#ffffff" if abs(v) > 0.55 * top else "#111111"
                                       for v in numbers]})
    # The colour bar (right of the cells) reads a cell's colour back as a number in ``unit``.
    fig = new_figure(title, x_label, y_label, width=max(560, 230 + size * len(xs)),
                     height=max(260, 110 + size * len(ys)), x_range=list(xs),
                     y_range=list(reversed(ys)),
                     tooltips=[(y_label, "@y"), (x_label, "@x"), (unit, "@value{0,0.00}")])
    fig.rect(x="x", y="y", width=0.96, height=0.96, source=source,
             fill_color={"field": "value", "transform": mapper}, line_color="#dddddd")
    fig.text(x="x", y="y", text="text", source=source, text_align="center",
             text_baseline="middle", text_font_size="9px", text_color="ink")
    fig.xaxis.major_label_orientation = 0.8
    fig.grid.grid_line_color = None
    bar = ColorBar(color_mapper=mapper, title=unit, title_text_font_size=FONT,
                   major_label_text_font_size=FONT, width=12, padding=6)
    if not diverging:
        # The white "nothing moved" of the cells is below the mapper's low end; say so.
        bar.title = f"{unit} (white: none)"
    fig.add_layout(bar, "right")
    return fig
