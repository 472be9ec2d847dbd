"""TensorBoard logs under every Keras backend: tf.summary writes plain numbers and pictures."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest


def scalar_tags(folder) -> set[str]:
    """The scalar names of every events file under a folder (read with TensorFlow)."""
    import tensorflow as tf

    tags = set()
    for root, _, files in os.walk(folder):
        for name in files:
            if name.startswith("events.out.tfevents"):
                for event in tf.compat.v1.train.summary_iterator(os.path.join(root, name)):
                    tags |= {value.tag for value in event.summary.value}
    return tags


def train_under_jax(nc_stack, nc_mask, folder, board, without_tensorflow: bool = False) -> str:
    """Trains a tiny U-Net under JAX in a fresh process with a TensorBoard folder; its output.

    ``without_tensorflow`` makes TensorFlow unimportable in that process (``sys.modules`` entry
    None, Python's way to block an import), as on a system where only JAX is installed."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "KERAS_HOME": str(folder)}
    block = "import sys; sys.modules['tensorflow'] = None" if without_tensorflow else ""
    code = textwrap.dedent(f"""
        {block}
        import sys
        import keras
        from landcoverunet.backend.core.progress import ConsoleProgress
        from landcoverunet.backend.training.train_unet import TrainingConfig, train_unet
        train_unet(TrainingConfig(
            images=[{str(nc_stack)!r}], masks=[{str(nc_mask)!r}],
            output_model={str(folder / "model.keras")!r}, tile_size=64, batch_size=4,
            epochs=2, steps_per_epoch=2, patience=2, seed=1, teacher=False, final_fit=False,
            tensorboard_dir={str(board)!r}), ConsoleProgress())
        print("BACKEND", keras.config.backend(), "tensorflow" in sys.modules and
              sys.modules["tensorflow"] is not None)
    """)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_training_under_jax_writes_a_tensorboard_log(nc_stack, nc_mask, tmp_path):
    board = tmp_path / "tb"
    out = train_under_jax(nc_stack, nc_mask, tmp_path, board)
    assert "BACKEND jax True" in out
    assert "TensorBoard" not in out, "no warning: the log was written"
    tags = scalar_tags(board)
    assert {"loss/train", "loss/validation", "miou/validation", "learning_rate",
            "confusion matrix", "validation tiles (image | label | prediction)"} <= tags, tags


@pytest.mark.slow
def test_without_tensorflow_training_says_tensorboard_needs_it(nc_stack, nc_mask, tmp_path):
    from landcoverunet.backend.training.report_html import TENSORBOARD_NEEDS_TENSORFLOW

    board = tmp_path / "tb"
    out = train_under_jax(nc_stack, nc_mask, tmp_path, board, without_tensorflow=True)
    assert "BACKEND jax False" in out
    assert out.count("TensorBoard") == 1
    assert f"WARNING: {TENSORBOARD_NEEDS_TENSORFLOW}" in out
    assert (tmp_path / "model.keras").is_file() and not board.exists()
