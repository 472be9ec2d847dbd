"""Parts of a large image, classified apart so that put side by side they equal the whole map.

A part is a rectangle of the classified area. Its windows are those of the whole area's layout
that touch it (:meth:`.tiling.AxisPlan.covering`), read with the margin they reach beyond the
part, and blended with the whole layout's weights: every pixel of the part gets exactly the
value a one-process run over the whole area gives it. The blender then works on that wider
region; :class:`PartOutputs` passes on only the part's rows and columns.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .outputs import ClassOutputs


@dataclass(frozen=True)
class Part:
    """A rectangle of the classified area: columns [x, x + width), rows [y, y + height)."""

    x: int
    y: int
    width: int
    height: int

    @property
    def name(self) -> str:
        """A stable name for logs and part files: where the part starts."""
        return f"r{self.y:06d}_c{self.x:06d}"


def split(width: int, height: int, block: int) -> list[Part]:
    """Cuts a width x height area into parts of at most block x block pixels, row by row.

    Parts on the right and bottom edges are narrower; a zero or larger block gives one part.
    """
    if block <= 0 or (width <= block and height <= block):
        return [Part(0, 0, width, height)]
    return [Part(x, y, min(block, width - x), min(block, height - y))
            for y in range(0, height, block) for x in range(0, width, block)]


class PartOutputs:
    """Takes the blender's rows over the wider region, hands a part's rows on to the outputs.

    Args:
        outputs: the part's outputs (its grid is the part's).
        width: columns of the rows the blender writes (the region its windows cover).
        x, y: where the part starts inside that region.
    """

    def __init__(self, outputs: ClassOutputs, width: int, x: int, y: int) -> None:
        self.outputs, self.width, self.x, self.y = outputs, width, x, y
        self.lookup = outputs.lookup
        self.derive = outputs.derive
        self.class_ids = outputs.class_ids

    def write_rows(self, row: int, classes: np.ndarray, confidence: np.ndarray | None = None,
                   probabilities: np.ndarray | None = None) -> None:
        """Keeps the rows and columns of the part, drops the margin."""
        first = max(row, self.y)
        last = min(row + len(classes), self.y + self.outputs.grid.height)
        if last <= first:
            return
        rows = slice(first - row, last - row)
        cols = slice(self.x, self.x + self.outputs.grid.width)
        self.outputs.write_rows(
            first - self.y, classes[rows, cols],
            None if confidence is None else confidence[rows, cols],
            None if probabilities is None else probabilities[:, rows, cols])
