"""Crafted model files: refused with a clear message before Keras reads them, and no code runs.

Each crafted file starts from a real plugin model file (or a real Keras model) and changes what
an attacker or an accident would: a module call in config.json, a Lambda layer with a side
effect, an unknown class, a foreign network with the plugin's metadata copied in, truncated
weights, impossible metadata. The side effect is a folder that must never appear.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from qgis import processing
from qgis.core import QgsProcessingException
from fixtures_classify import make_image, make_test_model, rgb

from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.model.keras_file import METADATA_ENTRY
from landcoverunet.backend.model.opened import load_model, open_model
from landcoverunet.backend.model.keras_safety import ALLOWED_CLASSES, check_keras_archive

ALTERED = "which a Land Cover U-Net model never does: it was not made by this plugin or was altered"


@pytest.fixture(scope="module")
def good_model(tmp_path_factory) -> str:
    """A real plugin model file: 3 bands, 4 classes, random weights."""
    return make_test_model(tmp_path_factory.mktemp("safety") / "good.keras", bands=3, classes=4)


def rewrite(source: str, target: Path, change: dict) -> str:
    """A copy of a model archive with some entries replaced (name -> bytes, or None to drop)."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for name in original.namelist():
            if name in change:
                continue
            copy.writestr(name, original.read(name))
        for name, data in change.items():
            if data is not None:
                copy.writestr(name, data)
    return str(target)


def with_config(source: str, target: Path, edit) -> str:
    """A copy of a model archive whose config.json was changed by ``edit(config)``."""
    with zipfile.ZipFile(source) as archive:
        config = json.loads(archive.read("config.json"))
    edit(config)
    return rewrite(source, target, {"config.json": json.dumps(config).encode()})


def first_layer(config: dict, class_name: str) -> dict:
    return next(l for l in config["config"]["layers"] if l["class_name"] == class_name)


def module_call(good_model: str, tmp_path: Path, marker: Path) -> str:
    """The issue's attack: one config.json entry naming ``os.makedirs`` with an argument."""
    def edit(config):
        first_layer(config, "Conv2D")["config"]["kernel_initializer"] = {
            "module": "os", "class_name": "makedirs", "config": {"name": str(marker)},
            "registered_name": None}
    return with_config(good_model, tmp_path / "module_call.keras", edit)


def lambda_model(good_model: str, tmp_path: Path, marker: Path) -> str:
    """A real Keras model whose Lambda layer creates a folder, with plugin metadata copied in."""
    import keras

    inputs = keras.Input((None, None, 3))
    side_effect = keras.layers.Lambda(
        lambda x, m=str(marker): (__import__("os").makedirs(m, exist_ok=True), x)[1])(inputs)
    outputs = keras.layers.Conv2D(4, 1, activation="softmax")(side_effect)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with zipfile.ZipFile(good_model) as archive, zipfile.ZipFile(path, "a") as target:
        target.writestr(METADATA_ENTRY, archive.read(METADATA_ENTRY))
    marker.exists() and marker.rmdir()  # the lambda may have run while the model was built
    return str(path)


def foreign_model(good_model: str, tmp_path: Path) -> str:
    """Someone else's network (a Dense layer) with the plugin's metadata copied in."""
    import keras

    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Dense(4, activation="softmax")(inputs)
    path = tmp_path / "foreign.keras"
    keras.Model(inputs, outputs).save(path)
    with zipfile.ZipFile(good_model) as archive, zipfile.ZipFile(path, "a") as target:
        target.writestr(METADATA_ENTRY, archive.read(METADATA_ENTRY))
    return str(path)


