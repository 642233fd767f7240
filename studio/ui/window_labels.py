"""Label handling: the current label, number keys, the label chooser, add / rename / recolour / merge.

A mixin of MainWindow (studio.ui.main_window): it uses the window's session, undo stack, status bar
and docks, and keeps one job of the window in one module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QColorDialog,
    QDialog,
    QInputDialog,
    QMessageBox,
)

from studio.core.errors import StudioError
from studio.ui.label_chooser import LabelChooser


class LabelActions:
    """Mixed into MainWindow."""

    # ---- labels ------------------------------------------------------------------------------------

    def refresh_labels(self) -> None:
        self.session.reload_labels()

    def set_current_label(self, label_id: int) -> None:
        self.session.current_label_id = label_id

    def _on_current_label(self, label_id: int | None) -> None:
        if self.segment_tool is not None and label_id is not None:
            self.segment_tool.set_label(label_id)

    def pick_label_number(self, number: int) -> None:
        """Number keys pick the n-th label for new shapes, and relabel the selected shapes."""
        label = self.session.label_number(number)
        if label is None:
            return
        self.session.current_label_id = label.id
        self.relabel(list(self.session.selection), label.id)
        self.statusBar().showMessage(f"Label: {label.name}", 2000)

    def _choose_label(self) -> int | None:
        """Ask for a label with the chooser popup (search, recent first); a new name creates the label."""
        chooser = LabelChooser(list(self.session.labels), list(self.session.recent_labels), self)
        chooser.place_near(self.cursor().pos())
        if chooser.exec() != QDialog.DialogCode.Accepted or not chooser.chosen_name:
            return None
        label = self._guard(lambda: self._require().ensure_label(chooser.chosen_name or ""))
        if label is None:
            return None
        self.session.reload_labels()
        self.session.current_label_id = label.id
        return label.id

    def change_label_dialog(self) -> None:
        ids = list(self.session.selection)
        if ids:
            label_id = self._choose_label()
            if label_id is not None:
                self.relabel(ids, label_id)

    def add_label_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Add label", "Name of the new label:")
        if ok and name.strip():
            label = self._guard(lambda: self._require().ensure_label(name))
            if label is not None:
                self._label_changed()
                self.session.current_label_id = label.id

    def rename_label_dialog(self, label_id: int) -> None:
        old = self.label_map()[label_id].name
        name, ok = QInputDialog.getText(self, "Rename label", f"New name for {old!r}:", text=old)
        if ok and name.strip() and name.strip() != old:
            self._guard(lambda: self._require().rename_label(label_id, name))
            self._label_changed()

    def recolor_label_dialog(self, label_id: int) -> None:
        color = QColorDialog.getColor(QColor(self.label_map()[label_id].color), self, "Label colour")
        if color.isValid():
            self._guard(lambda: self._require().recolor_label(label_id, color.name()))
            self._label_changed()

    def merge_label_dialog(self, label_id: int) -> None:
        source = self.label_map()[label_id]
        targets = [label.name for label in self.session.labels if label.id != label_id]
        if not targets:
            return
        name, ok = QInputDialog.getItem(
            self, "Merge labels", f"Move every {source.name!r} annotation to (cannot be undone):", targets, 0, False
        )
        target = self._require().find_label(name) if ok else None
        if target is not None:
            moved = self._guard(lambda: self._require().merge_labels(label_id, target.id))
            self.undo_stack.clear()  # undo steps may name the label that no longer exists
            self._label_changed()
            self.session.current_label_id = target.id
            self.statusBar().showMessage(f"Merged {moved} annotations into {target.name!r}", 5000)

    def _label_changed(self) -> None:
        self._saved()
        self.session.reload_labels()
        self.session.refresh_annotations()
        self.browser.refresh()

    def _guard(self, call: Callable[[], Any]) -> Any:
        """Run a service call; a StudioError becomes a message box (nothing was changed)."""
        try:
            return call()
        except StudioError as exc:
            QMessageBox.warning(self, "Studio", str(exc))
            return None
