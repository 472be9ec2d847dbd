"""Blending overlapping window predictions into finished rows, and the read-predict-write pipeline.

Each window's class probabilities are weighted by a smooth window and summed into an
accumulator that holds only the rows the current strip touches; rows no later window reaches
are normalised and written out (``classify/outputs.py``) and dropped. Only pixels that more
than one window covers need blending: window interiors are copied as they are.
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import numpy as np

from ..core.class_map import NO_LABEL
from ..core.errors import Cancelled
from ..core.progress import Progress
from .network import Prediction
from .outputs import ClassOutputs
from .reading import WindowReader
from .tiling import AxisPlan


class Blender:
    """Sums weighted window probabilities for one strip of rows and passes finished rows on.

    The accumulator holds one strip (the window height) over the full width. When a strip is
    done, the rows above the next strip's first row are final: they are turned into outputs and
    written, while the strip's overlap rows move to the top for the next strip.

    A window's interior (see :func:`.tiling.interiors`) is final as the network gives it; only
    the overlap bands need weighted sums. With ``classes_only`` (no confidence or probabilities
    wanted, the default) the interior's class ids, which the network picked, go straight into
    the class rows, and scores are summed, compared and cleared only in the overlap bands: a
    few percent of the pixels. All its methods run, in order, in one worker thread.
    """

    def __init__(self, outputs: ClassOutputs, row_plan: AxisPlan, col_plan: AxisPlan,
                 classes_only: bool) -> None:
        width, height = col_plan.length, row_plan.length
        rows, cols = list(row_plan.windows), list(col_plan.windows)
        self.outputs, self.rows, self.cols, self.height = outputs, rows, cols, height
        self.row_weights, self.col_weights = row_plan.weights, col_plan.weights
        self.row_inner, self.col_inner = row_plan.inner, col_plan.inner
        self.row_zones, self.col_zones = row_plan.zones, col_plan.zones
        self.row_sums, self.col_sums = row_plan.sums(), col_plan.sums()
        strip = max(row.valid for row in rows)
        # np.zeros: pages the overlap bands never touch are never allocated
        self.scores = np.zeros((strip, width, len(outputs.lookup)), dtype=np.float32)
        self.valid = np.zeros((strip, width), dtype=bool)
        self.classes = np.zeros((strip, width), dtype=np.uint8) if classes_only else None
        self.top = 0  # output row of scores[0]

    def add(self, i: int, js: list[int], probabilities: np.ndarray, classes: np.ndarray | None,
            valid_span: np.ndarray) -> None:
        """Adds windows (row i, columns js): their probabilities and, if classes_only, classes."""
        row, inner_rows = self.rows[i], slice(*self.row_inner[i])
        r0 = row.start - self.top
        for k, j in enumerate(js):
            col, inner_cols = self.cols[j], slice(*self.col_inner[j])
            part = probabilities[k, :row.valid, :col.valid]
            inner = (slice(r0 + inner_rows.start, r0 + inner_rows.stop),
                     slice(col.start + inner_cols.start, col.start + inner_cols.stop))
            if self.classes is not None:
                self.classes[inner] = classes[k, inner_rows, inner_cols]
            else:  # only this window covers its interior: its sum is its probability
                self.scores[inner] = part[inner_rows, inner_cols]
            for rs, cs in _frame(row.valid, col.valid, inner_rows, inner_cols):
                weights = self.row_weights[i][rs, None, None] * self.col_weights[j][None, cs, None]
                self.scores[r0 + rs.start:r0 + rs.stop,
                            col.start + cs.start:col.start + cs.stop] += part[rs, cs] * weights
        self.valid[r0:r0 + row.valid, self.cols[js[0]].start:self.cols[js[-1]].stop] = valid_span

    def finish_strip(self, i: int) -> None:
        """Writes the rows no later window touches and keeps the overlap for strip i + 1."""
        final = self.rows[i + 1].start if i + 1 < len(self.rows) else self.height
        top = self.top
        count = final - top
        if self.classes is not None:
            self._finish_classes(count)
        else:
            for start in range(0, count, DERIVE_ROWS):  # in slices: small temporaries
                stop = min(count, start + DERIVE_ROWS)
                finished = self.outputs.derive(self.scores[start:stop], self.valid[start:stop],
                                               self.row_sums[top + start:top + stop],
                                               self.col_sums)
                self.outputs.write_rows(top + start, *finished)
        kept = self.rows[i].stop - final  # this strip's rows the next strip overlaps
        if kept > 0:
            carried = self.scores[count:count + kept].copy()
            if self.classes is not None:
                self.scores[count:count + kept] = 0.0
            self.scores[:kept] = carried
            self.valid[:kept] = self.valid[count:count + kept].copy()
        if self.classes is None:
            self.scores[max(kept, 0):] = 0.0
        self.valid[max(kept, 0):] = False
        self.top = final

    def _finish_classes(self, count: int) -> None:
        """Classes of the finished rows: in the overlap bands from the sums, which are cleared.

        Everywhere else the scores were never touched, so after this only the rows carried to
        the next strip hold sums.
        """
        classes, valid, top = self.classes[:count], self.valid[:count], self.top
        bands = [(slice(max(a, top) - top, min(b, top + count) - top), slice(None))
                 for a, b in self.row_zones if a < top + count and b > top]
        bands += [(slice(0, count), slice(a, b)) for a, b in self.col_zones]
        for band in bands:  # row and column bands cross: clear only once all are read
            classes[band] = self.outputs.class_ids(self.scores[band])
        for band in bands:
            self.scores[band] = 0.0
        if not valid.all():
            classes[~valid] = NO_LABEL
        self.outputs.write_rows(top, classes.copy())


def _frame(rows: int, cols: int, inner_rows: slice,
           inner_cols: slice) -> list[tuple[slice, slice]]:
    """The parts of a rows x cols window around its interior: disjoint, each pixel added once."""
    parts = [(slice(0, inner_rows.start), slice(0, cols)),
             (slice(inner_rows.stop, rows), slice(0, cols)),
             (inner_rows, slice(0, inner_cols.start)), (inner_rows, slice(inner_cols.stop, cols))]
    return [(r, c) for r, c in parts if r.stop > r.start and c.stop > c.start]


DERIVE_ROWS = 64
"""Finished rows are turned into outputs this many at a time."""
IN_FLIGHT = 2
"""Batches of probabilities waiting to be blended, at most (bounds memory)."""


def run_windows(source: WindowReader, predictor: Callable[[np.ndarray], Prediction],
                outputs: ClassOutputs, row_plan: AxisPlan, col_plan: AxisPlan,
                batch_size: int, classes_only: bool, progress: Progress) -> None:
    """Reads, predicts, blends and writes every window, the three stages at the same time.

    ``outputs`` takes rows as wide as ``col_plan`` (a :class:`.parts.PartOutputs` keeps a part
    of them). A reader thread prepares the next batch while the network predicts the current one; a
    blender thread accumulates the predictions and writes finished rows. The main thread only
    predicts, checks for cancel and reports progress.
    """
    rows, cols = row_plan.windows, col_plan.windows
    batches = []
    for i in range(len(rows)):
        group: list[int] = []
        for j in range(len(cols)):  # a batch holds windows of one shape (the last column's differs)
            if group and (len(group) == batch_size or cols[j].size != cols[group[0]].size):
                batches.append((i, group))
                group = []
            group.append(j)
        batches.append((i, group))
    blender = Blender(outputs, row_plan, col_plan, classes_only)
    blending: deque = deque()
    done = 0
    with ThreadPoolExecutor(1, thread_name_prefix="classify-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="classify-blend") as worker:
        reading = reader.submit(source.read, rows[batches[0][0]], [cols[j] for j in batches[0][1]])
        for number, (i, js) in enumerate(batches):
            if progress.cancelled():
                raise Cancelled()
            batch, valid_span = reading.result()
            if number + 1 < len(batches):
                following = batches[number + 1]
                reading = reader.submit(source.read, rows[following[0]],
                                        [cols[j] for j in following[1]])
            probabilities, classes = predictor(batch)
            del batch
            while len(blending) >= IN_FLIGHT:
                blending.popleft().result()
            blending.append(worker.submit(blender.add, i, js, probabilities, classes,
                                          valid_span))
            if js[-1] == len(cols) - 1:
                blending.append(worker.submit(blender.finish_strip, i))
            done += len(js)
            progress.set_fraction(done / (len(rows) * len(cols)))
        while blending:
            blending.popleft().result()
