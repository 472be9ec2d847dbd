"""Session fixtures that train small models once, for the tests that need a trained model, and
the helpers training tests share: small scenes written as GeoTIFFs, the Train U-Net settings
of a few seconds, a feedback that cancels after the first epoch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal, osr
from qgis.core import QgsProcessingFeedback

from support import NC

from landcoverunet.backend.core.class_map import ClassMap

ALG = "landcoverunet:trainunet"
TINY = dict(TILE_SIZE=64, BATCH_SIZE=4, EPOCHS=2, STEPS_PER_EPOCH=3, PATIENCE=5, SEED=3)
"""Train U-Net settings of a run of a few seconds."""


class CancelAfterFirstEpoch(QgsProcessingFeedback):
    """Asks to cancel as soon as the first epoch has been logged."""

    def pushInfo(self, info: str) -> None:  # noqa: N802
        super().pushInfo(info)
        if info.startswith(("Epoch 1/", "Fold 1/3, epoch 1/")):
            self.cancel()


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



def synthetic_reader(folder: Path, in_memory_bytes: int | None = None):
    """(a SceneReader of :func:`synthetic_scene`, its truth): the training data as the
    teacher sees it, held in memory unless ``in_memory_bytes`` is too small for the scene."""
    from landcoverunet.backend.core.feature_ids import feature_id_reader
    from landcoverunet.backend.core.normalization import compute_band_stats
    from landcoverunet.backend.training.data import SceneReader
    from landcoverunet.backend.training.sampling import SplitLabels

    folder.mkdir(parents=True, exist_ok=True)
    image, mask, truth = synthetic_scene(folder)
    lookup = np.zeros(256, np.uint8)
    lookup[1:4] = [1, 2, 3]
    ids, _ = feature_id_reader(mask)
    stats = compute_band_stats([image], [1, 2, 3])
    return SceneReader(image, SplitLabels(mask, lookup, ids, None), [1, 2, 3], stats,
                       in_memory_bytes=in_memory_bytes), truth


@pytest.fixture(scope="session")
def nc_mask(nc_stack, tmp_path_factory) -> Path:
    """The NC training polygons burnt onto the band stack's grid (all touched pixels)."""
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    path = tmp_path_factory.mktemp("nc_mask") / "mask.tif"
    build_mask(str(nc_stack), [VectorInput(str(NC / "landsat96_polygons.shp"))], str(path),
               class_field="id", class_name_field="label", all_touched=True)
    return path


@pytest.fixture(scope="session")
def nc_model(nc_stack, nc_mask, tmp_path_factory) -> Path:
    """A tiny U-Net trained on NC through the backend (a few seconds): a real model file.

    Its metadata is complete (6 bands, 7 classes with names and colours, normalisation, tile
    size, pixel size and CRS); its accuracy is whatever three short epochs give.
    """
    from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet

    path = tmp_path_factory.mktemp("nc_model") / "nc_model.keras"
    train_unet(TrainingConfig(images=[str(nc_stack)], masks=[str(nc_mask)],
                              output_model=str(path), tile_size=64, batch_size=4, epochs=3,
                              steps_per_epoch=4, patience=3, seed=1))
    return path
