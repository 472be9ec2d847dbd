"""Reading labelled features from vector files onto an image's grid, with repairs counted.

Features are reprojected to the image CRS, repaired when invalid, and lines and points are
buffered by half the line width measured on the ground (also when the image CRS is geographic).
Every feature that cannot be used is counted under its reason, so the user can be told.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from ..core.errors import Cancelled, UserError
from ..core.grid import Grid
from ..core.progress import Progress, SubProgress
from .antimeridian import wrap_to_grid
from .class_names import ClassNames


@dataclass
class VectorInput:
    """One vector layer given as labels.

    Attributes:
        path: a file (or data source string) OGR can open.
        layer_name: the layer inside the data source; None for its first layer.
        name: the display name, used as the class name when there is no class field.
        crs_wkt: the layer's CRS as the user set it (QGIS layer CRS); None: the file's own.
    """

    path: str
    layer_name: str | None = None
    name: str | None = None
    crs_wkt: str | None = None


@dataclass
class Shape:
    """A usable feature: its geometry in the image CRS, class code and order of appearance."""

    geometry: Any
    code: Any
    area: float
    order: int


@dataclass
class FeatureStats:
    """How many features were used, and why the others were not."""

    used: int = 0
    repaired: int = 0
    unrepairable: int = 0
    empty: int = 0
    null_class: int = 0
    outside: int = 0
    untransformable: int = 0
    wrapped: int = 0
    codes: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    """Slips among the classes' codes and names (``class_names.py``), for the log's warnings."""

    def describe(self) -> list[str]:
        lines = [f"{self.used} features used"]
        for label, count in (("repaired (invalid geometry made valid)", self.repaired),
                             ("skipped: geometry could not be repaired", self.unrepairable),
                             ("skipped: empty or missing geometry", self.empty),
                             ("skipped: no class value (NULL)", self.null_class),
                             ("skipped: outside the image", self.outside),
                             ("skipped: could not be transformed to the image CRS",
                              self.untransformable),
                             ("moved by 360 degrees across the antimeridian onto the image",
                              self.wrapped)):
            if count:
                lines.append(f"{count} {label}")
        return lines

    def why_none_usable(self, class_field: str | None) -> str:
        """Why no feature could be burnt, in words, with what to do: the features may all lie
        outside the image, but they may as well all lack a class or a geometry, and telling
        those users to check their CRS would send them the wrong way."""
        reasons, advice = [], []
        if self.null_class:
            reasons.append(f"{self.null_class} have no class value (NULL)"
                           + (f" in the field '{class_field}'" if class_field else ""))
            advice.append("fill in the class of each feature, or choose the field that holds "
                          "the classes (CLASS_FIELD)")
        if self.empty or self.unrepairable:
            reasons.append(f"{self.empty + self.unrepairable} have an empty, missing or "
                           "broken geometry")
            advice.append("digitise those features again (or check that the right layer was "
                          "chosen)")
        if self.untransformable:
            reasons.append(f"{self.untransformable} cannot be transformed to the image's CRS")
            advice.append("check each layer's CRS")
        if self.outside:
            reasons.append(f"{self.outside} lie outside it")
            advice.append("check that the layers and the image cover the same place and that "
                          "each layer's CRS is right")
        if not reasons or reasons == [f"{self.outside} lie outside it"]:
            return ("None of the features overlaps the image"
                    + (f" ({self.outside} lie outside it)" if self.outside else "")
                    + ". Check that the layers and the image cover the same place and that "
                    "each layer's CRS is right.")
        todo = "; ".join(advice)
        return (f"None of the features can be burnt into the mask: {'; '.join(reasons)}. "
                + todo[0].upper() + todo[1:] + ".")


def read_shapes(vectors: list[VectorInput], grid: Grid, class_field: str | None,
                class_name_field: str | None, line_width: float,
                progress: Progress) -> tuple[list[Shape], dict[Any, str], FeatureStats]:
    """Reads all features of all layers as shapes on the grid.

    Returns:
        The usable shapes, the class names found per code (from ``class_name_field`` or the layer
        names), and the counts of used and skipped features.
    """
    from osgeo import gdal

    if not vectors:
        raise UserError("No vector layer was given: choose at least one layer of labels.")
    shapes: list[Shape] = []
    names = ClassNames()
    stats = FeatureStats()
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # GEOS explains every invalid ring; we count
    try:
        for number, vector in enumerate(vectors):
            _read_layer(vector, grid, class_field, class_name_field, line_width, shapes, names,
                        stats, SubProgress(progress, number / len(vectors),
                                           (number + 1) / len(vectors)))
    finally:
        gdal.PopErrorHandler()
    stats.warnings = names.warnings()
    return shapes, names.chosen(), stats


def open_layer(vector: VectorInput) -> tuple[Any, Any]:
    """Opens a vector input: (data source, layer); the source must be kept while the layer is used."""
    from osgeo import ogr

    source = ogr.Open(vector.path)
    if source is None:
        raise UserError(f"Cannot open the vector layer '{vector.path}'.")
    layer = source.GetLayerByName(vector.layer_name) if vector.layer_name else source.GetLayer(0)
    if layer is None:
        raise UserError(f"'{vector.path}' has no layer '{vector.layer_name}'.")
    return source, layer


def _field_reader(layer: Any, field: str | None, label: str) -> Callable[[Any], Any]:
    """A fast getter for one field's value (None when NULL), or the layer name as class."""
    if not field:
        return lambda feature: label
    definition = layer.GetLayerDefn()
    index = definition.GetFieldIndex(field)
    if index < 0:
        fields = [definition.GetFieldDefn(i).GetName() for i in range(definition.GetFieldCount())]
        raise UserError(f"The layer '{label}' has no field '{field}'. Its fields are: "
                        f"{', '.join(fields) or '(none)'}.")
    from osgeo import ogr

    kind = definition.GetFieldDefn(index).GetType()
    if kind in (ogr.OFTInteger, ogr.OFTInteger64):
        getter = lambda feature: feature.GetFieldAsInteger64(index)  # noqa: E731
    elif kind == ogr.OFTReal:
        getter = lambda feature: feature.GetFieldAsDouble(index)  # noqa: E731
    else:
        getter = lambda feature: feature.GetFieldAsString(index).strip() or None  # noqa: E731
    return lambda feature: getter(feature) if feature.IsFieldSetAndNotNull(index) else None


