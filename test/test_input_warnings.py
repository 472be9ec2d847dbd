"""Inputs that would run but give wrong results without a word now get a warning.

Real GeoTIFFs written with GDAL: fill at the data type's maximum without nodata, training images
of different types or scales, mask ids the class map does not name, and a class whose every
feature lies on nodata (trained for real: the warning must reach the log and the report).
"""
from __future__ import annotations

import numpy as np
import pytest
from osgeo import gdal
from fixtures_classify import make_image

from landcoverunet.backend.core.class_map import ClassMap
from landcoverunet.backend.core.input_warnings import (fill_warning, mixed_images_warning,
                                                       unknown_ids_warning)


def scene(seed: int = 0, size: int = 96) -> np.ndarray:
    """Three uint8 bands of noise around 100 (no 255)."""
    return np.random.default_rng(seed).integers(60, 140, (3, size, size)).astype(np.uint8)


def test_fill_at_the_type_maximum_without_nodata_is_warned(tmp_path):
    data = scene()
    data[:, :40] = 255                                # 42 % of the rows: fill, not land cover
    filled = make_image(tmp_path / "filled.tif", data)
    warning = fill_warning(filled, [1, 2, 3], "filled.tif")
    assert warning and "is 255 in every band" in warning and "-a_nodata 255" in warning
    declared = make_image(tmp_path / "declared.tif", data, nodata=255)
    assert fill_warning(declared, [1, 2, 3]) is None
    assert fill_warning(make_image(tmp_path / "clean.tif", scene()), [1, 2, 3]) is None


def test_training_images_of_other_types_or_scales_are_warned(tmp_path):
    first = make_image(tmp_path / "a.tif", scene(1))
    wide = make_image(tmp_path / "b.tif", scene(2).astype(np.uint16) * 40)
    same = make_image(tmp_path / "c.tif", scene(3))
    assert "different data types" in mixed_images_warning([first, wide], [1, 2, 3])
    scaled = make_image(tmp_path / "d.tif", (scene(4).astype(np.float32) * 40))
    scaled_too = make_image(tmp_path / "e.tif", scene(5).astype(np.float32))
    assert "very different typical values" in mixed_images_warning([scaled, scaled_too],
                                                                   [1, 2, 3])
    assert mixed_images_warning([first, same], [1, 2, 3]) is None


def test_mask_ids_outside_the_class_map_are_warned(tmp_path):
    path = str(tmp_path / "mask.tif")
    dataset = gdal.GetDriverByName("GTiff").Create(path, 50, 50, 1, gdal.GDT_Byte)
    labels = np.zeros((50, 50), np.uint8)
    labels[:10] = 1
    labels[10:20] = 2
    labels[20:23] = 77                                # 150 pixels no class is named for
    dataset.GetRasterBand(1).WriteArray(labels)
    ClassMap.from_codes([1, 2], {1: "water", 2: "forest"}).write_to_band(dataset)
    dataset = None
    warning = unknown_ids_warning(path, [1, 2])
    assert warning and "150 pixels with class ids 77" in warning
    assert unknown_ids_warning(path, [1, 2, 77]) is None


@pytest.mark.slow
def test_a_class_without_pixels_is_said_loudly_in_log_and_report(nc_stack, tmp_path):
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput
    from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet
    from support import NC

    # the NC polygons, with a class map that also names a class no polygon has
    known = ClassMap.from_codes(list(range(1, 9)), {
        1: "developed", 2: "agriculture", 3: "herbaceous", 4: "shrubland", 5: "forest",
        6: "water", 7: "sediment", 8: "glacier"})
    mask = str(tmp_path / "mask.tif")
    build_mask(str(nc_stack), [VectorInput(str(NC / "landsat96_polygons.shp"))], mask,
               class_field="id", class_name_field="label", class_map=known)

    class Recorder(ConsoleProgress):
        def __init__(self) -> None:
            super().__init__(quiet=True)
            self.warnings: list[str] = []

        def warn(self, message: str) -> None:
            self.warnings.append(message)

    progress = Recorder()
    report = tmp_path / "report.html"
    train_unet(TrainingConfig(images=[str(nc_stack)], masks=[mask],
                              output_model=str(tmp_path / "m.keras"), output_report=str(report),
                              tile_size=64, batch_size=4, epochs=1, steps_per_epoch=2, seed=1,
                              final_fit=False, teacher=False), progress)
    assert any("CLASS 'GLACIER' IS NOT TRAINED" in w for w in progress.warnings)
    page = report.read_text(encoding="utf-8").replace("&#x27;", "'").replace("&#39;", "'")
    assert "CLASS 'GLACIER' IS NOT TRAINED" in page
