"""Per-band normalisation statistics, computed once from the valid pixels of the training images.

The statistics travel in the model file, so classification normalises exactly as training did.
Invalid pixels (a band's nodata or NaN, in any band) are left out of the statistics, and after
normalising they are set to 0 so that no nodata value ever reaches the network as a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import Cancelled, UserError
from .progress import ConsoleProgress, Progress
from .raster_io import band_nodata, invalid_pixels, open_raster, windows

MIN_STD = 1e-6
"""A band with a smaller spread is constant; its std is taken as 1 so it normalises to 0."""


def inverse_std(std: list[float]) -> np.ndarray:
    """1 / std per band as float32 (1 where a band's std is not positive)."""
    std = np.asarray(std, dtype=np.float32)
    return (1.0 / np.where(std > 0, std, 1.0)).astype(np.float32)


def normalise_values(values, mean: list[float], scale: np.ndarray):
    """The one normalisation rule, ``(values - mean) * scale`` with ``scale`` from
    :func:`inverse_std`: for NumPy arrays in training and for Keras tensors inside the network
    call of classification alike, so both normalise exactly the same way."""
    return (values - np.asarray(mean, dtype=np.float32)) * scale


@dataclass
class BandStats:
    """Mean and standard deviation per selected band (channel order)."""

    mean: list[float]
    std: list[float]
    pixels: int

    def normalise(self, block: np.ndarray, invalid: np.ndarray) -> np.ndarray:
        """Normalises a (rows, cols, channels) block to float32 and zeroes its invalid pixels.

        Args:
            block: raw pixel values, channels last, in the order of ``bands``.
            invalid: (rows, cols) True where any band has no data.
        """
        out = normalise_values(block.astype(np.float32, copy=False), self.mean,
                               inverse_std(self.std))
        out[invalid] = 0.0
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return out


def compute_band_stats(image_paths: list[str], bands: list[int],
                       progress: Progress | None = None, block: int = 1024) -> BandStats:
    """Streams the images block by block and accumulates mean and std of their valid pixels.

    A pixel counts only where every selected band holds data, the same rule that decides which
    pixels train. Sums are kept in float64, so large scenes do not lose precision.

    Args:
        image_paths: the training images (same band count).
        bands: 1-based band numbers to use.
        progress: reports the fraction done and cancel.
        block: edge of the square blocks read at a time.
    """
    progress = progress or ConsoleProgress(quiet=True)
    count = 0
    total = np.zeros(len(bands), dtype=np.float64)
    squares = np.zeros(len(bands), dtype=np.float64)
    blocks = sum(math.ceil(d.RasterXSize / block) * math.ceil(d.RasterYSize / block)
                 for d in map(open_raster, image_paths))
    done = 0
    for path in image_paths:
        dataset = open_raster(path)
        nodata = [band_nodata(dataset)[b - 1] for b in bands]
        for x, y, w, h in windows(dataset.RasterXSize, dataset.RasterYSize, block):
            if progress.cancelled():
                raise Cancelled()
            pixels = read_bands(dataset, bands, x, y, w, h)
            valid = ~invalid_pixels(pixels, nodata)
            values = pixels[:, valid].astype(np.float64)
            count += values.shape[1]
            total += values.sum(axis=1)
            squares += (values ** 2).sum(axis=1)
            done += 1
            progress.set_fraction(done / blocks)
    if count == 0:
        raise UserError("The training images hold no valid pixel in the chosen bands: every "
                        "pixel is nodata or NaN.")
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0.0))
    std = np.where(std < MIN_STD, 1.0, std)
    return BandStats([float(m) for m in mean], [float(s) for s in std], int(count))


def read_bands(dataset, bands: list[int], x: int, y: int, w: int, h: int) -> np.ndarray:
    """Reads the selected bands of a window as a (bands, h, w) array."""
    return np.stack([dataset.GetRasterBand(b).ReadAsArray(x, y, w, h) for b in bands])
