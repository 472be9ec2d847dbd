"""Writing rasters so that nothing half-written ever looks finished, and reading image validity.

Every output raster is written under a temporary name beside its final path and moved into place
(with its .aux.xml sidecar) only when complete; a failed or cancelled run removes it.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

import numpy as np

from .errors import UserError

GTIFF_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                 "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"]
"""Creation options of every GeoTIFF the plugin writes: tiled, DEFLATE-compressed on all cores."""


@contextlib.contextmanager
def atomic_output(path: str) -> Iterator[str]:
    """Yields a temporary path beside ``path``; moves it into place only if the block succeeds.

    Args:
        path: the final file path. Its folder is created if missing.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    temporary = os.path.join(folder, f".{base}.partial-{uuid.uuid4().hex[:8]}{ext}")
    try:
        yield temporary
    except BaseException:
        remove_with_sidecars(temporary)
        raise
    remove_with_sidecars(path)
    os.replace(temporary, path)
    if os.path.exists(temporary + ".aux.xml"):
        os.replace(temporary + ".aux.xml", path + ".aux.xml")


def remove_with_sidecars(path: str) -> None:
    """Removes a raster and the sidecar files GDAL may have written beside it."""
    for candidate in (path, path + ".aux.xml", path + ".ovr", path + ".msk"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(candidate)


def open_raster(path: str):
    """Opens a raster with GDAL, or raises a UserError naming the file."""
    from osgeo import gdal

    dataset = gdal.Open(str(path)) if path else None
    if dataset is None:
        raise UserError(f"Cannot open the raster '{path}'. Is it a raster file GDAL can read?")
    return dataset


def band_nodata(dataset) -> list[float | None]:
    """The nodata value of each band (None where a band has none)."""
    return [dataset.GetRasterBand(i + 1).GetNoDataValue() for i in range(dataset.RasterCount)]


def invalid_pixels(block: np.ndarray, nodata: list[float | None]) -> np.ndarray:
    """Where any band of a (bands, rows, cols) block is nodata or NaN: those pixels carry no data.

    Args:
        block: pixel values, bands first.
        nodata: one nodata value (or None) per band in ``block``.
    """
    invalid = np.zeros(block.shape[1:], dtype=bool)
    for values, missing in zip(block, nodata):
        if np.issubdtype(values.dtype, np.floating):
            invalid |= ~np.isfinite(values)
        if missing is not None and not np.isnan(missing):
            invalid |= values == missing
    return invalid


def windows(width: int, height: int, size: int = 1024) -> Iterator[tuple[int, int, int, int]]:
    """Yields (x, y, w, h) blocks covering a raster, row by row."""
    for y in range(0, height, size):
        for x in range(0, width, size):
            yield x, y, min(size, width - x), min(size, height - y)
