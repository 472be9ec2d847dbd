"""What a batch run may keep from an earlier one, and what it must never write over.

A batch rerun into the same folder skips the images already classified. "Already classified"
means by this model (its bytes' hash), with these settings, from this image as it is now: each
map carries that as a metadata item (:data:`RUN_KEY_ITEM`), written into the file before it is
moved into place. A map without the item, or with another, was made by another model or other
settings (or is not a map of this plugin at all) and is classified again and replaced, with a
warning; an output that is one of the inputs (``in/x.tif`` and ``out/x_classes.tif`` both
given) is refused before any work, as the single-image algorithms refuse it.
"""
from __future__ import annotations

import hashlib
import json
import os

from ..core.errors import UserError
from ..core.output_checks import PlannedOutput, input_files, output_files

RUN_KEY_ITEM = "LANDCOVERUNET_BATCH_RUN"
"""Metadata item of a batch map: the key of the model, settings and image that made it."""


def run_key(model_digest: str, image: str, settings: dict) -> str:
    """The key of one image's map: the model file's sha256, the settings that change the map,
    and the image file (path, size and modification time: an image replaced since is new)."""
    try:
        stat = os.stat(image)
        identity = [os.path.abspath(image), stat.st_size, stat.st_mtime_ns]
    except OSError:
        identity = [os.path.abspath(image)]
    text = json.dumps([model_digest, identity, settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def map_key(path: str) -> str | None:
    """The run key a map carries, or None (no map there, not readable, or made otherwise)."""
    from osgeo import gdal

    if not os.path.isfile(path):
        return None
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        dataset = gdal.Open(path)
        return dataset.GetMetadataItem(RUN_KEY_ITEM) if dataset is not None else None
    finally:
        gdal.PopErrorHandler()


def refuse_outputs_over_inputs(outputs: dict[str, list[str]], reads: list[str]) -> None:
    """Refuses a batch whose outputs would overwrite one of its inputs (or a file that comes
    with one: a VRT's sources, a raster's sidecars).

    Args:
        outputs: image -> the files its map will write (class raster, polygons).
        reads: every file the run reads (the images and the model).

    Raises:
        UserError: naming the image, the output and the input it would destroy.
    """
    read: dict[str, tuple[str, bool]] = {}
    for path in reads:
        itself = os.path.realpath(path)
        for name in sorted(input_files(path), key=lambda n: n != itself):
            read.setdefault(name, (path, name == itself))
    for image, paths in outputs.items():
        for path in paths:
            target = os.path.realpath(path)
            for name in sorted(output_files(PlannedOutput("", path)), key=lambda n: n != target):
                if name not in read:
                    continue
                owner, main = read[name]
                what = (f"which is the input '{owner}'" if main and name == target else
                        f"which belongs to the input '{owner}'" if name == target else
                        f"and would also write '{name}', which belongs to the input '{owner}'")
                raise UserError(f"The map of '{image}' would be written to '{path}', {what}. "
                                "Choose another output folder (or rename that input); nothing "
                                "was written.")
