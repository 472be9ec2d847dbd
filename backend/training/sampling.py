"""Which digitised features validate, and where training windows come from.

Pixels of one polygon look alike, so any split that cuts a polygon leaks: validation then says
1.00 while polygons the network never saw score far lower. Here the split is by *whole
features* (``backend/feature_ids.py`` says which feature each pixel came from), stratified by
class: every class with at least two features has at least one held out, a class with one
feature trains and is reported as not validated. The labels of held-out features never reach
the loss; the image pixels around and under them may still be seen in training windows, as
they are at inference.

Training windows are anchored on training labels, a class drawn first (rarer classes more often
than their share), then a feature of that class (large polygons do not drown small ones), then a
labelled cell of it. Everything works on a coarse grid of ``cell`` x ``cell`` pixel cells, so
planning a large scene never needs its full-resolution mask in memory.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.errors import Cancelled
from ..core.progress import ConsoleProgress, Progress
from ..core.raster_io import open_raster, windows

CELL = 16
"""Edge of the label-count cells in pixels; window strides are multiples."""
CLASS_POWER = 0.5
"""A class is chosen as window anchor with probability proportional to its pixels ** this."""
FEATURE_POWER = 0.5
"""Within a class, a feature is chosen with probability proportional to its pixels ** this."""
VALIDATION_INTERIOR = 128
"""Held-out labels are scored in windows whose interiors (this many pixels a side) tile the
scene; each window adds a margin of context on every side."""
VALIDATION_MARGIN = 16
MAX_VALIDATION_WINDOWS = 64
"""At most this many validation windows (a seeded random choice beyond), so memory stays small."""


@dataclass(frozen=True)
class Feature:
    """One digitised feature (or connected region) of a mask: its class and labelled pixels."""

    scene: int
    id: int
    label: int        # output channel + 1
    pixels: int


class SplitLabels:
    """The labels of one mask split by feature: training labels and held-out labels.

    Args:
        mask_path: the mask.
        lookup: 256 entries mapping mask class ids to label indices (0 = ignore).
        feature_ids: reads the feature ids of a window ``(x, y, w, h)``.
        heldout: feature ids whose labels validate and never train.
    """

    def __init__(self, mask_path: str, lookup: np.ndarray,
                 feature_ids: Callable[[int, int, int, int], np.ndarray],
                 heldout: np.ndarray | None = None) -> None:
        self.mask_path, self.lookup, self.feature_ids = mask_path, lookup, feature_ids
        self.heldout = np.asarray(sorted(heldout if heldout is not None else []), np.int64)
        dataset = open_raster(mask_path)
        self.width, self.height = dataset.RasterXSize, dataset.RasterYSize
        self._local = threading.local()

    def _band(self):
        if not hasattr(self._local, "band"):
            self._local.dataset = open_raster(self.mask_path)
            self._local.band = self._local.dataset.GetRasterBand(1)
        return self._local.band

    def read(self, x: int, y: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
        """(training labels, held-out labels) of a window, label indices (0 = none)."""
        labels = self.lookup[self._band().ReadAsArray(x, y, w, h)]
        if not len(self.heldout):
            return labels, np.zeros_like(labels)
        held = np.isin(self.feature_ids(x, y, w, h), self.heldout) & (labels > 0)
        return np.where(held, 0, labels).astype(np.uint8), np.where(held, labels, 0).astype(
            np.uint8)

    def features(self, scene: int) -> list[Feature]:
        """Every feature with labelled pixels, with its class (the most common, should a
        connected region or an odd mask mix them) and pixel count."""
        counts: dict[tuple[int, int], int] = {}
        for x, y, w, h in windows(self.width, self.height, 1024):
            labels = self.lookup[self._band().ReadAsArray(x, y, w, h)]
            keep = labels > 0
            if not keep.any():
                continue
            key = self.feature_ids(x, y, w, h)[keep] * 256 + labels[keep]
            values, number = np.unique(key, return_counts=True)
            for value, n in zip(values.tolist(), number.tolist()):
                counts[(value // 256, value % 256)] = counts.get((value // 256, value % 256),
                                                                 0) + n
        best: dict[int, tuple[int, int]] = {}
        total: dict[int, int] = {}
        for (feature, label), n in counts.items():
            total[feature] = total.get(feature, 0) + n
            if feature not in best or n > best[feature][1]:
                best[feature] = (label, n)
        return [Feature(scene, f, label, total[f]) for f, (label, _) in sorted(best.items())]


@dataclass
class FeatureSplit:
    """Held-out feature ids per scene, and the classes that cannot be validated."""

    heldout: list[np.ndarray]
    unvalidated: list[int]          # output channels with fewer than two features
    features_per_class: np.ndarray  # (classes,) features in all


def _classes_to_validate(features: list[Feature], classes: int, validate: bool = True
                         ) -> tuple[list[list[Feature]], np.ndarray, list[int]]:
    """The features of each class that can be validated (two or more, in class order), the
    features per class, and the classes with a single feature (or all, without ``validate``),
    which only train. The one stratification rule of the split and of the folds."""
    groups: list[list[Feature]] = []
    per_class = np.zeros(classes, np.int64)
    unvalidated = []
    for c in range(classes):
        mine = [f for f in features if f.label == c + 1]
        per_class[c] = len(mine)
        if len(mine) >= 2 and validate:
            groups.append(mine)
        elif mine:
            unvalidated.append(c)
    return groups, per_class, unvalidated


def split_features(features: list[Feature], scenes: int, classes: int, fraction: float,
                   seed: int) -> FeatureSplit:
    """Holds out whole features, stratified by class.

    Each class with n >= 2 features holds out round(fraction * n) of them, at least one and at
    most n - 1, chosen at random (seeded). A class with one feature only trains.

    Args:
        features: every feature of every scene.
        scenes: number of scenes.
        classes: number of output channels.
        fraction: wanted share of each class's features held out (0: none).
        seed: makes the split repeatable.
    """
    rng = np.random.default_rng([seed, 7])
    heldout: list[list[int]] = [[] for _ in range(scenes)]
    groups, per_class, unvalidated = _classes_to_validate(features, classes, fraction > 0)
    for mine in groups:
        k = min(len(mine) - 1, max(1, int(round(fraction * len(mine)))))
        for i in rng.permutation(len(mine))[:k]:
            heldout[mine[i].scene].append(mine[i].id)
    return FeatureSplit([np.asarray(sorted(h), np.int64) for h in heldout], unvalidated,
                        per_class)


def fold_features(features: list[Feature], scenes: int, classes: int, folds: int,
                  seed: int) -> list[FeatureSplit]:
    """Cross-validation folds by whole features, stratified by class.

    With few features, one held-out share is a handful of polygons and its score swings by
    more than 0.1 from one split to the next; pooling folds scores every feature once. Each
    class's features are shuffled (seeded) and dealt to the folds in turn from a random first
    fold, so each feature of a class with n >= 2 features is held out in exactly one fold and
    no fold holds out a whole class. A class with one feature only trains.

    Args:
        features: every feature of every scene.
        scenes: number of scenes.
        classes: number of output channels.
        folds: number of folds (at least 2); fewer come back when some would hold out nothing.
        seed: makes the folds repeatable.
    """
    rng = np.random.default_rng([seed, 7])
    heldout: list[list[list[int]]] = [[[] for _ in range(scenes)] for _ in range(folds)]
    groups, per_class, unvalidated = _classes_to_validate(features, classes)
    for mine in groups:
        first = int(rng.integers(folds))
        for turn, i in enumerate(rng.permutation(len(mine))):
            heldout[(first + turn) % folds][mine[i].scene].append(mine[i].id)
    # with few features a fold may get none (2 classes of 2 in 3 folds): it would validate
    # nothing and choose no epoch, so it is left out
    return [FeatureSplit([np.asarray(sorted(h), np.int64) for h in fold], list(unvalidated),
                         per_class.copy()) for fold in heldout if any(fold)]


@dataclass
class SceneLabels:
    """Label counts of one scene on a grid of ``cell``-pixel cells.

    Attributes:
        width: scene width in pixels.
        height: scene height in pixels.
        cell: edge of a cell in pixels.
        counts: (cell rows, cell columns, classes) pixel counts of output channel c.
        feature_cells: per output channel, per feature: (flat cell indices, pixel counts).
    """

    width: int
    height: int
    cell: int
    counts: np.ndarray
    feature_cells: list[dict[int, tuple[np.ndarray, np.ndarray]]] = field(default_factory=list)

    @property
    def totals(self) -> np.ndarray:
        return self.counts.sum(axis=(0, 1))


def summarise_labels(read: Callable[[int, int, int, int], np.ndarray], width: int, height: int,
                     classes: int, cell: int = CELL, progress: Progress | None = None,
                     feature_ids: Callable[[int, int, int, int], np.ndarray] | None = None
                     ) -> SceneLabels:
    """Counts labels per cell (and per feature, when ids are given), reading block by block.

    Args:
        read: returns the label indices (0 = none, 1..classes) of a window ``(x, y, w, h)``.
        width: scene width.
        height: scene height.
        classes: number of output channels.
        cell: cell edge in pixels (divides 1024).
        progress: cancel and fraction.
        feature_ids: reads the feature ids of a window, for feature-balanced sampling.
    """
    progress = progress or ConsoleProgress(quiet=True)
    rows, cols = -(-height // cell), -(-width // cell)
    counts = np.zeros((rows, cols, classes), dtype=np.int64)
    pieces: list[dict[int, list]] = [{} for _ in range(classes)]
    blocks = list(windows(width, height, 1024))
    for number, (x, y, w, h) in enumerate(blocks):
        if progress.cancelled():
            raise Cancelled()
        labels = read(x, y, w, h)
        ph, pw = -(-h // cell) * cell, -(-w // cell) * cell
        padded = np.zeros((ph, pw), dtype=labels.dtype)
        padded[:h, :w] = labels
        grid = padded.reshape(ph // cell, cell, pw // cell, cell)
        r0, c0 = y // cell, x // cell
        for c in range(classes):
            counts[r0:r0 + ph // cell, c0:c0 + pw // cell, c] = (grid == c + 1).sum(axis=(1, 3))
        if feature_ids is not None and labels.any():
            ids = np.zeros((ph, pw), np.int64)
            ids[:h, :w] = feature_ids(x, y, w, h)
            yy, xx = np.nonzero(padded)
            flat = (r0 + yy // cell) * cols + (c0 + xx // cell)
            key = np.stack([padded[yy, xx].astype(np.int64), ids[yy, xx], flat])
            unique, n = np.unique(key, axis=1, return_counts=True)
            for (label, feature, where), k in zip(unique.T.tolist(), n.tolist()):
                pieces[label - 1].setdefault(feature, []).append((where, k))
        progress.set_fraction((number + 1) / len(blocks))
    feature_cells = [{f: (np.array([w for w, _ in v]), np.array([k for _, k in v]))
                      for f, v in per.items()} for per in pieces]
    return SceneLabels(width, height, cell, counts, feature_cells)


@dataclass
class WindowSampler:
    """Draws training windows anchored on training labels: class, then feature, then cell.

    Attributes:
        scenes: label summaries of the training labels.
        tile: (height, width) of the windows.
        class_power: rarer classes are drawn with probability ~ pixels ** class_power.
        feature_power: within a class, features are drawn ~ pixels ** feature_power (without
            feature ids, cells are drawn by their pixel counts).
    """

    scenes: list[SceneLabels]
    tile: tuple[int, int]
    class_power: float = CLASS_POWER
    feature_power: float = FEATURE_POWER
    _choices: list = field(init=False, repr=False)

    def __post_init__(self) -> None:
        classes = self.scenes[0].counts.shape[-1]
        self.pixels = sum(s.totals for s in self.scenes).astype(np.float64)
        self._choices = []
        for c in range(classes):
            groups = []  # (scene, flat cells, cumulative counts, pixels)
            for i, scene in enumerate(self.scenes):
                per_feature = scene.feature_cells[c] if scene.feature_cells else {}
                if per_feature:
                    for cells, n in per_feature.values():
                        groups.append((i, cells, np.cumsum(n), float(n.sum())))
                else:
                    flat = scene.counts[..., c].ravel()
                    cells = np.flatnonzero(flat)
                    if len(cells):
                        groups.append((i, cells, np.cumsum(flat[cells]), float(flat.sum())))
            weights = np.array([g[3] ** self.feature_power for g in groups]) if groups else \
                np.zeros(0)
            self._choices.append((groups, np.cumsum(weights)))
        with np.errstate(divide="ignore"):
            p = np.where(self.pixels > 0, self.pixels ** self.class_power, 0.0)
        self.class_probability = p / p.sum() if p.sum() > 0 else p

    def sample(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """Draws one window: (scene index, x, y) of its top-left pixel, covering a labelled
        cell of the drawn class at a random place inside the window."""
        c = int(rng.choice(len(self.class_probability), p=self.class_probability))
        groups, cumulative = self._choices[c]
        g = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")),
                len(groups) - 1)
        scene_index, cells, counts, _ = groups[g]
        k = min(int(np.searchsorted(counts, rng.random() * counts[-1], side="right")),
                len(cells) - 1)
        scene = self.scenes[scene_index]
        row, col = divmod(int(cells[k]), scene.counts.shape[1])
        th, tw = self.tile
        x = self._start(col * scene.cell, scene.cell, tw, scene.width, rng)
        y = self._start(row * scene.cell, scene.cell, th, scene.height, rng)
        return scene_index, x, y

    @staticmethod
    def _start(first: int, cell: int, tile: int, size: int, rng: np.random.Generator) -> int:
        """A window start along one axis at a random place where the window covers the cell
        (or, for windows smaller than a cell, a random pixel of it)."""
        if tile >= cell:
            start = first - int(rng.integers(tile - cell + 1))
        else:
            start = first + int(rng.integers(cell)) - int(rng.integers(tile))
        return min(max(start, 0), size - tile)


@dataclass(frozen=True)
class Window:
    """A validation window's scored interior (clipped at the scene's edge), in pixels."""

    scene: int
    x: int
    y: int
    width: int
    height: int


def validation_windows(heldout: list[SceneLabels], seed: int,
                       interior: int = VALIDATION_INTERIOR,
                       limit: int = MAX_VALIDATION_WINDOWS) -> list[Window]:
    """The interiors that hold held-out labels, on a grid that tiles each scene.

    Interiors do not overlap, so every held-out pixel is scored once; beyond ``limit`` windows a
    seeded random choice is kept (an unbiased sample of the held-out pixels).
    """
    found = []
    for index, scene in enumerate(heldout):
        per = interior // scene.cell
        rows, cols, _ = scene.counts.shape
        labelled = scene.counts.sum(-1)
        for r in range(0, rows, per):
            for c in range(0, cols, per):
                if labelled[r:r + per, c:c + per].any():
                    x, y = c * scene.cell, r * scene.cell
                    found.append(Window(index, x, y, min(interior, scene.width - x),
                                        min(interior, scene.height - y)))
    if len(found) > limit:
        keep = np.random.default_rng([seed, 11]).choice(len(found), limit, replace=False)
        found = [found[i] for i in sorted(keep.tolist())]
    return found
