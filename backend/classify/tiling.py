"""Where the inference windows go along each axis, and how their predictions are blended.

Windows are laid out separately along rows and columns, and every window of the grid is the
product of one row window and one column window. Along an axis, windows no larger than the
inference window overlap by at least the requested overlap and all lie inside the image (only an
axis shorter than the training tile is padded). Each window's weight is a
separable product of 1-D ramps that rise smoothly (sin²) across the overlap with its
neighbours and never reach exactly 0; because neighbouring ramps add up to 1 the blended
probabilities cross-fade from one window to the next, so tile borders leave no seams. The sum
of all weights at a pixel is the product of the 1-D sums, so normalising needs no per-pixel
weight accumulator.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.grid import round_up

EPSILON = 1e-3
"""Smallest weight: the very edge of a window still counts a little, so no pixel has weight 0."""


@dataclass(frozen=True)
class AxisWindow:
    """One window along an axis.

    Attributes:
        start: first pixel (offset within the processed length).
        size: how many pixels the network sees (a multiple of the size step); when it exceeds
            ``length - start`` the rest is padding by reflection.
        valid: how many of those pixels lie in the image.
    """

    start: int
    size: int
    valid: int

    @property
    def stop(self) -> int:
        return self.start + self.valid


def plan_axis(length: int, window: int, overlap: int, multiple: int,
              minimum: int = 0) -> list[AxisWindow]:
    """Lays windows along an axis of ``length`` pixels.

    Full windows of ``window`` pixels step by ``window - overlap`` from the start; one last
    window, just large enough (a multiple of ``multiple``, at least ``minimum``), ends exactly at
    the end. So the network pays for little padding or extra overlap, and on every axis longer
    than one window the windows are the same size whatever the length: the memory a window
    needs does not grow with the image.

    Args:
        length: pixels to cover.
        window: the largest window size (rounded down to a multiple of ``multiple``).
        overlap: the least overlap between neighbours (pixels, < window).
        multiple: window sizes must be multiples of this (``2 ** depth`` of the U-Net).
        minimum: no window is smaller than this (the training tile), so the network always sees
            a familiar amount of context; an axis shorter than it is padded by reflection.

    Returns:
        The windows in order; consecutive windows overlap by at least ``overlap``.
    """
    if length <= 0:
        raise ValueError("length must be positive")
    window = max(multiple, window - window % multiple)
    overlap = min(max(0, overlap), window - multiple)
    smallest = min(window, round_up(max(minimum, 1), multiple))
    if length <= window:
        return [AxisWindow(0, max(round_up(length, multiple), smallest), length)]
    stride = window - overlap
    starts = [0]
    while starts[-1] + stride + window < length:
        starts.append(starts[-1] + stride)
    covered = starts[-1] + window
    tail = min(window, max(round_up(length - covered + overlap, multiple), smallest))
    return [AxisWindow(s, window, window) for s in starts] + [
        AxisWindow(length - tail, tail, tail)]


def _ramp(width: int) -> np.ndarray:
    """Weights rising from ~0 to ~1 over ``width`` pixels: sin² of pixel centres."""
    t = (np.arange(width, dtype=np.float64) + 0.5) / width
    return np.sin(0.5 * np.pi * t) ** 2


def shared_edges(windows: list[AxisWindow]) -> list[tuple[int, int]]:
    """For each window, how many of its pixels it shares with the previous and the next one."""
    edges = []
    for k, current in enumerate(windows):
        lead = max(0, windows[k - 1].stop - current.start) if k > 0 else 0
        trail = max(0, current.stop - windows[k + 1].start) if k + 1 < len(windows) else 0
        edges.append((min(lead, current.valid), min(trail, current.valid)))
    return edges


def interiors(windows: list[AxisWindow]) -> list[tuple[int, int]]:
    """For each window, the [start, stop) of its pixels (from its start) no other window covers.

    Windows' starts and stops both increase, so these are the pixels between what it shares
    with the previous and with the next window; there its weight is exactly 1 and its blended
    value its own. Empty (start == stop) when its neighbours overlap each other.
    """
    return [(lead, max(lead, window.valid - trail))
            for window, (lead, trail) in zip(windows, shared_edges(windows))]


def overlap_zones(windows: list[AxisWindow]) -> list[tuple[int, int]]:
    """The (start, stop) ranges of the axis that more than one window covers, merged, in order."""
    zones: list[tuple[int, int]] = []
    for left, right in zip(windows, windows[1:]):
        start, stop = right.start, left.stop
        if stop <= start:
            continue
        if zones and start <= zones[-1][1]:
            zones[-1] = (zones[-1][0], max(stop, zones[-1][1]))
        else:
            zones.append((start, stop))
    return zones


def axis_weights(windows: list[AxisWindow]) -> list[np.ndarray]:
    """The 1-D weight of every pixel of every window (``valid`` long, float32).

    A window's weight is exactly 1 (EPSILON + (1 - EPSILON) rounds to 1) except across its
    overlap with a neighbour, where it falls toward the shared edge; the two ramps of an
    overlap add up to 1 there (plus EPSILON).
    """
    weights = []
    for current, (lead, trail) in zip(windows, shared_edges(windows)):
        w = np.ones(current.valid, dtype=np.float64)
        if lead:
            w[:lead] = np.minimum(w[:lead], _ramp(lead))
        if trail:
            w[current.valid - trail:] = np.minimum(w[current.valid - trail:], _ramp(trail)[::-1])
        weights.append((EPSILON + (1.0 - EPSILON) * w).astype(np.float32))
    return weights


def weight_sum(length: int, windows: list[AxisWindow], weights: list[np.ndarray]) -> np.ndarray:
    """The sum of all windows' 1-D weights at each pixel of the axis (float32, > 0)."""
    total = np.zeros(length, dtype=np.float64)
    for window, w in zip(windows, weights):
        total[window.start:window.stop] += w
    return total.astype(np.float32)


