"""The label chooser: a small popup with a search box, recent labels first, Enter to pick.

Typing a name that does not exist offers to create it, so labelling a new class needs no detour
through the labels panel.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication, QKeyEvent, QShowEvent
from PySide6.QtWidgets import QDialog, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from studio.core.types import Label
from studio.ui.panels import swatch

NEW_LABEL_ROLE = Qt.ItemDataRole.UserRole + 2


def ordered_labels(labels: list[Label], recent: list[int]) -> list[Label]:
    """Recently used labels first (most recent first), then the others in project order."""
    by_id = {label.id: label for label in labels}
    first = [by_id[i] for i in recent if i in by_id]
    return first + [label for label in labels if label.id not in recent]


class LabelChooser(QDialog):
    """Pick a label: `chosen_name` after exec() is the name picked or typed (a new one is created by the caller)."""

    def __init__(self, labels: list[Label], recent: list[int], parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Popup)
        self.labels = ordered_labels(labels, recent)
        self.recent = set(recent)
        self.chosen_name: str | None = None
        self._anchor: QPoint | None = None
        self.search = QLineEdit(placeholderText="Search or type a new label, Enter to pick")
        self.list = QListWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(280, 320)
        self.search.textChanged.connect(self._fill)
        self.search.installEventFilter(self)
        self.list.itemActivated.connect(self._pick)
        self.list.itemClicked.connect(self._pick)
        self._fill("")

    def place_near(self, point: QPoint) -> None:
        """Open at `point` (the cursor), moved up or left as needed to stay wholly on its screen."""
        self._anchor = point
        self._keep_on_screen()

    def _keep_on_screen(self) -> None:
        point = self._anchor
        if point is None:
            return
        screen = QGuiApplication.screenAt(point) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry()
        size = self.frameGeometry().size().expandedTo(self.size())
        x = min(max(point.x(), area.left()), area.right() - size.width() + 1)
        y = min(max(point.y(), area.top()), area.bottom() - size.height() + 1)
        self.move(x, y)

    def showEvent(self, event: QShowEvent) -> None:
        """Typing goes to the search box at once: a popup does not get the keyboard focus by itself."""
        super().showEvent(event)
        self._keep_on_screen()  # the final size is known only now
        self.activateWindow()
        self.search.setFocus(Qt.FocusReason.PopupFocusReason)

    def _fill(self, text: str) -> None:
        self.list.clear()
        needle = text.strip().lower()
        for label in self.labels:
            if needle in label.name.lower():
                marker = "  (recent)" if label.id in self.recent else ""
                item = QListWidgetItem(swatch(label.color), f"{label.name}{marker}")
                item.setData(NEW_LABEL_ROLE, label.name)
                self.list.addItem(item)
        if needle and not any(label.name.lower() == needle for label in self.labels):
            item = QListWidgetItem(f'Create label "{text.strip()}"')
            item.setData(NEW_LABEL_ROLE, text.strip())
            self.list.addItem(item)
        self.list.setCurrentRow(0)

    def eventFilter(self, watched: object, event: object) -> bool:
        """Arrow keys and Enter in the search box act on the list, as in a command palette."""
        if watched is self.search and isinstance(event, QKeyEvent) and event.type() == QKeyEvent.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                step = 1 if event.key() == Qt.Key.Key_Down else -1
                self.list.setCurrentRow(max(0, min(self.list.count() - 1, self.list.currentRow() + step)))
                return True
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.list.currentItem() is not None:
                self._pick(self.list.currentItem())
                return True
        return super().eventFilter(watched, event)  # type: ignore[arg-type]

    def _pick(self, item: QListWidgetItem) -> None:
        self.chosen_name = item.data(NEW_LABEL_ROLE)
        self.accept()
