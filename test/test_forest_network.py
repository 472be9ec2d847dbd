"""The teacher forest distilled into a per-pixel network (``models/forest_network.py``,
``backend/training/forest_student.py``): its fixed features, its head, distillation on a real
scene, and that it saves, loads and exports like the U-Net."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from landcoverunet.backend.core.progress import ConsoleProgress
from landcoverunet.models.forest_network import (build_forest_network, dense_head,
                                                 feature_model, field_radius, load_head)


def test_the_fixed_layers_compute_window_means_and_spreads():
    x = np.random.default_rng(0).normal(size=(1, 40, 48, 3)).astype(np.float32)
    network = build_forest_network(3, 4)
    features = np.asarray(feature_model(network).predict_on_batch(x))[0]
    assert features.shape == (40, 48, 3 * 5)
    inner = (slice(field_radius(), -field_radius()),) * 2  # away from the zero padding
    np.testing.assert_allclose(features[..., :3], x[0], atol=1e-6)
    for k, size in enumerate((3, 7)):
        mean = uniform_filter(x[0], (size, size, 1), mode="constant")
        spread = uniform_filter(np.abs(x[0] - mean), (size, size, 1), mode="constant")
        np.testing.assert_allclose(features[..., 3 + 6 * k:6 + 6 * k][inner], mean[inner],
                                   atol=1e-5)
        np.testing.assert_allclose(features[..., 6 + 6 * k:9 + 6 * k][inner], spread[inner],
                                   atol=1e-5)
    assert all(not network.get_layer(n).trainable for n in ("mean3", "deviation7", "spread7"))


def test_the_dense_head_trains_the_networks_one_by_one_layers():
    network = build_forest_network(3, 4)
    head = dense_head(network)
    rng = np.random.default_rng(1)
    for layer in head.layers:  # as if trained
        layer.set_weights([rng.normal(size=w.shape).astype(np.float32)
                           if w.ndim > 1 else np.abs(rng.normal(size=w.shape)).astype(np.float32)
                           for w in layer.get_weights()])
    load_head(network, head)
    x = rng.normal(size=(1, 16, 16, 3)).astype(np.float32)
    features = np.asarray(feature_model(network).predict_on_batch(x)).reshape(-1, 15)
    np.testing.assert_allclose(np.asarray(network.predict_on_batch(x)).reshape(-1, 4),
                               np.asarray(head.predict_on_batch(features)), atol=1e-5)


def _scene(height: int = 96, width: int = 96):
    """A scene of three spectral classes in vertical stripes, labelled in a few squares, with
    pseudo-labels (a perfect teacher) on the other pixels: what ``teaching.teach`` leaves."""
    rng = np.random.default_rng(2)
    truth = (np.arange(width) * 3 // width)[None].repeat(height, 0)
    means = np.array([[0, 1], [1, -1], [-1, 0]], np.float32)
    pixels = means[truth] + rng.normal(0, 0.2, (height, width, 2)).astype(np.float32)
    labels = np.zeros((height, width), np.uint8)
    for x in (5, 40, 75):
        labels[10:16, x:x + 6] = truth[10:16, x:x + 6] + 1
    soft = np.zeros((height, width, 4), np.float16)
    unlabelled = labels == 0
    soft[unlabelled, truth[unlabelled]] = 1.0
    soft[unlabelled, 3] = 1.0
    valid = np.ones((height, width), bool)
    reader = SimpleNamespace(in_memory=True, soft=soft, bands=[1, 2],
                             whole=(pixels, labels, valid, np.zeros_like(labels)))
    return reader, truth


def test_distillation_follows_the_teacher_and_the_network_saves_safely(tmp_path):
    import keras

    from landcoverunet.backend.model.keras_safety import check_keras_archive
    from landcoverunet.backend.training.forest_student import distil_forest

    reader, truth = _scene()
    progress = ConsoleProgress(quiet=True)
    network = distil_forest([reader], 3, seed=0, progress=progress)
    predicted = np.asarray(network.predict_on_batch(reader.whole[0][None]))[0].argmax(-1)
    assert (predicted == truth).mean() > 0.95
    assert any(m.startswith("Forest network:") for m in progress.messages)
    path = tmp_path / "forest.keras"
    network.save(path)
    check_keras_archive(str(path))
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded.predict_on_batch(reader.whole[0][None]),
                               network.predict_on_batch(reader.whole[0][None]), atol=1e-6)
    assert distil_forest([SimpleNamespace(in_memory=True, soft=None)], 3, 0, progress) is None


def test_the_forest_network_exports_to_onnx():
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from landcoverunet.models.ensemble import average_models
    from landcoverunet.models.onnx_export import to_onnx
    from landcoverunet.models.unet import PRESETS, build_unet

    rng = np.random.default_rng(3)
    network = build_forest_network(3, 4)
    head = dense_head(network)
    for layer in head.layers:
        layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) if w.ndim > 1
                           else np.abs(rng.normal(1, 0.1, w.shape)).astype(np.float32)
                           for w in layer.get_weights()])
    load_head(network, head)
    for model in (network, average_models([build_unet(3, 4, PRESETS["small"]), network])):
        graph = to_onnx(model, [0.0] * 3, [1.0] * 3, 32, input_scale=1.0)
        session = onnxruntime.InferenceSession(graph.SerializeToString(),
                                               providers=["CPUExecutionProvider"])
        x = rng.normal(size=(1, 32, 32, 3)).astype(np.float32)
        got = session.run(None, {session.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})[0]
        np.testing.assert_allclose(got.transpose(0, 2, 3, 1), model.predict_on_batch(x),
                                   atol=1e-4)
