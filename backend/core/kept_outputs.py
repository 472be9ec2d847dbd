"""Where an output that must outlive the session goes when the user left it to a temporary
file: a named file beside an input (a trained model is an hour of work; QGIS deletes its
temporary files when it closes)."""
from __future__ import annotations

import os
from typing import Callable, Iterable

from .errors import UserError


def beside(input_path: str, suffix: str, extension: str,
           companions: Callable[[str], Iterable[str]] = lambda path: ()) -> str:
    """``<input folder>/<input stem><suffix><extension>``, numbered (``_2``, ``_3`` ...) until
    neither it nor any of its ``companions`` exists, so that nothing earlier is replaced.

    Raises UserError when the input is not a file (or a file to be written) in a writable folder (then the user must
    choose where the output goes).
    """
    # the input may be an output still to be written (a report beside its model)
    known = os.path.isfile(input_path) or os.path.isdir(os.path.dirname(input_path))
    folder = os.path.dirname(os.path.abspath(input_path)) if known else ""
    if not folder or not os.access(folder, os.W_OK):
        raise UserError(f"There is nowhere to keep the {extension} file beside '{input_path}' "
                        "(not a file in a writable folder): choose where to save it instead of "
                        "a temporary file, which QGIS deletes when it closes.")
    stem = os.path.splitext(os.path.basename(input_path))[0] + suffix
    for number in range(1, 1000):
        name = stem + (f"_{number}" if number > 1 else "") + extension
        path = os.path.join(folder, name)
        if not any(os.path.lexists(p) for p in (path, *companions(path))):
            return path
    raise UserError(f"Too many earlier {stem}*{extension} files in '{folder}': choose where to "
                    "save the output.")


def is_temporary(path: str, temporary_folder: str) -> bool:
    """Whether ``path`` lies in the session's temporary folder (deleted when QGIS closes)."""
    if not path or not temporary_folder:
        return not path
    folder = os.path.realpath(temporary_folder)
    try:
        return os.path.commonpath([os.path.realpath(path), folder]) == folder
    except ValueError:  # on another drive (Windows)
        return False
