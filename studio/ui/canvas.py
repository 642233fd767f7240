"""The image canvas: a QGraphicsView showing one image (or video frame) and its annotations, and the
drawing/editing tools.

The canvas never touches the project. It announces intent through signals (`shape_drawn`,
`shape_edited`, `selection_changed`) and the main window turns them into undoable commands; the
editing rules themselves live in the Qt-free `studio.session.shape_edit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QStyleOptionGraphicsItem,
    QWidget,
)

from studio.core.geometry import clip_to_image, decode_mask, encode_mask
from studio.core.shapes import Box, Mask, Point, Points, Polygon, Polyline, RotatedBox, Shape
from studio.core.types import Annotation
from studio.session import shape_edit
from studio.session.model import Tool


class ClickTool(Protocol):
    """A tool the canvas hosts in "segment" mode (studio.ui.sam_tool.SamTool): it gets the mouse in image
    pixels and the keys, and the window paints its preview with `show_prompts`."""

    def press(self, x: float, y: float, *, button: Qt.MouseButton, modifiers: Qt.KeyboardModifier) -> None: ...

    def release(self, x: float, y: float) -> None: ...

    def handle_key(self, event: QKeyEvent) -> bool: ...

HIT_TOLERANCE_PX = 6.0
"""How close (in screen pixels) a click must be to a vertex or line to grab it, whatever the zoom."""
MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
DRAFT_COLOR = QColor("#ffd400")


def rgb_array(image: QImage) -> np.ndarray:
    """The pixels of a QImage as an RGB uint8 array (H, W, 3), copied."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = rgb.width(), rgb.height()
    return np.frombuffer(rgb.constBits(), np.uint8).reshape(h, rgb.bytesPerLine())[:, : 3 * w].reshape(h, w, 3).copy()


def adjusted(image: QImage, *, brightness: int, contrast: int) -> QImage:
    """The image with brightness (-100..100, added) and contrast (-100..100, a gain) applied for viewing."""
    if brightness == 0 and contrast == 0:
        return image
    array = rgb_array(image)
    h, w = array.shape[:2]
    gain = 1.0 + contrast / 100.0
    # contrast pivots around mid-grey so the picture does not darken as contrast grows
    out = cv2.convertScaleAbs(array, alpha=gain, beta=128 * (1 - gain) + brightness * 1.28)
    out = np.ascontiguousarray(out)
    return QImage(out.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _mask_image(mask: np.ndarray, color: QColor) -> QImage:
    """A mask as a transparent ARGB image painted in `color` where it is set."""
    h, w = mask.shape
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[mask] = (color.blue(), color.green(), color.red(), 255)  # ARGB32 is BGRA in memory
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_ARGB32).copy()


def _polygon(points: tuple[Point, ...] | list[Point]) -> QPolygonF:
    return QPolygonF([QPointF(x, y) for x, y in points])


@dataclass
class Style:
    """How annotations are drawn; shared by all items and changed from the View menu."""

    fill_opacity: float = 0.3
    show_labels: bool = True
    """Write each shape's label name at its top-left corner (View > Show label names)."""


