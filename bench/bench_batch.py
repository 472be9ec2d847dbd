"""Throughput of "Classify rasters in batch" on 1 and 2 local dask workers against one process.

One image (default 2048 x 2048 px, 4 bands, made by bench_classify.make_image) and a model with
random weights (the "Train U-Net" default size) are made here. Timed, wall clock:

- one process: ``classify_raster`` on the whole image (model already loaded, as a warm QGIS);
- batch: ``classify_batch`` with BLOCK_SIZE --block (default 1024: 4 blocks), on a local cluster
  of 1 and then 2 workers, twice: cold (workers just started: importing TensorFlow, receiving
  and loading the model, tracing the network) and warm (the same workers again, as a long job
  or a running scheduler sees them): classifying the blocks and stitching them.

Printed: megapixels per second of each, and the batch's overhead against one process (time
ratio). On a machine with N cores, 2 workers can only beat one process when each has cores of
its own (TensorFlow already uses all cores in one process).

    source scripts/env.sh && .venv/bin/python bench/bench_batch.py [--size 2048] [--block 1024]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench_classify import make_image, make_model


def main() -> None:
    from landcoverunet.backend.batch.classify_batch import BatchSettings, classify_batch
    from landcoverunet.backend.classify.classify_raster import classify_raster
    from landcoverunet.backend.model.opened import open_model
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training.config import config_default

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--tile", type=int, default=int(config_default("tile_size")))
    parser.add_argument("--preset", default=str(config_default("model_size")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        image, model_path = os.path.join(folder, "image.tif"), os.path.join(folder, "m.keras")
        make_image(image, args.size)
        make_model(model_path, args.tile, args.preset)
        pixels = args.size * args.size / 1e6
        model = open_model(model_path)  # loaded by the warm-up run, kept for the timed one
        classify_raster(image, model, os.path.join(folder, "warm.tif"))
        start = time.perf_counter()
        classify_raster(image, model, os.path.join(folder, "one.tif"))
        single = time.perf_counter() - start
        print(f"one process: {single:.1f} s, {pixels / single:.2f} Mpx/s")
        from distributed import LocalCluster

        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1,
                              dashboard_address=None) as cluster:
                settings = BatchSettings(block_size=args.block, scheduler=cluster.scheduler_address)
                times = []
                for run in ("cold", "warm"):  # warm: workers started, model loaded and traced
                    start = time.perf_counter()
                    classify_batch([image], model_path, os.path.join(folder, f"{workers}{run}"),
                                   settings, ConsoleProgress(quiet=True))
                    times.append(time.perf_counter() - start)
            for run, seconds in zip(("cold", "warm"), times):
                print(f"batch, {workers} worker(s), {run}: {seconds:.1f} s, "
                      f"{pixels / seconds:.2f} Mpx/s, {seconds / single:.2f} x the one-process "
                      "time")

if __name__ == "__main__":
    main()
