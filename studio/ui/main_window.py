"""The labelling window: media browser, canvas and tools, panels, menus, undo and autosave.

The window is wiring. Every change goes through the Project service (most as QUndoCommands), is
committed before the call returns, and the views are refreshed from the database afterwards, so what
the person sees is what is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QImage, QKeySequence, QShowEvent, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QColorDialog,
    QComboBox,
    QDialog,
    QDockWidget,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.geometry import clip_to_image
from studio.core.shapes import Mask, Shape
from studio.core.types import Annotation, Label, Media
from studio.db.project import Project
from studio.io.media import read_media
from studio.ui import app_settings, theme
from studio.ui.canvas import TOOLS, Canvas, Tool, rgb_array
from studio.ui.commands import AddAnnotations, DeleteAnnotations, UpdateAnnotation
from studio.ui.frame_reader import FrameReader
from studio.ui.jobs import Job
from studio.ui.label_chooser import LabelChooser
from studio.ui.media_browser import MediaBrowser
from studio.ui.panels import AnnotationsPanel, LabelsPanel, PropertiesPanel, TagsPanel
from studio.ui.sam_tool import SamTool
from studio.ui.video_controls import VideoControls

if TYPE_CHECKING:
    from studio.ui.model_panel import ModelPanel
    from studio.ui.runs_panel import RunsPanel
    from studio.ui.train_panel import TrainPanel

FORMATS = {  # name -> (menu text, whether the dataset is one file rather than a folder)
    "coco": ("COCO JSON", True),
    "yolo": ("YOLO folder", False),
    "voc": ("Pascal VOC folder", False),
    "labelme": ("labelme folder", False),
    "cvat": ("CVAT for images XML", True),
}
TOOL_KEYS: dict[Tool, tuple[str, str]] = {
    "select": ("V", "Select, move and edit shapes"),
    "box": ("R", "Box: drag a rectangle"),
    "rotated_box": ("T", "Rotated box: drag a rectangle, then turn it by the handle on its top edge"),
    "polygon": ("P", "Polygon: click vertices, Space/Enter or the first point closes"),
    "polyline": ("L", "Polyline: click points, Enter or double-click finishes"),
    "points": ("O", "Points: click to place a keypoint"),
    "brush": ("B", "Brush: paint a mask (on the selected mask, or a new one)"),
    "eraser": ("E", "Eraser: erase from the selected mask"),
    "segment": ("S", "Segment: click the object (right click: not this), Tab next candidate, Enter accepts"),
}
SEGMENTER_KEY = "ui.segmenter"
DEFAULT_SEGMENTER = "grabcut"  # OpenCV, needs no weights; a project can name a SAM plugin instead
PREFETCH_IMAGES = 2
"""How many of the next images in the browser the segmenter encodes ahead of time."""
GESTURES = (
    ("Wheel", "Zoom around the cursor"),
    ("Middle drag / Space+drag", "Pan"),
    ("Drag a vertex or corner", "Reshape the selected shape"),
    ("Shift+click or double-click an edge", "Insert a vertex"),
    ("Alt+click a vertex", "Delete the vertex"),
    ("Backspace while drawing", "Remove the last point"),
    ("[ / ]", "Smaller / larger brush"),
    ("1 - 9", "Pick a label (relabels the selection too)"),
)
LAST_STATE_KEY = "ui.last"
RECENT_LABELS_KEY = "ui.recent_labels"


class MainWindow(QMainWindow):
    """The Studio labelling window on one project (or none, until one is opened)."""

    media_shown = Signal(int, int)
    """(media id, frame) once its pixels and annotations are on the canvas."""
    media_batch_added = Signal(object)
    """A batch of media stored by a running add job (list[Media]); emitted from its worker thread."""

    def __init__(self, project: Project | None = None) -> None:
        super().__init__()
        self.project: Project | None = None
        self.media: Media | None = None
        self.frame = 0
        self.labels: list[Label] = []
        self.current_label_id: int | None = None
        self.recent_labels: list[int] = []
        self.annotations: list[Annotation] = []
        self.clipboard: list[Annotation] = []
        self.hidden_sources: set[str | int] = set()  # "human" or run ids
        self.visible_runs: set[int] = set()  # mirrors the runs panel's check boxes
        self.runs_panel: RunsPanel | None = None
        self.model_panel: ModelPanel | None = None
        self.train_panel: TrainPanel | None = None
        self.run_thresholds: dict[int, float] = {}  # run id -> lowest score shown
        self.last_drawing_tool: Tool = "box"
        self.jobs: list[Job] = []
        self.segment_tool: SamTool | None = None
        self._segmenter_loading = False
        self._pending_view: dict[str, float] | None = None
        self._docks_sized = False
        self.undo_stack = QUndoStack(self)
        self.frame_reader = FrameReader(parent=self)

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.browser = MediaBrowser()
        self.video_controls = VideoControls()
        self.labels_panel = LabelsPanel()
        self.annotations_panel = AnnotationsPanel()
        self.properties_panel = PropertiesPanel()
        self.tags_panel = TagsPanel()
        self.panels_menu = QMenu("&Panels", self)
        self._build_docks()
        self._build_actions()
        self._build_status_bar()
        self._connect()
        self.setWindowTitle("Studio")
        self.resize(1400, 880)
        self.set_theme(app_settings.load().get("theme", "system"), remember=False)
        if project is not None:
            self.open_project(project)

    # ---- construction ------------------------------------------------------------------------------

    def add_dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Dock a panel (the runs and model panels use this too); View > Panels shows or hides it."""
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.media_dock = self.add_dock("Media", self.browser, left)
        self.video_dock = self.add_dock("Video", self.video_controls, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.video_dock.hide()
        labels = self.add_dock("Labels", self.labels_panel, right)
        annotations = self.add_dock("Annotations", self.annotations_panel, right)
        self.properties_dock = self.add_dock("Properties", self.properties_panel, right)
        tags = self.add_dock("Image", self.tags_panel, right)
        self.tabifyDockWidget(self.properties_dock, tags)
        self.properties_dock.raise_()
        self.resizeDocks([labels, annotations, self.properties_dock], [260, 240, 260], Qt.Orientation.Vertical)

    def _action(
        self, text: str, slot: Callable[[], Any], shortcut: str | QKeySequence.StandardKey | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setToolTip(f"{tip or text} ({action.shortcut().toString()})" if shortcut else tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)  # shortcuts work while any dock has focus
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        file.addAction(self._action("&New project…", self.new_project_dialog, QKeySequence.StandardKey.New))
        file.addAction(self._action("&Open project…", self.open_project_dialog, QKeySequence.StandardKey.Open))
        file.addSeparator()
        self.project_actions = [
            self._action("Add &images…", self.add_images_dialog, "Ctrl+I"),
            self._action("Add &folder…", self.add_folder_dialog, "Ctrl+Shift+I"),
            self._action("Add &video…", self.add_video_dialog),
        ]
        file.addActions(self.project_actions)
        import_menu, export_menu = file.addMenu("&Import"), file.addMenu("&Export")
        for name, (text, _single) in FORMATS.items():
            self.project_actions.append(import_menu.addAction(text, lambda n=name: self.import_dialog(n)))
            self.project_actions.append(export_menu.addAction(text, lambda n=name: self.export_dialog(n)))
        file.addSeparator()
        file.addAction(self._action("&Quit", self.close, QKeySequence.StandardKey.Quit))

        edit = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.addActions([undo, redo])
        edit.addActions([undo, redo])
        edit.addSeparator()
        edit.addAction(self._action("&Copy shapes", self.copy_selection, QKeySequence.StandardKey.Copy))
        edit.addAction(self._action("&Paste shapes", self.paste, QKeySequence.StandardKey.Paste))
        delete = self._action("&Delete shapes", self.delete_selection, "Del")
        delete.setShortcuts([QKeySequence("Del"), QKeySequence("Backspace")])
        edit.addAction(delete)
        edit.addAction(self._action("Select &all shapes", self.select_all, QKeySequence.StandardKey.SelectAll))
        edit.addAction(self._action("Change &label…", self.change_label_dialog, "Ctrl+L"))
        edit.addSeparator()
        edit.addAction(self._action("&New shape", self.new_shape, "W", "New shape with the last drawing tool (W or N)"))
        self._action("New shape", self.new_shape, "N")
        self.tool_group = QActionGroup(self)
        tools_bar = QToolBar("Tools", self)
        tools_bar.setObjectName("Tools")
        tools_bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tools_bar)
        self.tool_actions: dict[Tool, QAction] = {}
        for tool in TOOLS:
            key, tip = TOOL_KEYS[tool]
            action = self._action(tool.replace("_", " ").capitalize(), lambda t=tool: self.set_tool(t), key, tip)
            action.setCheckable(True)
            self.tool_group.addAction(action)
            tools_bar.addAction(action)
            edit.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions["select"].setChecked(True)
        self.segmenter_menu = edit.addMenu("Se&gmenter")
        self.segmenter_menu.aboutToShow.connect(self._fill_segmenter_menu)  # plugins are found only when asked
        self.brush_size = QSpinBox(minimum=1, maximum=200, value=8, suffix=" px", toolTip="Brush radius ([ and ])")
        self.brush_size.valueChanged.connect(lambda v: setattr(self.canvas, "brush_radius", float(v)))
        tools_bar.addSeparator()
        tools_bar.addWidget(QLabel(" Brush "))
        tools_bar.addWidget(self.brush_size)
        self._action("Smaller brush", lambda: self.brush_size.setValue(self.brush_size.value() - 2), "[")
        self._action("Larger brush", lambda: self.brush_size.setValue(self.brush_size.value() + 2), "]")

        go = bar.addMenu("&Go")
        go.addAction(self._action("&Next image", self.browser.select_next, "D"))
        go.addAction(self._action("&Previous image", self.browser.select_previous, "A"))
        go.addAction(self._action("Next &frame", lambda: self.video_controls.step(+1), "."))
        go.addAction(self._action("Previous f&rame", lambda: self.video_controls.step(-1), ","))

        view = bar.addMenu("&View")
        view.addAction(self._action("&Fit to window", self.canvas.fit, "F"))
        view.addAction(self._action("&Actual size (1:1)", self.canvas.actual_size, "Ctrl+0"))
        view.addAction(self._action("Zoom &in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn))
        view.addAction(self._action("Zoom &out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut))
        self.hide_action = self._action("&Hide shapes", self.toggle_shapes, "H")
        self.hide_action.setCheckable(True)
        view.addAction(self.hide_action)
        view.addAction(self._action("Image &adjustments…", self.adjustments_dialog, "Ctrl+B"))
        self.sources_menu = view.addMenu("Show &sources")
        view.addAction(self._action("&Compare runs…", self.compare_runs, "Ctrl+Shift+K"))
        theme_menu = view.addMenu("&Theme")
        self.theme_group = QActionGroup(self)
        for name in theme.THEMES:
            action = theme_menu.addAction(name.capitalize(), lambda n=name: self.set_theme(n))
            action.setCheckable(True)
            action.setData(name)
            self.theme_group.addAction(action)
        view.addMenu(self.panels_menu)

        help_menu = bar.addMenu("&Help")
        cheat_sheet = self._action("&Keyboard shortcuts", self.shortcuts_dialog, "?")
        cheat_sheet.setShortcuts([QKeySequence("?"), QKeySequence("F1")])
        help_menu.addAction(cheat_sheet)

    def _build_status_bar(self) -> None:
        self.saved_label = QLabel("No project")
        self.position_label = QLabel()
        self.zoom_label = QLabel()
        bar = self.statusBar()
        bar.addPermanentWidget(self.position_label)
        bar.addPermanentWidget(self.zoom_label)
        bar.addPermanentWidget(self.saved_label)

    def _connect(self) -> None:
        self.browser.media_activated.connect(self.show_media)
        self.media_batch_added.connect(self._on_media_batch_added)  # queued: emitted on a worker thread
        self.video_controls.frame_changed.connect(self.show_frame)
        self.frame_reader.frame_ready.connect(self._on_frame_ready)
        self.frame_reader.frame_failed.connect(self._on_frame_failed)
        self.canvas.shape_drawn.connect(self._on_shape_drawn)
        self.canvas.shape_edited.connect(self._on_shape_edited)
        self.canvas.selection_changed.connect(self._on_canvas_selection)
        self.canvas.cursor_moved.connect(lambda x, y: self.position_label.setText(f"x {x:.0f}  y {y:.0f}"))
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.annotations_panel.selection_changed.connect(self.canvas.select)
        self.labels_panel.current_changed.connect(self.set_current_label)
        self.labels_panel.visibility_changed.connect(self.refresh_annotations)
        self.labels_panel.add_requested.connect(self.add_label_dialog)
        self.labels_panel.rename_requested.connect(self.rename_label_dialog)
        self.labels_panel.recolor_requested.connect(self.recolor_label_dialog)
        self.labels_panel.merge_requested.connect(self.merge_label_dialog)
        self.properties_panel.label_chosen.connect(lambda ann_id, label_id: self.relabel([ann_id], label_id))
        self.properties_panel.attributes_edited.connect(self._on_attributes)
        self.tags_panel.tags_edited.connect(lambda m, tags: self._saved(self._require().set_tags(m, tags)))
        self.tags_panel.caption_edited.connect(lambda m, text: self._saved(self._require().set_caption(m, text or None)))
        self.tags_panel.review_state_chosen.connect(self._on_review_state)
        self.undo_stack.indexChanged.connect(lambda _i: self._saved())
        for number in range(1, 10):
            self._action(f"Label {number}", lambda n=number: self.pick_label_number(n), str(number))

    # ---- project -----------------------------------------------------------------------------------

    def _require(self) -> Project:
        if self.project is None:
            raise StudioError("open or create a project first (File > Open project)")
        return self.project

    def open_project(self, project: Project) -> None:
        """Show a project: its media, labels, and the image and view it was left on."""
        self._remember_state()
        if self.project is not None and self.project is not project:
            self.project.close()
        self.project = project
        self.media = None
        self.undo_stack.clear()
        self._drop_segment_tool()  # it holds the previous project
        self.setWindowTitle(f"Studio — {project.root.name}")
        app_settings.update(last_project=str(project.root))
        self.recent_labels = [i for i in project.get_setting(RECENT_LABELS_KEY, []) if isinstance(i, int)]
        self.browser.set_project(project)
        self._install_model_docks(project)
        first_label = next(iter(project.labels()), None)
        self.current_label_id = self.recent_labels[0] if self.recent_labels else (first_label.id if first_label else None)
        self.refresh_labels()
        self.refresh_runs()
        self.saved_label.setText("All changes saved")
        last = project.get_setting(LAST_STATE_KEY, {}) or {}
        media = self._remembered_media(project, last.get("media"))
        if media is not None:
            same = media.id == last.get("media")
            self._pending_view = last.get("view") if same else None
            self.show_media(media.id, frame=int(last.get("frame", 0)) if same else 0)

    @staticmethod
    def _remembered_media(project: Project, media_id: object) -> Media | None:
        """The media the project was left on, else its first one (None for an empty project)."""
        if isinstance(media_id, int):
            try:
                return project.get_media(media_id)
            except StudioError:  # removed since
                pass
        first = project.list_media(limit=1)
        return first[0] if first else None

    def _remember_state(self) -> None:
        """Store the image, frame and view shown, so reopening the project comes back to them."""
        if self.project is None or self.media is None:
            return
        state = {"media": self.media.id, "frame": self.frame, "view": self.canvas.view_state()}
        self.project.set_setting(LAST_STATE_KEY, state)

    def showEvent(self, event: QShowEvent) -> None:
        """Give the canvas most of the width; docks can only be sized once the window is laid out."""
        super().showEvent(event)
        if not self._docks_sized:
            self._docks_sized = True
            QTimer.singleShot(0, lambda: self.resizeDocks(
                [self.media_dock, self.properties_dock], [280, 340], Qt.Orientation.Horizontal
            ))

    def closeEvent(self, event: QCloseEvent) -> None:
        self._remember_state()
        self.frame_reader.close()
        if self.train_panel is not None:
            self.train_panel.cancel()  # a training stops after its batch and keeps its checkpoint
        # workers (segmenter encodes, jobs) signal objects owned by this window: let them finish first
        QThreadPool.globalInstance().waitForDone(5000)
        if self.project is not None:
            self.project.close()
        super().closeEvent(event)

    def _saved(self, _result: object = None) -> None:
        """Every edit is committed before this runs: say so, with the time, in the status bar."""
        self.saved_label.setText(f"Saved {datetime.now():%H:%M:%S}")

    # ---- media -------------------------------------------------------------------------------------

    def show_media(self, media_id: int, frame: int = 0) -> None:
        """Open an image or a video frame: pixels come from the frame reader, annotations from the project."""
        project = self._require()
        if self.media is not None and self.media.id != media_id:
            self._remember_state()
            self._pending_view = None
        try:
            media = project.get_media(media_id)
        except StudioError as exc:
            self.statusBar().showMessage(str(exc), 5000)
            return
        self.media = media
        self.frame = min(max(frame, 0), media.frame_count - 1)
        self.browser.select_media(media.id)
        self.video_dock.setVisible(media.kind == "video")
        if media.kind == "video":
            self.video_controls.set_media(media, project.annotated_frames(media.id))
            self.video_controls.set_frame(self.frame)
        self.tags_panel.show_media(media, project.tags(media.id))
        if self.model_panel is not None:
            self.model_panel.set_current(media.id)
            self.model_panel.set_selection([media.id])
        self.canvas.setFocus()
        self.frame_reader.request(project, media, self.frame)

    def show_frame(self, frame: int) -> None:
        if self.media is not None and self.media.kind == "video" and frame != self.frame:
            self.frame = frame  # remembered when the media changes or the window closes, not per frame
            self.frame_reader.request(self._require(), self.media, frame)

    def _on_frame_ready(self, media_id: int, frame: int, image: QImage) -> None:
        if self.media is None or (media_id, frame) != (self.media.id, self.frame):
            return  # a frame the person has already scrolled past
        self.canvas.set_image(image)
        if self._pending_view:
            self.canvas.restore_view(self._pending_view)
            self._pending_view = None
        self.refresh_annotations()
        self._feed_segment_image()
        self.media_shown.emit(media_id, frame)

    def _on_frame_failed(self, media_id: int, frame: int, message: str) -> None:
        if self.media is None or (media_id, frame) != (self.media.id, self.frame):
            return
        placeholder = QImage(self.media.width, self.media.height, QImage.Format.Format_RGB888)
        placeholder.fill(QColor("#3a3a3a"))
        self.canvas.set_image(placeholder)
        self.refresh_annotations()
        self.statusBar().showMessage(message, 10000)
        self.media_shown.emit(media_id, frame)

    # ---- annotations -------------------------------------------------------------------------------

    def refresh_annotations(self) -> None:
        """Re-read the annotations of the shown image or frame, filtered by visible labels and sources."""
        if self.project is None or self.media is None:
            return
        hidden_labels = self.labels_panel.hidden_ids()
        shown: list[Annotation] = []
        if "human" not in self.hidden_sources:
            shown += self.project.annotations(self.media.id, frame=self.frame)
        for run_id in sorted(self.visible_runs):
            threshold = self.run_thresholds.get(run_id)
            shown += self.project.annotations(self.media.id, frame=self.frame, source=run_id, min_score=threshold)
        self.annotations = [ann for ann in shown if ann.label_id not in hidden_labels]
        colors = {label.id: label.color for label in self.labels}
        run_colors = self.runs_panel.colors() if self.runs_panel is not None and self.visible_runs else {}
        self.canvas.set_annotations(self.annotations, colors, run_colors)
        self.annotations_panel.set_annotations(self.annotations, self.label_map(), self.run_names())
        self.annotations_panel.select(self.canvas.selected_ids())
        self._show_properties()

    def label_map(self) -> dict[int, Label]:
        return {label.id: label for label in self.labels}

    def run_names(self) -> dict[int, str]:
        return {run.id: run.name for run in self.project.runs()} if self.project else {}

    def _annotation(self, annotation_id: int) -> Annotation | None:
        return next((ann for ann in self.annotations if ann.id == annotation_id), None)

    def _on_media_changed(self, media_id: int) -> None:
        """After an edit was stored: refresh what shows it (canvas, counts, keyframes)."""
        self._saved()
        self.refresh_labels()
        if self.media is not None and media_id == self.media.id:
            if self.media.kind == "video":
                self.video_controls.set_keyframes(self._require().annotated_frames(self.media.id))
            self.refresh_annotations()

    def _on_shape_drawn(self, shape: Shape) -> None:
        if self.media is None:
            return
        label_id = self.current_label_id if self.current_label_id is not None else self._choose_label()
        if label_id is None:
            return
        ann = Annotation(
            media_id=self.media.id, frame=self.frame, label_id=label_id, shape=shape, created_by=_user_name()
        )
        command = AddAnnotations(self._require(), [ann], self._on_media_changed, f"Draw {shape.kind}")
        self.undo_stack.push(command)
        self._use_label(label_id)
        self.canvas.select(command.ids)

    def _on_shape_edited(self, annotation_id: int, shape: Shape) -> None:
        before = self._annotation(annotation_id)
        if before is None:
            return
        after = dataclasses.replace(before, shape=shape)
        self.undo_stack.push(UpdateAnnotation(self._require(), before, after, self._on_media_changed, f"Edit {shape.kind}"))

    def _on_attributes(self, annotation_id: int, attributes: dict[str, Any]) -> None:
        before = self._annotation(annotation_id)
        if before is not None:
            after = dataclasses.replace(before, attributes=attributes)
            self.undo_stack.push(UpdateAnnotation(self._require(), before, after, self._on_media_changed, "Edit attributes"))

    def relabel(self, annotation_ids: list[int], label_id: int) -> None:
        changes = [(ann, dataclasses.replace(ann, label_id=label_id)) for ann in self.annotations if ann.id in annotation_ids]
        changes = [(before, after) for before, after in changes if before.label_id != label_id]
        if not changes:
            return
        self.undo_stack.beginMacro("Change label")
        for before, after in changes:
            self.undo_stack.push(UpdateAnnotation(self._require(), before, after, self._on_media_changed, "Change label"))
        self.undo_stack.endMacro()
        self._use_label(label_id)

    def delete_selection(self) -> None:
        ids = self.canvas.selected_ids()
        if ids:
            self.undo_stack.push(DeleteAnnotations(self._require(), ids, self._on_media_changed, f"Delete {len(ids)} shapes"))

    def select_all(self) -> None:
        self.canvas.select([ann.id for ann in self.annotations if ann.id is not None])

    def copy_selection(self) -> None:
        selected = set(self.canvas.selected_ids())
        self.clipboard = [ann for ann in self.annotations if ann.id in selected]
        if self.clipboard:
            self.statusBar().showMessage(f"Copied {len(self.clipboard)} shapes", 3000)

    def paste(self) -> None:
        """Paste copied shapes onto the shown image (often the next one), clipped to it, as human shapes."""
        if self.media is None or not self.clipboard:
            return
        size = self.media.size
        fresh = [
            Annotation(
                media_id=self.media.id, frame=self.frame, label_id=ann.label_id, shape=clip_to_image(ann.shape, size),
                attributes=dict(ann.attributes), created_by=_user_name(),
            )
            for ann in self.clipboard
            if not isinstance(ann.shape, Mask) or tuple(ann.shape.size) == size  # a mask only fits its image size
        ]
        if len(fresh) < len(self.clipboard):
            self.statusBar().showMessage("Masks of another image size were not pasted", 5000)
        if fresh:
            command = AddAnnotations(self._require(), fresh, self._on_media_changed, f"Paste {len(fresh)} shapes")
            self.undo_stack.push(command)
            self.canvas.select(command.ids)

    def _on_canvas_selection(self, annotation_ids: list[int]) -> None:
        self.annotations_panel.select(annotation_ids)
        if self.runs_panel is not None:
            self.runs_panel.set_selected_annotations(annotation_ids)
        self._show_properties()

    def _show_properties(self) -> None:
        selected = self.canvas.selected_ids()
        ann = self._annotation(selected[0]) if len(selected) == 1 else None
        self.properties_panel.show_annotation(ann, self.labels, self.run_names() if ann and ann.run_id else {})

    def _on_review_state(self, media_id: int, state: str) -> None:
        self._require().set_review_state(media_id, state)  # type: ignore[arg-type]
        self._saved()
        self.browser.refresh()

    # ---- tools -------------------------------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        if tool != "select":
            self.last_drawing_tool = tool
        self.tool_actions[tool].setChecked(True)
        self.canvas.set_tool(tool)
        self.canvas.setFocus()
        if tool == "segment":
            self._start_segmenting()
        elif self.segment_tool is not None:
            self.segment_tool.clear()

    # ---- click segmentation ------------------------------------------------------------------------

    def _start_segmenting(self) -> None:
        """Load the project's segmenter on a worker (SAM takes seconds) and hand it the shown image."""
        if self.segment_tool is not None:
            self._feed_segment_image()
            return
        if self._segmenter_loading:
            return
        from studio.models.registry import get_plugin, load_model

        plugin_id = str(self._require().get_setting(SEGMENTER_KEY, DEFAULT_SEGMENTER))

        def load(_progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            spec = get_plugin(plugin_id)
            if spec.devices == ("cpu",) and not spec.needs_weights:
                return spec.load(weights=None, device="cpu")  # load_model's device check imports torch: seconds
            return load_model(plugin_id)

        self._segmenter_loading = True
        job = self.run_job(f"Loading {plugin_id}…", load, lambda model: self._segmenter_ready(plugin_id, model))
        job.failed.connect(lambda _message: setattr(self, "_segmenter_loading", False))

    def _fill_segmenter_menu(self) -> None:
        """Segmentation plugins; those whose weights are not downloaded are listed but disabled."""
        from studio.models.registry import all_plugins, weights_status

        current = str(self._require().get_setting(SEGMENTER_KEY, DEFAULT_SEGMENTER)) if self.project else None
        self.segmenter_menu.clear()
        for spec in all_plugins("segment"):
            ready = not spec.needs_weights or any(w["downloaded"] for w in weights_status(spec)["weights"])
            action = self.segmenter_menu.addAction(spec.title if ready else f"{spec.title} (weights not downloaded)")
            action.setCheckable(True)
            action.setChecked(spec.id == current)
            action.setEnabled(ready and self.project is not None)
            action.triggered.connect(lambda _checked=False, plugin_id=spec.id: self.set_segmenter(plugin_id))

    def set_segmenter(self, plugin_id: str) -> None:
        """Use another segmentation plugin for the S tool (remembered by the project)."""
        self._require().set_setting(SEGMENTER_KEY, plugin_id)
        self._drop_segment_tool()
        if self.canvas.tool == "segment":
            self._start_segmenting()

    def _drop_segment_tool(self) -> None:
        if self.segment_tool is not None:
            self.segment_tool.deleteLater()
            self.segment_tool = self.canvas.click_tool = None

    def _segmenter_ready(self, plugin_id: str, segmenter: Any) -> None:
        self._segmenter_loading = False
        tool = SamTool(self._require(), segmenter, model_id=plugin_id, store=self._store_segmented, parent=self)
        tool.preview_changed.connect(self._on_segment_preview)
        tool.failed.connect(lambda message: self.statusBar().showMessage(message, 8000))
        tool.encoding_changed.connect(
            lambda busy: self.statusBar().showMessage("Encoding the image…" if busy else "Click the object", 5000)
        )
        self.segment_tool = tool
        self.canvas.click_tool = tool
        self._feed_segment_image()

    def _feed_segment_image(self) -> None:
        tool = self.segment_tool
        if tool is None or self.media is None or self.canvas.image is None or self.canvas.tool != "segment":
            return
        if self.current_label_id is not None:
            tool.set_label(self.current_label_id)
        bgr = cv2.cvtColor(rgb_array(self.canvas.image), cv2.COLOR_RGB2BGR)  # models take OpenCV's order
        tool.set_image(self.media, bgr, frame=self.frame)
        # SAM's encoder takes seconds on a CPU: encode the next images now, so D lands on a ready one
        project = self._require()
        upcoming = [m for m in self.browser.following(self.media.id, PREFETCH_IMAGES) if m.kind == "image"]
        tool.prefetch([partial(read_media, project, media) for media in upcoming])

    def _on_segment_preview(self, mask: Any, _index: int, _score: float) -> None:
        tool = self.segment_tool
        if tool is not None:
            self.canvas.show_prompts(mask, [(c.x, c.y, c.positive) for c in tool.clicks], tool.box)

    def _store_segmented(self, annotation: Annotation) -> Annotation:
        """The segment tool's accepted mask goes through the undo stack like a drawn shape."""
        command = AddAnnotations(self._require(), [annotation], self._on_media_changed, "Segment")
        self.undo_stack.push(command)
        self._use_label(annotation.label_id)
        return command.annotations[0]

    def new_shape(self) -> None:
        self.set_tool(self.last_drawing_tool)

    def toggle_shapes(self) -> None:
        self.canvas.set_shapes_visible(not self.hide_action.isChecked())

    # ---- labels ------------------------------------------------------------------------------------

    def refresh_labels(self) -> None:
        project = self._require()
        self.labels = project.labels()
        self.labels_panel.set_labels(
            self.labels, project.label_counts(), self.labels_panel.hidden_ids(), self.current_label_id
        )

    def set_current_label(self, label_id: int) -> None:
        self.current_label_id = label_id
        if self.segment_tool is not None:
            self.segment_tool.set_label(label_id)

    def pick_label_number(self, number: int) -> None:
        """Number keys pick the n-th label for new shapes, and relabel the selected shapes."""
        if number > len(self.labels):
            return
        label_id = self.labels[number - 1].id
        self.set_current_label(label_id)
        self.relabel(self.canvas.selected_ids(), label_id)
        self.refresh_labels()
        self.statusBar().showMessage(f"Label: {self.labels[number - 1].name}", 2000)

    def _use_label(self, label_id: int) -> None:
        self.recent_labels = [label_id] + [i for i in self.recent_labels if i != label_id][:8]
        self._require().set_setting(RECENT_LABELS_KEY, self.recent_labels)

    def _choose_label(self) -> int | None:
        """Ask for a label with the chooser popup (search, recent first); a new name creates the label."""
        chooser = LabelChooser(self.labels, self.recent_labels, self)
        chooser.move(self.cursor().pos())
        if chooser.exec() != QDialog.DialogCode.Accepted or not chooser.chosen_name:
            return None
        label = self._guard(lambda: self._require().ensure_label(chooser.chosen_name or ""))
        if label is None:
            return None
        self.current_label_id = label.id
        self.refresh_labels()
        return label.id

    def change_label_dialog(self) -> None:
        ids = self.canvas.selected_ids()
        if ids:
            label_id = self._choose_label()
            if label_id is not None:
                self.relabel(ids, label_id)

    def add_label_dialog(self) -> None:
        name, ok = QInputDialog.getText(self, "Add label", "Name of the new label:")
        if ok and name.strip():
            label = self._guard(lambda: self._require().ensure_label(name))
            if label is not None:
                self.current_label_id = label.id
                self._label_changed()

    def rename_label_dialog(self, label_id: int) -> None:
        old = self.label_map()[label_id].name
        name, ok = QInputDialog.getText(self, "Rename label", f"New name for {old!r}:", text=old)
        if ok and name.strip() and name.strip() != old:
            self._guard(lambda: self._require().rename_label(label_id, name))
            self._label_changed()

    def recolor_label_dialog(self, label_id: int) -> None:
        color = QColorDialog.getColor(QColor(self.label_map()[label_id].color), self, "Label colour")
        if color.isValid():
            self._guard(lambda: self._require().recolor_label(label_id, color.name()))
            self._label_changed()

    def merge_label_dialog(self, label_id: int) -> None:
        source = self.label_map()[label_id]
        targets = [label.name for label in self.labels if label.id != label_id]
        if not targets:
            return
        name, ok = QInputDialog.getItem(
            self, "Merge labels", f"Move every {source.name!r} annotation to (cannot be undone):", targets, 0, False
        )
        target = self._require().find_label(name) if ok else None
        if target is not None:
            moved = self._guard(lambda: self._require().merge_labels(label_id, target.id))
            self.undo_stack.clear()  # undo steps may name the label that no longer exists
            self.current_label_id = target.id
            self._label_changed()
            self.statusBar().showMessage(f"Merged {moved} annotations into {target.name!r}", 5000)

    def _label_changed(self) -> None:
        self._saved()
        self.refresh_labels()
        self.refresh_annotations()
        self.browser.refresh()

    def _guard(self, call: Callable[[], Any]) -> Any:
        """Run a service call; a StudioError becomes a message box (nothing was changed)."""
        try:
            return call()
        except StudioError as exc:
            QMessageBox.warning(self, "Studio", str(exc))
            return None

    # ---- sources -----------------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        """Re-list the model runs in the runs panel and View > Show sources (after a run was added or deleted)."""
        runs = self._require().runs()
        if self.runs_panel is not None:
            self.runs_panel.refresh()
            self.visible_runs = set(self.runs_panel.visible_runs())
        self.visible_runs &= {run.id for run in runs}
        self.sources_menu.clear()
        entries: list[tuple[str, str | int, bool]] = [("Human annotations", "human", "human" not in self.hidden_sources)]
        entries += [(f"Run {run.name}", run.id, run.id in self.visible_runs) for run in runs]
        for text, source, checked in entries:
            action = self.sources_menu.addAction(text)
            action.setData(source)
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(lambda on, s=source: self.set_source_visible(s, on))

    def set_run_threshold(self, run_id: int, min_score: float | None) -> None:
        """Show only predictions of a run scoring at least `min_score` (None shows them all)."""
        if min_score is None:
            self.run_thresholds.pop(run_id, None)
        else:
            self.run_thresholds[run_id] = min_score
        self.refresh_annotations()

    def set_source_visible(self, source: str | int, visible: bool) -> None:
        """Show or hide human annotations ("human") or a model run's predictions (its id)."""
        if isinstance(source, int) and self.runs_panel is not None:
            self.runs_panel.set_visible(source, visible)  # the panel holds run visibility; it tells us back
            return
        if source == "human":
            (self.hidden_sources.discard if visible else self.hidden_sources.add)("human")
        self.refresh_annotations()

    def _on_runs_visibility(self) -> None:
        if self.runs_panel is None:
            return
        self.visible_runs = set(self.runs_panel.visible_runs())
        for action in self.sources_menu.actions():
            if isinstance(action.data(), int):
                action.setChecked(action.data() in self.visible_runs)
        self.refresh_annotations()

    # ---- model docks -------------------------------------------------------------------------------

    def _install_model_docks(self, project: Project) -> None:
        """The model and runs docks work on one project: rebuilt when another project is opened."""
        from studio.ui.model_panel import ModelPanel
        from studio.ui.runs_panel import RunsPanel
        from studio.ui.train_panel import TrainPanel

        for dock in (self.model_panel, self.runs_panel, self.train_panel):
            if dock is not None:
                self.panels_menu.removeAction(dock.toggleViewAction())
                self.removeDockWidget(dock)
                dock.deleteLater()
        self.model_panel = ModelPanel(project, self)
        self.runs_panel = RunsPanel(project, self.undo_stack, self)
        self.train_panel = TrainPanel(project, self)
        for dock in (self.model_panel, self.runs_panel, self.train_panel):
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            self.tabifyDockWidget(self.properties_dock, dock)  # one tab group keeps the canvas wide
            self.panels_menu.addAction(dock.toggleViewAction())
            for combo in dock.findChildren(QComboBox):  # long model names must not widen the whole column
                combo.setSizePolicy(QSizePolicy.Policy.Ignored, combo.sizePolicy().verticalPolicy())
        self.properties_dock.raise_()
        self.model_panel.run_finished.connect(self._on_run_finished)
        self.train_panel.model_trained.connect(self._on_model_trained)
        self.model_panel.run_failed.connect(lambda message: self.statusBar().showMessage(message, 10000))
        self.runs_panel.visibility_changed.connect(self._on_runs_visibility)
        self.runs_panel.threshold_changed.connect(self.set_run_threshold)
        self.runs_panel.color_changed.connect(lambda _run, _color: self.refresh_annotations())
        self.runs_panel.annotations_changed.connect(self._on_predictions_accepted)

    def compare_runs(self) -> None:
        """Open the comparison window on the runs shown; its "open image" brings the image here to fix it."""
        self._open_comparison(sorted(self.visible_runs))

    def _open_comparison(self, runs: list[int], media_ids: list[int] | None = None) -> None:
        from studio.ui.compare_window import CompareWindow

        window = CompareWindow(self._require(), runs, media_ids=media_ids, parent=self)
        window.open_media.connect(lambda media_id: self.show_media(media_id))
        window.open_frame.connect(lambda media_id, frame: self.show_media(media_id, frame=frame))
        window.show()

    def _on_run_finished(self, run_id: int) -> None:
        self.refresh_labels()  # a detector may have brought new class names
        self.refresh_runs()
        self.set_source_visible(run_id, True)  # show what the model just found

    def _on_model_trained(self, name: str, compared: tuple[list[int], list[int]] | None) -> None:
        """Select the new model in the Model dock; open its comparison with the previous best at the worst images."""
        assert self.model_panel is not None
        self.model_panel.refresh_models(select=name)
        self.refresh_runs()
        if compared is not None:
            self._open_comparison(*compared)

    def _on_predictions_accepted(self) -> None:
        if self.media is not None:
            self._on_media_changed(self.media.id)

    # ---- long jobs ---------------------------------------------------------------------------------

    def run_job(self, title: str, work: Callable[..., Any], done: Callable[[Any], None]) -> Job:
        """Run a service call on a worker thread with a progress dialog; `done` gets its result."""
        job = Job(self, title, work)
        job.done.connect(done)
        job.done.connect(lambda _r: self._job_finished(job))
        job.failed.connect(lambda _m: self._job_finished(job))
        self.jobs.append(job)
        return job.start()

    def _job_finished(self, job: Job) -> None:
        self.jobs.remove(job)
        job.deleteLater()

    @Slot(object)
    def _on_media_batch_added(self, batch: list[Media]) -> None:
        """List what an add job stored so far; open the first image if nothing is shown yet."""
        self.browser.refresh()
        if self.media is None and batch:
            self.show_media(batch[0].id)

    def add_paths(self, paths: list[str | Path]) -> Job:
        """Add files and folders (the same call as `studio add`), then show them in the browser."""
        from studio.io.media import add_paths

        project = self._require()

        def work(progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> Any:
            # batches reach the browser while the rest of the folder is still being read
            return add_paths(
                project, paths, skip_bad=True, progress=progress, cancel=cancelled, on_batch=self.media_batch_added.emit
            )

        def done(report: Any) -> None:  # the browser already listed each batch as it was stored
            message = f"Added {len(report.added)} media ({report.already_present} already there)"
            if report.failed:
                message += f"; skipped {len(report.failed)} unreadable: {report.failed[0]}"
            self.statusBar().showMessage(message, 10000)

        return self.run_job("Adding media…", work, done)

    def import_dataset(self, format_name: str, path: str | Path) -> Job:
        from studio.io.formats.transfer import import_dataset

        project = self._require()

        def work(progress: Callable[[int, int], None], _cancelled: Callable[[], bool]) -> Any:
            return import_dataset(project, format_name, path, progress=progress)

        def done(report: Any) -> None:
            self.browser.refresh()
            self.refresh_labels()
            self.refresh_annotations()
            self._saved()
            self.statusBar().showMessage(f"Imported {report.annotations} annotations on {report.images} images", 10000)

        return self.run_job(f"Importing {FORMATS[format_name][0]}…", work, done)

    def export_dataset(self, format_name: str, out: str | Path) -> Job:
        from studio.io.formats.transfer import export_dataset

        project = self._require()

        def work(_progress: Callable[[int, int], None], cancelled: Callable[[], bool]) -> Any:
            return export_dataset(project, format_name, out, cancel=cancelled)

        def done(report: Any) -> None:
            self.statusBar().showMessage(f"Exported {report.annotations} annotations on {report.images} images to {out}", 10000)

        return self.run_job(f"Exporting {FORMATS[format_name][0]}…", work, done)

    # ---- dialogs -----------------------------------------------------------------------------------

    def new_project_dialog(self) -> None:
        self._project_dialog("New project: choose an empty folder", Project.create)

    def open_project_dialog(self) -> None:
        self._project_dialog("Open project folder", Project.open)

    def _project_dialog(self, title: str, opener: Callable[[str], Project]) -> None:
        folder = QFileDialog.getExistingDirectory(self, title)
        project = self._guard(lambda: opener(folder)) if folder else None
        if project is not None:
            self.open_project(project)

    def add_images_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", "", "Images (*.jpg *.jpeg *.png *.bmp *.tif *.tiff *.webp)")
        if files:
            self._guard(lambda: self.add_paths(list(files)))

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of images and videos (recursive)")
        if folder:
            self._guard(lambda: self.add_paths([folder]))

    def add_video_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add videos", "", "Videos (*.mp4 *.avi *.mov *.mkv *.m4v *.webm)")
        if files:
            self._guard(lambda: self.add_paths(list(files)))

    def import_dialog(self, format_name: str) -> None:
        text, single_file = FORMATS[format_name]
        if single_file:
            path, _ = QFileDialog.getOpenFileName(self, f"Import {text}")
        else:
            path = QFileDialog.getExistingDirectory(self, f"Import {text}")
        if path:
            self._guard(lambda: self.import_dataset(format_name, path))

    def export_dialog(self, format_name: str) -> None:
        out = QFileDialog.getExistingDirectory(self, f"Export {FORMATS[format_name][0]} into folder")
        if out:
            self._guard(lambda: self.export_dataset(format_name, out))

    def adjustments_dialog(self) -> None:
        """Brightness, contrast (view only: the file is untouched) and shape fill opacity."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Image adjustments")
        form = QFormLayout(dialog)
        sliders = []
        for text, low, value in (
            ("Brightness", -100, self.canvas.brightness),
            ("Contrast", -100, self.canvas.contrast),
            ("Fill opacity %", 0, round(self.canvas.style_.fill_opacity * 100)),
        ):
            slider = QSlider(Qt.Orientation.Horizontal, minimum=low, maximum=100, value=value)
            slider.setMinimumWidth(240)
            form.addRow(text, slider)
            sliders.append(slider)
        brightness, contrast, opacity = sliders

        def apply() -> None:
            self.canvas.set_adjustment(brightness=brightness.value(), contrast=contrast.value())

        brightness.valueChanged.connect(apply)
        contrast.valueChanged.connect(apply)
        opacity.valueChanged.connect(lambda v: self.canvas.set_fill_opacity(v / 100))
        dialog.show()

    def shortcuts_dialog(self) -> None:
        """The cheat sheet, built from the actions themselves so it never disagrees with them."""
        rows = [
            (
                action.shortcut().toString(QKeySequence.SequenceFormat.NativeText),
                (action.statusTip() or action.text()).replace("&", ""),
            )
            for action in self.actions()
            if not action.shortcut().isEmpty() and not action.text().startswith("Label ")
        ]
        rows = sorted(set(rows) | set(GESTURES), key=lambda row: row[1].lower())
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().hide()
        table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 8)
        table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        table.horizontalHeader().setStretchLastSection(True)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, text) in enumerate(rows):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(text))
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        dialog.resize(520, 640)
        dialog.show()

    def set_theme(self, name: str, *, remember: bool = True) -> None:
        theme.apply(name)
        for action in self.theme_group.actions():
            action.setChecked(action.data() == name)
        self.canvas.setBackgroundBrush(QApplication.palette().dark())  # the new palette, not the cached one
        if remember:
            app_settings.update(theme=name)


def _user_name() -> str:
    """Who made an annotation: the login name, as labelling tools record it."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"