def _mask_outline(mask: np.ndarray) -> QPainterPath:
    """The borders of a mask's regions (holes too), so a faint mask still shows where it ends."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    path = QPainterPath()
    for contour in contours:
        path.addPolygon(_polygon([(float(x), float(y)) for x, y in contour[:, 0, :]]))
        path.closeSubpath()
    return path


class AnnotationItem(QGraphicsItem):
    """One annotation drawn in its label's colour with its outline; a selected one is highlighted and
    shows its handles."""

    def __init__(self, annotation: Annotation, color: str, style: Style, text: str = "") -> None:
        super().__init__()
        self.shape_ = annotation.shape
        self.color = QColor(color)
        self.style = style
        self.text = text
        self.selected = False
        self._mask_cache: QImage | None = None
        self._outline_cache: QPainterPath | None = None
        self.setZValue(1)

    def set_shape(self, shape: Shape) -> None:
        """Show an edit in progress (a drag) before it is committed."""
        self.prepareGeometryChange()
        self.shape_ = shape
        self._mask_cache = None
        self._outline_cache = None
        self.update()

    def boundingRect(self) -> QRectF:
        if isinstance(self.shape_, Mask):
            h, w = self.shape_.size
            return QRectF(0, 0, w, h)
        x, y, w, h = self.shape_.bbox()
        pad = 12.0 / max(self._scale(), 1e-3)  # room for handles and thick outlines at any zoom
        above = 3 * pad if self.text else pad  # and for the label tag above the shape
        return QRectF(x - pad, y - above, w + 2 * pad, h + pad + above)

    def _scale(self) -> float:
        views = self.scene().views() if self.scene() is not None else []
        return views[0].transform().m11() if views else 1.0

    def paint(self, painter: QPainter, _option: QStyleOptionGraphicsItem, _widget: QWidget | None = None) -> None:
        shape = self.shape_
        pen = QPen(self.color, 3.0 if self.selected else 2.0)
        pen.setCosmetic(True)  # outlines keep their screen width at every zoom
        fill = QColor(self.color)
        fill.setAlphaF(min(1.0, self.style.fill_opacity + (0.15 if self.selected else 0.0)))
        painter.setPen(pen)
        painter.setBrush(QBrush(fill))
        if isinstance(shape, Box):
            painter.drawRect(QRectF(shape.x1, shape.y1, shape.width, shape.height))
        elif isinstance(shape, Polygon):
            path = QPainterPath()
            for ring in shape.parts:
                path.addPolygon(_polygon(ring))
                path.closeSubpath()
            painter.drawPath(path)
        elif isinstance(shape, RotatedBox):
            painter.drawPolygon(_polygon(list(shape.corners())))
        elif isinstance(shape, Polyline):
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolyline(_polygon(shape.points))
        elif isinstance(shape, Mask):
            if self._mask_cache is None:
                pixels = decode_mask(shape)
                self._mask_cache = _mask_image(pixels, self.color)
                self._outline_cache = _mask_outline(pixels)
            painter.setOpacity(max(0.35, fill.alphaF()))
            painter.drawImage(0, 0, self._mask_cache)
            painter.setOpacity(1.0)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPath(self._outline_cache)
        if self.selected and not isinstance(shape, Points):
            self._paint_highlight(painter, shape)
        if isinstance(shape, Points) or self.selected:
            self._paint_handles(painter, shape)
        if self.style.show_labels and self.text:
            self._paint_text(painter, shape)

    def _paint_highlight(self, painter: QPainter, shape: Shape) -> None:
        """A white dashed line over the outline: selected and unselected look different at a glance."""
        pen = QPen(QColor("white"), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if isinstance(shape, Mask) and self._outline_cache is not None:
            painter.drawPath(self._outline_cache)
        else:
            x, y, w, h = shape.bbox()
            painter.drawRect(QRectF(x, y, w, h))

    def _paint_text(self, painter: QPainter, shape: Shape) -> None:
        """The label name on a tag of the shape's colour, at a constant screen size."""
        x, y, _w, _h = shape.bbox()
        anchor = painter.worldTransform().map(QPointF(x, y))
        painter.save()
        painter.resetTransform()
        metrics = painter.fontMetrics()
        tag = QRectF(anchor.x(), anchor.y() - metrics.height() - 2, metrics.horizontalAdvance(self.text) + 6, metrics.height() + 2)
        painter.fillRect(tag, self.color)
        painter.setPen(QColor("black") if self.color.lightnessF() > 0.55 else QColor("white"))
        painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, self.text)
        painter.restore()

    def _paint_handles(self, painter: QPainter, shape: Shape) -> None:
        radius = 4.0 / max(self._scale(), 1e-3)
        outline = QPen(QColor("white"), 1.5)
        outline.setCosmetic(True)
        painter.setPen(outline)
        painter.setBrush(QBrush(self.color))
        for _handle, (x, y) in shape_edit.handles(shape):
            painter.drawEllipse(QPointF(x, y), radius, radius)


