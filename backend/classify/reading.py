"""Reading the image for classification: batches of windows, each GDAL block decoded once.

The reader goes on to the end of the image block it is in and keeps what lies beyond a window
for the next one (columns for the next window, the last block row's rows for the next strip),
and passes the image's own data type to the network call, which normalises it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..core.errors import UserError
from ..model.metadata import ModelMetadata
from ..core.raster_io import band_nodata, invalid_pixels
from .tiling import AxisWindow


class WindowReader:
    """Reads windows of the image as raw pixels; the network normalises them (see predictor)."""

    def __init__(self, dataset: Any, metadata: ModelMetadata, x_off: int, y_off: int,
                 width: int, rows: list[AxisWindow]) -> None:
        self.dataset = dataset
        self.bands = [int(b) for b in metadata.bands]
        nodata = band_nodata(dataset)
        self.nodata = [nodata[b - 1] for b in self.bands]
        self.mean = np.asarray(metadata.mean, dtype=np.float32)
        self.x_off, self.y_off, self.width = x_off, y_off, width
        types = {dataset.GetRasterBand(b).DataType for b in self.bands}
        # bands of different types are read as one type that holds them all
        self.buf_type = None if len(types) == 1 else _common_type(types)
        self.block = [int(n) for n in dataset.GetRasterBand(self.bands[0]).GetBlockSize()]
        self.following = {row.start: after for row, after in zip(rows, rows[1:])}
        self.kept: np.ndarray | None = None  # columns [kept_x0, ...) of the strip kept_row
        self.kept_row = self.kept_x0 = -1
        self.carry: np.ndarray | None = None  # the first rows of strip kept_row, all columns
        self.carrying: list[np.ndarray] | None = []  # the same for the next strip, by columns

    def read(self, row: AxisWindow, cols: list[AxisWindow]) -> tuple[np.ndarray, np.ndarray]:
        """Returns (batch (n, h, w, bands) of pixels, valid (rows, columns) of the covered span).

        Pixels keep the image's type, so nothing here passes over them but the copy into the
        batch. Only where the image has no data do they become float32: there they are set to
        the band means, which the network's normalisation turns into 0.
        """
        x0, x1 = cols[0].start, cols[-1].stop
        raw = self._columns(row, x0, x1)
        invalid = invalid_pixels(raw.transpose(2, 0, 1), self.nodata)
        if invalid.any():
            raw = raw.astype(np.float32)
            raw[invalid] = self.mean
        padded = row.size > row.valid or cols[-1].size > cols[-1].valid
        if len(cols) == 1 and not padded:
            return raw[None], ~invalid
        batch = np.empty((len(cols), row.size, cols[0].size, len(self.bands)), dtype=raw.dtype)
        for k, col in enumerate(cols):
            piece = raw[:, col.start - x0:col.stop - x0]
            if row.size > row.valid or col.size > col.valid:
                piece = np.pad(piece, ((0, row.size - row.valid), (0, col.size - col.valid),
                                       (0, 0)),
                               mode="reflect" if min(piece.shape[:2]) > 1 else "edge")
            batch[k] = piece
        return batch, ~invalid

    def _columns(self, row: AxisWindow, x0: int, x1: int) -> np.ndarray:
        """Pixels (rows, columns, bands) of columns [x0, x1) of a strip, read left to right.

        Reading a window decodes every image block it touches, and the next window touches
        the same blocks again. So each read goes on to the end of its block column (at most one
        more window's width, for images stored in full-width strips) and the columns beyond x1
        are kept for the next window: each block is decoded once per strip.
        """
        if row.start != self.kept_row:
            self._next_strip(row)
        elif self.kept is None or not self.kept_x0 <= x0 <= self.kept_x0 + self.kept.shape[1]:
            self.kept, self.kept_x0, self.carrying = None, x0, None  # out of order: no carry
        have = self.kept_x0 + (0 if self.kept is None else self.kept.shape[1])
        if x1 > have:
            block_end = _block_end(self.x_off, x1, self.block[0])
            stop = min(max(x1, min(block_end, 2 * x1 - x0)), self.width)
            fresh = self._chunk(row, have, stop)
            self.kept = fresh if self.kept is None else np.concatenate(
                [self.kept[:, x0 - self.kept_x0:], fresh], axis=1)
            self.kept_x0 = x0
        return self.kept[:, x0 - self.kept_x0:x1 - self.kept_x0]

    def _next_strip(self, row: AxisWindow) -> None:
        """Starts reading strip ``row`` with the rows the previous strip read for it, if any."""
        carried = np.concatenate(self.carrying, axis=1) if self.carrying else None
        usable = (carried is not None and carried.shape[1] == self.width
                  and self.kept_row in self.following
                  and self.following[self.kept_row].start == row.start)
        self.carry = carried if usable else None
        self.kept, self.kept_row, self.kept_x0, self.carrying = None, row.start, 0, []

    def _chunk(self, row: AxisWindow, start: int, stop: int) -> np.ndarray:
        """Rows of a strip, columns [start, stop): rows the previous strip read, then fresh ones.

        Strips overlap and rarely end on a block row, so a strip's last block row would be
        decoded again by the next strip. A read therefore goes on to the end of its block row
        (when that is at most MAX_CARRY_ROWS more) and the rows the next strip needs are kept
        for it (a few rows over the whole width).
        """
        parts = [] if self.carry is None else [self.carry[:, start:stop]]
        top = row.start + (0 if self.carry is None else len(self.carry))
        end = row.start + row.valid
        after = self.following.get(row.start)
        if after is not None and _block_end(self.y_off, end, self.block[1]) - end <= MAX_CARRY_ROWS:
            end = min(_block_end(self.y_off, end, self.block[1]), after.stop)
        if end > top:
            fresh = self.dataset.ReadAsArray(
                self.x_off + start, self.y_off + top, stop - start, end - top,
                band_list=self.bands, buf_type=self.buf_type, interleave="pixel")
            self.dataset.FlushCache()  # GDAL's block cache would otherwise keep the whole image
            if fresh is None:
                raise UserError("Reading the image failed: " + _gdal_error())
            parts.append(fresh.reshape(end - top, stop - start, len(self.bands)))
        chunk = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        if after is not None and self.carrying is not None:
            self.carrying.append(chunk[after.start - row.start:].copy())  # not the chunk
        return chunk[:row.valid]


def _block_end(offset: int, position: int, block: int) -> int:
    """The end of the image block (of ``block`` pixels from ``offset``) holding ``position - 1``."""
    return -(-(offset + position) // block) * block - offset


MAX_CARRY_ROWS = 64
"""At most this many rows are read beyond a strip to finish its last block row for the next."""


def _common_type(types: set[int]) -> int:
    from osgeo import gdal

    wide = {gdal.GDT_Float64, gdal.GDT_Int32, gdal.GDT_UInt32,
            getattr(gdal, "GDT_Int64", -1), getattr(gdal, "GDT_UInt64", -1)}
    return gdal.GDT_Float64 if types & wide else gdal.GDT_Float32


def _gdal_error() -> str:
    from osgeo import gdal

    return gdal.GetLastErrorMsg() or "unknown GDAL error"
