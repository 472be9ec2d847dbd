"""RESUME: a cancelled or killed training run goes on after its last whole epoch.

Real training on the NC scene (34 features, so 3-fold cross-validation, the teacher and the
final fit all run), cancelled in the second fold or killed with SIGKILL under qgis_process;
the next run with RESUME must not train the finished stages again, must go on from the
checkpointed epoch, and must remove the checkpoint once its model is written.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fixtures_training import ALG

from support import QGIS_PROFILE

from landcoverunet.backend.core.progress import ConsoleProgress
from landcoverunet.backend.training.checkpoint import (
    Checkpoint, Stage, checkpoint_folder, checkpoint_key)
from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet

EPOCHS = 3


class CancelAt(ConsoleProgress):
    """Cancels once a log line starting with ``line`` was written (as the Cancel button)."""

    def __init__(self, line: str) -> None:
        super().__init__(quiet=True)
        self.line, self.asked = line, False

    def info(self, message: str) -> None:
        super().info(message)
        self.asked = self.asked or message.startswith(self.line)

    def cancelled(self) -> bool:
        return self.asked


def config(nc_stack: Path, nc_mask: Path, model: Path, resume: bool = False) -> TrainingConfig:
    return TrainingConfig(images=[str(nc_stack)], masks=[str(nc_mask)], output_model=str(model),
                          tile_size=64, batch_size=4, epochs=EPOCHS, steps_per_epoch=3,
                          patience=EPOCHS, seed=2, resume=resume)


@pytest.mark.slow
def test_a_cancelled_run_resumes_after_its_last_whole_epoch(nc_stack, nc_mask, tmp_path):
    model = tmp_path / "model.keras"
    folder = Path(checkpoint_folder(str(model)))
    folder.mkdir()
    (folder / "stale.txt").write_text("from a run long ago")  # a run without RESUME removes it

    first = train_unet(config(nc_stack, nc_mask, model),
                       CancelAt(f"Fold 2/3, epoch 1/{EPOCHS}"))
    assert first.cancelled and not model.exists()
    assert not (folder / "stale.txt").exists()
    saved = Checkpoint(str(model), checkpoint_key(config(nc_stack, nc_mask, model)))
    assert saved.load() == "resumed"
    assert saved.finished == ["fold1"] and saved.stage("fold2").fields["epoch"] == 1
    iterations = saved.stage("fold2").arrays["optimizer"][0]  # the optimizer's step counter
    assert int(iterations) == 3, "the optimizer state after one epoch of 3 steps"

    progress = ConsoleProgress(quiet=True)
    resumed = train_unet(config(nc_stack, nc_mask, model, resume=True), progress)
    log = "\n".join(progress.messages)
    assert "Resuming the earlier run from its checkpoint: stages finished: fold1; going on " \
           "with fold2 after epoch 1." in log
    assert "Fold 1/3, resumed after epoch 3 (finished)." in log
    assert "Fold 2/3, resumed after epoch 1." in log
    assert "Fold 1/3, epoch" not in log and "Fold 2/3, epoch 1/" not in log  # not trained again
    assert f"Fold 2/3, epoch 2/{EPOCHS}" in log and f"Fold 3/3, epoch 1/{EPOCHS}" in log
    assert "Final fit, epoch" in log
    assert not resumed.cancelled and model.is_file() and len(resumed.history) == EPOCHS
    assert not folder.exists(), "a run that wrote its model removes the checkpoint"


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    model = str(tmp_path / "model.keras")
    weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, np.float32)]
    Checkpoint(model, "key-a").save("fold1", Stage({"epoch": 2}, {"weights": weights}))
    same = Checkpoint(model, "key-a")
    assert same.load() == "resumed" and same.stage("fold1").fields == {"epoch": 2}
    assert all(np.array_equal(a, b) for a, b in zip(same.stage("fold1").arrays["weights"],
                                                    weights))
    assert "other inputs or settings" in Checkpoint(model, "key-b").load()
    assert Checkpoint(str(tmp_path / "other.keras"), "key-a").load() == ""
    Path(same.path).write_bytes(b"half a file")  # damaged: said, and training starts afresh
    assert "cannot be read" in Checkpoint(model, "key-a").load()


@pytest.mark.slow
def test_a_killed_run_resumes_under_qgis_process(qgis_process_ready, nc_stack, nc_mask,
                                                 tmp_path):
    model = tmp_path / "model.keras"
    state = Path(checkpoint_folder(str(model))) / "checkpoint.npz"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_OPTS": "",
           "QGIS_CUSTOM_CONFIG_PATH": QGIS_PROFILE}
    command = ["qgis_process.bin", "run", ALG, "--", f"INPUT={nc_stack}", f"MASK={nc_mask}",
               f"OUTPUT_MODEL={model}", "EPOCHS=3", "STEPS_PER_EPOCH=3", "TILE_SIZE=64",
               "BATCH_SIZE=4", "PATIENCE=3", "SEED=2"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 600
        while not state.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert state.exists() and not model.exists()

    done = subprocess.run(command + ["RESUME=true"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Resuming the earlier run from its checkpoint" in done.stdout
    assert "Fold 1/3, epoch 1/3" not in done.stdout  # the checkpointed epoch is not run again
    assert model.is_file() and not state.parent.exists()
