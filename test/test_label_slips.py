"""Build training masks with label layers a stranger may hand it: slips among class codes and
names, polygons across the antimeridian, a raster given as a label layer, and a file of the
user's where the feature-id sidecar goes.

Each case runs through qgis_process on real files and checks what the user reads (a warning
naming the features, a clear refusal, never a traceback) and what is on disk (the mask's labels
where the polygons are; nothing written, and no file changed, when refused).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, ogr, osr
from support import snapshot

from support import ROOT, qgis_process

SAMPLE = ROOT / "resources" / "sample"
ALG = "landcoverunet:buildmasks"


def build(**parameters) -> tuple[int, str]:
    """Runs Build training masks through qgis_process: (exit status, what it said)."""
    arguments = []
    for key, value in parameters.items():
        for item in (value if isinstance(value, list) else [value]):
            arguments.append(f"{key}={item}")
    done = qgis_process("run", ALG, "--", *arguments, timeout=300)
    said = done.stdout + done.stderr
    assert "Traceback" not in said, said
    return done.returncode, said


def polygons(path: Path, srs: osr.SpatialReference, rings: list[tuple[list, dict]]) -> str:
    """A GeoPackage layer 'labels' of polygons (one ring each) with an integer 'id' and a text
    'label'; feature ids are 1, 2, ... in order."""
    source = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = source.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("id", ogr.OFTInteger))
    layer.CreateField(ogr.FieldDefn("label", ogr.OFTString))
    for ring_points, fields in rings:
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for x, y in ring_points + ring_points[:1]:
            ring.AddPoint_2D(x, y)
        polygon = ogr.Geometry(ogr.wkbPolygon)
        polygon.AddGeometry(ring)
        feature = ogr.Feature(layer.GetLayerDefn())
        for name, value in fields.items():
            feature.SetField(name, value)
        feature.SetGeometry(polygon)
        layer.CreateFeature(feature)
    source = None
    return str(path)


def square(x: float, y: float, size: float) -> list:
    return [(x, y), (x + size, y), (x + size, y - size), (x, y - size)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("label_slips")
    shutil.copy(SAMPLE / "nc_landsat7_2000.tif", folder / "image.tif")
    return folder


def test_one_code_with_two_names_and_one_name_with_two_codes_are_warned(qgis_process_ready,
                                                                         scene, tmp_path):
    image = gdal.Open(str(scene / "image.tif"))
    x0, size, _, y0, _, _ = image.GetGeoTransform()
    srs = image.GetSpatialRef()
    step = 20 * size
    labels = polygons(tmp_path / "slips.gpkg", srs, [
        (square(x0 + (2 + 2 * i) * step, y0 - 2 * step, step), fields)
        for i, fields in enumerate([{"id": 1, "label": "forest"}, {"id": 1, "label": "urban"},
                                    {"id": 2, "label": "water"}, {"id": 3, "label": "Water"},
                                    {"id": 1, "label": "forest"}])])
    status, said = build(INPUT=scene / "image.tif", VECTORS=labels, CLASS_FIELD="id",
                         CLASS_NAME_FIELD="label", OUTPUT=tmp_path / "mask.tif")
    assert status == 0, said
    assert ("Class code 1 has 2 names: 'forest' (feature 1 of 'slips', feature 5 of "
            "'slips'); 'urban' (feature 2 of 'slips')") in said, said
    assert ("The codes 2 (feature 3 of 'slips'); 3 (feature 4 of 'slips') all name the "
            "class 'water'") in said, said


def test_consistent_classes_give_no_such_warning(qgis_process_ready, scene, tmp_path):
    status, said = build(INPUT=scene / "image.tif", VECTORS=SAMPLE / "training_polygons.gpkg",
                         CLASS_FIELD="id", CLASS_NAME_FIELD="label", OUTPUT=tmp_path / "m.tif")
    assert status == 0, said
    assert "names:" not in said and "all name the class" not in said, said


def geographic_image(path: Path, west: float) -> str:
    """A 100 x 100 image of 0.01 degree pixels in EPSG:4326 from ``west``, north edge -17.5."""
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), 100, 100, 3, gdal.GDT_Byte)
    dataset.SetGeoTransform((west, 0.01, 0.0, -17.5, 0.0, -0.01))
    dataset.SetProjection(osr.SRS_WKT_WGS84_LAT_LONG)
    dataset.WriteRaster(0, 0, 100, 100, np.full((3, 100, 100), 50, np.uint8).tobytes())
    dataset = None
    return str(path)


def wgs84() -> osr.SpatialReference:
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


ACROSS = [  # on an image from 179.5 to 180.5 degrees east
    (square(-179.8, -17.9, 0.1), {"id": 1}),  # 180.2 east written as 179.8 west
    ([(179.9, -18.2), (-179.9, -18.2), (-179.9, -18.3), (179.9, -18.3)], {"id": 2}),  # crosses
    (square(179.6, -17.6, 0.1), {"id": 3}),  # plainly on the image
]
EXPECTED = {1: (slice(41, 49), slice(71, 79)), 2: (slice(71, 79), slice(41, 59)),
            3: (slice(11, 19), slice(11, 19))}
"""Where each class must be in the mask (rows, columns), away from the polygons' edges."""


