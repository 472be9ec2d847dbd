"""Classifying many images, or huge mosaics, on dask.distributed: plan, submit, retry, stitch.

Each input becomes ``<folder>/<input name>_classes.tif``. An input no larger than a block is one
task that does exactly what ``classifyraster`` does; a larger one is split by extent into
blocks (``classify/parts.py``) whose windows reach beyond the block as far as the whole
layout's do, so the stitched parts equal the one-process map exactly; the client stitches them
(``stitch.py``), then applies the minimum mapping unit and writes the polygons on the whole map.

Parts are written atomically into ``<folder>/.parts/<name>-<key>/`` (the key changes with the
model and the settings), and each map carries the key of the model, settings and image that
made it (``resume.py``), so a re-run skips the parts and the maps this model already finished
with these settings, and classifies again (replacing) what another model or setting made. A task
that fails unexpectedly (a worker lost, a read error) is tried again and named in the log; an
input whose task keeps failing, or that is unfit (wrong bands, unreadable), fails alone with its
message while the others finish.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field

from ..classify.parts import Part, split
from ..classify.classify_raster import DEFAULT_BATCH_SIZE, check_image
from ..core.choices import TTA_NONE
from ..core.errors import Cancelled, UserError
from ..model.metadata import ModelMetadata
from ..model.opened import open_model
from ..core.progress import Progress, SubProgress
from ..core.raster_io import open_raster
from .cluster import open_client
from .resume import RUN_KEY_ITEM, map_key, refuse_outputs_over_inputs, run_key
from .stitch import stitch_parts
from .tasks import Task, run_task

DEFAULT_BLOCK_SIZE = 8192
"""Block side (pixels) above which an image is split: a task of ~10 min on one CPU core."""
RETRIES = 2
"""A task that fails unexpectedly is tried this many more times before its input fails."""
POLL_SECONDS = 0.5
"""How often the client looks at cancel while waiting for tasks."""
PARTS_FOLDER = ".parts"
OUTPUT_SUFFIX = "_classes"


@dataclass
class BatchSettings:
    """How a batch is split, where it runs, and what each task does."""

    block_size: int = DEFAULT_BLOCK_SIZE
    scheduler: str = ""
    workers: int = 2
    tta: str = TTA_NONE
    batch_size: int = DEFAULT_BATCH_SIZE
    min_mapping_unit: float = 0.0
    vectors: bool = False
    window_size: int | None = None
    overlap: int | None = None
    retries: int = RETRIES

    def classify_settings(self) -> dict:
        """The keyword arguments every task passes to ``classify_raster``."""
        return {"tta": self.tta, "batch_size": self.batch_size, "window_size": self.window_size,
                "overlap": self.overlap}

    def map_settings(self) -> dict:
        """The settings that change a map (not how the work is split or batched): part of the
        key that tells a finished map of this run from another run's (``resume.py``)."""
        return {"tta": self.tta, "window_size": self.window_size, "overlap": self.overlap,
                "min_mapping_unit": self.min_mapping_unit}


@dataclass
class BatchResult:
    """Per input: the class raster written (or skipped as already there), or why it failed."""

    outputs: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class _Input:
    image: str
    output: str
    vector: str | None
    parts: list[Part]
    key: str = ""
    """The run key written into the map (``resume.run_key``)."""
    folder: str = ""
    remaining: int = 0

    def part_path(self, part: Part) -> str:
        return os.path.join(self.folder, f"{part.name}.tif")


def output_path(folder: str, image: str) -> str:
    """Where an input's class raster goes: ``<folder>/<input name>_classes.tif``."""
    stem = os.path.splitext(os.path.basename(image))[0]
    return os.path.join(folder, f"{stem}{OUTPUT_SUFFIX}.tif")


def polygons_path(output: str) -> str:
    """Where the polygons of a class raster go: beside it, as a GeoPackage."""
    return os.path.splitext(output)[0] + ".gpkg"


