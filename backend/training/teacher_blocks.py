"""The teacher on a scene too large to hold in memory: read block by block, near the labels.

A scene above ``data.IN_MEMORY_BYTES`` of pixels used to train without a teacher, the U-Net alone
from the labels alone: the very design that maps worse than a per-pixel random forest when a
few dozen polygons are all the labels (issue 21), and a whole Landsat scene or Sentinel-2 tile
is such a scene. Training windows always cover a training label, so the teacher only needs the
parts of the scene within a window's reach of one: the training pixels it is fitted on, and
unlabelled pixels there to pseudo-label. Those parts are read here in blocks of :data:`BLOCK`
pixels, each with a margin wide enough for the window features, so memory stays that of a few
blocks and of the sampled pixels whatever the scene's size. Every pixel's features are those
``teacher.pixel_features`` gives it in a scene held in memory.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import Cancelled
from ..core.progress import Progress
from ..core.raster_io import windows
from .sparse_pseudo_labels import SparsePseudoLabels
from .teacher import (NEIGHBOURHOODS, PIXELS_PER_CLASS, PSEUDO_PIXELS, forest_probabilities,
                      pixel_features)

BLOCK = 512
"""Edge in pixels of the blocks a large scene is read in."""
MARGIN = max(NEIGHBOURHOODS) // 2
"""Pixels of context read around a block, so that its pixels' window features are exact."""


@dataclass(frozen=True)
class NearLabels:
    """The blocks of a scene within reach of its training labels.

    Attributes:
        blocks: (x, y, w, h) of each block.
        counts: (len(blocks), classes) training-labelled pixels of each class in each block.
    """

    blocks: tuple[tuple[int, int, int, int], ...]
    counts: np.ndarray


def near_labels(reader, classes: int, reach: int, progress: Progress) -> NearLabels:
    """The blocks of a scene that hold a training label or lie within ``reach`` pixels of one
    (the training windows' edge), with their label counts; reads the labels only."""
    from scipy.ndimage import binary_dilation

    every = list(windows(reader.width, reader.height, BLOCK))
    counts = np.zeros((len(every), classes), np.int64)
    for i, (x, y, w, h) in enumerate(every):
        if progress.cancelled():
            raise Cancelled()
        labels = reader.labels.read(x, y, w, h)[0]
        counts[i] = np.bincount(labels.ravel(), minlength=classes + 1)[1:classes + 1]
    columns = -(-reader.width // BLOCK)
    grid = counts.sum(1).reshape(-1, columns) > 0
    steps = -(-reach // BLOCK)
    near = binary_dilation(grid, np.ones((2 * steps + 1, 2 * steps + 1), bool))
    keep = np.flatnonzero(near.ravel())
    return NearLabels(tuple(every[i] for i in keep), counts[keep])


def read_block(reader, block: tuple[int, int, int, int], margin: int = MARGIN):
    """(pixels, training labels, valid, inner) of a block and ``margin`` pixels around it
    (outside the scene: no data, as a scene in memory is padded); ``inner`` is True on the
    block's own pixels."""
    x, y, w, h = block
    pixels, labels, valid = reader.read_padded(x - margin, y - margin, w + 2 * margin,
                                               h + 2 * margin)
    inner = np.zeros(labels.shape, bool)
    inner[margin:margin + h, margin:margin + w] = True
    return pixels, labels, valid, inner


def training_pixels(reader, near: NearLabels, classes: int, rng: np.random.Generator,
                    progress: Progress) -> tuple[np.ndarray, np.ndarray]:
    """(features, class indices) of at most ``PIXELS_PER_CLASS`` training pixels per class,
    a random sample spread over the blocks by their label counts."""
    totals = near.counts.sum(0)
    quota = np.zeros_like(near.counts)
    for c in range(classes):
        if totals[c]:
            quota[:, c] = rng.multivariate_hypergeometric(near.counts[:, c],
                                                          min(int(totals[c]), PIXELS_PER_CLASS))
    features, targets = [], []
    for block, wanted in zip(near.blocks, quota):
        if not wanted.any():
            continue
        if progress.cancelled():
            raise Cancelled()
        pixels, labels, valid, inner = read_block(reader, block)
        chosen = []
        for c in np.flatnonzero(wanted):
            where = np.flatnonzero((labels.ravel() == c + 1) & valid.ravel() & inner.ravel())
            if len(where) > wanted[c]:
                where = rng.choice(where, wanted[c], replace=False)
            chosen.append(where)
            targets.append(np.full(len(where), c))
        # one pass of the window filters for every class of the block
        features.append(pixel_features(pixels, valid, np.concatenate(chosen)))
    if not features:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64)
    return np.concatenate(features), np.concatenate(targets)


def pseudo_labels(reader, near: NearLabels, forest, classes: int, seed: int,
                  progress: Progress) -> SparsePseudoLabels:
    """The forest's probabilities at about ``PSEUDO_PIXELS`` unlabelled pixels drawn evenly
    from the blocks near the labels (never at a training label or without data)."""
    rng = np.random.default_rng([seed, 17])
    areas = np.array([w * h for _, _, w, h in near.blocks], np.float64)
    unlabelled = np.maximum(areas - near.counts.sum(1), 0)
    rate = min(1.0, PSEUDO_PIXELS / unlabelled.sum()) if unlabelled.sum() else 0.0
    flats, values = [], []
    for block in near.blocks:
        if progress.cancelled():
            raise Cancelled()
        pixels, labels, valid, inner = read_block(reader, block)
        candidates = np.flatnonzero((labels.ravel() == 0) & valid.ravel() & inner.ravel())
        where = np.sort(candidates[rng.random(len(candidates)) < rate])
        if not len(where):
            continue
        probabilities = forest_probabilities(forest, pixels, valid, where, classes)
        x, y, _, _ = block
        span = labels.shape[1]
        rows, cols = where // span - MARGIN + y, where % span - MARGIN + x
        flats.append(rows.astype(np.int64) * reader.width + cols)
        values.append(np.concatenate([probabilities, np.ones((len(where), 1), np.float32)],
                                     axis=1).astype(np.float16))
    flat = np.concatenate(flats) if flats else np.zeros(0, np.int64)
    order = np.argsort(flat, kind="stable")
    value = np.concatenate(values) if values else np.zeros((0, classes + 1), np.float16)
    return SparsePseudoLabels((reader.height, reader.width, classes + 1), flat[order],
                              value[order], near)
