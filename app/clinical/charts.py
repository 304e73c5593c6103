"""Score-over-time charts as SVG: matplotlib (Agg, no pyplot), deterministic output, accessible markup.

matplotlib is imported on the first chart, never at start-up. Every chart carries a ``<title>`` and ``<desc>``
(its text alternative) and prefixed element ids, so several charts can be inlined in one HTML page. The scored
points of a line are the ``<use>`` markers inside the group ``{chart id}-points-{score key}``.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from html import escape
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from app.clinical.points import Point
from app.clinical.risk import RISK_FLAGS
from app.scoring.definition import Band

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HASH_SALT = "compassion-outcomes"
BETTER_TO_WORSE = ("#e3f1e3", "#f1f1d6", "#fbe9d2", "#f7d9cf", "#efc6c6")
LINE_COLOURS = ("#1f4e99", "#8a3b12", "#2d6a2d", "#6b2f7a")
RISK_COLOUR = "#b00020"
MAX_DATE_TICKS = 6
TICK_STEPS_DAYS = (1, 2, 7, 14, 28, 56, 91, 182, 364)
"""Steps between date ticks, in local days: the smallest that keeps at most ``MAX_DATE_TICKS`` ticks is used (for
longer spans, whole multiples of 364 days)."""
_render_lock = threading.Lock()
_configured = False


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    points: tuple[Point, ...]
    direction: str = "lower_is_better"

    @property
    def scored(self) -> tuple[Point, ...]:
        return tuple(point for point in self.points if point.value is not None)


@dataclass(frozen=True)
class Chart:
    chart_id: str
    title: str
    description: str
    minimum: float
    maximum: float
    direction: str
    lines: tuple[Line, ...]
    bands: tuple[Band, ...] = ()
    baseline: float | None = None
    reliable_change_threshold: float | None = None
    cutoff: float | None = None
    zone: str = "UTC"
    """The IANA time zone whose calendar days the date axis shows."""


def render(chart: Chart, *, standalone: bool = False) -> str:
    """The chart as SVG text: a standalone document (for ``chart.svg``) or an element to inline in HTML."""
    with _render_lock:
        raw = _draw(chart, titled=standalone)
    svg = _prefix_ids(raw, chart.chart_id)
    svg = _label(svg, chart)
    if not standalone:
        svg = svg[svg.index("<svg") :]
    return svg


def _configure() -> None:
    global _configured
    if not _configured:
        import matplotlib

        matplotlib.use("Agg")
        matplotlib.rcParams["svg.hashsalt"] = HASH_SALT
        matplotlib.rcParams["svg.fonttype"] = "none"
        _configured = True


def _draw(chart: Chart, *, titled: bool) -> str:
    """Inline charts leave the visible title to the page's figure caption; a standalone chart carries its own."""
    _configure()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7.2, 3.1))
    figure.subplots_adjust(left=0.08, right=0.84, top=0.84 if titled else 0.9, bottom=0.3)
    axes = figure.add_subplot()
    axes.set_ylim(chart.minimum, chart.maximum)
    _shade_bands(axes, chart)
    _reliable_change_band(axes, chart)
    if chart.cutoff is not None:
        axes.axhline(
            chart.cutoff, color="#444444", linestyle="--", linewidth=1, label=f"Cut-off ({_num(chart.cutoff)})"
        )
    for index, line in enumerate(chart.lines):
        _plot_line(axes, chart, line, LINE_COLOURS[index % len(LINE_COLOURS)])
    _plot_flags(axes, chart)
    _dates_axis(axes, chart)
    axes.set_ylabel("Score", fontsize=8)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=chart.maximum - chart.minimum >= 10))
    axes.tick_params(labelsize=7)
    axes.grid(axis="y", color="#dddddd", linewidth=0.5)
    axes.set_axisbelow(True)
    if titled:
        figure.suptitle(chart.title, x=0.08, ha="left", fontsize=10)
    handles, labels = axes.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("Item 9"))
    if handles:
        axes.legend(
            [handles[i] for i in order],
            [labels[i] for i in order],
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=3,
            fontsize=7,
            frameon=False,
        )
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _shade_bands(axes: Axes, chart: Chart) -> None:
    from matplotlib.transforms import blended_transform_factory

    bands = list(chart.bands)
    colours: tuple[str, ...] = BETTER_TO_WORSE
    if chart.direction != "lower_is_better":
        colours = BETTER_TO_WORSE[::-1][len(BETTER_TO_WORSE) - len(bands) :]
    label_at = blended_transform_factory(axes.transAxes, axes.transData)
    for index, band in enumerate(bands):
        upper = bands[index + 1].lower if index + 1 < len(bands) else chart.maximum
        lower = max(band.lower, chart.minimum)
        axes.axhspan(lower, upper, facecolor=colours[index % len(colours)], edgecolor="none", zorder=0)
        axes.text(1.01, (lower + upper) / 2, band.label.replace("_", " "), transform=label_at, fontsize=7, va="center")


