"""Parts of an image classified apart equal the whole map, pixel for pixel, seams included."""
from __future__ import annotations

import numpy as np
import pytest
from fixtures_classify import make_image, read, rgb

from landcoverunet.backend.classify.parts import Part, split
from landcoverunet.backend.classify.classify_raster import classify_raster
from landcoverunet.backend.classify.tiling import AxisPlan, plan_axis
from landcoverunet.backend.core.errors import UserError


def test_split_covers_the_area_once():
    parts = split(1000, 700, 300)
    cover = np.zeros((700, 1000), dtype=int)
    for part in parts:
        cover[part.y:part.y + part.height, part.x:part.x + part.width] += 1
    assert (cover == 1).all() and len(parts) == 4 * 3
    assert split(200, 100, 300) == [Part(0, 0, 200, 100)]
    assert split(200, 100, 0) == [Part(0, 0, 200, 100)]


@pytest.mark.parametrize("start, stop", [(0, 50), (150, 300), (310, 311), (400, 489)])
def test_a_cut_plan_keeps_the_whole_axis_weights(start, stop):
    windows = plan_axis(489, 128, 16, 8, minimum=64)
    whole = AxisPlan.whole(windows, 489)
    cut = whole.covering(start, stop)
    sums = whole.sums()
    assert np.array_equal(cut.sums()[start - cut.offset:stop - cut.offset], sums[start:stop])
    for window in cut.windows:
        original = whole.windows.index(type(window)(window.start + cut.offset, window.size,
                                                    window.valid))
        assert whole.weights[original] is cut.weights[cut.windows.index(window)]


@pytest.mark.parametrize("extras", [False, True])
def test_parts_put_together_equal_the_whole_map(random_model, tmp_path, extras):
    image = make_image(tmp_path / "image.tif", rgb(430, 470, seed=4))
    settings = {"window_size": 128, "overlap": 16}

    def run(name: str, part: Part | None = None) -> list[np.ndarray]:
        paths = [tmp_path / f"{name}.tif"]
        if extras:
            paths += [tmp_path / f"{name}_conf.tif", tmp_path / f"{name}_prob.tif"]
        classify_raster(image, random_model, str(paths[0]), part=part, overviews=False,
                        confidence_path=str(paths[1]) if extras else None,
                        probabilities_path=str(paths[2]) if extras else None, **settings)
        return [read(path) for path in paths]

    whole = run("whole")
    pieces = [np.zeros_like(array) for array in whole]
    for part in split(470, 430, 150):
        for piece, array in zip(pieces, run(part.name, part)):
            piece[..., part.y:part.y + part.height, part.x:part.x + part.width] = array
    for piece, array in zip(pieces, whole):
        assert np.array_equal(piece, array)
    assert len(np.unique(whole[0])) > 1


def test_a_part_outside_the_image_is_refused(random_model, tmp_path):
    image = make_image(tmp_path / "image.tif", rgb(50, 60))
    with pytest.raises(UserError, match="outside"):
        classify_raster(image, random_model, str(tmp_path / "out.tif"), part=Part(40, 0, 30, 10))
