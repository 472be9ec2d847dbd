"""Maps made by other tools: category names (in the .aux.xml), attribute tables, .qml styles,
plain codes; MATCH; names that match only partly; nothing matching is a clear error."""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from support import NC, NC_NAMES, changed_strata, write_class_raster

from landcoverunet.backend.assess.accuracy import assess_accuracy
from landcoverunet.backend.assess.raster_classes import (SOURCE_CATEGORIES, SOURCE_CODES,
                                                         SOURCE_RAT, SOURCE_STYLE,
                                                         read_raster_classes)
from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.core.progress import ConsoleProgress
from landcoverunet.backend.masks.features import VectorInput

NAMES = NC_NAMES
POLYGONS = VectorInput(str(NC / "landsat96_polygons.shp"))
POINTS = VectorInput(str(NC / "landsat96_points.shp"))


def prediction() -> np.ndarray:
    """strata.tif (codes 1..7) with 20 % seeded changes and a nodata corner (0)."""
    return changed_strata(3, 0.2, 100)


def write_map(path, values: np.ndarray, colours: bool = False) -> str:
    """A plain uint8 GeoTIFF on strata.tif's grid, nodata 0, optionally with a colour table."""
    return write_class_raster(path, values, colours=colours)


def with_names_in_aux_xml(path: str, names: list[str]) -> str:
    """Category names written by GDAL's PAM into ``path.aux.xml`` (the file is opened read-only),
    as other tools leave them; the GeoTIFF itself holds none."""
    dataset = gdal.Open(path)
    dataset.GetRasterBand(1).SetCategoryNames(names)
    dataset = None
    return path


def pixel_figures(reference: np.ndarray, values: np.ndarray, k: int = 7) -> np.ndarray:
    """Independent confusion matrix (rows reference 1..k, columns map 1..k; 0 = nothing)."""
    both = (reference > 0) & (values > 0)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (reference[both].astype(np.int64) - 1, values[both].astype(np.int64) - 1),
              1)
    return matrix


def polygon_matrix(values: np.ndarray) -> np.ndarray:
    labelled = gdal.Open(str(NC / "landsat96_labelled_pixels.tif")).ReadAsArray()
    return pixel_figures(np.where(labelled > 0, labelled, 0), values)


