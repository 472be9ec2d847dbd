"""What the weights inside a ``.keras`` file may be before Keras reads them.

The weights are an HDF5 file, and HDF5 can do more than hold numbers: a dataset may keep its
values in *external* raw files or map other HDF5 files (virtual datasets), and a link may point
into another file, so that reading the "weights" reads ``/etc/passwd`` or whatever a stranger
names; a compressed dataset may inflate to any size. Keras writes none of this: plain groups
and contiguous, uncompressed numeric datasets. This module opens the entry with ``h5py`` (reading
only the structure, never the values) and refuses anything else, with the dataset it found.
"""
from __future__ import annotations

from typing import IO

from ..core.errors import UserError



def check_weights(handle: IO[bytes], size: int, path: str) -> None:
    """Refuses weights that read other files, link out, or declare more values than they hold.

    Args:
        handle: the weights entry, opened from the archive (seekable).
        size: the entry's size: uncompressed values must lie inside it, so datasets declaring
            more (which Keras would allocate before reading) are not weights.
        path: the model file, for the message.

    Raises:
        UserError: naming the dataset or link and what it does.
    """
    from ..core.deps import require_h5py

    h5py = require_h5py()  # bound to its own HDF5, not the one GDAL loaded (deps.py)
    try:
        weights = h5py.File(handle, "r")
    except (OSError, ValueError):
        raise UserError(f"The model file '{path}' could not be loaded: its network or weights are "
                        "damaged or incomplete. Train the model again or copy the file again."
                        ) from None
    with weights:
        total = _check_group(weights, path, h5py)
    if total > size:
        raise UserError(_refused(path, f"datasets of {total / 2 ** 20:,.0f} MB in "
                                       f"{size / 2 ** 20:,.1f} MB"))


def _check_group(group, path: str, h5py) -> int:
    """Bytes of the datasets under a group, after checking each link and dataset in it."""
    total = 0
    for name in group:
        link = group.get(name, getlink=True)
        where = f"{group.name.rstrip('/')}/{name}"
        if not isinstance(link, h5py.HardLink):
            raise UserError(_refused(path, f"a link '{where}' to another place or file"))
        item = group[name]
        if isinstance(item, h5py.Group):
            total += _check_group(item, path, h5py)
            continue
        if not isinstance(item, h5py.Dataset):
            raise UserError(_refused(path, f"the object '{where}'"))
        if item.external or item.is_virtual:
            raise UserError(_refused(path, f"the dataset '{where}', whose values are read "
                                           "from other files"))
        if item.id.get_create_plist().get_nfilters() or item.dtype.kind not in "fiub":
            raise UserError(_refused(path, f"the dataset '{where}', compressed or not numbers"))
        total += item.size * item.dtype.itemsize
    return total


def _refused(path: str, what: str) -> str:
    return (f"The model file '{path}' contains {what} in its weights, which a Land Cover U-Net "
            "model never does: it was not made by this plugin or was altered. It was not "
            "loaded; use a model file trained with 'Train U-Net' that you trust.")
