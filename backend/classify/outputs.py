"""The files a classification writes: class raster, confidence, per-class probabilities.

All are tiled DEFLATE GeoTIFFs on the classified grid. The class raster is uint8 with nodata 0,
the class map's colour table, category names and metadata JSON; the confidence raster is one
float32 band (probability of the chosen class); the probabilities raster has one float32 band
per class, named after it. Finished rows are turned into those values (:meth:`derive`), handed
over in order (:meth:`write_rows`) and written a whole block row at a time; overviews are built
once everything is written.
"""
from __future__ import annotations

import math

import numpy as np

from ..core.calibration import calibrate_probabilities
from ..core.class_map import NO_LABEL, ClassMap
from ..core.grid import Grid
from ..core.raster_io import GTIFF_OPTIONS

FLOAT_NODATA = -1.0
"""Nodata of the confidence and probabilities rasters (a probability is never negative)."""
CLASS_ZLEVEL = 1
"""DEFLATE level of the class raster. GDAL's default, 6, takes 7 to 9 x the CPU time for files
only 15 to 20 % smaller; with a small network that was a tenth of the whole classification."""
FEW_CLASSES = 16
"""Up to this many classes, pixels are counted class by class (see ClassOutputs._count)."""
BLOCK_ROWS = 256
"""Rows of one GeoTIFF block (see GTIFF_OPTIONS): rows are written a whole block row at a time."""


def overview_levels(width: int, height: int, smallest: int = 128) -> list[int]:
    """Factors 2, 4, ... until the overview is under ``smallest`` pixels (at least one level)."""
    levels, factor = [], 2
    longest = max(width, height)
    while longest > 1 and (not levels or math.ceil(longest / factor) >= smallest):
        levels.append(factor)
        factor *= 2
    return levels


