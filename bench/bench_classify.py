"""Times "Classify raster" end to end against the bare forward pass, and records peak memory.

The model is the plugin's default: the "Train U-Net" defaults (``TrainingConfig``: model size
and training tile size) unless --preset / --tile say otherwise.

(a) A large image (default 4096 x 4096 pixels, 4 bands, uint8, tiled DEFLATE GeoTIFF made
here) is classified end to end by the backend with its defaults (model loading, tracing,
reading, overlapping windows with the default overlap, blending, writing the compressed class
GeoTIFF, overviews; no TTA, no confidence or probabilities). The same model's bare forward pass
then runs over the same number of pixels without overlap (batches of non-overlapping training
tiles, and of default-size inference windows, on normalised data already in memory; the faster
counts). Both run alternately --runs times, the best of each counts (other processes on a shared
machine disturb single runs). Printed: throughputs and their ratio, in wall clock and in CPU
time: the share of the work that is the network itself; everything else (startup, the overlap,
I/O, blending) is the rest. The image a quarter as wide and high is classified the same way, and
the marginal rate between the two (the extra pixels over the extra seconds, so loading and
tracing cancel out) is compared with the bare pass as well: the target is >= 0.85 (issue 15).

(b) Peak memory (ru_maxrss of a fresh process that imports TensorFlow, loads the model and
classifies) for the large image and for one a quarter as wide and high (16 x less area).
Targets: under 1.5 GB, and at most 20 % more for the large image than the small one.

    source scripts/env.sh && .venv/bin/python bench/bench_classify.py [--size 4096] [--tile 64]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

EPSG = 32617
PIXEL = 10.0
BANDS = 4
CLASSES = 6


def make_image(path: str, size: int, seed: int = 0) -> None:
    """A uint8 image of smooth random texture, written strip by strip (little memory)."""
    from osgeo import gdal, osr

    dataset = gdal.GetDriverByName("GTiff").Create(
        path, size, size, BANDS, gdal.GDT_Byte,
        ["TILED=YES", "COMPRESS=DEFLATE", "INTERLEAVE=BAND"])
    dataset.SetGeoTransform((500000.0, PIXEL, 0, 4000000.0, 0, -PIXEL))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    dataset.SetProjection(srs.ExportToWkt())
    rng = np.random.default_rng(seed)
    x = np.arange(size, dtype=np.float32)
    for row in range(0, size, 512):
        rows = min(512, size - row)
        y = np.arange(row, row + rows, dtype=np.float32)[:, None]
        for band in range(BANDS):
            wave = np.sin(x[None, :] / (37 + 11 * band)) * np.cos(y / (53 + 7 * band))
            noise = rng.normal(0, 12, (rows, size))
            block = np.clip(120 + 80 * wave + noise, 1, 255).astype(np.uint8)
            dataset.GetRasterBand(band + 1).WriteArray(block, 0, row)
    dataset = None


def make_model(path: str, tile: int, preset: str) -> None:
    """A U-Net with random weights and complete metadata (speed does not depend on training)."""
    import keras

    from landcoverunet.backend.core.class_map import ClassMap
    from landcoverunet.backend.model.metadata import ModelMetadata
    from landcoverunet.backend.model.keras_file import save_model
    from landcoverunet.models.unet import PRESETS, build_unet

    keras.utils.set_random_seed(0)
    config = PRESETS[preset]
    model = build_unet(BANDS, CLASSES, config)
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(EPSG)
    metadata = ModelMetadata(
        bands=list(range(1, BANDS + 1)), band_count=BANDS, input_dtype="uint8",
        mean=[120.0] * BANDS, std=[50.0] * BANDS,
        class_map=ClassMap.from_codes(range(1, CLASSES + 1)).to_dict(), tile_size=tile,
        architecture={"model_size": preset, "depth": config.depth, "filters": config.filters,
                      "dropout": config.dropout},
        pixel_size=[PIXEL, PIXEL], crs_wkt=srs.ExportToWkt())
    save_model(model, path, metadata)


def cpu_seconds() -> float:
    """CPU time of this process so far, all threads (user + system)."""
    times = os.times()
    return times.user + times.system


def bare_forward(model, side: int, pixels: int, batch: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the forward pass over ``pixels`` pixels in side x side windows."""
    from landcoverunet.backend.classify.network import make_predictor

    predict = make_predictor(model)
    data = np.random.default_rng(1).normal(0, 1, (batch, side, side, BANDS)).astype(np.float32)
    predict(data)  # trace once, as the classification does
    calls = max(1, int(round(pixels / (batch * side * side))))
    start, cpu = time.perf_counter(), cpu_seconds()
    for _ in range(calls):
        predict(data)
    scale = pixels / (calls * batch * side * side)
    return (time.perf_counter() - start) * scale, (cpu_seconds() - cpu) * scale


def child_memory(image: str, model: str, output: str) -> None:
    """Run in a fresh process: classify, print peak RSS (MB) as JSON."""
    from landcoverunet.backend.classify.classify_raster import classify_raster

    start = time.perf_counter()
    result = classify_raster(image, model, output)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"peak_mb": peak, "seconds": time.perf_counter() - start,
                      "window": result.window, "overlap": result.overlap}))


