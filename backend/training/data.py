"""The training input pipeline: normalised windows, augmentation, batches prepared in parallel.

Each scene is read through a :class:`SceneReader`: held in memory (already normalised) when it
is small, read window by window with GDAL when it is large. Worker *threads* share the readers,
so a scene in memory exists once, never once per worker; GDAL handles are per thread because
GDAL datasets are not thread-safe. Batches are built from a seed, the epoch and the step, so a
run is repeatable whatever order the threads finish in.
"""
from __future__ import annotations

import concurrent.futures
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from ..core.normalization import BandStats, read_bands
from ..core.progress import Progress
from ..core.raster_io import band_nodata, invalid_pixels, open_raster
from .sparse_pseudo_labels import SparsePseudoLabels
from .sampling import (CELL, VALIDATION_MARGIN, SceneLabels, SplitLabels, Window, WindowSampler,
                       summarise_labels)

IN_MEMORY_BYTES = 512 * 1024 ** 2
"""A scene whose normalised pixels fit in this many bytes is read once and kept in memory."""
JITTER = 0.1
"""Standard deviation of the per-channel gain and offset jitter, in normalised units."""
NOISE = 0.1
"""Standard deviation of per-pixel Gaussian noise added in augmentation (normalised units)."""


class SceneReader:
    """Reads normalised windows of one image with its training (and held-out) labels.

    Args:
        image_path: the image.
        labels: its mask's labels, split into training and held-out features.
        bands: 1-based band numbers, in channel order.
        stats: normalisation statistics.
        in_memory_bytes: scenes up to this size are loaded whole (None: :data:`IN_MEMORY_BYTES`
            as it is when the reader opens).
    """

    def __init__(self, image_path: str, labels: SplitLabels, bands: list[int], stats: BandStats,
                 in_memory_bytes: int | None = None) -> None:
        self.image_path, self.labels = image_path, labels
        self.bands, self.stats = bands, stats
        dataset = open_raster(image_path)
        self.width, self.height = dataset.RasterXSize, dataset.RasterYSize
        self.nodata = [band_nodata(dataset)[b - 1] for b in bands]
        self._local = threading.local()
        size = self.width * self.height * (len(bands) * 4 + 3)
        self.in_memory = size <= (IN_MEMORY_BYTES if in_memory_bytes is None else in_memory_bytes)
        self._whole = None
        self.soft: np.ndarray | SparsePseudoLabels | None = None
        """(H, W, classes + 1) pseudo-labels and their weight (``teacher.py``), or None; kept
        sparse for a scene not held in memory (``teacher_blocks.py``)."""
        if self.in_memory:
            self._whole = self._read_from_files(0, 0, self.width, self.height)

    @property
    def whole(self):
        """(pixels, training labels, valid, held-out labels) of an in-memory scene."""
        return self._whole

    def _image(self):
        if not hasattr(self._local, "image"):
            self._local.image = open_raster(self.image_path)
        return self._local.image

    def _read_from_files(self, x: int, y: int, w: int, h: int):
        raw = read_bands(self._image(), self.bands, x, y, w, h)
        invalid = invalid_pixels(raw, self.nodata)
        pixels = self.stats.normalise(np.moveaxis(raw, 0, -1), invalid)
        labels, heldout = self.labels.read(x, y, w, h)
        labels[invalid] = 0
        heldout[invalid] = 0
        return pixels, labels, ~invalid, heldout

    def read(self, x: int, y: int, w: int, h: int, heldout: bool = False):
        """A window inside the scene: (pixels (h, w, C) float32, labels (h, w) uint8, valid).

        The labels are the training labels, or with ``heldout`` those of the held-out features.
        """
        if self.in_memory:
            pixels, labels, valid, held = (a[y:y + h, x:x + w] for a in self._whole)
        else:
            pixels, labels, valid, held = self._read_from_files(x, y, w, h)
        return pixels, held if heldout else labels, valid

    def read_padded(self, x: int, y: int, w: int, h: int, heldout: bool = False):
        """Like :meth:`read` for a window that may reach outside the scene (padded as nodata)."""
        pixels = np.zeros((h, w, len(self.bands)), dtype=np.float32)
        labels = np.zeros((h, w), dtype=np.uint8)
        valid = np.zeros((h, w), dtype=bool)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x1 > x0 and y1 > y0:
            p, l, v = self.read(x0, y0, x1 - x0, y1 - y0, heldout)
            pixels[y0 - y:y1 - y, x0 - x:x1 - x] = p
            labels[y0 - y:y1 - y, x0 - x:x1 - x] = l
            valid[y0 - y:y1 - y, x0 - x:x1 - x] = v
        return pixels, labels, valid


