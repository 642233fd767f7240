"""The Train dock: train a detector on the project from the window, with live loss and mAP curves.

A view plus wiring over `studio.train.detector.train_model`, the call `studio train` makes: it runs on a
pool thread (the training itself is in a worker process), epoch reports come back as queued signals and
extend the curves, and Cancel stops the training after the current batch, keeping its checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QPointF, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.db.project import Project
from studio.models.device import DEVICE_CHOICES
from studio.train.detector import TrainOptions, TrainProgress, TrainResult, train_model
from studio.ui.jobs import _Worker

BASE_MODELS = ("yolo11n.pt", "yolo11s.pt", "yolo11n.yaml", "rtdetr-l.yaml", "yolo11n-seg.pt")
CURVES = (("train/box_loss", "box loss", "#e15759"), ("train/cls_loss", "class loss", "#f28e2b"),
          ("metrics/mAP50(B)", "mAP50", "#4e79a7"), ("metrics/mAP50-95(B)", "mAP50-95", "#59a14f"))
"""History key, legend, colour. Losses and mAP share the plot, each scaled to its own maximum."""


class CurvePlot(QWidget):
    """Per-epoch curves drawn with QPainter: a few polylines need no charting library."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: list[dict[str, float]] = []
        self.setMinimumHeight(120)

    def set_history(self, history: list[dict[str, float]]) -> None:
        self.history = list(history)
        self.update()

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        width, height = self.width(), self.height() - 16
        painter.drawText(4, height + 13, "  ".join(legend for _, legend, _ in CURVES))
        if len(self.history) < 1:
            return
        for key, _legend, color in CURVES:
            values = [h.get(key) for h in self.history]
            points = [(i, v) for i, v in enumerate(values) if v is not None]
            top = max((v for _, v in points), default=0.0) or 1.0
            painter.setPen(QPen(QColor(color), 2))
            steps = max(len(self.history) - 1, 1)
            painter.drawPolyline(QPolygonF([QPointF(4 + i * (width - 8) / steps, 4 + (height - 8) * (1 - v / top))
                                            for i, v in points]))


class _TrainSignals(QObject):
    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)


class TrainPanel(QDockWidget):
    """Self-contained dock; `model_trained` carries the new model's name and its comparison runs."""

    model_trained = Signal(str, object)
    """(model name, None or ([previous best's validation run id, new one's], validation media ids)): the
    window selects the model and opens the comparison at its worst images."""

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        super().__init__("Train", parent)
        self.setObjectName("train_panel")
        self.project = project
        self.worker: _Worker | None = None
        self.history: list[dict[str, float]] = []

        self.task = QComboBox()
        self.task.addItems(["detect", "segment"])
        self.base = QComboBox(editable=True)
        self.base.addItems(list(BASE_MODELS))
        self.epochs = QSpinBox(minimum=1, maximum=10_000, value=50)
        self.imgsz = QSpinBox(minimum=32, maximum=4096, singleStep=32, value=640)
        self.split = QDoubleSpinBox(minimum=0.05, maximum=0.95, singleStep=0.05, value=0.8, decimals=2)
        self.device = QComboBox()
        self.device.addItems(list(DEVICE_CHOICES))
        self.train_button = QPushButton("Train")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.plot = CurvePlot()
        self.status = QLabel("")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Task", self.task)
        form.addRow("Base model", self.base)
        form.addRow("Epochs", self.epochs)
        form.addRow("Image size", self.imgsz)
        form.addRow("Train share", self.split)
        form.addRow("Device", self.device)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.status)
        self.setWidget(body)
        self.train_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    def options(self) -> TrainOptions:
        """The `train_model` options the form describes."""
        return TrainOptions(
            task=self.task.currentText(),  # type: ignore[arg-type]
            model=self.base.currentText().strip(), epochs=self.epochs.value(), imgsz=self.imgsz.value(),
            split=self.split.value(), device=self.device.currentText(),
        )

    @property
    def running(self) -> bool:
        return self.worker is not None

    @Slot()
    def start(self, options: TrainOptions | None = None) -> None:
        if self.worker is not None:
            return
        chosen = options or self.options()

        def work(progress: Callable[[TrainProgress], None], cancelled: Callable[[], bool]) -> TrainResult:
            return train_model(self.project, chosen, progress=progress, cancel=cancelled)

        signals = _TrainSignals(self)
        signals.progress.connect(self._on_progress)
        signals.finished.connect(self._on_finished)
        signals.failed.connect(self._on_failed)
        self.worker = _Worker(work, signals)  # type: ignore[arg-type]
        self.history = []
        self.plot.set_history([])
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.status.setText(f"preparing the data and starting {chosen.model}…")
        QThreadPool.globalInstance().start(self.worker)

    @Slot()
    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancelled = True
            self.status.setText("stopping after the current batch, keeping the checkpoint…")

    @Slot(object)
    def _on_progress(self, event: TrainProgress) -> None:
        if event.values is None:
            total = event.epochs * max(event.batches, 1)
            self.progress.setRange(0, total)
            self.progress.setValue((event.epoch - 1) * event.batches + event.batch)
            self.status.setText(f"epoch {event.epoch}/{event.epochs}, batch {event.batch}/{event.batches}")
            return
        self.history.append(event.values)
        self.plot.set_history(self.history)
        mean_ap = event.values.get("metrics/mAP50(B)")
        shown = f", mAP50 {mean_ap:.3f}" if mean_ap is not None else ""
        self.status.setText(f"epoch {event.epoch}/{event.epochs} done{shown}")

    @Slot(object)
    def _on_finished(self, result: TrainResult) -> None:
        self._reset()
        model = result.model
        val = model.metrics.get("val_map50")
        figures = f", validation mAP50 {val:.3f}" if isinstance(val, float) else ""
        versus = f"; compared with {result.previous.name}" if result.previous is not None else ""
        self.status.setText(f"{model.name}: {model.status}{figures}{versus}")
        compared = None
        if result.comparison is not None:
            runs = [r.run.id for r in result.comparison.results if r.run is not None]
            compared = (runs, list(model.split.get("val") or []))
        self.model_trained.emit(model.name, compared)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._reset()
        self.status.setText(message)

    def _reset(self) -> None:
        self.worker = None
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
