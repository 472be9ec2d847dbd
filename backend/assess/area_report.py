"""The area-adjusted part of the accuracy report: a CSV table, a bar chart, an HTML section.

Mapped areas alone mislead (every omission and commission moves area between classes), so the
report sets them beside the area-adjusted estimates with their 95 % confidence intervals, as a
table and as bars with error bars that show at a glance which differences the sample supports.
"""
from __future__ import annotations

import html
import io
import math

import numpy as np

from ..core.csv_cells import csv_writer
from .accuracy import AccuracyResult
from .stratified import Z95

AREA_COLUMNS = ["class", "mapped_area_ha", "adjusted_area_ha", "adjusted_area_ci95_ha",
                "users_accuracy", "users_accuracy_ci95", "producers_accuracy",
                "producers_accuracy_ci95"]
"""The columns of OUTPUT_AREA_TABLE, in order."""

REFERENCE = ("Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, "
             "M. A. (2014). Good practices for estimating area and assessing accuracy of land "
             "change. Remote Sensing of Environment 148, 42-57.")


def area_rows(result: AccuracyResult) -> list[list[object]]:
    """One row per matrix class in AREA_COLUMNS order (NaN where there is no estimate)."""
    adjusted = result.adjusted
    rows = []
    for i, c in enumerate(result.classes):
        mapped = float(result.mapped_area_ha[i])
        if adjusted is None:
            rows.append([c.name, mapped, *[math.nan] * 6])
            continue
        e = adjusted.estimates
        rows.append([c.name, mapped, adjusted.adjusted_area_ha[i],
                     adjusted.adjusted_area_ci95_ha[i], e.users_accuracy[i],
                     e.users_accuracy_ci95[i], e.producers_accuracy[i],
                     e.producers_accuracy_ci95[i]])
    return rows


def write_area_table(result: AccuracyResult, path: str) -> None:
    """The area table as CSV (empty cells where a figure is undefined or not estimated)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(AREA_COLUMNS)
        for row in area_rows(result):
            writer.writerow([row[0], *[_cell(v) for v in row[1:]]])


def _cell(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.10g}"


def area_chart_png(result: AccuracyResult) -> bytes:
    """Mapped vs area-adjusted area per class, the latter with its 95 % CI as error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    adjusted = result.adjusted
    assert adjusted is not None
    names = [c.name for c in result.classes]
    k = len(names)
    figure = Figure(figsize=(min(max(6.0, 0.9 * k + 2.5), 20), 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    x = np.arange(k)
    axes.bar(x - 0.2, result.mapped_area_ha, 0.4, label="mapped area", color="#9ecae1",
             edgecolor="#4a7fa8")
    axes.bar(x + 0.2, adjusted.adjusted_area_ha, 0.4, color="#2b5d8a", edgecolor="#1c3d5a",
             label="area-adjusted estimate (95 % CI)",
             yerr=adjusted.adjusted_area_ci95_ha, capsize=4, error_kw={"elinewidth": 1.2})
    axes.set_xticks(x)
    axes.set_xticklabels(names, rotation=30 if k > 4 else 0, ha="right" if k > 4 else "center")
    axes.set_ylabel("area (ha)")
    e = adjusted.estimates
    axes.set_title(f"Mapped and area-adjusted class areas; overall accuracy "
                   f"{100 * e.overall_accuracy:.1f} % ± {100 * e.overall_accuracy_ci95:.1f} %")
    axes.legend(frameon=False)
    axes.grid(axis="y", color="#dddddd")
    axes.set_axisbelow(True)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def area_section_html(result: AccuracyResult, chart_uri: str | None) -> str:
    """The report's section: the figures with their intervals, or why there are none."""
    e = html.escape
    parts = ["<h2>Area-adjusted accuracy and area (Olofsson et al. 2014)</h2>"]
    adjusted = result.adjusted
    if adjusted is None:
        parts.append(f"<p class='note'>No area-adjusted figures: {e(result.adjusted_note)}</p>")
        return "\n".join(parts)
    est = adjusted.estimates
    parts += [
        f"<p>Overall accuracy <b>{_pm(est.overall_accuracy, est.overall_accuracy_ci95)}</b> "
        f"(95 % CI), from {int(est.sample_sizes.sum()):,} labelled sample points; "
        f"{e(adjusted.design_note)}.</p>",
        f"<img alt='Mapped and area-adjusted areas' src='{chart_uri}'>" if chart_uri else "",
        "<table class='classes'><tr><th>class</th><th>sample points (map class)</th>"
        "<th>mapped area (ha)</th><th>area-adjusted (ha)</th><th>± 95 % CI (ha)</th>"
        "<th>user's accuracy</th><th>producer's accuracy</th></tr>"]
    for i, row in enumerate(area_rows(result)):
        name, mapped, area, ci, users, users_ci, producers, producers_ci = row
        parts.append(
            f"<tr><td>{e(str(name))}</td><td>{int(est.sample_sizes[i]):,}</td>"
            f"<td>{_ha(mapped)}</td><td>{_ha(area)}</td><td>{_ha(ci)}</td>"
            f"<td>{_pm(users, users_ci)}</td><td>{_pm(producers, producers_ci)}</td></tr>")
    parts += [
        "</table>",
        "<p class='note'>Stratified estimators with the map classes as strata and the map's class "
        "areas as strata weights W<sub>i</sub>: p<sub>ij</sub> = W<sub>i</sub> n<sub>ij</sub> / "
        "n<sub>i.</sub>; area of class k = total mapped area × Σ<sub>i</sub> p<sub>ik</sub>; "
        f"confidence intervals are ± {Z95} standard errors (eqs. 2-10). Valid only when the "
        f"points are a stratified random sample by map class. {e(REFERENCE)}</p>"]
    return "\n".join(parts)


def _ha(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.2f}"


def _pm(value: float, ci: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    interval = "" if ci is None or math.isnan(ci) else f" ± {100 * ci:.1f} %"
    return f"{100 * value:.1f} %{interval}"
