"""Build training masks: real polygons, lines and reference masks (test/data)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from support import NAIP, NC, SOLARIS
from osgeo import gdal, ogr, osr
from qgis import processing
from qgis.core import QgsProcessingException, QgsRasterLayer, QgsVectorLayer

ALG = "landcoverunet:buildmasks"


def read(path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


def category_names(dataset) -> list[str]:
    """Band 1's category names (kept in the .aux.xml sidecar)."""
    band = dataset.GetRasterBand(1)
    band.GetDefaultRAT()  # GDAL 3.6's GTiff loads the sidecar lazily; this triggers it
    return band.GetCategoryNames()


def labelled_reference() -> np.ndarray:
    ref = read(NC / "landsat96_labelled_pixels.tif")
    return np.where(ref > 0, ref, 0).astype(np.uint8)


def run(tmp_path, **parameters) -> dict:
    parameters.setdefault("OUTPUT", str(tmp_path / "mask.tif"))
    return processing.run(ALG, parameters)


def test_nc_polygons_on_own_grid_equal_reference(plugin, tmp_path):
    result = run(tmp_path, INPUT=str(NC / "strata.tif"),
                 VECTORS=[str(NC / "landsat96_polygons.shp")], CLASS_FIELD="id",
                 CLASS_NAME_FIELD="label", ALL_TOUCHED=True,
                 OUTPUT_CLASS_MAP=str(tmp_path / "classes.json"))
    mask = read(result["OUTPUT"])
    assert np.array_equal(mask, labelled_reference())
    assert result["CLASS_COUNT"] == 7 and result["LABELLED_PIXELS"] == 2872

    dataset = gdal.Open(result["OUTPUT"])
    image = gdal.Open(str(NC / "strata.tif"))
    assert dataset.GetGeoTransform() == image.GetGeoTransform()
    assert (dataset.RasterXSize, dataset.RasterYSize) == (image.RasterXSize, image.RasterYSize)
    assert osr.SpatialReference(dataset.GetProjection()).IsSame(
        osr.SpatialReference(image.GetProjection()))
    band = dataset.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert dataset.GetMetadata("IMAGE_STRUCTURE").get("COMPRESSION") == "DEFLATE"
    assert band.GetBlockSize() == [256, 256]
    names = category_names(dataset)
    assert names[5] == "forest" and names[6] == "water"
    assert band.GetColorTable().GetColorEntry(6)[:3] == (0x1f, 0x78, 0xb4)  # water is blue
    classes = json.loads((tmp_path / "classes.json").read_text())["classes"]
    assert [c["id"] for c in classes] == list(range(1, 8))
    assert classes[0] == {"id": 1, "name": "developed", "color": "#e31a1c", "code": 1}


def test_nc_polygons_reprojected_to_band_grid_differ_only_on_boundaries(plugin, tmp_path):
    band_file = NC / "lsat7_2000_10.tif"
    result = run(tmp_path, INPUT=str(band_file), VECTORS=[str(NC / "landsat96_polygons.shp")],
                 CLASS_FIELD="id", ALL_TOUCHED=True)
    mask = read(result["OUTPUT"])
    reference = labelled_reference()
    valid = read(band_file) != -99999
    assert not mask[~valid].any(), "image nodata pixels must stay unlabelled"
    differ = (mask != reference) & valid
    assert differ.sum() < 0.05 * (reference > 0).sum()
    assert _on_boundaries(differ, reference)


