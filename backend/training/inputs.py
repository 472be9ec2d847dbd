"""Checking the inputs of a training run before anything heavy: images, masks, grids, bands,
class maps, and a starting model. Every problem is a :class:`UserError` that says what to do."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..core.class_map import ClassMap
from ..core.errors import UserError
from ..core.grid import check_mask_grid
from ..model.metadata import ModelMetadata
from ..model.onnx_runtime import is_onnx
from ..model.opened import open_model
from ..core.raster_io import open_raster
from .config import TrainingConfig


@dataclass
class Inputs:
    """The checked inputs."""

    images: list[str]
    masks: list[str]
    bands: list[int]
    band_count: int
    input_dtype: str
    class_map: ClassMap
    lookup: np.ndarray
    pixel_size: list[float]
    crs_wkt: str
    band_names: list[str]


def check_inputs(config: TrainingConfig) -> Inputs:
    """Checks images, masks, bands and class maps; raises UserError with what to do."""
    from osgeo import gdal, gdal_array

    if not config.images:
        raise UserError("Choose a training image.")
    if len(config.images) != len(config.masks):
        raise UserError(f"{len(config.images)} images but {len(config.masks)} masks were given; "
                        "give one mask per image, in the same order.")
    if not config.output_model.lower().endswith(".keras"):
        raise UserError(f"The model file must end in .keras: {config.output_model}")
    first = open_raster(config.images[0])
    band_count = first.RasterCount
    maps: list[ClassMap] = []
    for image_path, mask_path in zip(config.images, config.masks):
        image, mask = open_raster(image_path), open_raster(mask_path)
        if image.RasterCount != band_count:
            raise UserError(f"'{image_path}' has {image.RasterCount} bands but "
                            f"'{config.images[0]}' has {band_count}; all training images need "
                            "the same bands in the same order.")
        check_mask_grid(image, mask, image_path, mask_path)
        class_map = ClassMap.read_from_dataset(mask)
        if class_map is None:
            raise UserError(f"The mask '{mask_path}' carries no class map. Make masks with "
                            "'Build training masks' (landcoverunet:buildmasks).")
        maps.append(class_map)
    bands = list(config.bands) if config.bands else list(range(1, band_count + 1))
    wrong = [b for b in bands if not 1 <= int(b) <= band_count]
    if wrong:
        raise UserError(f"Band number(s) {', '.join(map(str, wrong))} are out of range: the "
                        f"image has bands 1 to {band_count}.")
    if len(set(bands)) != len(bands):
        raise UserError(f"A band is chosen twice: {bands}.")
    class_map = merge_class_maps(maps, config.masks)
    if len(class_map) < 2:
        raise UserError("The mask has a single class; a classifier needs at least two. "
                        "Digitise examples of the other land covers too.")
    lookup = np.zeros(256, dtype=np.uint8)
    for index, info in enumerate(class_map.classes):
        lookup[info.id] = index + 1
    types = [gdal_array.GDALTypeCodeToNumericTypeCode(first.GetRasterBand(b).DataType)
             for b in bands]
    transform = first.GetGeoTransform()
    # The colour interpretation when it names a colour, else the band's description
    # (e.g. "ETM+ red"): the report uses them to pick a true-colour composite.
    names = [gdal.GetColorInterpretationName(first.GetRasterBand(b).GetColorInterpretation())
             for b in bands]
    names = [name if name.lower() in ("red", "green", "blue") else
             first.GetRasterBand(b).GetDescription() or name for name, b in zip(names, bands)]
    return Inputs(list(config.images), list(config.masks), [int(b) for b in bands], band_count,
                  np.dtype(np.result_type(*types)).name, class_map, lookup,
                  [abs(transform[1]), abs(transform[5])], first.GetProjection(), names)


def merge_class_maps(maps: list[ClassMap], paths: list[str]) -> ClassMap:
    """One class map for several masks: allowed when ids and names agree where they meet.

    A mask may lack classes the others have (they are added); the same id with another name, or
    the same name with another id, is an error because the network would mix two classes.
    """
    merged = {c.id: c for c in maps[0].classes}
    for class_map, path in zip(maps[1:], paths[1:]):
        for info in class_map.classes:
            known = merged.get(info.id)
            if known is not None and known.name.strip().lower() != info.name.strip().lower():
                raise UserError(
                    f"The masks disagree: class id {info.id} is '{known.name}' in "
                    f"'{paths[0]}' but '{info.name}' in '{path}'. Build the masks with the same "
                    "class map (the CLASS_MAP parameter of 'Build training masks').")
            same_name = [c for c in merged.values()
                         if c.name.strip().lower() == info.name.strip().lower()]
            if same_name and same_name[0].id != info.id:
                raise UserError(
                    f"The masks disagree: class '{info.name}' has id {same_name[0].id} in one "
                    f"mask and {info.id} in '{path}'. Build the masks with the same class map.")
            merged.setdefault(info.id, info)
    return ClassMap(tuple(sorted(merged.values(), key=lambda c: c.id)))


def check_init_model(path: str, inputs: Inputs, bands_given: bool) -> ModelMetadata:
    """Reads the starting model's metadata and checks it fits these bands and classes, and that
    the file holds nothing but a plugin U-Net (before any work; it is loaded much later)."""
    if is_onnx(path):
        raise UserError(f"'{path}' is an exported ONNX model, which cannot be trained further: "
                        "start from the .keras file it was exported from.")
    metadata = open_model(path).metadata
    if not bands_given and len(metadata.bands) <= inputs.band_count and all(
            1 <= b <= inputs.band_count for b in metadata.bands):
        inputs.bands = list(metadata.bands)
    if list(metadata.bands) != inputs.bands or metadata.band_count != inputs.band_count:
        raise UserError(
            f"The starting model '{path}' was trained on bands {metadata.bands} of a "
            f"{metadata.band_count}-band image; this run uses bands {inputs.bands} of a "
            f"{inputs.band_count}-band image. Use the same bands, or train without INIT_MODEL.")
    old = metadata.classes
    if old.ids != inputs.class_map.ids or [n.strip().lower() for n in old.names] != [
            n.strip().lower() for n in inputs.class_map.names]:
        raise UserError(
            f"The starting model '{path}' predicts classes {old.ids} "
            f"({', '.join(old.names)}); these masks have {inputs.class_map.ids} "
            f"({', '.join(inputs.class_map.names)}). Build the masks with the model's class map "
            "or train without INIT_MODEL.")
    return metadata


def input_warnings(inputs: Inputs) -> list[str]:
    """What the checked inputs would train on without a word: fill without nodata, images of
    different types or scales, mask ids the class map does not name."""
    from ..core.input_warnings import fill_warning, mixed_images_warning, unknown_ids_warning

    found = [fill_warning(image, inputs.bands, os.path.basename(image))
             for image in inputs.images]
    found.append(mixed_images_warning(inputs.images, inputs.bands))
    found += [unknown_ids_warning(mask, inputs.class_map.ids) for mask in inputs.masks]
    return [warning for warning in found if warning]
