"""The label chooser popup: recent labels first, search as you type, Enter picks or creates."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.core.types import Label
from studio.ui.label_chooser import LabelChooser, ordered_labels

LABELS = [Label(1, "cat", "#111111"), Label(2, "dog", "#222222"), Label(3, "dolphin", "#333333")]


def test_recent_labels_come_first_most_recent_first():
    assert [label.name for label in ordered_labels(LABELS, [3, 2])] == ["dolphin", "dog", "cat"]


def test_typing_filters_and_enter_picks_the_highlighted_label(qtbot):
    chooser = LabelChooser(LABELS, [], None)
    qtbot.addWidget(chooser)
    qtbot.keyClicks(chooser.search, "do")
    assert chooser.list.count() == 3  # dog, dolphin, and an offer to create "do"
    qtbot.keyClick(chooser.search, Qt.Key.Key_Down)
    qtbot.keyClick(chooser.search, Qt.Key.Key_Return)
    assert chooser.chosen_name == "dolphin"


def test_a_new_name_is_offered_for_creation(qtbot):
    chooser = LabelChooser(LABELS, [], None)
    qtbot.addWidget(chooser)
    qtbot.keyClicks(chooser.search, "horse")
    qtbot.keyClick(chooser.search, Qt.Key.Key_Return)
    assert chooser.chosen_name == "horse"
