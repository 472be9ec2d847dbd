"""Batch classification on dask.distributed: a mosaic split into blocks on a 2-worker local
cluster equals the one-process map pixel for pixel; a bad image fails alone; a cancelled run
resumes from its finished parts; a worker killed mid-run does not stop the job."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from osgeo import gdal, ogr
from fixtures_classify import SCENE, make_image, read, rgb

from landcoverunet.backend.batch.classify_batch import BatchSettings, classify_batch
from landcoverunet.backend.batch.tasks import Task, run_task
from landcoverunet.backend.classify.parts import Part
from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.core.errors import Cancelled
from landcoverunet.backend.core.progress import ConsoleProgress

SMALL = {"window_size": 128, "overlap": 16}
"""Windows smaller than the scene, so that blocks cut through blended overlaps."""


@pytest.fixture(scope="module")
def mosaic(tmp_path_factory) -> str:
    """The scene cut into four GeoTIFF tiles and put back together as one VRT mosaic."""
    folder = tmp_path_factory.mktemp("mosaic")
    tiles = []
    for row, (y, h) in enumerate(((0, 200), (200, 243))):
        for col, (x, w) in enumerate(((0, 250), (250, 239))):
            path = str(folder / f"tile_{row}{col}.tif")
            gdal.Translate(path, str(SCENE), srcWin=[x, y, w, h])
            tiles.append(path)
    path = str(folder / "scene_mosaic.vrt")
    gdal.BuildVRT(path, tiles).FlushCache()
    return path


class CancelAfter(ConsoleProgress):
    """Asks to stop once ``tasks`` tasks are done."""

    def __init__(self, fraction: float) -> None:
        super().__init__(quiet=True)
        self.stop_at = fraction

    def cancelled(self) -> bool:
        return self.fraction >= self.stop_at


def test_mosaic_on_two_workers_equals_the_one_process_map(scene_model, mosaic, tmp_path):
    single = tmp_path / "single.tif"
    classify_raster(mosaic, scene_model, str(single), min_mapping_unit=1.0,
                    vector_path=str(tmp_path / "single.gpkg"), **SMALL)
    folder = tmp_path / "batch"
    progress = ConsoleProgress(quiet=True)
    result = classify_batch([mosaic], scene_model, str(folder), BatchSettings(
        block_size=200, workers=2, min_mapping_unit=1.0, vectors=True, **SMALL), progress)
    output = folder / "scene_mosaic_classes.tif"
    assert result.outputs == {mosaic: str(output)} and not result.failed
    assert np.array_equal(read(output), read(single))
    assert any("9 task(s)" in m for m in progress.messages), progress.messages
    dataset = gdal.Open(str(output))
    band = dataset.GetRasterBand(1)
    assert band.GetNoDataValue() == 0 and band.GetOverviewCount() >= 1
    assert band.GetColorTable() is not None
    counts = []
    for path in (folder / "scene_mosaic_classes.gpkg", tmp_path / "single.gpkg"):
        source = ogr.Open(str(path))
        counts.append(source.GetLayer(0).GetFeatureCount())
        source = None
    assert counts[0] == counts[1] > 0
    assert sorted(os.listdir(folder)) == [".parts", "scene_mosaic_classes.gpkg",
                                          "scene_mosaic_classes.tif",
                                          "scene_mosaic_classes.tif.aux.xml"]
    assert os.listdir(folder / ".parts") == []


def test_a_bad_image_fails_alone_with_a_clear_message(scene_model, mosaic, tmp_path):
    three_bands = make_image(tmp_path / "three_bands.tif", rgb(60, 60))
    not_raster = tmp_path / "notes.tif"
    not_raster.write_text("not an image")
    good = str(tmp_path / "good.tif")
    gdal.Translate(good, str(SCENE), srcWin=[0, 0, 150, 120])
    folder = tmp_path / "out"
    result = classify_batch([three_bands, mosaic, str(not_raster), good], scene_model,
                            str(folder), BatchSettings(block_size=300, workers=2, **SMALL),
                            ConsoleProgress(quiet=True))
    assert set(result.outputs) == {mosaic, good}
    assert "5 bands" in result.failed[three_bands] and "has 3" in result.failed[three_bands]
    assert "Cannot open the raster" in result.failed[str(not_raster)]
    expected = tmp_path / "expected.tif"
    classify_raster(good, scene_model, str(expected), **SMALL)
    assert np.array_equal(read(folder / "good_classes.tif"), read(expected))
    again = ConsoleProgress(quiet=True)
    rerun = classify_batch([mosaic, good], scene_model, str(folder),
                           BatchSettings(block_size=300, workers=1, **SMALL), again)
    assert sorted(rerun.skipped) == sorted([mosaic, good]) and not rerun.failed


def test_a_cancelled_run_resumes_from_its_finished_parts(scene_model, mosaic, tmp_path):
    folder = tmp_path / "out"
    settings = BatchSettings(block_size=150, workers=1, **SMALL)
    with pytest.raises(Cancelled):
        classify_batch([mosaic], scene_model, str(folder), settings, CancelAfter(0.25))
    parts = [p for p in (folder / ".parts").rglob("*.tif")]
    assert 4 <= len(parts) < 16 and not (folder / "scene_mosaic_classes.tif").exists()
    # dask may run a finished task again (its answer died with a worker): the part stays as is
    stamp = parts[0].stat().st_mtime_ns
    row, col = (int(n[1:]) for n in parts[0].stem.split("_"))
    again = Task(mosaic, str(parts[0]), Part(col, row, 150, 150), settings.classify_settings())
    assert run_task(b"", "", "", again) == {"seconds": 0.0, "pixels": {}}
    assert parts[0].stat().st_mtime_ns == stamp
    progress = ConsoleProgress(quiet=True)
    result = classify_batch([mosaic], scene_model, str(folder), settings, progress)
    assert any(f"({len(parts)} part(s) already done)" in m for m in progress.messages)
    single = tmp_path / "single.tif"
    classify_raster(mosaic, scene_model, str(single), **SMALL)
    assert np.array_equal(read(result.outputs[mosaic]), read(single))


def test_a_killed_worker_does_not_stop_the_job(scene_model, mosaic, tmp_path):
    """On a scheduler given by address: each worker in turn is killed as a part finishes (the
    CI once caught a map with a hole here: see test_a_part_that_cannot_be_read...)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())

        class KillOne(ConsoleProgress):
            def set_fraction(self, fraction: float) -> None:
                super().set_fraction(fraction)
                if pids and 0 < fraction < 1:
                    os.kill(pids.pop(), signal.SIGKILL)

        progress = KillOne(quiet=True)
        result = classify_batch([mosaic], scene_model, str(tmp_path), BatchSettings(
            block_size=200, scheduler=cluster.scheduler_address, **SMALL), progress)
    assert not pids, "a worker was killed"
    single = tmp_path / "single.tif"
    classify_raster(mosaic, scene_model, str(single), **SMALL)
    assert np.array_equal(read(result.outputs[mosaic]), read(single))