def classify_batch(images: list[str], model_path: str, folder: str, settings: BatchSettings,
                   progress: Progress) -> BatchResult:
    """Classifies every image into ``folder`` on dask.distributed; see the module docstring."""
    metadata = open_model(model_path).metadata  # a refused file is said once, before any task
    with open(model_path, "rb") as handle:
        model_bytes = handle.read()
    digest = hashlib.sha256(model_bytes).hexdigest()
    result = BatchResult()
    inputs = _plan(images, model_path, folder, settings, metadata, digest, result, progress)
    tasks = [(item, _task(item, part, settings)) for item in inputs for part in item.parts
             if item.folder == "" or not os.path.exists(item.part_path(part))]
    for item in inputs:
        item.remaining = sum(1 for owner, _ in tasks if owner is item)
    if not inputs:
        return result
    progress.info(f"{len(inputs)} image(s) to classify: {len(tasks)} task(s) "
                  f"({sum(len(i.parts) for i in inputs) - len(tasks)} part(s) already done).")
    with open_client(settings.scheduler, settings.workers, progress) as client:
        model = [client.scatter(model_bytes, broadcast=True)]  # once per worker, not per task
        name = os.path.basename(model_path)
        futures: dict = {}

        def submit(item: _Input, task: Task, attempt: int) -> None:
            if model[0].status != "finished":  # its copies died with their workers: send again
                model[0] = client.scatter(model_bytes, broadcast=True)
            future = client.submit(run_task, model[0], digest, name, task, pure=False)
            futures[future] = (item, task, attempt)

        def finish(item: _Input) -> None:
            try:
                if item.folder:
                    progress.info(f"Stitching the {len(item.parts)} parts of "
                                  f"'{os.path.basename(item.image)}' ...")
                    now = done / max(len(tasks), 1)  # the bar stays while it stitches
                    stitch_parts([item.part_path(p) for p in item.parts], item.output,
                                 metadata.classes, settings.min_mapping_unit, item.vector,
                                 SubProgress(progress, now, now), {RUN_KEY_ITEM: item.key})
                result.outputs[item.image] = item.output
                progress.info(f"Written: {item.output}")
            except UserError as error:
                fail(item, str(error))

        def fail(item: _Input, message: str) -> None:
            result.failed[item.image] = message
            progress.warn(f"'{os.path.basename(item.image)}' failed: {message}")
            for future, (owner, _, _) in list(futures.items()):
                if owner is item:
                    future.cancel()
                    del futures[future]

        done = 0
        for item, task in tasks:
            submit(item, task, 1)
        for item in inputs:
            if item.remaining == 0:
                finish(item)
        while futures:
            if progress.cancelled():
                client.cancel(list(futures))
                raise Cancelled()
            finished = _wait(list(futures))
            for future in finished:
                if future not in futures:
                    continue
                item, task, attempt = futures.pop(future)
                answer, error = _answer(future)
                future.cancel()  # read: dask must not run it again if its worker dies now
                if answer is None:
                    if attempt <= settings.retries:
                        progress.warn(f"{task.label} failed ({error}); trying again "
                                      f"({attempt + 1} of {settings.retries + 1}).")
                        submit(item, task, attempt + 1)
                    else:
                        fail(item, f"{task.label} failed {attempt} times; last error: {error}")
                    continue
                if "error" in answer:
                    fail(item, answer["error"] if task.part is None else
                         f"{task.label}: {answer['error']}")
                    continue
                done += 1
                progress.set_fraction(done / max(len(tasks), 1))
                item.remaining -= 1
                if item.remaining == 0:
                    finish(item)
    progress.set_fraction(1.0)
    return result