def _reliable_change_band(axes: Axes, chart: Chart) -> None:
    if chart.baseline is None or chart.reliable_change_threshold is None:
        return
    low = max(chart.baseline - chart.reliable_change_threshold, chart.minimum)
    high = min(chart.baseline + chart.reliable_change_threshold, chart.maximum)
    axes.axhspan(
        low,
        high,
        facecolor="none",
        edgecolor="#777777",
        hatch="///",
        linewidth=0,
        zorder=1,
        label=f"No reliable change: baseline \u00b1 {_num(chart.reliable_change_threshold)}",
    )


def _plot_line(axes: Axes, chart: Chart, line: Line, colour: str) -> None:
    scored = line.scored
    if not scored:
        return
    xs = [_days(chart, point) for point in scored]
    ys = [float(point.value) for point in scored if point.value is not None]
    label = "Score"
    if len(chart.lines) > 1:
        label = line.label + (" (higher is better)" if line.direction == "higher_is_better" else "")
    axes.plot(xs, ys, color=colour, marker="o", markersize=5, linewidth=1.5, label=label, gid=f"points-{line.key}")
    prorated = [point for point in scored if point.prorated]
    if prorated:
        axes.plot(
            [_days(chart, point) for point in prorated],
            [float(point.value) for point in prorated if point.value is not None],
            linestyle="none",
            marker="o",
            markersize=5,
            markerfacecolor="white",
            markeredgecolor=colour,
            label="Prorated (items missing)",
            gid=f"prorated-{line.key}",
        )


def _has_risk_flag(flags: tuple[str, ...]) -> bool:
    return any(flag in RISK_FLAGS for flag in flags)


def _has_missing_risk_item(flags: tuple[str, ...]) -> bool:
    return "item9_missing" in flags


FLAG_MARKERS = (
    ("risk", "Item 9 endorsed (risk)", _has_risk_flag, RISK_COLOUR, True),
    ("missing", "Item 9 missing", _has_missing_risk_item, "#555555", False),
)


def _plot_flags(axes: Axes, chart: Chart) -> None:
    """Item 9 markers above the plot, at the date of each measurement that raised them (scored or not)."""
    from matplotlib.transforms import blended_transform_factory

    above = blended_transform_factory(axes.transData, axes.transAxes)
    points = {point.measurement_id: point for line in chart.lines for point in line.points}.values()
    for gid, label, has, colour, filled in FLAG_MARKERS:
        days = sorted(_days(chart, point) for point in points if has(point.flags))
        if days:
            axes.plot(
                days,
                [1.04] * len(days),
                transform=above,
                clip_on=False,
                linestyle="none",
                marker="v",
                markersize=7,
                color=colour,
                markerfacecolor=colour if filled else "white",
                label=label,
                gid=f"flags-{gid}",
            )


