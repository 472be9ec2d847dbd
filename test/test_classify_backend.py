"""Classification backend: window plan, blending without seams, nodata, errors, cancel, shapes.

Models here are tiny (depth 3, 8 filters): random weights where only shapes and bookkeeping
matter, and one trained for a few seconds on the NC scene where predictions must make sense.
"""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from osgeo import gdal
from support import NC

from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.classify.outputs import FLOAT_NODATA
from landcoverunet.backend.core.errors import Cancelled, UserError
from landcoverunet.backend.model.opened import load_model, open_model
from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.core.progress import ConsoleProgress
from landcoverunet.backend.classify.tiling import (axis_weights, interiors, overlap_zones, plan_axis,
                                         weight_sum)

from fixtures_classify import TILE, make_image, make_test_model, read, rgb


# ----- window plan and weights ---------------------------------------------------------------
@pytest.mark.parametrize("length", [1, 7, 64, 65, 200, 489, 1000, 4099])
def test_plan_covers_axis_with_overlap_and_valid_sizes(length):
    windows = plan_axis(length, window=192, overlap=24, multiple=8, minimum=64)
    assert windows[0].start == 0 and windows[-1].stop == length
    for window in windows:
        assert window.size % 8 == 0 and window.size <= 192 and window.valid <= window.size
    if len(windows) == 1:
        assert windows[0].size >= min(192, max(64, length))
    else:
        assert all(w.size == 192 for w in windows[:-1]) and windows[-1].size >= 64
        assert all(w.valid == w.size for w in windows)
    for left, right in zip(windows, windows[1:]):
        assert left.stop - right.start >= 24
    weights = axis_weights(windows)
    total = weight_sum(length, windows, weights)
    assert (total > 0).all()
    assert np.allclose(total, 1, atol=0.01) or len(windows) == 1  # ramps add up to 1


def test_plan_does_not_waste_much_on_large_axes():
    for length in (3690, 4096, 20000):
        windows = plan_axis(length, window=768, overlap=32, multiple=16, minimum=256)
        assert sum(w.size for w in windows) <= 1.06 * length


@pytest.mark.parametrize("length, window, overlap", [(1000, 192, 24), (113, 64, 16), (64, 64, 8),
                                                     (4096, 512, 8)])
def test_interiors_are_covered_once_with_weight_one(length, window, overlap):
    """The fast path takes interiors as they are: exactly one window there, weight exactly 1."""
    windows = plan_axis(length, window=window, overlap=overlap, multiple=8, minimum=64)
    coverage = np.zeros(length, int)
    for w in windows:
        coverage[w.start:w.stop] += 1
    zones = np.zeros(length, bool)
    for start, stop in overlap_zones(windows):
        zones[start:stop] = True
    assert np.array_equal(zones, coverage > 1)
    for w, weight, (start, stop) in zip(windows, axis_weights(windows), interiors(windows)):
        inside = np.zeros(w.valid, bool)
        inside[start:stop] = True
        assert (weight[inside] == 1.0).all() and (weight[~inside] < 1.0).all()
        assert (coverage[w.start:w.stop][inside] == 1).all()
        assert (coverage[w.start:w.stop][~inside] > 1).all()
    if length == 113:
        assert max(coverage) == 3, "the tail window reaches back past its neighbour"


