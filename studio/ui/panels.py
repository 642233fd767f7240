"""The labelling window's side panels: labels, annotations of the current image, properties, tags.

Panels show what they are given and emit what the person asked for; the main window calls the
Project service and refreshes them. None of them writes to the project itself.
"""

from __future__ import annotations

import json
from typing import Any, get_args

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.types import Annotation, Label, Media, ReviewState

ID_ROLE = Qt.ItemDataRole.UserRole + 1


def swatch(color: str, size: int = 14) -> QIcon:
    """A square of a label's colour, for lists and menus."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


def _selected_ids(widget: QListWidget) -> list[int]:
    return [item.data(ID_ROLE) for item in widget.selectedItems()]


class LabelsPanel(QWidget):
    """Labels with their annotation counts and a visibility check box; number keys 1-9 follow this order."""

    current_changed = Signal(int)
    """The label new shapes get (clicked here or picked with a number key)."""
    visibility_changed = Signal()
    add_requested = Signal()
    rename_requested = Signal(int)
    recolor_requested = Signal(int)
    merge_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self._filling = False
        buttons = QHBoxLayout()
        for text, tip, handler in (
            ("Add", "Add a label", lambda: self.add_requested.emit()),
            ("Rename", "Rename the selected label", lambda: self._emit_for_current(self.rename_requested)),
            ("Colour", "Change the colour of the selected label", lambda: self._emit_for_current(self.recolor_requested)),
            ("Merge", "Merge the selected label into another", lambda: self._emit_for_current(self.merge_requested)),
        ):
            button = QPushButton(text, toolTip=tip)
            button.clicked.connect(handler)
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemChanged.connect(self._on_item_changed)

    def set_labels(self, labels: list[Label], counts: dict[int, int], hidden: set[int], current: int | None) -> None:
        self._filling = True
        try:
            self.list.clear()
            for number, label in enumerate(labels, 1):
                key = f"{number}  " if number <= 9 else "    "
                item = QListWidgetItem(swatch(label.color), f"{key}{label.name}  ({counts.get(label.id, 0)})")
                item.setData(ID_ROLE, label.id)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Unchecked if label.id in hidden else Qt.CheckState.Checked)
                item.setToolTip("Untick to hide this label's shapes")
                self.list.addItem(item)
                if label.id == current:
                    self.list.setCurrentItem(item)
        finally:
            self._filling = False

    def hidden_ids(self) -> set[int]:
        return {
            self.list.item(row).data(ID_ROLE)
            for row in range(self.list.count())
            if self.list.item(row).checkState() == Qt.CheckState.Unchecked
        }

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else item.data(ID_ROLE)

    def _emit_for_current(self, signal: Any) -> None:
        label_id = self.current_id()
        if label_id is not None:
            signal.emit(label_id)

    def _on_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None and not self._filling:
            self.current_changed.emit(current.data(ID_ROLE))

    def _on_item_changed(self, _item: QListWidgetItem) -> None:
        if not self._filling:
            self.visibility_changed.emit()


class AnnotationsPanel(QWidget):
    """The annotations of the shown image or frame; its selection mirrors the canvas's."""

    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._syncing = False
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        self.list.itemSelectionChanged.connect(self._on_selection)

    def set_annotations(self, annotations: list[Annotation], labels: dict[int, Label], run_names: dict[int, str]) -> None:
        self._syncing = True
        try:
            self.list.clear()
            for ann in annotations:
                label = labels.get(ann.label_id)
                source = "" if ann.run_id is None else f"  [{run_names.get(ann.run_id, ann.run_id)}]"
                score = "" if ann.score is None else f"  {ann.score:.2f}"
                name = label.name if label else f"label {ann.label_id}"
                x, y, w, h = ann.shape.bbox()
                # two shapes of one label differ by id and place: "#12 cat  box 40x30 at (10, 20)"
                text = f"#{ann.id} {name}  {ann.shape.kind} {w:.0f}x{h:.0f} at ({x:.0f}, {y:.0f}){score}{source}"
                item = QListWidgetItem(swatch(label.color if label else "#888888"), text)
                item.setData(ID_ROLE, ann.id)
                self.list.addItem(item)
        finally:
            self._syncing = False

    def select(self, annotation_ids: list[int]) -> None:
        """Mirror the canvas selection without echoing it back."""
        self._syncing = True
        try:
            wanted = set(annotation_ids)
            for row in range(self.list.count()):
                item = self.list.item(row)
                item.setSelected(item.data(ID_ROLE) in wanted)
                if item.isSelected():
                    self.list.scrollToItem(item)
        finally:
            self._syncing = False

    def _on_selection(self) -> None:
        if not self._syncing:
            self.selection_changed.emit(_selected_ids(self.list))


