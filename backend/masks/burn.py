"""Training masks: labelled vector layers burnt onto an image's exact pixel grid.

The mask has the image's CRS, geotransform and size; 0 means "no label" (and is nodata), classes
are 1..N, and the class map travels inside the file. Rasterising is GDAL's work; Python only
orders the shapes (so that the chosen overlap rule holds) and walks the grid block by block.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..core.class_map import NO_LABEL, ClassMap
from ..core.errors import Cancelled, UserError
from ..core.input_warnings import FEW_PIXELS
from ..core.feature_ids import METADATA_KEY as FEATURE_IDS_KEY
from ..core.feature_ids import check_sidecar_free, sidecar_path, write_feature_ids
from ..core.progress import ConsoleProgress, Progress, SubProgress
from ..core.raster_io import (GTIFF_OPTIONS, band_nodata, invalid_pixels, open_raster,
                              remove_with_sidecars)
from ..core.staging import OutputSet
from ..core.grid import Grid
from .features import FeatureStats, Shape, VectorInput, read_shapes

OVERLAP_SMALLEST = "smallest"
OVERLAP_LAST = "last"
OVERLAP_UNLABELLED = "unlabelled"
OVERLAP_RULES = (OVERLAP_SMALLEST, OVERLAP_LAST, OVERLAP_UNLABELLED)

STRIP_ROWS = 256
"""Rows of the grid checked for image nodata at a time (memory stays bounded)."""
IN_MEMORY_BYTES = 1 << 28
"""Scratch rasters up to this many bytes (256 MB) are burnt in memory; larger ones in a file."""


@dataclass
class MaskResult:
    """What a mask run produced."""

    path: str
    class_map: ClassMap
    pixels_per_class: dict[int, int]
    labelled_pixels: int
    stats: FeatureStats


def build_mask(image_path: str, vectors: list[VectorInput], output_path: str, *,
               class_field: str | None = None, class_name_field: str | None = None,
               line_width: float = 0.0, all_touched: bool = False,
               overlap: str = OVERLAP_SMALLEST, class_map: ClassMap | None = None,
               class_map_json: str | None = None, advise_few_pixels: bool = True,
               progress: Progress | None = None) -> MaskResult:
    """Builds a mask GeoTIFF on the image's grid from labelled vector layers.

    Args:
        image_path: the image whose grid (CRS, transform, size) the mask takes.
        vectors: the label layers.
        output_path: the mask GeoTIFF to write.
        class_field: the field holding class codes; None: each layer is one class named after it.
        class_name_field: optional field with a display name per class code.
        line_width: ground width in metres given to lines and points.
        all_touched: burn every pixel a shape touches, not only those whose centre it covers.
        overlap: which class wins where shapes of different classes overlap: the smaller shape,
            the last drawn, or none (the pixel stays unlabelled).
        class_map: an existing class map whose ids and colours are kept.
        class_map_json: where to also write the class map as JSON (optional).
        advise_few_pixels: warn about classes with too few pixels to train on (off when the
            mask is a reference for assessment, not training data).
        progress: where progress, messages and cancel come from.
    """
    progress = progress or ConsoleProgress(quiet=True)
    if overlap not in OVERLAP_RULES:
        raise UserError(f"Unknown overlap rule '{overlap}'; use one of {', '.join(OVERLAP_RULES)}.")
    if line_width < 0:
        raise UserError("The line width cannot be negative.")
    check_sidecar_free(output_path)
    image = open_raster(image_path)
    grid = Grid.from_dataset(image, image_path)

    shapes, names, stats = read_shapes(vectors, grid, class_field, class_name_field, line_width,
                                       SubProgress(progress, 0.0, 0.3))
    for line in stats.describe():
        progress.info(line)
    for line in stats.warnings:
        progress.warn(line)
    if not shapes:
        raise UserError(stats.why_none_usable(class_field))
    classes = ClassMap.from_codes(stats.codes.keys(), names, existing=class_map)
    ids = {code: classes.id_for_code(code) for code in stats.codes}
    missing = [code for code, class_id in ids.items() if class_id is None]
    if class_map is not None and missing:  # matched by name in the existing map
        for code in missing:
            match = classes.by_name(str(names.get(code, code)))
            ids[code] = match.id if match else None

    burnt, drawn = _burn(shapes, ids, grid, all_touched, overlap, output_path,
                         SubProgress(progress, 0.3, 0.55))
    features = _scratch(grid, output_path, len(burnt), gdal_type="UInt32")
    try:
        # the number of the feature each pixel was burnt from, in the same drawing order, so
        # training can hold out whole features (backend/feature_ids.py)
        _rasterize(features, drawn, {s.order: s.order + 1 for s in drawn}, grid, all_touched,
                   key=lambda s: s.order)
        ids_path = sidecar_path(output_path)
        burnt[0].SetMetadataItem(FEATURE_IDS_KEY, os.path.basename(ids_path))
        # the mask, its feature ids and the JSON class map are one unit: each is read back
        # whole (a full disk cuts files short silently) before any is moved into place
        with OutputSet().writing() as outputs:
            counts = _write_mask(burnt, image, grid, outputs.temporary(output_path), classes,
                                 SubProgress(progress, 0.6, 0.95))
            write_feature_ids(features, burnt[0], outputs.temporary(ids_path))
            if class_map_json:
                classes.write_json(outputs.temporary(class_map_json))
            outputs.commit()
    finally:
        for dataset in burnt + [features]:
            _discard(dataset)

    per_class = {c.id: int(counts[c.id]) for c in classes.classes}
    for c in classes.classes:
        progress.info(f"class {c.id} '{c.name}': {per_class[c.id]} pixels")
        if advise_few_pixels and per_class[c.id] < FEW_PIXELS:
            progress.warn(f"class '{c.name}' has only {per_class[c.id]} labelled pixels; a "
                          f"network learns little from under {FEW_PIXELS}. Digitise more of it.")
    return MaskResult(output_path, classes, per_class, int(sum(per_class.values())), stats)


def _burn(shapes: list[Shape], ids: dict[Any, int | None], grid: Grid, all_touched: bool,
          overlap: str, output_path: str, progress: Progress) -> tuple[list[Any], list[Shape]]:
    """Rasterises the shapes; returns one dataset, or two for the "unlabelled" rule, and the
    order the first was drawn in.

    For "unlabelled", shapes are drawn in ascending and in descending class order: a pixel where
    the two disagree is covered by more than one class.
    """
    if overlap == OVERLAP_SMALLEST:
        orders = [sorted(shapes, key=lambda s: (-s.area, s.order))]
    elif overlap == OVERLAP_LAST:
        orders = [shapes]
    else:
        orders = [sorted(shapes, key=lambda s: (ids[s.code], s.order)),
                  sorted(shapes, key=lambda s: (-ids[s.code], s.order))]
    results = []
    for number, ordered in enumerate(orders):
        if progress.cancelled():
            for dataset in results:
                _discard(dataset)
            raise Cancelled()
        dataset = _scratch(grid, output_path, number)
        _rasterize(dataset, ordered, ids, grid, all_touched)
        results.append(dataset)
        progress.set_fraction((number + 1) / len(orders))
    return results, orders[0]


def _rasterize(dataset: Any, shapes: list[Shape], ids: dict[Any, int | None], grid: Grid,
               all_touched: bool, key: Callable[[Shape], Any] = lambda s: s.code) -> None:
    """Burns ``ids[key(shape)]`` of each shape, in the given order (the last drawn wins)."""
    from osgeo import gdal, ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromWkt(grid.crs_wkt)
    source = ogr.GetDriverByName("Memory").CreateDataSource("")
    layer = source.CreateLayer("shapes", srs, ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn("burn", ogr.OFTInteger))
    definition = layer.GetLayerDefn()
    for shape in shapes:
        feature = ogr.Feature(definition)
        feature.SetFieldInteger64(0, ids[key(shape)])
        feature.SetGeometry(shape.geometry)
        layer.CreateFeature(feature)
    options = ["ATTRIBUTE=burn"] + (["ALL_TOUCHED=TRUE"] if all_touched else [])
    if gdal.RasterizeLayer(dataset, [1], layer, options=options) != 0:
        raise UserError(f"GDAL could not rasterise the features: {gdal.GetLastErrorMsg()}")


def _write_mask(burnt: list[Any], image: Any, grid: Grid, path: str, classes: ClassMap,
                progress: Progress) -> np.ndarray:
    """Clears overlap conflicts and image nodata in the burnt raster, then writes the GeoTIFF.

    Returns:
        The number of pixels per value 0..255.
    """
    from osgeo import gdal

    labels_band = burnt[0].GetRasterBand(1)
    nodata = band_nodata(image)
    check_image = any(v is not None for v in nodata) or any(
        image.GetRasterBand(i + 1).DataType in (gdal.GDT_Float32, gdal.GDT_Float64)
        for i in range(image.RasterCount))
    if check_image or len(burnt) > 1:
        strips = range(0, grid.height, STRIP_ROWS)
        local = threading.local()  # a GDAL dataset handle must not be shared between threads

        def clean(y: int) -> None:
            if not hasattr(local, "image"):
                local.image = gdal.Open(image.GetDescription())
            labels = labels_band.ReadAsArray(0, y, grid.width, min(STRIP_ROWS, grid.height - y))
            if labels.any() and _clear_strip(labels, burnt[1:], local.image, nodata, check_image,
                                             y):
                labels_band.WriteArray(labels, 0, y)

        # GDAL and numpy release the GIL: two strips at a time use both cores. Strips of the
        # in-memory label raster are independent; a scratch file is worked on by one thread.
        in_memory = burnt[0].GetDriver().ShortName == "MEM"
        with ThreadPoolExecutor(2 if in_memory else 1) as pool:
            for number, done in enumerate(pool.map(clean, strips)):
                if progress.cancelled():
                    raise Cancelled()
                progress.set_fraction(0.5 * (number + 1) / len(strips))
    counts = np.array(labels_band.GetHistogram(-0.5, 255.5, 256, include_out_of_range=0,
                                               approx_ok=0), dtype=np.int64)
    if counts[1:].sum() == 0:
        raise UserError("The features overlap the image but label no pixel: they are smaller "
                        "than a pixel or lie where the image has no data. Try ALL_TOUCHED.")
    labels_band.SetNoDataValue(NO_LABEL)
    classes.write_to_band(burnt[0])

    def report(done: float, _message: str, _data: Any) -> int:
        progress.set_fraction(0.5 + 0.5 * done)
        return 0 if progress.cancelled() else 1

    output = gdal.GetDriverByName("GTiff").CreateCopy(path, burnt[0], options=GTIFF_OPTIONS,
                                                      callback=report)
    if output is None:
        if progress.cancelled():
            raise Cancelled()
        raise UserError(f"Cannot write the mask {path}: {gdal.GetLastErrorMsg()}")
    output.GetRasterBand(1).SetCategoryNames(burnt[0].GetRasterBand(1).GetCategoryNames())
    output = None
    return counts


def _clear_strip(labels: np.ndarray, others: list[Any], image: Any, nodata: list,
                 check_image: bool, y: int) -> bool:
    """Sets to "no label" the pixels of a strip that another drawing order labels differently
    (overlapping classes) or where the image has no data; returns whether anything changed."""
    rows, width = labels.shape
    clear = None
    if others:
        clear = labels != others[0].GetRasterBand(1).ReadAsArray(0, y, width, rows)
    if check_image:
        pixels = image.ReadAsArray(0, y, width, rows).reshape((-1, rows, width))
        invalid = invalid_pixels(pixels, nodata)
        clear = invalid if clear is None else clear | invalid
    if clear is None or not clear.any():
        return False
    labels[clear] = NO_LABEL
    return True


def _scratch(grid: Grid, output_path: str, number: int, gdal_type: str = "Byte") -> Any:
    """A zeroed raster on the grid: in memory when small, a scratch file when large."""
    from osgeo import gdal

    data_type = gdal.GetDataTypeByName(gdal_type)
    size = gdal.GetDataTypeSize(data_type) // 8
    if grid.width * grid.height * size <= IN_MEMORY_BYTES:
        dataset = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, data_type)
    else:
        folder = os.path.dirname(os.path.abspath(output_path))
        name = os.path.join(folder, f".{os.path.basename(output_path)}.burn{number}.tif")
        dataset = gdal.GetDriverByName("GTiff").Create(
            name, grid.width, grid.height, 1, data_type,
            ["TILED=YES", "SPARSE_OK=TRUE", "BIGTIFF=YES"])
    dataset.SetGeoTransform(grid.geotransform)
    dataset.SetProjection(grid.crs_wkt)
    return dataset


def _discard(dataset: Any) -> None:
    files = dataset.GetDescription()
    dataset = None
    if files and os.path.exists(files):
        remove_with_sidecars(files)
