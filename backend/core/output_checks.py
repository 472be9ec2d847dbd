"""Checks on the files a run will write, made before any work starts.

A run must never overwrite what it reads (an image, a label layer, a reference, a starting
model, or one of the files that come with them: a shapefile's .dbf, a raster's .aux.xml, a
mask's feature ids), nor write two outputs to one file, nor write a format under an extension
that says another, nor find out after an hour of training that the folder is read-only. Every
algorithm lists what it reads and writes, and :func:`check_outputs` refuses the run, with the
file and what to do, before anything is read or written.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass, field

from .errors import UserError, os_reason
from .raster_io import RASTER_SIDECARS

HTML_EXTENSIONS = (".html", ".htm")
CSV_EXTENSIONS = (".csv",)
JSON_EXTENSIONS = (".json",)
GPKG_EXTENSIONS = (".gpkg",)


@dataclass
class PlannedOutput:
    """One output of a run, as the algorithm will write it.

    Attributes:
        label: how the user knows it (the parameter's name and description).
        path: the file (or folder) to write.
        kind: what is written, in words ("a GeoTIFF"), for the message about extensions.
        extensions: the lower-case extensions its format may carry (empty: any).
        companions: other files written beside it (a mask's feature ids, a model's CSV log).
        folder: the output is a folder (a TensorBoard log), not a file.
    """

    label: str
    path: str
    kind: str = ""
    extensions: tuple[str, ...] = ()
    companions: tuple[str, ...] = field(default_factory=tuple)
    folder: bool = False


def check_outputs(outputs: list[PlannedOutput], inputs: list[tuple[str, str]]) -> None:
    """Refuses outputs that would destroy an input or each other, carry the wrong extension,
    or cannot be written; creates and removes a probe file to know the last for sure.

    Args:
        outputs: what the run will write (outputs with an empty path are skipped).
        inputs: (label, path) of everything the run reads; paths that are not files (memory
            layers, database URIs) are ignored.

    Raises:
        UserError: naming the output, the clash and what to do.
    """
    outputs = [o for o in outputs if o.path]
    read: dict[str, tuple[str, bool]] = {}
    for label, path in inputs:
        main = _real(path.split("|")[0])
        for name in input_files(path):
            if name not in read or name == main:
                read[name] = (label, name == main)
    written: dict[str, str] = {}
    for output in outputs:
        hits = sorted((name for name in output_files(output) if name in read),
                      key=lambda name: not read[name][1])  # the input itself named first
        for name in hits[:1]:
            label, main = read[name]
            what = (f"would overwrite the input {label}" if main else
                    f"is a file that belongs to the input {label}"
                    if name == _real(output.path) else
                    f"would also write '{name}', a file that belongs to the input {label}")
            raise UserError(f"{output.label}: '{output.path}' {what}. Choose another file name "
                            "for the output.")
        for name in output_files(output):
            if name in written and written[name] != output.label:
                raise UserError(f"{output.label} and {written[name]} would both be written to "
                                f"'{name}'. Give each output its own file name.")
            written[name] = output.label
    for output in outputs:
        _check_extension(output)
    for output in outputs:
        check_writable(output)


def input_files(path: str) -> set[str]:
    """The files an input consists of: itself, the files GDAL/OGR says belong to it (a
    shapefile's .shx and .dbf, a VRT's sources) and, for a raster, the sidecars GDAL reads
    beside it and a mask's feature ids."""
    from osgeo import gdal

    from .feature_ids import sidecar_path

    path = path.split("|")[0]
    if not path or not os.path.exists(path):
        return set()
    names = {_real(path)}
    if os.path.isfile(path):
        with _quiet_gdal():
            dataset = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_VECTOR)
            if dataset is not None:
                names |= {_real(name) for name in (dataset.GetFileList() or [])}
                if dataset.RasterCount:
                    names |= {_real(path + suffix) for suffix in RASTER_SIDECARS}
                    if os.path.isfile(sidecar_path(path)):
                        names.add(_real(sidecar_path(path)))
            dataset = None
    return names


def output_files(output: PlannedOutput) -> set[str]:
    """The files an output writes: itself, its companions and their raster sidecars."""
    if output.folder:
        return {_real(output.path)}
    names = set()
    for path in (output.path, *output.companions):
        names |= {_real(path)} | {_real(path + suffix) for suffix in RASTER_SIDECARS}
    return names


def check_writable(output: PlannedOutput) -> None:
    """Creates and removes a probe file where the output will be written.

    Raises:
        UserError: when the output is a folder where a file is wanted (or the reverse), or the
            place cannot be written (read-only disk, no permission, a file where a folder is
            needed), naming the file and what to do.
    """
    path = os.path.abspath(output.path)
    if os.path.isdir(path) and not output.folder:
        raise UserError(f"{output.label}: '{path}' is a folder. Give a file name.")
    if output.folder and os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{output.label}: '{path}' is a file. Give a folder name.")
    folder = path if output.folder else os.path.dirname(path)
    existing = folder
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UserError(f"{output.label}: cannot write '{path}' because '{existing}' is a file, "
                        "not a folder. Choose another place.")
    probe = os.path.join(existing, f".landcoverunet-write-test-{uuid.uuid4().hex[:8]}")
    try:
        with open(probe, "x", encoding="utf-8"):
            pass
    except OSError as error:
        raise UserError(f"{output.label}: cannot write '{path}' ({os_reason(error)}). Choose a "
                        "folder you may write to, on a disk with space.") from None
    with contextlib.suppress(OSError):
        os.remove(probe)
    if os.path.isfile(path) and not os.access(path, os.W_OK):
        raise UserError(f"{output.label}: '{path}' exists and is read-only. Choose another "
                        "file name, or make it writable.")


def _check_extension(output: PlannedOutput) -> None:
    if output.folder or not output.extensions:
        return
    if not output.path.lower().endswith(output.extensions):
        raise UserError(f"{output.label}: '{output.path}' would be written as "
                        f"{output.kind or output.extensions[0]}; give it the extension "
                        f"{' or '.join(output.extensions)}.")


def _real(path: str) -> str:
    """A path with links, '..' and relative parts resolved (the same file has one name)."""
    return os.path.normcase(os.path.realpath(os.path.abspath(path)))


@contextlib.contextmanager
def _quiet_gdal():
    from osgeo import gdal

    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        yield
    finally:
        gdal.PopErrorHandler()
