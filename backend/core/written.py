"""Checking what was written before it is moved into place, and saying why a write failed.

GDAL reports a failed write (a full disk, a quota, a lost network share) only through its error
handler, and carries on: a GeoTIFF whose tiles never reached the disk, or a GeoPackage without
its required tables, closes "successfully". So every output is read back from its temporary
name (every block of every band and overview of a raster, every feature of every layer of a
GeoPackage) before :func:`~.raster_io.atomic_output` or :class:`~.staging.OutputSet` moves it
into place, and a write that failed on a full disk is reported as exactly that, naming the file
the user asked for rather than the hidden temporary one.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from typing import Iterator

from .errors import UserError
from .partial_names import final_name

FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
"""OS errors that mean "no room for this file": a full disk, a quota, a file-size limit."""
NEARLY_FULL_BYTES = 4 << 20
"""A write that failed with less free space than this (4 MiB) left failed for want of space."""
RASTER_EXTENSIONS = (".tif", ".tiff")
VECTOR_EXTENSIONS = (".gpkg",)


@contextlib.contextmanager
def gdal_failures() -> Iterator[list[str]]:
    """Collects the messages of GDAL's failures in this thread instead of printing them: while
    a file is read back, its errors are what the message to the user explains."""
    from osgeo import gdal

    found: list[str] = []

    def handler(kind: int, number: int, message: str) -> None:
        if kind >= gdal.CE_Failure:
            found.append(str(message))

    gdal.PushErrorHandler(handler)
    try:
        yield found
    finally:
        gdal.PopErrorHandler()


def check_written(temporary: str, final: str) -> None:
    """Reads a finished output back from its temporary name: every block of a GeoTIFF (bands
    and overviews), every feature of a GeoPackage; other files must exist.

    Raises:
        UserError: naming ``final`` when the file is missing, cannot be opened or a part of it
            cannot be read (and that the disk is full when it is).
    """
    if not os.path.isfile(temporary):
        raise UserError(not_written(final, "the file was not created"))
    lower = final.lower()
    with gdal_failures() as failures:
        if lower.endswith(RASTER_EXTENSIONS):
            problem = _raster_problem(temporary)
        elif lower.endswith(VECTOR_EXTENSIONS):
            problem = _vector_problem(temporary)
        else:
            problem = None
    if problem:
        detail = next(iter(failures), "")
        raise UserError(not_written(final, problem if not detail else f"{problem}: {detail}"))


def _raster_problem(path: str) -> str | None:
    from osgeo import gdal

    dataset = gdal.OpenEx(path, gdal.OF_RASTER)
    if dataset is None:
        return "it cannot be opened again"
    for index in range(dataset.RasterCount):
        band = dataset.GetRasterBand(index + 1)
        for level in [band] + [band.GetOverview(i) for i in range(band.GetOverviewCount())]:
            if level is None or level.Checksum() < 0:  # a block that cannot be read: -1
                return f"band {index + 1} cannot be read back"
    dataset = None
    return _sidecar_problem(path + ".aux.xml")


def _sidecar_problem(path: str) -> str | None:
    """A GDAL sidecar (class names, statistics) cut short by a full disk is not XML."""
    import xml.etree.ElementTree as ElementTree

    if not os.path.exists(path):
        return None
    try:
        ElementTree.parse(path)
    except (ElementTree.ParseError, OSError):
        return "its .aux.xml sidecar is incomplete"
    return None


def failed_write_message(error: BaseException, temporary: str, final: str) -> str | None:
    """What to tell the user when writing ``final`` (under the name ``temporary``) raised
    ``error``: that the disk is full, naming ``final``, when the OS said so or when something
    was being written and the disk is (nearly) full now; None to let ``error`` speak.

    Call it before the temporary file is removed: its size is part of what fills the disk.
    """
    from .errors import Cancelled

    if isinstance(error, Cancelled) or not isinstance(error, Exception):
        return None
    if full_disk_error(error) or (os.path.exists(temporary) and disk_full(final)):
        return not_written(final, getattr(error, "strerror", None) or str(error))
    return None


def _vector_problem(path: str) -> str | None:
    from osgeo import gdal

    dataset = gdal.OpenEx(path, gdal.OF_VECTOR)
    if dataset is None or dataset.GetLayerCount() == 0:
        return "it cannot be opened again"
    result = dataset.ExecuteSQL("PRAGMA integrity_check")
    if result is not None:
        answer = result.GetNextFeature()
        verdict = answer.GetField(0) if answer is not None else None
        dataset.ReleaseResultSet(result)
        if verdict != "ok":
            return "the GeoPackage is damaged"
    for index in range(dataset.GetLayerCount()):
        layer = dataset.GetLayer(index)
        declared = layer.GetFeatureCount()
        read = sum(1 for _ in layer)
        if read != declared:
            return f"layer '{layer.GetName()}' has {read} of its {declared} features"
    return None


def not_written(final: str, reason: str) -> str:
    """The message for an output that did not reach the disk: that the disk is full when it
    (nearly) is, else the reason; always naming the file asked for, and that nothing changed."""
    final = final_name(final)  # a model written inside a run's staged outputs
    if disk_full(final):
        return (f"The disk is full: '{final}' could not be written. Free some space on it or "
                "choose another folder; no file was changed.")
    return (f"'{final}' was not written correctly ({reason}). Check the disk and the folder; "
            "no file was changed.")


def disk_full(path: str) -> bool:
    """Whether the disk that holds ``path`` (or its nearest existing folder) has almost no free
    space left for this user."""
    folder = os.path.dirname(os.path.abspath(path))
    while folder and not os.path.isdir(folder) and os.path.dirname(folder) != folder:
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def full_disk_error(error: BaseException) -> bool:
    """Whether an exception is the OS saying there is no room (full disk, quota, size limit)."""
    return isinstance(error, OSError) and error.errno in FULL_DISK_ERRNOS
