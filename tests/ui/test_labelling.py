"""The labelling window end to end: draw with the mouse, undo/redo, edit vertices, paint masks,
navigate with the keyboard, reopen the project and find everything."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gui_helpers import click, drag, make_project, wait_shown
from PySide6.QtCore import Qt

from studio.core.geometry import area, decode_mask
from studio.core.shapes import Box, Mask, Polygon
from studio.db import Project

pytest_plugins = ("gui_helpers",)  # the make_window fixture and isolated settings


def stored(window) -> list:
    """Human annotations of the shown image, as a fresh read of the database sees them."""
    with Project.open(window.project.root) as project:
        return project.annotations(window.media.id)


def test_drawing_a_box_stores_it_and_undo_redo_follow(make_window):
    window = make_window()
    window.set_tool("box")
    drag(window.canvas, (20, 30), (90, 100))

    [ann] = stored(window)
    assert isinstance(ann.shape, Box)
    # mouse positions are whole screen pixels: at a fitted zoom they land within a pixel of the target
    assert (ann.shape.x1, ann.shape.y1, ann.shape.x2, ann.shape.y2) == pytest.approx((20, 30, 90, 100), abs=1)
    assert ann.label_id == window.session.current_label_id
    assert window.saved_label.text().startswith("Saved")
    assert [a.id for a in window.annotations] == [ann.id]

    window.undo_stack.undo()
    assert stored(window) == []
    assert window.annotations == []
    window.undo_stack.redo()
    [again] = stored(window)
    assert again.id == ann.id and again.shape == ann.shape


def test_a_click_is_not_a_box(make_window):
    window = make_window()
    window.set_tool("box")
    click(window.canvas, (50, 50))
    assert stored(window) == []


def test_polygon_drawn_by_clicks_then_vertex_dragged_is_saved(make_window, qtbot):
    window = make_window()
    window.set_tool("polygon")
    for point in [(20, 20), (100, 20), (100, 90), (20, 90)]:
        click(window.canvas, point)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Space)  # Space closes the polygon
    [ann] = stored(window)
    assert isinstance(ann.shape, Polygon) and len(ann.shape.parts[0]) == 4

    window.set_tool("select")
    click(window.canvas, (60, 50))  # select it
    assert window.canvas.selected_ids() == [ann.id]
    drag(window.canvas, (100, 90), (130, 110))
    [edited] = stored(window)
    assert edited.shape.parts[0][2] == pytest.approx((130, 110), abs=1)
    assert area(edited.shape) > area(ann.shape)

    click(window.canvas, (60, 20), modifiers=Qt.KeyboardModifier.ShiftModifier)  # insert on the top edge
    assert len(stored(window)[0].shape.parts[0]) == 5
    click(window.canvas, (60, 20), modifiers=Qt.KeyboardModifier.AltModifier)  # and delete it again
    assert len(stored(window)[0].shape.parts[0]) == 4

    window.undo_stack.undo()
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert stored(window)[0].shape == ann.shape  # back to the drawn polygon


def test_closing_a_polygon_by_clicking_its_first_point(make_window):
    window = make_window()
    window.set_tool("polygon")
    for point in [(10, 10), (60, 10), (60, 60), (10, 10)]:
        click(window.canvas, point)
    [ann] = stored(window)
    assert len(ann.shape.parts[0]) == 3


def test_brush_stroke_is_stored_as_an_rle_mask_of_the_painted_area(make_window):
    window = make_window(size=(200, 160))
    window.brush_size.setValue(6)
    window.set_tool("brush")
    drag(window.canvas, (40, 80), (140, 80), steps=10)

    [ann] = stored(window)
    assert isinstance(ann.shape, Mask) and ann.shape.size == (160, 200)
    radius, length = 6, 100
    expected = 2 * radius * length + math.pi * radius**2  # a stadium: the stroke plus its round ends
    assert abs(area(ann.shape) - expected) / expected < 0.1
    pixels = decode_mask(ann.shape)
    assert pixels[80, 90] and not pixels[80 + 3 * radius, 90]

    window.set_tool("select")
    click(window.canvas, (90, 80))
    window.set_tool("eraser")
    drag(window.canvas, (90, 60), (90, 100))  # cut the stroke in two
    erased = decode_mask(stored(window)[0].shape)
    assert not erased[80, 90] and erased[80, 50] and erased[80, 130]


def test_keyboard_navigation_and_paste_onto_the_next_image(make_window, qtbot):
    window = make_window(images=3)
    first = window.media.id
    window.set_tool("box")
    drag(window.canvas, (10, 10), (50, 40))
    [copied] = stored(window)
    window.set_tool("select")
    window.select_all()
    qtbot.keyClick(window.canvas, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)

    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    wait_shown(qtbot, window)
    assert window.media.id != first
    qtbot.keyClick(window.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    [pasted] = stored(window)
    assert pasted.shape == copied.shape and pasted.id != copied.id

    qtbot.keyClick(window.canvas, Qt.Key.Key_A)
    wait_shown(qtbot, window)
    assert window.media.id == first


def test_delete_then_undo_brings_back_the_same_annotation(make_window, qtbot):
    window = make_window()
    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))
    [ann] = stored(window)
    window.set_tool("select")
    click(window.canvas, (30, 30))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Delete)
    assert stored(window) == []
    window.undo_stack.undo()
    [back] = stored(window)
    assert (back.id, back.shape, back.created_at) == (ann.id, ann.shape, ann.created_at)


def test_number_keys_pick_the_label_and_relabel_the_selection(make_window, qtbot):
    window = make_window()
    cat, dog = window.session.labels
    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))
    assert stored(window)[0].label_id == cat.id
    window.set_tool("select")
    click(window.canvas, (30, 30))
    qtbot.keyClick(window.canvas, Qt.Key.Key_2)
    assert stored(window)[0].label_id == dog.id
    assert window.session.current_label_id == dog.id


def test_reopened_project_shows_the_same_annotations_last_image_and_view(make_window, qtbot, tmp_path):
    root = make_project(tmp_path / "reopen", images=3)
    window = make_window(root)
    window.browser.select_next()
    wait_shown(qtbot, window)
    second = window.media.id
    window.set_tool("box")
    drag(window.canvas, (15, 25), (70, 80))
    drawn = [a.shape for a in stored(window)]
    window.canvas.set_zoom(3.0)
    window.close()

    again = make_window(root)
    assert again.media.id == second
    assert [a.shape for a in again.annotations] == drawn
    assert np.isclose(again.canvas.zoom(), 3.0)


def test_adding_a_folder_and_exporting_run_on_a_worker_with_the_cli_services(make_window, qtbot, tmp_path):
    window = make_window(images=1)
    extra = make_project(tmp_path / "other", images=2) / "media"
    with qtbot.waitSignal(window.add_paths([extra]).done, timeout=10000):
        pass
    assert window.project.count_media() == 3
    assert "Added 2 media" in window.statusBar().currentMessage()

    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))
    out = tmp_path / "export"
    with qtbot.waitSignal(window.export_dataset("coco", out).done, timeout=10000) as blocker:
        pass
    assert blocker.args[0].annotations == 1
    assert any(path.suffix == ".json" for path in out.rglob("*"))


def test_invalid_attributes_json_is_refused_with_a_message_and_nothing_changes(make_window):
    window = make_window()
    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))
    [ann] = stored(window)
    panel = window.properties_panel
    panel.attributes.setPlainText('{"occluded": tru')
    panel.apply_button.click()
    assert "not valid JSON" in panel.error.text()
    assert stored(window)[0].attributes == {}
    panel.attributes.setPlainText('{"occluded": true}')
    panel.apply_button.click()
    assert stored(window)[0].attributes == {"occluded": True} and stored(window)[0].id == ann.id


def test_shapes_drawn_on_a_video_frame_belong_to_that_frame(make_window, qtbot):
    window = make_window(images=1, video_frames=12)
    video = next(m for m in window.project.list_media() if m.kind == "video")
    window.show_media(video.id)
    wait_shown(qtbot, window)
    for _ in range(3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Period)  # next frame
    wait_shown(qtbot, window)
    assert window.frame == 3 and window.video_controls.frame == 3

    window.set_tool("box")
    drag(window.canvas, (20, 20), (80, 70))
    [ann] = window.project.annotations(video.id)
    assert ann.frame == 3
    assert window.video_controls.timeline.keyframes == [3]

    window.video_controls.set_frame(5)
    wait_shown(qtbot, window)
    assert window.annotations == []  # frame 5 has none


def test_click_segmentation_stores_the_object_as_an_undoable_mask(make_window, qtbot, tmp_path):
    import cv2

    from studio.io.media import add_paths

    root = tmp_path / "segment"
    image = np.random.default_rng(2).integers(100, 150, (120, 160, 3), dtype=np.uint8)
    truth = np.zeros((120, 160), np.uint8)
    cv2.circle(truth, (70, 60), 28, 1, -1)
    image[truth.astype(bool)] = (40, 200, 40)
    (root / "media").mkdir(parents=True)
    cv2.imwrite(str(root / "media" / "disk.png"), image)
    with Project.create(root) as project:
        add_paths(project, [root / "media"])
        project.ensure_label("disk")
    window = make_window(root)

    window.set_tool("segment")  # the GrabCut segmenter loads on a worker thread
    qtbot.waitUntil(lambda: window.segment_tool is not None, timeout=10000)
    click(window.canvas, (70, 60))
    qtbot.waitUntil(lambda: window.canvas.draft.mask_image is not None, timeout=10000)
    qtbot.keyClick(window.canvas, Qt.Key.Key_Return)

    [ann] = stored(window)
    assert isinstance(ann.shape, Mask)
    pixels = decode_mask(ann.shape)
    overlap = (pixels & truth.astype(bool)).sum() / (pixels | truth.astype(bool)).sum()
    assert overlap > 0.8
    window.undo_stack.undo()
    assert stored(window) == []


def test_segment_mode_encodes_the_next_images_before_they_are_opened(make_window, qtbot):
    window = make_window()  # three images
    window.set_tool("segment")
    qtbot.waitUntil(lambda: window.segment_tool is not None, timeout=10000)
    cache = window.segment_tool.cache
    qtbot.waitUntil(lambda: cache.stats().misses == 3, timeout=10000)  # the shown image and the next two

    qtbot.keyClick(window.canvas, Qt.Key.Key_D)
    wait_shown(qtbot, window)
    qtbot.waitUntil(lambda: cache.stats().memory_hits >= 1, timeout=10000)
    assert cache.stats().misses == 3  # the image D opened was ready: no encoder call


def test_predictions_of_a_run_show_when_its_source_is_on_and_above_the_threshold(make_window):
    from studio.core.types import Annotation

    window = make_window()
    project = window.project
    run = project.create_run("test-detector", name="detector run")
    label = window.session.labels[0]
    for score in (0.3, 0.95):
        project.add_annotation(
            Annotation(media_id=window.media.id, label_id=label.id, shape=Box(5, 5, 40, 40), run_id=run.id, score=score)
        )
    window.refresh_runs()
    assert [action.text() for action in window.sources_menu.actions()] == ["Human annotations", "Run detector run"]
    assert window.annotations == []  # predictions are hidden until their run is switched on

    window.sources_menu.actions()[1].setChecked(True)
    assert window.runs_panel.visible_runs() == [run.id]  # the menu and the runs dock agree
    assert sorted(a.score for a in window.annotations) == [0.3, 0.95]
    item = next(iter(window.canvas.items_by_id.values()))
    assert item.color.name() == window.runs_panel.colors()[run.id]  # predictions wear their run's colour
    window.runs_panel.list.setCurrentRow(0)
    window.runs_panel.slider.setValue(50)  # the runs dock's score threshold
    assert [a.score for a in window.annotations] == [0.95]
    assert "detector run" in window.annotations_panel.list.item(0).text()


def test_question_mark_opens_the_shortcut_cheat_sheet(make_window, qtbot):
    from PySide6.QtWidgets import QTableWidget

    window = make_window()
    qtbot.keyClick(window.canvas, "?")
    [table] = [t for t in window.findChildren(QTableWidget) if t.isVisible()]
    rows = {table.item(row, 1).text(): table.item(row, 0).text() for row in range(table.rowCount())}
    assert rows["Next image"] == "D" and rows["Previous image"] == "A" and rows["Hide shapes"] == "H"


def test_view_keys_hide_shapes_fit_and_show_pixels_one_to_one(make_window, qtbot):
    window = make_window()
    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))
    window.set_tool("select")
    [item] = window.canvas.items_by_id.values()
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert not item.isVisible()
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)
    assert item.isVisible()

    qtbot.keyClick(window.canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert window.canvas.screen_zoom() == pytest.approx(1.0)  # one image pixel per screen pixel
    assert window.zoom_label.text() == "100 %"
    qtbot.keyClick(window.canvas, Qt.Key.Key_F)
    viewport = window.canvas.viewport().rect()
    fitted = window.canvas.zoom()
    assert min(viewport.width() / 160, viewport.height() / 120) == pytest.approx(fitted, rel=0.05)


def test_tags_caption_and_review_state_are_saved_from_the_image_panel(make_window):
    window = make_window()
    panel = window.tags_panel
    panel.tags.setText("outdoor, blurry ,")
    panel.tags.editingFinished.emit()
    panel.caption.setPlainText("a noisy test image")
    panel.save_caption.click()
    panel.review.setCurrentIndex(panel.review.findData("done"))
    panel.review.activated.emit(panel.review.currentIndex())
    with Project.open(window.project.root) as project:
        media = project.get_media(window.media.id)
        assert project.tags(media.id) == ["blurry", "outdoor"]
        assert (media.caption, media.review_state) == ("a noisy test image", "done")


def test_a_missing_image_file_shows_a_placeholder_and_a_message_and_still_takes_shapes(make_window, qtbot, tmp_path):
    root = make_project(tmp_path / "missing", images=2)
    (root / "media" / "img1.jpg").unlink()
    window = make_window(root)
    window.browser.select_next()
    qtbot.waitUntil(lambda: "img1.jpg" in window.statusBar().currentMessage(), timeout=5000)
    assert window.media.name == "img1.jpg"
    assert (window.canvas.image.width(), window.canvas.image.height()) == (160, 120)
    window.set_tool("box")
    drag(window.canvas, (10, 10), (50, 50))
    assert len(stored(window)) == 1


def test_a_rotated_box_is_drawn_upright_then_turned_by_its_handle(make_window):
    from studio.core.shapes import RotatedBox

    window = make_window()
    window.set_tool("rotated_box")
    drag(window.canvas, (40, 40), (120, 80))
    [ann] = stored(window)
    assert isinstance(ann.shape, RotatedBox) and ann.shape.angle == 0
    window.set_tool("select")
    click(window.canvas, (80, 60))
    top_middle = (ann.shape.cx, ann.shape.cy - ann.shape.h / 2)
    drag(window.canvas, top_middle, (ann.shape.cx + 50, ann.shape.cy))
    turned = stored(window)[0].shape
    assert turned.angle == pytest.approx(90, abs=3)
    assert (turned.w, turned.h) == (ann.shape.w, ann.shape.h)


def test_segmenter_menu_offers_plugins_that_can_run_and_remembers_the_choice(make_window):
    window = make_window()
    window.segmenter_menu.aboutToShow.emit()
    actions = {action.text(): action for action in window.segmenter_menu.actions()}
    grabcut = next(action for text, action in actions.items() if "GrabCut" in text)
    assert grabcut.isEnabled() and grabcut.isChecked()
    assert all(not action.isEnabled() for text, action in actions.items() if "weights not downloaded" in text)
    window.set_segmenter("grabcut")
    assert window.project.get_setting("ui.segmenter") == "grabcut"


def test_compare_runs_opens_the_comparison_window_which_can_send_an_image_back(make_window, qtbot):
    from studio.ui.compare_window import CompareWindow

    window = make_window(images=2)
    qtbot.keyClick(window.canvas, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    [compare] = [w for w in window.findChildren(CompareWindow) if w.isVisible()]
    second = window.project.list_media()[1].id
    compare.open_media.emit(second)
    wait_shown(qtbot, window)
    assert window.media.id == second
    compare.close()


def test_label_panel_renames_and_merges_labels_through_the_project(make_window, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    window = make_window()
    cat, dog = window.session.labels
    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))  # a "cat" box
    monkeypatch.setattr(QInputDialog, "getText", lambda *args, **kwargs: ("kitten", True))
    window.rename_label_dialog(cat.id)
    assert [label.name for label in window.session.labels] == ["kitten", "dog"]
    assert "kitten" in window.labels_panel.list.item(0).text()

    monkeypatch.setattr(QInputDialog, "getItem", lambda *args, **kwargs: ("dog", True))
    window.merge_label_dialog(cat.id)
    assert [label.name for label in window.session.labels] == ["dog"]
    assert stored(window)[0].label_id == dog.id
    assert window.annotations[0].label_id == dog.id  # the canvas shows the merged label at once


def test_without_labels_the_chooser_asks_and_a_typed_name_becomes_a_label(make_window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QDialog

    from studio.ui.label_chooser import LabelChooser

    root = make_project(tmp_path / "unlabelled", images=1)
    with Project.open(root) as project:
        for label in project.labels():
            project.delete_label(label.id)
    window = make_window(root)
    assert window.session.current_label_id is None

    def choose_tree(chooser: LabelChooser) -> int:
        chooser.chosen_name = "tree"
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(LabelChooser, "exec", choose_tree)
    window.set_tool("box")
    drag(window.canvas, (10, 10), (60, 60))
    [ann] = stored(window)
    assert window.label_map()[ann.label_id].name == "tree"
    assert window.session.current_label_id == ann.label_id  # the next shape gets it without asking
