"""Read-only image views for comparing runs: one per run, zoom and pan moving together.

The labelling Canvas carries drawing tools and edit signals a comparison must not offer, so this is a
small QGraphicsView that reuses the canvas' AnnotationItem to draw shapes exactly as the labelling
canvas does.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QObject, QPointF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView, QWidget

from studio.core.types import Annotation
from studio.ui.canvas import AnnotationItem, Style

GROUND_TRUTH_COLOR = "#ffffff"
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0


class CompareView(QGraphicsView):
    """An image with ground truth (white outlines) and one run's predictions (label colours, scores)."""

    view_changed = Signal()
    """The zoom or the visible part changed (by the user or by code)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setBackgroundBrush(QColor("#202124"))
        self.pixmap_item = QGraphicsPixmapItem()
        self.scene().addItem(self.pixmap_item)
        self.truth_style, self.pred_style = Style(fill_opacity=0.0), Style(fill_opacity=0.2)
        self.shape_items: list[AnnotationItem | QGraphicsSimpleTextItem] = []
        self.horizontalScrollBar().valueChanged.connect(self.view_changed)
        self.verticalScrollBar().valueChanged.connect(self.view_changed)

    def show_image(
        self,
        image: QImage,
        *,
        ground_truth: Sequence[Annotation],
        predictions: Sequence[Annotation],
        colors: dict[int, str],
        names: dict[int, str],
    ) -> None:
        for item in self.shape_items:
            self.scene().removeItem(item)
        self.shape_items = []
        self.pixmap_item.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(0, 0, image.width(), image.height())
        for ann in ground_truth:
            self._add(AnnotationItem(ann, GROUND_TRUTH_COLOR, self.truth_style))
        for ann in predictions:
            color = colors.get(ann.label_id, "#ff00ff")
            self._add(AnnotationItem(ann, color, self.pred_style))
            self._add_caption(ann, f"{names.get(ann.label_id, '?')} {ann.score or 1.0:.2f}", color)

    def _add(self, item: AnnotationItem | QGraphicsSimpleTextItem) -> None:
        self.scene().addItem(item)
        self.shape_items.append(item)

    def _add_caption(self, ann: Annotation, text: str, color: str) -> None:
        x, y, _w, _h = ann.shape.bbox()
        caption = QGraphicsSimpleTextItem(text)
        caption.setBrush(QColor(color))
        font = QFont()
        font.setPointSizeF(8)
        font.setBold(True)
        caption.setFont(font)
        caption.setPos(QPointF(x, y))
        caption.setZValue(3)
        # stays readable at any zoom; drawn just above the shape's corner
        caption.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations)
        caption.setTransform(caption.transform().translate(0, -caption.boundingRect().height()))
        self._add(caption)

    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        factor = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom() * factor)) / self.zoom()
        self.scale(factor, factor)
        self.view_changed.emit()

    def fit(self) -> None:
        self.fitInView(self.pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
        self.view_changed.emit()

    def center(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom_by(1.25 ** (event.angleDelta().y() / 120.0))


class ViewSync(QObject):
    """Keeps a group of views on the same zoom and centre: whatever moves one moves the others."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.views: list[CompareView] = []
        self._syncing = False

    def add(self, view: CompareView) -> None:
        self.views.append(view)
        view.view_changed.connect(lambda: self._follow(view))

    def _follow(self, leader: CompareView) -> None:
        if self._syncing:
            return
        self._syncing = True  # the followers' own view_changed must not echo back
        try:
            transform, center = leader.transform(), leader.center()
            for view in self.views:
                if view is not leader:
                    view.setTransform(transform)
                    view.centerOn(center)
        finally:
            self._syncing = False
