"""A model file trained under one Keras backend classifies under another with the same classes
(issue 14): TensorFlow and JAX here, each way, on a real scene. PyTorch is not installed by the
test command (docs/backends.md)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from osgeo import gdal

from landcoverunet.backend.classify.classify_raster import classify_raster

OTHER = {"tensorflow": "jax", "jax": "tensorflow"}


def read(path) -> np.ndarray:
    dataset = gdal.Open(str(path))
    return dataset.ReadAsArray()


def test_models_trained_under_one_backend_classify_under_another(nc_model, nc_stack, nc_mask,
                                                                 tmp_path):
    import keras

    here = keras.backend.backend()
    other = OTHER.get(here, "tensorflow")
    # in a process of the other backend: train a model there, classify both models there
    script = (
        "import json, sys\n"
        "import keras\n"
        "from landcoverunet.backend.classify.classify_raster import classify_raster\n"
        "from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet\n"
        "image, mask, ours, folder = sys.argv[1:5]\n"
        "train_unet(TrainingConfig(images=[image], masks=[mask], output_model=folder + "
        "'/theirs.keras', tile_size=64, batch_size=4, epochs=2, steps_per_epoch=4, patience=3, "
        "seed=2))\n"
        "classify_raster(image, ours, folder + '/ours_there.tif')\n"
        "classify_raster(image, folder + '/theirs.keras', folder + '/theirs_there.tif')\n"
        "print(json.dumps(keras.backend.backend()))\n")
    done = subprocess.run(
        [sys.executable, "-c", script, str(nc_stack), str(nc_mask), str(nc_model),
         str(tmp_path)], capture_output=True, text=True, timeout=900,
        env={**os.environ, "KERAS_BACKEND": other})
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == other
    classify_raster(str(nc_stack), str(nc_model), str(tmp_path / "ours_here.tif"))
    classify_raster(str(nc_stack), str(tmp_path / "theirs.keras"),
                    str(tmp_path / "theirs_here.tif"))
    for model in ("ours", "theirs"):
        here_map, there_map = (read(tmp_path / f"{model}_{where}.tif")
                               for where in ("here", "there"))
        assert (here_map > 0).sum() > 100_000
        agreement = (here_map == there_map).mean()
        assert agreement >= 0.999, f"{model} model: {agreement:.4%} of pixels agree"
