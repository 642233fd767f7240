"""The model dock: pick a detector and its settings, run it on the current image, the selection, everything or
a video's every N-th frame, with a progress bar, ETA and Cancel. The run itself is `run_detection`, the
same function `studio predict` calls, on a worker thread; the window hears `run_finished(run_id)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.types import ModelRun
from studio.db.project import Project
from studio.jobs.predict import parse_frame_range, run_detection
from studio.jobs.runner import ProgressMeter, format_eta
from studio.models.device import DEVICE_CHOICES
from studio.models.protocols import PluginSpec
from studio.models.registry import all_plugins, broken_plugins, get_plugin
from studio.ui.jobs import _Worker, _WorkerSignals

SCOPES = ("current image", "selection", "all media")


class ModelPanel(QDockWidget):
    """Self-contained dock; the window tells it what is shown (`set_current`) and selected (`set_selection`)."""

    run_finished = Signal(int)
    """Id of a run that completed or was cancelled (its predictions are stored)."""
    run_failed = Signal(str)

    def __init__(self, project: Project, parent: QWidget | None = None, *, lazy: bool = False) -> None:
        """With `lazy`, the plugins are looked up when the dock is first shown (it opens as a hidden tab,
        and finding entry points costs a noticeable part of a second at window start)."""
        super().__init__("Model", parent)
        self.setObjectName("model_panel")
        self.project = project
        self.current_media: int | None = None
        self.selection: list[int] = []
        self.worker: _Worker | None = None
        self.meter: ProgressMeter | None = None
        self.entries: list[tuple[str, PluginSpec, bool]] = []
        """(model id for run_detection, the plugin that runs it, whether it was trained on the project)."""
        self._plugins_loaded = False

        self.plugin = QComboBox()
        self.plugin.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.plugin.setMinimumContentsLength(12)  # long titles elide in a narrow dock; the tooltip has them whole
        self.weights = QLineEdit()
        self.weights.textChanged.connect(self.weights.setToolTip)  # a long path is cut in the field
        self.weights.setPlaceholderText("default weights, an official name, or a file")
        self.browse = QPushButton("Browse…")
        self.device = QComboBox()
        self.device.addItems(list(DEVICE_CHOICES))
        self.conf = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=0.25, decimals=2)
        self.iou = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, value=0.7, decimals=2)
        self.classes = QLineEdit()
        self.scope = QComboBox()
        self.scope.addItems(list(SCOPES))
        self.every = QSpinBox(minimum=1, maximum=10_000, value=1)
        self.frames = QLineEdit()
        self.frames.setPlaceholderText("all frames, or A:B")
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.hide()  # shown (busy, then counting) only while a run is going
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        form.addRow("Model", self.plugin)
        form.addRow("Weights", self.weights)
        form.addRow("", self.browse)
        form.addRow("Device", self.device)
        form.addRow("Confidence", self.conf)
        form.addRow("IoU", self.iou)
        form.addRow("Classes", self.classes)
        form.addRow("Run on", self.scope)
        form.addRow("Video: every", self.every)
        form.addRow("Video: frames", self.frames)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        self.setWidget(body)

        self.plugin.currentIndexChanged.connect(self._on_plugin_changed)
        self.browse.clicked.connect(self.choose_weights_file)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        if not lazy:
            self.load_plugins()

    def load_plugins(self) -> None:
        """List the detector plugins and trained models (once); broken plugins are named in the tooltip."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        broken = broken_plugins()
        self.plugin.setToolTip("\n".join(f"{name}: {error}" for name, error in broken.items()) or "detector plugins")
        self.refresh_models()

    def refresh_models(self, select: str | None = None) -> None:
        """List the detector plugins and the models trained on the project; keep (or `select`) the choice."""
        chosen = select or self.plugin.currentData()
        self.entries = [(spec.id, spec, False) for spec in all_plugins(task="detect")]
        self.entries += [
            (m.name, get_plugin(m.plugin), True) for m in self.project.trained_models() if m.weights is not None
        ]
        self.plugin.blockSignals(True)
        self.plugin.clear()
        for model_id, spec, trained in self.entries:
            title = f"{model_id} (trained on this project)" if trained else spec.title
            self.plugin.addItem(title, model_id)
            self.plugin.setItemData(self.plugin.count() - 1, title, Qt.ItemDataRole.ToolTipRole)
        self.plugin.setCurrentIndex(max(0, self.plugin.findData(chosen)))
        self.plugin.blockSignals(False)
        self._on_plugin_changed()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.load_plugins()

    # ---- what the window tells the panel -----------------------------------------------------------

    def set_current(self, media_id: int | None) -> None:
        self.current_media = media_id

    def set_selection(self, media_ids: Sequence[int]) -> None:
        self.selection = list(media_ids)

    # ---- settings ------------------------------------------------------------------------------------

    def spec(self) -> PluginSpec | None:
        """The plugin that runs the chosen model (for a trained model: the plugin of its family)."""
        index = self.plugin.currentIndex()
        return self.entries[index][1] if 0 <= index < len(self.entries) else None

    def trained(self) -> bool:
        """Whether the chosen model was trained on the project (it brings its own weights)."""
        index = self.plugin.currentIndex()
        return 0 <= index < len(self.entries) and self.entries[index][2]

    @Slot()
    def _on_plugin_changed(self) -> None:
        spec = self.spec()
        self.run_button.setEnabled(spec is not None)
        if spec is None:
            self.status.setText("no detector plugin is installed")
            return
        self.weights.setEnabled(spec.needs_weights and not self.trained())
        self.browse.setEnabled(spec.needs_weights and not self.trained())
        prompt = bool(spec.options.get("text_prompt"))
        self.classes.setPlaceholderText("text prompt, e.g. person, red car" if prompt else "all classes, or a, b")
        self.classes.setText(", ".join(spec.options.get("default_classes") or []))  # another model's classes mislead

    @Slot()
    def choose_weights_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Weights file", "", "Model weights (*.pt *.pth *.onnx *.yaml);;All files (*)"
        )
        if path:
            self.weights.setText(path)

    def media_ids(self) -> list[int] | None:
        """The media the chosen scope covers (None: all of them)."""
        scope = self.scope.currentText()
        if scope == "current image":
            if self.current_media is None:
                raise StudioError("no image is shown; open one or choose another scope")
            return [self.current_media]
        if scope == "selection":
            if not self.selection:
                raise StudioError("nothing is selected in the media list")
            return list(self.selection)
        return None

    def arguments(self) -> dict[str, Any]:
        """The `run_detection` keyword arguments the form describes."""
        spec = self.spec()
        if spec is None:
            raise StudioError("no detector plugin is installed")
        classes = [c.strip() for c in self.classes.text().split(",") if c.strip()] or None
        frames = self.frames.text().strip()
        return {
            "plugin_id": self.plugin.currentData(),
            "weights": (self.weights.text().strip() or None) if spec.needs_weights and not self.trained() else None,
            "device": self.device.currentText(),
            "media_ids": self.media_ids(),
            "every_n": self.every.value(),
            "frame_range": parse_frame_range(frames) if frames else None,
            "conf": self.conf.value(),
            "iou": self.iou.value(),
            "classes": classes,
        }

    # ---- running -----------------------------------------------------------------------------------

    @Slot()
    def start(self) -> None:
        if self.worker is not None:
            return
        self.load_plugins()
        try:
            arguments = self.arguments()
        except StudioError as exc:
            self._on_failed(str(exc))
            return
        def work(progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> ModelRun:
            return run_detection(
                self.project, progress=lambda done, total, _eta: progress(done, total), cancel=cancelled, **arguments
            )

        signals = _WorkerSignals(self)
        signals.progress.connect(self._on_progress)
        signals.finished.connect(self._on_finished)
        signals.failed.connect(self._on_failed)
        self.worker = _Worker(work, signals)
        self.run_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)  # busy until the model has loaded and the first batch is done
        self.progress.show()
        self.status.setText(f"loading {arguments['plugin_id']}…")
        QThreadPool.globalInstance().start(self.worker)

    @Slot()
    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancelled = True
            self.status.setText("cancelling after the current batch…")

    @property
    def running(self) -> bool:
        return self.worker is not None

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        if self.meter is None:  # the clock starts at the first report, after the model has loaded
            self.meter = ProgressMeter(total, self._show_progress)
        self.meter.update(done)

    def _show_progress(self, done: int, total: int, eta: float | None) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.status.setText(f"{done}/{total} images, {format_eta(eta)} left")

    @Slot(object)
    def _on_finished(self, run: ModelRun) -> None:
        self._reset()
        per_image = run.stats.get("seconds_per_image")
        speed = f", {per_image:.2f} s/image" if per_image else ""
        self.status.setText(f"{run.name}: {run.status}, {run.stats.get('predictions', 0)} predictions{speed}")
        self.run_finished.emit(run.id)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._reset()
        self.status.setText(message)
        self.run_failed.emit(message)

    def _reset(self) -> None:
        self.worker = None
        self.meter = None
        self.run_button.setEnabled(self.spec() is not None)
        self.cancel_button.setEnabled(False)
        self.progress.hide()  # no "0%" under a finished run
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
