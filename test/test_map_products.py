"""Map products: the minimum mapping unit (GDAL's sieve) and the polygon output, on the bundled
scene, checked against an independent labelling (scipy.ndimage.label) and the raster's areas."""
from __future__ import annotations

import os

import numpy as np
import pytest
from osgeo import gdal, ogr
from qgis import processing
from qgis.core import QgsProcessingContext, QgsProcessingException, QgsProject
from scipy import ndimage
from fixtures_classify import SCENE, make_image, make_test_model, read, rgb

from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.classify.sieve import threshold_pixels
from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.model.opened import open_model

ALG = "landcoverunet:classifyraster"
PIXEL_HA = 28.5 * 28.5 / 10_000
EDGES = ndimage.generate_binary_structure(2, 1)  # 4-connected, as the sieve and polygons


@pytest.fixture(scope="module")
def plain_map(scene_model, tmp_path_factory) -> np.ndarray:
    path = tmp_path_factory.mktemp("plain") / "classes.tif"
    classify_raster(str(SCENE), scene_model, str(path))
    return read(path)


def patches(classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent labelling: (patch label of each pixel, pixels of each label); 0 = nodata."""
    labels = np.zeros(classes.shape, dtype=np.int64)
    top = 0
    for value in np.unique(classes[classes > 0]):
        found, count = ndimage.label(classes == value, structure=EDGES)
        labels[found > 0] = found[found > 0] + top
        top += count
    return labels, np.bincount(labels.ravel())


def has_other_class_beside(classes: np.ndarray, labels: np.ndarray, label: int) -> bool:
    """Whether a patch touches (by an edge) a valid pixel of another class."""
    inside = labels == label
    around = ndimage.binary_dilation(inside, structure=EDGES) & ~inside
    return bool((classes[around] > 0).any())


@pytest.mark.parametrize("hectares", [0.5, 2.0])
def test_sieve_removes_every_patch_below_the_unit_and_nothing_else(scene_model, plain_map,
                                                                   hectares, tmp_path):
    threshold = threshold_pixels(hectares, 28.5 * 28.5)
    labels, sizes = patches(plain_map)
    small = sizes < threshold
    small[0] = False
    assert small.sum() > 50 and (sizes[1:] >= threshold).sum() > 5, "a map worth sieving"
    result = classify_raster(str(SCENE), scene_model, str(tmp_path / "mmu.tif"),
                             min_mapping_unit=hectares)
    sieved = read(tmp_path / "mmu.tif")
    kept = ~small[labels] & (plain_map > 0)
    assert np.array_equal(sieved[kept], plain_map[kept]), "patches at or above the unit stay"
    assert np.array_equal(sieved == 0, plain_map == 0), "nodata stays nodata, classes stay classes"
    assert (sieved != plain_map).sum() > 0
    after, after_sizes = patches(sieved)
    for label in np.flatnonzero(after_sizes < threshold):
        if label:  # only a patch with nothing but nodata around may stay small
            assert not has_other_class_beside(sieved, after, label), f"patch {label} left"
    counts = np.bincount(sieved.ravel(), minlength=256)
    assert result.pixels_per_class == {i: int(counts[i]) for i in result.pixels_per_class}


def test_threshold_in_pixels():
    assert threshold_pixels(1.0, 100.0) == 100  # 1 ha of 10 m pixels: 100 pixels stay
    assert threshold_pixels(1.0, 900.0) == 12  # 11 pixels of 30 m are 0.99 ha
    assert threshold_pixels(0.0, 900.0) == 0
    with pytest.raises(UserError, match="negative"):
        threshold_pixels(-1.0, 900.0)


def test_polygon_areas_add_up_to_the_raster_class_areas(scene_model, tmp_path):
    vector = tmp_path / "classes.gpkg"
    result = classify_raster(str(SCENE), scene_model, str(tmp_path / "classes.tif"),
                             min_mapping_unit=1.0, vector_path=str(vector))
    classes = read(tmp_path / "classes.tif")
    names = {c.id: c.name for c in result.class_map.classes}
    source = ogr.Open(str(vector))
    layer = source.GetLayer(0)
    assert [layer.GetLayerDefn().GetFieldDefn(i).GetName() for i in range(3)] == [
        "class_id", "class_name", "area_ha"]
    areas: dict[int, float] = {}
    polygons = 0
    for feature in layer:
        class_id = feature.GetField("class_id")
        assert feature.GetField("class_name") == names[class_id]
        assert feature.GetField("area_ha") >= 1.0 - 1e-9  # none below the unit
        areas[class_id] = areas.get(class_id, 0.0) + feature.GetField("area_ha")
        polygons += 1
    labels, sizes = patches(classes)
    assert polygons == len(sizes) - 1, "one polygon per 4-connected patch"
    for class_id, pixels in result.pixels_per_class.items():
        assert areas.get(class_id, 0.0) == pytest.approx(pixels * PIXEL_HA, rel=1e-9)
    assert sorted(os.listdir(tmp_path)) == ["classes.gpkg", "classes.tif", "classes.tif.aux.xml"]


def test_geographic_image_with_a_unit_is_a_clear_error(scene_model, tmp_path):
    image = make_image(tmp_path / "degrees.tif", rgb(40, 40), epsg=4326,
                       origin=(-79.0, 35.8), pixel=0.0003)
    small = make_test_model(tmp_path / "rgb.keras", bands=3, classes=4)
    with pytest.raises(UserError, match="projected CRS"):
        classify_raster(image, small, str(tmp_path / "out.tif"), min_mapping_unit=1.0)
    assert not (tmp_path / "out.tif").exists()


def test_polygons_load_with_the_class_colours(plugin, scene_model, tmp_path):
    project = QgsProject.instance()
    context = QgsProcessingContext()
    context.setProject(project)
    before = set(project.mapLayers())
    result = processing.runAndLoadResults(ALG, {
        "INPUT": str(SCENE), "MODEL": scene_model, "MIN_MAPPING_UNIT": 2.0,
        "OUTPUT": str(tmp_path / "classes.tif"),
        "OUTPUT_VECTOR": str(tmp_path / "classes.gpkg")}, context=context)
    added = [project.mapLayer(i) for i in set(project.mapLayers()) - before]
    try:
        vectors = [layer for layer in added if layer.type() == layer.VectorLayer]
        assert len(vectors) == 1 and vectors[0].name() == "nc_landsat7_2000 polygons"
        renderer = vectors[0].renderer()
        assert renderer.type() == "categorizedSymbol" and renderer.classAttribute() == "class_id"
        expected = ClassMap.from_dict(open_model(scene_model).metadata.class_map)
        assert {c.value(): (c.label(), c.symbol().color().name())
                for c in renderer.categories()} == {c.id: (c.name, c.color)
                                                    for c in expected.classes}
        assert os.path.samefile(result["OUTPUT_VECTOR"], tmp_path / "classes.gpkg")
    finally:
        project.removeMapLayers([layer.id() for layer in added])


def test_vector_output_must_be_a_geopackage(plugin, scene_model, tmp_path):
    with pytest.raises(QgsProcessingException, match="GeoPackage"):
        processing.run(ALG, {"INPUT": str(SCENE), "MODEL": scene_model,
                             "OUTPUT": str(tmp_path / "classes.tif"),
                             "OUTPUT_VECTOR": str(tmp_path / "classes.shp")})


def test_sieve_passes_until_no_patch_below_the_unit_touches_another_class():
    """One pass of GDAL's sieve merges each small patch into its largest neighbour as it was
    before the pass; on a speckled map that neighbour is often small too and merges elsewhere,
    leaving patches below the unit (seen on a map of random weights under JAX)."""
    from landcoverunet.backend.classify.sieve import sieve_band
    from landcoverunet.backend.core.progress import ConsoleProgress

    speckle = np.random.default_rng(0).integers(1, 5, (30, 30)).astype(np.uint8)
    speckle[:, :3] = 0  # nodata at one side: it never grows nor takes a patch in

    def sieved(passes_of_gdal: int | None) -> np.ndarray:
        dataset = gdal.GetDriverByName("MEM").Create("", 30, 30, 1, gdal.GDT_Byte)
        band = dataset.GetRasterBand(1)
        band.SetNoDataValue(0)
        band.WriteArray(speckle)
        if passes_of_gdal is None:
            sieve_band(band, 12, ConsoleProgress(quiet=True))
        else:
            gdal.SieveFilter(band, band.GetMaskBand(), band, 12, 4)
        return band.ReadAsArray()

    def small_beside_other(classes: np.ndarray) -> int:
        labels, sizes = patches(classes)
        return sum(has_other_class_beside(classes, labels, label)
                   for label in np.flatnonzero(sizes < 12) if label)

    assert small_beside_other(sieved(1)) > 0, "one pass of GDAL leaves some (the case tested)"
    result = sieved(None)
    assert small_beside_other(result) == 0
    assert np.array_equal(result == 0, speckle == 0)
