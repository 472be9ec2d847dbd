"""Classifies one image with the default model as a ``.keras`` file (TensorFlow) and as the
``.onnx`` file exported from it (ONNX Runtime), side by side, and prints their speed ratio and
how many pixels agree.

Both run end to end through ``classify_raster`` with their own windows: the ``.keras`` file with
the default inference window, the ``.onnx`` file with the training tile it is exported for (as
Deepness needs), the same overlap. Runs alternate (--runs), the best of each counts. The model
has random weights (speed does not depend on training); agreement is over all pixels.

    source scripts/env.sh && .venv/bin/python bench/bench_onnx.py [--size 2048] [--runs 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

from bench_classify import BANDS, make_image, make_model


def main() -> None:
    from osgeo import gdal

    from landcoverunet.backend.classify.classify_raster import classify_raster
    from landcoverunet.backend.export.onnx_file import export_onnx
    from landcoverunet.backend.training.config import config_default

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2048, help="image side (pixels)")
    parser.add_argument("--runs", type=int, default=3, help="alternating repetitions")
    args = parser.parse_args()
    tile, preset = config_default("tile_size"), config_default("model_size")
    with tempfile.TemporaryDirectory() as folder:
        image = os.path.join(folder, "image.tif")
        make_image(image, args.size)
        model = os.path.join(folder, "model.keras")
        make_model(model, tile, preset)
        exported = os.path.join(folder, "model.onnx")
        export_onnx(model, exported)
        best = {"keras": float("inf"), "onnx": float("inf")}
        windows = {}
        for _ in range(args.runs):
            for name, path in (("keras", model), ("onnx", exported)):
                started = time.perf_counter()
                result = classify_raster(image, path, os.path.join(folder, f"{name}.tif"))
                best[name] = min(best[name], time.perf_counter() - started)
                windows[name] = result.window
        maps = [gdal.Open(os.path.join(folder, f"{n}.tif")).ReadAsArray() for n in best]
    pixels = args.size ** 2
    print(f"{args.size} x {args.size} px, {BANDS} bands, model '{preset}', tile {tile}")
    for name in best:
        print(f"  {name:5s}: {pixels / best[name] / 1e6:.2f} Mpx/s end to end "
              f"(best of {args.runs}; windows {windows[name][0]} px)")
    print(f"  ONNX Runtime / TensorFlow speed: {best['keras'] / best['onnx']:.2f}")
    print(f"  pixels of the same class: {(maps[0] == maps[1]).mean():.4%}")


if __name__ == "__main__":
    main()
