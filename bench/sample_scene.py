"""The bundled sample scene and its training labels as arrays, with or without GDAL.

``bench/gpu_check.py`` must run on a GPU machine that may have only numpy, Keras and JAX or
PyTorch: no GDAL, rasterio or QGIS. The pixels are then read from the GeoTIFF by a small reader
of exactly what ``resources/sample/nc_landsat7_2000.tif`` is (tiled, 8-bit, DEFLATE with or
without the horizontal predictor), so no copy of the scene has to be committed; the labels (the
33 training polygons burnt on the scene's grid by the plugin's ``build_mask``) are read from
``resources/sample/training_mask.npz`` (1 KB), which ``--write-mask`` remakes where GDAL is.

Usage (remaking the labels, from the repository root):
    source scripts/env.sh && .venv/bin/python bench/sample_scene.py --write-mask
"""
from __future__ import annotations

import argparse
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "resources" / "sample"
IMAGE = SAMPLE / "nc_landsat7_2000.tif"
POLYGONS = SAMPLE / "training_polygons.gpkg"
MASK = SAMPLE / "training_mask.npz"

# TIFF tags the reader needs
_WIDTH, _HEIGHT, _BITS, _COMPRESSION, _SAMPLES, _PLANAR = 256, 257, 258, 259, 277, 284
_PREDICTOR, _TILE_W, _TILE_H, _TILE_OFFSETS, _TILE_COUNTS, _FORMAT = 317, 322, 323, 324, 325, 339
_TYPES = {1: "B", 2: "c", 3: "H", 4: "I", 16: "Q"}
_DEFLATE = (8, 32946)


def read_pixels(path: Path = IMAGE) -> np.ndarray:
    """The image as (rows, cols, bands): through GDAL when it is installed, else the fallback."""
    try:
        from osgeo import gdal
    except ImportError:
        return read_tiled_tiff(path)
    dataset = gdal.Open(str(path))
    return np.ascontiguousarray(np.moveaxis(dataset.ReadAsArray(), 0, -1))


def read_tiled_tiff(path: Path) -> np.ndarray:
    """A tiled, pixel-interleaved 8-bit TIFF (uncompressed or DEFLATE, predictor 1 or 2) as
    (rows, cols, bands) uint8, in plain Python: what the sample scene is, not a general reader.

    Raises:
        ValueError: for any other layout.
    """
    data = Path(path).read_bytes()
    order = {b"II": "<", b"MM": ">"}.get(data[:2])
    if order is None or struct.unpack(order + "H", data[2:4])[0] != 42:
        raise ValueError(f"{path} is not a classic TIFF")
    tags = _first_ifd(data, order)
    samples = tags.get(_SAMPLES, [1])[0]
    if (set(tags.get(_BITS, [8])) != {8} or tags.get(_PLANAR, [1])[0] != 1
            or tags.get(_FORMAT, [1])[0] != 1 or _TILE_W not in tags):
        raise ValueError(f"{path}: only tiled, pixel-interleaved unsigned 8-bit TIFFs are read "
                         "without GDAL")
    compression, predictor = tags.get(_COMPRESSION, [1])[0], tags.get(_PREDICTOR, [1])[0]
    if compression not in (1, *_DEFLATE) or predictor not in (1, 2):
        raise ValueError(f"{path}: compression {compression} / predictor {predictor} needs GDAL")
    width, height = tags[_WIDTH][0], tags[_HEIGHT][0]
    tw, th = tags[_TILE_W][0], tags[_TILE_H][0]
    across = -(-width // tw)
    image = np.zeros((-(-height // th) * th, across * tw, samples), np.uint8)
    for k, (offset, count) in enumerate(zip(tags[_TILE_OFFSETS], tags[_TILE_COUNTS])):
        raw = data[offset:offset + count]
        raw = zlib.decompress(raw) if compression in _DEFLATE else raw
        tile = np.frombuffer(raw, np.uint8, th * tw * samples).reshape(th, tw, samples)
        if predictor == 2:  # each sample is the difference from its left neighbour, modulo 256
            tile = np.cumsum(tile, axis=1, dtype=np.uint8)
        row, col = divmod(k, across)
        image[row * th:(row + 1) * th, col * tw:(col + 1) * tw] = tile
    return np.ascontiguousarray(image[:height, :width])


def _first_ifd(data: bytes, order: str) -> dict[int, list[int]]:
    """The values of every numeric tag of the first image directory."""
    offset = struct.unpack(order + "I", data[4:8])[0]
    count = struct.unpack(order + "H", data[offset:offset + 2])[0]
    tags: dict[int, list[int]] = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i:offset + 14 + 12 * i]
        tag, kind, n = struct.unpack(order + "HHI", entry[:8])
        code = _TYPES.get(kind)
        if code is None or code == "c":
            continue
        size = struct.calcsize(code) * n
        where = entry[8:12] if size <= 4 else data[struct.unpack(order + "I", entry[8:12])[0]:][
            :size]
        tags[tag] = list(struct.unpack(order + code * n, where[:size]))
    return tags


def read_labels(path: Path = MASK) -> tuple[np.ndarray, list[str]]:
    """The training labels (rows, cols) uint8, 0 = no label, and the class names of ids 1..n."""
    with np.load(path) as stored:
        return stored["labels"], [str(name) for name in stored["names"]]


def write_mask(path: Path = MASK) -> None:
    """Burns the training polygons on the scene's grid with the plugin's own mask builder (GDAL)
    and stores the labels and class names compressed."""
    from osgeo import gdal

    from landcoverunet.backend.core.class_map import ClassMap
    from landcoverunet.backend.masks.burn import build_mask
    from landcoverunet.backend.masks.features import VectorInput

    with tempfile.TemporaryDirectory() as folder:
        mask = str(Path(folder) / "mask.tif")
        build_mask(str(IMAGE), [VectorInput(str(POLYGONS))], mask, class_field="id",
                   class_name_field="label")
        labels = gdal.Open(mask).ReadAsArray().astype(np.uint8)
        names = ClassMap.read_from_raster(mask).names
    np.savez_compressed(path, labels=labels, names=np.array(names))
    print(f"{path}: {labels.shape[0]} x {labels.shape[1]} labels, classes {names}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-mask", action="store_true",
                        help=f"remake {MASK.relative_to(ROOT)} from the polygons (needs GDAL)")
    args = parser.parse_args()
    if args.write_mask:
        write_mask()
    pixels, (labels, names) = read_tiled_tiff(IMAGE), read_labels()
    print(f"pixels {pixels.shape} {pixels.dtype}, labels {labels.shape}, classes {names}")


if __name__ == "__main__":
    main()
