"""Helpers and fixtures of the classification tests: tiny model files (random weights, or
fitted for a few seconds on the NC scene), GeoTIFFs from arrays, and reading them back."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from support import NC, NC_NAMES

from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.model.metadata import ModelMetadata
from landcoverunet.backend.model.keras_file import save_model

TILE = 64
SCENE = Path(__file__).resolve().parent.parent / "resources" / "sample" / "nc_landsat7_2000.tif"
"""The bundled sample scene (6 Landsat bands)."""


def make_test_model(path, bands: int = 6, classes: int = 7, *, tile: int = TILE,
                    mean=None, std=None, band_list=None, band_count=None, pixel_size=(28.5, 28.5),
                    crs_wkt: str = "", seed: int = 0, names=None, fit=None) -> str:
    """Saves a tiny U-Net (random weights, or fitted on ``fit=(x, y, weights, epochs)``)."""
    import keras

    from landcoverunet.models.unet import UNetConfig, build_unet

    keras.utils.set_random_seed(seed)
    config = UNetConfig(depth=3, filters=8, dropout=0.0)
    model = build_unet(len(band_list or range(bands)), classes, config)
    if fit is not None:
        x, y, weights, epochs = fit
        # one-hot targets: Keras's sparse cross-entropy under PyTorch (2.13) fails in its
        # backward pass ("grad_input must be contiguous", nll_loss on a permuted tensor)
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
        model.fit(x, keras.utils.to_categorical(y, classes), sample_weight=weights,
                  batch_size=4, epochs=epochs, verbose=0)
        # saved uncompiled, as training saves: the optimizer's class is the backend's own
        # (under PyTorch, keras.src.backend.torch.optimizers...), which the file check refuses
        from landcoverunet.models.precision import float32_copy

        model = float32_copy(model)
    codes = list(range(1, classes + 1))
    class_map = ClassMap.from_codes(codes, names or {c: f"class {c}" for c in codes})
    channels = len(band_list or range(bands))
    metadata = ModelMetadata(
        bands=list(band_list or range(1, bands + 1)), band_count=band_count or bands,
        input_dtype="float32", mean=[float(v) for v in (mean if mean is not None else [0.0] * channels)],
        std=[float(v) for v in (std if std is not None else [1.0] * channels)],
        class_map=class_map.to_dict(),
        tile_size=tile, architecture={"model_size": "tiny", "depth": config.depth,
                                      "filters": config.filters, "dropout": config.dropout},
        pixel_size=list(pixel_size), crs_wkt=crs_wkt)
    save_model(model, str(path), metadata)
    return str(path)


def make_image(path, data: np.ndarray, nodata=None, epsg: int = 32119,
               origin=(630534.0, 228114.0), pixel: float = 28.5) -> str:
    """A GeoTIFF from a (bands, rows, cols) array."""
    types = {np.dtype("float32"): gdal.GDT_Float32, np.dtype("uint8"): gdal.GDT_Byte,
             np.dtype("int16"): gdal.GDT_Int16, np.dtype("uint16"): gdal.GDT_UInt16}
    dataset = gdal.GetDriverByName("GTiff").Create(str(path), data.shape[2], data.shape[1],
                                                   data.shape[0], types[data.dtype])
    dataset.SetGeoTransform((origin[0], pixel, 0, origin[1], 0, -pixel))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    dataset.SetProjection(srs.ExportToWkt())
    for index, band in enumerate(data):
        if nodata is not None:
            dataset.GetRasterBand(index + 1).SetNoDataValue(nodata)
        dataset.GetRasterBand(index + 1).WriteArray(band)
    dataset = None
    return str(path)


def read(path) -> np.ndarray:
    return gdal.Open(str(path)).ReadAsArray()


def nc_arrays(stack) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The NC scene normalised (rows, cols, 6), its strata labels, invalid mask, mean and std."""
    image = read(stack).astype(np.float32)
    invalid = (image[:5] == -99999).any(0) | (image[5] == -32768)
    mean = np.array([image[b][~invalid].mean() for b in range(6)], dtype=np.float32)
    std = np.array([image[b][~invalid].std() for b in range(6)], dtype=np.float32)
    x = (image - mean[:, None, None]) / std[:, None, None]
    x[:, invalid] = 0
    labels = read(NC / "strata.tif")
    labels = np.where(invalid | ~np.isfinite(labels) | (labels < 1), 0, labels).astype(np.int64)
    return x.transpose(1, 2, 0), labels, mean, std


@pytest.fixture(scope="module")
def nc_trained(nc_stack, tmp_path_factory) -> str:
    """A tiny model fitted for ~10 s on 64 x 64 NC patches (strata.tif labels; ~70 % right)."""
    x, labels, mean, std = nc_arrays(nc_stack)
    rng = np.random.default_rng(0)
    corners = zip(rng.integers(0, x.shape[0] - TILE, 128),
                  rng.integers(0, x.shape[1] - TILE, 128))
    patches = [(x[r:r + TILE, c:c + TILE], labels[r:r + TILE, c:c + TILE]) for r, c in corners]
    xs = np.stack([p[0] for p in patches])
    ys = np.stack([p[1] for p in patches])
    fit = (xs, np.clip(ys - 1, 0, 6), (ys > 0).astype(np.float32), 4)
    path = tmp_path_factory.mktemp("model") / "nc_tiny.keras"
    return make_test_model(path, mean=mean, std=std, names=NC_NAMES, fit=fit,
                           crs_wkt=gdal.Open(str(nc_stack)).GetProjection())


@pytest.fixture(scope="module")
def random_model(tmp_path_factory) -> str:
    return make_test_model(tmp_path_factory.mktemp("model") / "random.keras", bands=3,
                           classes=4, mean=[100, 100, 100], std=[50, 50, 50])


def rgb(rows: int, cols: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 200, (3, rows, cols)).astype(np.float32)


@pytest.fixture(scope="module")
def scene_model(tmp_path_factory) -> str:
    """Random weights on the scene's bands: a speckled map with patches of every size."""
    image = gdal.Open(str(SCENE)).ReadAsArray().astype(np.float32)
    valid = (image > 0).all(axis=0)
    return make_test_model(tmp_path_factory.mktemp("model") / "scene.keras", bands=len(image),
                           classes=7, mean=[float(b[valid].mean()) for b in image],
                           std=[float(b[valid].std()) for b in image], seed=3)
