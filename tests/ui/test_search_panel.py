"""The Search dock: embed, search by text, "more like this" on the open image and on a selected box, tag
zero-shot and list duplicates, each on a worker thread, with a tiny random-init CLIP."""

from __future__ import annotations

import shutil

import pytest
from clip_helpers import random_clip, write_shapes
from gui_helpers import wait_shown

from studio.core.shapes import Box
from studio.core.types import Annotation
from studio.db import Project
from studio.io.media import add_paths

pytest_plugins = ("gui_helpers",)  # the make_window fixture and isolated settings


@pytest.fixture
def shapes_root(tmp_path):
    root = tmp_path / "project"
    write_shapes(root / "images", 1, seed=3)
    shutil.copy(root / "images" / "red-circle-0.png", root / "images" / "zz-copy.png")
    with Project.create(root) as project:
        add_paths(project, [root / "images"])
    return root


def test_search_dock_embeds_searches_tags_and_finds_duplicates(qtbot, make_window, shapes_root, tmp_path):
    clip = random_clip(tmp_path / "clip")
    window = make_window(shapes_root)
    panel = window.search_panel
    panel.model.setCurrentText("clip-local")
    panel.weights.setText(str(clip))
    panel.embed()
    qtbot.waitUntil(lambda: panel.status.text().startswith("Embedded 13 images"), timeout=60000)

    panel.query.setText("a red circle")
    panel.search_text()
    qtbot.waitUntil(lambda: panel.results.count() == 13, timeout=30000)
    assert panel.status.text() == "13 results for “a red circle”"

    window.project.set_review_state(window.project.find_media("images/blue-circle-0.png").id, "done")
    window.browser.review_filter.setCurrentIndex(window.browser.review_filter.findData("done"))
    qtbot.waitUntil(lambda: window.browser.model.media_filter.review_state == "done", timeout=5000)
    panel.search_text()  # the browser's filters apply to search results too
    qtbot.waitUntil(lambda: panel.results.count() == 1, timeout=30000)
    assert panel.results.item(0).text().endswith("images/blue-circle-0.png")
    window.browser.review_filter.setCurrentIndex(0)
    qtbot.waitUntil(lambda: window.browser.model.media_filter.review_state is None, timeout=5000)

    window.show_media(window.project.find_media("images/zz-copy.png").id)
    wait_shown(qtbot, window)
    panel.more_like_this()
    first, second = (panel.results.item(i).text() for i in range(2))
    assert {first.split()[-1], second.split()[-1]} == {"images/zz-copy.png", "images/red-circle-0.png"}
    assert first.startswith("1.000") and second.startswith("1.000")

    panel.results.setCurrentRow(5)
    wanted = panel.results.item(5).data(0x0100)
    panel.results.itemActivated.emit(panel.results.item(5))
    qtbot.waitUntil(lambda: window.media is not None and window.media.id == wanted[0], timeout=5000)

    label = window.project.ensure_label("thing")
    box = window.project.add_annotation(Annotation(window.media.id, label.id, Box(0, 0, 48, 48)))
    panel.set_selection([box.id])  # what the canvas reports when the box is selected
    panel.more_like_this()  # the box was never embedded: its crop is encoded on the spot
    assert panel.results.item(0).data(0x0100) == (window.media.id, 0)
    assert "like the selected shape" in panel.status.text()

    panel.tag("red circle, blue square")
    qtbot.waitUntil(lambda: panel.status.text().startswith("Run "), timeout=30000)
    run = window.project.runs()[-1]
    assert run.params["task"] == "tag" and len(window.project.run_tags(run.id)) == 13

    panel.threshold.setValue(0.999)
    panel.duplicates()
    qtbot.waitUntil(lambda: "groups of near-duplicates" in panel.status.text(), timeout=30000)
    assert panel.results.item(0).text().startswith("Group 1: 2 images")
