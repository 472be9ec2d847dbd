"""The classes of any class raster: this plugin's class map, or what other tools leave behind.

Maps made by other tools (SCP, dzetsaka, a random forest in Python, an older map) must be
assessable too, so the classes are looked for in this order, and the first source found wins:

1. the plugin's own class map (``LANDCOVERUNET_CLASS_MAP`` metadata, see ``core/class_map.py``);
2. GDAL category names of band 1, or else its raster attribute table (a name column);
3. a QGIS style file beside the raster (same base name, ``.qml``): the labels of a paletted or
   unique-values renderer, or of a discrete colour-ramp shader;
4. plain integer codes: the distinct values of the raster (0, nodata and NaN are no class).

Every class keeps the pixel value it has in the raster (``values``), which for foreign rasters
is also its ``code``: codes are matched to a numeric reference field or a reference raster's
values directly. Colours come from the file's colour table or style where it has them.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..core.class_map import NO_LABEL, ClassMap
from ..core.errors import Cancelled, UserError
from ..core.progress import Progress
from ..core.raster_io import windows

SOURCE_PLUGIN = "the plugin's class map"
SOURCE_CATEGORIES = "GDAL category names"
SOURCE_RAT = "the raster attribute table"
SOURCE_STYLE = "the QGIS style file (.qml)"
SOURCE_CODES = "plain integer codes"

MAX_DISTINCT = 254
"""More distinct values than a class raster can hold: the raster is not a class raster."""
BLOCK = 1024


@dataclass(frozen=True)
class RasterClasses:
    """The classes of a class raster and where they came from.

    Attributes:
        classes: the classes (ids 1..254, used as matrix labels; for foreign rasters the id is the
            pixel value where that value fits 1..254).
        values: the pixel value of each class, in ``classes.classes`` order.
        source: one of the ``SOURCE_*`` texts, for the log and the report.
    """

    classes: ClassMap
    values: np.ndarray
    source: str

    def index_of(self, block: np.ndarray) -> np.ndarray:
        """The class index (in ``classes.classes`` order) of each pixel; -1 for no class."""
        order = np.argsort(self.values)
        return lookup(block, self.values[order], order.astype(np.int64))

    @property
    def named(self) -> bool:
        """Whether the classes have names of their own (not only codes)."""
        return self.source != SOURCE_CODES


def read_raster_classes(path: str, dataset: Any, progress: Progress) -> RasterClasses:
    """Finds the classes of band 1 of an open class raster (see the module's order)."""
    own = ClassMap.read_from_dataset(dataset)
    if own is not None and len(own):
        return RasterClasses(own, np.array(own.ids, dtype=np.float64), SOURCE_PLUGIN)
    band = dataset.GetRasterBand(1)
    nodata = band.GetNoDataValue()
    # GDAL 3.6: category names kept in the .aux.xml are only loaded once another band property
    # (such as the colour table) has been read, so read the colour table first.
    colours = _colour_table(band)
    for source, found in ((SOURCE_CATEGORIES, _category_names(band)),
                          (SOURCE_RAT, _attribute_table_names(band)),
                          (SOURCE_STYLE, _style_labels(path))):
        found = {value: name for value, name in found.items() if not _is_nodata(value, nodata)}
        if found:
            style_colours = _style_colours(path) if source == SOURCE_STYLE else {}
            return _build(found, {**colours, **style_colours}, source)
    codes = distinct_values(dataset, nodata, path, progress)
    if not codes.size:
        raise UserError(f"The raster '{path}' holds no class values (only 0, nodata or NaN).")
    return _build({int(v): str(int(v)) for v in codes}, colours, SOURCE_CODES)


def describe(classes: RasterClasses) -> list[str]:
    """One 'value: name' line per class, for messages that list a raster's classes."""
    return [f"{_value_text(v)}: {c.name}" for c, v in zip(classes.classes.classes,
                                                           classes.values)]


def _build(names: dict[int, str], colours: dict[int, str], source: str) -> RasterClasses:
    """A class map keeping each pixel value as code (and as id where it fits 1..254)."""
    values = sorted(names)
    classes = ClassMap.from_codes(values, names)
    coloured = tuple(replace(c, color=colours.get(int(c.code), c.color))
                     for c in classes.classes)
    classes = ClassMap(coloured)
    return RasterClasses(classes, np.array([float(c.code) for c in classes.classes]), source)


def _is_nodata(value: int, nodata: float | None) -> bool:
    return nodata is not None and not math.isnan(nodata) and value == nodata


def _value_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# ----- GDAL band properties ---------------------------------------------------------------------
def _colour_table(band: Any) -> dict[int, str]:
    table = band.GetColorTable()
    if table is None:
        return {}
    colours = {}
    for value in range(table.GetCount()):
        r, g, b, *alpha = table.GetColorEntry(value)
        if not alpha or alpha[0] > 0:
            colours[value] = f"#{r:02x}{g:02x}{b:02x}"
    return colours


def _category_names(band: Any) -> dict[int, str]:
    names = band.GetCategoryNames() or []
    return {value: name.strip() for value, name in enumerate(names) if name and name.strip()}


def _attribute_table_names(band: Any) -> dict[int, str]:
    """Names from the raster attribute table: a name column, and a value column or row index."""
    from osgeo import gdal

    table = band.GetDefaultRAT()
    if table is None or table.GetRowCount() == 0:
        return {}
    columns = range(table.GetColumnCount())
    usage = {i: table.GetUsageOfCol(i) for i in columns}
    lowered = {i: table.GetNameOfCol(i).lower() for i in columns}
    name_col = next((i for i in columns if usage[i] == gdal.GFU_Name), None)
    if name_col is None:
        name_col = next((i for i in columns if table.GetTypeOfCol(i) == gdal.GFT_String
                         and lowered[i] in ("class", "class_name", "classname", "name", "label")),
                        None)
    if name_col is None:
        return {}
    value_col = next((i for i in columns if usage[i] in (gdal.GFU_MinMax, gdal.GFU_Min)), None)
    if value_col is None:
        value_col = next((i for i in columns if lowered[i] == "value"), None)
    names = {}
    for row in range(table.GetRowCount()):
        name = table.GetValueAsString(row, name_col).strip()
        value = table.GetValueAsInt(row, value_col) if value_col is not None else row
        if name:
            names[value] = name
    return names


# ----- QGIS style file ----------------------------------------------------------------------------
def _style_entries(path: str) -> list[tuple[int, str, str]]:
    """(value, label, colour) of a .qml's paletted or discrete colour-ramp entries."""
    style = os.path.splitext(path)[0] + ".qml"
    if not os.path.isfile(style):
        return []
    try:
        root = ElementTree.parse(style).getroot()
    except (ElementTree.ParseError, OSError):
        return []
    entries = []
    for element in [*root.iter("paletteEntry"), *root.iter("item")]:
        try:
            value = float(element.get("value", ""))
        except ValueError:
            continue
        if not value.is_integer():
            continue
        label = (element.get("label") or "").strip() or _value_text(value)
        entries.append((int(value), label, (element.get("color") or "").lower()))
    return entries


def _style_labels(path: str) -> dict[int, str]:
    return {value: label for value, label, _ in _style_entries(path)}


def _style_colours(path: str) -> dict[int, str]:
    return {value: colour[:7] for value, _, colour in _style_entries(path)
            if len(colour) >= 7 and colour.startswith("#")}


# ----- plain codes ------------------------------------------------------------------------------
def distinct_values(dataset: Any, nodata: float | None, path: str,
                    progress: Progress) -> np.ndarray:
    """The class values of a raster without class names (0, nodata and NaN are no class)."""
    band = dataset.GetRasterBand(1)
    found: set[float] = set()
    blocks = list(windows(dataset.RasterXSize, dataset.RasterYSize, BLOCK))
    for number, (x, y, w, h) in enumerate(blocks):
        if progress.cancelled():
            raise Cancelled()
        block = band.ReadAsArray(x, y, w, h)
        found.update(np.unique(block[labelled(block, nodata)]).tolist())
        if len(found) > MAX_DISTINCT:
            break
        progress.set_fraction((number + 1) / len(blocks))
    values = np.array(sorted(found), dtype=np.float64)
    if values.size and not np.all(values == np.round(values)):
        raise UserError(f"The raster '{path}' holds fractional values and no class names: it is "
                        "not a class raster. Use a raster of integer class codes.")
    if values.size > MAX_DISTINCT:
        raise UserError(f"The raster '{path}' holds more than {MAX_DISTINCT} distinct values: "
                        "it does not look like a class raster.")
    return values


def labelled(block: np.ndarray, nodata: float | None) -> np.ndarray:
    """Where a block holds a class value (not 0, nodata or NaN)."""
    keep = block != NO_LABEL
    if np.issubdtype(block.dtype, np.floating):
        keep &= np.isfinite(block)
    if nodata is not None and not math.isnan(nodata):
        keep &= block != nodata
    return keep


def lookup(values: np.ndarray, keys: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Maps pixel values through sorted ``keys`` to ``index``; -1 where a value is not a key."""
    values = np.asarray(values)
    if keys.size == 0:
        return np.full(values.shape, -1, dtype=np.int64)
    position = np.clip(np.searchsorted(keys, values), 0, keys.size - 1)
    found = keys[position] == values
    return np.where(found, index[position], -1)