class DraftItem(QGraphicsItem):
    """What is being drawn: a box being dragged, polygon vertices so far, a brush stroke."""

    def __init__(self) -> None:
        super().__init__()
        self.points: list[Point] = []
        self.closed = False
        self.cursor: Point | None = None
        self.mask_image: QImage | None = None
        self.clicks: list[tuple[float, float, bool]] = []  # segmentation prompts: (x, y, positive)
        self.image_rect = QRectF()
        self.setZValue(2)

    def boundingRect(self) -> QRectF:
        return self.image_rect.adjusted(-1e4, -1e4, 1e4, 1e4)

    def paint(self, painter: QPainter, _option: QStyleOptionGraphicsItem, _widget: QWidget | None = None) -> None:
        if self.mask_image is not None:
            painter.setOpacity(0.5)
            painter.drawImage(0, 0, self.mask_image)
            painter.setOpacity(1.0)
        scale = painter.worldTransform().m11() or 1.0
        for x, y, positive in self.clicks:
            outline = QPen(QColor("white"), 1.5)
            outline.setCosmetic(True)
            painter.setPen(outline)
            painter.setBrush(QBrush(QColor("#2ecc40" if positive else "#ff4136")))
            painter.drawEllipse(QPointF(x, y), 5 / scale, 5 / scale)
        if not self.points:
            return
        pen = QPen(DRAFT_COLOR, 2.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.closed and len(self.points) == 2:  # a box by two corners
            (x1, y1), (x2, y2) = self.points
            painter.drawRect(QRectF(QPointF(x1, y1), QPointF(x2, y2)).normalized())
            return
        trail = self.points + ([self.cursor] if self.cursor is not None else [])
        painter.drawPolyline(_polygon(trail))
        painter.setBrush(QBrush(DRAFT_COLOR))
        for x, y in self.points:
            painter.drawEllipse(QPointF(x, y), 3.5 / scale, 3.5 / scale)


class Canvas(QGraphicsView):
    """Shows an image with its annotations and runs the drawing and editing tools."""

    shape_drawn = Signal(object)
    """A new shape was drawn (a studio.core Shape, clipped to the image)."""
    shape_edited = Signal(int, object)
    """(annotation id, new shape) after a drag, vertex edit or brush stroke on an existing annotation."""
    selection_changed = Signal(list)
    """Ids of the selected annotations."""
    cursor_moved = Signal(float, float)
    zoom_changed = Signal(float)
    """Screen pixels per image pixel (see screen_zoom)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setRenderHint(QPainter.RenderHint.Antialiasing)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setBackgroundBrush(self.palette().dark())
        self.pixmap_item = QGraphicsPixmapItem()
        self.pixmap_item.setZValue(0)
        self.scene().addItem(self.pixmap_item)
        self.draft = DraftItem()
        self.scene().addItem(self.draft)
        self.style_ = Style()
        self.items_by_id: dict[int, AnnotationItem] = {}
        self.tool: Tool = "select"
        self.brush_radius = 8.0
        self.image: QImage | None = None
        self.image_size: tuple[int, int] = (0, 0)  # (height, width)
        self.brightness = 0
        self.contrast = 0
        self.shapes_visible = True
        self._selected: list[int] = []
        self._drag: dict[str, Any] | None = None
        self._pan_from: QPointF | None = None
        self._space_down = False
        self._cursor: QPointF | None = None
        self._brush_mask: np.ndarray | None = None
        self._brush_target: int | None = None
        self._last_brush_point: Point | None = None
        self.click_tool: ClickTool | None = None
        self.fitted = False

    # ---- content -----------------------------------------------------------------------------------

    def set_image(self, image: QImage) -> None:
        """Show a new image; the view is fitted if the size changed, else kept (video frames)."""
        new_size = (image.height(), image.width())
        resized = new_size != self.image_size
        self.image = image
        self.image_size = new_size
        self.cancel_draft()
        self._refresh_pixmap()
        self.scene().setSceneRect(QRectF(0, 0, image.width(), image.height()))
        self.draft.image_rect = QRectF(0, 0, image.width(), image.height())
        if resized:
            self.fit()

    def _refresh_pixmap(self) -> None:
        if self.image is None:
            return
        shown = adjusted(self.image, brightness=self.brightness, contrast=self.contrast)
        self.pixmap_item.setPixmap(QPixmap.fromImage(shown))

    def set_adjustment(self, *, brightness: int, contrast: int) -> None:
        self.brightness, self.contrast = brightness, contrast
        self._refresh_pixmap()

    def set_annotations(
        self,
        annotations: list[Annotation],
        colors: dict[int, str],
        run_colors: dict[int, str] | None = None,
        names: dict[int, str] | None = None,
    ) -> None:
        """Replace the shown annotations (already filtered by label/source visibility); keeps selection.

        Human shapes take their label's colour (`colors` by label id); predictions their run's, when
        `run_colors` (by run id) names one, so two models are told apart at a glance. `names` (by label id)
        are written on the shapes while `style.show_labels` is on.
        """
        for item in self.items_by_id.values():
            self.scene().removeItem(item)
        self.items_by_id = {}
        for ann in annotations:
            assert ann.id is not None
            color = (run_colors or {}).get(ann.run_id) if ann.run_id is not None else None
            text = (names or {}).get(ann.label_id, "")
            item = AnnotationItem(ann, color or colors.get(ann.label_id, "#ff00ff"), self.style_, text)
            item.setVisible(self.shapes_visible)
            self.items_by_id[ann.id] = item
            self.scene().addItem(item)
        kept = [i for i in self._selected if i in self.items_by_id]
        self._apply_selection(kept, emit=kept != self._selected)

    def set_fill_opacity(self, opacity: float) -> None:
        self.style_.fill_opacity = opacity
        self.viewport().update()

    def set_show_labels(self, show: bool) -> None:
        self.style_.show_labels = show
        for item in self.items_by_id.values():
            item.prepareGeometryChange()
        self.viewport().update()

    def set_shapes_visible(self, visible: bool) -> None:
        self.shapes_visible = visible
        for item in self.items_by_id.values():
            item.setVisible(visible)

    def set_tool(self, tool: Tool) -> None:
        self.cancel_draft()
        self.tool = tool
        self._restore_cursor()
        self.viewport().update()

    def _restore_cursor(self) -> None:
        self.setCursor(Qt.CursorShape.ArrowCursor if self.tool == "select" else Qt.CursorShape.CrossCursor)

    # ---- selection ---------------------------------------------------------------------------------

    def selected_ids(self) -> list[int]:
        return list(self._selected)

    def select(self, annotation_ids: list[int]) -> None:
        self._apply_selection([i for i in annotation_ids if i in self.items_by_id], emit=True)

    def _apply_selection(self, annotation_ids: list[int], *, emit: bool) -> None:
        self._selected = annotation_ids
        for ann_id, item in self.items_by_id.items():
            item.selected = ann_id in annotation_ids
            item.setZValue(1.5 if item.selected else 1)
            item.update()
        if emit:
            self.selection_changed.emit(list(annotation_ids))

    def _hit(self, point: Point) -> int | None:
        """The annotation under a click: the smallest that contains it, so nested shapes stay reachable."""
        tolerance = self._tolerance()
        hits = [
            (shape_area(item.shape_), ann_id)
            for ann_id, item in self.items_by_id.items()
            if item.isVisible() and shape_edit.contains(item.shape_, point[0], point[1], tolerance)
        ]
        return min(hits)[1] if hits else None

    # ---- view --------------------------------------------------------------------------------------

    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float) -> None:
        self.fitted = False
        factor = min(MAX_ZOOM, max(MIN_ZOOM, factor))
        self.setTransform(self.transform().fromScale(factor, factor))
        self._zoomed()

    def fit(self) -> None:
        """Show the whole image, and keep it fitted as the canvas is resized until the person zooms."""
        self.fitted = True
        if self.image is not None:
            self.fitInView(self.pixmap_item, Qt.AspectRatioMode.KeepAspectRatio)
            self._zoomed()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Docks settle after the first image is shown: a fitted image stays fitted, not at 97 %."""
        super().resizeEvent(event)
        if self.fitted:
            self.fit()

    def screen_zoom(self) -> float:
        """Screen pixels per image pixel: the zoom a person sees (on a 150 % display, 1:1 is zoom 1/1.5)."""
        return self.zoom() * self.devicePixelRatioF()

    def actual_size(self) -> None:
        """One image pixel on one screen pixel, also on high-DPI displays."""
        self.set_zoom(1.0 / self.devicePixelRatioF())

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom() * factor)

    def _zoomed(self) -> None:
        # crisp pixels when magnified (labellers count pixels); smooth when shrunk, to avoid aliasing
        magnified = self.screen_zoom() >= 1.0 - 1e-6
        mode = Qt.TransformationMode.FastTransformation if magnified else Qt.TransformationMode.SmoothTransformation
        self.pixmap_item.setTransformationMode(mode)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not magnified)
        self.zoom_changed.emit(self.screen_zoom())

    def view_state(self) -> dict[str, float]:
        center = self.mapToScene(self.viewport().rect().center())
        return {"zoom": self.zoom(), "x": center.x(), "y": center.y(), "fit": float(self.fitted)}

    def restore_view(self, state: dict[str, float]) -> None:
        if state.get("fit"):
            self.fit()
            return
        self.set_zoom(float(state["zoom"]))
        self.centerOn(QPointF(float(state["x"]), float(state["y"])))

    def _tolerance(self) -> float:
        return HIT_TOLERANCE_PX / max(self.zoom(), 1e-6)

    # ---- drawing -----------------------------------------------------------------------------------

    def show_prompts(
        self, mask: np.ndarray | None, clicks: list[tuple[float, float, bool]], box: Box | None = None
    ) -> None:
        """Paint a segmentation preview (bool mask (H, W) or None), its clicks and box prompt over the image."""
        self.draft.mask_image = None if mask is None else _mask_image(mask, QColor("#2ecc40"))
        self.draft.clicks = clicks
        self.draft.points, self.draft.closed = ([(box.x1, box.y1), (box.x2, box.y2)], True) if box else ([], False)
        self.draft.update()

    def cancel_draft(self) -> None:
        self.draft.clicks = []
        self.draft.points = []
        self.draft.closed = False
        self.draft.mask_image = None
        self._drag = None
        self._brush_mask = None
        self.draft.update()

    def finish_draft(self) -> bool:
        """Finish the polygon or polyline being drawn; False if there is none (or too few points)."""
        points = list(self.draft.points)
        needed = 3 if self.tool == "polygon" else 2
        if self.tool not in ("polygon", "polyline") or len(points) < needed:
            return False
        self.cancel_draft()
        shape: Shape = Polygon([points]) if self.tool == "polygon" else Polyline(points)
        self.shape_drawn.emit(clip_to_image(shape, self.image_size))
        return True

    def is_drafting(self) -> bool:
        return bool(self.draft.points) or self._brush_mask is not None

    def _scene_point(self, event: QMouseEvent) -> Point:
        p = self.mapToScene(event.position().toPoint())
        return (p.x(), p.y())

    def _inside(self, point: Point) -> Point:
        h, w = self.image_size
        return (min(max(point[0], 0.0), float(w)), min(max(point[1], 0.0), float(h)))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.image is None:
            return
        panning = event.button() == Qt.MouseButton.MiddleButton or (
            self._space_down and event.button() == Qt.MouseButton.LeftButton
        )
        if panning:
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        point = self._inside(self._scene_point(event))
        if self.tool == "segment":  # right clicks too: they are negative prompts
            if self.click_tool is not None:
                self.click_tool.press(point[0], point[1], button=event.button(), modifiers=event.modifiers())
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self.tool == "select":
            self._press_select(point, event.modifiers())
        elif self.tool in ("box", "rotated_box"):
            self.draft.points, self.draft.closed = [point, point], True
        elif self.tool in ("polygon", "polyline"):
            self._press_polyline(point)
        elif self.tool == "points":
            self.shape_drawn.emit(Points([point]))
        else:
            self._press_brush(point)
        self.draft.update()

    def _press_select(self, point: Point, modifiers: Qt.KeyboardModifier) -> None:
        tolerance = self._tolerance()
        if len(self._selected) == 1:
            ann_id = self._selected[0]
            shape = self.items_by_id[ann_id].shape_
            handle = shape_edit.handle_at(shape, point[0], point[1], tolerance)
            if handle is not None and modifiers & Qt.KeyboardModifier.AltModifier:
                edited = shape_edit.delete_vertex(shape, handle)
                if edited is not None:
                    self.shape_edited.emit(ann_id, edited)
                return
            if handle is None and modifiers & Qt.KeyboardModifier.ShiftModifier:
                edited = shape_edit.insert_vertex(shape, point[0], point[1], tolerance)
                if edited is not None:
                    self.shape_edited.emit(ann_id, edited)
                    return
            if handle is not None:
                self._drag = {"id": ann_id, "handle": handle, "start": point, "shape": shape}
                return
        hit = self._hit(point)
        self._apply_selection([] if hit is None else [hit], emit=True)
        if hit is not None:
            self._drag = {"id": hit, "handle": None, "start": point, "shape": self.items_by_id[hit].shape_}

    def _press_polyline(self, point: Point) -> None:
        points = self.draft.points
        near_first = points and math.dist(points[0], point) <= self._tolerance() * 1.5
        if self.tool == "polygon" and len(points) >= 3 and near_first:
            self.finish_draft()
            return
        points.append(point)
        self.draft.cursor = point

    def _press_brush(self, point: Point) -> None:
        target = self._selected[0] if len(self._selected) == 1 else None
        target_shape = self.items_by_id[target].shape_ if target is not None else None
        if isinstance(target_shape, Mask) and tuple(target_shape.size) == self.image_size:
            # OpenCV draws only into C-ordered arrays; pycocotools decodes in Fortran order
            self._brush_mask = np.ascontiguousarray(decode_mask(target_shape), dtype=np.uint8)
            self._brush_target = target
        elif self.tool == "eraser":
            return  # erasing needs a selected mask
        else:
            self._brush_mask = np.zeros(self.image_size, np.uint8)
            self._brush_target = None
        self._last_brush_point = point
        self.draft.mask_image = _mask_image(self._brush_mask.astype(bool), DRAFT_COLOR)
        self._stroke(point)

    def _stroke(self, point: Point) -> None:
        """Paint into the mask, then refresh only the patch of the preview the segment touched: converting
        the whole mask on every mouse move would lag on large photographs."""
        assert self._brush_mask is not None and self._last_brush_point is not None
        assert self.draft.mask_image is not None
        start = self._last_brush_point
        shape_edit.paint_stroke(self._brush_mask, start, point, radius=self.brush_radius, value=self.tool == "brush")
        self._last_brush_point = point
        h, w = self.image_size
        pad = int(self.brush_radius) + 2
        x0, x1 = max(0, int(min(start[0], point[0])) - pad), min(w, int(max(start[0], point[0])) + pad + 1)
        y0, y1 = max(0, int(min(start[1], point[1])) - pad), min(h, int(max(start[1], point[1])) + pad + 1)
        if x1 > x0 and y1 > y0:
            patch = _mask_image(self._brush_mask[y0:y1, x0:x1].astype(bool), DRAFT_COLOR)
            painter = QPainter(self.draft.mask_image)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)  # erasing clears pixels
            painter.drawImage(x0, y0, patch)
            painter.end()
        self.draft.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        raw = self._scene_point(event)
        self._cursor = QPointF(*raw)
        self.cursor_moved.emit(raw[0], raw[1])
        point = self._inside(raw)
        if self._drag is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self._drag_to(point)
        elif self.tool in ("box", "rotated_box") and self.draft.points:
            self.draft.points[1] = point
        elif self.tool in ("polygon", "polyline") and self.draft.points:
            self.draft.cursor = point
        elif self._brush_mask is not None and event.buttons() & Qt.MouseButton.LeftButton:
            self._stroke(point)
        self.draft.update()
        self.viewport().update()  # the crosshair follows the cursor

    def _drag_to(self, point: Point) -> None:
        assert self._drag is not None
        shape = self._drag["shape"]
        if self._drag["handle"] is not None:
            moved = shape_edit.move_handle(shape, self._drag["handle"], point[0], point[1])
        else:
            start = self._drag["start"]
            moved = shape_edit.translate(shape, point[0] - start[0], point[1] - start[1])
        self._drag["moved"] = moved
        self.items_by_id[self._drag["id"]].set_shape(moved)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self._restore_cursor()
            return
        if self.tool == "segment" and self.click_tool is not None:
            point = self._inside(self._scene_point(event))
            self.click_tool.release(point[0], point[1])
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        if self._drag is not None:
            drag, self._drag = self._drag, None
            moved = drag.get("moved")
            if moved is not None and moved != drag["shape"]:
                self.shape_edited.emit(drag["id"], clip_to_image(moved, self.image_size))
        elif self.tool in ("box", "rotated_box") and len(self.draft.points) == 2:
            (x1, y1), (x2, y2) = self.draft.points
            self.cancel_draft()
            if abs(x2 - x1) >= 2 and abs(y2 - y1) >= 2:  # a click is not a box
                box = Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
                if self.tool == "rotated_box":  # drawn upright; turned afterwards by its rotation handle
                    self.shape_drawn.emit(RotatedBox((x1 + x2) / 2, (y1 + y2) / 2, box.width, box.height, 0.0))
                else:
                    self.shape_drawn.emit(box)
        elif self._brush_mask is not None:
            mask, target = self._brush_mask, self._brush_target
            self.cancel_draft()
            if target is not None:
                self.shape_edited.emit(target, encode_mask(mask))
            elif mask.any():
                self.shape_drawn.emit(encode_mask(mask))

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if self.tool == "polyline" and self.draft.points:
            self.finish_draft()
            return
        if self.tool == "select" and len(self._selected) == 1:
            ann_id = self._selected[0]
            point = self._scene_point(event)
            edited = shape_edit.insert_vertex(self.items_by_id[ann_id].shape_, point[0], point[1], self._tolerance())
            if edited is not None:
                self.shape_edited.emit(ann_id, edited)
                return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        if self.image is None:
            return
        steps = event.angleDelta().y() / 120.0  # trackpads send fractions of a notch: smooth zoom
        self.zoom_by(1.25**steps)

    def event(self, event: QEvent) -> bool:
        """In segment mode the tool's keys (Tab, Enter, Esc, Ctrl+Z on its clicks) beat window shortcuts."""
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and self.tool == "segment"
            and self.click_tool is not None
            and self.draft.clicks
            and isinstance(event, QKeyEvent)
            and event.matches(QKeySequence.StandardKey.Undo)
        ):
            event.accept()
            return True
        return super().event(event)

    def focusNextPrevChild(self, next_: bool) -> bool:
        if self.tool == "segment":
            return False  # Tab cycles the segmentation candidates instead of moving the focus
        return super().focusNextPrevChild(next_)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if self.tool == "segment" and self.click_tool is not None and self.click_tool.handle_key(event):
            return
        if key in (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.finish_draft():
            return
        if key == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = True  # Space+drag pans
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if key == Qt.Key.Key_Escape and self.is_drafting():
            self.cancel_draft()
            return
        if key == Qt.Key.Key_Backspace and self.draft.points and self.tool in ("polygon", "polyline"):
            self.draft.points.pop()
            self.draft.update()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_down = False
            self._restore_cursor()
            return
        super().keyReleaseEvent(event)

    def leaveEvent(self, event: Any) -> None:
        self._cursor = None
        self.viewport().update()
        super().leaveEvent(event)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """The crosshair (drawing tools) and the brush outline under the cursor."""
        if self._cursor is None or self.tool == "select" or self.image is None:
            return
        pen = QPen(QColor(255, 255, 255, 160), 1.0, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        x, y = self._cursor.x(), self._cursor.y()
        if self.tool in ("brush", "eraser"):
            painter.drawEllipse(self._cursor, self.brush_radius, self.brush_radius)
            return
        painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))


def shape_area(shape: Shape) -> float:
    """Area used to pick the innermost of overlapping shapes (lines and points count as tiny)."""
    _x, _y, w, h = shape.bbox()
    return w * h
