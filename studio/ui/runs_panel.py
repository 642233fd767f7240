"""The runs dock: every model run with a visibility check box and a colour, a score threshold slider, and
accepting predictions into the human annotations (one, all above the threshold, one class), undoable.

Accepting is `studio.jobs.accept.accept_predictions`, the same service `studio accept` uses; an undo deletes
exactly what it added (and a redo puts the same rows back under their ids).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QPixmap, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from studio.core.types import Annotation, ModelRun
from studio.db.project import Project
from studio.jobs.accept import accept_predictions, undo_accept
from studio.session import Session

SLIDER_STEPS = 100


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(14, 14)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class AcceptPredictions(QUndoCommand):
    """Accept predictions on the first redo; undo deletes them; a later redo restores the same rows."""

    def __init__(self, project: Project, run_id: int, text: str, **filters: object) -> None:
        super().__init__(text)
        self.project = project
        self.run_id = run_id
        self.filters = filters
        self.accepted: list[Annotation] | None = None

    def redo(self) -> None:
        if self.accepted is None:
            self.accepted = accept_predictions(self.project, self.run_id, **self.filters)  # type: ignore[arg-type]
        else:
            self.project.add_annotations(self.accepted)

    def undo(self) -> None:
        undo_accept(self.project, self.accepted or [])


class RunsPanel(QDockWidget):
    """A view over the session's runs: which are shown, their colours and thresholds live in the Session.

    Call `refresh()` after a run was added (e.g. on `run_finished`).
    """

    visibility_changed = Signal()
    """Which runs are shown changed (the session's `visible_runs`)."""
    threshold_changed = Signal(int, float)
    """A run's lowest shown score changed (run id, threshold)."""
    color_changed = Signal(int, str)
    annotations_changed = Signal()
    """Human annotations were added or removed by an accept (or its undo/redo)."""

    def __init__(self, session: Session, undo_stack: QUndoStack | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Runs", parent)
        self.setObjectName("runs_panel")
        self.session = session
        self.project: Project = session.require()
        self.undo_stack = undo_stack or QUndoStack(self)
        self.selected_annotations: list[int] = []

        self.list = QListWidget()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.threshold_label = QLabel("score ≥ 0.00")
        self.class_choice = QComboBox()
        self.accept_one = QPushButton("Accept selected")
        self.accept_above = QPushButton("Accept all ≥ threshold")
        self.accept_class = QPushButton("Accept class ≥ threshold")
        self.undo_button = QPushButton("Undo")
        self.color_button = QPushButton("Colour…")
        self.delete_button = QPushButton("Delete run")

        threshold_row = QHBoxLayout()
        threshold_row.addWidget(self.slider, 1)
        threshold_row.addWidget(self.threshold_label)
        class_row = QHBoxLayout()
        class_row.addWidget(self.class_choice, 1)
        class_row.addWidget(self.accept_class)
        run_row = QHBoxLayout()
        run_row.addWidget(self.color_button)
        run_row.addWidget(self.delete_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.list, 1)
        layout.addLayout(run_row)
        layout.addLayout(threshold_row)
        layout.addWidget(self.accept_one)
        layout.addWidget(self.accept_above)
        layout.addLayout(class_row)
        layout.addWidget(self.undo_button)
        self.setWidget(body)

        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.slider.valueChanged.connect(self._on_slider)
        self.accept_one.clicked.connect(self.accept_selected)
        self.accept_above.clicked.connect(self.accept_above_threshold)
        self.accept_class.clicked.connect(self.accept_chosen_class)
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.color_button.clicked.connect(self.choose_color)
        self.delete_button.clicked.connect(self.delete_current_run)
        # signal to signal: Qt drops the connection when this panel is deleted (a lambda would outlive it
        # and fire on a dead panel after the window switched projects, sharing its undo stack)
        self.undo_stack.indexChanged.connect(self.annotations_changed)
        session.events.visible_runs.connect(self._on_session_visibility)
        session.events.run_colors.connect(self.refresh)
        session.events.selection.connect(self.set_selected_annotations)
        self.refresh()

    def detach(self) -> None:
        """Stop observing the session (before the window drops this panel)."""
        self.session.events.visible_runs.disconnect(self._on_session_visibility)
        self.session.events.run_colors.disconnect(self.refresh)
        self.session.events.selection.disconnect(self.set_selected_annotations)

    # ---- the list of runs --------------------------------------------------------------------------

    def colors(self) -> dict[int, str]:
        return dict(self.session.run_colors)

    def refresh(self, *_changed: object) -> None:
        """Re-list the runs, keeping which is current."""
        visible = self.session.visible_runs
        current = self.current_run_id()
        colors = self.colors()
        self.list.blockSignals(True)
        self.list.clear()
        for run in reversed(self.project.runs()):  # newest first
            count = run.stats.get("predictions", 0)
            item = QListWidgetItem(_swatch(colors.get(run.id, "#888888")), f"{run.name}  ({run.status}, {count})")
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            item.setToolTip(self._describe(run))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run.id in visible else Qt.CheckState.Unchecked)
            self.list.addItem(item)
            if run.id == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        self._on_current_changed()

    @staticmethod
    def _describe(run: ModelRun) -> str:
        lines = [f"plugin: {run.plugin}", f"weights: {run.weights or 'default'}", f"device: {run.device}"]
        lines += [f"{key}: {value}" for key, value in run.params.items() if value is not None]
        if run.stats.get("seconds_per_image"):
            lines.append(f"{run.stats['seconds_per_image']:.3f} s/image")
        if run.stats.get("error"):
            lines.append(f"error: {run.stats['error']}")
        return "\n".join(lines)

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def visible_runs(self) -> list[int]:
        return sorted(self.session.visible_runs)

    def set_visible(self, run_id: int, visible: bool) -> None:
        self.session.set_source_visible(run_id, visible)

    def _on_session_visibility(self, visible: frozenset[int]) -> None:
        self.list.blockSignals(True)
        for item in self._items():
            shown = item.data(Qt.ItemDataRole.UserRole) in visible
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self.visibility_changed.emit()

    def current_run_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def threshold(self, run_id: int) -> float:
        return self.session.run_thresholds.get(run_id, 0.0)

    @Slot(QListWidgetItem)
    def _on_item_changed(self, item: QListWidgetItem) -> None:
        self.set_visible(item.data(Qt.ItemDataRole.UserRole), item.checkState() == Qt.CheckState.Checked)

    @Slot()
    def _on_current_changed(self, *_args: object) -> None:
        run_id = self.current_run_id()
        has_run = run_id is not None
        for widget in (self.slider, self.accept_above, self.accept_class, self.color_button, self.delete_button):
            widget.setEnabled(has_run)
        self._enable_accept_one()
        self.class_choice.clear()
        if run_id is None:
            return
        counts = self.project.label_counts(run_id)
        for label in self.project.labels():
            if counts.get(label.id):
                self.class_choice.addItem(_swatch(label.color), f"{label.name} ({counts[label.id]})", label.id)
        self.slider.blockSignals(True)
        self.slider.setValue(round(self.threshold(run_id) * SLIDER_STEPS))
        self.slider.blockSignals(False)
        self.threshold_label.setText(f"score ≥ {self.threshold(run_id):.2f}")

    @Slot(int)
    def _on_slider(self, value: int) -> None:
        run_id = self.current_run_id()
        if run_id is None:
            return
        self.session.set_run_threshold(run_id, value / SLIDER_STEPS)
        self.threshold_label.setText(f"score ≥ {self.threshold(run_id):.2f}")
        self.threshold_changed.emit(run_id, self.threshold(run_id))

    @Slot()
    def choose_color(self) -> None:
        run_id = self.current_run_id()
        if run_id is None:
            return
        chosen = QColorDialog.getColor(QColor(self.colors()[run_id]), self, "Run colour")
        if chosen.isValid():
            self.set_color(run_id, chosen.name())

    def set_color(self, run_id: int, color: str) -> None:
        self.session.set_run_color(run_id, color)  # the session tells this panel and the canvas
        self.color_changed.emit(run_id, color)

    @Slot()
    def delete_current_run(self) -> None:
        run_id = self.current_run_id()
        if run_id is None:
            return
        name = self.project.get_run(run_id).name
        answer = QMessageBox.question(self, "Delete run", f"Delete run {name!r} and all its predictions?")
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.project.delete_run(run_id)  # accepted copies are human annotations: they and their undo stay valid
        self.session.reload_runs()

    # ---- accepting ---------------------------------------------------------------------------------

    def set_selected_annotations(self, annotation_ids: Sequence[int]) -> None:
        """The canvas selection: its predictions of the current run are what "Accept selected" takes."""
        self.selected_annotations = list(annotation_ids)
        self._enable_accept_one()

    def _enable_accept_one(self) -> None:
        run_id = self.current_run_id()
        chosen = set(self.selected_annotations)
        predictions = [a for a in self.session.annotations if a.id in chosen and a.run_id == run_id]
        self.accept_one.setEnabled(run_id is not None and bool(predictions))

    def _accept(self, text: str, **filters: object) -> list[Annotation]:
        run_id = self.current_run_id()
        if run_id is None:
            return []
        command = AcceptPredictions(self.project, run_id, text, **filters)
        self.undo_stack.push(command)
        return command.accepted or []

    @Slot()
    def accept_selected(self) -> list[Annotation]:
        run_id = self.current_run_id()
        if run_id is None:
            return []
        mine = {a.id for a in self.project.annotations(source=run_id)}
        chosen = [i for i in self.selected_annotations if i in mine]
        return self._accept("Accept prediction", annotation_ids=chosen) if chosen else []

    @Slot()
    def accept_above_threshold(self) -> list[Annotation]:
        run_id = self.current_run_id()
        threshold = self.threshold(run_id) if run_id is not None else 0.0
        return self._accept(f"Accept predictions ≥ {threshold:.2f}", min_score=threshold)

    @Slot()
    def accept_chosen_class(self) -> list[Annotation]:
        run_id = self.current_run_id()
        label_id = self.class_choice.currentData()
        if run_id is None or label_id is None:
            return []
        return self._accept(
            f"Accept {self.class_choice.currentText()}", min_score=self.threshold(run_id), label_ids=[label_id]
        )
