"""The comparison window: pick 2-4 runs, see their metrics side by side, their predictions on the same
image with synced zoom, the images ranked by disagreement, and the plots.

The numbers come from studio.eval.compare_runs (the same call as `studio compare`), computed with the
plots on a worker thread. `open_media(media_id)` asks the main window to open an image in the
labelling canvas, to fix its ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QKeySequence, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.db import Project
from studio.db.project import Source
from studio.eval.compare import HEADLINE, Comparison, ImageRow, compare_runs
from studio.eval.plots import Plot, render_plots
from studio.ui.compare_view import CompareView, ViewSync
from studio.ui.jobs import Job
from studio.ui.thumbnails import rgb_to_qimage

MAX_RUNS = 4
SIDE_MIN_WIDTH = 340
"""The runs, metrics and image lists; the images get the rest of a 1,366 px laptop screen."""
WORST_COUNT = 50
METRIC_TITLES = {
    "map": "mAP@[.5:.95]", "map50": "AP50", "map75": "AP75", "map_small": "AP small", "map_medium": "AP medium",
    "map_large": "AP large", "mar_100": "AR@100",
}


@dataclass(frozen=True)
class CompareOutcome:
    """What the worker hands back: the comparison and its plots (PNG)."""

    comparison: Comparison
    plots: list[Plot]
    gt: Source


def _compute(
    project: Project, runs: Sequence[Source], gt: Source, iou_type: str, conf: float, media_ids: Sequence[int] | None
) -> CompareOutcome:
    comparison = compare_runs(project, runs, gt=gt, iou_type=iou_type, conf=conf, media_ids=media_ids)  # type: ignore[arg-type]
    return CompareOutcome(comparison, render_plots(comparison.results), gt)


def _number_item(value: float, text: str | None = None) -> QStandardItem:
    """A table cell that sorts by its number, not its text."""
    item = QStandardItem(text if text is not None else f"{value:g}")
    item.setData(value, Qt.ItemDataRole.UserRole)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    item.setEditable(False)
    return item


def _read_image(project: Project, row: ImageRow) -> QImage:
    """The image's pixels, or a grey placeholder saying why they are missing (shapes still show)."""
    from studio.io.media import read_media

    media = project.get_media(row.media_id)
    try:
        pixels = read_media(project, media, row.frame)
    except StudioError:
        image = QImage(media.width, media.height, QImage.Format.Format_RGB888)
        image.fill(QColor("#3c3c3c"))
        return image
    return rgb_to_qimage(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB))


