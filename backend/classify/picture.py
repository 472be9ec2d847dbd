"""A picture of a class raster in its palette, with a legend: for reports, the demo and README."""
from __future__ import annotations

import numpy as np

from ..core.class_map import ClassMap
from ..core.errors import UserError
from ..core.raster_io import open_raster

MAX_SIDE = 1600
"""Larger rasters are read decimated (nearest) to about this many pixels on the long side."""


def render_class_map(raster_path: str, png_path: str, title: str | None = None,
                     class_map: ClassMap | None = None) -> str:
    """Draws a class raster with its class colours and a legend of class names into a PNG.

    Args:
        raster_path: a uint8 class raster (mask or classified map) carrying its class map.
        png_path: where to write the picture.
        title: optional title above the map.
        class_map: the classes, when the raster carries none.

    Returns:
        ``png_path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    dataset = open_raster(raster_path)
    class_map = class_map or ClassMap.read_from_dataset(dataset)
    if class_map is None:
        raise UserError(f"{raster_path} carries no class map to draw it with.")
    width, height = dataset.RasterXSize, dataset.RasterYSize
    scale = max(1.0, max(width, height) / MAX_SIDE)
    values = dataset.GetRasterBand(1).ReadAsArray(
        buf_xsize=int(width / scale), buf_ysize=int(height / scale))

    colours = [(1, 1, 1, 0)] * 256
    for c in class_map.classes:
        colours[c.id] = matplotlib.colors.to_rgba(c.color)
    figure, axes = pyplot.subplots(figsize=(8, 8 * height / width), dpi=110)
    axes.imshow(values, cmap=ListedColormap(colours), vmin=0, vmax=255, interpolation="nearest")
    axes.set_axis_off()
    if title:
        axes.set_title(title)
    present = set(np.unique(values).tolist())
    handles = [Patch(facecolor=c.color, edgecolor="#444", label=c.name)
               for c in class_map.classes if c.id in present]
    axes.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                title="Classes")
    figure.savefig(png_path, bbox_inches="tight", pad_inches=0.15)
    pyplot.close(figure)
    return png_path
