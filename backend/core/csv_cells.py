"""CSV tables that a spreadsheet opens as text, never as formulas.

Class names come from the user's label layers, and so from anyone who made them: a class called
``=HYPERLINK("http://...")`` or ``@SUM(...)`` is a formula to Excel or LibreOffice once the CSV
is opened, run without a word. Every CSV the plugin writes goes through :func:`csv_writer`,
which puts the usual ``'`` before any text cell starting with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return (the spreadsheet shows the text; the ``'`` is not shown). Numbers,
negative ones included, are written as they are.
"""
from __future__ import annotations

import csv
from typing import Any, Iterable, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters with which a spreadsheet reads a cell as a formula (OWASP's list)."""
GUARD = "'"


def safe_cell(value: Any) -> Any:
    """``value``, with :data:`GUARD` before it when it is text a spreadsheet would run."""
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    try:
        float(value)  # a number written as text ("-0.25") stays a number
        return value
    except ValueError:
        return GUARD + value


class SafeWriter:
    """A ``csv.writer`` whose rows pass through :func:`safe_cell`."""

    def __init__(self, handle: TextIO) -> None:
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(handle: TextIO) -> SafeWriter:
    """The writer for every CSV table the plugin writes (see the module's docstring)."""
    return SafeWriter(handle)
