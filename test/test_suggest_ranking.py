"""Ranking places for new labels (backend/suggest/ranking.py): uncertain first, spaced, known
places skipped, kinds of confusion spread."""
from __future__ import annotations

import numpy as np
import pytest

from landcoverunet.backend.suggest.ranking import (KIND_DISCOUNT, best_per_cell, choose_sites,
                                                   margin_uncertainty)


def sure_everywhere(rows: int, cols: int, classes: int = 3) -> np.ndarray:
    """Probabilities sure of class 0 everywhere (0.9 / 0.05 / 0.05)."""
    p = np.full((classes, rows, cols), 0.1 / (classes - 1), np.float32)
    p[0] = 0.9
    return p


def hesitate(p: np.ndarray, row: int, col: int, a: int, b: int, top: float) -> None:
    """Makes one pixel hesitate between classes a (``top``) and b (the rest)."""
    p[:, row, col] = 0.0
    p[a, row, col], p[b, row, col] = top, 1.0 - top


def test_margin_is_one_for_an_even_split_and_names_both_classes():
    p = sure_everywhere(2, 2)
    hesitate(p, 1, 1, 2, 1, 0.5)
    score, first, second = margin_uncertainty(p)
    assert score[1, 1] == 1.0 and {int(first[1, 1]), int(second[1, 1])} == {1, 2}
    assert score[0, 0] == pytest.approx(0.15) and first[0, 0] == 0


def test_an_unsure_pixel_ranks_above_a_sure_one():
    p = sure_everywhere(40, 40)
    hesitate(p, 30, 5, 1, 2, 0.55)   # unsure
    hesitate(p, 5, 30, 1, 0, 0.8)    # fairly sure
    usable, labelled = np.ones((40, 40), bool), np.zeros((40, 40), bool)
    candidates = best_per_cell(p, usable, labelled, cell=4)
    order = choose_sites(candidates, 2, spacing=8)
    chosen = candidates.take(order)
    assert (chosen.rows.tolist(), chosen.columns.tolist()) == ([30, 5], [5, 30])
    assert chosen.score[0] > chosen.score[1]
    assert (int(chosen.first[0]), int(chosen.second[0])) == (1, 2)


def test_sites_keep_the_spacing():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=(60, 60)).transpose(2, 0, 1).astype(np.float32)
    candidates = best_per_cell(p, np.ones((60, 60), bool), np.zeros((60, 60), bool), cell=3)
    chosen = candidates.take(choose_sites(candidates, 30, spacing=7))
    assert len(chosen) > 5
    points = np.stack([chosen.rows, chosen.columns], 1).astype(float)
    distances = np.hypot(*(points[:, None] - points[None]).transpose(2, 0, 1))
    assert distances[~np.eye(len(points), dtype=bool)].min() >= 7


def test_labelled_places_and_nodata_are_skipped():
    p = sure_everywhere(20, 20)
    hesitate(p, 2, 2, 1, 2, 0.5)     # the most unsure pixel, but labelled already
    hesitate(p, 15, 15, 1, 2, 0.5)   # as unsure, but nodata
    hesitate(p, 10, 3, 1, 2, 0.6)
    labelled = np.zeros((20, 20), bool)
    labelled[3, 3] = True            # in the same 4 x 4 cell as (2, 2)
    usable = np.ones((20, 20), bool)
    usable[15, 15] = False
    candidates = best_per_cell(p, usable, labelled, cell=4)
    first = candidates.take(choose_sites(candidates, 1, spacing=4))
    assert (int(first.rows[0]), int(first.columns[0])) == (10, 3)
    assert not any((r, c) in ((2, 2), (3, 3), (15, 15))
                   for r, c in zip(candidates.rows.tolist(), candidates.columns.tolist()))


def test_a_strip_reports_scene_rows():
    p = sure_everywhere(8, 8)
    hesitate(p, 1, 6, 0, 1, 0.5)
    candidates = best_per_cell(p, np.ones((8, 8), bool), np.zeros((8, 8), bool), 4,
                               row_offset=100)
    best = candidates.take(choose_sites(candidates, 1, 1))
    assert (int(best.rows[0]), int(best.columns[0])) == (101, 6)


def test_one_confused_pair_does_not_take_every_site():
    """Many sites confused between classes 0 and 1, slightly more unsure than one confused
    between 2 and 3: the discount lets the other kind in second."""
    p = sure_everywhere(40, 40, classes=4)
    for col in range(2, 40, 6):
        hesitate(p, 2, col, 0, 1, 0.52)
    hesitate(p, 30, 30, 2, 3, 0.56)
    candidates = best_per_cell(p, np.ones((40, 40), bool), np.zeros((40, 40), bool), 2)
    chosen = candidates.take(choose_sites(candidates, 3, spacing=4))
    kinds = [tuple(sorted((int(a), int(b)))) for a, b in zip(chosen.first, chosen.second)]
    assert kinds[0] == (0, 1) and kinds[1] == (2, 3)
    assert 1 - (0.56 - 0.44) > KIND_DISCOUNT * (1 - (0.52 - 0.48))
