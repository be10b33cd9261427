"""Inline SVG charts for the report pages: a daily trend (line_chart) and a horizontal bar chart
(bar_chart), drawn on the server so the pages need no JavaScript.

Plain Python: Django is used only to escape text, so this is tested without a database.

Readable without colour (issue 8): each series has its own dash pattern AND marker shape, and the
legend shows both next to the name; bars print their figures as text, and the secondary part of a
bar is hatched. Colours come from the page's CSS (static/css/charts.css): a `.series-N` class sets
`color` and the marks are drawn in `currentColor`, so without that CSS a chart is drawn in the
text colour and still reads. The dash patterns are inline attributes for the same reason.

Accessible: the <svg> is role="img", named by its <title> and described by a <desc> summing up
each series. The page always shows the same figures in a table as well (chart_table_rows).

Every piece of text is escaped: series names, bar labels and titles are dialogue and card names
typed by marketers. Coordinates are rounded to 0.1 px to keep two years of five series small.
"""

import math
import re
import uuid
from dataclasses import dataclass
from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Up to five series are told apart by dash pattern and marker shape alone. A sixth and later
# series reuse the patterns with a shifted shape, so the (pattern, shape) pair stays unique up
# to 25 series.
DASHES = ("none", "8 4", "2 3", "8 3 2 3", "12 3 2 3 2 3")
MARKERS = ("circle", "square", "triangle", "diamond", "cross")
# charts.css defines .series-1 ... .series-7 (Okabe-Ito, without the yellow, which is too
# pale on white).
PALETTE_SIZE = 7

FONT_SIZE = 11
# We cannot measure text on the server: a generous average glyph width at FONT_SIZE, used to
# leave room for labels and to thin them out.
CHAR_W = 6.5
MARKER_R = 3.5
# The closest two markers of a series may be before they are thinned out, in px.
MARKER_SPACING = 14
LEGEND_SAMPLE_W = 36  # long enough to show a whole period of the longest dash pattern
LEGEND_ROW_H = 20
MAX_LEGEND_CHARS = 32
MAX_BAR_LABEL_CHARS = 40
BAR_ROW_H = 26
BAR_H = 16

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SVG_NS = "http://www.w3.org/2000/svg"
_CHART_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class Series:
    """One line of a line chart: a name (shown escaped) and one value per day, each >= 0."""

    name: str
    values: list[int | float]


@dataclass(frozen=True)
class Bar:
    """One bar of a bar chart.

    `secondary` is the part of `value` drawn hatched at the bar's end (e.g. the visitors who
    dropped off at this card); `note` is extra text printed after the figures.
    """

    label: str
    value: float
    secondary: float = 0
    note: str = ""


@dataclass(frozen=True)
class SeriesStyle:
    css_class: str  # "series-1" ...: the colour, from charts.css
    dasharray: str  # stroke-dasharray of the line
    marker: str  # one of MARKERS


