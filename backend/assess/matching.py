"""Matching the reference's classes to the map's: by name, by integer code, or both (auto).

A map from another tool may name its classes differently from the reference, or carry only
codes; a wrong match would score silently 0. So every match is logged, reference classes the map
does not know are kept (as classes it never predicts, shown in the report), and when nothing
matches at all the assessment stops with both class lists side by side and the parameter to
change.

Modes (the ``MATCH`` parameter of assessaccuracy):

- ``auto``: by name (case-insensitive); by code where either side has no names (a reference code
  without a name, or a map with plain codes);
- ``names``: by name only;
- ``codes``: the reference's integer codes (a numeric field's values, or a reference raster's pixel
  values) against the map's codes: its original class code (maps from this plugin), else its
  pixel value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..core.class_map import ClassInfo, ClassMap
from ..core.errors import UserError
from .raster_classes import SOURCE_PLUGIN, RasterClasses, describe

MATCH_AUTO = "auto"
MATCH_NAMES = "names"
MATCH_CODES = "codes"
MATCH_MODES = (MATCH_AUTO, MATCH_NAMES, MATCH_CODES)
"""The choices of the MATCH parameter, in its order."""

MATCH_NAME = "name"
MATCH_CODE = "code"
MATCH_VALUE = "pixel value"
MATCH_NONE = "not in the map"

_MODE_TEXT = {MATCH_AUTO: "by name, and by code where a side has no names",
              MATCH_NAMES: "by name only", MATCH_CODES: "by integer code only"}


@dataclass(frozen=True)
class AccuracyClass:
    """One row and column of the confusion matrix.

    Attributes:
        name: the class name shown (the map's name; the reference's for classes the map lacks).
        color: '#rrggbb'.
        map_id: the class id in the map's class list; None when the map never predicts it.
        reference_names: the reference class names matched to it ('' where none).
        match: how the reference matched it: 'name', 'code', 'pixel value', 'not in the map', or ''.
    """

    name: str
    color: str
    map_id: int | None
    reference_names: tuple[str, ...] = ()
    match: str = ""


def unnamed_code(info: ClassInfo) -> bool:
    """Whether a reference class is an integer code with no name of its own ('5' for code 5)."""
    return _integer(info.code) is not None and str(_integer(info.code)) == info.name.strip()


def _integer(value: Any) -> int | None:
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _by_code(map_classes: RasterClasses, code: Any) -> tuple[ClassInfo | None, str]:
    wanted = _integer(code)
    if wanted is None:
        return None, ""
    for info in map_classes.classes.classes:
        if _integer(info.code) == wanted:
            return info, MATCH_CODE
    for info, value in zip(map_classes.classes.classes, map_classes.values):
        if value == wanted:
            return info, MATCH_VALUE
    return None, ""


def match_classes(map_classes: RasterClasses, reference: ClassMap,
                  reference_codes: Sequence[Any], mode: str = MATCH_AUTO,
                  ) -> tuple[list[AccuracyClass], np.ndarray, list[str]]:
    """Matches each reference class to a map class, or keeps it as a class the map lacks.

    Args:
        map_classes: the map's classes and pixel values.
        reference: the reference classes.
        reference_codes: the code of each reference class (same order) used for code matching:
            the field value of a vector reference, the pixel value of a reference raster.
        mode: one of ``MATCH_MODES``.

    Returns:
        The matrix classes (the map's, in its order, then reference classes the map lacks), the
        matrix index of each reference class (in ``reference.classes`` order), and log lines.

    Raises:
        UserError: when no reference class matches any map class (both lists side by side).
    """
    if mode not in MATCH_MODES:
        raise UserError(f"MATCH must be one of {', '.join(MATCH_MODES)}; got '{mode}'.")
    own = map_classes.classes
    index = {c.id: number for number, c in enumerate(own.classes)}
    matched: dict[int, list[tuple[str, str]]] = {c.id: [] for c in own.classes}
    extra: list[ClassInfo] = []
    reference_index = np.zeros(len(reference), dtype=np.int64)
    messages: list[str] = [f"the map's classes come from {map_classes.source}; classes matched "
                           f"{_MODE_TEXT[mode]} (MATCH={mode})"]
    for number, (ref, code) in enumerate(zip(reference.classes, reference_codes)):
        target, how = None, ""
        if mode != MATCH_CODES:
            target, how = own.by_name(ref.name), MATCH_NAME
        if target is None and (mode == MATCH_CODES or (mode == MATCH_AUTO and (
                unnamed_code(ref) or not map_classes.named))):
            target, how = _by_code(map_classes, code)
        if target is None:
            reference_index[number] = len(own) + len(extra)
            extra.append(ref)
            messages.append(f"reference class '{ref.name}' is not among the map's classes: "
                            "shown as a class the map never predicts")
            continue
        reference_index[number] = index[target.id]
        matched[target.id].append((ref.name, how))
        if how == MATCH_NAME:
            messages.append(f"reference class '{ref.name}' matched the map's '{target.name}' "
                            "by name")
        else:
            by = "original code" if how == MATCH_CODE and map_classes.source == SOURCE_PLUGIN \
                else how
            messages.append(f"reference code {_integer(code)} ('{ref.name}') matched the map's "
                            f"class '{target.name}' by its {by}")
    if not any(matched.values()):
        raise UserError(_nothing_matches(map_classes, reference, reference_codes, mode))
    for class_id, refs in matched.items():
        if len(refs) > 1:
            messages.append(f"reference classes {', '.join(repr(r) for r, _ in refs)} all "
                            f"matched the map's '{own.by_id(class_id).name}' and are "
                            "counted together")
    unmatched = [c.name for c in own.classes if not matched[c.id]]
    if unmatched:
        messages.append("map classes without a reference class: " + ", ".join(
            f"'{n}'" for n in unmatched))
    classes = [AccuracyClass(c.name, c.color, c.id, tuple(r for r, _ in matched[c.id]),
                             "/".join(sorted({h for _, h in matched[c.id]})))
               for c in own.classes]
    classes += [AccuracyClass(c.name, c.color, None, (c.name,), MATCH_NONE) for c in extra]
    return classes, reference_index, messages


def _nothing_matches(map_classes: RasterClasses, reference: ClassMap,
                     reference_codes: Sequence[Any], mode: str) -> str:
    """The error text: both class lists side by side, and what to change."""
    left = [f"map classes (value: name; from {map_classes.source})", *describe(map_classes)]
    right = ["reference classes (code: name)",
             *[f"{_integer(code) if _integer(code) is not None else '-'}: {c.name}"
               for c, code in zip(reference.classes, reference_codes)]]
    width = max(len(line) for line in left) + 2
    rows = [f"  {(left[i] if i < len(left) else '').ljust(width)}| "
            f"{right[i] if i < len(right) else ''}" for i in range(max(len(left), len(right)))]
    if mode == MATCH_CODES:
        advice = ("Set MATCH to 'names' (or 'auto') to match by name, or choose the reference "
                  "field that holds the map's codes (CLASS_FIELD).")
    else:
        advice = ("Set MATCH to 'codes' to match the reference's integer codes to the map's "
                  "values directly, or choose the reference field whose names are the map's "
                  "(CLASS_FIELD, CLASS_NAME_FIELD).")
    return ("No reference class matches a class of the map (matching "
            f"{_MODE_TEXT[mode]}, MATCH={mode}), so there is nothing to score:\n"
            + "\n".join(rows) + "\n" + advice)
