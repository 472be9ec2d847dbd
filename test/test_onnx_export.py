"""Export to ONNX (``landcoverunet:exportmodel``) and classification through ONNX Runtime: the
graph against the Keras network on real tiles, the metadata read back (Deepness's keys and the
plugin's class map), the same map from both files, and no TensorFlow needed to use it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.core.errors import UserError
from landcoverunet.backend.model.opened import load_model, open_model
from landcoverunet.backend.core.normalization import inverse_std, normalise_values
from landcoverunet.backend.model.onnx_runtime import (CLASS_MAP_KEY, INPUT_SCALE, OnnxNetwork,
                                                   onnx_window, read_onnx_properties)
from landcoverunet.backend.export.onnx_file import export_onnx

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(nc_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "nc_model.onnx"
    result = export_onnx(str(nc_model), str(path))
    assert result.max_difference < 1e-3 and result.agreement >= 0.9999  # ties may flip
    return path


def test_the_graph_gives_the_keras_probabilities_on_real_tiles(nc_model, nc_stack, exported):
    keras_model, metadata = load_model(str(nc_model))
    tile = onnx_window(str(exported))
    assert tile == 512, "Classify raster's default window for a 64 px tile"
    image = gdal.Open(str(nc_stack)).ReadAsArray().transpose(1, 2, 0).astype(np.float32)
    # the scene (489 x 443 px) is smaller than the window: reflected out to it, as classification
    # pads, and seen from two corners
    padded = np.pad(image, ((0, max(0, tile - image.shape[0])),
                            (0, max(0, tile - image.shape[1])), (0, 0)), mode="reflect")
    tiles = np.stack([padded[:tile, :tile], padded[::-1, ::-1][:tile, :tile]])
    expected = np.asarray(keras_model.predict_on_batch(
        normalise_values(tiles, metadata.mean, inverse_std(metadata.std))))
    session = onnxruntime.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    graph_input = session.get_inputs()[0]
    assert graph_input.shape[1:] == [len(metadata.bands), tile, tile], "NCHW, square tiles"
    got = session.run(None, {graph_input.name: (tiles / INPUT_SCALE).transpose(0, 3, 1, 2)})[0]
    assert got.shape == (2, len(metadata.class_map["classes"]), tile, tile)
    # 1e-6 under TensorFlow; XLA's CPU kernels (JAX) differ by up to 3e-4 from ONNX Runtime
    np.testing.assert_allclose(got.transpose(0, 2, 3, 1), expected, atol=1e-3)
    assert (got.argmax(axis=1) == expected.argmax(axis=-1)).mean() >= 0.999
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_the_metadata_is_read_back(nc_model, exported):
    properties = read_onnx_properties(str(exported))
    metadata = open_model(str(nc_model)).metadata
    names = [c["name"] for c in metadata.class_map["classes"]]
    assert json.loads(properties["model_type"]) == "Segmentor"
    assert json.loads(properties["class_names"]) == {str(i): n for i, n in enumerate(names)}
    assert json.loads(properties["tiles_size"]) == onnx_window(str(exported))
    assert 0 < json.loads(properties["tiles_overlap"]) < 50
    assert json.loads(properties["resolution"]) == pytest.approx(2850), "28.5 m (EPSG:32119)"
    assert json.loads(properties[CLASS_MAP_KEY]) == metadata.class_map
    assert open_model(str(exported)).metadata == metadata, "the plugin's own metadata, whole"


def test_an_onnx_model_classifies_like_the_keras_model(nc_model, nc_stack, exported, tmp_path):
    from_keras = classify_raster(str(nc_stack), str(nc_model), str(tmp_path / "keras.tif"))
    from_onnx = classify_raster(str(nc_stack), str(exported), str(tmp_path / "onnx.tif"),
                                tta="flips")
    flips = classify_raster(str(nc_stack), str(nc_model), str(tmp_path / "keras_flips.tif"),
                            tta="flips")
    plain = classify_raster(str(nc_stack), str(exported), str(tmp_path / "onnx_plain.tif"))
    read = {name: gdal.Open(str(tmp_path / name)).ReadAsArray()
            for name in ("keras.tif", "onnx.tif", "keras_flips.tif", "onnx_plain.tif")}
    assert (read["keras.tif"] == read["onnx_plain.tif"]).mean() >= 0.999
    assert (read["keras_flips.tif"] == read["onnx.tif"]).mean() >= 0.999
    assert from_onnx.pixels_per_class.keys() == from_keras.pixels_per_class.keys()
    assert plain.window == from_keras.window, "the default windows of the .keras file"
    names = []
    for name in ("onnx.tif", "keras.tif"):
        dataset = gdal.Open(str(tmp_path / name))
        band = dataset.GetRasterBand(1)
        band.GetColorTable()  # GDAL 3.6 reads the category names only after another property
        names.append((band.GetCategoryNames(), band.GetColorTable().GetCount()))
        del band, dataset
    assert names[0] == names[1] and names[0][0]
    assert flips.pixels_per_class  # both TTA runs classified every class id they found


def test_an_onnx_model_classifies_without_tensorflow_or_keras(nc_stack, exported, tmp_path):
    """The done-when of issue 14: the exported file needs only ONNX Runtime."""
    script = (
        "import sys\n"
        "for name in ('tensorflow', 'keras', 'jax', 'torch'):\n"
        "    sys.modules[name] = None  # any import of them fails\n"
        "from landcoverunet.backend.classify.classify_raster import classify_raster\n"
        f"result = classify_raster({str(nc_stack)!r}, {str(exported)!r}, "
        f"{str(tmp_path / 'map.tif')!r})\n"
        "print(sum(result.pixels_per_class.values()))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=os.environ, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    classified = gdal.Open(str(tmp_path / "map.tif")).ReadAsArray()
    assert int(done.stdout.split()[-1]) == int((classified > 0).sum()) > 0


def test_refusals(nc_model, exported, tmp_path):
    with pytest.raises(UserError, match=r"\.onnx"):
        export_onnx(str(nc_model), str(tmp_path / "model.keras"))
    with pytest.raises(UserError, match="ONNX file already"):
        export_onnx(str(exported), str(tmp_path / "again.onnx"))
    foreign = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "foreign",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])]),
        opset_imports=[onnx.helper.make_opsetid("", 13)])
    foreign.ir_version = 7
    onnx.save(foreign, str(tmp_path / "foreign.onnx"))
    with pytest.raises(UserError, match="not one exported by Land Cover U-Net"):
        open_model(str(tmp_path / "foreign.onnx")).metadata
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(UserError, match="could not be opened"):
        open_model(str(tmp_path / "broken.onnx")).metadata
    from landcoverunet.backend.training.inputs import check_init_model

    with pytest.raises(UserError, match="cannot be trained further"):
        check_init_model(str(exported), None, False)


def test_a_layer_without_translation_is_refused_by_name():
    import keras

    from landcoverunet.models.onnx_export import UnsupportedLayer, to_onnx

    inputs = keras.Input((None, None, 3))
    dilated = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=2, name="dilated")(inputs)
    model = keras.Model(inputs, keras.layers.Activation("softmax")(dilated))
    with pytest.raises(UnsupportedLayer, match="'dilated'"):
        to_onnx(model, [0.0] * 3, [1.0] * 3, 16)


def test_every_preset_and_an_ensemble_export_exactly():
    """The exporter translates every network 'Train U-Net' can write."""
    from landcoverunet.models.ensemble import average_models
    from landcoverunet.models.onnx_export import to_onnx
    from landcoverunet.models.presets import PRESETS
    from landcoverunet.models.unet import build_unet

    rng = np.random.default_rng(1)

    def trained_like(model):
        for variable in model.weights:
            value = rng.normal(0, 0.1, variable.shape)
            if "variance" in variable.path:
                value = np.abs(value) + 0.5
            variable.assign(value.astype(np.float32))
        return model

    networks = [trained_like(build_unet(4, 3, config)) for config in PRESETS.values()]
    networks.append(average_models([networks[0], trained_like(build_unet(4, 3,
                                                                         PRESETS["small"]))]))
    mean, scale = [100.0, 50.0, 20.0, 10.0], [0.01, 0.02, 0.05, 0.1]
    raw = rng.uniform(0, 255, (2, 64, 64, 4)).astype(np.float32)
    from landcoverunet.backend.model.onnx_safety import check_onnx_bytes

    for network in networks:
        graph = to_onnx(network, mean, scale, 64)
        check_onnx_bytes(graph.SerializeToString(), network.name)  # the allowlist covers it
        session = onnxruntime.InferenceSession(graph.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        got = session.run(None, {"image": (raw / 255).transpose(0, 3, 1, 2)})[0]
        expected = np.asarray(network.predict_on_batch(normalise_values(raw, mean,
                                                                        np.float32(scale))))
        np.testing.assert_allclose(got.transpose(0, 2, 3, 1), expected, atol=1e-4,
                                   err_msg=network.name)


def test_an_onnx_network_pads_a_small_window(exported):
    network = OnnxNetwork(str(exported))
    raw = np.random.default_rng(0).uniform(0, 200, (1, network.size - 8, network.size - 8,
                                                    network.input_shape[-1]))
    assert network(raw).shape == (1, network.size - 8, network.size - 8,
                                  network.output_shape[-1])
    with pytest.raises(UserError, match="at most"):
        network(np.zeros((1, network.size + 8, network.size, network.input_shape[-1])))


def test_export_and_classify_the_sample_through_qgis_process(qgis_process_ready, tmp_path):
    """The done-when of issue 14: an exported model classifies the bundled sample through ONNX
    Runtime with the same map as its .keras file (a model of random weights on the sample's
    bands: a speckled map, where any difference would show)."""
    from fixtures_classify import make_test_model

    sample = Path(__file__).resolve().parent.parent / "resources" / "sample" / \
        "nc_landsat7_2000.tif"
    image = gdal.Open(str(sample)).ReadAsArray().astype(np.float32)
    valid = (image > 0).all(axis=0)
    model = make_test_model(tmp_path / "sample.keras", bands=len(image), classes=5, tile=64,
                            mean=[float(b[valid].mean()) for b in image],
                            std=[float(b[valid].std()) for b in image], seed=4)
    exported = tmp_path / "model.onnx"
    answer = qgis_process_ready("landcoverunet:exportmodel",
                                {"MODEL": model, "OUTPUT": str(exported)})
    assert answer["results"]["OUTPUT"] == str(exported) and exported.is_file()
    answer = qgis_process_ready("landcoverunet:classifyraster", {
        "INPUT": str(sample), "MODEL": str(exported), "OUTPUT": str(tmp_path / "onnx.tif")})
    assert answer["results"]["CLASS_COUNT"] == 5
    classify_raster(str(sample), model, str(tmp_path / "keras.tif"))
    maps = [gdal.Open(str(tmp_path / name)).ReadAsArray() for name in ("onnx.tif", "keras.tif")]
    assert (maps[0] > 0).sum() > 150_000
    assert (maps[0] == maps[1]).mean() >= 0.999


def test_an_onnx_model_classifies_a_mosaic_in_batch_like_one_process(tmp_path):
    """classifybatch's workers load the exported file (ONNX Runtime) and the stitched map
    equals the one-process map."""
    from fixtures_classify import SCENE
    from fixtures_classify import make_test_model

    from landcoverunet.backend.batch.classify_batch import BatchSettings, classify_batch
    from landcoverunet.backend.core.progress import ConsoleProgress

    image = gdal.Open(str(SCENE)).ReadAsArray().astype(np.float32)
    model = make_test_model(tmp_path / "scene.keras", bands=len(image), classes=4, tile=64,
                            mean=image.mean(axis=(1, 2)), std=image.std(axis=(1, 2)), seed=5)
    exported = str(tmp_path / "scene.onnx")
    export_onnx(model, exported)
    tiles = []
    for y, h in ((0, 200), (200, 243)):
        tiles.append(str(tmp_path / f"tile_{y}.tif"))
        gdal.Translate(tiles[-1], str(SCENE), srcWin=[0, y, 489, h])
    mosaic = str(tmp_path / "mosaic.vrt")
    gdal.BuildVRT(mosaic, tiles).FlushCache()
    classify_raster(mosaic, exported, str(tmp_path / "single.tif"))
    result = classify_batch([mosaic], exported, str(tmp_path / "batch"),
                            BatchSettings(block_size=200, workers=2),
                            ConsoleProgress(quiet=True))
    assert not result.failed, result.failed
    maps = [gdal.Open(str(path)).ReadAsArray()
            for path in (tmp_path / "single.tif", result.outputs[mosaic])]
    assert (maps[0] > 0).sum() > 150_000 and np.array_equal(maps[0], maps[1])