def _dates_axis(axes: Axes, chart: Chart) -> None:
    """x is days since the first measurement; ticks fall on local midnights of the clinic's zone, a whole number of
    days apart (``date_ticks``), labelled with their local date."""
    from matplotlib.ticker import FixedFormatter, FixedLocator

    first = _first_moment(chart)
    days = [_days(chart, point) for line in chart.lines for point in line.points]
    last = max(days, default=0.0)
    pad = max(last * 0.04, 2.0)
    axes.set_xlim(-pad, last + pad)
    ticks = date_ticks(first, -pad, last + pad, ZoneInfo(chart.zone)) if first is not None else []
    axes.xaxis.set_major_locator(FixedLocator([x for x, _label in ticks]))
    axes.xaxis.set_major_formatter(FixedFormatter([label for _x, label in ticks]))
    axes.set_xlabel(f"Date ({chart.zone})", fontsize=8)


def date_ticks(first: datetime, low: float, high: float, zone: ZoneInfo) -> list[tuple[float, str]]:
    """Ticks between ``low`` and ``high`` (days since ``first``): at the start of local calendar days, every ``step``
    days counted from the first measurement's local day, at most ``MAX_DATE_TICKS``. Labels are local dates
    (``20 Nov 2026``). Days a datetime cannot hold (next to a stored year 1 or 9999) get no tick."""
    span = high - low
    step = next((s for s in TICK_STEPS_DAYS if span / s <= MAX_DATE_TICKS - 1), None)
    if step is None:
        step = 364 * -(-int(span) // (364 * (MAX_DATE_TICKS - 1)))
    try:
        origin = first.astimezone(zone).date()
    except OverflowError:
        return []
    ticks: list[tuple[float, str]] = []
    k = int(low // step) - 1
    while len(ticks) < MAX_DATE_TICKS:
        x = _local_midnight(origin, k * step, first, zone)
        k += 1
        if x is None:
            if k * step > high + step:
                break
            continue
        moment_day, offset = x
        if offset > high:
            break
        if offset >= low:
            ticks.append((offset, f"{moment_day.day:02d} {moment_day:%b} {moment_day.year:04d}"))
    return ticks


def _local_midnight(origin: date, days: int, first: datetime, zone: ZoneInfo) -> tuple[date, float] | None:
    """The local day ``days`` after ``origin`` and its start as days since ``first``; None beyond the calendar."""
    try:
        moment_day = origin + timedelta(days=days)
        start = datetime.combine(moment_day, time(0), tzinfo=zone)
        return moment_day, (start - first).total_seconds() / 86400
    except OverflowError:
        return None


def _first_moment(chart: Chart) -> datetime | None:
    return min((point.measured_at for line in chart.lines for point in line.points), default=None)


def _days(chart: Chart, point: Point) -> float:
    first = _first_moment(chart)
    return (point.measured_at - first).total_seconds() / 86400 if first else 0.0


_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(xlink:href="#|url\(#)([^")]+)')


def _prefix_ids(svg: str, prefix: str) -> str:
    """Make every id unique to this chart (and rewrite references to them) so charts can share one page."""
    ids = set(_ID.findall(svg))
    svg = _ID.sub(lambda m: f'id="{prefix}-{m[1]}"', svg)
    return _REFERENCE.sub(lambda m: f"{m[1]}{prefix}-{m[2]}" if m[2] in ids else m[0], svg)


def _label(svg: str, chart: Chart) -> str:
    """role="img" with a title and a description: the chart's text alternative for screen readers."""
    start = svg.index("<svg")
    end = svg.index(">", start)
    title_id, desc_id = f"{chart.chart_id}-title", f"{chart.chart_id}-desc"
    opening = svg[start:end] + f' role="img" aria-labelledby="{title_id} {desc_id}">'
    labels = (
        f'<title id="{title_id}">{escape(chart.title)}</title><desc id="{desc_id}">{escape(chart.description)}</desc>'
    )
    return svg[:start] + opening + labels + svg[end + 1 :]


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")
