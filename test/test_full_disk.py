"""Writing to a disk that fills up: a clear "the disk is full" naming the output, never success.

GDAL carries on after a failed write, so a run on a nearly full disk used to finish with exit 0
and leave a mask whose tiles cannot be read or a GeoPackage without its tables. Here every
writer runs through qgis_process into a real small filesystem (a tmpfs of a few MiB, mounted for
the test; that needs root, as mounting does) filled to a few KiB: the run must fail with the
disk named full and the output named, print no traceback, leave no file behind (no hidden
temporary ones either) and keep the earlier outputs on that disk byte for byte.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from osgeo import gdal
from support import snapshot
from fixtures_classify import make_test_model

from support import ROOT, qgis_process

SAMPLE = ROOT / "resources" / "sample"
DISK_SIZE = "8m"
FULL = "The disk is full"
FILLER = "filler.bin"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """The sample scene, its polygons, a mask and a model on an ordinary disk."""
    from landcoverunet.backend.classify.classify_raster import classify_raster
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    folder = tmp_path_factory.mktemp("full_disk_inputs")
    shutil.copy(SAMPLE / "nc_landsat7_2000.tif", folder / "image.tif")
    for name in ("training_polygons.gpkg", "reference_polygons.gpkg"):
        shutil.copy(SAMPLE / name, folder / name)
    build_mask(str(folder / "image.tif"), [VectorInput(str(folder / "training_polygons.gpkg"))],
               str(folder / "mask.tif"), class_field="id", class_name_field="label")
    make_test_model(folder / "model.keras",
                    bands=gdal.Open(str(folder / "image.tif")).RasterCount, classes=7)
    classify_raster(str(folder / "image.tif"), str(folder / "model.keras"),
                    str(folder / "map.tif"))
    return folder


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A tmpfs of a few MiB: a real disk that fills up (ENOSPC), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs",
                           str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Fills the disk until ``leave`` bytes are free (in whole pages)."""
    free = shutil.disk_usage(disk).free
    with open(disk / FILLER, "wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))
    assert shutil.disk_usage(disk).free <= leave + 4096


def run_full(algorithm: str, parameters: dict, disk: Path, *outputs: str,
             timeout: int = 300) -> str:
    """Runs an algorithm that writes to the filled disk; asserts a clear failure naming one of
    ``outputs`` and nothing changed on the disk; returns what qgis_process said."""
    before = snapshot(disk)
    arguments = []
    for key, value in parameters.items():
        for item in (value if isinstance(value, list) else [value]):
            arguments.append(f"{key}={item}")
    done = qgis_process("run", f"landcoverunet:{algorithm}", "--", *arguments, timeout=timeout)
    said = done.stdout + done.stderr
    assert done.returncode != 0, said
    assert "Traceback" not in said and "Exception ignored" not in said, said
    assert FULL in said, said
    message = [line for line in said.splitlines() if FULL in line][-1]  # the error: last
    assert any(f"'{output}'" in message for output in outputs), message
    assert ".partial-" not in message, message  # the hidden temporary name means nothing
    assert snapshot(disk) == before, f"{algorithm} left or changed files: {os.listdir(disk)}"
    return said


@pytest.mark.parametrize("leave", [0, 4096, 12288])
def test_build_masks_on_a_full_disk(qgis_process_ready, inputs, small_disk, leave):
    """Filled to nothing, to one page (the header fits, the tiles do not) and to three (the
    mask fits, its feature ids do not): never a mask without its feature ids, nor a half one;
    the earlier mask and feature ids stay."""
    shutil.copy(inputs / "mask.tif", small_disk / "mask.tif")
    shutil.copy(inputs / "mask_features.tif", small_disk / "mask_features.tif")
    fill(small_disk, leave)
    output = str(small_disk / "mask.tif")
    run_full("buildmasks", dict(INPUT=inputs / "image.tif", CLASS_FIELD="id",
                                VECTORS=inputs / "training_polygons.gpkg", OUTPUT=output),
             small_disk, output, str(small_disk / "mask_features.tif"))


def test_accuracy_sample_on_a_full_disk(qgis_process_ready, inputs, small_disk):
    """A GeoPackage whose required tables did not fit is not reported as POINTS=979."""
    fill(small_disk, 16384)
    output = str(small_disk / "sample.gpkg")
    run_full("accuracysample", dict(INPUT=inputs / "mask.tif", OUTPUT=output), small_disk,
             output)


def test_classify_raster_on_a_full_disk(qgis_process_ready, inputs, small_disk):
    """Said to be a full disk, naming the output: not "Building overviews failed:
    TIFFAdvanceDirectory" on a hidden temporary file."""
    shutil.copy(inputs / "mask.tif", small_disk / "earlier.tif")
    fill(small_disk, 8192)
    output = str(small_disk / "earlier.tif")
    run_full("classifyraster", dict(INPUT=inputs / "image.tif", MODEL=inputs / "model.keras",
                                    OUTPUT=output), small_disk, output)


def test_assess_accuracy_reports_on_a_full_disk(qgis_process_ready, inputs, small_disk):
    fill(small_disk, 4096)
    output = str(small_disk / "report.html")
    run_full("assessaccuracy", dict(INPUT=inputs / "map.tif", CLASS_FIELD="id",
                                    REFERENCE=inputs / "reference_polygons.gpkg",
                                    OUTPUT_REPORT=output,
                                    OUTPUT_TABLE=small_disk / "table.csv"), small_disk, output,
             str(small_disk / "table.csv"))


@pytest.mark.slow
def test_training_on_a_full_disk(qgis_process_ready, inputs, small_disk):
    """The model does not fit: a clear message, and no "Exception ignored in ZipFile.__del__"
    from the archive Keras left open."""
    fill(small_disk, 65536)
    output = str(small_disk / "model.keras")
    run_full("trainunet", dict(INPUT=inputs / "image.tif", MASK=inputs / "mask.tif",
                               OUTPUT_MODEL=output, EPOCHS=1, STEPS_PER_EPOCH=2, TILE_SIZE=64,
                               BATCH_SIZE=2, MODEL_SIZE=0, FINAL_FIT="false",
                               TEACHER="false"), small_disk, output, timeout=600)