# ----- blending ------------------------------------------------------------------------------
def test_tiled_run_matches_one_window_run(nc_stack, nc_trained, tmp_path):
    """Seams: many small windows against one window over the same 232 x 200 image."""
    crop = str(tmp_path / "crop.vrt")
    gdal.Translate(crop, str(nc_stack), srcWin=[120, 100, 232, 200], format="VRT")
    model = open_model(nc_trained)  # loaded once, for both runs
    runs = {}
    for name, window in (("tiled", 64), ("single", 256)):
        result = classify_raster(crop, model, str(tmp_path / f"{name}.tif"),
                                 probabilities_path=str(tmp_path / f"{name}_p.tif"),
                                 window_size=window, overlap=16)
        runs[name] = read(result.path), read(result.probabilities_path)
    assert result.windows == 1
    (tiled, tiled_p), (single, single_p) = runs["tiled"], runs["single"]
    valid = single > 0
    assert np.array_equal(valid, tiled > 0)
    assert len(np.unique(single[valid])) >= 2, "the test model should see several classes"
    disagree = (tiled != single) & valid
    assert disagree.sum() <= 0.02 * valid.sum()
    assert np.abs(tiled_p - single_p)[:, valid].mean() < 0.01
    # no seam: the tiled probabilities change across window borders no more than elsewhere
    jumps = np.abs(np.diff(tiled_p, axis=2))[:, valid[:, 1:] & valid[:, :-1]]
    reference = np.abs(np.diff(single_p, axis=2))[:, valid[:, 1:] & valid[:, :-1]]
    assert jumps.mean() < 1.2 * reference.mean()


def holes_image(path, dtype: str, tiled: bool) -> tuple[str, np.ndarray]:
    """A 113 x 150 image (three windows cover some rows) with nodata and NaN holes."""
    data = rgb(113, 150, seed=5).astype(dtype)
    nodata = 0 if dtype == "uint8" else -9999
    data[:, 10:30, 20:50] = nodata
    if dtype == "float32":
        data[1, 60:70, 100:120] = np.nan
    image = make_image(path, data, nodata=nodata)
    if tiled:
        image = gdal.Translate(str(path).replace(".tif", "_tiled.tif"), image, creationOptions=[
            "TILED=YES", "BLOCKXSIZE=32", "BLOCKYSIZE=32"]).GetDescription()
    holes = (data == nodata).any(0) | np.isnan(data).any(0)
    return image, holes


@pytest.mark.parametrize("dtype, tiled, batch", [("float32", False, 1), ("uint8", True, 3)])
def test_classes_only_matches_the_full_blend(random_model, tmp_path, dtype, tiled, batch):
    """Without confidence or probabilities, interiors skip the blend: the classes are the same."""
    image, holes = holes_image(tmp_path / "holes.tif", dtype, tiled)
    model = open_model(random_model)
    fast = classify_raster(image, model, str(tmp_path / "fast.tif"), window_size=64,
                           overlap=16, batch_size=batch)
    full = classify_raster(image, model, str(tmp_path / "full.tif"), window_size=64,
                           overlap=16, probabilities_path=str(tmp_path / "p.tif"))
    classes = read(fast.path)
    assert fast.windows == full.windows >= 9
    assert np.array_equal(classes, read(full.path))
    assert (classes[holes] == 0).all() and (classes[~holes] > 0).all()
    assert fast.pixels_per_class == full.pixels_per_class and fast.nodata_pixels == holes.sum()
    if tiled:  # the reader keeps decoded rows and columns for the next windows: same pixels
        x0, y0 = 630534.0 + 3 * 28.5, 228114.0 - 110 * 28.5  # columns 3.., rows 5..110
        extent = (x0 + 1.0, y0 + 1.0, x0 + 137 * 28.5 - 1.0, y0 + 105 * 28.5 - 1.0)
        for source, name in ((image, "tiled"), (str(tmp_path / "holes.tif"), "striped")):
            classify_raster(source, model, str(tmp_path / f"{name}.tif"), window_size=64,
                            overlap=16)
            classify_raster(source, model, str(tmp_path / f"{name}_part.tif"),
                            window_size=64, overlap=16, extent=extent)
        assert np.array_equal(classes, read(tmp_path / "striped.tif"))
        assert np.array_equal(read(tmp_path / "tiled_part.tif"),
                              read(tmp_path / "striped_part.tif"))


