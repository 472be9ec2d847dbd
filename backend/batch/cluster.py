"""The dask.distributed client a batch runs on: a local cluster, or a scheduler already running.

The plugin hands its work to dask rather than scheduling it itself, so the same job runs on a
laptop (a ``LocalCluster`` of worker processes), a workstation or a cluster started with dask's
own tools (``dask scheduler`` / ``dask worker``, dask-jobqueue, Kubernetes): only the address
changes. Workers of an existing scheduler need the plugin importable, TensorFlow and GDAL, and
must see the images and the output folder at the same paths (a shared file system).
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
from typing import Any, Iterator

from ..core.dependencies import DASK, missing_message
from ..core.errors import UserError
from ..core.progress import Progress

CONNECT_TIMEOUT = "10s"
"""How long to wait for an existing scheduler before saying it cannot be reached."""


def require_distributed() -> Any:
    """Imports and returns ``distributed``, or tells the user how to install it."""
    try:
        import distributed
    except ImportError:
        raise UserError(missing_message([DASK])) from None
    return distributed


def _use_a_python_for_workers() -> None:
    """Makes local worker processes start this very Python, also inside QGIS.

    Local workers are spawned processes that run ``sys.executable``. Inside QGIS (or
    qgis_process) that is not the embedded interpreter but whatever the program or the first
    ``python3`` on PATH is (another Python, whose standard library does not match); the Python
    of this interpreter's own installation (``sys.exec_prefix``) is the one to use.
    """
    executable = os.path.realpath(sys.executable or "")
    prefix = os.path.realpath(sys.exec_prefix)
    if os.path.basename(executable).lower().startswith("python") and \
            os.path.commonpath([executable, prefix]) == prefix:
        return
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [os.path.join(sys.exec_prefix, "bin", f"python{version}"),
                  os.path.join(sys.exec_prefix, "bin", "python3"),
                  os.path.join(sys.exec_prefix, "python.exe"),
                  os.path.join(sys.exec_prefix, "python3.exe")]
    for candidate in candidates:
        if os.path.isfile(candidate):
            multiprocessing.set_executable(candidate)
            return
    raise UserError(f"No Python found beside QGIS ({sys.exec_prefix}) to start local dask "
                    "workers; start a dask scheduler and workers yourself and give its address.")


@contextlib.contextmanager
def open_client(scheduler: str, workers: int, progress: Progress) -> Iterator[Any]:
    """Yields a ``distributed.Client``: on ``scheduler`` (``tcp://host:port``) or, when that is
    empty, on a new local cluster of ``workers`` single-threaded processes (closed after)."""
    distributed = require_distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as error:
            raise UserError(f"Cannot reach the dask scheduler at '{scheduler}' ({error}). Is it "
                            "running, and is the address tcp://host:port?") from None
        with client:
            count = len(client.scheduler_info().get("workers", {}))
            progress.info(f"Connected to the dask scheduler {scheduler} ({count} workers).")
            yield client
        return
    if workers < 1:
        raise UserError("A local cluster needs at least one worker.")
    _use_a_python_for_workers()
    progress.info(f"Starting a local dask cluster of {workers} worker processes ...")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        yield client
