"""GPU check: trains the U-Net on the sample scene for a fixed number of steps and classifies it,
in float32 and in mixed precision, and compares each map with the same weights run on the CPU.

Run it through ``bench/gpu_check.sh`` (which picks the Keras backend, makes Keras importable and
puts the plugin on the path); see that script's header. It needs only numpy, Keras and one of
JAX, PyTorch or TensorFlow: no GDAL or QGIS (``sample_scene.py`` reads the scene without them).

What it prints, per precision: training and classification throughput (pixels per second), the
final loss and its dtype, the optimizer (mixed precision must scale the loss), and how many valid
pixels of the map equal the map of the same weights computed in float32 on the CPU.

Why agreement of at least 99 % and not equality: float16 keeps 11 significant bits, so the
activations of a mixed-precision network differ from float32 by about 1e-3 relative, and a GPU
sums in another order than a CPU (and may use TF32 for float32 convolutions); a pixel whose two
most probable classes lie that close changes class. After a short training many pixels are
that uncertain, but measured on the CPU (``--mixed``) fewer than 1 % of them change; a broken
precision path (overflow, a wrong cast, a NaN) changes far more.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from sample_scene import read_labels, read_pixels  # this folder: the script's own path

SEED = 0
MIN_AGREEMENT = 0.99


@dataclass
class Scene:
    """The sample scene: raw pixels, labels (0 where unlabelled or invalid), statistics."""

    pixels: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    names: list[str]

    @property
    def normalised(self) -> np.ndarray:
        """``(pixel - mean) * scale``, 0 on invalid pixels: what training feeds the network."""
        from landcoverunet.backend.core.normalization import normalise_values

        x = normalise_values(self.pixels.astype(np.float32), self.mean, self.scale)
        return np.where(self.valid[..., None], x, np.float32(0))


@dataclass
class Result:
    """What one precision measured."""

    precision: str
    train_px_s: float
    classify_px_s: float
    cpu_classify_px_s: float
    loss: float
    loss_dtype: str
    optimizer: str
    agreement: float


def load_scene() -> Scene:
    """The scene and its labels; a pixel is valid when no band is 0 (the scene's nodata)."""
    pixels = read_pixels()
    labels, names = read_labels()
    valid = np.all(pixels != 0, axis=-1)
    from landcoverunet.backend.core.normalization import inverse_std

    values = pixels[valid].astype(np.float64)
    return Scene(pixels, np.where(valid, labels, 0).astype(np.uint8), valid,
                 values.mean(axis=0).astype(np.float32), inverse_std(values.std(axis=0)), names)


def training_batches(scene: Scene, count: int, batch: int, tile: int) -> list[tuple]:
    """``count`` batches of windows centred on random labelled pixels (fixed seed): every
    precision trains on the same data."""
    rng = np.random.default_rng(SEED)
    x, rows, cols = scene.normalised, *np.nonzero(scene.labels)
    height, width = scene.labels.shape
    batches = []
    for _ in range(count):
        picks = rng.integers(0, len(rows), batch)
        top = np.clip(rows[picks] - tile // 2, 0, height - tile)
        left = np.clip(cols[picks] - tile // 2, 0, width - tile)
        batches.append((np.stack([x[r:r + tile, c:c + tile] for r, c in zip(top, left)]),
                        np.stack([scene.labels[r:r + tile, c:c + tile]
                                  for r, c in zip(top, left)])))
    return batches


def scene_windows(scene: Scene, window: int) -> np.ndarray:
    """The raw scene padded with nodata to whole windows, as a batch (n, window, window, bands)."""
    height, width, bands = scene.pixels.shape
    rows, cols = -(-height // window), -(-width // window)
    padded = np.zeros((rows * window, cols * window, bands), scene.pixels.dtype)
    padded[:height, :width] = scene.pixels
    return np.ascontiguousarray(padded.reshape(rows, window, cols, window, bands)
                                .transpose(0, 2, 1, 3, 4).reshape(-1, window, window, bands))


def stitch(ids: np.ndarray, shape: tuple[int, int], window: int) -> np.ndarray:
    """The windows' class ids back into one map of ``shape``."""
    rows, cols = -(-shape[0] // window), -(-shape[1] // window)
    whole = ids.reshape(rows, cols, window, window).transpose(0, 2, 1, 3)
    return whole.reshape(rows * window, cols * window)[:shape[0], :shape[1]]


def classify(model, scene: Scene, windows: np.ndarray, window: int, seconds: float):
    """The class map and scene pixels per second (first call, which compiles, not timed)."""
    from landcoverunet.backend.classify.network import make_predictor

    lookup = np.arange(1, len(scene.names) + 1, dtype=np.uint8)
    predict = make_predictor(model, mean=scene.mean, scale=scene.scale, lookup=lookup)
    ids = predict(windows)[1]
    calls, started = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - started < seconds:
        ids = predict(windows)[1]
        calls += 1
    rate = calls * scene.valid.size / (time.perf_counter() - started)
    return stitch(np.asarray(ids), scene.valid.shape, window), rate


def run_precision(keras, precision: str, device: str, scene: Scene, batches: list[tuple],
                  args: argparse.Namespace) -> Result:
    """Trains a fresh network in ``precision`` on ``device``, classifies the scene there, and
    classifies it again with the same weights in float32 on the CPU."""
    from landcoverunet.backend.core.device import cpu_device_name
    from landcoverunet.backend.training.config import LABEL_SMOOTHING, WEIGHT_DECAY
    from landcoverunet.models.losses import make_loss
    from landcoverunet.models.metrics import MaskedMeanIoU
    from landcoverunet.models.precision import float32_copy, precision_copy
    from landcoverunet.models.unet import PRESETS, build_unet

    keras.utils.set_random_seed(SEED)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        with keras.device(device):
            model = build_unet(scene.pixels.shape[-1], len(scene.names), PRESETS[args.model])
            loss = make_loss("cross_entropy", label_smoothing=LABEL_SMOOTHING)
            model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=WEIGHT_DECAY),
                          loss=loss, metrics=[MaskedMeanIoU(len(scene.names))])
            for x, y in batches[:args.warmup]:  # compiles the step
                model.train_on_batch(x, y)
            started = time.perf_counter()
            for x, y in batches[args.warmup:]:
                logs = model.train_on_batch(x, y, return_dict=True)
            seconds = time.perf_counter() - started
            x, y = batches[-1]
            loss_dtype = str(keras.backend.standardize_dtype(loss(y, model(x)).dtype))
            windows = scene_windows(scene, args.window)
            # as Classify raster loads a (float32) model file on a GPU: models/precision.py
            device_map, rate = classify(precision_copy(float32_copy(model), precision), scene,
                                        windows, args.window, args.seconds)
    finally:
        keras.config.set_dtype_policy(previous)
    with keras.device(cpu_device_name(keras.backend.backend())):
        cpu_map, cpu_rate = classify(float32_copy(model), scene, windows, args.window, 0.0)
    pixels = args.steps * x.shape[0] * x.shape[1] * x.shape[2]
    agreement = float(np.mean(device_map[scene.valid] == cpu_map[scene.valid]))
    return Result(precision, pixels / seconds, rate, cpu_rate, float(logs["loss"]), loss_dtype,
                  type(model.optimizer).__name__, agreement)


def nvidia_smi() -> list[str]:
    """The GPUs the driver lists (name, memory), empty without nvidia-smi or a GPU."""
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                           "--format=csv,noheader"], capture_output=True, text=True, timeout=60)
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def backend_version(backend: str) -> str:
    """The version of the Keras backend's framework."""
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(backend)
    return __import__(module).__version__ if module else "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compiling)")
    parser.add_argument("--batch", type=int, default=8, help="windows per step (the default)")
    parser.add_argument("--tile", type=int, default=64, help="training window (the default)")
    parser.add_argument("--model", default="small", help="model size (small, medium, large)")
    parser.add_argument("--window", type=int, default=256, help="classification window")
    parser.add_argument("--seconds", type=float, default=2.0,
                        help="classify the scene again and again for at least this long")
    parser.add_argument("--mixed", action="store_true",
                        help="also mixed precision without a GPU (slow: CPUs lack float16)")
    parser.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT)
    args = parser.parse_args()

    import keras

    from landcoverunet.backend.core.device import cpu_device_name, list_gpus

    backend = keras.backend.backend()
    print(f"Keras {keras.__version__}, backend {backend} {backend_version(backend)}, "
          f"numpy {np.__version__}, Python {sys.version.split()[0]}")
    driver, gpus = nvidia_smi(), list_gpus(backend)
    print(f"nvidia-smi: {'; '.join(driver) if driver else 'no NVIDIA GPU listed'}")
    print(f"{backend} sees: {', '.join(gpus) if gpus else 'no GPU'}")
    if driver and not gpus:
        print(f"FAIL: the driver lists a GPU but {backend} sees none (a CPU-only build?)")
        return 1
    if not gpus and os.environ.get("LANDCOVERUNET_REQUIRE_GPU") == "1":
        print("FAIL: LANDCOVERUNET_REQUIRE_GPU=1 and no GPU")
        return 1
    device = "gpu:0" if gpus else cpu_device_name(backend)
    precisions = ["float32"] + (["mixed_float16"] if gpus or args.mixed else [])
    if not gpus:
        print("No GPU: the CPU trains and classifies"
              + (" (float32 and mixed precision, --mixed)" if args.mixed else
                 " in float32 only (--mixed adds mixed precision)"))
    scene = load_scene()
    print(f"Scene {scene.pixels.shape[1]} x {scene.pixels.shape[0]} px, "
          f"{scene.pixels.shape[2]} bands, {int(np.count_nonzero(scene.labels))} labelled px, "
          f"{len(scene.names)} classes; training {args.steps} steps of {args.batch} x "
          f"{args.tile}^2 px ({args.model} model), device {device}")
    batches = training_batches(scene, args.warmup + args.steps, args.batch, args.tile)
    results = [run_precision(keras, p, device, scene, batches, args) for p in precisions]
    print()
    print(f"{'precision':<14}{'train px/s':>12}{'classify px/s':>15}{'CPU f32 px/s':>14}"
          f"{'loss':>8}{'loss dtype':>11}  {'optimizer':<20}{'map = CPU map':>14}")
    failed = False
    for r in results:
        print(f"{r.precision:<14}{r.train_px_s:>12,.0f}{r.classify_px_s:>15,.0f}"
              f"{r.cpu_classify_px_s:>14,.0f}{r.loss:>8.4f}{r.loss_dtype:>11}  "
              f"{r.optimizer:<20}{r.agreement:>13.4%}")
        if not np.isfinite(r.loss) or r.loss_dtype != "float32":
            print(f"FAIL: {r.precision}: the loss is {r.loss} in {r.loss_dtype}")
            failed = True
        if r.agreement < args.min_agreement:
            print(f"FAIL: {r.precision}: only {r.agreement:.4%} of the valid pixels equal the "
                  f"CPU's float32 map (at least {args.min_agreement:.0%} expected)")
            failed = True
    print("RESULT:", "FAIL" if failed else "PASS")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
