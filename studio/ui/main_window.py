"""The labelling window: media browser, canvas and tools, panels, menus, undo and autosave.

The window is wiring. Its state is a Qt-free `studio.session.Session` that every view observes
(`studio.ui.session_views`); every change goes through the Project service (most as QUndoCommands), is
committed before the call returns, and the session re-reads what it shows, so what the person sees is
what is stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QColor, QImage, QKeySequence, QShowEvent, QUndoStack
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QSpinBox,
    QToolBar,
    QWidget,
)

from studio.core.errors import StudioError
from studio.core.shapes import Shape
from studio.core.types import Annotation, Label, Media
from studio.db.project import Project
from studio.session import Session, app_settings
from studio.session.model import TOOLS, Tool
from studio.ui import session_views, theme
from studio.ui.canvas import Canvas
from studio.ui.commands import AddAnnotations, DeleteAnnotations, UpdateAnnotation
from studio.ui.frame_reader import FrameReader
from studio.ui.jobs import Job
from studio.ui.media_browser import MediaBrowser
from studio.ui.panels import AnnotationsPanel, LabelsPanel, PropertiesPanel, TagsPanel
from studio.ui.sam_tool import SamTool
from studio.ui.video_controls import VideoControls
from studio.ui.window_datasets import FORMATS, DatasetActions
from studio.ui.window_dialogs import ViewDialogs
from studio.ui.window_labels import LabelActions
from studio.ui.window_segmentation import SegmentationActions

if TYPE_CHECKING:
    from studio.ui.ask_panel import AskPanel
    from studio.ui.model_panel import ModelPanel
    from studio.ui.runs_panel import RunsPanel
    from studio.ui.search_panel import SearchPanel
    from studio.ui.train_panel import TrainPanel

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
SAVE_STATE_DELAY_MS = 800
"""Where the person is gets saved this long after it last changed (a crash loses at most that)."""


class MainWindow(QMainWindow, SegmentationActions, LabelActions, DatasetActions, ViewDialogs):
    """The Studio labelling window on one project (or none, until one is opened)."""

    media_shown = Signal(int, int)
    """(media id, frame) once its pixels and annotations are on the canvas."""
    media_batch_added = Signal(object)
    """A batch of media stored by a running add job (list[Media]); emitted from its worker thread."""

    def __init__(self, project: Project | None = None) -> None:
        super().__init__()
        self.session = Session()
        self.runs_panel: RunsPanel | None = None
        self.model_panel: ModelPanel | None = None
        self.ask_panel: AskPanel | None = None
        self.search_panel: SearchPanel | None = None
        self.train_panel: TrainPanel | None = None
        self.jobs: list[Job] = []
        self.segment_tool: SamTool | None = None
        self._segmenter_loading = False
        self._pending_view: dict[str, float] | None = None
        self._docks_sized = False
        self._save_timer = QTimer(self, singleShot=True, interval=SAVE_STATE_DELAY_MS)
        self._save_timer.timeout.connect(self._remember_state)
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
        self.brush_size = QSpinBox(minimum=1, maximum=200, value=self.session.brush_size, suffix=" px", toolTip="Brush radius ([ and ])")
        self.brush_size.valueChanged.connect(lambda v: setattr(self.session, "brush_size", v))
        self.session.events.brush_size.connect(lambda size: self.brush_size.setValue(size))
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
        go.addAction(self._action("Next &keyframe", lambda: self.video_controls.jump_keyframe(+1), "Shift+."))
        go.addAction(self._action("Previous keyframe", lambda: self.video_controls.jump_keyframe(-1), "Shift+,"))

        view = bar.addMenu("&View")
        view.addAction(self._action("&Fit to window", self.canvas.fit, "F"))
        view.addAction(self._action("&Actual size (1:1)", self.canvas.actual_size, "Ctrl+0"))
        view.addAction(self._action("Zoom &in", lambda: self.canvas.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn))
        view.addAction(self._action("Zoom &out", lambda: self.canvas.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut))
        self.hide_action = self._action("&Hide shapes", self.toggle_shapes, "H")
        self.hide_action.setCheckable(True)
        view.addAction(self.hide_action)
        self.label_names_action = self._action(
            "Show &label names", lambda: self.canvas.set_show_labels(self.label_names_action.isChecked()), "Shift+H"
        )
        self.label_names_action.setCheckable(True)
        self.label_names_action.setChecked(self.canvas.style_.show_labels)
        view.addAction(self.label_names_action)
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
        session = self.session
        session_views.bind_canvas(self.canvas, session)
        session_views.bind_labels_panel(self.labels_panel, session)
        session_views.bind_annotations_panel(self.annotations_panel, session)
        session_views.bind_properties_panel(self.properties_panel, session)
        session_views.bind_tags_panel(self.tags_panel, session)
        for signal in (session.events.run_colors, session.events.visible_runs, session.events.human_visible):
            signal.connect(self._fill_sources_menu)
        for signal in (
            session.events.media, session.events.frame, session.events.visible_runs, session.events.run_thresholds,
            session.events.human_visible, session.events.brush_size,
        ):
            signal.connect(lambda *_: self._save_timer.start())  # debounced: saved as it changes, not only on a clean close
        session.events.current_label_id.connect(self._on_current_label)
        session.events.tool.connect(self._on_tool)
        self.browser.media_activated.connect(self.show_media)
        self.media_batch_added.connect(self._on_media_batch_added)  # queued: emitted on a worker thread
        self.video_controls.frame_changed.connect(self.show_frame)
        self.frame_reader.frame_ready.connect(self._on_frame_ready)
        self.frame_reader.frame_failed.connect(self._on_frame_failed)
        self.canvas.shape_drawn.connect(self._on_shape_drawn)
        self.canvas.shape_edited.connect(self._on_shape_edited)
        self.canvas.cursor_moved.connect(lambda x, y: self.position_label.setText(f"x {x:.0f}  y {y:.0f}"))
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f} %"))
        self.canvas.zoom_changed.connect(lambda _z: self._save_timer.start())
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

    @property
    def project(self) -> Project | None:
        return self.session.project

    def _require(self) -> Project:
        return self.session.require()

    def open_project(self, project: Project) -> None:
        """Show a project: its media, labels, and the image, view and choices it was left on."""
        self._remember_state()
        if self.project is not None and self.project is not project:
            self.project.close()
        self.undo_stack.clear()
        self._drop_segment_tool()  # it holds the previous project
        self.session.open(project)
        self.setWindowTitle(f"Studio — {project.root.name}")
        app_settings.update(last_project=str(project.root))
        self.browser.set_project(project)
        self._install_model_docks(project)
        self.saved_label.setText("All changes saved")
        media, frame, view = self.session.remembered_media()
        if media is not None:
            self._pending_view = view
            self.show_media(media.id, frame=frame)

    def _remember_state(self) -> None:
        """Store the image, frame, view and the session's choices, so reopening comes back to them."""
        self._save_timer.stop()
        if self.project is not None:
            self.session.save_state(self.canvas.view_state() if self.canvas.image is not None else None)

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

    @property
    def media(self) -> Media | None:
        return self.session.media

    @property
    def frame(self) -> int:
        return self.session.frame

    @property
    def annotations(self) -> list[Annotation]:
        return list(self.session.annotations)

    def show_media(self, media_id: int, frame: int = 0) -> None:
        """Open an image or a video frame: pixels come from the frame reader, annotations from the project."""
        previous = self.media
        if previous is not None and previous.id != media_id:
            self._remember_state()
            self._pending_view = None
        try:
            media = self.session.show(media_id, frame)
        except StudioError as exc:
            self.statusBar().showMessage(str(exc), 5000)
            return
        project = self._require()
        self.browser.select_media(media.id)
        self.video_dock.setVisible(media.kind == "video")
        if media.kind == "video":
            self.video_controls.set_media(media, project.annotated_frames(media.id))
            self.video_controls.set_frame(self.frame)
        if self.model_panel is not None:
            self.model_panel.set_current(media.id)
            self.model_panel.set_selection([media.id])
        self.canvas.setFocus()
        self.frame_reader.request(project, media, self.frame)

    def show_frame(self, frame: int) -> None:
        if self.media is not None and self.media.kind == "video" and frame != self.frame:
            self.session.show_frame(frame)
            self.frame_reader.request(self._require(), self.media, self.frame)

    def _on_frame_ready(self, media_id: int, frame: int, image: QImage) -> None:
        if self.media is None or (media_id, frame) != (self.media.id, self.frame):
            return  # a frame the person has already scrolled past
        self.canvas.set_image(image)
        if self._pending_view:
            self.canvas.restore_view(self._pending_view)
            self._pending_view = None
        self.session.refresh_annotations()
        self._feed_segment_image()
        self.media_shown.emit(media_id, frame)

    def _on_frame_failed(self, media_id: int, frame: int, message: str) -> None:
        if self.media is None or (media_id, frame) != (self.media.id, self.frame):
            return
        placeholder = QImage(self.media.width, self.media.height, QImage.Format.Format_RGB888)
        placeholder.fill(QColor("#3a3a3a"))
        self.canvas.set_image(placeholder)
        self.session.refresh_annotations()
        self.statusBar().showMessage(message, 10000)
        self.media_shown.emit(media_id, frame)

    # ---- annotations -------------------------------------------------------------------------------

    def refresh_annotations(self) -> None:
        self.session.refresh_annotations()

    def label_map(self) -> dict[int, Label]:
        return self.session.label_map()

    def _on_media_changed(self, media_id: int) -> None:
        """After an edit was stored: re-read counts, keyframes and the shown shapes."""
        self._saved()
        self.session.reload_labels()
        if self.media is not None and media_id == self.media.id:
            if self.media.kind == "video":
                self.video_controls.set_keyframes(self._require().annotated_frames(self.media.id))
            self.session.refresh_annotations()

    def _on_shape_drawn(self, shape: Shape) -> None:
        if self.media is None:
            return
        label_id = self.session.current_label_id if self.session.current_label_id is not None else self._choose_label()
        if label_id is None:
            return
        command = AddAnnotations(
            self._require(), [self.session.new_annotation(shape, label_id)], self._on_media_changed, f"Draw {shape.kind}"
        )
        self.undo_stack.push(command)
        self.session.use_label(label_id)
        self.session.select(command.ids)

    def _on_shape_edited(self, annotation_id: int, shape: Shape) -> None:
        before = self.session.annotation(annotation_id)
        if before is None:
            return
        after = dataclasses.replace(before, shape=shape)
        self.undo_stack.push(UpdateAnnotation(self._require(), before, after, self._on_media_changed, f"Edit {shape.kind}"))

    def _on_attributes(self, annotation_id: int, attributes: dict[str, Any]) -> None:
        before = self.session.annotation(annotation_id)
        if before is not None:
            after = dataclasses.replace(before, attributes=attributes)
            self.undo_stack.push(UpdateAnnotation(self._require(), before, after, self._on_media_changed, "Edit attributes"))

    def relabel(self, annotation_ids: list[int], label_id: int) -> None:
        wanted = set(annotation_ids)
        changes = [
            (ann, dataclasses.replace(ann, label_id=label_id))
            for ann in self.session.annotations
            if ann.id in wanted and ann.label_id != label_id
        ]
        if not changes:
            return
        self.undo_stack.beginMacro("Change label")
        for before, after in changes:
            self.undo_stack.push(UpdateAnnotation(self._require(), before, after, self._on_media_changed, "Change label"))
        self.undo_stack.endMacro()
        self.session.use_label(label_id)

    def delete_selection(self) -> None:
        ids = list(self.session.selection)
        if ids:
            self.undo_stack.push(DeleteAnnotations(self._require(), ids, self._on_media_changed, f"Delete {len(ids)} shapes"))

    def select_all(self) -> None:
        self.session.select_all()

    def copy_selection(self) -> None:
        if copied := self.session.copy():
            self.statusBar().showMessage(f"Copied {copied} shapes", 3000)

    def paste(self) -> None:
        """Paste copied shapes onto the shown image (often the next one), clipped to it, as human shapes."""
        result = self.session.paste()
        if not self.session.clipboard or self.media is None:
            return
        self.statusBar().showMessage(result.message(), 8000)
        if result.annotations:
            command = AddAnnotations(self._require(), result.annotations, self._on_media_changed, f"Paste {len(result.annotations)} shapes")
            self.undo_stack.push(command)
            self.session.select(command.ids)

    def _on_review_state(self, media_id: int, state: str) -> None:
        self._require().set_review_state(media_id, state)  # type: ignore[arg-type]
        self._saved()
        self.browser.refresh()

    # ---- tools -------------------------------------------------------------------------------------

    def set_tool(self, tool: Tool) -> None:
        if self.session.tool == tool:
            self._on_tool(tool)  # chosen again: the session does not emit an unchanged value
        self.session.tool = tool

    def _on_tool(self, tool: Tool) -> None:
        self.tool_actions[tool].setChecked(True)
        self.canvas.setFocus()
        if tool == "segment":
            self._start_segmenting()
        elif self.segment_tool is not None:
            self.segment_tool.clear()

    # ---- sources -----------------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        """After a run was added or deleted: the runs dock and View > Show sources follow the session."""
        self.session.reload_runs()
        if self.runs_panel is not None:
            self.runs_panel.refresh()

    def _fill_sources_menu(self, *_changed: object) -> None:
        self.sources_menu.clear()
        if self.project is None:
            return
        entries: list[tuple[str, str | int, bool]] = [("Human annotations", "human", self.session.human_visible)]
        entries += [(f"Run {run.name}", run.id, run.id in self.session.visible_runs) for run in self.project.runs()]
        for text, source, checked in entries:
            action = self.sources_menu.addAction(text)
            action.setData(source)
            action.setCheckable(True)
            action.setChecked(checked)
            action.toggled.connect(lambda on, s=source: self.session.set_source_visible(s, on))

    def set_run_threshold(self, run_id: int, min_score: float | None) -> None:
        """Show only predictions of a run scoring at least `min_score` (None shows them all)."""
        self.session.set_run_threshold(run_id, min_score)

    def set_source_visible(self, source: str | int, visible: bool) -> None:
        """Show or hide human annotations ("human") or a model run's predictions (its id)."""
        self.session.set_source_visible(source, visible)

    # ---- model docks -------------------------------------------------------------------------------

    def _install_model_docks(self, project: Project) -> None:
        """The model and runs docks work on one project: rebuilt when another project is opened."""
        from studio.ui.ask_panel import AskPanel
        from studio.ui.model_panel import ModelPanel
        from studio.ui.runs_panel import RunsPanel
        from studio.ui.search_panel import SearchPanel
        from studio.ui.train_panel import TrainPanel

        if self.runs_panel is not None:
            self.runs_panel.detach()
        for dock in (self.model_panel, self.runs_panel, self.ask_panel, self.search_panel, self.train_panel):
            if dock is not None:
                self.panels_menu.removeAction(dock.toggleViewAction())
                self.removeDockWidget(dock)
                dock.deleteLater()
        self.search_panel = SearchPanel(project, self)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.search_panel)
        self.tabifyDockWidget(self.media_dock, self.search_panel)
        self.panels_menu.addAction(self.search_panel.toggleViewAction())
        self.search_panel.open_media.connect(lambda media_id, frame: self.show_media(media_id, frame=frame))
        self.media_shown.connect(self.search_panel.set_current)
        self.canvas.selection_changed.connect(self.search_panel.set_selection)
        self.media_dock.raise_()
        self.model_panel = ModelPanel(project, self, lazy=True)
        self.runs_panel = RunsPanel(self.session, self.undo_stack, self)
        self.ask_panel = AskPanel(project, self.undo_stack, self)
        self.train_panel = TrainPanel(project, self)
        for dock in (self.model_panel, self.runs_panel, self.ask_panel, self.train_panel):
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            self.tabifyDockWidget(self.properties_dock, dock)  # one tab group keeps the canvas wide
            self.panels_menu.addAction(dock.toggleViewAction())
            for combo in dock.findChildren(QComboBox):  # long model names must not widen the whole column
                combo.setSizePolicy(QSizePolicy.Policy.Ignored, combo.sizePolicy().verticalPolicy())
        self.properties_dock.raise_()
        self.model_panel.run_finished.connect(self._on_run_finished)
        self.train_panel.model_trained.connect(self._on_model_trained)
        self.model_panel.run_failed.connect(lambda message: self.statusBar().showMessage(message, 10000))
        self.runs_panel.annotations_changed.connect(self._on_predictions_accepted)
        self.media_shown.connect(self.ask_panel.set_current)
        self.canvas.selection_changed.connect(self.ask_panel.set_selection)
        self.ask_panel.data_changed.connect(self._on_answer_copied)

    def _on_answer_copied(self, media_id: int) -> None:
        """An answer became a caption, tag or attribute (or that was undone): show it."""
        self._on_media_changed(media_id)
        if self.media is not None and self.media.id == media_id:
            project = self._require()
            self.media = project.get_media(media_id)
            self.tags_panel.show_media(self.media, project.tags(media_id))

    def compare_runs(self) -> None:
        """Open the comparison window on the runs shown; its "open image" brings the image here to fix it."""
        self._open_comparison(sorted(self.session.visible_runs))

    def _open_comparison(self, runs: list[int], media_ids: list[int] | None = None) -> None:
        from studio.ui.compare_window import CompareWindow

        window = CompareWindow(self._require(), runs, media_ids=media_ids, parent=self)
        window.open_media.connect(lambda media_id: self.show_media(media_id))
        window.open_frame.connect(lambda media_id, frame: self.show_media(media_id, frame=frame))
        window.show()

    def _on_run_finished(self, run_id: int) -> None:
        self.session.reload_labels()  # a detector may have brought new class names
        self.refresh_runs()
        self.session.set_source_visible(run_id, True)  # show what the model just found

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

    def set_theme(self, name: str, *, remember: bool = True) -> None:
        theme.apply(name)
        for action in self.theme_group.actions():
            action.setChecked(action.data() == name)
        self.canvas.setBackgroundBrush(QApplication.palette().dark())  # the new palette, not the cached one
        if remember:
            app_settings.update(theme=name)

