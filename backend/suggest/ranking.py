"""Ranking places for new labels: uncertain pixels, spread over the scene and over the kinds
of confusion.

Uncertainty is the margin between the two most probable classes (Scheffer et al. 2001,
"margin sampling"): a pixel the model splits evenly between two classes scores 1, one it is
sure of scores near 0. Unlike entropy, the margin does not grow with the number of classes the
model spreads a little probability over, so it names the pair a label would settle.

The scene is cut into square cells and each cell keeps only its most uncertain pixel, so the
memory is one small array per cell, never per pixel, and a cell that holds a labelled pixel is
skipped whole (its place is known already). Sites are then taken greedily, most uncertain
first, never closer than the spacing to a site already taken; each site taken lowers the score
of the remaining candidates confused between the same two classes, so thirty sites do not all
land on one confused field or one confused pair of classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KIND_DISCOUNT = 0.5
"""Each site taken multiplies the score of the other candidates confused between the same two
classes by this (a second site of one kind must be twice as uncertain to rank beside the first
site of another)."""


@dataclass
class Candidates:
    """The most uncertain pixel of each usable cell: its row, column, score and the two most
    probable classes (channel indices)."""

    rows: np.ndarray
    columns: np.ndarray
    score: np.ndarray
    first: np.ndarray
    second: np.ndarray

    @classmethod
    def empty(cls) -> "Candidates":
        none = np.empty(0, np.int64)
        return cls(none, none, np.empty(0, np.float32), none, none)

    @classmethod
    def join(cls, parts: list["Candidates"]) -> "Candidates":
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("rows", "columns", "score", "first", "second")))

    def take(self, index: np.ndarray) -> "Candidates":
        return Candidates(self.rows[index], self.columns[index], self.score[index],
                          self.first[index], self.second[index])

    def __len__(self) -> int:
        return len(self.score)


def margin_uncertainty(probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(score, first, second) per pixel of (classes, rows, cols) probabilities: 1 minus the
    margin between the most probable class and the next, and those two classes' channels."""
    if probabilities.shape[0] < 2:
        zeros = np.zeros(probabilities.shape[1:], np.int64)
        return np.zeros(probabilities.shape[1:], np.float32), zeros, zeros
    order = np.argsort(probabilities, axis=0)
    first, second = order[-1], order[-2]
    top = np.take_along_axis(probabilities, first[None], 0)[0]
    runner_up = np.take_along_axis(probabilities, second[None], 0)[0]
    return (1.0 - (top - runner_up)).astype(np.float32), first, second


def best_per_cell(probabilities: np.ndarray, usable: np.ndarray, labelled: np.ndarray,
                  cell: int, row_offset: int = 0) -> Candidates:
    """The most uncertain usable pixel of each ``cell`` x ``cell`` cell of a strip.

    Args:
        probabilities: (classes, rows, cols) class probabilities of the strip.
        usable: (rows, cols) where the model classified (the image has data).
        labelled: (rows, cols) where a label already exists: the cells holding one are skipped.
        cell: the cell side in pixels; the strip starts on a cell boundary.
        row_offset: the strip's first row in the scene.
    """
    score, first, second = margin_uncertainty(probabilities)
    rows, cols = score.shape
    grid_rows, grid_cols = -(-rows // cell), -(-cols // cell)

    def cells(values: np.ndarray, fill) -> np.ndarray:
        padded = np.full((grid_rows * cell, grid_cols * cell), fill, values.dtype)
        padded[:rows, :cols] = values
        return padded.reshape(grid_rows, cell, grid_cols, cell).transpose(0, 2, 1, 3).reshape(
            grid_rows, grid_cols, cell * cell)

    scored = cells(np.where(usable, score, -1.0).astype(np.float32), np.float32(-1.0))
    known = cells(labelled, False).any(-1)
    inside = scored.argmax(-1)
    best = np.take_along_axis(scored, inside[..., None], -1)[..., 0]
    keep = (best >= 0) & ~known
    cell_row, cell_col = np.nonzero(keep)
    within = inside[keep]
    row = cell_row * cell + within // cell
    col = cell_col * cell + within % cell
    return Candidates(row + row_offset, col, best[keep], first[row, col], second[row, col])


def choose_sites(candidates: Candidates, count: int, spacing: float) -> np.ndarray:
    """Indices of up to ``count`` candidates in rank order: the most uncertain first, none
    closer than ``spacing`` pixels to one taken before, each taken site discounting the others
    of its kind (the same two classes, in either order) by :data:`KIND_DISCOUNT`."""
    effective = candidates.score.astype(np.float64).copy()
    alive = np.ones(len(candidates), bool)
    kind = (np.minimum(candidates.first, candidates.second) * 65536
            + np.maximum(candidates.first, candidates.second))
    chosen: list[int] = []
    while len(chosen) < count and alive.any():
        index = int(np.flatnonzero(alive)[np.argmax(effective[alive])])
        chosen.append(index)
        near = ((candidates.rows - candidates.rows[index]) ** 2
                + (candidates.columns - candidates.columns[index]) ** 2) < spacing ** 2
        alive &= ~near
        alive[index] = False
        effective[kind == kind[index]] *= KIND_DISCOUNT
    return np.asarray(chosen, np.int64)
