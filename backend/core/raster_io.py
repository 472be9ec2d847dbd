"""Writing rasters so that nothing half-written ever looks finished, and reading image validity.

Every output raster is written under a temporary name beside its final path and moved into place
(with its .aux.xml sidecar) only when complete; a failed or cancelled run removes it.
"""
from __future__ import annotations

import contextlib
import os
import re
import uuid
from typing import Iterator

import numpy as np

from .errors import UserError, os_reason
from .partial_names import partial_name
from .written import check_written, failed_write_message

GTIFF_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE",
                 "BIGTIFF=IF_SAFER", "NUM_THREADS=ALL_CPUS"]
"""Creation options of every GeoTIFF the plugin writes: tiled, DEFLATE-compressed on all cores."""
GTIFF_EXTENSIONS = (".tif", ".tiff")
"""What a GeoTIFF output may be called."""
RASTER_SIDECARS = (".aux.xml", ".ovr", ".msk")
"""Files GDAL may write beside a raster: removed with it, and never an output over an input's."""


@contextlib.contextmanager
def atomic_output(path: str, clear_stale: bool = True) -> Iterator[str]:
    """Yields a temporary path beside ``path``; moves it into place only if the block succeeds
    and the file reads back whole (see :mod:`.written`).

    The move is one ``os.replace``: a reader sees the old file or the new one, never no file,
    even while another attempt rewrites the same path (a batch part run twice when its worker
    died).

    Args:
        path: the final file path. Its folder is created if missing.
        clear_stale: remove the temporaries earlier runs left beside ``path``. False where
            several attempts may write ``path`` at once (batch parts, whose folder is removed
            whole after stitching): another attempt's temporary is not stale.

    Raises:
        UserError: when the folder cannot be created, the file was not written whole (a full
            disk: said so) or cannot be moved into place, naming the file and the reason; the
            temporary file is then removed.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise UserError(f"Cannot create the folder '{folder}' ({os_reason(error)}). "
                        "Choose a folder you may write to.") from None
    if clear_stale:
        remove_stale_partials(path)  # what a killed run left behind
    temporary = partial_name(path, uuid.uuid4().hex[:8])
    try:
        yield temporary
        check_written(temporary, path)  # GDAL carries on after a failed write: read it back
    except BaseException as error:
        message = failed_write_message(error, temporary, path)
        remove_with_sidecars(temporary)
        if message:
            raise UserError(message) from None
        raise
    try:
        remove_sidecars(path)  # the old file's; the file itself is replaced in one step
        os.replace(temporary, path)
        if os.path.exists(temporary + ".aux.xml"):
            os.replace(temporary + ".aux.xml", path + ".aux.xml")
    except OSError as error:
        remove_with_sidecars(temporary)
        raise UserError(f"Cannot write '{path}' ({os_reason(error)}). Check that the "
                        "folder is writable and the disk has space.") from None


def remove_stale_partials(path: str) -> list[str]:
    """Removes the temporary files of ``path`` that an earlier, killed run left behind (and
    their sidecars). Never raises.

    Returns:
        the names removed.
    """
    base, ext = os.path.splitext(os.path.basename(path))
    pattern = re.compile(re.escape(f".{base}.partial-") + "[0-9a-f]{8}" + re.escape(ext)
                         + "(" + "|".join(re.escape(s) for s in RASTER_SIDECARS) + ")?$")
    folder = os.path.dirname(os.path.abspath(path))
    removed = []
    with contextlib.suppress(OSError):
        for name in sorted(os.listdir(folder)):
            if pattern.match(name):
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, name))
                    removed.append(name)
    return removed


def remove_with_sidecars(path: str) -> None:
    """Removes a raster and the sidecar files GDAL may have written beside it.

    Never raises: it runs while cleaning up after another error, which must stay the one the
    user reads; a file that cannot be removed is left.
    """
    with contextlib.suppress(OSError):
        os.remove(path)
    remove_sidecars(path)


def remove_sidecars(path: str) -> None:
    """Removes the sidecar files GDAL may have written beside a raster; never raises."""
    for candidate in (path + suffix for suffix in RASTER_SIDECARS):
        with contextlib.suppress(OSError):
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