class CompareWindow(QWidget):
    """Side-by-side comparison of 2-4 runs of a project against its ground truth."""

    open_media = Signal(int)
    """The user wants this media (id) in the labelling canvas, e.g. to fix its ground truth."""
    open_frame = Signal(int, int)
    """The same with the frame (media id, frame), for video frames; emitted together with open_media."""
    compared = Signal()
    """A comparison finished and is shown."""

    def __init__(
        self,
        project: Project,
        runs: Sequence[int] = (),
        *,
        gt: Source = "human",
        iou_type: str = "bbox",
        conf: float = 0.25,
        media_ids: Sequence[int] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Compare runs")
        self.project, self.gt, self.conf = project, gt, conf
        self.media_ids = list(media_ids) if media_ids is not None else None
        """Compare on these media only (the validation images of trained models), else on all."""
        self.comparison: Comparison | None = None
        self.plots: list[Plot] = []
        self.current: ImageRow | None = None
        self.job: Job | None = None
        self.busy = False
        self.views: list[CompareView] = []
        self.captions: list[QLabel] = []
        self.sync = ViewSync(self)
        self._build(iou_type)
        self.gt_choice.setCurrentIndex(max(0, self.gt_choice.findData(gt)))
        for i in range(self.run_list.count()):
            item = self.run_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in runs else Qt.CheckState.Unchecked)
        if 2 <= len(runs) <= MAX_RUNS:
            self.start()

    # ---- layout -----------------------------------------------------------------------------------

    def _build(self, iou_type: str) -> None:
        self.run_list = QListWidget()
        for run in self.project.runs():
            item = QListWidgetItem(f"{run.name}  ({run.plugin})")
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            self.run_list.addItem(item)
        self.run_list.setMaximumHeight(90)
        self.run_list.itemChanged.connect(self._update_compare_button)
        self.gt_choice = QComboBox()
        self.gt_choice.addItem("human", "human")
        for run in self.project.runs():
            self.gt_choice.addItem(run.name, run.id)
        self.iou_type = QComboBox()
        self.iou_type.addItems(["bbox", "segm"])
        self.iou_type.setCurrentText(iou_type)
        self.compare_button = QPushButton("Compare")
        self.compare_button.clicked.connect(self.start)
        self.export_button = QPushButton("Export report…")
        self.export_button.setEnabled(False)
        self.export_button.clicked.connect(self._export_dialog)
        self.status = QLabel("Tick 2 to 4 runs, then Compare.")
        self.status.setWordWrap(True)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Truth"))
        controls.addWidget(self.gt_choice)
        controls.addWidget(QLabel("IoU"))
        controls.addWidget(self.iou_type)
        controls.addStretch()
        actions = QHBoxLayout()  # a row of their own: the side column is narrow on a 1,366 px screen
        actions.addStretch()
        actions.addWidget(self.export_button)
        actions.addWidget(self.compare_button)

        self.metrics = QTableWidget()
        self.metrics.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.metrics.verticalHeader().setDefaultSectionSize(22)
        self.metrics.setMinimumHeight(22 * 12 + 30)  # every row of the summary without scrolling
        self.image_model = QStandardItemModel()
        self.image_model.setSortRole(Qt.ItemDataRole.UserRole)
        self.image_table = QTableView()
        self.image_table.setModel(self.image_model)
        self.image_table.setSortingEnabled(True)
        self.image_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.image_table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.image_table.verticalHeader().hide()
        self.image_table.selectionModel().currentRowChanged.connect(self._on_table_row)
        self.image_table.doubleClicked.connect(lambda _index: self._open_current())

        self.worst_list = QListWidget()
        self.worst_list.currentRowChanged.connect(self._on_worst_row)
        self.worst_list.itemDoubleClicked.connect(lambda _item: self._open_current())
        open_button = QPushButton("Open in labelling canvas")
        open_button.clicked.connect(self._open_current)
        next_button = QPushButton("Next")
        next_button.clicked.connect(self.next_worst)
        worst_tab = QWidget()
        worst_layout = QVBoxLayout(worst_tab)
        worst_layout.addWidget(self.worst_list)
        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(next_button)
        worst_layout.addLayout(buttons)

        self.side_tabs = QTabWidget()
        self.side_tabs.addTab(worst_tab, "Worst images")
        self.side_tabs.addTab(self.image_table, "All images")

        side = QWidget()
        side.setMinimumWidth(SIDE_MIN_WIDTH)
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(QLabel("Runs"))
        side_layout.addWidget(self.run_list)
        side_layout.addLayout(controls)
        side_layout.addLayout(actions)
        side_layout.addWidget(self.status)
        side_layout.addWidget(self.metrics)
        side_layout.addWidget(self.side_tabs, 1)

        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.plots_host = QWidget()
        self.plots_layout = QVBoxLayout(self.plots_host)
        plots_scroll = QScrollArea()
        plots_scroll.setWidgetResizable(True)
        plots_scroll.setWidget(self.plots_host)
        self.main_tabs = QTabWidget()
        self.main_tabs.addTab(self.grid_host, "Images")
        self.main_tabs.addTab(plots_scroll, "Plots")

        splitter = QSplitter()
        splitter.addWidget(side)
        splitter.addWidget(self.main_tabs)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([SIDE_MIN_WIDTH + 60, 930])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self.resize(1300, 860)  # its minimum fits a 1,366 px laptop screen
        self._update_compare_button()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Esc or Ctrl+W closes the window, as for any secondary window (keys the lists leave alone)."""
        if event.key() == Qt.Key.Key_Escape or event.matches(QKeySequence.StandardKey.Close):
            self.close()
            return
        super().keyPressEvent(event)

    # ---- running the comparison -------------------------------------------------------------------

    def checked_runs(self) -> list[int]:
        return [
            self.run_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.run_list.count())
            if self.run_list.item(i).checkState() == Qt.CheckState.Checked
        ]

    def _update_compare_button(self, _item: object = None) -> None:
        count = len(self.checked_runs())
        self.compare_button.setEnabled(2 <= count <= MAX_RUNS and not self.busy)

    def start(self) -> None:
        """Compare the ticked runs on a worker thread; the result is shown when it is ready."""
        runs = self.checked_runs()
        project, gt, iou_type, conf = self.project, self.gt_choice.currentData(), self.iou_type.currentText(), self.conf
        media_ids = self.media_ids

        def work(_progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            return _compute(project, runs, gt, iou_type, conf, media_ids)

        self.status.setText("Comparing...")
        self.busy = True
        self.job = Job(self, "Comparing runs", work)
        self.job.done.connect(self.show_outcome)
        self.job.failed.connect(self._failed)
        self.job.start()
        self._update_compare_button()

    def _failed(self, message: str) -> None:
        self.busy = False
        self.status.setText(message)
        self._update_compare_button()

    def show_outcome(self, outcome: CompareOutcome) -> None:
        self.busy = False
        self.comparison, self.plots, self.gt = outcome.comparison, outcome.plots, outcome.gt
        results = outcome.comparison.results
        self.status.setText(
            f"{len(outcome.comparison.images)} images against {results[0].gt_name} ({results[0].data.iou_type}); "
            f"errors at score >= {self.conf:g}, IoU >= 0.5."
        )
        self._fill_metrics(outcome.comparison)
        self._fill_images(outcome.comparison)
        self._fill_plots(outcome.plots)
        self._make_views(outcome.comparison.run_names)
        self._update_compare_button()
        self.export_button.setEnabled(True)
        if self.worst_list.count():
            self.worst_list.setCurrentRow(0)
        elif outcome.comparison.images:
            self.show_row(outcome.comparison.images[0])
        self.compared.emit()

    def export_report(self, folder: Path) -> Path:
        """Write the Markdown report with its PNG plots (as `studio compare --report`); returns report.md."""
        from studio.eval.report import write_report

        assert self.comparison is not None
        return write_report(self.comparison, folder, plots=self.plots)

    def _export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export comparison report to folder")
        if not folder:
            return
        try:
            report = self.export_report(Path(folder))
        except StudioError as exc:
            QMessageBox.warning(self, "Export report", str(exc))
            return
        self.status.setText(f"Report written to {report}")

    # ---- summary and tables -----------------------------------------------------------------------

    def _fill_metrics(self, comparison: Comparison) -> None:
        names = comparison.run_names
        headers = names + [f"Δ {name}" for name in names[1:]]
        # (title, values per run, format, whether higher is better)
        rows: list[tuple[str, list[float | None], str, bool]] = [
            (METRIC_TITLES[m], [r.metrics[m] if r.metrics[m] >= 0 else None for r in comparison.results], ".3f", True)
            for m in HEADLINE
        ]
        rows.append(("ms / image", [r.speed_ms_per_image for r in comparison.results], ".1f", False))
        for key in ("false_positives", "misses", "confusions"):
            rows.append((key.replace("_", " "), [r.error_totals()[key] for r in comparison.results], "d", False))
        self.metrics.clear()
        self.metrics.setColumnCount(len(headers))
        self.metrics.setRowCount(len(rows))
        self.metrics.setHorizontalHeaderLabels(headers)
        self.metrics.setVerticalHeaderLabels([title for title, _, _, _ in rows])
        for r, (_title, values, fmt, higher_is_better) in enumerate(rows):
            for c, value in enumerate(values):
                self.metrics.setItem(r, c, QTableWidgetItem("–" if value is None else format(value, fmt)))
            for c, value in enumerate(values[1:], start=len(values)):
                delta = None if value is None or values[0] is None else value - values[0]
                item = QTableWidgetItem("–" if delta is None else format(delta, "+" + fmt))
                if delta:
                    item.setForeground(QColor("#4caf50" if (delta > 0) == higher_is_better else "#e15759"))
                self.metrics.setItem(r, c, item)
        self.metrics.resizeColumnsToContents()

    def _fill_images(self, comparison: Comparison) -> None:
        self.image_model.clear()
        self.image_model.setHorizontalHeaderLabels(
            ["Image", "Disagreement", "False pos.", "Misses", "Class conflicts", "IoU spread"]
        )
        for row in comparison.images:
            name = QStandardItem(row.name)
            name.setData(row.name, Qt.ItemDataRole.UserRole)
            name.setData(row, Qt.ItemDataRole.UserRole + 1)
            name.setEditable(False)
            self.image_model.appendRow([
                name, _number_item(row.disagreement, f"{row.disagreement:.2f}"), _number_item(row.false_positives),
                _number_item(row.misses), _number_item(row.class_conflicts),
                _number_item(row.iou_spread, f"{row.iou_spread:.2f}"),
            ])
        self.image_table.sortByColumn(1, Qt.SortOrder.DescendingOrder)
        self.image_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.worst_list.clear()
        for row in comparison.worst(WORST_COUNT):
            item = QListWidgetItem(
                f"{row.disagreement:5.2f}  {row.name}  (FP {row.false_positives}, miss {row.misses}, "
                f"conflicts {row.class_conflicts})"
            )
            item.setData(Qt.ItemDataRole.UserRole, row)
            self.worst_list.addItem(item)

    def _fill_plots(self, plots: list[Plot]) -> None:
        while self.plots_layout.count():
            widget = self.plots_layout.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        for plot in plots:
            pixmap = QPixmap()
            pixmap.loadFromData(plot.png, "PNG")
            heading = QLabel(f"<b>{plot.title}</b>")
            picture = QLabel()
            picture.setPixmap(pixmap)
            self.plots_layout.addWidget(heading)
            self.plots_layout.addWidget(picture)
        self.plots_layout.addStretch()

    # ---- canvases ---------------------------------------------------------------------------------

    def _make_views(self, names: list[str]) -> None:
        while self.grid.count():
            widget = self.grid.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.views, self.captions = [], []
        self.sync = ViewSync(self)
        columns = 2
        for i, name in enumerate(names):
            cell = QWidget()
            cell_layout = QVBoxLayout(cell)
            cell_layout.setContentsMargins(2, 2, 2, 2)
            caption = QLabel(f"<b>{name}</b>")
            view = CompareView()
            cell_layout.addWidget(caption)
            cell_layout.addWidget(view, 1)
            self.grid.addWidget(cell, i // columns, i % columns)
            self.views.append(view)
            self.captions.append(caption)
            self.sync.add(view)

    def show_row(self, row: ImageRow) -> None:
        """Show one image in every run's view, with its ground truth."""
        if self.comparison is None:
            return
        self.current = row
        image = _read_image(self.project, row)
        labels = self.project.labels()
        colors = {label.id: label.color for label in labels}
        names = {label.id: label.name for label in labels}
        truth = self.project.annotations(row.media_id, frame=row.frame, source=self.gt)
        for view, caption, result, errors in zip(self.views, self.captions, self.comparison.results, row.errors,
                                                 strict=True):
            assert result.run is not None
            predictions = self.project.annotations(row.media_id, frame=row.frame, source=result.run.id,
                                                   min_score=self.conf)
            view.show_image(image, ground_truth=truth, predictions=predictions, colors=colors, names=names)
            caption.setText(
                f"<b>{result.pred_name}</b> &nbsp; {row.name} &nbsp; "
                f"<span style='color:#4caf50'>TP {errors.true_positives}</span> &nbsp; "
                f"<span style='color:#e15759'>FP {errors.false_positives} &nbsp; miss {errors.misses} &nbsp; "
                f"wrong class {errors.confusions}</span> &nbsp; (white: ground truth)"
            )
        if self.views:
            self.views[0].fit()  # the others follow
            QTimer.singleShot(0, self.views[0].fit)  # again once new views have their final size

    def _on_table_row(self, current: Any, _previous: Any) -> None:
        if current.isValid():
            row = self.image_model.item(current.row(), 0).data(Qt.ItemDataRole.UserRole + 1)
            self.show_row(row)

    def _on_worst_row(self, index: int) -> None:
        if index >= 0:
            self.show_row(self.worst_list.item(index).data(Qt.ItemDataRole.UserRole))

    def next_worst(self) -> None:
        """Step the worst-images queue to the next image."""
        if self.worst_list.currentRow() + 1 < self.worst_list.count():
            self.worst_list.setCurrentRow(self.worst_list.currentRow() + 1)

    def _open_current(self) -> None:
        """Send the image to the labelling window and bring that window to the front to fix it."""
        if self.current is not None:
            self.open_media.emit(self.current.media_id)
            self.open_frame.emit(self.current.media_id, self.current.frame)
            owner = self.parentWidget()
            if owner is not None:
                owner.window().raise_()
                owner.window().activateWindow()