def crafted_cases(good_model: str, tmp_path: Path, marker: Path) -> list[tuple[str, str]]:
    """(file, the message it must be refused with) for every kind of crafted file."""
    with zipfile.ZipFile(good_model) as archive:
        weights = archive.read("model.weights.h5")
        metadata = json.loads(archive.read(METADATA_ENTRY))

    def metadata_with(**changes) -> bytes:
        return json.dumps({**metadata, **changes}).encode()

    unknown = with_config(good_model, tmp_path / "unknown.keras", lambda c: first_layer(
        c, "Activation").update(class_name="TFSMLayer"))
    activation = with_config(good_model, tmp_path / "activation.keras", lambda c: first_layer(
        c, "Activation")["config"].update(activation="os.system"))
    ids = {"classes": [dict(c, id=300 + i) for i, c in
                       enumerate(metadata["class_map"]["classes"])]}
    return [
        (module_call(good_model, tmp_path, marker), f"contains 'os.makedirs', {ALTERED}"),
        (lambda_model(good_model, tmp_path, marker), "a Lambda layer"),
        (unknown, f"contains 'keras.layers.TFSMLayer', {ALTERED}"),
        (activation, "the activation 'os.system'"),
        (foreign_model(good_model, tmp_path), f"contains 'keras.layers.Dense', {ALTERED}"),
        (rewrite(good_model, tmp_path / "extra.keras", {"../../evil.py": b"print(1)"}),
         "the archive entry '../../evil.py'"),
        (rewrite(good_model, tmp_path / "truncated.keras",
                 {"model.weights.h5": weights[:len(weights) // 2]}),
         "could not be loaded: its network or weights are damaged or incomplete"),
        (rewrite(good_model, tmp_path / "std0.keras", {METADATA_ENTRY: metadata_with(
            std=[1.0, 0.0, 1.0])}), "a standard deviation of 0"),
        (rewrite(good_model, tmp_path / "tile0.keras", {METADATA_ENTRY: metadata_with(
            tile_size=0)}), "tile size 0"),
        (rewrite(good_model, tmp_path / "ids.keras", {METADATA_ENTRY: metadata_with(
            class_map=ids)}), "Class ids must be between 1 and 254"),
        (rewrite(good_model, tmp_path / "bands.keras", {METADATA_ENTRY: metadata_with(
            bands=[1, 2, 7])}), "bands \\[1, 2, 7\\] of a 3-band image"),
        (rewrite(good_model, tmp_path / "nan.keras", {METADATA_ENTRY: metadata_with(
            mean=[0.0, float("nan"), 0.0])}), "mean"),
        (rewrite(good_model, tmp_path / "cold.keras", {METADATA_ENTRY: metadata_with(
            temperature=0.0)}), "temperature 0.0"),
        (rewrite(good_model, tmp_path / "smooth.keras", {METADATA_ENTRY: metadata_with(
            label_smoothing=1.0)}), "label smoothing 1.0"),
    ]


def test_crafted_files_are_refused_and_run_no_code(good_model, tmp_path):
    marker = tmp_path / "side_effect"
    cases = crafted_cases(good_model, tmp_path, marker)
    for path, message in cases:
        with pytest.raises(UserError, match=message) as error:
            load_model(path)
        assert "safe_mode" not in str(error.value) and "Traceback" not in str(error.value)
        assert not marker.exists(), f"{path} ran code while it was loaded"
    model, metadata = load_model(good_model)   # the real file still loads
    assert model.output_shape[-1] == 4 and metadata.bands == [1, 2, 3]


def test_allowlist_covers_every_network_the_plugin_builds(tmp_path):
    import keras

    from landcoverunet.models.losses import PACKAGE
    from landcoverunet.backend.model.keras_safety import PLUGIN_PACKAGE
    from landcoverunet.models.ensemble import average_models
    from landcoverunet.models.unet import PRESETS, build_unet

    assert PACKAGE == PLUGIN_PACKAGE
    for name, preset in PRESETS.items():
        for policy in ("float32", "mixed_float16"):
            keras.mixed_precision.set_global_policy(policy)
            try:
                model = build_unet(4, 3, preset)
            finally:
                keras.mixed_precision.set_global_policy("float32")
            path = tmp_path / f"{name}_{policy}.keras"
            model.save(path)
            check_keras_archive(str(path))   # raises if the builder uses anything unlisted
    ensemble = average_models([build_unet(4, 3, PRESETS["small"]) for _ in range(2)])
    ensemble.save(tmp_path / "ensemble.keras")
    check_keras_archive(str(tmp_path / "ensemble.keras"))
    from landcoverunet.models.forest_network import build_forest_network

    forest = build_forest_network(4, 3)   # alone and averaged with a U-Net (choice.py)
    for name, model in (("forest", forest), ("average", average_models(
            [build_unet(4, 3, PRESETS["small"]), forest]))):
        model.save(tmp_path / f"{name}.keras")
        check_keras_archive(str(tmp_path / f"{name}.keras"))
    assert "Lambda" not in ALLOWED_CLASSES["keras.layers"]


def test_crafted_model_refused_by_classify_and_as_init_model(plugin, good_model, nc_stack,
                                                            nc_mask, tmp_path):
    marker = tmp_path / "side_effect"
    crafted = module_call(good_model, tmp_path, marker)
    image = make_image(tmp_path / "image.tif", rgb(64, 64))
    out = tmp_path / "out"
    with pytest.raises(QgsProcessingException, match=f"'os.makedirs', {ALTERED}"):
        processing.run("landcoverunet:classifyraster",
                       {"INPUT": image, "MODEL": crafted, "OUTPUT": str(out / "classes.tif")})
    with pytest.raises(QgsProcessingException, match=f"'os.makedirs', {ALTERED}"):
        processing.run("landcoverunet:trainunet", {
            "INPUT": str(nc_stack), "MASK": str(nc_mask), "INIT_MODEL": crafted,
            "OUTPUT_MODEL": str(out / "model.keras"), "EPOCHS": 1, "STEPS_PER_EPOCH": 1})
    assert not marker.exists() and not out.exists()


def test_metadata_reads_without_keras_for_good_files(good_model):
    metadata = open_model(good_model).metadata
    assert np.allclose(metadata.std, 1.0) and metadata.tile_size == 64