# ----- nodata, outputs -----------------------------------------------------------------------
def test_nodata_and_nan_pixels_come_out_as_nodata(random_model, tmp_path):
    data = rgb(90, 130)
    data[:, 10:30, 20:50] = -9999
    data[1, 60:70, 100:120] = np.nan
    image = make_image(tmp_path / "holes.tif", data, nodata=-9999)
    out = tmp_path / "out"
    result = classify_raster(image, random_model, str(out / "classes.tif"),
                             confidence_path=str(out / "confidence.tif"),
                             probabilities_path=str(out / "probabilities.tif"), window_size=64)
    classes, confidence, probabilities = (read(out / f) for f in
                                          ("classes.tif", "confidence.tif", "probabilities.tif"))
    holes = np.zeros((90, 130), bool)
    holes[10:30, 20:50] = True
    holes[60:70, 100:120] = True
    assert (classes[holes] == 0).all() and (classes[~holes] > 0).all()
    assert result.nodata_pixels == holes.sum()
    assert sum(result.pixels_per_class.values()) == (~holes).sum()
    assert (confidence[holes] == FLOAT_NODATA).all()
    assert ((confidence[~holes] > 0.25 - 1e-6) & (confidence[~holes] <= 1)).all()
    assert probabilities.shape == (4, 90, 130)
    assert (probabilities[:, holes] == FLOAT_NODATA).all()
    assert np.allclose(probabilities[:, ~holes].sum(axis=0), 1, atol=1e-4)
    best = np.argmax(probabilities, axis=0) + 1
    assert np.array_equal(best[~holes], classes[~holes])
    assert np.allclose(probabilities.max(axis=0)[~holes], confidence[~holes])
    dataset = gdal.Open(str(out / "classes.tif"))
    band = dataset.GetRasterBand(1)
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() == 0
    assert band.GetOverviewCount() >= 1 and band.GetBlockSize() == [256, 256]
    assert dataset.GetMetadata("IMAGE_STRUCTURE")["COMPRESSION"] == "DEFLATE"
    assert ClassMap.read_from_raster(str(out / "classes.tif")).names == [
        "class 1", "class 2", "class 3", "class 4"]
    assert gdal.Open(str(out / "probabilities.tif")).GetRasterBand(2).GetDescription() == \
        "class 2"
    assert sorted(os.listdir(out)) == ["classes.tif", "classes.tif.aux.xml", "confidence.tif",
                                       "probabilities.tif"]


def test_an_opened_model_is_checked_and_loaded_once(random_model, tmp_path):
    """Every stage holds one ``OpenedModel``: classifying with it twice reads the file no more
    (it may even be gone), and the network is the one loaded the first time."""
    copy = tmp_path / "copy.keras"
    shutil.copy(random_model, copy)
    model = open_model(str(copy))
    image = make_image(tmp_path / "image.tif", rgb(40, 50))
    first = classify_raster(image, model, str(tmp_path / "first.tif"), window_size=64)
    network = model.network()
    copy.unlink()
    second = classify_raster(image, model, str(tmp_path / "second.tif"), window_size=64)
    assert model.network() is network
    assert np.array_equal(read(first.path), read(second.path))
    with pytest.raises(UserError, match="does not exist"):
        classify_raster(image, str(copy), str(tmp_path / "third.tif"))


@pytest.mark.parametrize("rows, cols", [(37, 150), (13, 20), (300, 41)])
def test_non_square_and_tiny_images(random_model, tmp_path, rows, cols):
    image = make_image(tmp_path / "image.tif", rgb(rows, cols))
    result = classify_raster(image, random_model, str(tmp_path / "classes.tif"),
                             window_size=64, overlap=8)
    classes = read(result.path)
    assert classes.shape == (rows, cols) and set(np.unique(classes)) <= {1, 2, 3, 4}
    assert gdal.Open(result.path).GetGeoTransform() == gdal.Open(image).GetGeoTransform()


def test_extent_classifies_part_of_the_image(random_model, tmp_path):
    image = make_image(tmp_path / "image.tif", rgb(120, 160))
    x0, y0 = 630534.0 + 30 * 28.5, 228114.0 - 100 * 28.5  # columns 30.., rows ..100
    extent = (x0 + 1.0, y0 + 1.0, x0 + 50 * 28.5 - 1.0, y0 + 60 * 28.5 - 1.0)
    whole = read(classify_raster(image, random_model, str(tmp_path / "whole.tif"),
                                 window_size=512).path)
    part = classify_raster(image, random_model, str(tmp_path / "part.tif"), extent=extent,
                           window_size=512)
    dataset = gdal.Open(part.path)
    assert (dataset.RasterXSize, dataset.RasterYSize) == (50, 60)
    assert dataset.GetGeoTransform()[0] == x0 and dataset.GetGeoTransform()[3] == y0 + 60 * 28.5
    assert (read(part.path) > 0).all()
    assert (read(part.path) == whole[40:100, 30:80]).mean() > 0.5  # context differs at edges
    with pytest.raises(UserError, match="does not overlap"):
        classify_raster(image, random_model, str(tmp_path / "none.tif"),
                        extent=(0.0, 0.0, 10.0, 10.0))


