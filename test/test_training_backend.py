"""Training backend: losses, metrics, sampling and split, pipeline, learning, the model file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr

from landcoverunet.backend.class_map import ClassMap
from landcoverunet.backend.sampling import (Block, SceneLabels, WindowSampler, plan_windows,
                                            split_validation, summarise_labels)


# ----- helpers ---------------------------------------------------------------------------------
def write_raster(path: Path, array: np.ndarray, nodata: float | None = None,
                 class_map: ClassMap | None = None) -> str:
    """Writes a (bands, rows, cols) or (rows, cols) array as a GeoTIFF on a 10 m UTM grid."""
    array = array if array.ndim == 3 else array[None]
    kind = gdal.GDT_Byte if array.dtype == np.uint8 else gdal.GDT_Float32
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[2], array.shape[1],
                                                   array.shape[0], kind)
    dataset.SetGeoTransform((500000, 10, 0, 4000000, 0, -10))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    dataset.SetProjection(srs.ExportToWkt())
    for i, band in enumerate(array):
        dataset.GetRasterBand(i + 1).WriteArray(band)
        if nodata is not None:
            dataset.GetRasterBand(i + 1).SetNoDataValue(nodata)
    if class_map is not None:
        class_map.write_to_band(dataset)
    dataset.FlushCache()
    return str(path)


def synthetic_scene(folder: Path, height: int = 192, width: int = 256, seed: int = 0):
    """Three spectrally separable classes in Voronoi regions; labels on scattered squares.

    Returns (image path, mask path, truth array). A corner of the image is nodata.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    centres = rng.uniform((0, 0), (height, width), (18, 2))
    owner = ((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2
             ).argmin(-1)
    truth = (np.arange(18) % 3 + 1)[owner]
    means = np.array([[0, 0, 0], [20, 60, 30], [60, 20, 40], [40, 40, 80]], np.float32)
    image = means[truth].transpose(2, 0, 1) + rng.normal(0, 4, (3, height, width))
    image = image.astype(np.float32)
    image[:, :12, :12] = -9999
    labels = np.zeros((height, width), np.uint8)
    for y, x in rng.integers(0, (height - 6, width - 6), (160, 2)):
        labels[y:y + 6, x:x + 6] = truth[y:y + 6, x:x + 6]
    labels[:12, :12] = 0
    classes = ClassMap.from_codes([1, 2, 3], {1: "crop", 2: "forest", 3: "water"})
    return (write_raster(folder / "image.tif", image, nodata=-9999),
            write_raster(folder / "mask.tif", labels, nodata=0, class_map=classes), truth)


# ----- losses and metrics ----------------------------------------------------------------------
def test_losses_ignore_unlabelled_pixels_and_weight_classes():
    import keras
    from landcoverunet.models.losses import (DiceLoss, FocalDiceLoss, FocalLoss,
                                             MaskedCrossEntropy, make_loss)

    labels = np.array([[[1, 0], [2, 0]]], np.int32)
    probabilities = np.array([[[[0.8, 0.2], [0.5, 0.5]], [[0.3, 0.7], [0.9, 0.1]]]], np.float32)
    value = float(MaskedCrossEntropy()(labels, probabilities))
    assert value == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2, rel=1e-5)
    changed = probabilities.copy()
    changed[0, 0, 1] = [0.01, 0.99]  # an unlabelled pixel
    assert float(MaskedCrossEntropy()(labels, changed)) == pytest.approx(value, rel=1e-6)
    weighted = float(MaskedCrossEntropy(class_weights=[1.0, 3.0])(labels, probabilities))
    assert weighted == pytest.approx(-(np.log(0.8) + 3 * np.log(0.7)) / 4, rel=1e-5)
    assert 0 < float(FocalLoss()(labels, probabilities)) < value
    assert 0 < float(DiceLoss()(labels, probabilities)) < 1
    assert float(FocalDiceLoss()(labels, probabilities)) > float(DiceLoss()(labels,
                                                                            probabilities))
    for name in ("cross_entropy", "weighted_cross_entropy", "focal", "dice", "focal_dice"):
        loss = make_loss(name, [1.0, 2.0])
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert float(again(labels, probabilities)) == pytest.approx(
            float(loss(labels, probabilities)), rel=1e-5)


def test_masked_mean_iou():
    from landcoverunet.models.metrics import MaskedAccuracy, MaskedMeanIoU

    labels = np.array([[[1, 1, 2, 0]]], np.int32)
    probabilities = np.array([[[[0.9, 0.1], [0.2, 0.8], [0.1, 0.9], [0.0, 1.0]]]], np.float32)
    metric = MaskedMeanIoU(2)
    metric.update_state(labels, probabilities)
    assert float(metric.result()) == pytest.approx((1 / 2 + 1 / 2) / 2)
    accuracy = MaskedAccuracy()
    accuracy.update_state(labels, probabilities)
    assert float(accuracy.result()) == pytest.approx(2 / 3)