class PropertiesPanel(QWidget):
    """Label, attributes (JSON), score, source and author of the selected annotation."""

    label_chosen = Signal(int, int)
    """(annotation id, label id)"""
    attributes_edited = Signal(int, dict)
    """(annotation id, attributes) once the JSON typed is a valid object."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.annotation: Annotation | None = None
        self.label_box = QComboBox()
        self.attributes = QPlainTextEdit(placeholderText='{"occluded": true}')
        self.attributes.setMaximumHeight(90)
        self.apply_button = QPushButton("Apply attributes")
        self.error = QLabel()
        self.error.setStyleSheet("color: #e15759")
        self.error.setWordWrap(True)
        self.score = QLabel("-")
        self.source = QLabel("-")
        self.author = QLabel("-")
        form = QFormLayout()
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addLayout(form)
        outer.addStretch(1)  # rows stay together at the top of a tall dock
        form.addRow("Label", self.label_box)
        form.addRow("Attributes", self.attributes)
        form.addRow("", self.apply_button)
        form.addRow("", self.error)
        form.addRow("Score", self.score)
        form.addRow("Source", self.source)
        form.addRow("Created by", self.author)
        self.label_box.activated.connect(self._on_label)
        self.apply_button.clicked.connect(self._on_apply)
        self.show_annotation(None, [], {})

    def show_annotation(self, annotation: Annotation | None, labels: list[Label], run_names: dict[int, str]) -> None:
        self.annotation = annotation
        self.label_box.clear()
        for label in labels:
            self.label_box.addItem(swatch(label.color), label.name, label.id)
        enabled = annotation is not None
        for widget in (self.label_box, self.attributes, self.apply_button):
            widget.setEnabled(enabled)
        self.error.clear()
        if annotation is None:
            self.label_box.setCurrentIndex(-1)  # no label shown for no selection
            self.attributes.setPlainText("")
            for field in (self.score, self.source, self.author):
                field.setText("-")
            return
        self.label_box.setCurrentIndex(self.label_box.findData(annotation.label_id))
        self.attributes.setPlainText(json.dumps(annotation.attributes, indent=1) if annotation.attributes else "")
        self.score.setText("-" if annotation.score is None else f"{annotation.score:.3f}")
        run = "human" if annotation.run_id is None else f"run {run_names.get(annotation.run_id, annotation.run_id)}"
        self.source.setText(run)
        when = annotation.created_at.strftime("%Y-%m-%d %H:%M") if annotation.created_at else ""
        self.author.setText(f"{annotation.created_by or 'unknown'} {when}".strip())

    def _on_label(self, index: int) -> None:
        if self.annotation is not None and self.annotation.id is not None:
            self.label_chosen.emit(self.annotation.id, self.label_box.itemData(index))

    def _on_apply(self) -> None:
        if self.annotation is None or self.annotation.id is None:
            return
        text = self.attributes.toPlainText().strip() or "{}"
        try:
            attributes = json.loads(text)
        except json.JSONDecodeError as exc:
            self.error.setText(f"Attributes are not valid JSON: {exc.msg} (line {exc.lineno})")
            return
        if not isinstance(attributes, dict):
            self.error.setText('Attributes must be a JSON object, like {"occluded": true}')
            return
        self.error.clear()
        self.attributes_edited.emit(self.annotation.id, attributes)


class TagsPanel(QWidget):
    """Tags, caption and review state of the shown image."""

    tags_edited = Signal(int, list)
    caption_edited = Signal(int, str)
    review_state_chosen = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.media: Media | None = None
        self.tags = QLineEdit(placeholderText="tags, comma separated")
        self.caption = QPlainTextEdit(placeholderText="A caption for this image")
        self.caption.setMaximumHeight(70)
        self.save_caption = QPushButton("Save caption")
        self.review = QComboBox()
        for state in get_args(ReviewState):
            self.review.addItem(state.replace("_", " ").capitalize(), state)
        form = QFormLayout(self)
        form.setContentsMargins(4, 4, 4, 4)
        form.addRow("Review", self.review)
        form.addRow("Tags", self.tags)
        form.addRow("Caption", self.caption)
        form.addRow("", self.save_caption)
        self.tags.editingFinished.connect(self._on_tags)
        self.save_caption.clicked.connect(self._on_caption)
        self.review.activated.connect(self._on_review)
        self.setEnabled(False)

    def show_media(self, media: Media | None, tags: list[str]) -> None:
        self.media = media
        self.setEnabled(media is not None)
        self.tags.setText(", ".join(tags))
        self.caption.setPlainText(media.caption or "" if media else "")
        if media is not None:
            self.review.setCurrentIndex(self.review.findData(media.review_state))

    def _on_tags(self) -> None:
        if self.media is not None:
            self.tags_edited.emit(self.media.id, [t.strip() for t in self.tags.text().split(",") if t.strip()])

    def _on_caption(self) -> None:
        if self.media is not None:
            self.caption_edited.emit(self.media.id, self.caption.toPlainText().strip())

    def _on_review(self, index: int) -> None:
        if self.media is not None:
            self.review_state_chosen.emit(self.media.id, self.review.itemData(index))