@dataclass(frozen=True)
class AxisPlan:
    """The windows along one axis with everything blending needs: weights, interiors, zones.

    A plan can be cut to the windows that touch a part of the axis (:meth:`covering`): they keep
    the weights, interiors and overlap zones of the whole axis, so every pixel of that part is
    blended from the same windows with the same weights, in the same order, as when the whole
    axis is classified: parts classified apart and put side by side equal the whole, seams
    included. Positions are relative to ``offset`` (the first window's start on the whole axis).
    """

    windows: tuple[AxisWindow, ...]
    weights: tuple[np.ndarray, ...]
    inner: tuple[tuple[int, int], ...]
    zones: tuple[tuple[int, int], ...]
    length: int
    offset: int = 0

    @classmethod
    def whole(cls, windows: list[AxisWindow], length: int) -> "AxisPlan":
        """The plan of a whole axis of ``length`` pixels laid out by :func:`plan_axis`."""
        return cls(tuple(windows), tuple(axis_weights(windows)), tuple(interiors(windows)),
                   tuple(overlap_zones(windows)), length)

    def covering(self, start: int, stop: int) -> "AxisPlan":
        """The windows that touch pixels [start, stop) of this plan, shifted to start at 0."""
        chosen = [k for k, w in enumerate(self.windows) if w.start < stop and w.stop > start]
        if not chosen or start < 0 or stop > self.length:
            raise ValueError(f"[{start}, {stop}) is not inside the axis of {self.length} px")
        first, last = chosen[0], chosen[-1] + 1
        shift = self.windows[first].start
        length = self.windows[last - 1].stop - shift
        zones = tuple((max(0, a - shift), min(length, b - shift)) for a, b in self.zones
                      if b - shift > 0 and a - shift < length)
        return AxisPlan(tuple(AxisWindow(w.start - shift, w.size, w.valid)
                              for w in self.windows[first:last]),
                        self.weights[first:last], self.inner[first:last], zones, length,
                        self.offset + shift)

    def sums(self) -> np.ndarray:
        """The sum of the windows' weights at each pixel (exact wherever all its windows are
        in the plan, which :meth:`covering` guarantees for the part it was cut for)."""
        return weight_sum(self.length, list(self.windows), list(self.weights))