def open_scenes(images: list[str], masks: list[str], lookup: np.ndarray,
                feature_ids: list[Callable[[int, int, int, int], np.ndarray]],
                heldout: list[np.ndarray] | None, bands: list[int], stats: BandStats,
                classes: int, progress: Progress | None = None
                ) -> tuple[list[SceneReader], list[SceneLabels]]:
    """Readers of the training scenes, and the per-cell summaries of their training labels.

    Args:
        images: the images.
        masks: one mask per image.
        lookup: mask ids to label indices.
        feature_ids: one feature-id reader per mask (``backend.feature_ids``).
        heldout: per scene, the feature ids held out for validation (None: none).
        bands: 1-based bands.
        stats: normalisation.
        classes: output channels.
        progress: cancel and fraction while summarising.
    """
    heldout = heldout if heldout is not None else [None] * len(images)
    readers = [SceneReader(image, SplitLabels(mask, lookup, ids, held), bands, stats)
               for image, mask, ids, held in zip(images, masks, feature_ids, heldout)]
    scenes = [summarise_labels(lambda x, y, w, h, r=r: r.read(x, y, w, h)[1], r.width, r.height,
                               classes, CELL, progress, feature_ids=ids)
              for r, ids in zip(readers, feature_ids)]
    return readers, scenes


def augment(pixels: np.ndarray, labels: np.ndarray, valid: np.ndarray,
            rng: np.random.Generator, jitter: float | None = None,
            extra: np.ndarray | None = None):
    """A random flip / 90-degree rotation / transpose and mild radiometric jitter.

    Square windows get any of the 8 symmetries of the square; non-square ones only those that
    keep their shape (identity, the two flips, and the 180-degree rotation), so every window of
    a batch keeps the same shape. Jitter is a per-channel gain and offset on valid pixels only.

    Args:
        pixels: (h, w, C) normalised pixels.
        labels: (h, w) label indices.
        valid: (h, w) where the image has data.
        rng: the random generator.
        jitter: spread of gain and offset; None for :data:`JITTER`.
        extra: (h, w, K) values that follow the geometry only (pseudo-labels); when given,
            it is returned as a fourth item.
    """
    jitter = JITTER if jitter is None else jitter
    square = pixels.shape[0] == pixels.shape[1]
    k = int(rng.integers(8 if square else 4))
    arrays = [pixels, labels, valid] + ([extra] if extra is not None else [])
    if square:
        if k >= 4:
            arrays = [np.swapaxes(a, 0, 1) for a in arrays]
        arrays = [np.rot90(a, k % 4) for a in arrays]
    else:
        if k & 1:
            arrays = [a[::-1] for a in arrays]
        if k & 2:
            arrays = [a[:, ::-1] for a in arrays]
    pixels, labels, valid = arrays[:3]
    pixels = np.array(pixels, dtype=np.float32)
    if jitter:
        channels = pixels.shape[-1]
        gain = 1.0 + rng.normal(0.0, jitter, channels).astype(np.float32)
        offset = rng.normal(0.0, jitter, channels).astype(np.float32)
        pixels = pixels * gain + offset
        pixels += rng.normal(0.0, NOISE, pixels.shape).astype(np.float32)
        pixels[~valid] = 0.0
    result = (pixels, np.ascontiguousarray(labels), np.ascontiguousarray(valid))
    return result + (np.ascontiguousarray(arrays[3]),) if extra is not None else result


