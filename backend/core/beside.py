"""Files named inside other files stay beside them.

A mask names its feature-id raster in its metadata; a stranger's mask could name
``../../../../etc/passwd`` or ``/home/user/secret.tif`` instead, and training would read it. A
name read from a file is therefore taken only as a plain file name in that file's folder: no
folder part, no ``..``, no absolute path.
"""
from __future__ import annotations

import os

from .errors import UserError


def file_beside(owner: str, name: str, what: str) -> str:
    """The path of ``name`` in ``owner``'s folder, once ``name`` is a plain file name.

    Args:
        owner: the file that named it.
        name: the name as read from ``owner``.
        what: what the named file is, for the message ("its feature-id file").

    Raises:
        UserError: a name with a folder part, ``..``, or an absolute path.
    """
    plain = (name and name == os.path.basename(name) and "/" not in name and "\\" not in name
             and name not in (".", "..") and not os.path.isabs(name))
    if not plain:
        raise UserError(f"'{owner}' names {what} as '{name[:200]}', outside its own folder; the "
                        "plugin writes only a plain file name there, so the file was altered. "
                        "Nothing was read from that path: make the file again with the plugin.")
    return os.path.join(os.path.dirname(os.path.abspath(owner)), name)
