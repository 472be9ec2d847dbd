"""Warnings about inputs that run but give wrong results without a word.

Each function looks at a cheap summary of a raster (a decimated read, GDAL's histogram) and
returns sentences for the log (and the training report), never an error: the data may be right,
but the analyst should know. Training and classification share them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .raster_io import band_nodata, open_raster

SAMPLE_EDGE = 512
"""Rasters are looked at decimated to at most this many pixels a side (nearest neighbour)."""
FILL_SHARE = 0.01
"""A block at the data type's maximum in every band, on more than this share of the image,
is most likely fill that should have been declared nodata."""
RANGE_FACTOR = 4.0
"""Training images whose typical values differ by more than this factor are probably scaled
differently (digital numbers vs reflectance, 8 vs 16 bits)."""
FEW_PIXELS = 100
"""Classes with fewer labelled pixels than this get a warning, from 'Build training masks' and
from 'Train U-Net' alike: too few to learn from."""


def decimated(dataset: Any, bands: list[int]) -> np.ndarray:
    """The chosen bands, (bands, rows, cols), read at most :data:`SAMPLE_EDGE` a side."""
    scale = max(dataset.RasterXSize, dataset.RasterYSize) / SAMPLE_EDGE
    width = max(1, int(dataset.RasterXSize / max(scale, 1.0)))
    height = max(1, int(dataset.RasterYSize / max(scale, 1.0)))
    return np.stack([dataset.GetRasterBand(b).ReadAsArray(buf_xsize=width, buf_ysize=height)
                     for b in bands])


def fill_warning(path: str, bands: list[int], name: str = "") -> str | None:
    """A warning when a large part of the image is the data type's maximum in every chosen band
    and no nodata is declared for them (255 fill in a uint8 scene is trained and classified as
    land cover otherwise)."""
    dataset = open_raster(path)
    nodata = band_nodata(dataset)
    if any(nodata[b - 1] is not None for b in bands):
        return None
    pixels = decimated(dataset, bands)
    if not np.issubdtype(pixels.dtype, np.integer):
        return None
    top = np.iinfo(pixels.dtype).max
    share = float(np.all(pixels == top, axis=0).mean())
    if share <= FILL_SHARE:
        return None
    return (f"{share:.0%} of '{name or path}' is {top} in every band and the image declares no "
            f"nodata: if that is fill (no data), set its nodata to {top} (Layer Properties -> "
            f"Transparency, or gdal_edit.py -a_nodata {top}), else it is "
            + "trained and classified as land cover.")


def mixed_images_warning(paths: list[str], bands: list[int]) -> str | None:
    """A warning when training images differ in data type or in their typical values."""
    if len(paths) < 2:
        return None
    types, medians = [], []
    for path in paths:
        dataset = open_raster(path)
        pixels = decimated(dataset, bands)
        types.append(pixels.dtype.name)
        nodata = band_nodata(dataset)
        valid = np.ones(pixels.shape[1:], bool)
        for values, missing in zip(pixels, (nodata[b - 1] for b in bands)):
            if missing is not None:
                valid &= values != missing
        medians.append(float(np.median(pixels[:, valid])) if valid.any() else 0.0)
    if len(set(types)) > 1:
        listed = ", ".join(f"'{p}' {t}" for p, t in zip(paths, types))
        return (f"The training images hold different data types ({listed}): check that they "
                "are scaled alike (e.g. all reflectance, or all 8-bit), else the network "
                "learns the scaling instead of the land cover.")
    positive = [m for m in medians if m > 0]
    if positive and max(positive) > RANGE_FACTOR * min(positive):
        listed = ", ".join(f"'{p}' {m:g}" for p, m in zip(paths, medians))
        return (f"The training images have very different typical values (median {listed}): "
                "check that they are scaled alike before training one model on them.")
    return None


def unknown_ids_warning(mask_path: str, known: list[int]) -> str | None:
    """A warning when a mask holds class ids its class map does not name: those pixels are
    left out of training."""
    dataset = open_raster(mask_path)
    band = dataset.GetRasterBand(1)
    if band.DataType != 1:  # GDT_Byte: masks from 'Build training masks'
        return None
    counts = band.GetHistogram(-0.5, 255.5, 256, False, False)
    unknown = {i: int(c) for i, c in enumerate(counts) if c and i and i not in set(known)}
    if not unknown:
        return None
    return (f"The mask '{mask_path}' has {sum(unknown.values())} pixels with class ids "
            f"{', '.join(map(str, sorted(unknown)))} that its class map does not name: they "
            "are left out of training. Build the mask again with 'Build training masks'.")