class TrainingBatches:
    """Builds training batches from sampled windows, deterministically per (epoch, step).

    Args:
        readers: one reader per scene.
        sampler: where windows are drawn.
        batch_size: windows per batch.
        augment: whether to augment.
        seed: base seed.
    """

    def __init__(self, readers: list[SceneReader], sampler: WindowSampler, batch_size: int,
                 augment: bool = True, seed: int = 0) -> None:
        self.readers, self.sampler = readers, sampler
        self.batch_size, self.augment, self.seed = batch_size, augment, seed

    def batch(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(pixels (B, h, w, C) float32, labels (B, h, w) uint8) for one training step.

        When the readers carry pseudo-labels, the targets are (B, h, w, classes + 2) float32
        instead: the label, the pseudo-label probabilities and their weight
        (``models.losses.PseudoLabelLoss`` unpacks them).
        """
        rng = np.random.default_rng([self.seed, epoch, step])
        th, tw = self.sampler.tile
        pixels = np.empty((self.batch_size, th, tw, len(self.readers[0].bands)), np.float32)
        soft = next((r.soft for r in self.readers if r.soft is not None), None)
        if soft is None:
            labels = np.empty((self.batch_size, th, tw), np.uint8)
        else:
            labels = np.zeros((self.batch_size, th, tw, soft.shape[-1] + 1), np.float32)
        for i in range(self.batch_size):
            scene, x, y = self.sampler.sample(rng)
            reader = self.readers[scene]
            p, l, v = reader.read(x, y, tw, th)
            extra = reader.soft[y:y + th, x:x + tw] if reader.soft is not None else None
            if self.augment:
                p, l, v, *rest = augment(p, l, v, rng, extra=extra)
                extra = rest[0] if rest else None
            pixels[i] = p
            if soft is None:
                labels[i] = l
            else:
                labels[i, ..., 0] = l
                if extra is not None:
                    labels[i, ..., 1:] = extra
        return pixels, labels


def prefetch(make: Callable[[object], object], jobs: Iterable, workers: int = 2,
             depth: int = 4) -> Iterator:
    """Runs ``make(job)`` in worker threads, up to ``depth`` jobs ahead, yielding in order.

    The consumer (the training step) releases the GIL while the network runs, so the next
    batches are read and augmented meanwhile. Closing the iterator cancels what is pending.
    """
    if workers <= 0:
        for job in jobs:
            yield make(job)
        return
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers,
                                                 thread_name_prefix="landcoverunet-batches")
    pending: deque = deque()
    iterator = iter(jobs)
    try:
        for job in iterator:
            pending.append(pool.submit(make, job))
            if len(pending) >= depth:
                break
        while pending:
            result = pending.popleft().result()
            for job in iterator:
                pending.append(pool.submit(make, job))
                break
            yield result
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True)


@dataclass
class ValidationSet:
    """The held-out features' labels in windows read once, each with context around it.

    Labels are those of held-out features, kept only inside the window's interior (interiors
    tile the scene, so each pixel is scored once); the context only helps the prediction near
    the interior's edge. The image is seen there as at inference; training labels never are.
    """

    pixels: np.ndarray    # (N, S, S, C)
    labels: np.ndarray    # (N, S, S) label indices of held-out features, 0 elsewhere
    valid: np.ndarray     # (N, S, S) where the image has data
    windows: list[Window]
    features: np.ndarray | None = None
    """(N, S, S) which held-out feature a labelled pixel belongs to (0 .. feature_count - 1;
    -1 where no label): the validation interval resamples whole features (``interval.py``)."""
    feature_count: int = 0

    @property
    def labelled_pixels(self) -> int:
        return int((self.labels > 0).sum())


def read_validation(readers: list[SceneReader], windows: list[Window], interior: int,
                    multiple: int, margin: int = VALIDATION_MARGIN) -> ValidationSet:
    """Reads the validation windows with ``margin`` pixels of context, padded to one size."""
    size = -(-(interior + 2 * margin) // multiple) * multiple
    channels = len(readers[0].bands)
    pixels = np.zeros((len(windows), size, size, channels), np.float32)
    labels = np.zeros((len(windows), size, size), np.uint8)
    valid = np.zeros((len(windows), size, size), bool)
    keys = np.full((len(windows), size, size), -1, np.int64)
    for i, window in enumerate(windows):
        x = window.x - (size - window.width) // 2
        y = window.y - (size - window.height) // 2
        reader = readers[window.scene]
        p, l, valid[i] = reader.read_padded(x, y, size, size, heldout=True)
        keep = np.zeros_like(l, dtype=bool)
        keep[window.y - y:window.y - y + window.height,
             window.x - x:window.x - x + window.width] = True
        pixels[i] = p
        labels[i] = np.where(keep, l, 0)
        if labels[i].any():  # the feature of each scored pixel, unique across scenes
            ids = reader.labels.feature_ids(window.x, window.y, window.width, window.height)
            inner = keys[i, window.y - y:window.y - y + window.height,
                         window.x - x:window.x - x + window.width]
            inner[:] = window.scene * 2 ** 32 + ids.astype(np.int64)
    labelled = labels > 0
    unique, dense = np.unique(keys[labelled], return_inverse=True)
    features = np.full(labels.shape, -1, np.int32)
    features[labelled] = dense
    return ValidationSet(pixels, labels, valid, list(windows), features, len(unique))
