"""The leaderboard as one self-contained HTML page: a sortable table and inline SVG plots.

Published reference numbers appear as their own marked series: a table of the published rows
that have a local counterpart (``compare``), and hollow diamonds in the detection plots, drawn
only where the published metric is computed as the local one is.

Nothing is fetched: styles, script and plots are inline, so the page works offline and can be
archived as one file. The plots are drawn as plain SVG here rather than with a plotting
library, which keeps the package free of one more heavy dependency.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from html import escape
from typing import Any, NamedTuple

from codebackdoor.leaderboard.compare import compare, setting_differences
from codebackdoor.leaderboard.published import comparable
from codebackdoor.leaderboard.show import (
    HEADERS,
    clean_metric,
    display_cells,
    rate_text,
    row_statistics,
    seed_interval,
    stat,
)

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")
# The keys of show's row_statistics, in its order: the page's columns follow show's table.
STATISTIC_KEYS = ("clean", "trivial", "asr", "false_triggers", "detection_recall",
                  "detection_precision")
COLUMN_KEYS = ("task", "lang", "dataset", "model", "attack", "rate", "defense", "metric",
               *STATISTIC_KEYS, "n")
PERCENT = (0.0, 100.0)
NUMERIC = {"rate", *STATISTIC_KEYS, "n"}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
figcaption { font-size: 0.85em; color: #555; max-width: 520px; }
table.published td:first-child { font-weight: bold; color: #8c564b; }
"""

# Clicking a header sorts by it (again: the other way). A link can carry a sort:
# index.html#sort=asr clicks the ASR header once, #sort=asr-desc twice.
SCRIPT = """
(function () {
  var table = document.getElementById("leaderboard");
  var body = table.tBodies[0];
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  function sortBy(index, descending) {
    var numeric = headers[index].dataset.type === "number";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].dataset.value, y = b.cells[index].dataset.value;
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    headers.forEach(function (header, i) {
      var state = i !== index ? "none" : descending ? "descending" : "ascending";
      header.setAttribute("aria-sort", state);
    });
  }
  headers.forEach(function (header, index) {
    header.addEventListener("click", function () {
      sortBy(index, header.getAttribute("aria-sort") === "ascending");
    });
  });
  var match = /^#sort=([a-z_]+?)(-desc)?$/.exec(window.location.hash);
  if (match) {
    headers.forEach(function (header) {
      if (header.dataset.key === match[1]) {
        header.click();
        if (match[2]) { header.click(); }
      }
    });
  }
})();
"""