class ClassOutputs:
    """The open output datasets, fed with finished rows of blended probabilities.

    Args:
        grid: the output grid.
        class_map: the classes (written into the class raster).
        channel_ids: the class id of each output channel of the network, in channel order.
        class_path: temporary path of the class raster.
        confidence_path: temporary path of the confidence raster, or None.
        probabilities_path: temporary path of the probabilities raster, or None.
        smoothing, temperature: the model's calibration (``core/calibration.py``: its label
            smoothing undone, then its temperature), applied to the confidence and the
            probabilities (the classes do not change).
    """

    def __init__(self, grid: Grid, class_map: ClassMap, channel_ids: list[int], class_path: str,
                 confidence_path: str | None = None,
                 probabilities_path: str | None = None, smoothing: float = 0.0,
                 temperature: float = 1.0) -> None:
        from osgeo import gdal

        self.grid = grid
        self.smoothing, self.temperature = float(smoothing), float(temperature)
        self.class_map = class_map
        self.lookup = np.asarray(channel_ids, dtype=np.uint8)
        self.counts = np.zeros(256, dtype=np.int64)
        self.want_confidence = bool(confidence_path)
        self.want_probabilities = bool(probabilities_path)
        self.pending: list[tuple] = []
        self.next_row = self.written = 0
        self.classes = self._create(class_path, 1, gdal.GDT_Byte, NO_LABEL,
                                    [f"ZLEVEL={CLASS_ZLEVEL}"])
        class_map.write_to_band(self.classes)
        self.confidence = (self._create(confidence_path, 1, gdal.GDT_Float32, FLOAT_NODATA)
                           if confidence_path else None)
        if self.confidence is not None:
            self.confidence.GetRasterBand(1).SetDescription("confidence")
        self.probabilities = None
        if probabilities_path:
            self.probabilities = self._create(probabilities_path, len(channel_ids),
                                              gdal.GDT_Float32, FLOAT_NODATA)
            for index, class_id in enumerate(channel_ids):
                self.probabilities.GetRasterBand(index + 1).SetDescription(
                    class_map.by_id(class_id).name)

    def _create(self, path: str, bands: int, data_type: int, nodata: float,
                options: list[str] | None = None):
        from osgeo import gdal

        dataset = gdal.GetDriverByName("GTiff").Create(
            path, self.grid.width, self.grid.height, bands, data_type,
            GTIFF_OPTIONS + ["INTERLEAVE=BAND"] + (options or []))
        if dataset is None:
            from ..core.errors import UserError
            raise UserError(f"Cannot create the raster '{path}': is the folder writable?")
        dataset.SetGeoTransform(self.grid.geotransform)
        if self.grid.crs_wkt:
            dataset.SetProjection(self.grid.crs_wkt)
        for index in range(bands):
            dataset.GetRasterBand(index + 1).SetNoDataValue(nodata)
        return dataset

    def class_ids(self, scores: np.ndarray) -> np.ndarray:
        """The class id (uint8) of the highest of each pixel's (..., classes) scores."""
        return self.lookup[np.argmax(scores, axis=-1)]

    def derive(self, scores: np.ndarray, valid: np.ndarray, row_weights: np.ndarray,
               column_weights: np.ndarray) -> tuple:
        """Final values of finished rows: (classes, confidence or None, probabilities or None).

        Args:
            scores: (rows, width, classes) sums of weighted probabilities.
            valid: (rows, width) where the image has data.
            row_weights: (rows,) sums of the row weights; column_weights: (width,) likewise.
        """
        best = np.argmax(scores, axis=2)
        classes = self.lookup[best]
        classes[~valid] = NO_LABEL
        if not self.want_confidence and not self.want_probabilities:
            return classes, None, None
        norm = np.outer(row_weights, column_weights).astype(np.float32)
        confidence = probabilities = None
        if self.temperature != 1.0 or self.smoothing:  # blended probabilities, calibrated
            scores = calibrate_probabilities(scores / norm[..., None], self.smoothing,
                                             self.temperature)
            norm = np.ones_like(norm)
        if self.want_confidence:
            confidence = np.take_along_axis(scores, best[..., None], axis=2)[..., 0] / norm
            np.clip(confidence, 0.0, 1.0, out=confidence)
            confidence[~valid] = FLOAT_NODATA
        if self.want_probabilities:
            probabilities = np.moveaxis(scores / norm[..., None], 2, 0)
            probabilities[:, ~valid] = FLOAT_NODATA
        return classes, confidence, probabilities

    def write_rows(self, row: int, classes: np.ndarray, confidence: np.ndarray | None = None,
                   probabilities: np.ndarray | None = None) -> None:
        """Takes the next finished rows; writes them out a whole block row at a time.

        Rows must arrive in order. Whole blocks are written once and dropped from GDAL's cache,
        so neither this object nor GDAL ever holds more than about one block row.
        """
        if row != self.next_row:
            raise ValueError(f"rows must arrive in order: expected {self.next_row}, got {row}")
        self._count(classes)
        self.pending.append((classes, confidence, probabilities))
        self.next_row += len(classes)
        end = self.next_row if self.next_row == self.grid.height else \
            (self.next_row // BLOCK_ROWS) * BLOCK_ROWS
        if end > self.written:
            self._write_pending(end)

    def _count(self, classes: np.ndarray) -> None:
        """Adds the pixels of each class id (and of nodata) to ``counts``.

        With few classes, one comparison pass per id is cheaper than ``np.bincount``, which
        first widens every uint8 to 64 bits.
        """
        if len(self.lookup) > FEW_CLASSES:
            self.counts += np.bincount(classes.ravel(), minlength=256)
            return
        remaining = classes.size
        for class_id in self.lookup:
            found = np.count_nonzero(classes == class_id)
            self.counts[class_id] += found
            remaining -= found
        self.counts[NO_LABEL] += remaining

    def _write_pending(self, end: int) -> None:
        parts = list(zip(*self.pending))
        classes = np.concatenate(parts[0])
        confidence = np.concatenate(parts[1]) if self.want_confidence else None
        probabilities = np.concatenate(parts[2], axis=1) if self.want_probabilities else None
        count = end - self.written
        self.classes.GetRasterBand(1).WriteArray(classes[:count], 0, self.written)
        if confidence is not None:
            self.confidence.GetRasterBand(1).WriteArray(confidence[:count], 0, self.written)
        if probabilities is not None:
            for index, band in enumerate(probabilities[:, :count]):
                self.probabilities.GetRasterBand(index + 1).WriteArray(band, 0, self.written)
        for dataset in self.datasets():
            dataset.FlushCache()  # whole blocks: written once, then out of the cache
        self.pending = [] if count == len(classes) else [
            (classes[count:], None if confidence is None else confidence[count:],
             None if probabilities is None else probabilities[:, count:])]
        self.written = end

    def datasets(self) -> list:
        return [d for d in (self.classes, self.confidence, self.probabilities) if d is not None]

    def finish(self, progress=None, overviews: bool = True) -> None:
        """Builds overviews (nearest for classes, average for probabilities) and closes."""
        from osgeo import gdal

        if self.written != self.grid.height:
            raise RuntimeError(f"only {self.written} of {self.grid.height} rows were written")
        if not overviews:
            self.close()
            return
        levels = overview_levels(self.grid.width, self.grid.height)
        work = [(self.classes, "NEAREST")] + [(d, "AVERAGE") for d in
                                              (self.confidence, self.probabilities) if d]
        for number, (dataset, method) in enumerate(work):
            dataset.FlushCache()
            if dataset.BuildOverviews(method, levels) != gdal.CE_None:
                from ..core.errors import UserError
                raise UserError(f"Building overviews failed: {gdal.GetLastErrorMsg()}")
            if progress is not None:
                progress.set_fraction((number + 1) / len(work))
        self.close()

    def close(self) -> None:
        """Closes the datasets (flushing them); safe to call twice."""
        for name in ("classes", "confidence", "probabilities"):
            dataset = getattr(self, name, None)
            if dataset is not None:
                dataset.FlushCache()
                setattr(self, name, None)
