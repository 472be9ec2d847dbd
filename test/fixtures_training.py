"""Session fixtures that train small models once, for the tests that need a trained model."""
from __future__ import annotations

from pathlib import Path

import pytest

from support import NC


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
    from landcoverunet.backend.training.run import TrainingConfig, train_unet

    path = tmp_path_factory.mktemp("nc_model") / "nc_model.keras"
    train_unet(TrainingConfig(images=[str(nc_stack)], masks=[str(nc_mask)],
                              output_model=str(path), tile_size=64, batch_size=4, epochs=3,
                              steps_per_epoch=4, patience=3, seed=1))
    return path
