"""What a dask worker runs: one image, or one part of a large image, classified to a file.

The model file's bytes reach each worker once (scattered by the client); the worker writes them
to a local file and loads the network the first time, then keeps it for every later task of the
same model. A task runs the same code as ``classifyraster`` (windows, overlap, blending, TTA),
writes its file atomically, and reports an analyst's error (a bad image) as a result rather than
raising, so dask does not retry what cannot succeed; any other failure raises, and the client
tries the task again.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field

from ..classify.parts import Part
from ..classify.classify_raster import classify_raster, load_for_classification
from ..core.errors import UserError
from ..model.opened import OpenedModel, open_model

_MODELS: dict[str, OpenedModel] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class Task:
    """One unit of work: classify ``image`` (or its ``part``) into ``output``."""

    image: str
    output: str
    part: Part | None = None
    settings: dict = field(default_factory=dict)
    """Keyword arguments of ``classify_raster`` (tta, batch_size, min_mapping_unit, ...)."""

    @property
    def label(self) -> str:
        """How the log names this task."""
        name = os.path.basename(self.image)
        return name if self.part is None else f"part {self.part.name} of '{name}'"


MODEL_FOLDER_PREFIX = "landcoverunet-model-"
"""Worker copies of a model go into ``<temp>/landcoverunet-model-<pid>-<digest>-<random>``."""


def worker_model(model_bytes: bytes, digest: str, name: str) -> OpenedModel:
    """The model file's local copy, opened (checked) and its network loaded once per worker
    process; every later task of the same model reuses it."""
    with _LOCK:
        if digest not in _MODELS:
            remove_orphan_copies()
            folder = tempfile.mkdtemp(prefix=f"{MODEL_FOLDER_PREFIX}{os.getpid()}-{digest[:8]}-")
            path = os.path.join(folder, name)
            with open(path, "wb") as handle:
                handle.write(model_bytes)
            opened = open_model(path)
            load_for_classification(opened)
            _MODELS[digest] = opened
        return _MODELS[digest]


def remove_orphan_copies(folder: str | None = None) -> list[str]:
    """Removes the model copies of worker processes that no longer run.

    A worker process ends without running ``atexit`` (multiprocessing leaves with
    ``os._exit``), or is killed, so it cannot remove its own copy; the next worker on the
    machine does. Never raises.
    """
    folder = folder or tempfile.gettempdir()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.listdir(folder):
            if not entry.startswith(MODEL_FOLDER_PREFIX):
                continue
            pid = entry[len(MODEL_FOLDER_PREFIX):].split("-")[0]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)
                removed.append(entry)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it runs, as another user
        return True
    return True


def run_task(model_bytes: bytes, digest: str, model_name: str, task: Task) -> dict:
    """Classifies one task on a worker; returns {"error": message} for an analyst's error.

    A part already written is not written again: dask may run a task a second time when the
    worker holding its answer dies, and the part's file is its answer.
    """
    if task.part is not None and os.path.exists(task.output):
        return {"seconds": 0.0, "pixels": {}}
    try:
        model = worker_model(model_bytes, digest, model_name)
        result = classify_raster(task.image, model, task.output, part=task.part,
                                 overviews=task.part is None, **task.settings)
    except UserError as error:
        return {"error": str(error)}
    return {"seconds": result.seconds, "pixels": result.pixels_per_class}
