"""The hidden names outputs are written under until they are complete, and back.

An output ``folder/name.ext`` is written as ``folder/.name.partial-<tag>.ext`` and moved into
place when whole (``raster_io.atomic_output``, ``staging.OutputSet``); a message about a
failed write names the file the user asked for, never the hidden one.
"""
from __future__ import annotations

import os
import re


def partial_name(path: str, tag: str) -> str:
    """The hidden temporary name of an output while it is written: ``.<stem>.partial-<tag><ext>``
    beside it."""
    base, ext = os.path.splitext(os.path.basename(path))
    return os.path.join(os.path.dirname(os.path.abspath(path)), f".{base}.partial-{tag}{ext}")


def final_name(path: str) -> str:
    """The file a temporary name of :func:`partial_name` stands for (any other path as it is):
    what a message names when a temporary file inside a temporary file failed."""
    folder, name = os.path.split(os.path.abspath(path))
    while (match := _PARTIAL.match(name)) is not None:
        name = match.group(1) + (match.group(2) or "")
    return os.path.join(folder, name)


_PARTIAL = re.compile(r"^\.(.+)\.partial-[0-9a-f]{8}(\.[^.]*)?$")