def test_polygons_across_the_antimeridian_are_burnt(qgis_process_ready, tmp_path):
    image = geographic_image(tmp_path / "fiji.tif", 179.5)
    labels = polygons(tmp_path / "across.gpkg", wgs84(), ACROSS)
    status, said = build(INPUT=image, VECTORS=labels, CLASS_FIELD="id",
                         OUTPUT=tmp_path / "mask.tif")
    assert status == 0, said
    assert "outside the image" not in said and "3 features used" in said, said
    assert "2 moved by 360 degrees across the antimeridian" in said, said
    mask = gdal.Open(str(tmp_path / "mask.tif")).ReadAsArray()
    for code, window in EXPECTED.items():
        assert (mask[window] == code).all(), (code, np.unique(mask[window]))
    assert (mask > 0).sum() == pytest.approx(100 + 200 + 100, rel=0.25)


def test_the_same_polygons_on_an_image_west_of_the_antimeridian(tmp_path):
    """The image georeferenced from -180.5 to -179.5: the same places, the other numbers."""
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    image = geographic_image(tmp_path / "west.tif", -180.5)
    labels = polygons(tmp_path / "across.gpkg", wgs84(), ACROSS)
    result = build_mask(image, [VectorInput(labels)], str(tmp_path / "mask.tif"),
                        class_field="id")
    assert result.stats.outside == 0 and result.stats.used == 3
    mask = gdal.Open(str(tmp_path / "mask.tif")).ReadAsArray()
    for code, window in EXPECTED.items():
        assert (mask[window] == code).all(), (code, np.unique(mask[window]))


def test_a_raster_as_label_layer_is_refused(qgis_process_ready, scene, tmp_path):
    before = snapshot(scene)
    status, said = build(INPUT=scene / "image.tif", VECTORS=scene / "image.tif",
                         OUTPUT=tmp_path / "mask.tif")
    assert status != 0, said
    assert "is not a vector layer: labels are polygons, lines or points" in said, said
    assert not list(tmp_path.iterdir()) and snapshot(scene) == before


def test_the_feature_id_sidecar_never_replaces_a_users_file(qgis_process_ready, scene,
                                                            tmp_path):
    """``out/mask_features.tif`` of the user's own (here a copy of the image) is not replaced
    by the feature ids of ``OUTPUT=out/mask.tif``; an earlier run's own sidecar is."""
    own = tmp_path / "mask_features.tif"
    shutil.copy(scene / "image.tif", own)
    before = snapshot(tmp_path)
    parameters = dict(INPUT=scene / "image.tif", VECTORS=SAMPLE / "training_polygons.gpkg",
                      CLASS_FIELD="id", OUTPUT=tmp_path / "mask.tif")
    status, said = build(**parameters)
    assert status != 0, said
    assert f"'{own}' exists and is not a feature-id file of Build training masks" in said, said
    assert snapshot(tmp_path) == before
    own.unlink()
    for _ in range(2):  # the second run replaces its own earlier mask and sidecar
        status, said = build(**parameters)
        assert status == 0, said
    assert gdal.Open(str(own)).GetRasterBand(1).DataType == gdal.GDT_UInt32
