"""A good earlier model is never lost: cancel, a failure after training, and kill -9.

Each test starts from an earlier run's files (a real model, its epoch log, its report), hashed,
and checks that they are byte for byte the same after the new run was cancelled, failed after
training, or was killed; and that no hidden temporary file stays once a run has finished.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from qgis import processing
from fixtures_training import ALG, TINY, CancelAfterFirstEpoch

from support import QGIS_PROFILE

from landcoverunet.backend.core.errors import UserError


def earlier_run(folder: Path, nc_model: Path) -> dict[str, str]:
    """An earlier run's model, epoch log and report in ``folder``; returns their hashes."""
    folder.mkdir(exist_ok=True)
    shutil.copy(nc_model, folder / "model.keras")
    (folder / "model_epochs.csv").write_text("epoch,loss\n1,0.5\n", encoding="utf-8")
    (folder / "report.html").write_text("<html>the earlier report</html>", encoding="utf-8")
    return hashes(folder)


def hashes(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in ("model.keras", "model_epochs.csv", "report.html")}


def partial_files(folder: Path) -> list[str]:
    return sorted(name for name in os.listdir(folder) if ".partial-" in name)


@pytest.mark.slow
def test_cancel_writes_beside_and_never_replaces(plugin, nc_stack, nc_mask, nc_model, tmp_path):
    out = tmp_path / "out"
    before = earlier_run(out, nc_model)
    feedback = CancelAfterFirstEpoch()
    result = processing.run(ALG, dict(INPUT=str(nc_stack), MASK=str(nc_mask),
                                      OUTPUT_MODEL=str(out / "model.keras"),
                                      OUTPUT_REPORT=str(out / "report.html"),
                                      **{**TINY, "EPOCHS": 20}), feedback=feedback)
    assert hashes(out) == before
    assert result["OUTPUT_MODEL"] == str(out / "model.cancelled.keras")
    assert result["OUTPUT_REPORT"] == str(out / "report.cancelled.html")
    for name in ("model.cancelled.keras", "model.cancelled_epochs.csv", "report.cancelled.html"):
        assert (out / name).is_file(), name
    assert "was left as it was" in feedback.textLog()
    assert partial_files(out) == []


@pytest.mark.slow
def test_failure_after_training_keeps_the_earlier_model(nc_stack, nc_mask, nc_model, tmp_path):
    from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet

    out = tmp_path / "out"
    before = earlier_run(out, nc_model)
    blocked = out / "blocked.html"   # the report cannot be written: a folder has its name
    blocked.mkdir()
    with pytest.raises(UserError, match="is a folder.*left as they were"):
        train_unet(TrainingConfig(images=[str(nc_stack)], masks=[str(nc_mask)],
                                  output_model=str(out / "model.keras"),
                                  output_report=str(blocked), tile_size=64, batch_size=4,
                                  epochs=1, steps_per_epoch=2, seed=1, final_fit=False))
    assert hashes(out) == before and partial_files(out) == []


@pytest.mark.slow
def test_kill_keeps_the_earlier_model_and_the_next_run_cleans_up(qgis_process_ready, nc_stack,
                                                                 nc_mask, nc_model, tmp_path):
    out = tmp_path / "out"
    before = earlier_run(out, nc_model)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_OPTS": "",
           "QGIS_CUSTOM_CONFIG_PATH": QGIS_PROFILE}
    process = subprocess.Popen(
        ["qgis_process.bin", "run", ALG, "--", f"INPUT={nc_stack}", f"MASK={nc_mask}",
         f"OUTPUT_MODEL={out / 'model.keras'}", f"OUTPUT_REPORT={out / 'report.html'}",
         "EPOCHS=50", "STEPS_PER_EPOCH=3", "TILE_SIZE=64", "BATCH_SIZE=4", "PATIENCE=50"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 600
        while not partial_files(out) and process.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)   # let it write more: the epoch log of the next epochs
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    left = partial_files(out)
    assert left and all(name.startswith(".model_epochs.partial-") for name in left), left
    assert hashes(out) == before   # the epoch log beside the old model is the old one

    from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet
    train_unet(TrainingConfig(images=[str(nc_stack)], masks=[str(nc_mask)],
                              output_model=str(out / "model.keras"),
                              output_report=str(out / "report.html"), tile_size=64,
                              batch_size=4, epochs=1, steps_per_epoch=2, seed=1,
                              final_fit=False))
    assert partial_files(out) == []
    assert hashes(out)["model.keras"] != before["model.keras"]
