"""Training speed with the real input pipeline against the same model fed batches from memory.

Usage (from the repository root):
    source scripts/env.sh && .venv/bin/python bench/bench_training.py [--steps 30] [--tile 64] [--batch 8]

The pipeline (window sampling on training features, reading, normalising, augmenting,
in 2 worker threads) should hide behind the training step: the target is an overhead of at most
10 %. Runs on the NC Landsat scene from ../shared/data with the default model, tile and batch.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from shared_data import nc_stack_and_mask

from landcoverunet.backend.training.config import config_default


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--tile", type=int, default=config_default("tile_size"),
                        help="window size (default: the training default)")
    parser.add_argument("--batch", type=int, default=config_default("batch_size"),
                        help="windows per step (default: the training default)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()


    import keras
    from landcoverunet.backend.core.normalization import compute_band_stats
    from landcoverunet.backend.core.feature_ids import feature_id_reader
    from landcoverunet.backend.training.sampling import SplitLabels, WindowSampler, split_features
    from landcoverunet.backend.training.config import TrainingConfig
    from landcoverunet.backend.training.inputs import check_inputs
    from landcoverunet.backend.training.data import TrainingBatches, open_scenes, prefetch
    from landcoverunet.models.losses import make_loss
    from landcoverunet.models.metrics import MaskedMeanIoU
    from landcoverunet.models.unet import PRESETS, build_unet

    folder = Path(tempfile.mkdtemp(prefix="bench-training-"))
    stack, mask = nc_stack_and_mask(folder)
    inputs = check_inputs(TrainingConfig([stack], [mask], str(folder / "m.keras")))
    classes = len(inputs.class_map)
    ids, _ = feature_id_reader(mask)
    split = split_features(SplitLabels(mask, inputs.lookup, ids).features(0), 1, classes, 0.2,
                           seed=42)
    stats = compute_band_stats([stack], inputs.bands)
    (reader,), scenes = open_scenes([stack], [mask], inputs.lookup, [ids], split.heldout,
                                    inputs.bands, stats, classes)
    sampler = WindowSampler(scenes, (args.tile, args.tile))
    data = TrainingBatches([reader], sampler, args.batch, augment=True, seed=0)

    model = build_unet(len(inputs.bands), classes, PRESETS[config_default("model_size")])
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss=make_loss(
        "weighted_cross_entropy", [1.0] * classes), metrics=[MaskedMeanIoU(classes)])
    for step in range(3):  # compile and warm up
        model.train_on_batch(*data.batch(99, step))

    def run(batches) -> float:
        started = time.perf_counter()
        for x, y in batches:
            model.train_on_batch(x, y)
        return args.steps / (time.perf_counter() - started)

    memory = [data.batch(0, step) for step in range(args.steps)]
    in_memory = run(memory)
    pipeline = run(prefetch(lambda step: data.batch(1, step), range(args.steps),
                            workers=args.workers, depth=2 * args.workers))
    in_memory_again = run(memory)  # the machine is shared: bracket the pipeline run
    reference = (in_memory + in_memory_again) / 2
    started = time.perf_counter()
    for step in range(args.steps):
        data.batch(2, step)
    preparing = args.steps / (time.perf_counter() - started)

    print(f"scene {reader.width} x {reader.height}, windows {args.tile} x {args.tile}, batch "
          f"{args.batch}, {args.steps} steps, {args.workers} pipeline threads, "
          f"{os.cpu_count()} CPUs, backend {keras.backend.backend()}")
    print(f"batches already in memory: {reference:.2f} steps/s "
          f"({in_memory:.2f} before, {in_memory_again:.2f} after)")
    print(f"real input pipeline:       {pipeline:.2f} steps/s")
    print(f"preparing batches alone:   {preparing:.1f} batches/s (one thread)")
    print(f"ratio pipeline / memory:   {pipeline / reference:.3f} "
          f"(pipeline cost {100 * (1 - pipeline / reference):.1f} %; target <= 10 %)")


if __name__ == "__main__":
    sys.exit(main())
