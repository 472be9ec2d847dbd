"""The class map (id, name, colour, original code): written once into a raster, read everywhere.

Masks from buildmasks and maps from classifyraster carry their class map in the GeoTIFF itself:
as JSON in the dataset metadata (the source of truth), and as a GDAL colour table and category
names so that any GIS shows it. Training, classification, styling and accuracy assessment all read
it back from the file, so the user never re-enters classes or colours.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from .errors import UserError
from .palette import assign_colours, hex_to_rgb

NO_LABEL = 0
"""Pixel value meaning "no label" in masks and "nodata" in classified rasters."""
MAX_CLASSES = 254
"""Ids run 1..254 so that a class raster stays uint8 with 0 (and 255) free."""
METADATA_KEY = "LANDCOVERUNET_CLASS_MAP"


@dataclass(frozen=True)
class ClassInfo:
    """One class: its pixel id, display name, '#rrggbb' colour and the code it came from."""

    id: int
    name: str
    color: str
    code: Any = None


@dataclass(frozen=True)
class ClassMap:
    """An ordered list of classes with unique ids in 1..254."""

    classes: tuple[ClassInfo, ...]

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        if len(set(ids)) != len(ids):
            raise UserError(f"The class map repeats class ids: {sorted(ids)}.")
        if any(not 1 <= i <= MAX_CLASSES for i in ids):
            raise UserError(f"Class ids must be between 1 and {MAX_CLASSES}; got {sorted(ids)}.")

    # ----- look-ups -------------------------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.classes]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)

    def by_id(self, class_id: int) -> ClassInfo:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def by_name(self, name: str) -> ClassInfo | None:
        wanted = name.strip().lower()
        return next((c for c in self.classes if c.name.strip().lower() == wanted), None)

    def id_for_code(self, code: Any) -> int | None:
        key = _code_key(code)
        return next((c.id for c in self.classes if _code_key(c.code) == key), None)

    # ----- building ---------------------------------------------------------------------------
    @classmethod
    def from_codes(cls, codes: Iterable[Any], names: dict[Any, str] | None = None,
                   existing: "ClassMap | None" = None) -> "ClassMap":
        """Assigns deterministic ids to class codes.

        Integer codes that fit 1..254 keep their value as id; other codes and strings get the
        smallest free ids in sorted order. With ``existing``, classes it already knows (by code,
        else by name) keep their id and colour, and new ones are appended after its largest id.

        Args:
            codes: the distinct class values found in the data (ints, floats or strings).
            names: optional display names per code (e.g. from a name field).
            existing: an earlier class map to stay consistent with.
        """
        names = names or {}
        unique: dict[Any, Any] = {}
        for code in codes:
            unique.setdefault(_code_key(code), code)
        ordered = sorted(unique.values(), key=_sort_key)

        result: list[ClassInfo] = list(existing.classes) if existing else []
        taken_ids = {c.id for c in result}
        pending: list[Any] = []
        for code in ordered:
            name = str(names.get(code, names.get(_code_key(code), _display(code))))
            if existing is not None:
                known = existing.id_for_code(code)
                if known is None:
                    match = existing.by_name(name)
                    known = match.id if match is not None else None
                if known is not None:
                    continue
            pending.append(code)

        fitting = [] if existing else [c for c in pending if _fits_as_id(c)]
        for code in fitting:
            taken_ids.add(int(code))
        rest = [c for c in pending if c not in fitting]
        next_id = max(taken_ids, default=0) + 1 if existing else 1
        new: list[tuple[int, Any]] = [(int(c), c) for c in fitting]
        for code in rest:
            while next_id in taken_ids:
                next_id += 1
            if next_id > MAX_CLASSES:
                raise UserError(
                    f"There are more than {MAX_CLASSES} classes; a class raster holds at most "
                    f"{MAX_CLASSES}. Check the class field: it may hold unique ids, not classes.")
            new.append((next_id, code))
            taken_ids.add(next_id)
        new.sort()
        new_names = [str(names.get(code, names.get(_code_key(code), _display(code))))
                     for _, code in new]
        colours = assign_colours(new_names, {c.color for c in result})
        for (class_id, code), name, colour in zip(new, new_names, colours):
            result.append(ClassInfo(class_id, name, colour, _json_code(code)))
        return cls(tuple(sorted(result, key=lambda c: c.id)))

    # ----- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"classes": [asdict(c) for c in self.classes]}

    @classmethod
    def from_dict(cls, data: dict) -> "ClassMap":
        try:
            entries = data["classes"] if isinstance(data, dict) else data
            classes = [ClassInfo(int(e["id"]), str(e["name"]),
                                 str(e.get("color") or e.get("colour") or "#808080"),
                                 e.get("code")) for e in entries]
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"The class map is not valid: {error}.") from None
        if any(c.color and not _is_hex(c.color) for c in classes):
            raise UserError("Class map colours must be written as '#rrggbb'.")
        return cls(tuple(sorted(classes, key=lambda c: c.id)))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def write_json(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json() + "\n")

    @classmethod
    def read_json(cls, path: str) -> "ClassMap":
        try:
            with open(path, encoding="utf-8") as handle:
                return cls.from_dict(json.load(handle))
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"Cannot read the class map {path}: {error}.") from None

    # ----- rasters ------------------------------------------------------------------------------
    def write_to_band(self, dataset: Any) -> None:
        """Writes the map into an open GDAL dataset: metadata JSON, colour table, category names."""
        from osgeo import gdal

        dataset.SetMetadataItem(METADATA_KEY, json.dumps(self.to_dict(), separators=(",", ":")))
        band = dataset.GetRasterBand(1)
        table = gdal.ColorTable()
        table.SetColorEntry(NO_LABEL, (0, 0, 0, 0))
        top = max(self.ids, default=0)
        names = [""] * (top + 1)
        for c in self.classes:
            table.SetColorEntry(c.id, (*hex_to_rgb(c.color), 255))
            names[c.id] = c.name
        for value in range(1, top + 1):
            if not names[value]:
                table.SetColorEntry(value, (0, 0, 0, 0))
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
        band.SetCategoryNames(names)

    @classmethod
    def read_from_dataset(cls, dataset: Any) -> "ClassMap | None":
        """Reads the map from an open GDAL dataset; None when the raster carries none."""
        text = dataset.GetMetadataItem(METADATA_KEY)
        if not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError:
            return None

    @classmethod
    def read_from_raster(cls, path: str) -> "ClassMap | None":
        """Reads the map from a raster file; None when the file carries none."""
        from osgeo import gdal

        dataset = gdal.Open(str(path))
        if dataset is None:
            raise UserError(f"Cannot open the raster {path}.")
        return cls.read_from_dataset(dataset)


def _code_key(code: Any) -> Any:
    """Makes 3, 3.0 and '3' from different sources compare equal as class codes."""
    if isinstance(code, float) and code.is_integer():
        return int(code)
    if isinstance(code, str):
        stripped = code.strip()
        try:
            return int(stripped)
        except ValueError:
            return stripped
    return code


def _sort_key(code: Any) -> tuple:
    key = _code_key(code)
    return (0, key, "") if isinstance(key, (int, float)) else (1, 0, str(key))


def _fits_as_id(code: Any) -> bool:
    key = _code_key(code)
    return isinstance(key, int) and not isinstance(key, bool) and 1 <= key <= MAX_CLASSES


def _display(code: Any) -> str:
    key = _code_key(code)
    return str(key)


def _json_code(code: Any) -> Any:
    key = _code_key(code)
    if isinstance(key, float) and not math.isfinite(key):
        return str(key)
    return key


def _is_hex(colour: str) -> bool:
    return len(colour) == 7 and colour.startswith("#") and all(
        ch in "0123456789abcdefABCDEF" for ch in colour[1:])
