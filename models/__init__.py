"""Keras architectures, losses and metrics (``keras`` and ``keras.ops`` only, any backend).

Importing this package imports Keras, so only training and classification code imports it, and
only inside the work that needs it.
"""


def custom_objects() -> dict:
    """The custom (registered-serialisable) objects a saved model may reference."""
    objects: dict = {}
    try:
        from . import losses, metrics  # noqa: F401  (importing registers them)
    except ImportError:
        return objects
    for module in (losses, metrics):
        objects.update(getattr(module, "CUSTOM_OBJECTS", {}))
    return objects