def test_a_failed_part_is_tried_again_and_one_that_keeps_failing_fails_its_input(
        scene_model, mosaic, tmp_path, monkeypatch):
    """Fault injection on a real in-process cluster: reading raises for some attempts.

    One part of the mosaic fails at its first attempt (a read error, as a network disk may
    give): the log names it and says it is tried again, and the map still equals the
    one-process map. Every attempt at another image fails: that image fails alone, named with
    its last error, and the mosaic is written.
    """
    from distributed import LocalCluster

    import landcoverunet.backend.batch.classify_batch as batch_run

    real, tried = batch_run.run_task, tmp_path / "tried"
    tried.mkdir()
    broken = str(tmp_path / "broken.tif")
    gdal.Translate(broken, str(SCENE), srcWin=[0, 0, 120, 100])

    def flaky(model_bytes, digest, name, task):
        # dask sends the function with each task, so what was tried is kept in files
        marker = tried / f"{os.path.basename(task.output)}.{task.part.name if task.part else ''}"
        first = not marker.exists()
        marker.touch()
        if task.image == broken or (task.part is not None and first):
            raise OSError(f"read error on {os.path.basename(task.image)}")
        return real(model_bytes, digest, name, task)

    monkeypatch.setattr(batch_run, "run_task", flaky)
    progress = ConsoleProgress(quiet=True)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        result = classify_batch([mosaic, broken], scene_model, str(tmp_path / "out"),
                                BatchSettings(block_size=200, scheduler=cluster.scheduler_address,
                                              **SMALL), progress)
    retried = [w for w in progress.warnings if "read error on scene_mosaic.vrt" in w]
    assert retried and all("trying again (2 of 3)" in w for w in retried), retried
    assert "failed 3 times; last error: read error on broken.tif" in result.failed[broken]
    single = tmp_path / "single.tif"
    classify_raster(mosaic, scene_model, str(single), **SMALL)
    assert np.array_equal(read(result.outputs[mosaic]), read(single))