@pytest.mark.parametrize("tta", ["flips", "dihedral"])
def test_test_time_augmentation(random_model, tmp_path, tta):
    image = make_image(tmp_path / "image.tif", rgb(50, 70))
    result = classify_raster(image, random_model, str(tmp_path / "classes.tif"), tta=tta,
                             probabilities_path=str(tmp_path / "p.tif"), window_size=64)
    probabilities = read(result.probabilities_path)
    assert np.allclose(probabilities.sum(axis=0), 1, atol=1e-4)
    assert (read(result.path) > 0).all()
    classes_only = classify_raster(image, random_model, str(tmp_path / "fast.tif"), tta=tta,
                                   window_size=64)
    assert np.array_equal(read(classes_only.path), read(result.path))


def test_tta_of_a_symmetric_image_is_symmetric(random_model, tmp_path):
    """Averaging over all 8 transforms makes the prediction of a symmetric image symmetric."""
    quarter = rgb(32, 32, seed=3)
    quarter = np.maximum(quarter, quarter.transpose(0, 2, 1))
    half = np.concatenate([quarter, quarter[:, :, ::-1]], axis=2)
    square = np.concatenate([half, half[:, ::-1]], axis=1)
    image = make_image(tmp_path / "image.tif", square.astype(np.float32))
    result = classify_raster(image, random_model, str(tmp_path / "c.tif"), tta="dihedral",
                             probabilities_path=str(tmp_path / "p.tif"), window_size=64)
    p = read(result.probabilities_path)
    assert np.allclose(p, p[:, ::-1], atol=1e-5) and np.allclose(p, p.transpose(0, 2, 1),
                                                                 atol=1e-5)


# ----- checks, errors, cancel ----------------------------------------------------------------
def test_band_count_mismatch_is_a_clear_error_and_leaves_nothing(nc_trained, tmp_path):
    image = make_image(tmp_path / "rgb.tif", rgb(40, 40))
    out = tmp_path / "out"
    with pytest.raises(UserError, match="trained on an image with 6 bands.*has 3"):
        classify_raster(image, nc_trained, str(out / "classes.tif"),
                        confidence_path=str(out / "c.tif"))
    assert not out.exists() or os.listdir(out) == []


def test_output_over_the_image_is_refused(random_model, tmp_path):
    image = make_image(tmp_path / "rgb.tif", rgb(20, 20))
    with pytest.raises(UserError, match="own file"):
        classify_raster(image, random_model, image)
    with pytest.raises(UserError, match="own file"):
        classify_raster(image, random_model, str(tmp_path / "a.tif"),
                        confidence_path=str(tmp_path / "a.tif"))
    assert os.listdir(tmp_path) == ["rgb.tif"]


def test_band_selection_out_of_range(tmp_path):
    model = make_test_model(tmp_path / "bands.keras", band_list=[1, 2, 5], band_count=3)
    image = make_image(tmp_path / "rgb.tif", rgb(40, 40))
    # no training run writes this: the metadata itself is refused, before any work
    with pytest.raises(UserError, match=r"impossible metadata \(bands \[1, 2, 5\] of a 3-band"):
        classify_raster(image, model, str(tmp_path / "out" / "classes.tif"))
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