# ----- normalisation and augmentation -----------------------------------------------------------
def test_normalisation_uses_valid_pixels_only(tmp_path):
    from landcoverunet.backend.normalization import compute_band_stats

    data = np.arange(2 * 20 * 30, dtype=np.float32).reshape(2, 20, 30)
    data[0, 0, :5] = -99999
    data[1, 1, :3] = np.nan
    path = write_raster(tmp_path / "image.tif", data, nodata=-99999)
    stats = compute_band_stats([path], [2, 1])
    valid = np.ones((20, 30), bool)
    valid[0, :5] = valid[1, :3] = False
    assert stats.pixels == valid.sum()
    assert stats.mean == pytest.approx([data[1][valid].mean(), data[0][valid].mean()])
    assert stats.std == pytest.approx([data[1][valid].std(), data[0][valid].std()], rel=1e-6)
    block = np.moveaxis(data[[1, 0]], 0, -1)
    normalised = stats.normalise(block, ~valid)
    assert np.isfinite(normalised).all() and (normalised[~valid] == 0).all()


@pytest.mark.parametrize("shape", [(12, 12), (8, 20)])
def test_augmentation_keeps_pixels_and_labels_aligned(shape):
    from landcoverunet.backend.training_data import augment

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, shape).astype(np.uint8)
    pixels = np.stack([labels.astype(np.float32), np.ones(shape, np.float32)], axis=-1)
    valid = labels != 4
    seen = set()
    for _ in range(60):
        p, l, v = augment(pixels, labels, valid, rng, jitter=0.0)
        assert p.shape == pixels.shape and l.shape == shape
        assert np.array_equal(p[..., 0], l) and np.array_equal(v, l != 4)
        seen.add(l.tobytes())
    assert len(seen) == (8 if shape[0] == shape[1] else 4)
    p, _, v = augment(pixels, labels, valid, rng, jitter=0.1)
    assert (p[~v] == 0).all() and not np.allclose(p[v][:, 1], 1.0)


