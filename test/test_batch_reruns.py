"""Classify rasters in batch run again into the same folder: with another model, other
settings, or an input that is also an output.

Through qgis_process on real files: a map finished by another model (or with other settings) is
classified again and replaced, with a warning, never kept as if it were this model's; the same
model and settings skip it, byte for byte; an input that an output would overwrite refuses the
whole run before any work, and no file changes.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal
from support import snapshot
from fixtures_classify import SCENE
from fixtures_classify import make_test_model, read

from landcoverunet.backend.batch.resume import RUN_KEY_ITEM
from landcoverunet.backend.classify.classify_raster import classify_raster
from support import qgis_process

ALG = "landcoverunet:classifybatch"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> list[str]:
    """Two models of the scene's bands that map it differently (other random weights)."""
    image = gdal.Open(str(SCENE)).ReadAsArray().astype(np.float32)
    valid = (image > 0).all(axis=0)
    folder = tmp_path_factory.mktemp("models")
    return [make_test_model(folder / f"{name}.keras", bands=len(image), classes=7,
                            mean=[float(b[valid].mean()) for b in image],
                            std=[float(b[valid].std()) for b in image], seed=seed)
            for name, seed in (("first", 3), ("second", 11))]


def batch(*inputs: str, model: str, folder: Path, **extra) -> tuple[int, str, dict]:
    """Runs the batch through qgis_process: (exit status, what it said, its results)."""
    arguments = [f"INPUTS={path}" for path in inputs] + [
        f"MODEL={model}", "WORKERS=1", f"OUTPUT_FOLDER={folder}"]
    arguments += [f"{key}={value}" for key, value in extra.items()]
    done = qgis_process("--json", "run", ALG, "--", *arguments, timeout=600)
    said = done.stdout + done.stderr
    assert "Traceback" not in said, said
    results = {}
    if done.returncode == 0:
        results = json.loads(done.stdout[done.stdout.find("{"):])["results"]
    return done.returncode, said, results


def sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_rerun_with_another_model_replaces_the_maps(qgis_process_ready, models, tmp_path):
    image = tmp_path / "scene.tif"
    shutil.copy(SCENE, image)
    out = tmp_path / "out"
    expected = {}
    for number, model in enumerate(models):
        expected[model] = tmp_path / f"expected{number}.tif"
        classify_raster(str(image), model, str(expected[model]))
    assert not np.array_equal(read(expected[models[0]]), read(expected[models[1]]))
    result = out / "scene_classes.tif"

    status, said, results = batch(str(image), model=models[0], folder=out)
    assert status == 0 and results["CLASSIFIED"] == 1, said
    assert np.array_equal(read(result), read(expected[models[0]]))
    first = sha(result)

    status, said, results = batch(str(image), model=models[0], folder=out)  # the same again
    assert status == 0 and results["CLASSIFIED"] == 1 and "skipped" in said, said
    assert sha(result) == first

    status, said, results = batch(str(image), model=models[1], folder=out)  # another model
    assert status == 0 and results["CLASSIFIED"] == 1 and results["FAILED"] == 0, said
    assert "made by another model" in said and "replaced" in said, said
    assert np.array_equal(read(result), read(expected[models[1]]))
    second = gdal.Open(str(result)).GetMetadataItem(RUN_KEY_ITEM)

    status, said, results = batch(str(image), model=models[1], folder=out, TTA=1)  # settings
    assert status == 0 and "replaced" in said, said
    assert gdal.Open(str(result)).GetMetadataItem(RUN_KEY_ITEM) not in (None, second)
    assert not [name for name in os.listdir(out) if ".partial-" in name]


def test_an_image_named_like_a_map_is_not_taken_for_one(qgis_process_ready, models, tmp_path):
    """``out/scene_classes.tif`` is an image (5 bands) of the user's, not a map: the batch
    neither skips 'scene.tif' as "already classified" nor replaces that image."""
    image = tmp_path / "in" / "scene.tif"
    image.parent.mkdir()
    shutil.copy(SCENE, image)
    out = tmp_path / "out"
    out.mkdir()
    lookalike = out / "scene_classes.tif"
    shutil.copy(SCENE, lookalike)
    before = snapshot(tmp_path)
    status, said, _ = batch(str(image), str(lookalike), model=models[0], folder=out)
    assert status != 0, said
    assert f"The map of '{image}' would be written to '{lookalike}', which is the input" in said
    assert "already classified" not in said
    assert snapshot(tmp_path) == before
    assert gdal.Open(str(lookalike)).RasterCount == 5


def test_an_output_over_a_mosaic_source_is_refused(qgis_process_ready, models, tmp_path):
    """A VRT's source tile is an input too: no map may be written over it."""
    out = tmp_path / "out"
    out.mkdir()
    tile = out / "scene_classes.tif"
    shutil.copy(SCENE, tile)
    mosaic = tmp_path / "mosaic.vrt"
    gdal.BuildVRT(str(mosaic), [str(tile)]).FlushCache()
    image = tmp_path / "scene.tif"
    shutil.copy(SCENE, image)
    before = snapshot(tmp_path)
    status, said, _ = batch(str(image), str(mosaic), model=models[0], folder=out)
    assert status != 0, said
    assert f"would be written to '{tile}', which belongs to the input '{mosaic}'" in said, said
    assert snapshot(tmp_path) == before