def test_pixel_size_and_crs_far_from_training_are_warnings(random_model, tmp_path):
    image = make_image(tmp_path / "image.tif", rgb(30, 30), epsg=32617, pixel=1.0,
                       origin=(500000.0, 4000000.0))
    progress = ConsoleProgress(quiet=True)
    model = make_test_model(tmp_path / "m.keras", bands=3, classes=4, crs_wkt=gdal.Open(
        str(NC / "lsat7_2000_10.tif")).GetProjection())
    classify_raster(image, model, str(tmp_path / "classes.tif"), progress=progress)
    text = " ".join(progress.warnings)
    assert "pixels of 1 m but the model was trained on 28.5 m pixels" in text
    assert "UTM zone 17N" in text
    assert os.path.exists(tmp_path / "classes.tif")


class CancelAfter(ConsoleProgress):
    def __init__(self, calls: int) -> None:
        super().__init__(quiet=True)
        self.calls = calls

    def cancelled(self) -> bool:
        self.calls -= 1
        return self.calls < 0


def test_cancel_stops_within_a_batch_and_leaves_no_output(random_model, tmp_path):
    image = make_image(tmp_path / "image.tif", rgb(300, 300))
    out = tmp_path / "out"
    progress = CancelAfter(2)
    with pytest.raises(Cancelled):
        classify_raster(image, random_model, str(out / "classes.tif"), window_size=64,
                        batch_size=1, confidence_path=str(out / "confidence.tif"),
                        probabilities_path=str(out / "p.tif"), progress=progress)
    assert progress.fraction < 0.5
    assert os.listdir(out) == []


def test_a_model_saved_in_mixed_precision_loads_in_float32(tmp_path):
    """A GPU-trained file that kept mixed_float16 layer policies (older versions) would classify
    about 3 x slower on a CPU: it loads in float32, with the same weights and classes."""
    import keras

    from landcoverunet.models.precision import computes_in_float32

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        path = make_test_model(tmp_path / "mixed.keras", seed=3)
    finally:
        keras.config.set_dtype_policy(previous)
    mixed = keras.saving.load_model(path, compile=False, safe_mode=False)
    assert not computes_in_float32(mixed)
    model, _ = load_model(path)
    assert computes_in_float32(model)
    x = np.random.default_rng(0).normal(0, 1, (2, TILE, TILE, 6)).astype(np.float32)
    expected, got = (keras.ops.convert_to_numpy(m(x)) for m in (mixed, model))
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=0.02)
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= 0.99


def test_a_model_file_loads_in_mixed_precision_for_a_gpu(tmp_path):
    """On a GPU, classification loads the (float32) file in mixed precision: float16 arithmetic
    with the output layers in float32, the same weights and nearly the same probabilities; the
    CPU keeps float32."""
    import keras

    from landcoverunet.backend.core.device import gpu_names, inference_precision
    from landcoverunet.models.ensemble import average_models
    from landcoverunet.models.precision import computes_in_float32
    from landcoverunet.models.unet import PRESETS, build_unet

    assert inference_precision() == ("mixed_float16" if gpu_names() else "float32")
    path = make_test_model(tmp_path / "plain.keras", seed=4)
    plain, _ = load_model(path)
    mixed, _ = load_model(path, "mixed_float16")
    assert computes_in_float32(plain) and not computes_in_float32(mixed)
    assert mixed.get_layer("probabilities").dtype_policy.name == "float32"
    assert mixed.get_layer("down0_conv1").dtype_policy.name == "mixed_float16"
    x = np.random.default_rng(0).normal(0, 1, (2, TILE, TILE, 6)).astype(np.float32)
    expected, got = (keras.ops.convert_to_numpy(m(x)) for m in (plain, mixed))
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=0.02)
    assert (got.argmax(-1) == expected.argmax(-1)).mean() >= 0.99
    ensemble = average_models([build_unet(6, 3, PRESETS["small"]) for _ in range(2)])
    from landcoverunet.models.precision import precision_copy

    copy = precision_copy(ensemble, "mixed_float16")
    assert copy.get_layer("mean_probabilities").dtype_policy.name == "float32"
    assert copy.get_layer("member_1").get_layer("probabilities").dtype_policy.name == "float32"
    assert copy.get_layer("member_2").get_layer("fuse_conv1").dtype_policy.name == \
        "mixed_float16"
