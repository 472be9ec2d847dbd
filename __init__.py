"""QGIS entry point: QGIS calls classFactory when it loads the plugin."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """Returns the plugin object QGIS manages."""
    from .plugin import LandCoverUNetPlugin

    return LandCoverUNetPlugin(iface)