def _read_layer(vector: VectorInput, grid: Grid, class_field: str | None,
                class_name_field: str | None, line_width: float, shapes: list[Shape],
                names: ClassNames, stats: FeatureStats, progress: Progress) -> None:

    source, layer = open_layer(vector)
    label = vector.name or layer.GetName()
    total = layer.GetFeatureCount()
    if total == 0:
        raise UserError(f"The layer '{label}' has no features: there is nothing to draw.")
    class_of = _field_reader(layer, class_field, label)
    name_of = _field_reader(layer, class_name_field, label) if class_name_field else None
    source_srs, target, transform = transform_to_grid(vector, layer, label, grid)
    buffer = _Buffer(line_width, target, grid) if line_width > 0 else None
    geographic = bool(target.IsGeographic())
    minx, miny, maxx, maxy = grid.bounds

    layer.ResetReading()
    for index, feature in enumerate(layer):
        if index % 1000 == 0:
            if progress.cancelled():
                raise Cancelled()
            progress.set_fraction(index / total)
        code = class_of(feature)
        if code is None:
            stats.null_class += 1
            continue
        geometry, problem = _on_grid(feature.GetGeometryRef(), transform, buffer, source_srs,
                                     label)
        if problem:
            setattr(stats, problem, getattr(stats, problem) + 1)
            if problem != "repaired":
                continue
        area, wrapped = geometry.GetArea(), False
        if geographic:  # 180.2 and -179.8 degrees are one place
            geometry, area, wrapped = wrap_to_grid(geometry, grid.bounds)
        gminx, gmaxx, gminy, gmaxy = geometry.GetEnvelope()
        if gmaxx <= minx or gminx >= maxx or gmaxy <= miny or gminy >= maxy:
            stats.outside += 1
            continue
        stats.wrapped += wrapped
        shapes.append(Shape(geometry, code, area, len(shapes)))
        stats.codes[code] += 1
        stats.used += 1
        names.add(code, name_of(feature) if name_of else (label if not class_field else None),
                  label, feature.GetFID())


def _on_grid(geometry: Any, transform: Any, buffer: "_Buffer | None", source_srs: Any,
             label: str) -> tuple[Any, str | None]:
    """A feature's geometry as an area in the grid's CRS, or why it cannot be one.

    Returns:
        (geometry, None) when usable as is, (geometry, "repaired") when it was made valid, or
        (None, reason) with reason one of FeatureStats' counters.
    """
    if geometry is None or geometry.IsEmpty():
        return None, "empty"
    geometry = geometry.Clone()
    if geometry.HasCurveGeometry():
        geometry = geometry.GetLinearGeometry()
    geometry.FlattenTo2D()
    repaired = None
    if _kind(geometry) == "polygon":
        if not geometry.IsValid():
            geometry = _repair(geometry)
            if geometry is None:
                return None, "unrepairable"
            repaired = "repaired"
        if transform is not None and geometry.Transform(transform) != 0:
            return None, "untransformable"
    elif buffer is None:
        # width 0: a point labels the pixel it falls in, a line the pixels it passes through
        if transform is not None and geometry.Transform(transform) != 0:
            return None, "untransformable"
    else:
        geometry = buffer.apply(geometry, source_srs, transform)
        if geometry is None:
            return None, "untransformable"
    if geometry.IsEmpty():
        return None, "empty"
    return geometry, repaired


