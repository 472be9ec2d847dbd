"""Pseudo-labels of a scene too large to hold in memory, kept only where they were given.

A scene held in memory carries its pseudo-labels as one (H, W, classes + 1) array, mostly
zeros. For a scene read window by window that array would cost gigabytes for a few hundred
thousand pseudo-labelled pixels, so they are kept as sorted flat indices and their values, and a
window of them is rebuilt on demand: the training batches read ``soft[y:y + h, x:x + w]`` from
either kind alike.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SparsePseudoLabels:
    """Pseudo-labels at a few pixels of a large scene.

    Attributes:
        shape: (H, W, classes + 1), the shape of the dense array these stand for.
        flat: sorted flat indices (row * W + column) of the pseudo-labelled pixels.
        values: (len(flat), classes + 1) float16: the teacher's probabilities and a weight of 1.
        near: the blocks of the scene the pixels were drawn from and their label counts
            (``teacher_blocks.NearLabels``), so the forest network reads the same parts.
    """

    shape: tuple[int, int, int]
    flat: np.ndarray
    values: np.ndarray
    near: Any = None

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        """The dense (h, w, classes + 1) pseudo-labels of a window ``[y0:y1, x0:x1]``."""
        rows, cols = key
        height, width, depth = self.shape
        y0, y1, _ = rows.indices(height)
        x0, x1, _ = cols.indices(width)
        out = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0), depth), np.float16)
        if not out.size or not len(self.flat):
            return out
        starts = np.arange(y0, y1, dtype=np.int64) * width + x0
        low = np.searchsorted(self.flat, starts)
        high = np.searchsorted(self.flat, starts + (x1 - x0))
        counts = high - low
        total = int(counts.sum())
        if total:
            # the concatenated ranges low[i]:high[i], without a Python loop over rows
            take = np.repeat(low - np.cumsum(counts) + counts, counts) + np.arange(total)
            where = self.flat[take]
            out[where // width - y0, where % width - x0] = self.values[take]
        return out