# ----- split and sampling -----------------------------------------------------------------------
def _random_scene(rng, height, width, classes, cell=16) -> SceneLabels:
    counts = np.zeros((-(-height // cell), -(-width // cell), classes), np.int64)
    for _ in range(40):
        r, c = rng.integers(0, counts.shape[0]), rng.integers(0, counts.shape[1])
        k = rng.choice(classes, p=[0.7, 0.2, 0.08, 0.02][:classes])
        counts[r, c, k] += rng.integers(20, 200)
    return SceneLabels(width, height, cell, counts)


def test_training_windows_never_overlap_validation_blocks():
    rng = np.random.default_rng(0)
    scenes = [_random_scene(rng, 420, 500, 4), _random_scene(rng, 300, 333, 4)]
    validation = split_validation(scenes, 64, 0.2, seed=1)
    assert validation
    sampler = WindowSampler(scenes, validation, (96, 128))
    draws = np.random.default_rng(5)
    counts = np.zeros(2, int)
    for _ in range(3000):
        scene, x, y = sampler.sample(draws)
        counts[scene] += 1
        assert 0 <= x <= scenes[scene].width - 128 and 0 <= y <= scenes[scene].height - 96
        assert not any(b.scene == scene and b.overlaps(x, y, 128, 96) for b in validation)
        assert not sampler.overlaps_validation(scene, x, y)
    assert counts.min() > 0
    # rarer classes are drawn more often than their share of the pixels
    share = sampler.reachable_pixels / sampler.reachable_pixels.sum()
    rare = int(np.argmin(np.where(share > 0, share, 1)))
    assert sampler.class_probability[rare] > share[rare]


def test_validation_split_is_stratified_and_keeps_training_classes():
    rng = np.random.default_rng(2)
    scene = _random_scene(rng, 640, 640, 4)
    totals = scene.totals
    validation = split_validation([scene], 64, 0.2, seed=3)
    in_validation = np.zeros(4)
    for block in validation:
        in_validation += scene.counts[block.y // 16:(block.y + 64) // 16,
                                      block.x // 16:(block.x + 64) // 16].sum((0, 1))
    blocks_with = [(scene.counts[..., c] > 0).sum() for c in range(4)]
    for c in range(4):
        if totals[c] and blocks_with[c] >= 2:
            assert in_validation[c] > 0, f"class {c} missing from validation"
        assert totals[c] == 0 or in_validation[c] < totals[c], f"class {c} left training"
    assert 0.1 < in_validation.sum() / totals.sum() < 0.45
    assert split_validation([scene], 64, 0.2, seed=3) == validation


def test_nc_split_and_windows(nc_mask):
    """On the real NC labels: windows shrink to fit, and none touches a validation block."""
    lookup = np.arange(256).astype(np.uint8)
    lookup[8:] = 0
    scene = summarise_labels(str(nc_mask), lookup, 7)
    assert scene.totals.sum() == (gdal.Open(str(nc_mask)).ReadAsArray() > 0).sum()
    validation = split_validation([scene], 128, 0.2, seed=42)
    sampler, messages = plan_windows([scene], validation, (256, 256), 16)
    assert sampler.tile[0] < 256 and messages
    assert sampler.reachable_fraction() >= 0.6
    rng = np.random.default_rng(0)
    th, tw = sampler.tile
    for _ in range(1000):
        _, x, y = sampler.sample(rng)
        assert not any(b.overlaps(x, y, tw, th) for b in validation)


def test_block_overlap_is_exact():
    block = Block(0, 64, 64, 64, 64)
    assert block.overlaps(0, 0, 65, 65) and not block.overlaps(0, 0, 64, 200)
    assert not block.overlaps(128, 64, 10, 10) and block.overlaps(127, 127, 10, 10)


# ----- learning ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_synthetic_separable_scene_reaches_high_miou(tmp_path):
    from landcoverunet.backend.progress import ConsoleProgress
    from landcoverunet.backend.training import TrainingConfig, train_unet

    image, mask, _ = synthetic_scene(tmp_path)
    progress = ConsoleProgress(quiet=True)
    result = train_unet(TrainingConfig(
        images=[image], masks=[mask], output_model=str(tmp_path / "model.keras"), tile_size=64,
        batch_size=8, epochs=4, steps_per_epoch=8, patience=4, seed=0), progress)
    assert result.best_val_miou > 0.9, "\n".join(progress.messages)
    metadata = result.metadata
    assert metadata.classes.names == ["crop", "forest", "water"]
    assert metadata.bands == [1, 2, 3] and metadata.input_dtype == "float32"
    assert metadata.pixel_size == [10.0, 10.0] and "32633" in metadata.crs_wkt
    assert metadata.architecture["model_size"] == "small"
    assert any(line.startswith("Epoch 1/4") and "val mIoU" in line for line in
               progress.messages)


# ----- the model file ---------------------------------------------------------------------------
def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)


def test_model_loads_with_plain_keras_in_fresh_process(nc_model):
    done = _fresh(f"""
        import sys, numpy as np, keras
        model = keras.saving.load_model({str(nc_model)!r}, safe_mode=True)
        out = model.predict(np.zeros((1, 64, 96, 6), 'float32'), verbose=0)
        print('SHAPE', out.shape, 'SUM', round(float(out.sum(-1).mean()), 3))
        print('PLUGIN', 'landcoverunet' in sys.modules)
    """)
    assert "SHAPE (1, 64, 96, 7) SUM 1.0" in done.stdout, done.stdout + done.stderr
    assert "PLUGIN False" in done.stdout


def test_metadata_reads_without_tensorflow(nc_model):
    done = _fresh(f"""
        import sys, json
        from landcoverunet.backend.model_file import read_metadata
        m = read_metadata({str(nc_model)!r})
        print('META', json.dumps({{'bands': m.bands, 'names': m.classes.names,
                                   'n': len(m.mean), 'tile': m.tile_size}}))
        print('HEAVY', [k for k in ('tensorflow', 'keras') if k in sys.modules])
    """)
    assert "HEAVY []" in done.stdout, done.stdout + done.stderr
    meta = json.loads(done.stdout.split("META ", 1)[1].splitlines()[0])
    assert meta["bands"] == [1, 2, 3, 4, 5, 6] and meta["n"] == 6 and meta["tile"] == 64
    assert meta["names"] == ["developed", "agriculture", "herbaceous", "shrubland", "forest",
                             "water", "sediment"]


def test_model_file_metadata_is_complete(nc_model, nc_stack):
    from landcoverunet.backend.model_file import load_model, read_metadata

    metadata = read_metadata(str(nc_model))
    assert metadata.band_count == 6 and metadata.input_dtype == "float32"
    assert len(metadata.std) == 6 and all(s > 0 for s in metadata.std)
    assert [c["color"] for c in metadata.class_map["classes"]][5] == "#1f78b4"
    assert metadata.pixel_size == pytest.approx([28.5, 28.5])
    stack = gdal.Open(str(nc_stack))
    assert osr.SpatialReference(metadata.crs_wkt).IsSame(
        osr.SpatialReference(stack.GetProjection()))
    assert set(metadata.architecture) >= {"model_size", "depth", "filters", "dropout"}
    assert metadata.metrics["epochs_run"] == 3 and 0 <= metadata.metrics["best_val_miou"] <= 1
    assert set(metadata.metrics["per_class"]) == set(metadata.classes.names)
    assert metadata.created and metadata.plugin_version
    model, _ = load_model(str(nc_model))
    assert model.output_shape[-1] == 7
    csv_file = Path(str(nc_model)[:-len(".keras")] + "_epochs.csv")
    assert csv_file.is_file() and len(csv_file.read_text().splitlines()) == 4
    assert not [f for f in os.listdir(nc_model.parent) if "partial" in f]


def test_report_picks_true_colour_from_band_names():
    from landcoverunet.backend.training_report import rgb_channels_for

    assert rgb_channels_for(["ETM+ blue", "ETM+ green", "ETM+ red", "ETM+ nir"]) == \
        ((2, 1, 0), "true colour")
    assert rgb_channels_for(["Red", "Green", "Blue"]) == ((0, 1, 2), "true colour")
    # "near infrared" is not red: no true colour without all three
    assert rgb_channels_for(["near infrared", "green", "blue"])[1].startswith("false colour")