class _Buffer:
    """Buffers lines and points by half the width on the ground, in metres."""

    def __init__(self, width_m: float, target: Any, grid: Grid) -> None:
        from osgeo import osr

        self.half = width_m / 2.0
        self.target = target
        self.local = None
        if target.IsGeographic():
            minx, miny, maxx, maxy = grid.bounds
            to_lonlat = osr.CoordinateTransformation(target, srs_from("EPSG:4326"))
            lat, lon = (miny + maxy) / 2, (minx + maxx) / 2
            point = to_lonlat.TransformPoint(lon, lat)
            # An azimuthal equidistant projection centred on the image: metres stay metres.
            self.local = srs_from(f"+proj=aeqd +lat_0={point[1]} +lon_0={point[0]} +datum=WGS84 "
                              "+units=m +no_defs")
            self.to_target = osr.CoordinateTransformation(self.local, target)
            self.distance = self.half
        else:
            self.distance = self.half / (target.GetLinearUnits() or 1.0)

    def apply(self, geometry: Any, source_srs: Any, transform: Any) -> Any:
        from osgeo import osr

        if self.local is None:
            if transform is not None and geometry.Transform(transform) != 0:
                return None
            return geometry.Buffer(self.distance, 8)
        to_local = osr.CoordinateTransformation(source_srs, self.local)
        if geometry.Transform(to_local) != 0:
            return None
        geometry = geometry.Buffer(self.distance, 8)
        if geometry.Transform(self.to_target) != 0:
            return None
        return geometry


def transform_to_grid(vector: VectorInput, layer: Any, label: str,
                      grid: Grid) -> tuple[Any, Any, Any]:
    """(the layer's CRS, the grid's CRS, the transformation of the layer's coordinates onto the
    grid's or None when the layer is already in it). The layer's CRS is the one the user gave,
    else the file's; a layer without one, or with coordinates no geographic CRS can hold, is
    refused."""
    from osgeo import osr

    target = srs_from(grid.crs_wkt)
    source_srs = srs_from(vector.crs_wkt) if vector.crs_wkt else layer.GetSpatialRef()
    if source_srs is None:
        raise UserError(f"The layer '{label}' has no CRS. Set its CRS in QGIS "
                        "(Layer Properties > Source) and run again.")
    check_plausible(layer, source_srs, label)
    source_srs = source_srs.Clone()
    source_srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    # vector coordinates keep their axis order: only an identical CRS needs no transformation
    return source_srs, target, (None if source_srs.IsSame(target)
                                else osr.CoordinateTransformation(source_srs, target))


def srs_from(definition: str) -> Any:
    """A SpatialReference from any definition GDAL understands, in x/y (lon/lat) order."""
    from osgeo import osr

    srs = osr.SpatialReference()
    if srs.SetFromUserInput(definition) != 0:
        raise UserError(f"Cannot understand the CRS: {definition[:80]}")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def check_plausible(layer: Any, srs: Any, label: str) -> None:
    """Refuses coordinates that cannot be in a geographic CRS (e.g. GeoJSON with no CRS)."""
    if not srs.IsGeographic():
        return
    minx, maxx, miny, maxy = layer.GetExtent()
    if min(minx, maxx) < -360 or max(minx, maxx) > 360 or min(miny, maxy) < -90.001 \
            or max(miny, maxy) > 90.001:
        raise UserError(
            f"The layer '{label}' is said to be in longitude/latitude ({srs.GetName()}), but "
            f"its coordinates (x {minx:.0f} to {maxx:.0f}, y {miny:.0f} to {maxy:.0f}) cannot "
            "be degrees. The file probably declares no CRS (GeoJSON without one is read as "
            "EPSG:4326). Set the layer's real CRS in QGIS (Layer Properties > Source > "
            "Assigned CRS) and run again.")


def _kind(geometry: Any) -> str:
    from osgeo import ogr

    flat = ogr.GT_Flatten(geometry.GetGeometryType())
    if flat in (ogr.wkbPolygon, ogr.wkbMultiPolygon):
        return "polygon"
    if flat == ogr.wkbGeometryCollection:
        kinds = {_kind(geometry.GetGeometryRef(i)) for i in range(geometry.GetGeometryCount())}
        return "polygon" if kinds == {"polygon"} else "line"
    return "line"


def _repair(geometry: Any) -> Any:
    """Makes a polygon valid, keeping only its areal parts; None when nothing areal is left."""
    from osgeo import ogr

    fixed = geometry.MakeValid()
    if fixed is None or fixed.IsEmpty():
        fixed = geometry.Buffer(0)
    if fixed is None or fixed.IsEmpty():
        return None
    if _kind(fixed) == "polygon" and ogr.GT_Flatten(fixed.GetGeometryType()) != \
            ogr.wkbGeometryCollection:
        return fixed
    parts = ogr.Geometry(ogr.wkbMultiPolygon)
    for i in range(fixed.GetGeometryCount()):
        part = fixed.GetGeometryRef(i)
        flat = ogr.GT_Flatten(part.GetGeometryType())
        if flat == ogr.wkbPolygon:
            parts.AddGeometry(part)
        elif flat == ogr.wkbMultiPolygon:
            for j in range(part.GetGeometryCount()):
                parts.AddGeometry(part.GetGeometryRef(j))
    return None if parts.IsEmpty() else parts
