"""The class codes and names found on the features, and the slips among them worth a warning.

A mask's classes come from a code field and, optionally, a name field. Digitising slips make
them disagree: one code with two names ("1 = forest" on some features, "1 = urban" on others:
the mask takes the first name and half the features are trained as the wrong class), or two
codes with one name ("forest" as 1 and as 4: two classes the analyst believes are one). Both
build a mask without error, so each is named in a warning with the features involved.
"""
from __future__ import annotations

from typing import Any

LISTED = 3
"""Features named per name in a warning; the rest are counted."""


class ClassNames:
    """The name each feature gives its class code, remembered with the feature."""

    def __init__(self) -> None:
        self.seen: dict[Any, dict[str, list[str]]] = {}
        """code -> name -> the features (as "feature <fid> of '<layer>'") that give it."""

    def add(self, code: Any, name: str | None, layer: str, fid: int) -> None:
        """Records a feature's code and name (None: the feature has no name for its code)."""
        names = self.seen.setdefault(code, {})
        if name is not None:
            names.setdefault(str(name), []).append(f"feature {fid} of '{layer}'")

    def chosen(self) -> dict[Any, str]:
        """The name of each code that has one: the first one seen, as the mask uses it."""
        return {code: next(iter(names)) for code, names in self.seen.items() if names}

    def warnings(self) -> list[str]:
        """One line per code with several names and per name with several codes."""
        lines = []
        for code, names in self.seen.items():
            if len(names) > 1:
                found = "; ".join(f"'{name}' ({_listed(features)})"
                                  for name, features in names.items())
                lines.append(f"Class code {code!r} has {len(names)} names: {found}. The mask "
                             f"names it '{next(iter(names))}'. Correct the names or codes so "
                             "each class has one of each.")
        shown = {code: self.chosen().get(code, str(code)) for code in self.seen}
        by_name: dict[str, list[Any]] = {}
        for code, name in shown.items():  # text codes without names are their own names
            by_name.setdefault(" ".join(name.split()).casefold(), []).append(code)
        for codes in by_name.values():
            if len(codes) > 1:
                found = "; ".join(
                    f"{code!r} ({_listed([f for fs in self.seen[code].values() for f in fs])})"
                    for code in codes)
                lines.append(f"The codes {found} all name the class "
                             f"'{shown[codes[0]]}': they stay {len(codes)} separate "
                             "classes in the mask. Give them one code, or different names.")
        return lines


def _listed(features: list[str]) -> str:
    shown = ", ".join(features[:LISTED])
    return shown + (f" and {len(features) - LISTED} more" if len(features) > LISTED else "")
