"""Light and dark themes on Qt's Fusion style, following the system colour scheme by default.

Fusion draws the same on every platform and takes its colours from a QPalette, so one dark palette
gives a consistent dark theme; "system" asks Qt for the platform's scheme (Qt >= 6.5).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")


def _dark_palette() -> QPalette:
    palette = QPalette()
    role, group = QPalette.ColorRole, QPalette.ColorGroup
    for r, color in (
        (role.Window, "#2b2b2e"), (role.WindowText, "#e6e6e6"), (role.Base, "#202023"),
        (role.AlternateBase, "#2f2f33"), (role.ToolTipBase, "#3a3a3f"), (role.ToolTipText, "#f0f0f0"),
        (role.Text, "#e6e6e6"), (role.Button, "#333337"), (role.ButtonText, "#e6e6e6"),
        (role.BrightText, "#ff6b6b"), (role.Link, "#6ea8fe"), (role.Highlight, "#3d6fb6"),
        (role.HighlightedText, "#ffffff"), (role.PlaceholderText, "#8a8a8f"), (role.Dark, "#161618"),
        (role.Mid, "#3c3c40"), (role.Light, "#45454a"), (role.Shadow, "#0d0d0e"),
    ):
        palette.setColor(r, QColor(color))
    for r in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(group.Disabled, r, QColor("#77777c"))
    return palette


def system_is_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints.colorScheme() == Qt.ColorScheme.Dark


def apply(name: str) -> None:
    """Switch the running application to a theme ("system", "light" or "dark")."""
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return
    app.setStyle("Fusion")
    dark = name == "dark" or (name == "system" and system_is_dark())
    app.setPalette(_dark_palette() if dark else app.style().standardPalette())
