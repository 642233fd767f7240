"""Small dialogs of the View and Help menus: image adjustments and the keyboard cheat sheet.

A mixin of MainWindow (studio.ui.main_window): it uses the window's session, undo stack, status bar
and docks, and keeps one job of the window in one module."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHeaderView,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

GESTURES = (
    ("Wheel", "Zoom around the cursor"),
    ("Middle drag / Space+drag", "Pan"),
    ("Drag a vertex or corner", "Reshape the selected shape"),
    ("Shift+click or double-click an edge", "Insert a vertex"),
    ("Alt+click a vertex", "Delete the vertex"),
    ("Backspace while drawing", "Remove the last point"),
    ("[ / ]", "Smaller / larger brush"),
    ("1 - 9", "Pick a label (relabels the selection too)"),
)


class ViewDialogs:
    """Mixed into MainWindow."""

    def adjustments_dialog(self) -> None:
        """Brightness, contrast (view only: the file is untouched) and shape fill opacity."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Image adjustments")
        form = QFormLayout(dialog)
        sliders = []
        for text, low, value in (
            ("Brightness", -100, self.canvas.brightness),
            ("Contrast", -100, self.canvas.contrast),
            ("Fill opacity %", 0, round(self.canvas.style_.fill_opacity * 100)),
        ):
            slider = QSlider(Qt.Orientation.Horizontal, minimum=low, maximum=100, value=value)
            slider.setMinimumWidth(240)
            form.addRow(text, slider)
            sliders.append(slider)
        brightness, contrast, opacity = sliders

        def apply() -> None:
            self.canvas.set_adjustment(brightness=brightness.value(), contrast=contrast.value())

        brightness.valueChanged.connect(apply)
        contrast.valueChanged.connect(apply)
        opacity.valueChanged.connect(lambda v: self.canvas.set_fill_opacity(v / 100))
        dialog.show()

    def shortcuts_dialog(self) -> None:
        """The cheat sheet, built from the actions themselves so it never disagrees with them."""
        rows = [
            (
                action.shortcut().toString(QKeySequence.SequenceFormat.NativeText),
                (action.statusTip() or action.text()).replace("&", ""),
            )
            for action in self.actions()
            if not action.shortcut().isEmpty() and not action.text().startswith("Label ")
        ]
        rows = sorted(set(rows) | set(GESTURES), key=lambda row: row[1].lower())
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.setWordWrap(False)
        for row, (keys, text) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        # as wide as the longest line (no text cut off), as tall as the screen allows
        width = table.verticalHeader().width() + sum(table.columnWidth(c) for c in range(2)) + 2 * table.frameWidth()
        width += table.verticalScrollBar().sizeHint().width() + 2 * layout.contentsMargins().left() + 8
        screen = self.screen().availableGeometry()
        dialog.resize(min(width, screen.width() - 40), min(720, screen.height() - 80))
        dialog.show()