def test_a_part_that_cannot_be_read_fails_the_stitch_instead_of_leaving_a_hole(tmp_path):
    """GDAL's BuildVRT skips a source it cannot open with a warning; the stitch must not."""
    from landcoverunet.backend.batch.stitch import stitch_parts
    from landcoverunet.backend.core.class_map import ClassMap
    from landcoverunet.backend.core.errors import UserError

    folder = tmp_path / ".parts" / "scene-key"
    folder.mkdir(parents=True)
    parts = []
    for i in range(3):
        path = folder / f"r000000_c{i * 10:06d}.tif"
        dataset = gdal.GetDriverByName("GTiff").Create(str(path), 10, 10, 1, gdal.GDT_Byte)
        dataset.SetGeoTransform([i * 10, 1, 0, 10, 0, -1])
        dataset.GetRasterBand(1).Fill(1)
        dataset = None
        parts.append(str(path))
    output = tmp_path / "scene_classes.tif"
    classes = ClassMap.from_codes(["water"])
    stitch_parts(parts, str(output), classes, 0.0, None, ConsoleProgress(quiet=True))
    assert (read(output) == 1).all() and read(output).shape == (10, 30)
    output.unlink()
    folder.mkdir(parents=True)
    for i, path in enumerate(parts):
        dataset = gdal.GetDriverByName("GTiff").Create(path, 10, 10, 1, gdal.GDT_Byte)
        dataset.SetGeoTransform([i * 10, 1, 0, 10, 0, -1])
        dataset = None
    os.remove(parts[1])
    with pytest.raises(UserError, match=r"cannot be read \(r000000_c000010.tif\)"):
        stitch_parts(parts, str(output), classes, 0.0, None, ConsoleProgress(quiet=True))
    assert not output.exists()


def test_model_copies_of_workers_that_ended_are_removed(tmp_path):
    """Worker processes end without atexit (or are killed): the next worker removes their copies
    of the model, and keeps those of processes still running."""
    import subprocess

    from landcoverunet.backend.batch.tasks import MODEL_FOLDER_PREFIX, remove_orphan_copies

    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = tmp_path / f"{MODEL_FOLDER_PREFIX}{ended.pid}-0123abcd-x1"
    alive = tmp_path / f"{MODEL_FOLDER_PREFIX}{os.getpid()}-0123abcd-x2"
    other = tmp_path / "someone-else"
    for folder in (dead, alive, other):
        folder.mkdir()
        (folder / "model.keras").write_text("bytes")
    assert remove_orphan_copies(str(tmp_path)) == [dead.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])
