"""Accuracy backend: figures against hand and numpy computations, name matching, areas, errors."""
from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from osgeo import gdal
from support import NC, NC_NAMES, strata, write_class_raster

from landcoverunet.backend.assess.accuracy import assess_accuracy
from landcoverunet.backend.core.metrics import compute_metrics, confusion_counts
from landcoverunet.backend.assess.report import write_report
from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.core.errors import UserError

NAMES = NC_NAMES


def known_prediction(seed: int = 7) -> np.ndarray:
    """strata.tif with 15 % of pixels changed (seeded), a nodata strip and no 'agriculture'."""
    rng = np.random.default_rng(seed)
    prediction = strata()
    change = (rng.random(prediction.shape) < 0.15) & (prediction > 0)
    prediction[change] = rng.integers(1, 8, size=int(change.sum()))
    prediction[prediction == 2] = 3        # the map never predicts agriculture
    prediction[:, :25] = 0                 # nodata strip
    return prediction


def numpy_figures(reference: np.ndarray, prediction: np.ndarray, k: int) -> dict:
    """Independent computation: classes 1..k in both, 0 = nothing."""
    both = (reference > 0) & (prediction > 0)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (reference[both] - 1, prediction[both] - 1), 1)
    n = matrix.sum()
    tp = np.diag(matrix)
    po = tp.sum() / n
    pe = sum(matrix[i, :].sum() * matrix[:, i].sum() for i in range(k)) / n / n
    present = [i for i in range(k) if matrix[i, :].sum()]
    iou = [tp[i] / (matrix[i, :].sum() + matrix[:, i].sum() - tp[i]) for i in present]
    f1 = [2 * tp[i] / (matrix[i, :].sum() + matrix[:, i].sum()) for i in present]
    return {"matrix": matrix, "oa": po, "kappa": (po - pe) / (1 - pe), "miou": np.mean(iou),
            "mean_f1": np.mean(f1)}


@pytest.fixture(scope="module")
def prediction_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("accuracy") / "prediction.tif"
    return write_class_raster(path, known_prediction(), ClassMap.from_codes(range(1, 8), NAMES))


def test_metrics_by_hand():
    # rows = reference, columns = prediction; class 3 never in the reference, class 2 never hit
    matrix = np.array([[8, 2, 0], [3, 0, 1], [0, 0, 0]])
    m = compute_metrics(matrix)
    assert m.overall_accuracy == pytest.approx(8 / 14)
    pe = (10 * 11 + 4 * 2 + 0 * 1) / 14 ** 2
    assert m.kappa == pytest.approx((8 / 14 - pe) / (1 - pe))
    assert m.producers_accuracy == pytest.approx([0.8, 0.0, math.nan], nan_ok=True)
    assert m.users_accuracy == pytest.approx([8 / 11, 0.0, 0.0])
    assert m.f1 == pytest.approx([16 / 21, 0.0, 0.0])
    assert m.iou == pytest.approx([8 / 13, 0.0, 0.0])
    assert list(m.in_reference) == [True, True, False]
    assert m.miou == pytest.approx(8 / 13 / 2) and m.mean_f1 == pytest.approx(16 / 21 / 2)


def test_windowed_counts_equal_whole_counts():
    rng = np.random.default_rng(1)
    reference = rng.integers(-1, 5, size=(300, 200))
    prediction = rng.integers(-1, 5, size=(300, 200))
    whole = confusion_counts(reference, prediction, 5)
    blocks = sum(confusion_counts(reference[y:y + 64, x:x + 64], prediction[y:y + 64, x:x + 64], 5)
                 for y in range(0, 300, 64) for x in range(0, 200, 64))
    assert np.array_equal(whole, blocks)
    valid = (reference >= 0) & (prediction >= 0)
    assert whole.sum() == valid.sum()
    assert whole[2, 3] == ((reference == 2) & (prediction == 3)).sum()


