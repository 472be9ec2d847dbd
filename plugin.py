"""The plugin object: registers the Processing provider and, on the desktop, a menu."""
from __future__ import annotations

from qgis.core import QgsApplication

MENU = "&Land Cover U-Net"
ENTRIES = [("buildmasks", "Build training masks…"), ("trainunet", "Train U-Net…"),
           ("suggestlabels", "Where to digitise next…"),
           ("classifyraster", "Classify raster…"),
           ("classifybatch", "Classify rasters in batch (dask)…"),
           ("exportmodel", "Export model (ONNX)…"),
           ("accuracysample", "Accuracy sample…"),
           ("assessaccuracy", "Assess accuracy…")]


class LandCoverUNetPlugin:
    """Adds the Land cover U-Net provider to Processing, and a Raster menu on the desktop."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider = None
        self.actions: list = []
        self.installation_dialog = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name)
        from .algorithms.provider import LandCoverUNetProvider

        provider = LandCoverUNetProvider()
        # The registry takes ownership, and deletes a provider it refuses (same id already there).
        self.provider = provider if QgsApplication.processingRegistry().addProvider(provider) \
            else None

    def initGui(self) -> None:  # noqa: N802
        from qgis.PyQt.QtGui import QIcon
        from qgis.PyQt.QtWidgets import QAction

        from .gui.icon import ICON

        self.initProcessing()
        for name, text in ENTRIES:
            action = QAction(QIcon(ICON), text, self.iface.mainWindow())
            action.setObjectName(f"landcoverunet_{name}")
            action.triggered.connect(lambda _checked=False, n=name: self.open_dialog(n))
            self.iface.addPluginToRasterMenu(MENU, action)
            self.actions.append(action)
        backend = QAction("Keras backend…", self.iface.mainWindow())
        backend.setObjectName("landcoverunet_keras_backend")
        backend.triggered.connect(self.choose_backend)
        self.iface.addPluginToRasterMenu(MENU, backend)
        self.actions.append(backend)
        about = QAction("About / check installation…", self.iface.mainWindow())
        about.setObjectName("landcoverunet_about")
        about.triggered.connect(self.show_about)
        self.iface.addPluginToRasterMenu(MENU, about)
        self.actions.append(about)
        self.warn_missing()

    def warn_missing(self) -> None:
        """One message-bar warning when optional packages are missing (found without importing
        them), so the analyst learns it now rather than at Run."""
        from .gui.installation_dialog import push_missing_warning

        push_missing_warning(self.iface, self.check_installation)

    def check_installation(self) -> None:
        """Opens the "Check installation" page: what is missing, for which algorithm, the
        command for this system and a Copy button (not modal: the command can be copied while
        QGIS stays usable)."""
        from .gui.installation_dialog import InstallationDialog

        self.installation_dialog = InstallationDialog(self.iface.mainWindow())
        self.installation_dialog.show()

    def open_dialog(self, name: str) -> None:
        """Opens an algorithm's Processing dialog."""
        import processing

        processing.execAlgorithmDialog(f"landcoverunet:{name}")

    def choose_backend(self) -> None:
        """Lets the user pick the Keras backend; says when QGIS must be restarted for it."""
        from qgis.PyQt.QtWidgets import QMessageBox

        from .gui.keras_backend_setting import read_setting, save_setting
        from .gui.keras_backend_dialog import KerasBackendDialog, outcome_text

        dialog = KerasBackendDialog(self.iface.mainWindow(), read_setting())
        if not dialog.exec():
            return
        choice = dialog.chosen()
        text = outcome_text(choice, save_setting(choice))
        QMessageBox.information(self.iface.mainWindow(), "Land Cover U-Net", text)

    def show_about(self) -> None:
        """Shows versions, the Keras backends (installed, in use) and the GPUs they see."""
        from qgis.core import Qgis
        from qgis.PyQt.QtWidgets import QMessageBox

        from .gui.keras_backend_setting import read_setting
        from .backend.core.installation import format_report, installation_report

        from .gui.installation_dialog import algorithm_names

        text = format_report(installation_report(Qgis.QGIS_VERSION, read_setting(),
                                                 algorithm_names))
        QMessageBox.information(self.iface.mainWindow(), "Land Cover U-Net", text)

    def unload(self) -> None:
        for action in self.actions:
            self.iface.removePluginRasterMenu(MENU, action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