def _on_boundaries(differ: np.ndarray, reference: np.ndarray) -> bool:
    """Every differing pixel has a 4-neighbour of another class in the reference."""
    padded = np.pad(reference, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge = np.zeros_like(differ)
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
        edge |= padded[dy:dy + centre.shape[0], dx:dx + centre.shape[1]] != centre
    return bool(np.all(edge[differ]))


def test_polygons_in_4326_give_the_same_mask(plugin, tmp_path):
    source = str(NC / "landsat96_polygons.shp")
    projected = str(tmp_path / "polygons_4326.gpkg")
    gdal.VectorTranslate(projected, source, dstSRS="EPSG:4326", format="GPKG")
    common = dict(INPUT=str(NC / "strata.tif"), CLASS_FIELD="id", ALL_TOUCHED=True)
    first = read(run(tmp_path, VECTORS=[source], **common)["OUTPUT"])
    second = read(run(tmp_path, VECTORS=[projected], OUTPUT=str(tmp_path / "m4326.tif"),
                      **common)["OUTPUT"])
    differ = first != second
    assert differ.sum() <= 20
    assert _on_boundaries(differ, first)


def test_buildings_equal_solaris_reference(plugin, tmp_path):
    result = run(tmp_path, INPUT=str(SOLARIS / "sample_geotiff.tif"),
                 VECTORS=[str(SOLARIS / "geotiff_labels.gpkg")])
    mask = read(result["OUTPUT"])
    reference = read(SOLARIS / "sample_fp_mask_from_geojson.tif")
    assert np.array_equal(mask > 0, reference == 255)
    assert result["CLASS_COUNT"] == 1
    dataset = gdal.Open(result["OUTPUT"])
    assert category_names(dataset)[1] == "geotiff_labels"


def test_feature_ids_beside_the_mask_name_each_building(plugin, tmp_path):
    """Training holds out whole features: the sidecar numbers the feature of every pixel."""
    from landcoverunet.backend.core.feature_ids import METADATA_KEY, sidecar_path

    result = run(tmp_path, INPUT=str(SOLARIS / "sample_geotiff.tif"),
                 VECTORS=[str(SOLARIS / "geotiff_labels.gpkg")])
    mask = read(result["OUTPUT"])
    ids_path = sidecar_path(result["OUTPUT"])
    assert gdal.Open(result["OUTPUT"]).GetMetadataItem(METADATA_KEY) == os.path.basename(ids_path)
    ids = read(ids_path)
    assert ((ids > 0) == (mask > 0)).all()
    source = ogr.Open(str(SOLARIS / "geotiff_labels.gpkg"))  # keeps its layer alive
    transform = gdal.Open(result["OUTPUT"]).GetGeoTransform()
    checked = 0
    for number, feature in enumerate(source.GetLayer(0), start=1):
        inside = ids == number
        centroid = feature.GetGeometryRef().Centroid()
        col = int((centroid.GetX() - transform[0]) / transform[1])
        row = int((centroid.GetY() - transform[3]) / transform[5])
        if inside.sum() > 20 and feature.GetGeometryRef().Contains(centroid):
            assert ids[row, col] == number   # the pixel under the roof's centre is its own
            checked += 1
    assert len(np.unique(ids[ids > 0])) == 17   # every building on the crop has its own number
    assert checked >= 10


def test_points_without_width_label_the_pixel_they_fall_in(plugin, tmp_path):
    result = run(tmp_path, INPUT=str(NAIP / "river_subset.tif"),
                 VECTORS=[str(NAIP / "training_data.shp")], CLASS_FIELD="label")
    mask = read(result["OUTPUT"])
    assert (mask > 0).sum() == 60
    assert sorted(np.bincount(mask.ravel())[1:].tolist()) == [20, 20, 20]


def test_roads_with_width_match_solaris_reference(plugin, tmp_path):
    result = run(tmp_path, INPUT=str(SOLARIS / "road_mask_input.tif"),
                 VECTORS=[str(SOLARIS / "sample_roads_for_masking.geojson")], LINE_WIDTH=4.0)
    mask = read(result["OUTPUT"])
    reference = read(SOLARIS / "sample_road_raster_mask.tif")
    assert ((mask > 0) != (reference == 255)).sum() <= 20


def test_overlap_rules(plugin, tmp_path):
    """A pond inside a forest: smaller wins by default; 'unlabelled' clears the overlap."""
    path = str(tmp_path / "nested.gpkg")
    layer = _polygons(path, [("forest", (630600, 227000, 633000, 228000)),
                             ("water", (631000, 227300, 631500, 227700))])
    common = dict(INPUT=str(NC / "strata.tif"), VECTORS=[layer], CLASS_FIELD="cls")
    smallest = read(run(tmp_path, **common)["OUTPUT"])
    last = read(run(tmp_path, OVERLAP=1, OUTPUT=str(tmp_path / "last.tif"), **common)["OUTPUT"])
    cleared = read(run(tmp_path, OVERLAP=2, OUTPUT=str(tmp_path / "none.tif"),
                       **common)["OUTPUT"])
    forest, water = 1, 2   # text classes get ids in sorted order
    pond = (smallest == water)
    assert pond.sum() > 100 and (smallest == forest).sum() > pond.sum()
    assert np.array_equal(last == water, pond)  # water drawn last too
    assert not (cleared == water).any() and (cleared[pond] == 0).all()
    assert (cleared == forest).sum() == (smallest == forest).sum()


def _polygons(path: str, features: list[tuple[str, tuple]], epsg: int = 3358) -> str:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    layer = source.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("cls", ogr.OFTString))
    for name, (x0, y0, x1, y1) in features:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("cls", name)
        feature.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"))
        layer.CreateFeature(feature)
    source = None
    return path


