"""The accuracy report: one self-contained HTML page (picture embedded) and a CSV table.

The HTML embeds the confusion-matrix picture as a base64 PNG data URI, so the page is a single
file that can be moved, mailed or attached without losing its picture. The CSV is one rectangular
table: a row per reference class with the matrix counts, then that class's figures, and a last row
with the predicted totals. Both files are written atomically.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import html
import io
import math

import numpy as np

from ..core.csv_cells import csv_writer
from ..core.raster_io import atomic_output
from .accuracy import AccuracyResult
from .area_report import area_chart_png, area_section_html, write_area_table

CONVENTIONS = (
    "Rows are the reference, columns the map's prediction. Producer's accuracy (recall) = correct "
    "/ reference total of the class; user's accuracy (precision) = correct / predicted total of "
    "the class; F1 = 2 × correct / (reference + predicted total); IoU = correct / (reference + "
    "predicted total − correct). Overall accuracy = all correct / all compared; Cohen's kappa = "
    "(p<sub>o</sub> − p<sub>e</sub>) / (1 − p<sub>e</sub>). mIoU and mean F1 are averaged over "
    "the classes present in the reference (a class present but never predicted counts as 0; a class "
    "only predicted does not enter the means). Only {unit} where the reference has a label and "
    "the map has data are compared. Mapped area counts every classified pixel of the map.")


def write_report(result: AccuracyResult, html_path: str, table_path: str | None = None,
                 title: str = "Accuracy assessment", area_table_path: str | None = None,
                 area_chart_path: str | None = None) -> None:
    """Writes the HTML report and, optionally, the CSV tables and the area chart as PNG (all
    atomically: all or none)."""
    picture = confusion_matrix_png(result)
    chart = area_chart_png(result) if result.adjusted is not None else None
    page = render_html(result, picture, title, chart)
    with contextlib.ExitStack() as stack:
        with open(stack.enter_context(atomic_output(html_path)), "w",
                  encoding="utf-8") as handle:
            handle.write(page)
        if table_path:
            write_table(result, stack.enter_context(atomic_output(table_path)))
        if area_table_path:
            write_area_table(result, stack.enter_context(atomic_output(area_table_path)))
        if area_chart_path and chart is not None:
            with open(stack.enter_context(atomic_output(area_chart_path)), "wb") as handle:
                handle.write(chart)


def write_table(result: AccuracyResult, path: str) -> None:
    """The confusion matrix and per-class figures as one CSV table."""
    m = result.metrics
    names = [c.name for c in result.classes]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv_writer(handle)
        writer.writerow(["map_id", "reference \\ prediction", *names, "reference_total",
                         "producers_accuracy", "users_accuracy", "f1", "iou", "mapped_pixels",
                         "mapped_area_ha"])
        for i, c in enumerate(result.classes):
            writer.writerow([c.map_id if c.map_id is not None else "", c.name,
                             *[int(v) for v in result.matrix[i]], int(m.reference_totals[i]),
                             _number(m.producers_accuracy[i]), _number(m.users_accuracy[i]),
                             _number(m.f1[i]), _number(m.iou[i]), int(result.mapped_pixels[i]),
                             f"{result.mapped_area_ha[i]:.4f}"])
        writer.writerow(["", "predicted_total", *[int(v) for v in m.predicted_totals],
                         m.total, "", "", "", "", int(result.mapped_pixels.sum()),
                         f"{result.mapped_area_ha.sum():.4f}"])


def _number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def confusion_matrix_png(result: AccuracyResult) -> bytes:
    """The confusion matrix as a PNG: counts written in the cells, colours normalised per row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = result.matrix
    k = len(result.classes)
    rows = matrix.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = np.where(rows > 0, matrix / np.maximum(rows, 1), 0.0)
    side = min(max(4.5, 0.7 * k + 2.5), 24)
    figure = Figure(figsize=(side + 1.2, side), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    bar = figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    bar.set_label("share of the reference row")
    names = [c.name if c.map_id is not None else f"{c.name} (not in map)"
             for c in result.classes]
    axes.set_xticks(range(k))
    axes.set_yticks(range(k))
    axes.set_xticklabels(names, rotation=45, ha="right")
    axes.set_yticklabels(names)
    axes.set_xlabel("Prediction (map)")
    axes.set_ylabel("Reference")
    axes.set_title(f"Confusion matrix ({result.unit}); overall accuracy "
                   f"{_percent(result.metrics.overall_accuracy)}")
    font = max(5, min(10, int(110 / max(k, 1))))
    if k <= 40:
        for i in range(k):
            for j in range(k):
                axes.text(j, i, f"{matrix[i, j]:,}", ha="center", va="center", fontsize=font,
                          color="white" if shares[i, j] > 0.55 else "black")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f} %"


def _adjusted_overall(result: AccuracyResult) -> str:
    if result.adjusted is None:
        return "none: the reference is not a stratified random sample (see below)"
    e = result.adjusted.estimates
    return f"{_percent(e.overall_accuracy)} ± {_percent(e.overall_accuracy_ci95)}"


