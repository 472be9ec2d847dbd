"""Features in degrees on an image that crosses or lies beyond the antimeridian.

Longitude 180.2 and -179.8 are one place. An image georeferenced from 179.5 to 180.5 degrees
and a polygon digitised at -179.8 (or one whose vertices jump from 179.9 to -179.9 where it
crosses the antimeridian) do not overlap as numbers, so the polygon would be dropped as
"outside the image". Here such a geometry is made continuous (no jump of more than 180 degrees
between neighbouring vertices) and moved by whole turns of 360 degrees onto the image; where
copies at two turns both touch the image (an image of the whole globe), both are kept.
"""
from __future__ import annotations

from typing import Any

TURN = 360.0


def wrap_to_grid(geometry: Any, bounds: tuple[float, float, float, float]
                 ) -> tuple[Any, float, bool]:
    """A geometry in degrees placed where the grid's longitudes are.

    Args:
        geometry: an OGR geometry in the grid's geographic CRS (longitude first).
        bounds: the grid's (minx, miny, maxx, maxy).

    Returns:
        (the geometry to burn, its area before any copy was added, whether it was moved).
        A geometry no turn brings onto the grid comes back as it was.
    """
    minx, _, maxx, _ = bounds
    gminx, gmaxx, _, _ = geometry.GetEnvelope()
    moved = False
    if gmaxx - gminx > TURN / 2:  # written across the antimeridian: vertices jump by ~360
        geometry = _continuous(geometry)
        gminx, gmaxx, _, _ = geometry.GetEnvelope()
        moved = True
    area = geometry.GetArea()
    turns = [t for t in range(-2, 3) if gmaxx + t * TURN > minx and gminx + t * TURN < maxx]
    if not turns or turns == [0]:
        return geometry, area, moved
    pieces = [_shifted(geometry, t * TURN) for t in turns]
    result = pieces[0]
    for piece in pieces[1:]:
        result = result.Union(piece)
    return result, area, True


def _continuous(geometry: Any) -> Any:
    """A copy whose every vertex is within 180 degrees of the one before it (and each part's
    first vertex within 180 degrees of the geometry's first)."""
    copy = geometry.Clone()
    leaves = list(_leaves(copy))
    reference = next((leaf.GetX(0) for leaf in leaves if leaf.GetPointCount()), 0.0)
    for leaf in leaves:
        previous = reference
        for index in range(leaf.GetPointCount()):
            x = leaf.GetX(index)
            x += TURN * round((previous - x) / TURN)
            leaf.SetPoint_2D(index, x, leaf.GetY(index))
            previous = x
    return copy


def _shifted(geometry: Any, offset: float) -> Any:
    copy = geometry.Clone()
    for leaf in _leaves(copy):
        for index in range(leaf.GetPointCount()):
            leaf.SetPoint_2D(index, leaf.GetX(index) + offset, leaf.GetY(index))
    return copy


def _leaves(geometry: Any):
    """The points, line strings and rings of a geometry (references: changed in place)."""
    if geometry.GetGeometryCount() == 0:
        yield geometry
        return
    for index in range(geometry.GetGeometryCount()):
        yield from _leaves(geometry.GetGeometryRef(index))
