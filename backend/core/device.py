"""Which device trains, at which precision, with how many CPU threads.

A GPU trains in mixed precision (float16 compute, float32 weights and softmax), which roughly
doubles throughput on recent cards. Without one, TensorFlow's CPU build (oneDNN-optimised on
x86) runs in float32 with one intra-op thread per core, leaving the input pipeline's threads to
run while the network waits on no one.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator

from ...models.precision import FLOAT32, MIXED
from .errors import UserError
from .keras_backend import backend_in_use

DEVICES = ("auto", "cpu", "gpu")


@dataclass
class DeviceChoice:
    """The device a run uses.

    Attributes:
        kind: "gpu" or "cpu".
        keras_device: the name given to ``keras.device`` (e.g. "gpu:0").
        mixed_precision: whether layers compute in float16.
        threads: CPU threads for the network's operations (0: the backend's default).
        description: one line for the log.
    """

    kind: str
    keras_device: str
    mixed_precision: bool
    threads: int
    description: str
    replicas: int = 1
    """Devices that train at once, each on its share of every batch (``training/distribute.py``);
    the batch grows with them, so each device trains on the configured batch size."""

    @property
    def precision(self) -> str:
        return MIXED if self.mixed_precision else FLOAT32


def cpu_cores() -> int:
    """Cores this process may use (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def list_gpus(backend: str | None = None) -> list[str]:
    """Names of the GPUs a Keras backend sees (empty without one); raises when the check itself
    fails (a broken CUDA install), which the installation report shows."""
    backend = backend or backend_in_use()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform == "gpu"]
    return []


def gpu_names() -> list[str]:
    """Names of the GPUs the Keras backend sees; empty without one or when the check fails
    (a broken CUDA install: train on the CPU)."""
    try:
        return list_gpus()
    except Exception:
        return []


def configure_threads(threads: int) -> bool:
    """Sets TensorFlow's thread pools; False when TensorFlow had already started (kept as is)."""
    if backend_in_use() != "tensorflow":
        return False
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(2, threads))
        return True
    except RuntimeError:  # TensorFlow is initialised already in this process
        return False


def choose_device(requested: str = "auto") -> DeviceChoice:
    """Picks the device: the GPU when there is one (unless CPU is asked for), else the CPU.

    Raises:
        UserError: when a GPU is asked for and there is none.
    """
    requested = requested.lower()
    if requested not in DEVICES:
        raise UserError(f"Unknown device '{requested}'; use one of {', '.join(DEVICES)}.")
    gpus = gpu_names() if requested != "cpu" else []
    if requested == "gpu" and not gpus:
        raise UserError("A GPU was asked for, but TensorFlow sees none. Choose 'auto' or 'CPU', "
                        "or install a GPU build of TensorFlow with its CUDA libraries.")
    backend = backend_in_use()
    precision = "mixed precision (float16 compute, float32 weights)"
    if len(gpus) > 1 and backend == "tensorflow":
        return DeviceChoice("gpu", "gpu:0", True, 0,
                            f"{len(gpus)} GPUs ({', '.join(gpus)}), data parallel: each trains "
                            f"on its share of every batch, {precision}", replicas=len(gpus))
    if gpus:
        more = (f" (the first of {len(gpus)}: training on several needs the TensorFlow "
                "backend)" if len(gpus) > 1 else "")
        return DeviceChoice("gpu", "gpu:0", True, 0, f"GPU ({gpus[0]}){more}, {precision}")
    cores = cpu_cores()
    configured = configure_threads(cores)
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    build = "TensorFlow oneDNN CPU build" if backend == "tensorflow" and onednn else backend
    threads = f"{cores} threads" if configured else "threads as already set in this process"
    logical = logical_cpus() if backend == "tensorflow" else 1
    if logical > 1:  # someone split the CPU into logical devices (the tests of the GPU path)
        return DeviceChoice("cpu", "cpu:0", False, cores,
                            f"CPU split into {logical} logical devices, data parallel "
                            f"({build}, {threads}), float32", replicas=logical)
    return DeviceChoice("cpu", cpu_device_name(backend), False, cores,
                        f"CPU ({build}, {threads}), float32")


def cpu_device_name(backend: str) -> str:
    """The name of the CPU for ``keras.device``: "cpu" under PyTorch, else "cpu:0".

    Under PyTorch, Keras creates every variable as a ``torch.nn.Parameter`` on the CPU and then
    moves it with ``.to(<device of the scope>)``. PyTorch (2.13) takes "cpu:0" for another
    device than "cpu" and returns a plain tensor copy instead of the parameter: the weights stop
    being parameters, and the Dropout layer's integer seed state, re-wrapped by Keras's
    ``ParameterDict`` with gradients on, fails to build ("Only Tensors of floating point and
    complex dtype can require gradients"). "cpu" is the device the parameter is on already.
    """
    return "cpu" if backend == "torch" else "cpu:0"


def inference_precision() -> str:
    """The precision classification runs the network in: mixed (float16 arithmetic, float32
    output) where the backend sees a GPU, float32 on the CPU, which has no fast float16.

    Keras is imported first, the plugin's way (``deps.require_keras``): inside QGIS a backend
    imported directly would load h5py against GDAL's HDF5 and fail.
    """
    from .deps import require_keras

    require_keras()
    return MIXED if gpu_names() else FLOAT32


def logical_cpus() -> int:
    """TensorFlow's logical CPU devices: one, unless the process configured more."""
    import tensorflow as tf

    return max(1, len(tf.config.list_logical_devices("CPU")))


@contextlib.contextmanager
def precision_scope(choice: DeviceChoice) -> Iterator[None]:
    """Builds layers under the chosen precision policy, then restores the previous policy."""
    import keras

    previous = keras.config.dtype_policy()
    if choice.mixed_precision:
        keras.config.set_dtype_policy(MIXED)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
