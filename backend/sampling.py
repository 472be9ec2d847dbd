"""Where training windows come from, and which whole blocks are held out for validation.

A random per-window split leaks: neighbouring windows share pixels and look alike, so validation
would measure memory rather than generalisation. Here each scene is cut into square blocks;
whole labelled blocks go to validation (stratified so every class appears there where it can
while still appearing in training), and training windows are only placed where they overlap no
validation block. Windows are anchored on labelled pixels, with rarer classes drawn more often,
so a handful of small polygons in a large scene still trains.

Everything works on a coarse grid of ``cell`` x ``cell`` pixel cells holding per-class label
counts, so planning a large scene never needs its full-resolution mask in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import Cancelled
from .progress import ConsoleProgress, Progress
from .raster_io import open_raster, windows

CELL = 16
"""Edge of the label-count cells in pixels; block sizes and window strides are multiples."""
CLASS_POWER = 0.5
"""A class is chosen as window anchor with probability proportional to its pixels ** this."""
MIN_REACHABLE = 0.6
"""Windows shrink until at least this share of training labels can be reached."""


@dataclass
class SceneLabels:
    """Per-class label counts of one mask on a grid of ``cell``-pixel cells.

    Attributes:
        width: mask width in pixels.
        height: mask height in pixels.
        cell: edge of a cell in pixels.
        counts: (cell rows, cell columns, classes) pixel counts of output channel c
            (mask label index c + 1).
    """

    width: int
    height: int
    cell: int
    counts: np.ndarray

    @property
    def totals(self) -> np.ndarray:
        return self.counts.sum(axis=(0, 1))


@dataclass(frozen=True)
class Block:
    """A square block of a scene (clipped at the scene's edge), in pixels."""

    scene: int
    x: int
    y: int
    width: int
    height: int

    def overlaps(self, x: int, y: int, width: int, height: int) -> bool:
        """Whether a window shares at least one pixel with this block."""
        return (x < self.x + self.width and self.x < x + width
                and y < self.y + self.height and self.y < y + height)


def summarise_labels(mask_path: str, lookup: np.ndarray, classes: int, cell: int = CELL,
                     progress: Progress | None = None) -> SceneLabels:
    """Counts a mask's labels per cell, reading it block by block.

    Args:
        mask_path: a mask from buildmasks (uint8, 0 = no label).
        lookup: 256 entries mapping mask class ids to label indices (0 = ignore, 1..classes).
        classes: number of output channels.
        cell: cell edge in pixels (divides 1024).
        progress: cancel and fraction.
    """
    progress = progress or ConsoleProgress(quiet=True)
    dataset = open_raster(mask_path)
    width, height = dataset.RasterXSize, dataset.RasterYSize
    rows, cols = -(-height // cell), -(-width // cell)
    counts = np.zeros((rows, cols, classes), dtype=np.int64)
    blocks = list(windows(width, height, 1024))
    band = dataset.GetRasterBand(1)
    for number, (x, y, w, h) in enumerate(blocks):
        if progress.cancelled():
            raise Cancelled()
        labels = lookup[band.ReadAsArray(x, y, w, h)]
        ph, pw = -(-h // cell) * cell, -(-w // cell) * cell
        padded = np.zeros((ph, pw), dtype=labels.dtype)
        padded[:h, :w] = labels
        grid = padded.reshape(ph // cell, cell, pw // cell, cell)
        for c in range(classes):
            counts[y // cell:y // cell + ph // cell, x // cell:x // cell + pw // cell, c] = \
                (grid == c + 1).sum(axis=(1, 3))
        progress.set_fraction((number + 1) / len(blocks))
    return SceneLabels(width, height, cell, counts)


def block_counts(scene: SceneLabels, index: int, block_size: int) -> list[tuple[Block, np.ndarray]]:
    """The labelled blocks of a scene with their per-class counts."""
    per = block_size // scene.cell
    result = []
    rows, cols, _ = scene.counts.shape
    for r in range(0, rows, per):
        for c in range(0, cols, per):
            counts = scene.counts[r:r + per, c:c + per].sum(axis=(0, 1))
            if counts.sum() == 0:
                continue
            x, y = c * scene.cell, r * scene.cell
            block = Block(index, x, y, min(block_size, scene.width - x),
                          min(block_size, scene.height - y))
            result.append((block, counts))
    return result


def choose_block_size(scenes: list[SceneLabels], tile: int, minimum: int = 2 * CELL,
                      wanted_blocks: int = 10) -> int:
    """Half the tile, halved further until the scenes have enough labelled blocks to split.

    Args:
        scenes: the label summaries.
        tile: the training window edge asked for.
        minimum: the smallest block edge.
        wanted_blocks: how many labelled blocks make a usable split.
    """
    size = max(minimum, (tile // 2) // CELL * CELL)
    while size > minimum:
        labelled = sum(len(block_counts(s, i, size)) for i, s in enumerate(scenes))
        if labelled >= wanted_blocks:
            break
        size = max(minimum, size // 2 // CELL * CELL)
    return size


def split_validation(scenes: list[SceneLabels], block_size: int, fraction: float,
                     seed: int) -> list[Block]:
    """Chooses whole labelled blocks for validation, stratified by class.

    First, rarest class first, each class that occurs in at least two blocks gets a validation
    block (the one holding the share of that class closest to ``fraction``). Then random blocks
    are added until validation holds ``fraction`` of the labelled pixels. A block is never taken
    when that would leave a class with no training pixel.

    Args:
        scenes: label summaries of the training scenes.
        block_size: block edge in pixels (a multiple of the cell size).
        fraction: wanted share of labelled pixels in validation.
        seed: makes the split repeatable.

    Returns:
        The validation blocks (empty when ``fraction`` is 0 or only one block is labelled).
    """
    candidates = [bc for i, s in enumerate(scenes) for bc in block_counts(s, i, block_size)]
    if fraction <= 0 or len(candidates) < 2:
        return []
    rng = np.random.default_rng(seed)
    matrix = np.stack([counts for _, counts in candidates]).astype(np.float64)
    class_total = matrix.sum(axis=0)
    target = fraction * class_total.sum()
    chosen: list[int] = []
    val = np.zeros_like(class_total)

    def keeps_training(i: int) -> bool:
        remaining = class_total - val - matrix[i]
        return bool(np.all((remaining > 0) | (class_total == 0)))

    occurrences = (matrix > 0).sum(axis=0)
    for c in np.argsort(class_total):
        if class_total[c] == 0 or occurrences[c] < 2 or val[c] > 0:
            continue
        options = [i for i in range(len(candidates))
                   if i not in chosen and matrix[i, c] > 0 and keeps_training(i)]
        if not options:
            continue
        share = np.array([matrix[i, c] for i in options]) / class_total[c]
        size = np.array([matrix[i].sum() for i in options])
        # the class share nearest the fraction, then the smaller block, then chance
        order = np.lexsort((rng.random(len(options)), size, np.abs(share - fraction)))
        pick = options[int(order[0])]
        chosen.append(pick)
        val += matrix[pick]
    for i in rng.permutation(len(candidates)):
        if val.sum() >= target:
            break
        if i in chosen or val.sum() + matrix[i].sum() > 1.5 * target or not keeps_training(i):
            continue
        chosen.append(int(i))
        val += matrix[i]
    return [candidates[i][0] for i in chosen]


@dataclass
class _ScenePlan:
    """Allowed window positions of one scene."""

    xs: np.ndarray
    ys: np.ndarray
    allowed: np.ndarray          # (len(ys), len(xs)) bool
    blocked: np.ndarray          # (cell rows + 1, cell cols + 1) prefix sums of validation cells
    reachable: np.ndarray        # (cell rows, cell cols) bool: some allowed window covers it


@dataclass
class WindowSampler:
    """Draws training windows that avoid the validation blocks, anchored on labels.

    Attributes:
        scenes: label summaries.
        validation: the validation blocks.
        tile: (height, width) of the windows.
        class_power: rarer classes are drawn with probability ~ pixels ** class_power.
    """

    scenes: list[SceneLabels]
    validation: list[Block]
    tile: tuple[int, int]
    class_power: float = CLASS_POWER
    plans: list[_ScenePlan] = field(init=False)

    def __post_init__(self) -> None:
        self.plans = [self._plan(i, s) for i, s in enumerate(self.scenes)]
        classes = self.scenes[0].counts.shape[-1]
        self._cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        reach = np.zeros(classes)
        for c in range(classes):
            scene_ids, flat, weights = [], [], []
            for i, (scene, plan) in enumerate(zip(self.scenes, self.plans)):
                counts = np.where(plan.reachable, scene.counts[..., c], 0).ravel()
                nonzero = np.flatnonzero(counts)
                scene_ids.append(np.full(len(nonzero), i))
                flat.append(nonzero)
                weights.append(counts[nonzero])
            w = np.concatenate(weights).astype(np.float64)
            reach[c] = w.sum()
            self._cells.append((np.concatenate(scene_ids), np.concatenate(flat),
                                np.cumsum(w)))
        self.reachable_pixels = reach
        with np.errstate(divide="ignore"):
            p = np.where(reach > 0, reach ** self.class_power, 0.0)
        self.class_probability = p / p.sum() if p.sum() > 0 else p

    # ----- planning ------------------------------------------------------------------------
    def _plan(self, index: int, scene: SceneLabels) -> _ScenePlan:
        th, tw = self.tile
        cell = scene.cell
        rows, cols, _ = scene.counts.shape
        blocked_cells = np.zeros((rows, cols), dtype=np.int32)
        for block in self.validation:
            if block.scene == index:
                blocked_cells[block.y // cell:-(-(block.y + block.height) // cell),
                              block.x // cell:-(-(block.x + block.width) // cell)] = 1
        prefix = np.zeros((rows + 1, cols + 1), dtype=np.int64)
        prefix[1:, 1:] = blocked_cells.cumsum(0).cumsum(1)
        xs = _positions(scene.width, tw, cell)
        ys = _positions(scene.height, th, cell)
        c0, c1 = xs // cell, (xs + tw - 1) // cell + 1
        r0, r1 = ys // cell, (ys + th - 1) // cell + 1
        inside = (prefix[r1][:, c1] - prefix[r0][:, c1] - prefix[r1][:, c0]
                  + prefix[r0][:, c0])
        allowed = inside == 0
        cover = np.zeros((rows + 1, cols + 1), dtype=np.int64)
        iy, ix = np.nonzero(allowed)
        if len(iy):
            np.add.at(cover, (r0[iy], c0[ix]), 1)
            np.add.at(cover, (r1[iy], c0[ix]), -1)
            np.add.at(cover, (r0[iy], c1[ix]), -1)
            np.add.at(cover, (r1[iy], c1[ix]), 1)
        reachable = cover.cumsum(0).cumsum(1)[:rows, :cols] > 0
        return _ScenePlan(xs, ys, allowed, prefix, reachable)

    def reachable_fraction(self) -> float:
        """Share of the training labels (outside validation) that some window can see."""
        total = 0.0
        for scene, plan in zip(self.scenes, self.plans):
            rows, cols = plan.reachable.shape
            blocked = np.diff(np.diff(plan.blocked, axis=0), axis=1) > 0
            training = scene.counts.sum(-1) * ~blocked[:rows, :cols]
            total += training.sum()
        return float(self.reachable_pixels.sum() / total) if total else 0.0

    # ----- sampling ------------------------------------------------------------------------
    def overlaps_validation(self, scene: int, x: int, y: int) -> bool:
        """Whether a window at (x, y) touches a validation block (exact, in pixels)."""
        th, tw = self.tile
        return any(b.scene == scene and b.overlaps(x, y, tw, th) for b in self.validation)

    def _blocked(self, scene: int, x: int, y: int) -> bool:
        plan, cell = self.plans[scene], self.scenes[scene].cell
        th, tw = self.tile
        r0, r1 = y // cell, (y + th - 1) // cell + 1
        c0, c1 = x // cell, (x + tw - 1) // cell + 1
        p = plan.blocked
        return bool(p[r1, c1] - p[r0, c1] - p[r1, c0] + p[r0, c0])

    def sample(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """Draws one window: (scene index, x, y) of its top-left pixel.

        A class is drawn (rarer ones more often than their share), then a labelled cell of that
        class that a training window can reach, then one of the allowed windows covering that
        cell, shifted by up to a cell at random when the shift stays clear of validation.
        """
        c = int(rng.choice(len(self.class_probability), p=self.class_probability))
        scene_ids, flat, cumulative = self._cells[c]
        k = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        k = min(k, len(flat) - 1)
        scene_index = int(scene_ids[k])
        scene, plan = self.scenes[scene_index], self.plans[scene_index]
        cell = scene.cell
        row, col = divmod(int(flat[k]), scene.counts.shape[1])
        th, tw = self.tile
        ix = np.flatnonzero((plan.xs <= col * cell + cell - 1) & (plan.xs + tw > col * cell))
        iy = np.flatnonzero((plan.ys <= row * cell + cell - 1) & (plan.ys + th > row * cell))
        options = np.argwhere(plan.allowed[np.ix_(iy, ix)])
        oy, ox = options[rng.integers(len(options))]
        x, y = int(plan.xs[ix[ox]]), int(plan.ys[iy[oy]])
        jx, jy = (int(v) for v in rng.integers(-cell // 2, cell // 2 + 1, size=2))
        nx = min(max(x + jx, 0), scene.width - tw)
        ny = min(max(y + jy, 0), scene.height - th)
        if not self._blocked(scene_index, nx, ny):
            x, y = nx, ny
        return scene_index, x, y


def _positions(size: int, tile: int, stride: int) -> np.ndarray:
    """Window starts along one axis: every ``stride`` pixels, plus the last one that fits."""
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return np.asarray(starts, dtype=np.int64)


def plan_windows(scenes: list[SceneLabels], validation: list[Block], tile: tuple[int, int],
                 multiple: int, minimum: int = 64) -> tuple[WindowSampler, list[str]]:
    """Builds the sampler, shrinking the windows until enough training labels are reachable.

    In a small scene, large windows cannot avoid the validation blocks; halving them keeps the
    split honest and most labels usable.

    Args:
        scenes: label summaries.
        validation: validation blocks.
        tile: (height, width) asked for (multiples of ``multiple``, within the smallest scene).
        multiple: window edges stay multiples of this (2 ** network depth).
        minimum: the smallest edge tried.

    Returns:
        The sampler and messages for the log about any adjustment.
    """
    messages = []
    th, tw = tile
    while True:
        sampler = WindowSampler(scenes, validation, (th, tw))
        fraction = sampler.reachable_fraction()
        if fraction >= MIN_REACHABLE or max(th, tw) <= minimum:
            break
        nh = max(minimum, th // 2 // multiple * multiple)
        nw = max(minimum, tw // 2 // multiple * multiple)
        nh, nw = min(nh, th), min(nw, tw)
        if (nh, nw) == (th, tw):
            break
        messages.append(f"Windows of {th} x {tw} pixels reach only {fraction:.0%} of the "
                        f"training labels without touching a validation block; trying "
                        f"{nh} x {nw}.")
        th, tw = nh, nw
    return sampler, messages