def series_style(index: int) -> SeriesStyle:
    """The look of the `index`-th series (0-based), the same in every chart."""
    dash = index % len(DASHES)
    marker = (index + index // len(DASHES)) % len(MARKERS)
    return SeriesStyle(f"series-{index % PALETTE_SIZE + 1}", DASHES[dash], MARKERS[marker])


def line_chart(
    days: list[date],
    series: list[Series],
    *,
    title: str,
    height: int = 220,
    width: int = 720,
    chart_id: str = "",
) -> SafeString:
    """A daily trend: one line per series over `days` (consecutive, oldest first).

    Returns an <svg> of `width` x `height` (taller if the legend needs more room) for a template
    to include as is. Each series needs exactly one value per day. `chart_id` (optional) is the
    id of the <svg>, and prefixes the ids inside it; by default a random one is made.

    Raises ValueError for no days, no series, a series of the wrong length or a negative value.
    """
    if not days:
        raise ValueError("A line chart needs at least one day.")
    if not series:
        raise ValueError("A line chart needs at least one series.")
    for line in series:
        if len(line.values) != len(days):
            raise ValueError(
                f"Series {line.name!r} has {len(line.values)} values for {len(days)} days."
            )
        if any(value < 0 for value in line.values):
            raise ValueError(f"Series {line.name!r} has a negative value.")
    cid = _chart_id(chart_id)
    n = len(days)
    styles = [series_style(i) for i in range(len(series))]

    integral = all(float(v).is_integer() for line in series for v in line.values)
    ticks = nice_ticks(max(max(line.values) for line in series), integral=integral)
    y_max = ticks[-1]
    tick_labels = [_number(t) for t in ticks]
    end_labels = [_number(line.values[-1]) for line in series]

    legend, legend_h = _legend(series, styles, width)
    left = 10 + max(map(len, tick_labels)) * CHAR_W
    # The right margin holds each line's last value, after a small marker to say which line.
    right = 2 * MARKER_R + 14 + max(map(len, end_labels)) * CHAR_W
    top = legend_h + 10
    bottom = max(height - 24, top + 80)  # 24 px below for the dates
    height = bottom + 24
    plot_w = width - left - right
    plot_h = bottom - top

    def x_at(i: int) -> float:
        return left + plot_w / 2 if n == 1 else left + i * plot_w / (n - 1)

    def y_at(value: float) -> float:
        return bottom - value / y_max * plot_h

    out = [_svg_open(cid, "chart chart-line", width, height)]
    out.append(_title_and_desc(cid, title, _line_summary(days, series)))
    out.append(legend)

    # Gridlines and the value axis.
    out.append('<g class="y-axis" text-anchor="end">')
    for tick, label in zip(ticks, tick_labels, strict=True):
        y = _r(y_at(tick))
        css = "axis" if tick == 0 else "grid"
        colour = "#98a2b3" if tick == 0 else "#e4e7ec"
        out.append(
            f'<line class="{css}" x1="{_r(left)}" x2="{_r(left + plot_w)}" y1="{y}" y2="{y}"'
            f' stroke="{colour}"/><text x="{_r(left - 6)}" y="{y}" dy="0.32em">{label}</text>'
        )
    out.append("</g>")

    # Dates along the bottom, thinned out so they do not overlap.
    out.append('<g class="x-axis" text-anchor="middle">')
    for i, label in _date_labels(days, plot_w):
        x = _r(x_at(i))
        out.append(
            f'<line class="axis" x1="{x}" x2="{x}" y1="{_r(bottom)}" y2="{_r(bottom + 4)}"'
            f' stroke="#98a2b3"/><text x="{x}" y="{_r(bottom + 16)}">{escape(label)}</text>'
        )
    out.append("</g>")

    # The lines, each with its markers: every point, or every Nth on long ranges. The series
    # start their markers at different offsets so that overlapping lines still show each shape.
    marker_step = max(1, math.ceil(n / max(1, plot_w // MARKER_SPACING)))
    for k, (line, style) in enumerate(zip(series, styles, strict=True)):
        points = [(x_at(i), y_at(v)) for i, v in enumerate(line.values)]
        d = f"M{_r(points[0][0])} {_r(points[0][1])}"
        if n > 1:
            d += "L" + " ".join(f"{_r(x)} {_r(y)}" for x, y in points[1:])
        marked = set(range(k * marker_step // len(series), n, marker_step)) | {n - 1}
        markers = "".join(_marker_path(style.marker, *points[i], MARKER_R) for i in sorted(marked))
        out.append(
            f'<g class="series {style.css_class}" data-series="{k}"><title>{escape(line.name)}'
            f'</title><path class="line" d="{d}" fill="none" stroke="currentColor"'
            f' stroke-width="2" stroke-linejoin="round" stroke-dasharray="{style.dasharray}"/>'
            f"{_marker_element(style.marker, markers)}</g>"
        )

    # Each line's last value in the right margin, nudged apart so that the labels never overlap.
    label_ys = _spread([y_at(line.values[-1]) for line in series], gap=13, low=top, high=bottom)
    out.append('<g class="end-labels">')
    for line, style, label, y in zip(series, styles, end_labels, label_ys, strict=True):
        x = left + plot_w + 8 + MARKER_R
        glyph = _marker_element(style.marker, _marker_path(style.marker, x, y, MARKER_R))
        out.append(
            f'<g class="{style.css_class}"><title>{escape(line.name)}: {label}</title>{glyph}'
            f'<text x="{_r(x + MARKER_R + 4)}" y="{_r(y)}" dy="0.32em">{label}</text></g>'
        )
    out.append("</g></svg>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of text above went through escape()


def bar_chart(
    rows: list[Bar],
    *,
    title: str,
    unit: str = "",
    secondary_label: str = "dropped off here",
    width: int = 720,
    chart_id: str = "",
) -> SafeString:
    """Horizontal bars, one per row in the given order, each followed by its figures as text.

    `unit` is appended to every figure as is (" visitors", "%"). A row's `secondary` part is
    drawn hatched over the end of its bar and printed as "(20 dropped off here)", using
    `secondary_label`, which also names the hatching in a legend (none if it is empty). A
    secondary larger than the value is printed as is but drawn as the whole bar. The <svg> is
    `width` wide (its viewBox wider if long figures need it) and as tall as the rows. No rows
    give a chart saying "No data".

    Raises ValueError for a negative value or secondary.
    """
    cid = _chart_id(chart_id)
    if any(row.value < 0 or row.secondary < 0 for row in rows):
        raise ValueError("Bar values cannot be negative.")
    if not rows:
        out = [_svg_open(cid, "chart chart-bar", width, BAR_ROW_H)]
        out.append(_title_and_desc(cid, title, "No data."))
        out.append(f'<text x="0" y="{BAR_ROW_H // 2}" dy="0.32em">No data</text></svg>')
        return mark_safe("".join(out))  # noqa: S308 - escaped in _title_and_desc

    figures = [_bar_figures(row, unit, secondary_label) for row in rows]
    labels = [_truncate(row.label, MAX_BAR_LABEL_CHARS) for row in rows]
    label_w = min(max(map(len, labels)) * CHAR_W, 0.3 * width)
    labels = [_truncate(label, int(label_w // CHAR_W)) for label in labels]
    text_w = max(map(len, figures)) * CHAR_W
    # Widen the viewBox rather than squeeze the bars below a third of the chart.
    bar_area = max(width - label_w - text_w - 20, width / 3)
    width = math.ceil(label_w + bar_area + text_w + 20)
    largest = max(row.value for row in rows)
    scale = bar_area / largest if largest > 0 else 0
    has_secondary = any(row.secondary > 0 for row in rows)
    with_legend = has_secondary and bool(secondary_label)

    top = LEGEND_ROW_H + 4 if with_legend else 2
    height = math.ceil(top + len(rows) * BAR_ROW_H)
    hatch = f"{cid}-hatch"
    out = [_svg_open(cid, "chart chart-bar", width, height)]
    out.append(_title_and_desc(cid, title, _bar_summary(rows, figures)))
    # Diagonal stripes in the bar colour on a light ground: the secondary part looks lighter,
    # and differs from the bar by its texture, not only by its shade.
    out.append(
        f'<defs><pattern id="{hatch}" class="series-1" patternUnits="userSpaceOnUse" width="6"'
        ' height="6" patternTransform="rotate(45)"><rect class="hatch-ground" width="6"'
        ' height="6" fill="#fff"/><line x1="0" y1="0" x2="0" y2="6" stroke="currentColor"'
        ' stroke-width="3"/></pattern></defs>'
    )
    if with_legend:
        out.append(
            f'<g class="legend"><rect class="series-1" x="{_r(label_w + 6)}" y="4" width="24"'
            f' height="12" fill="url(#{hatch})" stroke="currentColor"/><text'
            f' x="{_r(label_w + 36)}" y="10" dy="0.32em">{escape(_capitalise(secondary_label))}'
            "</text></g>"
        )
    bar_x = label_w + 6
    for i, (row, label, text) in enumerate(zip(rows, labels, figures, strict=True)):
        y = top + i * BAR_ROW_H + (BAR_ROW_H - BAR_H) / 2
        bar_w = row.value * scale
        if row.value > 0:
            bar_w = max(bar_w, 1)  # a tiny value still shows a sliver
        out.append(
            f'<g class="bar-row"><title>{escape(row.label)}: {escape(text)}</title>'
            f'<text x="{_r(label_w)}" y="{_r(y + BAR_H / 2)}" dy="0.32em"'
            f' text-anchor="end">{escape(label)}</text>'
        )
        if bar_w:
            out.append(
                f'<rect class="bar series-1" x="{_r(bar_x)}" y="{_r(y)}" width="{_r(bar_w)}"'
                f' height="{BAR_H}" fill="currentColor"/>'
            )
        if row.secondary > 0 and bar_w:
            part_w = min(row.secondary * scale, bar_w)
            out.append(
                f'<rect class="bar-secondary series-1" x="{_r(bar_x + bar_w - part_w)}"'
                f' y="{_r(y)}" width="{_r(part_w)}" height="{BAR_H}" fill="url(#{hatch})"'
                ' stroke="currentColor"/>'
            )
        out.append(
            f'<text class="figures" x="{_r(bar_x + bar_w + 6)}" y="{_r(y + BAR_H / 2)}"'
            f' dy="0.32em">{escape(text)}</text></g>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # noqa: S308 - every piece of text above went through escape()


def chart_table_rows(days: list[date], series: list[Series]) -> list[tuple[date, list]]:
    """The line chart's figures as table rows: (day, [one value per series]), oldest first."""
    return [(day, [line.values[i] for line in series]) for i, day in enumerate(days)]


def nice_ticks(peak: float, *, integral: bool = True) -> list[float]:
    """Three to five evenly spaced round numbers (steps of 1, 2 or 5 times a power of ten) from 0
    up to at least `peak` (>= 0). With `integral` data the step is at least 1; an all-zero chart
    gets 0, 1, 2 so its flat line sits on the axis."""
    if peak <= 0:
        step = 1.0
    else:
        # The smallest round step that covers the peak in at most four intervals.
        magnitude = 10.0 ** math.floor(math.log10(peak / 4))
        step = next(
            m * magnitude * 10**e
            for e in range(3)
            for m in (1, 2, 5)
            if math.ceil(peak / (m * magnitude * 10**e) - 1e-9) <= 4
        )
    if integral:
        step = max(step, 1.0)
    intervals = max(2, math.ceil(peak / step - 1e-9))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [round(i * step, decimals) for i in range(intervals + 1)]


def _chart_id(chart_id: str) -> str:
    if not chart_id:
        return f"chart-{uuid.uuid4().hex[:8]}"
    if not _CHART_ID.match(chart_id):
        raise ValueError(f"{chart_id!r} is not a usable id (a letter, then letters, digits, _, -).")
    return chart_id


def _svg_open(cid: str, css: str, width: float, height: float) -> str:
    return (
        f'<svg xmlns="{SVG_NS}" id="{cid}" class="{css}" viewBox="0 0 {_r(width)} {_r(height)}"'
        f' width="{_r(width)}" height="{_r(height)}" role="img"'
        f' aria-labelledby="{cid}-title {cid}-desc" font-size="{FONT_SIZE}">'
    )


def _title_and_desc(cid: str, title: str, desc: str) -> str:
    return (
        f'<title id="{cid}-title">{escape(title)}</title>'
        f'<desc id="{cid}-desc">{escape(desc)}</desc>'
    )


def _legend(series: list[Series], styles: list[SeriesStyle], width: float) -> tuple[str, float]:
    """The legend entries (a line sample with its marker, then the name), wrapped into rows
    across the top. Returns the markup and its height."""
    out = ['<g class="legend">']
    x, row = 0.0, 0
    for line, style in zip(series, styles, strict=True):
        name = _truncate(line.name, MAX_LEGEND_CHARS)
        entry_w = LEGEND_SAMPLE_W + 6 + len(name) * CHAR_W + 18
        if x and x + entry_w > width:
            x, row = 0.0, row + 1
        y = row * LEGEND_ROW_H + LEGEND_ROW_H / 2
        mid = x + LEGEND_SAMPLE_W / 2
        out.append(
            f'<g class="legend-entry"><g class="{style.css_class}"><line x1="{_r(x)}"'
            f' x2="{_r(x + LEGEND_SAMPLE_W)}" y1="{_r(y)}" y2="{_r(y)}" stroke="currentColor"'
            f' stroke-width="2" stroke-dasharray="{style.dasharray}"/>'
            f"{_marker_element(style.marker, _marker_path(style.marker, mid, y, MARKER_R))}</g>"
            f'<text x="{_r(x + LEGEND_SAMPLE_W + 6)}" y="{_r(y)}" dy="0.32em">{escape(name)}'
            "</text></g>"
        )
        x += entry_w
    out.append("</g>")
    return "".join(out), (row + 1) * LEGEND_ROW_H


def _marker_path(shape: str, x: float, y: float, r: float) -> str:
    """Path data for one marker of `shape` centred on (x, y); markers of a series are joined
    into one <path> to keep long charts small."""
    if shape == "circle":
        arc = f"a{_r(r)} {_r(r)} 0 1 0"
        return f"M{_r(x - r)} {_r(y)}{arc} {_r(2 * r)} 0{arc} -{_r(2 * r)} 0z"
    if shape == "square":
        s = 0.9 * r
        return f"M{_r(x - s)} {_r(y - s)}h{_r(2 * s)}v{_r(2 * s)}h{_r(-2 * s)}z"
    if shape == "triangle":
        s = 1.2 * r
        return f"M{_r(x)} {_r(y - s)}l{_r(s)} {_r(1.7 * s)}h{_r(-2 * s)}z"
    if shape == "diamond":
        s = 1.3 * r
        return f"M{_r(x)} {_r(y - s)}l{_r(s)} {_r(s)}l{_r(-s)} {_r(s)}l{_r(-s)} {_r(-s)}z"
    # cross: an X, stroked rather than filled
    d = _r(2 * r)
    return f"M{_r(x - r)} {_r(y - r)}l{d} {d}m0 -{d}l-{d} {d}"


def _marker_element(shape: str, d: str) -> str:
    # Filled shapes get a white edge to stand out from the lines they sit on; the cross is
    # drawn with its strokes alone.
    if shape == "cross":
        paint = 'fill="none" stroke="currentColor" stroke-width="1.8"'
    else:
        paint = 'fill="currentColor" stroke="#fff" stroke-width="1"'
    return f'<path class="marker" data-shape="{shape}" d="{d}" {paint}/>'


def _date_labels(days: list[date], plot_w: float) -> list[tuple[int, str]]:
    """(index, label) for the dates to print under the chart: every day, every 2nd day, every
    week or fortnight (Mondays), or the first of every 1, 2, 3, 6 or 12 months, whichever is
    the finest that fits."""
    n = len(days)
    spans_years = days[0].year != days[-1].year
    fits = max(2, int(plot_w // (80 if spans_years else 56)))
    candidates: list[list[int]] = [list(range(n)), list(range(0, n, 2))]
    first_monday = (7 - days[0].weekday()) % 7
    candidates += [list(range(first_monday, n, 7)), list(range(first_monday, n, 14))]
    for indexes in candidates:
        if len(indexes) <= fits:
            return _day_labels(days, indexes, spans_years)
    for months in (1, 2, 3, 6, 12):
        indexes = [i for i, d in enumerate(days) if d.day == 1 and (d.month - 1) % months == 0]
        if len(indexes) <= fits:
            break
    labels = []
    for j, i in enumerate(indexes):
        d = days[i]
        year = f" {d.year}" if j == 0 or d.month == 1 else ""
        labels.append((i, f"{MONTHS[d.month - 1]}{year}"))
    return labels


def _day_labels(days: list[date], indexes: list[int], spans_years: bool) -> list[tuple[int, str]]:
    labels = []
    for j, i in enumerate(indexes):
        d = days[i]
        # Across New Year, the first label and the first one of each new year carry the year.
        new_year = spans_years and (j == 0 or d.year != days[indexes[j - 1]].year)
        labels.append((i, _long_date(d) if new_year else _short_date(d)))
    return labels


def _short_date(d: date) -> str:
    return f"{MONTHS[d.month - 1]} {d.day}"


def _long_date(d: date) -> str:
    return f"{_short_date(d)}, {d.year}"


def _line_summary(days: list[date], series: list[Series]) -> str:
    """The <desc>: the period, then each series' total and its peak day."""
    if len(days) == 1:
        parts = [f"On {_long_date(days[0])}."]
        parts += [f"{line.name}: {_number(line.values[0])}." for line in series]
        return " ".join(parts)
    spans_years = days[0].year != days[-1].year
    parts = [f"Daily, {_long_date(days[0])} to {_long_date(days[-1])}."]
    for line in series:
        total = sum(line.values)
        text = f"{line.name}: {_number(total)} in total"
        if total:
            peak = max(line.values)
            day = days[line.values.index(peak)]
            when = _long_date(day) if spans_years else _short_date(day)
            text += f", peak {_number(peak)} on {when}"
        parts.append(text + ".")
    return " ".join(parts)


def _bar_figures(row: Bar, unit: str, secondary_label: str) -> str:
    text = f"{_number(row.value)}{unit}"
    if row.secondary > 0:
        what = f" {secondary_label}" if secondary_label else ""
        text += f" ({_number(row.secondary)}{unit}{what})"
    if row.note:
        text += f" · {row.note}"
    return text


def _bar_summary(rows: list[Bar], figures: list[str]) -> str:
    return "; ".join(f"{row.label}: {text}" for row, text in zip(rows, figures, strict=True)) + "."


def _spread(ys: list[float], *, gap: float, low: float, high: float) -> list[float]:
    """The `ys` moved as little as keeps them `gap` apart and within [low, high], same order."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    placed = [ys[i] for i in order]
    for j in range(1, len(placed)):
        placed[j] = max(placed[j], placed[j - 1] + gap)
    # Pushed past the bottom: slide the stack back up, keeping the gaps.
    placed[-1] = min(placed[-1], high)
    for j in range(len(placed) - 2, -1, -1):
        placed[j] = min(placed[j], placed[j + 1] - gap)
    placed = [max(y, low) for y in placed]
    result = [0.0] * len(ys)
    for j, i in enumerate(order):
        result[i] = placed[j]
    return result


def _number(value: float) -> str:
    """1234 -> "1,234"; 2.5 -> "2.5"; 0.125 -> "0.13"."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _truncate(text: str, limit: int) -> str:
    limit = max(limit, 2)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _r(value: float) -> str:
    """A coordinate rounded to 0.1, without a needless ".0"."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text
