"""The outputs of one run as one unit: written under hidden names, moved into place together.

A training run writes a model, its epoch log and a report. If the run fails or is killed
after the model was moved into place but before the report, the user would find a new model
beside an old log, or lose a good earlier model to a run that never finished. So every file of
the run is written under a hidden temporary name beside its final one (the same names
:func:`~.raster_io.atomic_output` uses, so a later run removes what a killed one left), and
:meth:`OutputSet.commit` moves them all into place only when all exist and read back whole.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from typing import Iterator

from .errors import UserError, os_reason
from .partial_names import partial_name
from .raster_io import remove_stale_partials, remove_with_sidecars
from .written import check_written, failed_write_message


class OutputSet:
    """Files of one run, written under hidden temporary names until :meth:`commit`."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.temporaries: dict[str, str] = {}
        """final path -> the hidden name it is written under."""

    def temporary(self, final: str) -> str:
        """The hidden name to write ``final`` under (its folder is created; stale temporary
        files of ``final`` from killed runs are removed first)."""
        final = os.path.abspath(final)
        if final not in self.temporaries:
            try:
                os.makedirs(os.path.dirname(final), exist_ok=True)
            except OSError as error:
                raise UserError(f"Cannot create the folder of '{final}' "
                                f"({os_reason(error)}). Choose a folder you may write to.") \
                    from None
            remove_stale_partials(final)
            self.temporaries[final] = partial_name(final, self.tag)
        return self.temporaries[final]

    @contextlib.contextmanager
    def writing(self) -> Iterator["OutputSet"]:
        """Removes every temporary file when the block fails; a failure for want of space says
        that the disk is full, naming the file asked for, not its hidden temporary name."""
        try:
            yield self
        except BaseException as error:
            by_temporary = {t: f for f, t in self.temporaries.items()}
            named = by_temporary.get(os.path.abspath(getattr(error, "filename", None) or "."))
            candidates = ([(named, self.temporaries[named])] if named else
                          [(f, t) for f, t in reversed(self.temporaries.items())
                           if os.path.exists(t)])
            message = next((m for m in (failed_write_message(error, t, f)
                                        for f, t in candidates) if m), None)
            self.discard()
            if message:
                raise UserError(message) from None
            raise

    def commit(self, renamed: dict[str, str] | None = None) -> dict[str, str]:
        """Moves every file that was written into place, under its final name or the name
        ``renamed`` gives it (a cancelled run's files go beside the existing ones).

        Returns:
            final path asked for -> the path written.

        Raises:
            UserError: when a file does not read back whole (a full disk) or cannot be moved;
                nothing is moved then, and the temporary files are removed.
        """
        renamed = renamed or {}
        moves = [(final, temporary, os.path.abspath(renamed.get(final, final)))
                 for final, temporary in self.temporaries.items() if os.path.exists(temporary)]
        for final, temporary, target in moves:  # nothing is moved unless everything can be
            try:
                check_written(temporary, target)  # a full disk cuts files short silently
            except UserError:
                self.discard()
                raise
            if os.path.isdir(target):
                self.discard()
                raise UserError(f"'{target}' is a folder, so the results cannot be written "
                                "there; the earlier files were left as they were. Remove the "
                                "folder or choose another name.")
        written = {}
        try:
            # the first file asked for (a model) is moved last: until then the old one stands
            for final, temporary, target in reversed(moves):
                remove_with_sidecars(target)
                os.replace(temporary, target)
                if os.path.exists(temporary + ".aux.xml"):  # class names, as atomic_output
                    os.replace(temporary + ".aux.xml", target + ".aux.xml")
                written[final] = target
        except OSError as error:
            self.discard()
            raise UserError(f"Cannot move the results into place ({os_reason(error)}: "
                            f"'{error.filename}'). Check that the folder is writable.") from None
        self.temporaries.clear()
        return written

    def discard(self) -> None:
        """Removes every temporary file (never raises): the old files stay as they were."""
        for temporary in self.temporaries.values():
            remove_with_sidecars(temporary)
        self.temporaries.clear()
