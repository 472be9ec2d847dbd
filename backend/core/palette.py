"""Default class colours: conventional ones for common land-cover names, then a clear palette.

Analysts read a land-cover map faster when water is blue and forest is dark green, so names are
matched (case-insensitively, by keyword) before falling back to a qualitative palette.
"""
from __future__ import annotations

import re

# (keywords, colour). The first entry whose keyword occurs in the class name wins; the order puts
# specific words before general ones ("wetland" before "land", "grassland" before "grass").
CONVENTIONAL_COLOURS: list[tuple[tuple[str, ...], str]] = [
    (("wetland", "marsh", "swamp", "bog", "mangrove"), "#1b9e9e"),      # teal
    (("water", "lake", "river", "pond", "sea", "ocean", "reservoir"), "#1f78b4"),  # blue
    (("forest", "tree", "wood"), "#1a6b2f"),                             # dark green
    (("grass", "herbaceous", "meadow", "pasture", "lawn"), "#a6d96a"),   # light green
    (("shrub", "scrub", "bush"), "#8c9a3c"),                             # olive
    (("crop", "agri", "farm", "cultivated", "field", "orchard"), "#ffd92f"),  # yellow
    (("road", "street", "highway", "pavement", "parking"), "#7f7f7f"),   # grey
    (("building", "urban", "developed", "built", "house", "roof", "settlement", "impervious"),
     "#e31a1c"),                                                         # red
    (("sand", "bare", "soil", "sediment", "beach", "dune", "rock", "barren"), "#d2b48c"),  # tan
    (("snow", "ice", "glacier"), "#f0f0f0"),
    (("cloud",), "#cccccc"),
    (("shadow",), "#3c3c3c"),
]

# A qualitative palette (ColorBrewer Set1/Dark2/Paired) for names with no convention.
QUALITATIVE: list[str] = [
    "#984ea3", "#ff7f00", "#a65628", "#f781bf", "#66c2a5", "#e7298a", "#7570b3", "#d95f02",
    "#fb9a99", "#cab2d6", "#6a3d9a", "#b15928", "#80b1d3", "#fdb462", "#bc80bd", "#ccebc5",
]


def conventional_colour(name: str) -> str | None:
    """Returns the conventional colour for a land-cover name, or None."""
    lowered = name.lower()
    for keywords, colour in CONVENTIONAL_COLOURS:
        if any(re.search(keyword, lowered) for keyword in keywords):
            return colour
    return None


def assign_colours(names: list[str], taken: set[str] | None = None) -> list[str]:
    """Gives each name a colour: its conventional one, else the next unused qualitative one."""
    used = {c.lower() for c in (taken or set())}
    colours: list[str] = []
    for name in names:
        colour = conventional_colour(name)
        if colour is None or colour in used:
            colour = next((c for c in QUALITATIVE if c not in used), None)
            if colour is None:  # more classes than the palette: spread hues evenly
                colour = _hue_colour(len(colours))
        used.add(colour)
        colours.append(colour)
    return colours


def _hue_colour(index: int) -> str:
    import colorsys
    r, g, b = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.65, 0.85)
    return "#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255))


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b)."""
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
