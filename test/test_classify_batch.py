"""Classify rasters in batch through Processing and qgis_process: outputs per input, the bad
input named, clear errors for an unreachable scheduler and when nothing could be classified."""
from __future__ import annotations

import json

import numpy as np
import pytest
from osgeo import gdal
from qgis import processing
from qgis.core import QgsProcessingException
from support import qgis_process
from fixtures_classify import SCENE, make_image, read, rgb

from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.core.class_map import ClassMap

ALG = "landcoverunet:classifybatch"


@pytest.fixture(scope="module")
def two_scenes(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("scenes")
    paths = [str(folder / "west.tif"), str(folder / "east.tif")]
    gdal.Translate(paths[0], str(SCENE), srcWin=[0, 0, 200, 160])
    gdal.Translate(paths[1], str(SCENE), srcWin=[250, 200, 180, 150])
    return paths


def test_batch_through_qgis_process(qgis_process_ready, scene_model, two_scenes, tmp_path):
    """Local workers start from qgis_process (whose executable is not Python) and finish."""
    bad = make_image(tmp_path / "rgb.tif", rgb(30, 30))
    done = qgis_process("--json", "run", ALG, "--", f"INPUTS={two_scenes[0]}", f"INPUTS={bad}",
                        f"MODEL={scene_model}", "WORKERS=1", "MIN_MAPPING_UNIT=0.5",
                        f"OUTPUT_FOLDER={tmp_path / 'out'}", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "'rgb.tif' failed" in done.stdout + done.stderr
    results = json.loads(done.stdout[done.stdout.find("{"):])["results"]
    assert results["CLASSIFIED"] == 1 and results["FAILED"] == 1
    expected = tmp_path / "expected.tif"
    classify_raster(two_scenes[0], scene_model, str(expected), min_mapping_unit=0.5)
    assert np.array_equal(read(tmp_path / "out" / "west_classes.tif"), read(expected))
    assert ClassMap.read_from_raster(str(tmp_path / "out" / "west_classes.tif")) is not None


def test_batch_through_processing_with_polygons(plugin, scene_model, two_scenes, tmp_path):
    result = processing.run(ALG, {"INPUTS": two_scenes, "MODEL": scene_model, "WORKERS": 2,
                                  "VECTORS": True, "OUTPUT_FOLDER": str(tmp_path)})
    assert result["CLASSIFIED"] == 2 and result["FAILED"] == 0
    for name in ("west", "east"):
        assert (tmp_path / f"{name}_classes.tif").exists()
        assert (tmp_path / f"{name}_classes.gpkg").exists()


def test_nothing_classified_is_an_error_naming_the_image(plugin, scene_model, tmp_path):
    bad = make_image(tmp_path / "rgb.tif", rgb(30, 30))
    with pytest.raises(QgsProcessingException, match="No image was classified. 'rgb.tif'.*bands"):
        processing.run(ALG, {"INPUTS": [bad], "MODEL": scene_model,
                             "OUTPUT_FOLDER": str(tmp_path / "out")})


def test_an_unreachable_scheduler_is_a_clear_error(plugin, scene_model, two_scenes, tmp_path):
    with pytest.raises(QgsProcessingException, match="Cannot reach the dask scheduler"):
        processing.run(ALG, {"INPUTS": two_scenes[:1], "MODEL": scene_model,
                             "SCHEDULER": "tcp://127.0.0.1:9",
                             "OUTPUT_FOLDER": str(tmp_path / "out")})
