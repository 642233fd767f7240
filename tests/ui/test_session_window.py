"""Defects found in a labelling session, each shown through the window (the session model underneath)."""

from __future__ import annotations

from conftest import write_image
from gui_helpers import click, drag, make_project, wait_shown
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import QApplication

from studio.core.shapes import Box
from studio.core.types import Annotation, Label
from studio.db import Project
from studio.io.media import add_paths
from studio.ui.label_chooser import LabelChooser

pytest_plugins = ("gui_helpers",)


def test_label_chooser_opens_on_screen_near_the_bottom_edge_with_focus_in_its_search(qtbot):
    chooser = LabelChooser([Label(1, "cat", "#111111")], [], None)
    qtbot.addWidget(chooser)
    area = QGuiApplication.primaryScreen().availableGeometry()
    chooser.place_near(QPoint(area.right() - 5, area.bottom() - 5))  # Ctrl+L with the cursor at the corner
    chooser.show()
    qtbot.waitExposed(chooser)
    assert area.contains(chooser.frameGeometry())
    qtbot.waitUntil(chooser.search.hasFocus)
    qtbot.keyClicks(QGuiApplication.focusObject(), "dog")  # typed text lands in the search box
    assert chooser.search.text() == "dog"


def test_shapes_pasted_onto_a_smaller_image_are_clipped_and_the_person_is_told(make_window, qtbot, tmp_path):
    root = make_project(tmp_path / "p", images=1, size=(160, 120))
    write_image(root / "media" / "zsmall.png", 40, 30)
    with Project.open(root) as project:
        add_paths(project, [root / "media" / "zsmall.png"])
    window = make_window(root)
    window.set_tool("box")
    drag(window.canvas, (10, 10), (100, 80))
    window.select_all()
    window.copy_selection()
    window.browser.select_next()
    wait_shown(qtbot, window)
    assert window.media.size == (30, 40)
    window.paste()
    with Project.open(root) as project:
        [pasted] = project.annotations(window.media.id)
    x1, y1, x2, y2 = pasted.shape.x1, pasted.shape.y1, pasted.shape.x2, pasted.shape.y2
    assert (round(x1), round(y1), x2, y2) == (10, 10, 40, 30)  # inside the small image, not as on the big one
    assert "clipped" in window.statusBar().currentMessage()


def test_where_the_person_was_is_saved_as_it_changes_not_only_on_a_clean_close(make_window, qtbot, tmp_path):
    root = make_project(tmp_path / "crash", images=3)
    window = make_window(root)
    run = window.project.create_run("test", name="r")
    window.refresh_runs()
    window.browser.select_next()
    wait_shown(qtbot, window)
    second = window.media.id
    window.session.set_source_visible(run.id, True)
    window.brush_size.setValue(23)
    qtbot.wait(1200)  # past the debounce; then the process dies without closeEvent

    with Project.open(root) as project:  # what a new process would read
        again = make_window(root)
        assert again.media.id == second
        assert again.session.visible_runs == {run.id} and again.runs_panel.visible_runs() == [run.id]
        assert again.brush_size.value() == 23 and again.canvas.brush_radius == 23
        assert project.get_setting("ui.last")["media"] == second


def test_accepted_predictions_stop_drawing_over_the_human_copies_and_accept_selected_needs_a_prediction(make_window):
    window = make_window()
    project = window.project
    run = project.create_run("test", name="r")
    label = window.session.labels[0]
    project.add_annotation(
        Annotation(media_id=window.media.id, label_id=label.id, shape=Box(5, 5, 40, 40), run_id=run.id, score=0.9)
    )
    window.refresh_runs()
    window.session.set_source_visible(run.id, True)
    panel = window.runs_panel
    panel.list.setCurrentRow(0)
    [prediction] = window.annotations
    window.session.select([prediction.id])
    assert panel.accept_one.isEnabled()
    panel.accept_one.click()
    [human] = window.annotations  # the prediction is no longer drawn over its accepted copy
    assert human.run_id is None and human.shape == prediction.shape
    window.session.select([human.id])
    assert not panel.accept_one.isEnabled()  # a human shape is not something to accept
    window.undo_stack.undo()
    assert [a.run_id for a in window.annotations] == [run.id]


def test_the_first_image_is_fitted_and_stays_fitted_while_the_window_settles(make_window, qtbot):
    window = make_window()
    window.resize(1300, 860)
    qtbot.waitUntil(lambda: window.canvas.viewport().width() > 300)
    qtbot.wait(50)
    viewport = window.canvas.viewport().rect()
    height, width = window.media.size
    fitted = min(viewport.width() / width, viewport.height() / height)
    assert abs(window.canvas.zoom() - fitted) / fitted < 0.03  # fitted, not left at the old size's zoom
    window.canvas.zoom_by(1.25)
    window.resize(1200, 800)
    qtbot.wait(50)
    assert window.canvas.fitted is False  # once the person zooms, resizing keeps their zoom


