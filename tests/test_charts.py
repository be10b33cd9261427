"""The report charts on their own (reports.charts, no database): a marketer's daily trend of five
figures and a dialogue's card funnel, read the way a screen reader, a colour-blind reader and a
browser without our CSS would read them."""

import itertools
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template

from reports.charts import (
    MARKERS,
    PALETTE_SIZE,
    SVG_NS,
    Bar,
    Series,
    bar_chart,
    chart_table_rows,
    line_chart,
    nice_ticks,
    series_style,
)

NS = {"svg": SVG_NS}
FIGURES = ("Triggered", "Engaged", "Completed", "People captured", "Meetings")
NOV_3 = date(2025, 11, 3)


def days_from(start: date, count: int) -> list[date]:
    return [start + timedelta(days=n) for n in range(count)]


def a_month_of_figures() -> tuple[list[date], list[Series]]:
    """30 days from Nov 3: Triggered peaks at 80 on Nov 3 and adds up to 1,234."""
    days = days_from(NOV_3, 30)
    triggered = [80] + [40] * 28 + [34]
    assert sum(triggered) == 1234
    series = [Series("Triggered", triggered)]
    series += [
        Series(name, [(n * (k + 3)) % (40 // (k + 1)) for n in range(30)])
        for k, name in enumerate(FIGURES[1:])
    ]
    return days, series


def parse(svg) -> ET.Element:
    return ET.fromstring(str(svg))  # noqa: S314 - our own output, and parsing it is the test


def series_groups(root: ET.Element) -> list[ET.Element]:
    return root.findall("svg:g[@data-series]", NS)


def numbers_in(path_data: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path_data)]


def y_coordinates_of_line(group: ET.Element) -> list[float]:
    d = group.find("svg:path[@class='line']", NS).get("d")
    return numbers_in(d)[1::2]


def test_a_trend_chart_is_an_image_named_by_its_title_and_described_by_a_summary():
    days, series = a_month_of_figures()
    root = parse(line_chart(days, series, title="Chats in November"))

    assert root.tag == f"{{{SVG_NS}}}svg"
    assert root.get("role") == "img"
    title = root.find("svg:title", NS)
    desc = root.find("svg:desc", NS)
    assert title.text == "Chats in November"
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    assert desc.text.startswith("Daily, Nov 3, 2025 to Dec 2, 2025.")
    assert "Triggered: 1,234 in total, peak 80 on Nov 3." in desc.text
    for name in FIGURES:
        assert f"{name}: " in desc.text


def test_each_series_has_its_own_dash_pattern_and_marker_shape():
    days, series = a_month_of_figures()
    groups = series_groups(parse(line_chart(days, series, title="Trend")))

    assert len(groups) == 5
    dashes = [g.find("svg:path[@class='line']", NS).get("stroke-dasharray") for g in groups]
    shapes = [g.find("svg:path[@class='marker']", NS).get("data-shape") for g in groups]
    assert len(set(dashes)) == 5
    assert sorted(shapes) == sorted(MARKERS)


def test_series_colours_come_from_css_classes_so_the_page_styles_them():
    days, series = a_month_of_figures()
    groups = series_groups(parse(line_chart(days, series, title="Trend")))

    assert [g.get("class") for g in groups] == [f"series series-{k}" for k in range(1, 6)]
    for group in groups:
        assert group.find("svg:path[@class='line']", NS).get("stroke") == "currentColor"


def test_the_stylesheet_colours_every_series_class_the_charts_use():
    css = (Path(settings.BASE_DIR) / "static/css/charts.css").read_text()

    for n in range(1, PALETTE_SIZE + 1):
        assert f".chart .series-{n} {{ color: var(--chart-{n}); }}" in css
        assert f"--chart-{n}:" in css


def test_more_than_five_series_still_differ_by_pattern_or_shape():
    looks = {(series_style(k).dasharray, series_style(k).marker) for k in range(25)}

    assert len(looks) == 25


def test_the_legend_shows_each_name_beside_its_dash_and_marker_sample():
    days, series = a_month_of_figures()
    root = parse(line_chart(days, series, title="Trend"))
    groups = series_groups(root)
    entries = root.findall("svg:g[@class='legend']/svg:g[@class='legend-entry']", NS)

    assert [e.find("svg:text", NS).text for e in entries] == list(FIGURES)
    for entry, group in zip(entries, groups, strict=True):
        sample = entry.find("svg:g/svg:line", NS)
        line = group.find("svg:path[@class='line']", NS)
        assert sample.get("stroke-dasharray") == line.get("stroke-dasharray")
        sample_marker = entry.find("svg:g/svg:path[@class='marker']", NS)
        marker = group.find("svg:path[@class='marker']", NS)
        assert sample_marker.get("data-shape") == marker.get("data-shape")


def test_each_line_ends_with_its_last_value_and_the_labels_do_not_overlap():
    days = days_from(NOV_3, 7)
    # Three lines ending on the same value: their labels must be pushed apart.
    series = [Series(name, [1, 2, 3, 4, 5, 6, 7]) for name in ("A", "B", "C")]
    root = parse(line_chart(days, series, title="Trend"))

    labels = root.findall("svg:g[@class='end-labels']/svg:g/svg:text", NS)
    assert [label.text for label in labels] == ["7", "7", "7"]
    ys = sorted(float(label.get("y")) for label in labels)
    assert all(b - a >= 12 for a, b in itertools.pairwise(ys))


def test_series_names_and_titles_are_escaped():
    days = days_from(NOV_3, 3)
    series = [Series("<script>alert(1)</script>", [1, 2, 3]), Series('Tom & "Jerry"', [0, 1, 0])]
    svg = str(line_chart(days, series, title="<b>Pricing</b> & more"))

    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "<b>" not in svg
    root = parse(svg)
    assert root.find("svg:title", NS).text == "<b>Pricing</b> & more"
    legend = [t.text for t in root.findall("svg:g[@class='legend']/svg:g/svg:text", NS)]
    assert legend == ["<script>alert(1)</script>", 'Tom & "Jerry"']


@pytest.mark.parametrize("peak", [1, 2, 3, 4, 5, 7, 9, 10, 11, 19, 80, 99, 100, 101, 1234, 999_999])
def test_the_value_axis_has_three_to_five_round_ticks_from_zero_covering_the_peak(peak):
    ticks = nice_ticks(peak)

    assert 3 <= len(ticks) <= 5
    assert ticks[0] == 0
    assert ticks[-1] >= peak
    step = ticks[1]
    assert all(b - a == step for a, b in itertools.pairwise(ticks))
    # A round step: 1, 2 or 5 times a power of ten.
    assert re.fullmatch(r"[125]0*", str(int(step)))
    # And not wastefully tall: one step less would not cover the peak.
    assert ticks[-2] < peak or len(ticks) == 3


def test_fractional_figures_get_fractional_round_ticks():
    assert nice_ticks(0.3, integral=False) == [0, 0.1, 0.2, 0.3]
    assert nice_ticks(2.5, integral=False) == [0, 1, 2, 3]


def test_the_chart_prints_the_ticks_it_draws():
    days, series = a_month_of_figures()
    root = parse(line_chart(days, series, title="Trend"))

    ticks = [t.text for t in root.findall("svg:g[@class='y-axis']/svg:text", NS)]
    assert ticks == ["0", "20", "40", "60", "80"]


def test_dates_are_labelled_without_overlapping():
    days, series = a_month_of_figures()
    root = parse(line_chart(days, series, title="Trend"))

    labels = root.findall("svg:g[@class='x-axis']/svg:text", NS)
    # Thirty days do not fit: one label a week, on Mondays.
    assert [label.text for label in labels] == ["Nov 3", "Nov 10", "Nov 17", "Nov 24", "Dec 1"]
    xs = [float(label.get("x")) for label in labels]
    assert all(b - a >= 50 for a, b in itertools.pairwise(xs))


def test_a_single_day_is_one_marker_per_series_in_the_middle():
    days = [NOV_3]
    series = [Series(name, [k + 1]) for k, name in enumerate(FIGURES)]
    root = parse(line_chart(days, series, title="Today"))

    assert [t.text for t in root.findall("svg:g[@class='x-axis']/svg:text", NS)] == ["Nov 3"]
    for group in series_groups(root):
        assert group.find("svg:path[@class='marker']", NS) is not None
    assert root.find("svg:desc", NS).text.startswith("On Nov 3, 2025. Triggered: 1.")


def test_all_zeros_draw_flat_lines_on_the_axis():
    days = days_from(NOV_3, 14)
    series = [Series(name, [0] * 14) for name in FIGURES]
    root = parse(line_chart(days, series, title="Quiet fortnight"))

    axis = root.find("svg:g[@class='y-axis']/svg:line[@class='axis']", NS)
    for group in series_groups(root):
        assert set(y_coordinates_of_line(group)) == {float(axis.get("y1"))}
    assert [t.text for t in root.findall("svg:g[@class='y-axis']/svg:text", NS)] == ["0", "1", "2"]
    assert "Triggered: 0 in total." in root.find("svg:desc", NS).text


def test_two_years_of_five_series_stay_small_with_thinned_markers_and_month_labels():
    days = days_from(date(2023, 11, 3), 731)
    series = [
        Series(name, [(n * 37 + k * 11) % (900 // (k + 1)) for n in range(731)])
        for k, name in enumerate(FIGURES)
    ]
    svg = str(line_chart(days, series, title="Two years"))
    root = parse(svg)

    assert len(svg.encode()) < 150_000
    for group in series_groups(root):
        markers = group.find("svg:path[@class='marker']", NS).get("d")
        assert 10 < markers.count("M") < 100
        assert len(y_coordinates_of_line(group)) == 731
    labels = [t.text for t in root.findall("svg:g[@class='x-axis']/svg:text", NS)]
    assert labels[0] == "Jan 2024"
    assert "Jan 2025" in labels
    assert len(labels) <= 12
    assert "Nov 3, 2023 to Nov 2, 2025" in root.find("svg:desc", NS).text


def test_coordinates_are_rounded_to_one_decimal():
    days, series = a_month_of_figures()
    svg = str(line_chart(days, series, title="Trend"))

    coordinates = re.findall(r' (?:d|x|y|x1|x2|y1|y2|width|height)="([^"]*)"', svg)
    assert coordinates
    assert not any(re.search(r"\d\.\d\d", value) for value in coordinates)


def test_a_range_across_new_year_names_the_years():
    days = days_from(date(2025, 12, 29), 6)
    series = [Series("Triggered", [1, 2, 3, 4, 5, 6])]
    root = parse(line_chart(days, series, title="New Year"))

    labels = [t.text for t in root.findall("svg:g[@class='x-axis']/svg:text", NS)]
    assert labels == ["Dec 29, 2025", "Dec 30", "Dec 31", "Jan 1, 2026", "Jan 2", "Jan 3"]


def test_each_chart_has_its_own_ids_unless_given_one():
    days, series = a_month_of_figures()
    first = parse(line_chart(days, series, title="Trend"))
    second = parse(line_chart(days, series, title="Trend"))
    named = parse(line_chart(days, series, title="Trend", chart_id="trend-chart"))

    assert first.get("id") != second.get("id")
    assert named.get("id") == "trend-chart"
    assert named.get("aria-labelledby") == "trend-chart-title trend-chart-desc"
    with pytest.raises(ValueError, match="not a usable id"):
        line_chart(days, series, title="Trend", chart_id='x" onload="alert(1)')


def test_bad_line_chart_input_is_refused_clearly():
    days = days_from(NOV_3, 3)
    with pytest.raises(ValueError, match="at least one day"):
        line_chart([], [Series("Triggered", [])], title="Trend")
    with pytest.raises(ValueError, match="at least one series"):
        line_chart(days, [], title="Trend")
    with pytest.raises(ValueError, match="'Engaged' has 2 values for 3 days"):
        line_chart(days, [Series("Engaged", [1, 2])], title="Trend")
    with pytest.raises(ValueError, match="negative"):
        line_chart(days, [Series("Engaged", [1, -2, 3])], title="Trend")


def test_table_rows_give_each_day_with_one_figure_per_series():
    days = days_from(NOV_3, 2)
    series = [Series("Triggered", [5, 7]), Series("Engaged", [2, 3])]

    assert chart_table_rows(days, series) == [(NOV_3, [5, 2]), (date(2025, 11, 4), [7, 3])]


FUNNEL = [
    Bar("Hello", 1000),
    Bar("Want a demo?", 800, secondary=200, note="80% of those greeted"),
    Bar("Your email?", 600, secondary=150),
    Bar("<img src=x onerror=alert(1)>", 0),
]


def bar_rows(root: ET.Element) -> list[ET.Element]:
    return root.findall("svg:g[@class='bar-row']", NS)


def test_a_bar_chart_is_an_image_that_prints_every_figure_as_text():
    root = parse(bar_chart(FUNNEL, title="Card funnel", unit=" visitors"))

    assert root.get("role") == "img"
    assert root.find("svg:title", NS).text == "Card funnel"
    figures = [row.find("svg:text[@class='figures']", NS).text for row in bar_rows(root)]
    assert figures == [
        "1,000 visitors",
        "800 visitors (200 visitors dropped off here) · 80% of those greeted",
        "600 visitors (150 visitors dropped off here)",
        "0 visitors",
    ]
    desc = root.find("svg:desc", NS).text
    assert desc.startswith("Hello: 1,000 visitors; Want a demo?: 800 visitors (200 visitors")


def test_bar_lengths_follow_the_values():
    root = parse(bar_chart(FUNNEL, title="Card funnel"))

    widths = [
        float(row.find("svg:rect[@class='bar series-1']", NS).get("width"))
        for row in bar_rows(root)[:3]
    ]
    assert widths[1] / widths[0] == pytest.approx(0.8, abs=0.01)
    assert widths[2] / widths[0] == pytest.approx(0.6, abs=0.01)
    # Nothing to draw for zero, but its row and its figure are there.
    assert bar_rows(root)[3].find("svg:rect", NS) is None


def test_the_secondary_part_is_hatched_at_the_end_of_its_bar_and_named_in_a_legend():
    root = parse(bar_chart(FUNNEL, title="Card funnel"))
    pattern = root.find("svg:defs/svg:pattern", NS)

    assert pattern.find("svg:line", NS) is not None
    row = bar_rows(root)[1]
    bar = row.find("svg:rect[@class='bar series-1']", NS)
    part = row.find("svg:rect[@class='bar-secondary series-1']", NS)
    assert part.get("fill") == f"url(#{pattern.get('id')})"
    assert float(part.get("width")) == pytest.approx(float(bar.get("width")) / 4, abs=0.1)
    bar_end = float(bar.get("x")) + float(bar.get("width"))
    assert float(part.get("x")) + float(part.get("width")) == pytest.approx(bar_end, abs=0.1)
    legend = root.find("svg:g[@class='legend']", NS)
    assert legend.find("svg:rect", NS).get("fill") == part.get("fill")
    assert legend.find("svg:text", NS).text == "Dropped off here"


def test_bars_without_a_secondary_part_need_no_legend():
    root = parse(bar_chart([Bar("Hello", 10), Bar("Bye", 4)], title="Card funnel"))

    assert root.find("svg:g[@class='legend']", NS) is None
    assert root.find(".//svg:rect[@class='bar-secondary series-1']", NS) is None


def test_an_unnamed_secondary_part_is_hatched_and_printed_without_a_legend():
    root = parse(
        bar_chart([Bar("Hello", 10, secondary=4)], title="Card funnel", secondary_label="")
    )

    assert root.find("svg:g[@class='legend']", NS) is None
    row = bar_rows(root)[0]
    assert row.find("svg:rect[@class='bar-secondary series-1']", NS) is not None
    assert row.find("svg:text[@class='figures']", NS).text == "10 (4)"


def test_bar_labels_are_escaped_and_long_ones_shortened_with_the_full_text_on_hover():
    long_label = "What would you like to talk about with our sales team today, if anything?"
    svg = str(bar_chart([*FUNNEL, Bar(long_label, 10)], title="Card funnel"))

    assert "<img" not in svg
    rows = bar_rows(parse(svg))
    assert rows[3].find("svg:text", NS).text == "<img src=x onerror=alert(1)>"
    shown = rows[4].find("svg:text", NS).text
    assert shown.endswith("…")
    assert len(shown) < len(long_label)
    assert rows[4].find("svg:title", NS).text.startswith(long_label)


def test_all_zero_and_empty_bar_charts_still_draw():
    zeros = parse(bar_chart([Bar("Hello", 0), Bar("Bye", 0)], title="Card funnel"))
    empty = parse(bar_chart([], title="Card funnel"))

    assert [r.find("svg:text[@class='figures']", NS).text for r in bar_rows(zeros)] == ["0", "0"]
    assert empty.find("svg:desc", NS).text == "No data."
    assert empty.find("svg:text", NS).text == "No data"


def test_a_negative_bar_is_refused():
    with pytest.raises(ValueError, match="negative"):
        bar_chart([Bar("Hello", 5, secondary=-1)], title="Card funnel")


def test_a_template_includes_the_chart_as_markup_not_as_escaped_text():
    days, series = a_month_of_figures()
    page = Template("<figure>{{ chart }}</figure>").render(
        Context({"chart": line_chart(days, series, title="Trend")})
    )

    assert page.startswith("<figure><svg ")
