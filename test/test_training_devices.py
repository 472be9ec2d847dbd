"""Training on several devices (data parallel), proved on TensorFlow's CPU split into two logical
devices: the path a machine with two GPUs takes. Each case runs in a fresh process, because
logical devices must be set before TensorFlow starts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SPLIT = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""


def run_split(code: str, tmp_path: Path) -> dict:
    """Runs ``code`` after splitting the CPU in two; it prints one JSON line, returned here."""
    script = tmp_path / "case.py"
    script.write_text(SPLIT + code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent)] + os.environ.get("PYTHONPATH", "").split(os.pathsep))}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="data-parallel training is wired for the TensorFlow backend")
def test_a_data_parallel_step_equals_one_step_on_the_whole_batch(tmp_path):
    """Each device takes half the batch; the summed update equals one device on all of it.
    (Plain SGD: Adam's first step moves every weight by about its rate whatever the gradient's
    size, so float noise on near-zero gradients would flip signs and hide what is compared. No
    batch normalisation: each device normalises by its own share's statistics, as usual.)"""
    result = run_split("""
import json
import keras
import numpy as np
from landcoverunet.backend.core.device import DeviceChoice
from landcoverunet.backend.training.distribute import device_scope, train_step
from landcoverunet.models.losses import make_loss
from landcoverunet.models.metrics import MaskedMeanIoU

def network(choice):
    # convolutions without batch normalisation, whose statistics are each device's own
    with device_scope(keras, choice):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((None, None, 4))
        hidden = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(hidden))
        model.compile(optimizer=keras.optimizers.SGD(0.5), metrics=[MaskedMeanIoU(3)],
                      loss=make_loss("cross_entropy"))
    return model

rng = np.random.default_rng(0)
x = rng.normal(size=(8, 32, 32, 4)).astype("float32")
y = rng.integers(1, 4, (8, 32, 32)).astype("uint8")
one = network(DeviceChoice("cpu", "cpu:0", False, 0, "one"))
two = network(DeviceChoice("cpu", "cpu:0", False, 0, "two", replicas=2))
two.set_weights(one.get_weights())
logs = [train_step(m, x, y) for m in (one, two)]
print(json.dumps({"replicas": two.distribute_strategy.num_replicas_in_sync,
                  "logs": logs,
                  "moved": max(float(np.abs(a - b).max()) for a, b in
                               zip(one.get_weights(), network(DeviceChoice(
                                   "cpu", "cpu:0", False, 0, "x")).get_weights())),
                  "differ": max(float(np.abs(a - b).max())
                                for a, b in zip(one.get_weights(), two.get_weights()))}))
""", tmp_path)
    assert result["replicas"] == 2
    assert result["moved"] > 1e-3          # the step changed the weights ...
    assert result["differ"] < 1e-4         # ... the same way on one device and on two
    one, two = result["logs"]
    assert abs(one["loss"] - two["loss"]) < 1e-4 and abs(one["miou"] - two["miou"]) < 1e-3


@pytest.mark.skipif(os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
                    reason="data-parallel training is wired for the TensorFlow backend")
def test_training_runs_on_two_devices_and_the_model_classifies_anywhere(tmp_path):
    result = run_split("""
import json
from pathlib import Path
from fixtures_training import synthetic_scene
from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.model.opened import open_model
from landcoverunet.backend.core.progress import ConsoleProgress
from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet

image, mask, _ = synthetic_scene(Path("."))
progress = ConsoleProgress(quiet=True)
train_unet(TrainingConfig([image], [mask], "model.keras", epochs=2, steps_per_epoch=2,
                          batch_size=4, seed=1), progress)
classify_raster(image, "model.keras", "classes.tif")
print(json.dumps({"messages": progress.messages,
                  "metrics": open_model("model.keras").metadata.metrics}))
""", tmp_path)
    messages = result["messages"]
    assert any("split into 2 logical devices, data parallel" in m for m in messages), messages
    assert any("steps of 8 windows per epoch" in m for m in messages), messages
    assert result["metrics"]["devices"] == 2 and result["metrics"]["final_fit"] is True
    assert (tmp_path / "classes.tif").is_file()