def _sort_values(row: dict[str, Any]) -> list[str]:
    """What each column sorts by: the raw number for numeric columns, else the text."""
    numbers = {
        "rate": row["rate"],
        **{key: entry and entry["mean"]
           for key, entry in zip(STATISTIC_KEYS, row_statistics(row), strict=True)},
        "n": row["n"],
    }
    texts = display_cells(row)
    return [
        ("" if numbers[key] is None else repr(float(numbers[key]))) if key in NUMERIC
        else texts[i]
        for i, key in enumerate(COLUMN_KEYS)
    ]


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = "".join(
        f'<th data-key="{key}" data-type="{"number" if key in NUMERIC else "text"}" '
        f'aria-sort="none">{escape(title)}</th>'
        for key, title in zip(COLUMN_KEYS, HEADERS, strict=True)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td data-value="{escape(value)}"{" class=number" if key in NUMERIC else ""}>'
            f"{escape(text)}</td>"
            for key, value, text in zip(COLUMN_KEYS, _sort_values(row), display_cells(row),
                                        strict=True)
        )
        seeds = ", ".join(map(str, row["seeds"]))
        body.append(f'<tr data-row="{row["key"]}" title="cell {row["key"]}; seeds {seeds}">'
                    f"{cells}</tr>")
    return (f'<table id="leaderboard"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """``count`` evenly spaced ticks; ``whole``: whole numbers only (epochs), at most ``count``."""
    if whole:
        step = max(1, math.ceil((high - low) / (count - 1)))
        return [float(t) for t in range(math.ceil(low), math.floor(high) + 1, step)]
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def chart(title: str, xlabel: str, ylabel: str, series: list[dict[str, Any]], *, lines: bool,
          xrange: tuple[float, float] | None = None,
          yrange: tuple[float, float] | None = None) -> str:
    """An SVG plot; each series is {label, color, points: [(x, y), …]} and optionally
    ``errors``: per point an (x interval, y interval), either None, drawn as error bars clipped
    to the plot; ranges default to the data's (y from 0)."""
    width, height, left, right, top, bottom = 520, 300, 55, 200, 30, 45
    xs = [x for s in series for x, _ in s["points"]]
    ys = [y for s in series for _, y in s["points"]]
    x0, x1 = xrange or (min(xs), max(xs))
    y0, y1 = yrange or (min(0.0, min(ys)), max(ys))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * plot_w

    def py(y: float) -> float:
        return top + plot_h - (y - y0) / (y1 - y0) * plot_h

    # The namespace and the white ground let the same SVG stand alone as an image file.
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
             'stroke="#999"/>']
    for x in _ticks(x0, x1, whole=all(float(x).is_integer() for x in xs)):
        parts.append(f'<text x="{px(x):.1f}" y="{top + plot_h + 15}" font-size="10" '
                     f'text-anchor="middle">{x:.3g}</text>')
    for y in _ticks(y0, y1):
        parts.append(f'<text x="{left - 5}" y="{py(y) + 3:.1f}" font-size="10" '
                     f'text-anchor="end">{y:.3g}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 8}" font-size="11" '
                 f'text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + plot_h / 2})">{escape(ylabel)}</text>')
    for i, s in enumerate(series):
        points = [(px(x), py(y)) for x, y in s["points"]]
        if lines and len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{s["color"]}" '
                         'stroke-width="1.5"/>')
        for (x, y), (xerr, yerr) in zip(s["points"], s.get("errors") or [], strict=False):
            if xerr is not None:
                low, high = (px(min(max(v, x0), x1)) for v in xerr)
                parts.append(f'<line x1="{low:.1f}" y1="{py(y):.1f}" x2="{high:.1f}" '
                             f'y2="{py(y):.1f}" stroke="{s["color"]}" stroke-opacity="0.6"/>')
            if yerr is not None:
                low, high = (py(min(max(v, y0), y1)) for v in yerr)
                parts.append(f'<line x1="{px(x):.1f}" y1="{low:.1f}" x2="{px(x):.1f}" '
                             f'y2="{high:.1f}" stroke="{s["color"]}" stroke-opacity="0.6"/>')
        parts.extend(_marker(x, y, s) for x, y in points)
        legend_y = top + 10 + 16 * i
        fill = "none" if s.get("published") else s["color"]
        parts.append(f'<rect x="{width - right + 10}" y="{legend_y - 8}" width="10" height="10" '
                     f'fill="{fill}" stroke="{s["color"]}"/><text x="{width - right + 25}" '
                     f'y="{legend_y + 1}" font-size="10">{escape(s["label"][:34])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _marker(x: float, y: float, series: dict[str, Any]) -> str:
    """A filled circle for a local row; a hollow diamond for a published one."""
    title = f"<title>{escape(series['label'])}</title>"
    if series.get("published"):
        corners = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return (f'<polygon points="{corners}" fill="none" stroke="{series["color"]}" '
                f'stroke-width="1.5">{title}</polygon>')
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{series["color"]}">{title}</circle>'


class Plot(NamedTuple):
    """One chart: a file-name stem, the SVG and its caption."""

    name: str
    svg: str
    caption: str


def _figure(plot: Plot) -> str:
    return f"<figure>{plot.svg}<figcaption>{escape(plot.caption)}</figcaption></figure>"


def _stem(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9.]+", "_", part).strip("_") for part in parts)


def plots(rows: Sequence[dict[str, Any]],
          published: Sequence[dict[str, Any]] = ()) -> list[Plot]:
    """Every chart of the page: clean metric against ASR, the per-epoch curves, and detection
    recall against FPR with the published rows of the same settings."""
    return tradeoff_plots(rows) + curve_plots(rows) + detection_plots(rows, published)


DETECTION = ("detection.fpr", "detection.recall")


def _published_detection_points(published: Sequence[dict[str, Any]],
                                rows: Sequence[dict[str, Any]]) -> list[tuple[str, dict, tuple]]:
    """(task, published row, (FPR, recall)) for each published row with a local counterpart
    among ``rows`` whose FPR and recall are computed as the local ones are."""
    points, seen = [], set()
    for row, local in compare(published, rows).pairs:
        metrics = {m.get("local"): m for m in row["metrics"].values()}
        if row["id"] in seen or not all(name in metrics for name in DETECTION):
            continue
        if all(comparable(metrics[name], local)[0] is not None for name in DETECTION):
            seen.add(row["id"])
            points.append((row["task"], row, tuple(metrics[n]["value"] for n in DETECTION)))
    return points


def detection_plots(rows: Sequence[dict[str, Any]],
                    published: Sequence[dict[str, Any]] = ()) -> list[Plot]:
    """Detection recall against FPR of the filter defenses, one plot per task, one colour per
    defense; published rows of the same settings as hollow diamonds, one series per source."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if all(stat(row, name) for name in DETECTION):
            groups[row["task"]].append(row)
    extra: dict[str, dict[str, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    for task, row, point in _published_detection_points(published, rows):
        extra[task][f"published: {row['source']['repository'].split('/')[-1]}"].append(point)
    figures = []
    for task, members in sorted(groups.items()):
        defenses = sorted({row["defense"] for row in members})
        series = [
            {"label": defense, "color": PALETTE[i % len(PALETTE)],
             "points": [(stat(r, DETECTION[0])["mean"], stat(r, DETECTION[1])["mean"])
                        for r in members if r["defense"] == defense]}
            for i, defense in enumerate(defenses)
        ]
        series += [{"label": label, "color": PALETTE[(len(defenses) + i) % len(PALETTE)],
                    "points": points, "published": True}
                   for i, (label, points) in enumerate(sorted(extra[task].items()))]
        figures.append(Plot(
            _stem("detection", task),
            chart(f"{task}: detection recall vs FPR", "FPR %", "recall %", series, lines=False,
                  xrange=PERCENT, yrange=PERCENT),
            "One filled point per leaderboard row (mean over seeds); hollow diamonds are "
            "published rows of the same task, attack and defense (their model, data and rate "
            "differ: see the published table).",
        ))
    return figures


def _by_model(members: Sequence[dict[str, Any]]) -> list[tuple[tuple[str, ...], list]]:
    """Members split by victim when they hold more than one: a from-scratch and a pretrained
    victim drawn in one chart would read as one model's spread. Each part comes with what its
    file name and title add (nothing when there is one victim, so single-victim stems stay)."""
    models = sorted({row["model"] for row in members})
    if len(models) == 1:
        return [((), list(members))]
    return [((model,), [row for row in members if row["model"] == model]) for model in models]


def tradeoff_plots(rows: Sequence[dict[str, Any]]) -> list[Plot]:
    """Clean metric against ASR, one plot per task, metric and victim, one colour per defense."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if clean_metric(row) and stat(row, "asr"):
            groups[(row["task"], row["primary"])].append(row)
    figures = []
    for (task, metric), task_rows in sorted(groups.items()):
        for model, members in _by_model(task_rows):
            defenses = sorted({row["defense"] for row in members})
            series = []
            for i, defense in enumerate(defenses):
                chosen = [r for r in members if r["defense"] == defense]
                series.append({
                    "label": defense, "color": PALETTE[i % len(PALETTE)],
                    "points": [(stat(r, "asr")["mean"], clean_metric(r)["mean"]) for r in chosen],
                    "errors": [(seed_interval(stat(r, "asr")), seed_interval(clean_metric(r)))
                               for r in chosen],
                })
            figures.append(Plot(
                _stem("tradeoff", task, *model, metric),
                chart(" ".join((f"{task}:", *model, f"{metric} vs ASR")), "ASR %", metric,
                      series, lines=False, xrange=PERCENT),
                "One point per leaderboard row (mean over seeds), bars the 95% t-interval over "
                "seeds (none for one seed; cut at the plot's edge); rows without an attack have "
                "no ASR and are not drawn.",
            ))
    return figures


def _curve_labels(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Attack, rate and defense, leaving out what all rows share (the legend is narrow; the rows
    of one chart share their victim, ``_by_model``); the labels tell attack variants and DeCE's
    presets apart (``rows.label_rows``), and rows that still read alike add their key."""
    def value(row: dict[str, Any], name: str) -> str:
        if name != "rate":
            return row[name]
        return "" if row["rate"] is None else rate_text(row["rate"])  # a clean row has none

    fields = [name for name in ("attack", "rate", "defense")
              if len({value(row, name) for row in rows} - {""}) > 1] or ["attack", "defense"]
    short = {row["key"]: " ".join(filter(None, (value(row, name) for name in fields)))
             for row in rows}
    counts = Counter(short.values())
    return {key: label if counts[label] == 1 else f"{label} {key[:6]}"
            for key, label in short.items()}


def curve_plots(rows: Sequence[dict[str, Any]]) -> list[Plot]:
    """Per-epoch clean metric and ASR, one pair of plots per task, dataset and victim."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["curve"]:
            groups[(row["task"], row["dataset"])].append(row)
    figures = []
    for (task, dataset), dataset_rows in sorted(groups.items()):
        for model, members in _by_model(dataset_rows):
            labels = _curve_labels(members)
            for measure in ("clean", "asr"):
                series = []
                for i, row in enumerate(members):
                    name = row["primary"] if measure == "clean" else "asr"
                    reached = [p for p in row["curve"] if name in p]
                    if reached:
                        series.append({"label": labels[row["key"]],
                                       "color": PALETTE[i % len(PALETTE)],
                                       "points": [(p["epoch"], p[name]["mean"]) for p in reached],
                                       "errors": [(None, seed_interval(p[name]))
                                                  for p in reached]})
                if series:
                    ylabel = members[0]["primary"] if measure == "clean" else "ASR %"
                    figures.append(Plot(
                        _stem("curve", task, dataset, *model, measure),
                        chart(" ".join((f"{task} on {dataset}", *model)) + f": {ylabel} per epoch",
                              "epoch", ylabel, series, lines=True,
                              yrange=None if measure == "clean" else PERCENT),
                        "Scored after every epoch on the first curve-size test inputs (mean over "
                        "seeds, bars the 95% t-interval over seeds): the early-learning picture.",
                    ))
    return figures


def paired_table(pairs: Sequence[Any]) -> str:
    """The ``compare --baseline`` table: deltas with their paired intervals and the verdicts."""
    from codebackdoor.leaderboard.paired import HEADERS as PAIRED_HEADERS
    from codebackdoor.leaderboard.paired import lines

    head = "".join(f"<th>{escape(title)}</th>" for title in PAIRED_HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in line) + "</tr>"
                   for line in lines(pairs))
    return (f'<table id="paired"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def published_table(rows: Sequence[dict[str, Any]],
                    published: Sequence[dict[str, Any]]) -> str:
    """The published rows that have a local counterpart, each number beside its source, marked
    'published' in its first column; '' when there are none."""
    comparison = compare(published, rows)
    seen: dict[str, list[str]] = {}
    for row, local in comparison.pairs:
        seen.setdefault(row["id"], [])
        seen[row["id"]] += [d for d in setting_differences(row, local)
                            if d not in seen[row["id"]]]
    if not seen:
        return ""
    by_id = {row["id"]: row for row, _ in comparison.pairs}
    head = "".join(f"<th>{escape(title)}</th>" for title in (
        "", "task", "lang", "dataset", "model", "attack", "rate", "defense", "metrics",
        "differs from the local rows in", "source"))
    body = []
    for row_id, differences in seen.items():
        row = by_id[row_id]
        numbers = ", ".join(f"{name} {metric['value']:g}" + ("" if "local" in metric else " *")
                            for name, metric in row["metrics"].items())
        where = f"{row['source']['repository']} {row['source']['file']}, {row['source']['row']}"
        cells = ("published", row["task"], row["lang"] or "–", row["dataset"], row["model"],
                 row["attack"] or "none", "–" if row["rate"] is None else f"{100 * row['rate']:g}%",
                 row["defense"], numbers, "; ".join(differences) or "nothing", where)
        body.append(f'<tr data-published="{escape(row_id)}">'
                    + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return ("<h2>Published reference numbers for these settings</h2>"
            "<p>Rows of leaderboard/published.json with the same task, attack and defense as a "
            "row above. * marks a metric the source computes differently from the suite.</p>"
            f'<table class="published"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def page(rows: Sequence[dict[str, Any]], source: str, published: Sequence[dict[str, Any]] = (),
         *, pairs: Sequence[Any] | None = None) -> str:
    """The page; ``pairs`` (from ``paired.compare_baseline``) adds the paired comparisons,
    ``published`` the published rows of the same settings."""
    figures = [_figure(plot) for plot in plots(rows, published)]
    paired = "" if pairs is None else (
        "<h2>Paired comparisons</h2><p>Each row against its baseline row, seed by seed and item "
        "by item: Δ = defense − baseline, mean over seeds, [95% paired bootstrap interval over "
        "test items, pooled over seeds]; verdicts as in docs/statistics.md.</p>"
        f"{paired_table(pairs)}")
    runs = sum(row["n"] for row in rows)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>codebackdoor leaderboard</title>"
        f"<style>{STYLE}</style></head><body>"
        "<h1>codebackdoor leaderboard</h1>"
        f"<p>{len(rows)} rows from {runs} runs ({escape(source)}). Values are mean ± sample "
        "standard deviation over seeds [95% t-interval of the mean over seeds]; click a column "
        "header to sort.</p>"
        f"{table(rows)}{paired}"
        f"{published_table(rows, published)}"
        "<h2>Plots</h2>"
        f'<div class="plots">{"".join(figures) or "<p>nothing to plot</p>"}</div>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )
