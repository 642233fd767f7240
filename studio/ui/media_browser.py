"""The media browser: a filterable list or grid of a project's images and videos.

Built to open 10,000+ files without freezing. The model reports the full row count from one COUNT
query and loads rows in pages of PAGE_SIZE only when the view paints them (a windowed cache of
pages), so the scroll bar is right from the first paint and memory stays flat. Views use uniform item
sizes, so Qt never asks for data of rows it does not draw, and thumbnails are requested only for
drawn rows and made on worker threads (studio.ui.thumbnails).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, get_args

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QIcon, QPainter, QPalette, QPen, QPixmap
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.types import Media, ReviewState
from studio.db import Project
from studio.ui.thumbnails import ThumbnailLoader, ThumbnailRequest

PAGE_SIZE = 64  # rows per query: small enough that loading one page never stalls a paint
MEDIA_ID_ROLE = Qt.ItemDataRole.UserRole + 1
MEDIA_ROLE = Qt.ItemDataRole.UserRole + 2

_REVIEW_STATES: tuple[ReviewState, ...] = get_args(ReviewState)
_LIST_ICON = 40
_GRID_ICON = 96
"""Two or more columns fit the Media dock at its default width (280 px)."""
_GRID_CELL = QSize(_GRID_ICON + 16, _GRID_ICON + 30)
_REVIEW_COLORS: dict[str, str] = {"in_progress": "#edc948", "done": "#59a14f", "rejected": "#e15759"}
_FILTER_DELAY_MS = 200  # typing in the name box re-queries once the user pauses


@dataclass(frozen=True, slots=True)
class MediaFilter:
    """Which media the browser shows; the fields are those of Project.list_media."""

    name_contains: str = ""
    label_id: int | None = None
    unannotated: bool = False
    review_state: ReviewState | None = None

    def query(self) -> dict[str, Any]:
        return {
            "name_contains": self.name_contains or None, "label_id": self.label_id,
            "unannotated": self.unannotated, "review_state": self.review_state,
        }


class MediaListModel(QAbstractListModel):
    """Rows of Project.list_media under a MediaFilter, fetched page by page as they are shown."""

    def __init__(self, thumbnails: ThumbnailLoader, *, max_pages: int = 64, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._thumbnails = thumbnails
        self._project: Project | None = None
        self._filter = MediaFilter()
        self._total = 0
        self._pages: OrderedDict[int, list[Media]] = OrderedDict()
        self._max_pages = max_pages
        self._rows: dict[int, int] = {}  # media id -> row, for the rows of loaded pages
        thumbnails.thumbnail_ready.connect(self._on_thumbnail_ready)

    # ---- state -------------------------------------------------------------------------------------

    @property
    def project(self) -> Project | None:
        return self._project

    @property
    def media_filter(self) -> MediaFilter:
        return self._filter

    def set_project(self, project: Project | None, media_filter: MediaFilter | None = None) -> None:
        self._project = project
        self._thumbnails.clear()
        self.reload(media_filter)

    def set_filter(self, media_filter: MediaFilter) -> None:
        if media_filter != self._filter:
            self.reload(media_filter)

    def reload(self, media_filter: MediaFilter | None = None) -> None:
        """Re-read the count and drop loaded pages (after media, annotations or review states changed)."""
        self.beginResetModel()
        self._filter = media_filter or self._filter
        self._pages.clear()
        self._rows.clear()
        self._total = 0 if self._project is None else self._project.count_media(**self._filter.query())
        self.endResetModel()

    # ---- rows --------------------------------------------------------------------------------------

    def media_at(self, row: int) -> Media | None:
        if not 0 <= row < self._total:
            return None
        page = self._page(row // PAGE_SIZE)
        offset = row % PAGE_SIZE
        return page[offset] if offset < len(page) else None

    def row_of(self, media_id: int) -> int | None:
        """The row showing this media under the current filter, or None.

        Rows are ordered by id, so this is a binary search over pages: a handful of page loads.
        """
        if media_id in self._rows:
            return self._rows[media_id]
        low, high = 0, (self._total - 1) // PAGE_SIZE
        while low <= high and self._total:
            middle = (low + high) // 2
            page = self._page(middle)
            if not page or media_id < page[0].id:
                high = middle - 1
            elif media_id > page[-1].id:
                low = middle + 1
            else:
                return self._rows.get(media_id)
        return None

    def _page(self, number: int) -> list[Media]:
        page = self._pages.get(number)
        if page is not None:
            self._pages.move_to_end(number)
            return page
        assert self._project is not None, "rows exist only with a project"
        page = self._project.list_media(offset=number * PAGE_SIZE, limit=PAGE_SIZE, **self._filter.query())
        self._pages[number] = page
        self._rows.update((media.id, number * PAGE_SIZE + i) for i, media in enumerate(page))
        while len(self._pages) > self._max_pages:
            _, evicted = self._pages.popitem(last=False)
            for media in evicted:
                self._rows.pop(media.id, None)
        return page

    # ---- Qt model interface ------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._total

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        media = self.media_at(index.row()) if index.isValid() else None
        if media is None:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return media.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self._thumbnails.pixmap(self._thumbnail_request(media))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(media)
        if role == MEDIA_ID_ROLE:
            return media.id
        if role == MEDIA_ROLE:
            return media
        return None

    def _thumbnail_request(self, media: Media) -> ThumbnailRequest:
        assert self._project is not None
        return ThumbnailRequest(media.id, self._project.resolve(media), media.mtime_ns, media.kind,
                                max(media.width, media.height))

    def _tooltip(self, media: Media) -> str:
        lines = [media.path, f"{media.width} × {media.height}"]
        if media.kind == "video":
            lines.append(f"{media.frame_count} frames" + (f" at {media.fps:g} fps" if media.fps else ""))
        lines.append(f"review: {media.review_state.replace('_', ' ')}")
        if media.status != "ok":
            lines.append(f"file {media.status}")
        if failure := self._thumbnails.failure(media.id):
            lines.append(failure)
        return "\n".join(lines)

    def _on_thumbnail_ready(self, media_id: int) -> None:
        row = self._rows.get(media_id)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


class _MediaDelegate(QStyledItemDelegate):
    """Paints a thumbnail fitted in a fixed square, the elided name and badges (video, review state).

    Painted by hand because the default delegate draws a QPixmap at its own size and puts the text
    right under it, so thumbnails of different aspect ratios would leave names at ragged heights.
    """

    def __init__(self, parent: QWidget, *, grid: bool) -> None:
        super().__init__(parent)
        self.grid = grid

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return _GRID_CELL if self.grid else QSize(option.rect.width(), _LIST_ICON + 6)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        media: Media | None = index.data(MEDIA_ROLE)
        if media is None:
            return
        self.initStyleOption(option, index)
        widget = option.widget
        style = widget.style() if widget is not None else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
        cell = option.rect.adjusted(3, 3, -3, -3)
        if self.grid:
            box = QRect(cell.x() + (cell.width() - _GRID_ICON) // 2, cell.y(), _GRID_ICON, _GRID_ICON)
            text_rect = QRect(cell.x(), box.bottom() + 4, cell.width(), cell.bottom() - box.bottom() - 4)
            alignment = Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop
        else:
            box = QRect(cell.x(), cell.y(), _LIST_ICON, _LIST_ICON)
            text_rect = QRect(box.right() + 8, cell.y(), cell.right() - box.right() - 8, cell.height())
            alignment = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        pixmap: QPixmap = index.data(Qt.ItemDataRole.DecorationRole)
        target = _fit(pixmap.size(), box)
        painter.drawPixmap(target, pixmap)
        self._draw_badges(painter, media, target, option)
        selected = option.state & QStyle.StateFlag.State_Selected
        painter.setPen(option.palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text))
        name = option.fontMetrics.elidedText(media.name, Qt.TextElideMode.ElideMiddle, text_rect.width())
        painter.drawText(text_rect, int(alignment), name)
        painter.restore()

    def _draw_badges(self, painter: QPainter, media: Media, target: QRect, option: QStyleOptionViewItem) -> None:
        if media.kind == "video" and self.grid:
            text = f"▶ {media.frame_count}"
            metrics = option.fontMetrics
            badge = QRect(target.left() + 3, target.bottom() - metrics.height() - 3,
                          metrics.horizontalAdvance(text) + 8, metrics.height() + 1)
            painter.fillRect(badge, QColor(0, 0, 0, 160))
            painter.setPen(QColor("white"))
            painter.drawText(badge, int(Qt.AlignmentFlag.AlignCenter), text)
        if (color := _REVIEW_COLORS.get(media.review_state)) is not None:
            painter.setPen(QPen(QColor("white"), 1.5))
            painter.setBrush(QColor(color))
            size = 10 if self.grid else 8
            painter.drawEllipse(QRect(target.right() - size - 3, target.top() + 3, size, size))


def _fit(size: QSize, box: QRect) -> QRect:
    """The largest rectangle of `size`'s aspect ratio centred in `box`."""
    scaled = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(box.x() + (box.width() - scaled.width()) // 2, box.y() + (box.height() - scaled.height()) // 2,
                 scaled.width(), scaled.height())


class MediaBrowser(QWidget):
    """Filter row plus a virtualized list/grid of media; emits `media_activated(media_id)` to open one."""

    media_activated = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, thumbnails: ThumbnailLoader | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails or ThumbnailLoader(parent=self)
        self.model = MediaListModel(self.thumbnails, parent=self)
        self._quiet = False  # True while the browser itself moves the selection (no activation)
        self._last_emitted: int | None = None

        self.name_filter = QLineEdit(placeholderText="Filter by name", clearButtonEnabled=True)
        self.label_filter = QComboBox(toolTip="Only media with a human annotation of this label")
        self.unannotated_filter = QCheckBox("No annotations", toolTip="Only media without human annotations")
        self.review_filter = QComboBox(toolTip="Only media in this review state")
        self.review_filter.addItem("Any state", None)
        for state in _REVIEW_STATES:
            self.review_filter.addItem(state.replace("_", " ").capitalize(), state)
        self.grid_button = QToolButton(text="Grid", checkable=True, toolTip="Show thumbnails in a grid")
        self.count_label = QLabel()

        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setUniformItemSizes(True)  # Qt then never sizes (or fetches) rows it does not draw
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.view.setVerticalScrollMode(QListView.ScrollMode.ScrollPerPixel)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)  # lay out huge lists in slices between events
        self.view.setBatchSize(2000)
        self._list_delegate = _MediaDelegate(self.view, grid=False)
        self._grid_delegate = _MediaDelegate(self.view, grid=True)
        self.set_grid_mode(False)

        self._name_timer = QTimer(self, singleShot=True, interval=_FILTER_DELAY_MS)
        self._retain_timer = QTimer(self, singleShot=True, interval=60)

        filters = QHBoxLayout()
        filters.setContentsMargins(0, 0, 0, 0)
        filters.addWidget(self.name_filter, 1)
        filters.addWidget(self.grid_button)
        options = QHBoxLayout()
        options.setContentsMargins(0, 0, 0, 0)
        options.addWidget(self.label_filter, 1)
        options.addWidget(self.review_filter, 1)
        options.addWidget(self.unannotated_filter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(filters)
        layout.addLayout(options)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.count_label)

        self.name_filter.textChanged.connect(self._name_timer.start)
        self._name_timer.timeout.connect(self._apply_filters)
        self.label_filter.currentIndexChanged.connect(self._apply_filters)
        self.review_filter.currentIndexChanged.connect(self._apply_filters)
        self.unannotated_filter.toggled.connect(self._apply_filters)
        self.grid_button.toggled.connect(self.set_grid_mode)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.view.activated.connect(self._on_activated)
        self.view.verticalScrollBar().valueChanged.connect(lambda _value: self._retain_timer.start())
        self._retain_timer.timeout.connect(self._retain_visible_thumbnails)
        self.model.modelReset.connect(self._update_count)
        self._update_count()

    # ---- public API --------------------------------------------------------------------------------

    def set_project(self, project: Project | None) -> None:
        """Show the media of `project` (None empties the browser)."""
        self._last_emitted = None
        self._reload_labels(project)
        self.model.set_project(project, self._filter_from_widgets())

    def refresh(self) -> None:
        """Re-read labels and media (after adds, annotation edits or review changes), keeping the selection."""
        current = self.current_media_id()
        self._reload_labels(self.model.project)
        self.model.reload(self._filter_from_widgets())
        if current is not None:
            self.select_media(current)

    def select_media(self, media_id: int) -> bool:
        """Select and scroll to a media item without emitting media_activated; False if it is filtered out."""
        row = self.model.row_of(media_id)
        if row is None:
            return False
        self._set_current_row(row, quiet=True)
        self._last_emitted = media_id
        return True

    def select_next(self) -> None:
        """Open the next media (D in the labelling window)."""
        self._step(+1)

    def select_previous(self) -> None:
        """Open the previous media (A in the labelling window)."""
        self._step(-1)

    def following(self, media_id: int, count: int) -> list[Media]:
        """Up to `count` media listed after `media_id` (in the current filter): what D opens next."""
        row = self.model.row_of(media_id)
        if row is None:
            return []
        found = (self.model.media_at(row + step) for step in range(1, count + 1))
        return [media for media in found if media is not None]

    def current_media_id(self) -> int | None:
        index = self.view.currentIndex()
        return index.data(MEDIA_ID_ROLE) if index.isValid() else None

    def set_grid_mode(self, grid: bool) -> None:
        """Thumbnails in a wrapping grid, or a compact list with small thumbnails."""
        # ListMode with wrapping rather than IconMode: IconMode keeps a free-form item position per row,
        # which costs seconds on 10,000 rows; ListMode with uniform sizes lays out in O(visible).
        self.view.setFlow(QListView.Flow.LeftToRight if grid else QListView.Flow.TopToBottom)
        self.view.setWrapping(grid)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setIconSize(QSize(_GRID_ICON, _GRID_ICON) if grid else QSize(_LIST_ICON, _LIST_ICON))
        self.view.setGridSize(_GRID_CELL if grid else QSize())
        self.view.setSpacing(0 if grid else 1)
        self.view.setItemDelegate(self._grid_delegate if grid else self._list_delegate)
        if self.grid_button.isChecked() != grid:
            self.grid_button.setChecked(grid)
        current = self.view.currentIndex()
        if current.isValid():
            self.view.scrollTo(current)

    # ---- internals ---------------------------------------------------------------------------------

    def _reload_labels(self, project: Project | None) -> None:
        selected = self.label_filter.currentData()
        self.label_filter.blockSignals(True)
        try:
            self.label_filter.clear()
            self.label_filter.addItem("All labels", None)
            for label in project.labels() if project is not None else []:
                self.label_filter.addItem(_swatch(label.color), label.name, label.id)
            self.label_filter.setCurrentIndex(max(0, self.label_filter.findData(selected)))
        finally:
            self.label_filter.blockSignals(False)

    def _filter_from_widgets(self) -> MediaFilter:
        return MediaFilter(
            name_contains=self.name_filter.text().strip(),
            label_id=self.label_filter.currentData(),
            unannotated=self.unannotated_filter.isChecked(),
            review_state=self.review_filter.currentData(),
        )

    def _apply_filters(self) -> None:
        # the media shown on the canvas stays current, also after a filter that had hidden it
        current = self.current_media_id() if self.current_media_id() is not None else self._last_emitted
        self.model.set_filter(self._filter_from_widgets())
        if current is not None:
            self.select_media(current)

    def _update_count(self) -> None:
        project = self.model.project
        if project is None:
            self.count_label.setText("No project")
            return
        shown = self.model.rowCount()
        if self.model.media_filter == MediaFilter():
            self.count_label.setText(f"{shown:,} media")
        elif shown == 0:
            self.count_label.setText(f"No media match these filters (of {project.count_media():,})")
        else:
            self.count_label.setText(f"{shown:,} of {project.count_media():,} media")

    def _step(self, delta: int) -> None:
        rows = self.model.rowCount()
        if not rows:
            return
        current = self.view.currentIndex()
        row = 0 if not current.isValid() else min(max(current.row() + delta, 0), rows - 1)
        if current.isValid() and row == current.row():
            return
        self._set_current_row(row, quiet=False)

    def _set_current_row(self, row: int, *, quiet: bool) -> None:
        index = self.model.index(row)
        self._quiet = quiet
        try:
            self.view.setCurrentIndex(index)
        finally:
            self._quiet = False
        self.view.scrollTo(index)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        media_id = current.data(MEDIA_ID_ROLE) if current.isValid() else None
        if self._quiet or media_id is None or media_id == self._last_emitted:
            return
        self._last_emitted = media_id
        self.media_activated.emit(media_id)

    def _on_activated(self, index: QModelIndex) -> None:
        media_id = index.data(MEDIA_ID_ROLE)
        if media_id is not None:
            self._last_emitted = media_id
            self.media_activated.emit(media_id)

    def _retain_visible_thumbnails(self) -> None:
        """Drop queued thumbnails of rows that scrolled out of sight, so the visible ones come first."""
        self.thumbnails.retain(self._visible_media_ids())

    def _visible_media_ids(self) -> list[int]:
        viewport = self.view.viewport().rect()
        first = self.view.indexAt(QPoint(2, 2))
        if not first.isValid():
            return []
        last = self.view.indexAt(viewport.bottomRight() - QPoint(2, 2))
        if not last.isValid():
            last = self.view.indexAt(QPoint(2, viewport.bottom() - 2))
        end = last.row() if last.isValid() else self.model.rowCount() - 1
        columns = max(1, viewport.width() // _GRID_CELL.width()) if self.view.isWrapping() else 1
        end = min(end + columns, self.model.rowCount() - 1)  # the partly visible last grid row
        ids = (self.model.index(row).data(MEDIA_ID_ROLE) for row in range(first.row(), end + 1))
        return [media_id for media_id in ids if media_id is not None]


def _swatch(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)
