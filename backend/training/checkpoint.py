"""Checkpoints of a training run, so that a killed or cancelled run can be resumed (``RESUME``).

After every whole epoch, whichever stage is training (a validated run, a cross-validation fold,
the final fit), the run writes to a hidden folder beside the model, ``.<model name>.checkpoint``:
the state of the loop training now (its raw weights, the optimizer's variables with the weight
average, the epoch, the learning-rate plan, the patience, the curves, the best weights so far)
and the state the finished stages ended in. It is one file, replaced atomically, so a run
killed while writing leaves the previous checkpoint whole.

A resumed run first checks that the checkpoint was made for the same images, masks and
settings (its key); what is derived from them (the scenes, the validation windows, the teacher's
pseudo-labels) is rebuilt from the seed exactly as before, the stages that had finished are not
run again, and the stage that was interrupted goes on from its next epoch, with the same batches
and learning rates it would have had (only the dropout draws differ). A run that writes its model
removes the checkpoint; a run without ``RESUME`` on the same model removes a stale one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import UserError
from ..core.progress import Progress
from ..core.raster_io import atomic_output
from .config import shaping_settings

FILE = "checkpoint.npz"
"""The checkpoint: the stages' arrays, and their fields as JSON under :data:`STATE`."""
STATE = "state"


def checkpoint_folder(model_path: str) -> str:
    """The hidden folder of a model's checkpoint: ``.<model name>.checkpoint`` beside it."""
    path = os.path.abspath(model_path)
    return os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.checkpoint")


def checkpoint_key(config: Any) -> str:
    """What a checkpoint is valid for: the settings that shape training (``config.SHAPES``)
    and the input files (path, size and modification time), so that edited masks are never
    resumed."""
    settings = {name: getattr(config, name) for name in shaping_settings()}
    files = [[os.path.abspath(p), os.path.getsize(p), int(os.path.getmtime(p))]
             for p in list(config.images) + list(config.masks) if os.path.exists(p)]
    text = json.dumps([settings, files], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Stage:
    """One stage's saved state: JSON-able fields and named arrays (or lists of arrays)."""

    fields: dict = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)


class Checkpoint:
    """The checkpoint of one run: which stages finished, and the one training now.

    Stages are named ``"fold1"``, ``"fold2"``, ... (a single validated run is ``"fold1"``)
    and ``"final"``.
    """

    def __init__(self, model_path: str, key: str, progress: Progress | None = None) -> None:
        self.folder, self.key, self.progress = checkpoint_folder(model_path), key, progress
        self.stages: dict[str, Stage] = {}
        self.finished: list[str] = []
        self.failed = False

    def load(self) -> str:
        """Reads the checkpoint if there is one for this key; returns what was found, in words
        ("" when there is nothing to resume)."""
        try:
            with np.load(self.path) as stored:
                flat = {name: stored[name] for name in stored.files}
            state = json.loads(str(flat.pop(STATE)))
            damage = _damage(state)
            if damage:
                return (f"The checkpoint beside the model is damaged ({damage}); training "
                        "starts afresh.")
            if state["key"] != self.key:
                return ("The checkpoint beside the model was made for other inputs or settings, "
                        "so training starts afresh.")
            stages = {name: Stage(fields, _unflatten(name, flat))
                      for name, fields in state["stages"].items()}
        except FileNotFoundError:
            return ""
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile,
                RecursionError) as error:
            return (f"The checkpoint beside the model is damaged or cannot be read ({error}); "
                    "training starts afresh.")
        self.finished, self.stages = list(state["finished"]), stages
        return "resumed"

    @property
    def path(self) -> str:
        """The checkpoint file."""
        return os.path.join(self.folder, FILE)

    def stage(self, name: str) -> Stage | None:
        """The saved state of a stage, or None."""
        return self.stages.get(name)

    def save(self, name: str, stage: Stage, finished: bool = False) -> None:
        """Records a stage's state (and whether it finished) and writes the whole checkpoint."""
        self.stages[name] = stage
        if finished and name not in self.finished:
            self.finished.append(name)
        os.makedirs(self.folder, exist_ok=True)
        state = {"key": self.key, "finished": self.finished,
                 "stages": {n: s.fields for n, s in self.stages.items()}}
        flat = {STATE: np.asarray(json.dumps(state))}
        for stage_name, saved in self.stages.items():
            flat.update(_flatten(stage_name, saved.arrays))
        with atomic_output(self.path) as temporary:
            write_npz(temporary, flat)

    def save_loop(self, name: str, loop: Any) -> None:
        """Checkpoints an epoch loop (``loop.EpochLoop``) after a whole epoch. A checkpoint that
        cannot be written is said once and training goes on without (it is a safety net, not a
        result). Holds no reference to the loop, so models are freed as soon as a run ends."""
        if self.failed:
            return
        try:
            self.save(name, loop.state(), finished=loop.finished and loop.length.validates)
        except (UserError, OSError) as error:
            self.failed = True
            if self.progress is not None:
                self.progress.warn(f"The checkpoint cannot be written ({error}); training goes "
                                   "on, but a killed run could not be resumed.")

    def remove(self) -> None:
        """Removes the checkpoint folder (never raises)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _damage(state: Any) -> str:
    """What is wrong with a checkpoint's state record, in words ("" when it has the shape
    :meth:`Checkpoint.save` writes: a key, the finished stages' names, each stage's fields)."""
    if not isinstance(state, dict):
        return f"its state is a {type(state).__name__}, not a record"
    stages, finished = state.get("stages"), state.get("finished")
    if not isinstance(state.get("key"), str) or not isinstance(stages, dict) or not (
            isinstance(finished, list) and all(isinstance(f, str) for f in finished)):
        return "its state lacks the key, the stages or the finished stages"
    for name, fields in stages.items():
        if not isinstance(fields, dict) or not isinstance(fields.get("epoch"), int):
            return f"the stage '{name}' is not a record of fields"
    return ""


def _flatten(stage: str, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
    """``{"<stage>/<name>": array}``, a list of arrays as ``"<stage>/<name>/<i>"``."""
    flat = {}
    for name, value in arrays.items():
        if isinstance(value, list):
            flat.update({f"{stage}/{name}/{i}": np.asarray(v) for i, v in enumerate(value)})
            flat[f"{stage}/{name}/n"] = np.asarray(len(value))
        elif value is not None:
            flat[f"{stage}/{name}"] = np.asarray(value)
    return flat


def _unflatten(stage: str, flat: dict[str, np.ndarray]) -> dict[str, Any]:
    prefix = f"{stage}/"
    arrays: dict[str, Any] = {}
    for key in flat:
        if key.startswith(prefix) and key.count("/") == 1:
            arrays[key[len(prefix):]] = flat[key]
        elif key.startswith(prefix) and key.endswith("/n"):
            name = key[len(prefix):-2]
            arrays[name] = [flat[f"{prefix}{name}/{i}"] for i in range(int(flat[key]))]
    return arrays


def write_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes arrays as ``np.savez`` does (``np.load`` reads them), closing the archive even
    when a write fails: ``np.savez`` leaves it open on a full disk, and Python later prints
    "Exception ignored in ZipFile.__del__" when it collects it."""
    import zipfile

    with zipfile.ZipFile(path, "w", allowZip64=True) as archive:
        for name, values in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(values), allow_pickle=False)
