"""The inference window and overlap a model classifies with unless told otherwise.

One owner for both: 'Classify raster' plans its windows with them, and 'Export model' fixes
an ONNX graph's window to the same side, so the exported file gives the ``.keras`` file's map.
"""
from __future__ import annotations

from ..core.grid import round_up

WINDOW_FACTOR = 3
"""Default inference window: this many training tiles on a side (fewer overlaps to pay for)."""
MIN_WINDOW = 512
"""Smallest default inference window side: small tiles would pay a network call per few pixels."""
MAX_WINDOW = 1024
"""Largest default inference window side (bounds memory for big tiles)."""
OVERLAP_FRACTION = 8
"""Default overlap: the training tile size divided by this."""


def default_overlap(tile_size: int) -> int:
    """The default overlap between inference windows: a fraction of the training tile."""
    return max(4, int(tile_size) // OVERLAP_FRACTION)


def default_window(tile_size: int, multiple: int) -> int:
    """The default inference window side: a few training tiles, a multiple of ``multiple``."""
    size = max(int(tile_size), min(max(WINDOW_FACTOR * int(tile_size), MIN_WINDOW), MAX_WINDOW))
    return round_up(size, multiple)