def test_click_segmentation_shows_the_marker_at_once_then_says_which_candidate(make_window, qtbot):
    window = make_window()
    window.set_tool("segment")
    qtbot.waitUntil(lambda: window.segment_tool is not None, timeout=10000)
    click(window.canvas, (70, 60))
    # before any event is processed: the marker is drawn and the canvas says it is working
    assert [(round(x), round(y), positive) for x, y, positive in window.canvas.draft.clicks] == [(70, 60, True)]
    assert window.canvas.viewport().cursor().shape() == Qt.CursorShape.BusyCursor
    qtbot.waitUntil(lambda: window.canvas.draft.mask_image is not None, timeout=10000)
    count = len(window.segment_tool.candidates)
    assert window.statusBar().currentMessage().startswith(f"Candidate 1 of {count}")
    assert window.canvas.viewport().cursor().shape() == Qt.CursorShape.CrossCursor


def test_masks_have_an_outline_selection_is_highlighted_and_label_names_can_be_hidden(make_window, qtbot):
    import numpy as np

    from studio.core.geometry import encode_mask

    window = make_window()
    pixels = np.zeros(window.media.size, bool)
    pixels[30:90, 40:120] = True
    cat = window.session.labels[0]
    ann = window.project.add_annotation(Annotation(media_id=window.media.id, label_id=cat.id, shape=encode_mask(pixels)))
    window.session.refresh_annotations()
    window.canvas.set_fill_opacity(0.05)  # a faint fill: the outline must still show where the mask ends
    window.canvas.set_zoom(2.0)
    window.canvas.centerOn(80, 60)

    def shot():
        QApplication.processEvents()
        return window.canvas.viewport().grab().toImage()

    def colour_at(image, x, y):
        point = window.canvas.mapFromScene(x, y)
        return QColor(image.pixel(point.x(), point.y()))

    plain = shot()
    edge, inside = colour_at(plain, 40.2, 60), colour_at(plain, 80, 60)
    label = QColor(cat.color)
    assert abs(edge.hue() - label.hue()) <= 10 and edge.saturation() > inside.saturation()  # the outline
    window.session.select([ann.id])
    assert shot() != plain  # selected looks different
    item = window.canvas.items_by_id[ann.id]
    assert item.text == "cat"
    with_names = shot()
    window.label_names_action.trigger()
    assert not window.canvas.style_.show_labels and shot() != with_names


def test_export_titles_the_shortcuts_sheet_and_the_annotations_list_read_well(make_window, qtbot):
    from PySide6.QtWidgets import QTableWidget

    from studio.ui.window_datasets import export_dialog_title

    assert export_dialog_title("yolo") == "Export YOLO: choose the folder to write into"
    window = make_window()
    cat = window.session.labels[0]
    for box in (Box(5, 5, 40, 30), Box(60, 50, 100, 90)):
        window.project.add_annotation(Annotation(media_id=window.media.id, label_id=cat.id, shape=box))
    window.session.refresh_annotations()
    texts = [window.annotations_panel.list.item(row).text() for row in range(2)]
    assert texts[0] != texts[1] and all("cat" in text for text in texts)  # two cats told apart

    window.shortcuts_dialog()
    [table] = [t for t in window.findChildren(QTableWidget) if t.isVisible()]
    needed = max(table.fontMetrics().horizontalAdvance(table.item(r, 1).text()) for r in range(table.rowCount()))
    assert table.columnWidth(1) >= needed and table.viewport().width() >= table.columnWidth(0) + table.columnWidth(1)


def test_the_browser_keeps_the_shown_image_through_filters_and_says_when_none_match(make_window, qtbot):
    window = make_window(images=3)
    window.browser.select_next()
    wait_shown(qtbot, window)
    shown = window.media.id
    browser = window.browser
    browser.name_filter.setText("no-such-name")
    browser._apply_filters()
    assert browser.model.rowCount() == 0 and "No media match" in browser.count_label.text()
    browser.name_filter.setText("")
    browser._apply_filters()
    assert browser.current_media_id() == shown  # back on the image being labelled, not on none


def test_the_grid_view_shows_several_columns_in_the_media_dock(make_window, qtbot):
    window = make_window(images=3)
    window.resize(1400, 880)
    qtbot.wait(100)
    browser = window.browser
    browser.grid_button.click()
    qtbot.wait(50)
    first, second = (browser.view.visualRect(browser.model.index(row, 0)) for row in (0, 1))
    assert first.top() == second.top() and second.left() > first.left()  # side by side, not one column
