"""Calibration (core/calibration.py, training/calibration.py): undoing label smoothing gives
back the labels' units, a temperature undoes a known over-confidence, the calibration error
measures both, and classification applies the file's calibration to the confidence but never
to the classes."""
from __future__ import annotations

import numpy as np
import pytest
from support import NC
from fixtures_classify import make_image, make_test_model, read, rgb

from landcoverunet.backend.core.calibration import (apply_temperature, calibrate_probabilities,
                                                    fit_temperature, reliability,
                                                    smooth_labels, undo_label_smoothing)
from landcoverunet.backend.training.calibration import HeldOutSample
from landcoverunet.backend.training.config import LABEL_SMOOTHING


def overconfident(pixels: int = 20000, classes: int = 4, seed: int = 0):
    """Labels drawn from calibrated probabilities, then the probabilities sharpened as a
    softmax of logits times 3 would be: (sharpened, calibrated, labels)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.0, (pixels, classes))
    calibrated = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.array([rng.choice(classes, p=p) for p in calibrated])
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(-1, keepdims=True)
    return sharp.astype(np.float32), calibrated.astype(np.float32), labels


def test_the_temperature_undoes_a_known_sharpening_and_lowers_the_error():
    sharp, calibrated, labels = overconfident()
    temperature = fit_temperature(sharp, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    before, after = reliability(sharp, labels).ece, reliability(
        apply_temperature(sharp, temperature), labels).ece
    assert before > 0.1 and after < 0.02
    assert after == pytest.approx(reliability(calibrated, labels).ece, abs=0.01)


def test_temperature_keeps_the_chosen_class_and_sums():
    sharp, _, _ = overconfident(500)
    for temperature in (0.3, 1.0, 2.5):
        scaled = apply_temperature(sharp, temperature)
        assert (scaled.argmax(-1) == sharp.argmax(-1)).all()
        assert scaled.sum(-1) == pytest.approx(np.ones(len(scaled)), abs=1e-5)


def test_undoing_label_smoothing_gives_back_the_labels_and_keeps_the_classes():
    """A network trained on labels smoothed by s at best outputs (1 - s) y + s / K: undone,
    that is the label itself; any output keeps its likeliest class and sums to 1."""
    classes, smoothing = 5, 0.1
    labels = np.arange(classes)
    best = smooth_labels(np.eye(classes), smoothing)
    assert best == pytest.approx((1 - smoothing) * np.eye(classes) + smoothing / classes)
    assert undo_label_smoothing(best, smoothing) == pytest.approx(np.eye(classes)[labels],
                                                                  abs=1e-5)
    assert reliability(best, labels).ece == pytest.approx(1 - best.max(), abs=1e-6)
    assert reliability(undo_label_smoothing(best, smoothing), labels).ece < 1e-5
    sharp, _, _ = overconfident(500)
    soft = apply_temperature(sharp, 4.0)
    for smoothing in (0.0, 0.1, 0.3):
        undone = undo_label_smoothing(soft, smoothing)
        assert (undone.argmax(-1) == soft.argmax(-1)).all()
        assert undone.sum(-1) == pytest.approx(np.ones(len(undone)), abs=1e-5)
    assert undo_label_smoothing(soft, 0.0) is soft


def test_a_perfect_and_a_wrong_model_have_the_errors_they_should():
    labels = np.array([0, 1, 2, 1])
    sure = np.eye(3, dtype=np.float32)[labels]
    assert reliability(sure, labels).ece == 0.0
    assert reliability(sure, (labels + 1) % 3).ece == 1.0


def test_the_held_out_sample_is_read_back_batch_by_batch():
    labels = np.zeros((5, 4, 4), np.uint8)
    labels[1, 2, 3], labels[3, 0, 0], labels[4, 3, 3] = 2, 1, 3
    sample = HeldOutSample.of(labels, seed=1)
    assert sample.labels.tolist() == [1, 0, 2]
    probabilities = np.random.default_rng(0).random((5, 4, 4, 3)).astype(np.float32)
    rows = np.concatenate([sample.take(i, probabilities[i:i + 2]) for i in range(0, 5, 2)])
    assert rows.tolist() == probabilities[[1, 3, 4], [2, 0, 3], [3, 0, 3]].tolist()


def test_classification_applies_the_calibration_to_confidence_only(tmp_path):
    import dataclasses

    from landcoverunet.backend.classify.classify_raster import classify_raster
    from landcoverunet.backend.model.opened import load_model
    from landcoverunet.backend.model.keras_file import save_model

    image = make_image(tmp_path / "image.tif", rgb(40, 40, seed=2))
    plain = make_test_model(tmp_path / "plain.keras", bands=3, classes=4, mean=[100] * 3,
                            std=[50] * 3)
    network, metadata = load_model(plain)
    warm = str(tmp_path / "warm.keras")
    save_model(network, warm, dataclasses.replace(metadata, temperature=2.0,
                                                  label_smoothing=0.1))
    for model in (plain, warm):
        classify_raster(image, model, str(tmp_path / f"{model[-9:-6]}.tif"),
                        probabilities_path=str(tmp_path / f"{model[-9:-6]}_p.tif"))
    assert (read(tmp_path / "ain.tif") == read(tmp_path / "arm.tif")).all()
    before, after = read(tmp_path / "ain_p.tif"), read(tmp_path / "arm_p.tif")
    assert after == pytest.approx(calibrate_probabilities(before, 0.1, 2.0, axis=0), abs=1e-5)
    assert not after == pytest.approx(apply_temperature(before, 2.0, axis=0), abs=1e-3)


def test_a_temperature_fitted_on_part_of_a_real_scene_lowers_the_error_on_the_rest(
        nc_stack, nc_model, nc_mask, tmp_path):
    """The NC scene (a crop of the real Landsat scene), the strata reference outside every
    training polygon: a temperature fitted on its western half lowers the calibration error on
    its eastern half (the core of temperature scaling, on real probabilities; training no
    longer fits one: on polygons no run saw, one fitted on the folds lost badly,
    training/calibration.py)."""
    from landcoverunet.backend.classify.classify_raster import classify_raster
    from landcoverunet.backend.model.opened import open_model

    metadata = open_model(str(nc_model)).metadata
    assert metadata.temperature == 1.0 and metadata.label_smoothing in (0.0, LABEL_SMOOTHING)
    classify_raster(str(nc_stack), str(nc_model), str(tmp_path / "c.tif"),
                    probabilities_path=str(tmp_path / "p.tif"))
    probabilities = read(tmp_path / "p.tif")
    truth = read(NC / "strata.tif")
    codes = [int(c["code"]) for c in metadata.class_map["classes"]]
    unseen = (read(nc_mask) == 0) & np.isin(truth, codes) & (probabilities >= 0).all(0)
    west = np.zeros_like(unseen)
    west[:, :unseen.shape[1] // 2] = True
    halves = []
    for part in (unseen & west, unseen & ~west):
        halves.append((np.moveaxis(probabilities[:, part], 0, -1),
                       np.searchsorted(codes, truth[part].astype(int))))
    temperature = fit_temperature(*halves[0])
    found, labels = halves[1]
    assert temperature != pytest.approx(1.0, abs=0.05)
    assert reliability(apply_temperature(found, temperature), labels).ece < \
        reliability(found, labels).ece
