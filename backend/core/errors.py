"""Errors the user can act on.

The backend raises :class:`UserError` for bad input; the Processing algorithms turn it into a
``QgsProcessingException`` so the analyst sees the message, never a traceback.
"""


class UserError(Exception):
    """Bad input, explained in words an analyst understands."""


class Cancelled(Exception):
    """The user asked to stop; whatever was finished has been kept."""


def os_reason(error: OSError) -> str:
    """An OS error in words, without its Python name ("Read-only file system"), for messages
    that name the file and say what to do."""
    return error.strerror or str(error) or type(error).__name__