def test_class_map_keeps_ids_and_appends_new_classes(plugin, tmp_path):
    first = run(tmp_path, INPUT=str(NC / "strata.tif"),
                VECTORS=[_polygons(str(tmp_path / "a.gpkg"),
                                   [("water", (631000, 227300, 631500, 227700))])],
                CLASS_FIELD="cls", OUTPUT_CLASS_MAP=str(tmp_path / "a.json"))
    second = run(tmp_path, INPUT=str(NC / "strata.tif"), OUTPUT=str(tmp_path / "b.tif"),
                 VECTORS=[_polygons(str(tmp_path / "b.gpkg"),
                                    [("forest", (630600, 227000, 630900, 227200)),
                                     ("water", (631000, 227300, 631500, 227700))])],
                 CLASS_FIELD="cls", CLASS_MAP=first["OUTPUT"])
    from landcoverunet.backend.core.class_map import ClassMap
    classes = ClassMap.read_from_raster(second["OUTPUT"])
    assert classes.by_name("water").id == 1 and classes.by_name("forest").id == 2
    assert classes.by_name("water").color == ClassMap.read_json(
        str(tmp_path / "a.json")).by_name("water").color


def test_loaded_mask_gets_palette_through_post_processor(plugin, tmp_path):
    from landcoverunet.gui.styling import apply_class_palette
    result = run(tmp_path, INPUT=str(NC / "strata.tif"),
                 VECTORS=[str(NC / "landsat96_polygons.shp")], CLASS_FIELD="id",
                 CLASS_NAME_FIELD="label")
    layer = QgsRasterLayer(result["OUTPUT"], "mask")
    assert apply_class_palette(layer)
    renderer = layer.renderer()
    assert renderer.type() == "paletted"
    assert {c.label for c in renderer.classes()} == {
        "developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"}


@pytest.mark.parametrize("case, parameters, message", [
    ("missing field", dict(CLASS_FIELD="nope"), "has no field 'nope'"),
    ("no overlap", dict(INPUT=str(SOLARIS / "sample_geotiff.tif")), "None of the features"),
    ("no crs", dict(VECTORS=[str(SOLARIS / "geotiff_custom_proj_labels.geojson")],
                    INPUT=str(SOLARIS / "sample_geotiff_custom_proj.tif"), CLASS_FIELD=""),
     "cannot be degrees"),
])
def test_bad_input_is_a_clear_error_and_leaves_no_file(plugin, tmp_path, case, parameters,
                                                       message):
    base = dict(INPUT=str(NC / "strata.tif"), VECTORS=[str(NC / "landsat96_polygons.shp")],
                CLASS_FIELD="id")
    base.update(parameters)
    with pytest.raises(QgsProcessingException, match=message):
        run(tmp_path, **base)
    assert os.listdir(tmp_path) == []


def test_empty_layer_and_too_many_classes(plugin, tmp_path):
    empty = str(tmp_path / "empty.gpkg")
    _polygons(empty, [])
    many = _polygons(str(tmp_path / "many.gpkg"),
                     [(f"c{i:03d}", (630600 + 20 * i, 227000, 630610 + 20 * i, 227500))
                      for i in range(260)])
    for layers, message in (([empty], "has no features"), ([many], "more than 254 classes")):
        out = tmp_path / "out"
        with pytest.raises(QgsProcessingException, match=message):
            run(tmp_path, INPUT=str(NC / "strata.tif"), VECTORS=layers, CLASS_FIELD="cls",
                OUTPUT=str(out / "mask.tif"))
        assert not out.exists() or os.listdir(out) == []