def point_matrix(values: np.ndarray) -> np.ndarray:
    """The points' 'id' against the map's value at the pixel each falls in."""
    x0, dx, _, y0, _, dy = gdal.Open(str(NC / "strata.tif")).GetGeoTransform()
    source = gdal.OpenEx(str(NC / "landsat96_points.shp"))
    layer = source.GetLayer(0)
    matrix = np.zeros((7, 7), dtype=np.int64)
    for feature in layer:
        point = feature.GetGeometryRef()
        col, row = int((point.GetX() - x0) // dx), int((point.GetY() - y0) // dy)
        if 0 <= row < values.shape[0] and 0 <= col < values.shape[1] and values[row, col]:
            matrix[feature.GetField("id") - 1, values[row, col] - 1] += 1
    return matrix


def test_category_names_in_aux_xml_and_colour_table(tmp_path):
    values = prediction()
    path = with_names_in_aux_xml(write_map(tmp_path / "scp.tif", values, colours=True),
                                 ["", *[NAMES[v] for v in range(1, 8)]])
    assert (tmp_path / "scp.tif.aux.xml").exists()
    found = read_raster_classes(path, gdal.Open(path), ConsoleProgress(quiet=True))
    assert found.source == SOURCE_CATEGORIES
    assert found.classes.names == [NAMES[v] for v in range(1, 8)]
    assert found.classes.by_name("forest").color == "#32c81e"           # from the colour table
    result = assess_accuracy(path, reference_vector=POLYGONS, class_field="label",
                             all_touched=True)
    assert np.array_equal(result.matrix, polygon_matrix(values))
    assert all(c.match == "name" for c in result.classes)
    assert result.metrics.overall_accuracy == pytest.approx(
        np.trace(polygon_matrix(values)) / polygon_matrix(values).sum())


def test_attribute_table_names(tmp_path):
    values = prediction()
    path = write_map(tmp_path / "rat.tif", values)
    dataset = gdal.Open(path, gdal.GA_Update)
    table = gdal.RasterAttributeTable()
    table.CreateColumn("Value", gdal.GFT_Integer, gdal.GFU_MinMax)
    table.CreateColumn("Class_Name", gdal.GFT_String, gdal.GFU_Name)
    for row, value in enumerate(range(1, 8)):
        table.SetValueAsInt(row, 0, value)
        table.SetValueAsString(row, 1, NAMES[value])
    dataset.GetRasterBand(1).SetDefaultRAT(table)
    dataset = None
    found = read_raster_classes(path, gdal.Open(path), ConsoleProgress(quiet=True))
    assert found.source == SOURCE_RAT and found.classes.names == list(NAMES.values())
    result = assess_accuracy(path, reference_vector=POLYGONS, class_field="label",
                             all_touched=True)
    assert np.array_equal(result.matrix, polygon_matrix(values))


def test_plain_codes_against_a_numeric_field(tmp_path):
    values = prediction()
    path = write_map(tmp_path / "codes.tif", values)
    found = read_raster_classes(path, gdal.Open(path), ConsoleProgress(quiet=True))
    assert found.source == SOURCE_CODES and list(found.values) == list(range(1, 8))
    expected = point_matrix(values)
    for match, name_field in (("auto", None), ("codes", None), ("codes", "label"),
                              ("auto", "label")):
        result = assess_accuracy(path, reference_vector=POINTS, class_field="id",
                                 class_name_field=name_field, match=match)
        assert np.array_equal(result.matrix, expected), (match, name_field)
        assert result.metrics.overall_accuracy == pytest.approx(
            np.trace(expected) / expected.sum())
    with pytest.raises(UserError) as error:
        assess_accuracy(path, reference_vector=POINTS, class_field="id",
                        class_name_field="label", match="names")
    text = str(error.value)
    assert "No reference class matches" in text and "MATCH to 'codes'" in text
    assert "5: 5" in text and "5: forest" in text            # both lists, side by side
    assert text.count("|") >= 8


def test_style_file_labels(tmp_path):
    """Values 11..17 (not the reference's codes) named only by a .qml: matched by those names."""
    values = prediction()
    path = write_map(tmp_path / "styled.tif", np.where(values > 0, values + 10, 0))
    entries = "".join(f'<paletteEntry value="{v + 10}" label="{NAMES[v]}" color="#0000{v:02x}" '
                      'alpha="255"/>' for v in range(1, 8))
    (tmp_path / "styled.qml").write_text(
        "<!DOCTYPE qgis><qgis version='3.22'><pipe><rasterrenderer type='paletted' band='1'>"
        f"<colorPalette>{entries}</colorPalette></rasterrenderer></pipe></qgis>",
        encoding="utf-8")
    found = read_raster_classes(path, gdal.Open(path), ConsoleProgress(quiet=True))
    assert found.source == SOURCE_STYLE and list(found.values) == list(range(11, 18))
    assert found.classes.by_name("water").color == "#000006"
    result = assess_accuracy(path, reference_vector=POLYGONS, class_field="id",
                             class_name_field="label", all_touched=True)
    assert np.array_equal(result.matrix, polygon_matrix(values))


def test_names_that_only_partly_match_are_shown(tmp_path):
    values = prediction()
    own = {**NAMES, 5: "woodland", 6: "open water"}
    path = with_names_in_aux_xml(write_map(tmp_path / "partly.tif", values),
                                 ["", *[own[v] for v in range(1, 8)]])
    result = assess_accuracy(path, reference_vector=POLYGONS, class_field="label",
                             all_touched=True)
    names = [c.name for c in result.classes]
    assert names[:7] == [own[v] for v in range(1, 8)]
    assert sorted(names[7:]) == ["forest", "water"]                # kept, never predicted
    assert all(c.map_id is None for c in result.classes[7:])
    full = polygon_matrix(values)
    forest = names.index("forest")
    assert result.matrix[forest].sum() == full[4].sum()            # its reference pixels stay
    assert result.matrix[4].sum() == 0                             # 'woodland': no reference
    assert result.matrix[forest, 4] == full[4, 4]                  # forest mapped as woodland
    assert any("'woodland', 'open water'" in line for line in result.messages)
    assert result.metrics.producers_accuracy[forest] == 0


def test_processing_with_a_style_saved_by_qgis_and_match(plugin, tmp_path):
    """A paletted style saved by QGIS itself names values 11..17; MATCH through Processing."""
    from qgis import processing
    from qgis.core import QgsPalettedRasterRenderer, QgsProcessingException, QgsRasterLayer
    from qgis.PyQt.QtGui import QColor

    values = prediction()
    path = write_map(tmp_path / "styled.tif", np.where(values > 0, values + 10, 0))
    layer = QgsRasterLayer(path, "styled")
    palette = [QgsPalettedRasterRenderer.Class(v + 10, QColor(20 * v, 90, 40), NAMES[v])
               for v in range(1, 8)]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, palette))
    message, saved = layer.saveNamedStyle(str(tmp_path / "styled.qml"))
    assert saved, message
    del layer
    common = {"INPUT": path, "REFERENCE": str(NC / "landsat96_polygons.shp"),
              "CLASS_FIELD": "id", "CLASS_NAME_FIELD": "label", "ALL_TOUCHED": True,
              "OUTPUT_REPORT": str(tmp_path / "report.html")}
    expected = polygon_matrix(values)
    result = processing.run("landcoverunet:assessaccuracy", common)            # MATCH auto
    assert result["OVERALL_ACCURACY"] == pytest.approx(np.trace(expected) / expected.sum())
    assert "the QGIS style file (.qml)" in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert processing.run("landcoverunet:assessaccuracy", {**common, "MATCH": 1})[
        "OVERALL_ACCURACY"] == pytest.approx(result["OVERALL_ACCURACY"])        # names
    with pytest.raises(QgsProcessingException, match="(?s)No reference class matches.*11: "
                                                     "developed.*1: developed"):
        processing.run("landcoverunet:assessaccuracy", {**common, "MATCH": 2})  # codes 1..7
