"""Which digitised feature each labelled mask pixel came from: what validation is grouped by.

Pixels of one polygon are alike, so a validation split that puts some of a polygon's pixels in
training and the rest in validation measures memory, not the map. Training therefore holds out
*whole features*, and needs to know which feature a pixel belongs to.

``buildmasks`` writes that beside the mask: ``<mask stem>_features.tif``, a UInt32 raster on the
same grid, 0 where the mask has no label and otherwise the 1-based number of the feature (in the
order the features were read) whose class the pixel got. The mask's metadata item
:data:`METADATA_KEY` names that file, so training finds it. A mask made by another tool, or one
moved without its sidecar, falls back to connected regions of each class as the groups.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

import numpy as np

from .beside import file_beside
from .class_map import NO_LABEL
from .errors import UserError
from .raster_io import GTIFF_OPTIONS, open_raster

SUFFIX = "_features.tif"
METADATA_KEY = "LANDCOVERUNET_FEATURE_IDS"
"""Mask metadata item holding the feature-id raster's file name (beside the mask)."""
BAND_DESCRIPTION = "feature id (0 = no label)"
"""The feature-id raster's band description: how an earlier sidecar is known for one."""


def sidecar_path(mask_path: str) -> str:
    """Where the feature ids of a mask are written: ``<mask stem>_features.tif`` beside it."""
    stem, _ = os.path.splitext(os.path.abspath(mask_path))
    return stem + SUFFIX


def check_sidecar_free(mask_path: str) -> None:
    """Refuses to write a mask whose feature-id sidecar would replace a file that is not an
    earlier feature-id file (a user's own ``<mask stem>_features.tif``).

    Raises:
        UserError: naming the file and what to do.
    """
    path = sidecar_path(mask_path)
    if not os.path.lexists(path) or _is_feature_ids(path):
        return
    raise UserError(f"'{path}' exists and is not a feature-id file of Build training masks, "
                    f"which writes the feature ids of the mask '{os.path.abspath(mask_path)}' "
                    "there (training holds out whole features with them). Move that file, or "
                    "give the mask another name.")


def _is_feature_ids(path: str) -> bool:
    """Whether a file is a feature-id raster written by :func:`write_feature_ids`."""
    from osgeo import gdal

    if not os.path.isfile(path):
        return False
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        dataset = gdal.Open(path)
        return (dataset is not None and dataset.RasterCount == 1
                and dataset.GetRasterBand(1).DataType == gdal.GDT_UInt32
                and dataset.GetRasterBand(1).GetDescription() == BAND_DESCRIPTION)
    finally:
        gdal.PopErrorHandler()


def write_feature_ids(ids: Any, labels: Any, path: str, strip_rows: int = 256) -> None:
    """Writes the feature ids of the labelled pixels (0 where ``labels`` has no label).

    Args:
        ids: a GDAL dataset of burnt feature numbers (same grid as the mask).
        labels: the mask's GDAL dataset (its band 1, after overlap and nodata clean-up).
        path: the file to write: a temporary name, which the caller moves into place with the
            mask (``staging.OutputSet``), so that the two never come from different runs.
    """
    from osgeo import gdal

    width, height = labels.RasterXSize, labels.RasterYSize
    out = gdal.GetDriverByName("GTiff").Create(path, width, height, 1, gdal.GDT_UInt32,
                                               GTIFF_OPTIONS)
    if out is None:
        raise UserError(f"Cannot create the feature-id file '{path}': {gdal.GetLastErrorMsg()}")
    out.SetGeoTransform(labels.GetGeoTransform())
    out.SetProjection(labels.GetProjection())
    band = out.GetRasterBand(1)
    band.SetNoDataValue(0)
    band.SetDescription(BAND_DESCRIPTION)
    for y in range(0, height, strip_rows):
        rows = min(strip_rows, height - y)
        values = ids.GetRasterBand(1).ReadAsArray(0, y, width, rows).astype(np.uint32)
        values[labels.GetRasterBand(1).ReadAsArray(0, y, width, rows) == NO_LABEL] = 0
        band.WriteArray(values, 0, y)
    band = out = None


def feature_id_reader(mask_path: str, labels: np.ndarray | None = None
                      ) -> tuple[Callable[[int, int, int, int], np.ndarray], str]:
    """A function reading feature ids of a window ``(x, y, w, h)``, and how they were found.

    Args:
        mask_path: the mask.
        labels: the mask's labels (full scene) when already read; needed for the fallback.

    Returns:
        The reader, and a sentence for the log: the sidecar's name, or that connected regions of
        each class stand in for the features.
    """
    mask = open_raster(mask_path)
    name = mask.GetMetadataItem(METADATA_KEY)
    path = file_beside(mask_path, name, "its feature-id file") if name else ""
    if path and os.path.exists(path):
        ids = open_raster(path)
        if (ids.RasterXSize, ids.RasterYSize) == (mask.RasterXSize, mask.RasterYSize):
            local = threading.local()  # a GDAL handle per thread

            def read(x: int, y: int, w: int, h: int) -> np.ndarray:
                if not hasattr(local, "band"):
                    local.dataset = open_raster(path)
                    local.band = local.dataset.GetRasterBand(1)
                return local.band.ReadAsArray(x, y, w, h).astype(np.int64)
            return read, f"features from {os.path.basename(path)}"
    if labels is None:
        labels = mask.GetRasterBand(1).ReadAsArray()
    regions = connected_regions(labels)
    reason = (f"its feature-id file {name} is missing" if name else
              "it has no feature ids (not made by Build training masks)")
    return (lambda x, y, w, h: regions[y:y + h, x:x + w],
            f"the mask's connected regions of each class stand in for the digitised features "
            f"({reason})")


def connected_regions(labels: np.ndarray) -> np.ndarray:
    """Numbers the 8-connected regions of each class value (0 stays 0), 1-based, as int64."""
    from scipy import ndimage

    regions = np.zeros(labels.shape, np.int64)
    start = 0
    for value in np.unique(labels):
        if value == NO_LABEL:
            continue
        numbered, count = ndimage.label(labels == value, structure=np.ones((3, 3), bool))
        regions[numbered > 0] = numbered[numbered > 0] + start
        start += count
    return regions