def measure_memory(image: str, model: str, output: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", image, model, output],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from landcoverunet.backend.training.config import config_default

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="large image side (pixels)")
    parser.add_argument("--tile", type=int, default=config_default("tile_size"),
                        help="training tile size of the model (default: the training default)")
    parser.add_argument("--preset", default=config_default("model_size"),
                        help="U-Net preset small/medium/large (default: the training default)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions of (a); best counts")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_memory(*args.child)
        return

    from landcoverunet.backend.model.opened import load_model
    from landcoverunet.backend.classify.classify_raster import DEFAULT_BATCH_SIZE, classify_raster
    from landcoverunet.backend.core.progress import ConsoleProgress

    with tempfile.TemporaryDirectory(prefix="bench-classify-") as folder:
        large, small = (os.path.join(folder, f"{n}.tif") for n in ("large", "small"))
        model_path = os.path.join(folder, "model.keras")
        make_image(large, args.size)
        make_image(small, args.size // 4)
        make_model(model_path, args.tile, args.preset)

        # (b) first, in fresh processes, so nothing of (a) is in them
        memory = {name: measure_memory(path, model_path, os.path.join(folder, f"m_{name}.tif"))
                  for name, path in (("small", small), ("large", large))}

        # (a) end to end (includes loading the model, tracing, overviews) and the bare forward
        # pass, alternating, best of --runs each: other processes on the machine disturb both
        pixels = args.size * args.size
        model, _ = load_model(model_path)
        end_to_end, forward = (float("inf"), float("inf")), {}
        small_run = (float("inf"), float("inf"))
        for _ in range(args.runs):
            start, cpu = time.perf_counter(), cpu_seconds()
            classify_raster(small, model_path, os.path.join(folder, "small_classes.tif"),
                            progress=ConsoleProgress(quiet=True))
            small_run = min(small_run, (time.perf_counter() - start, cpu_seconds() - cpu))
            start, cpu = time.perf_counter(), cpu_seconds()
            result = classify_raster(large, model_path, os.path.join(folder, "classes.tif"),
                                     progress=ConsoleProgress(quiet=True))
            end_to_end = min(end_to_end, (time.perf_counter() - start, cpu_seconds() - cpu))
            window = result.window[0]
            for side, batch in ((args.tile, DEFAULT_BATCH_SIZE * (window // args.tile) ** 2),
                                (window, DEFAULT_BATCH_SIZE)):
                forward[side] = min(forward.get(side, (float("inf"),) * 2),
                                    bare_forward(model, side, pixels, batch))
        best_side = min(forward, key=forward.get)

    print(f"model: preset '{args.preset}', {BANDS} bands, {CLASSES} classes, tile {args.tile}; "
          f"inference windows {result.window[0]} x {result.window[1]}, overlap "
          f">= {result.overlap} px, {result.windows} windows, batch {DEFAULT_BATCH_SIZE}")
    print(f"(a) {args.size} x {args.size} px end to end: {end_to_end[0]:.1f} s "
          f"({pixels / end_to_end[0] / 1e6:.2f} Mpx/s; {end_to_end[1]:.1f} CPU s)")
    for side, (wall, cpu) in forward.items():
        print(f"    bare forward pass, {side} x {side} windows: {wall:.1f} s "
              f"({pixels / wall / 1e6:.2f} Mpx/s; {cpu:.1f} CPU s)")
    print(f"    ratio end-to-end / bare forward throughput: "
          f"{forward[best_side][0] / end_to_end[0]:.2f} (target >= 0.8); in CPU time: "
          f"{forward[best_side][1] / end_to_end[1]:.2f}")
    # the marginal rate: what one more pixel costs, start-up (loading, tracing) left out
    extra = pixels - (args.size // 4) ** 2
    marginal = [end_to_end[i] - small_run[i] for i in (0, 1)]
    print(f"    marginal, {args.size // 4} -> {args.size} px: {marginal[0]:.1f} s for "
          f"{extra / 1e6:.1f} Mpx ({extra / marginal[0] / 1e6:.2f} Mpx/s; {marginal[1]:.1f} CPU "
          f"s); ratio to the bare forward pass: "
          f"{forward[best_side][0] * extra / pixels / marginal[0]:.2f} (target >= 0.85); in CPU "
          f"time: {forward[best_side][1] * extra / pixels / marginal[1]:.2f}")
    growth = memory["large"]["peak_mb"] / memory["small"]["peak_mb"] - 1
    print(f"(b) peak memory: {args.size // 4} x {args.size // 4} px: "
          f"{memory['small']['peak_mb']:.0f} MB; {args.size} x {args.size} px: "
          f"{memory['large']['peak_mb']:.0f} MB; growth {100 * growth:.1f} % "
          "(targets < 1536 MB, <= 20 %)")


if __name__ == "__main__":
    main()