def test_null_classes_and_empty_geometries_are_named_not_blamed_on_the_crs(plugin, tmp_path):
    """Every class NULL, or every geometry empty: the message says so, not 'check the CRS'."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(3358)
    path = str(tmp_path / "broken.gpkg")
    source = ogr.GetDriverByName("GPKG").CreateDataSource(path)
    for name, geometry, cls in (("nulls", "POLYGON((630600 227000,630900 227000,630900 227200,"
                                          "630600 227200,630600 227000))", None),
                                ("empties", "POLYGON EMPTY", "water")):
        layer = source.CreateLayer(name, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn("cls", ogr.OFTString))
        for _ in range(3):
            feature = ogr.Feature(layer.GetLayerDefn())
            if cls:
                feature.SetField("cls", cls)
            feature.SetGeometry(ogr.CreateGeometryFromWkt(geometry))
            layer.CreateFeature(feature)
    source = None
    out = tmp_path / "out"
    for layer, message in (("nulls", r"3 have no class value \(NULL\) in the field 'cls'.*"
                                      r"Fill in the class"),
                           ("empties", "3 have an empty, missing or broken geometry")):
        with pytest.raises(QgsProcessingException, match=message) as error:
            run(tmp_path, INPUT=str(NC / "strata.tif"), VECTORS=[f"{path}|layername={layer}"],
                CLASS_FIELD="cls", OUTPUT=str(out / "mask.tif"))
        assert "CRS" not in str(error.value)
        assert not out.exists() or os.listdir(out) == []


def test_memory_layer_and_lines_in_metres_on_geographic_grid(plugin, tmp_path):
    """A layer QGIS holds in memory is exported for the backend; widths stay metres."""
    layer = QgsVectorLayer(str(SOLARIS / "sample_roads_for_masking.geojson"), "roads", "ogr")
    memory = layer.materialize(__import__("qgis.core", fromlist=["QgsFeatureRequest"])
                               .QgsFeatureRequest())
    result = run(tmp_path, INPUT=str(SOLARIS / "road_mask_input.tif"), VECTORS=[memory],
                 LINE_WIDTH=8.0)
    wide = (read(result["OUTPUT"]) > 0).sum()
    reference = (read(SOLARIS / "sample_road_raster_mask.tif") == 255).sum()
    assert 1.8 * reference < wide < 2.2 * reference


def test_qgis_process_run(qgis_process_ready, tmp_path):
    answer = qgis_process_ready(ALG, {
        "INPUT": NC / "strata.tif", "VECTORS": NC / "landsat96_polygons.shp",
        "CLASS_FIELD": "id", "CLASS_NAME_FIELD": "label", "ALL_TOUCHED": "true",
        "OUTPUT": tmp_path / "mask.tif", "OUTPUT_CLASS_MAP": tmp_path / "classes.json"})
    results = answer["results"]
    assert results["CLASS_COUNT"] == 7 and results["LABELLED_PIXELS"] == 2872
    assert np.array_equal(read(tmp_path / "mask.tif"), labelled_reference())
    assert json.loads((tmp_path / "classes.json").read_text())["classes"][6]["name"] == "sediment"


def test_an_empty_class_field_is_warned(plugin, tmp_path):
    """Without a class field, one layer makes a one-class mask: the log says so."""
    from qgis.core import QgsProcessingFeedback

    feedback = QgsProcessingFeedback()
    result = processing.run(ALG, {"INPUT": str(NC / "strata.tif"),
                                  "VECTORS": [str(NC / "landsat96_polygons.shp")],
                                  "OUTPUT": str(tmp_path / "mask.tif")}, feedback=feedback)
    assert result["CLASS_COUNT"] == 1
    assert "No class field" in feedback.textLog() and "single class" in feedback.textLog()
    # any QGIS that opens the mask from its file shows exactly its classes
    from qgis.core import QgsRasterLayer
    layer = QgsRasterLayer(str(tmp_path / "mask.tif"), "mask")
    assert layer.renderer().type() == "paletted" and len(layer.renderer().classes()) == 1