def _answer(future) -> tuple[dict | None, object]:
    """A done task's answer, or None and why it is lost.

    A task fails (its exception), is cancelled by dask (its worker or the model's copy was
    lost), or finishes on a worker that dies before the client gathers its answer: all three
    are worth trying again.
    """
    if future.status == "error":
        return None, future.exception()
    if future.status != "finished":
        return None, "its worker or the model's copy was lost"
    try:
        return future.result(), None
    except Exception:  # noqa: BLE001 - finished, then lost with its worker before it was read
        return None, "its worker was lost before its answer was read"


def _wait(futures: list) -> list:
    """The futures that are done (finished, failed or cancelled), after a short wait if none is.

    Polled rather than ``distributed.wait``, which raises as soon as one future is cancelled
    (as dask cancels tasks whose scattered model copy died with a worker).
    """
    done = [future for future in futures if future.done()]
    if not done:
        time.sleep(POLL_SECONDS)
    return done


def _task(item: _Input, part: Part, settings: BatchSettings) -> Task:
    if not item.folder:  # one task does all that classifyraster does
        extra = {"min_mapping_unit": settings.min_mapping_unit, "vector_path": item.vector,
                 "tags": {RUN_KEY_ITEM: item.key}}
        return Task(item.image, item.output, None, {**settings.classify_settings(), **extra})
    return Task(item.image, item.part_path(part), part, settings.classify_settings())


def _plan(images: list[str], model_path: str, folder: str, settings: BatchSettings,
          metadata: ModelMetadata, digest: str, result: BatchResult,
          progress: Progress) -> list[_Input]:
    """Checks each input on the client (cheap) and lays out its parts; unfit inputs fail here,
    and outputs that would overwrite an input refuse the whole run."""
    planned: list[_Input] = []
    seen: dict[str, str] = {}
    unique = []
    for image in images:
        output = output_path(folder, image)
        if output in seen:
            result.failed[image] = (f"'{seen[output]}' already writes {output}: give the inputs "
                                    "different file names.")
            progress.warn(f"'{image}' failed: {result.failed[image]}")
            continue
        seen[output] = image
        unique.append((image, output, polygons_path(output) if settings.vectors else None))
    refuse_outputs_over_inputs({image: [p for p in (output, vector) if p]
                                for image, output, vector in unique}, images + [model_path])
    for image, output, vector in unique:
        key = run_key(digest, image, settings.map_settings())
        earlier = map_key(output)
        if earlier == key and (vector is None or os.path.exists(vector)):
            result.skipped.append(image)
            result.outputs[image] = output
            progress.info(f"'{os.path.basename(image)}' is already classified by this model "
                          f"with these settings ({output}); skipped (delete it to classify it "
                          "again).")
            continue
        if os.path.exists(output) and earlier != key:
            stale = polygons_path(output)
            progress.warn(
                f"'{output}' was made by another model, other settings or from another version "
                f"of '{os.path.basename(image)}' (or not by this batch): it is classified again "
                "and replaced." + (f" '{stale}' beside it holds the earlier map's polygons; "
                                   "delete it, or run with polygons to replace it too."
                                   if vector is None and os.path.exists(stale) else ""))
        try:
            dataset = open_raster(image)
            check_image(dataset, metadata, os.path.basename(image), progress)
            width, height = dataset.RasterXSize, dataset.RasterYSize
            dataset = None
        except UserError as error:
            result.failed[image] = str(error)
            progress.warn(f"'{os.path.basename(image)}' failed: {error}")
            continue
        parts = split(width, height, settings.block_size)
        item = _Input(image, output, vector, parts, key)
        if len(parts) > 1:
            key = _key(digest, image, width, height, settings)
            stem = os.path.splitext(os.path.basename(output))[0]
            item.folder = os.path.join(folder, PARTS_FOLDER, f"{stem}-{key}")
        planned.append(item)
    return planned


def _key(digest: str, image: str, width: int, height: int, settings: BatchSettings) -> str:
    """Names a job's parts: the same model, image and settings find the same finished parts."""
    text = json.dumps([digest, os.path.abspath(image), width, height, settings.block_size,
                       settings.classify_settings()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