def _fixed(value: float, digits: int = 4) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def render_html(result: AccuracyResult, picture: bytes, title: str,
                area_chart: bytes | None = None) -> str:
    """The report page, with the picture embedded as a data URI."""
    m = result.metrics
    e = html.escape
    unit = result.unit
    summary = [
        ("Classified raster", e(result.classified_path)),
        ("Reference", e(result.reference_description)),
        (f"Reference {unit} compared", f"{result.counted:,}"),
        (f"Reference {unit} on map nodata (not compared)", f"{result.reference_on_map_nodata:,}"),
        ("Overall accuracy", _percent(m.overall_accuracy)),
        ("Cohen's kappa", _fixed(m.kappa)),
        ("mIoU (classes in the reference)", _fixed(m.miou)),
        ("Mean F1 (classes in the reference)", _fixed(m.mean_f1)),
        ("Mapped area (all classes)", f"{result.mapped_area_ha.sum():,.2f} ha"),
        ("Area-adjusted overall accuracy (95 % CI)", _adjusted_overall(result)),
    ]
    if result.unknown_map_pixels:
        summary.append(("Map pixels outside its class map (ignored)",
                        f"{result.unknown_map_pixels:,}"))
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>", f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p class='note'>Made {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by Land "
        "Cover U-Net (landcoverunet:assessaccuracy).</p>",
        "<h2>Overall</h2><table class='summary'>",
        *[f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in summary],
        "</table>",
        f"<p class='note'>{CONVENTIONS.format(unit=unit)}</p>",
        "<h2>Confusion matrix</h2>",
        "<img alt='Confusion matrix' src='data:image/png;base64,"
        f"{base64.b64encode(picture).decode('ascii')}'>",
        _matrix_table(result),
        "<h2>Per class</h2>", _class_table(result),
        f"<p class='note'>{e(result.area_note)}</p>",
        area_section_html(result, None if area_chart is None else
                          f"data:image/png;base64,{base64.b64encode(area_chart).decode('ascii')}"),
        "<h2>Class matching</h2><ul>",
        *[f"<li>{e(line)}</li>" for line in result.messages],
        "</ul></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _matrix_table(result: AccuracyResult) -> str:
    e = html.escape
    m = result.metrics
    names = [e(c.name) for c in result.classes]
    lines = ["<table class='matrix'><tr><th>reference \\ prediction</th>",
             *[f"<th>{n}</th>" for n in names], "<th>total</th></tr>"]
    for i, name in enumerate(names):
        cells = "".join(f"<td class='{'diag' if i == j else ''}'>{int(v):,}</td>"
                        for j, v in enumerate(result.matrix[i]))
        lines.append(f"<tr><th>{name}</th>{cells}<td class='total'>"
                     f"{int(m.reference_totals[i]):,}</td></tr>")
    totals = "".join(f"<td class='total'>{int(v):,}</td>" for v in m.predicted_totals)
    lines.append(f"<tr><th>total</th>{totals}<td class='total'>{m.total:,}</td></tr></table>")
    return "\n".join(lines)


def _class_table(result: AccuracyResult) -> str:
    e = html.escape
    m = result.metrics
    head = ("<table class='classes'><tr><th>id</th><th>class</th>"
            f"<th>reference {result.unit}</th><th>predicted {result.unit} (compared)</th>"
            "<th>producer's accuracy (recall)</th>"
            "<th>user's accuracy (precision)</th><th>F1</th><th>IoU</th>"
            "<th>mapped area (ha)</th><th>note</th></tr>")
    lines = [head]
    for i, c in enumerate(result.classes):
        notes = []
        if c.map_id is None:
            notes.append("not in the map's classes: never predicted")
        elif not m.predicted_totals[i]:
            notes.append("never predicted where the reference is")
        if not m.in_reference[i]:
            notes.append("absent from the reference (not in the means)")
        if c.match and c.match != "name" and c.map_id is not None:
            notes.append(f"matched by {c.match}")
        swatch = f"<span class='swatch' style='background:{e(c.color)}'></span>"
        lines.append(
            f"<tr><td>{c.map_id if c.map_id is not None else ''}</td><td>{swatch}{e(c.name)}</td>"
            f"<td>{int(m.reference_totals[i]):,}</td><td>{int(m.predicted_totals[i]):,}</td>"
            f"<td>{_percent(m.producers_accuracy[i])}</td><td>{_percent(m.users_accuracy[i])}</td>"
            f"<td>{_fixed(m.f1[i])}</td><td>{_fixed(m.iou[i])}</td>"
            f"<td>{result.mapped_area_ha[i]:,.2f}</td><td>{e('; '.join(notes))}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
table.summary th, table.classes td:nth-child(2), table.classes td:last-child { text-align: left; }
td.diag { background: #dbe9f6; font-weight: bold; }
td.total { background: #f7f7f7; }
.note { color: #555; font-size: 0.9em; max-width: 60em; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.4em;
          border: 1px solid #888; vertical-align: middle; }
img { max-width: 100%; }
"""
