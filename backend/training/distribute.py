"""Training on several local devices at once: data parallel, the TensorFlow way.

With two or more GPUs (or CPU logical devices, which is how the tests prove this path), the
networks of a run are built and compiled under a ``tf.distribute.MirroredStrategy``: every device
holds a copy of the weights, each step's batch (``replicas`` times the configured batch, so each
device trains on the configured size) is split into one share per device, and the gradients
are summed across devices before the one update. Validation, the epoch loop and the model file
are the same as on one device. Under another Keras backend training uses the first device
(``core/device.py`` says so); ``keras.distribution.DataParallel`` is the JAX route, not wired
yet (docs/backends.md). What a run across machines would need: docs/multi_device.md.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, ContextManager

import numpy as np

from ..core.device import DeviceChoice


def device_scope(keras: Any, choice: DeviceChoice) -> ContextManager:
    """Where a run's networks are built, compiled and trained: one device, or all of them."""
    if choice.replicas > 1:
        return _mirrored(choice.kind, choice.replicas).scope()
    return keras.device(choice.keras_device) if choice.keras_device else contextlib.nullcontext()


@functools.lru_cache(maxsize=None)
def _mirrored(kind: str, replicas: int) -> Any:
    """One strategy per device set and process (building one costs a device query)."""
    import tensorflow as tf

    return tf.distribute.MirroredStrategy([f"/{kind}:{i}" for i in range(replicas)])


def train_step(model: Any, x: np.ndarray, y: np.ndarray) -> dict:
    """One training step; on several devices each gets an equal, consecutive share of the batch.

    ``model.train_on_batch`` would hand every device the whole batch (the same work done twice);
    a per-device value built by the strategy is what ``fit`` itself feeds the step.
    """
    strategy = getattr(model, "distribute_strategy", None)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if replicas == 1:
        return model.train_on_batch(x, y, return_dict=True)
    size = len(x) // replicas

    def share(context: Any) -> tuple[np.ndarray, np.ndarray]:
        i = context.replica_id_in_sync_group
        return x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]

    if model.optimizer is not None and not model.optimizer.built:
        # the optimizer's and the metrics' variables must exist, mirrored, before the devices'
        # first step creates them inside one device's context (what train_on_batch does first)
        model._maybe_symbolic_build(data_batch=(x[:size], y[:size], None))
    data = strategy.experimental_distribute_values_from_function(share)
    model.make_train_function()
    model.reset_metrics()
    logs = model.train_function(iter([data]))
    return {name: float(np.asarray(value)) for name, value in logs.items()}


def predict_batch(model: Any, x: np.ndarray) -> np.ndarray:
    """Class probabilities (float32) of a validation batch.

    On several devices ``predict_on_batch`` hands each device the whole batch and stacks their
    answers (twice the rows); validation is a small share of an epoch, so the model is called
    directly there, with its mirrored weights.
    """
    strategy = getattr(model, "distribute_strategy", None)
    if strategy is None or strategy.num_replicas_in_sync == 1:
        return np.asarray(model.predict_on_batch(x), dtype=np.float32)
    return np.asarray(model(x, training=False), dtype=np.float32)
