"""The comparison window: two runs side by side, synced zoom and pan, disagreement table, worst queue."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from studio.core.shapes import Box
from studio.core.types import Annotation
from studio.db import Project
from studio.io.media import add_paths
from studio.ui.canvas import AnnotationItem
from studio.ui.compare_window import CompareWindow

WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory, qapp) -> CompareWindow:
    """Three images with two objects each; run "good" finds them, run "poor" misses one and adds a false one.
    Built once for the module: comparing and plotting take a few seconds."""
    tmp_path = tmp_path_factory.mktemp("compare")
    for i in range(3):
        write_image(tmp_path / "media" / f"img{i}.png", WIDTH, HEIGHT, seed=i)
    project = Project.create(tmp_path / "project")
    add_paths(project, [tmp_path / "media"])
    cat, dog = project.ensure_label("cat"), project.ensure_label("dog")
    good = project.create_run("yolo", name="good")
    poor = project.create_run("haar", name="poor")
    project.finish_run(good.id, "complete", {"seconds_per_image": 0.0125})
    rng = np.random.default_rng(0)
    anns = []
    for media in project.list_media():
        boxes = [Box(10, 10, 60, 50), Box(80, 40, 150, 110)]
        for box, label in zip(boxes, (cat, dog), strict=True):
            anns.append(Annotation(media_id=media.id, label_id=label.id, shape=box))
            anns.append(Annotation(media_id=media.id, label_id=label.id, shape=box, run_id=good.id,
                                   score=float(rng.uniform(0.5, 1))))
        if media.name == "img1.png":  # the disputed image
            anns.append(Annotation(media_id=media.id, label_id=cat.id, shape=Box(100, 5, 150, 30), run_id=poor.id,
                                   score=0.9))
        else:
            anns.append(Annotation(media_id=media.id, label_id=cat.id, shape=boxes[0], run_id=poor.id, score=0.8))
    project.add_annotations(anns)
    window = CompareWindow(project, [good.id, poor.id])
    window.show()
    deadline = time.monotonic() + 30
    while window.comparison is None and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    assert window.comparison is not None, "the comparison did not finish"
    yield window
    window.close()
    project.close()


def _wheel(view, steps: int) -> None:
    center = QPointF(view.viewport().rect().center())
    event = QWheelEvent(center, view.viewport().mapToGlobal(center), QPoint(0, 0), QPoint(0, 120 * steps),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)


def test_window_opens_with_two_runs_and_their_metrics(compared: CompareWindow) -> None:
    assert len(compared.views) == 2
    assert compared.metrics.horizontalHeaderItem(0).text() == "good"
    assert compared.metrics.horizontalHeaderItem(2).text() == "Δ poor"
    assert float(compared.metrics.item(0, 0).text()) > float(compared.metrics.item(0, 1).text())
    assert compared.metrics.item(0, 2).text().startswith("-")  # poor is worse than good
    assert compared.metrics.item(HEADLINE_ROWS, 0).text() == "12.5"  # speed recorded by the prediction job
    assert compared.main_tabs.count() == 2 and compared.plots_layout.count() >= 8  # 4 plots with titles


HEADLINE_ROWS = 7


def test_zoom_and_pan_move_every_canvas(compared: CompareWindow, qtbot) -> None:
    first, second = compared.views
    before = second.zoom()
    _wheel(first, 3)
    assert first.zoom() == pytest.approx(before * 1.25**3)
    assert second.zoom() == pytest.approx(first.zoom())
    first.horizontalScrollBar().setValue(first.horizontalScrollBar().value() + 40)
    assert second.center().x() == pytest.approx(first.center().x(), abs=1.0)
    _wheel(second, -1)
    assert first.zoom() == pytest.approx(second.zoom())


def test_worst_image_first_and_opens_in_labelling_canvas(compared: CompareWindow, qtbot) -> None:
    compared.worst_list.setCurrentRow(0)
    assert compared.worst_list.item(0).data(Qt.ItemDataRole.UserRole).name == "img1.png"
    assert compared.current is not None and compared.current.name == "img1.png"
    items = [i for i in compared.views[1].scene().items() if isinstance(i, AnnotationItem)]
    assert len(items) == 3  # two ground-truth shapes and the poor run's false positive
    with qtbot.waitSignal(compared.open_media) as signal:
        compared._open_current()
    assert signal.args == [compared.current.media_id]
    compared.next_worst()
    assert compared.current.name != "img1.png"


def test_image_table_sorts_by_disagreement(compared: CompareWindow) -> None:
    model = compared.image_model
    values = [model.item(r, 1).data(Qt.ItemDataRole.UserRole) for r in range(model.rowCount())]
    assert values == sorted(values, reverse=True) and len(values) == 3
    compared.image_table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
    assert model.item(model.rowCount() - 1, 0).text() == "img1.png"


def test_report_export_from_the_window(compared: CompareWindow, tmp_path: Path) -> None:
    report = compared.export_report(tmp_path / "report")
    text = report.read_text()
    assert "good" in text and "poor" in text and "img1.png" in text
    assert len(list((tmp_path / "report").glob("*.png"))) == 4


def test_screenshot(compared: CompareWindow, tmp_path: Path) -> None:
    path = tmp_path / "compare.png"
    assert compared.grab().save(str(path))
    assert path.stat().st_size > 10_000


def test_the_window_fits_a_1366_px_screen_and_closes_with_escape_or_ctrl_w(compared: CompareWindow, qtbot):
    assert compared.minimumSizeHint().width() <= 1366 - 20  # a laptop screen, less the window frame
    for key, modifier in ((Qt.Key.Key_Escape, Qt.KeyboardModifier.NoModifier), (Qt.Key.Key_W, Qt.KeyboardModifier.ControlModifier)):
        compared.show()
        compared.activateWindow()
        qtbot.waitUntil(compared.isVisible)
        qtbot.keyClick(compared, key, modifier)
        qtbot.waitUntil(lambda: not compared.isVisible())
    compared.show()