def test_dense_reference_raster_equals_numpy(prediction_path, tmp_path):
    result = assess_accuracy(prediction_path, reference_raster=str(NC / "strata.tif"))
    expected = numpy_figures(strata(), known_prediction(), 7)
    assert np.array_equal(result.matrix, expected["matrix"])
    m = result.metrics
    assert m.overall_accuracy == pytest.approx(expected["oa"])
    assert m.kappa == pytest.approx(expected["kappa"])
    assert m.miou == pytest.approx(expected["miou"])
    assert m.mean_f1 == pytest.approx(expected["mean_f1"])
    assert result.reference_on_map_nodata == int((strata()[:, :25] > 0).sum())
    # agriculture is in the reference but never predicted: shown, counts 0 in the means
    assert m.users_accuracy[1] != m.users_accuracy[1] and m.producers_accuracy[1] == 0
    pixels = np.bincount(known_prediction().ravel(), minlength=8)[1:]
    assert np.array_equal(result.mapped_pixels, pixels)
    assert result.mapped_area_ha == pytest.approx(pixels * 28.5 * 28.5 / 10_000)
    assert any("by its original code" in line for line in result.messages)

    write_report(result, str(tmp_path / "r.html"), str(tmp_path / "r.csv"))
    rows = list(csv.reader(open(tmp_path / "r.csv", encoding="utf-8")))
    assert rows[0][2:9] == [NAMES[i] for i in range(1, 8)]
    table = np.array([[int(v) for v in row[2:9]] for row in rows[1:8]])
    assert np.array_equal(table, expected["matrix"])
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "agriculture" in page
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.html"]


def test_classes_match_by_name_not_by_id(tmp_path):
    """The same map with other ids for the same names gives the same figures."""
    shuffled = {code: 8 - code for code in range(1, 8)}          # forest -> id 3, ...
    class_map = ClassMap.from_codes([shuffled[c] for c in range(1, 8)],
                                    {shuffled[c]: NAMES[c] for c in range(1, 8)})
    path = write_class_raster(tmp_path / "shuffled.tif", known_prediction(), class_map,
                              ids=shuffled)
    mask = tmp_path / "mask.tif"
    write_class_raster(mask, strata(), ClassMap.from_codes(range(1, 8), NAMES))
    result = assess_accuracy(path, reference_raster=str(mask))
    order = [NAMES[8 - i] for i in range(1, 8)]            # the map's classes in id order
    assert [c.name for c in result.classes] == order
    expected = numpy_figures(strata(), known_prediction(), 7)["matrix"]
    index = [list(NAMES.values()).index(name) for name in order]
    assert np.array_equal(result.matrix, expected[np.ix_(index, index)])
    assert all(c.match == "name" for c in result.classes)


def test_reference_class_unknown_to_the_map_is_kept(tmp_path):
    codes = known_prediction()
    codes[codes == 7] = 5                                   # no sediment in the map at all
    six = ClassMap.from_codes(range(1, 7), {c: NAMES[c] for c in range(1, 7)})
    path = write_class_raster(tmp_path / "six.tif", codes, six)
    mask = write_class_raster(tmp_path / "mask.tif", strata(),
                              ClassMap.from_codes(range(1, 8), NAMES))
    result = assess_accuracy(path, reference_raster=mask)
    assert [c.name for c in result.classes][-1] == "sediment"
    assert result.classes[-1].map_id is None
    sediment = result.matrix[6]
    assert sediment.sum() == ((strata() == 7) & (codes > 0)).sum() and sediment[4] > 0
    assert result.metrics.producers_accuracy[6] == 0 and result.metrics.iou[6] == 0
    assert result.mapped_pixels[6] == 0
    assert any("never predicts" in line for line in result.messages)


def test_geographic_map_area_is_approximated(prediction_path, tmp_path):
    geographic = str(tmp_path / "prediction_4326.tif")
    gdal.Warp(geographic, prediction_path, dstSRS="EPSG:4326", resampleAlg="near")
    result = assess_accuracy(geographic, reference_raster=str(NC / "strata.tif"))
    projected = known_prediction()
    hectares = (projected > 0).sum() * 28.5 * 28.5 / 10_000
    assert result.mapped_area_ha.sum() == pytest.approx(hectares, rel=0.02)
    assert "geographic" in result.area_note


def test_errors(prediction_path, tmp_path):
    plain = write_class_raster(tmp_path / "plain.tif", known_prediction(), None)
    codes = assess_accuracy(plain, reference_raster=str(NC / "strata.tif"))   # codes to codes
    expected = numpy_figures(strata(), known_prediction(), 7)
    assert [c.name for c in codes.classes] == ["1", "3", "4", "5", "6", "7", "2"]   # 2: unmapped
    order = [0, 2, 3, 4, 5, 6, 1]
    assert np.array_equal(codes.matrix, expected["matrix"][np.ix_(order, order)])
    elsewhere = tmp_path / "elsewhere.tif"
    gdal.Translate(str(elsewhere), str(NC / "strata.tif"),
                   outputBounds=(700000, 300000, 700000 + 28.5 * 489, 300000 - 28.5 * 443))
    with pytest.raises(UserError, match="does not overlap"):
        assess_accuracy(prediction_path, reference_raster=str(elsewhere))
