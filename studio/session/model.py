"""The labelling session: what the window shows and which choices the person made, with no Qt.

napari's `ViewerModel` is the example: one model holds the state as evented fields (psygnal emits a
field's signal only when its value really changes), and every view (canvas, panels, menus, and the
search, question and training panels to come) connects to the fields it shows. No view refreshes
another; a view that wants a change writes the field. The CLI and tests drive the same object.

    session = Session()
    session.events.annotations.connect(lambda shown: print(len(shown)))
    session.open(project)
    session.show(media_id)            # media, frame; then `refresh_annotations()` once pixels are there
    session.visible_runs = {run_id}   # the shown annotations are re-read by the session itself
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from typing import Any, Literal

from psygnal import evented

from studio.core.errors import StudioError
from studio.core.types import PALETTE, Annotation, Label, Media
from studio.db.project import Project
from studio.session.editing import PasteResult, paste_onto, visible_annotations

Tool = Literal["select", "box", "rotated_box", "polygon", "polyline", "points", "brush", "eraser", "segment"]
TOOLS: tuple[Tool, ...] = ("select", "box", "rotated_box", "polygon", "polyline", "points", "brush", "eraser", "segment")

LAST_STATE_KEY = "ui.last"
"""Project setting: where the person was (media, frame, view) and the session's choices, restored on open."""
RECENT_LABELS_KEY = "ui.recent_labels"
RUN_COLORS_KEY = "run_colors"
"""Project setting: {run id (as text): "#rrggbb"}, so a run keeps its colour across sessions."""
RECENT_LIMIT = 9
_REFRESHING_FIELDS = ("hidden_labels", "human_visible", "visible_runs", "run_thresholds")
"""Fields that change which annotations are shown: a change re-reads them."""


def user_name() -> str:
    """Who made an annotation: the login name, as labelling tools record it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


@evented
@dataclass(eq=False)
class Session:
    """One person's labelling session on one project. Each field has a signal: `session.events.<field>`."""

    project: Project | None = None
    media: Media | None = None
    frame: int = 0
    labels: tuple[Label, ...] = ()
    label_counts: dict[int, int] = field(default_factory=dict)
    current_label_id: int | None = None
    recent_labels: tuple[int, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    """The shapes shown on the current media and frame, after the visibility rules."""
    selection: tuple[int, ...] = ()
    """Ids of the selected annotations (always a subset of `annotations`)."""
    clipboard: tuple[Annotation, ...] = ()
    hidden_labels: frozenset[int] = frozenset()
    human_visible: bool = True
    visible_runs: frozenset[int] = frozenset()
    run_thresholds: dict[int, float] = field(default_factory=dict)
    """Run id -> lowest score shown (absent: all of the run's predictions)."""
    run_colors: dict[int, str] = field(default_factory=dict)
    """Run id -> the colour its predictions are drawn in (every run of the project has one)."""
    tool: Tool = "select"
    last_drawing_tool: Tool = "box"
    brush_size: int = 8
    shapes_visible: bool = True

    def __post_init__(self) -> None:
        for name in _REFRESHING_FIELDS:
            getattr(self.events, name).connect(self.refresh_annotations)
        self.events.tool.connect(self._remember_drawing_tool)

    # ---- project, media and frame ------------------------------------------------------------------

    def require(self) -> Project:
        if self.project is None:
            raise StudioError("open or create a project first (File > Open project)")
        return self.project

    def open(self, project: Project) -> None:
        """Start on `project`: its labels, recent labels and the choices saved by the last session."""
        saved = project.get_setting(LAST_STATE_KEY, {}) or {}
        with self.events.paused(reducer=lambda a, b: b):  # one emission per field, once all are set
            self.media = None
            self.frame = 0
            self.annotations = ()
            self.selection = ()
            self.clipboard = ()
            self.project = project
            self.recent_labels = tuple(i for i in project.get_setting(RECENT_LABELS_KEY, []) if isinstance(i, int))
            self.reload_labels()
            first = self.labels[0].id if self.labels else None
            self.current_label_id = self.recent_labels[0] if self.recent_labels else first
            self.visible_runs = frozenset(i for i in saved.get("runs", []) if isinstance(i, int))
            self.run_thresholds = {int(k): float(v) for k, v in (saved.get("thresholds") or {}).items()}
            self.reload_runs()
            self.human_visible = bool(saved.get("human", True))
            self.brush_size = int(saved.get("brush", self.brush_size))

    def remembered_media(self) -> tuple[Media | None, int, dict[str, float] | None]:
        """The media, frame and view the project was left on; else its first media, frame 0, no view."""
        project = self.require()
        saved = project.get_setting(LAST_STATE_KEY, {}) or {}
        media_id = saved.get("media")
        if isinstance(media_id, int):
            try:
                return project.get_media(media_id), int(saved.get("frame", 0)), saved.get("view")
            except StudioError:  # removed since
                pass
        first = project.list_media(limit=1)
        return (first[0] if first else None), 0, None

    def save_state(self, view: dict[str, float] | None = None) -> None:
        """Store where the person is and their choices in the project (the window calls this, debounced)."""
        if self.project is None:
            return
        saved = self.project.get_setting(LAST_STATE_KEY, {}) or {}
        state: dict[str, Any] = {
            "runs": sorted(self.visible_runs),
            "thresholds": {str(k): v for k, v in self.run_thresholds.items()},
            "human": self.human_visible,
            "brush": self.brush_size,
        }
        if self.media is not None:
            state |= {"media": self.media.id, "frame": self.frame, "view": view or saved.get("view")}
        if state != saved:
            self.project.set_setting(LAST_STATE_KEY, saved | state)

    def show(self, media_id: int, frame: int = 0) -> Media:
        """Make a media (and frame) current. The shown annotations follow with `refresh_annotations()`."""
        media = self.require().get_media(media_id)
        with self.events.paused(reducer=lambda a, b: b):
            if self.media is None or self.media.id != media.id:
                self.selection = ()
            self.media = media
            self.frame = min(max(frame, 0), media.frame_count - 1)
        return media

    def show_frame(self, frame: int) -> None:
        if self.media is not None and self.media.kind == "video":
            self.frame = min(max(frame, 0), self.media.frame_count - 1)

    # ---- annotations -------------------------------------------------------------------------------

    def refresh_annotations(self, *_changed: object) -> None:
        """Re-read the shapes of the current media and frame through the visibility rules."""
        if self.project is None or self.media is None:
            self.annotations = ()
            return
        human = self.project.annotations(self.media.id, frame=self.frame) if self.human_visible else []
        predictions = [
            ann
            for run_id in sorted(self.visible_runs)
            for ann in self.project.annotations(
                self.media.id, frame=self.frame, source=run_id, min_score=self.run_thresholds.get(run_id)
            )
        ]
        shown = visible_annotations(human, predictions, hidden_labels=self.hidden_labels)
        self.annotations = tuple(shown)
        ids = {ann.id for ann in shown}
        self.selection = tuple(i for i in self.selection if i in ids)

    def annotation(self, annotation_id: int) -> Annotation | None:
        return next((ann for ann in self.annotations if ann.id == annotation_id), None)

    def selected(self) -> list[Annotation]:
        wanted = set(self.selection)
        return [ann for ann in self.annotations if ann.id in wanted]

    def select(self, annotation_ids: list[int] | tuple[int, ...]) -> None:
        shown = {ann.id for ann in self.annotations}
        self.selection = tuple(i for i in annotation_ids if i in shown)

    def select_all(self) -> None:
        self.selection = tuple(ann.id for ann in self.annotations if ann.id is not None)

    def new_annotation(self, shape: Any, label_id: int) -> Annotation:
        """A human annotation of `shape` on the current media and frame (not stored yet)."""
        if self.media is None:
            raise StudioError("open an image first")
        return Annotation(media_id=self.media.id, frame=self.frame, label_id=label_id, shape=shape, created_by=user_name())

    def copy(self) -> int:
        """Put the selected shapes on the clipboard; returns how many."""
        self.clipboard = tuple(self.selected())
        return len(self.clipboard)

    def paste(self) -> PasteResult:
        """The clipboard as new shapes on the current image, clipped to it (to be stored by the caller)."""
        if self.media is None or not self.clipboard:
            return PasteResult([])
        return paste_onto(self.clipboard, self.media, frame=self.frame, created_by=user_name())

    # ---- labels and sources ------------------------------------------------------------------------

    def reload_labels(self) -> None:
        project = self.require()
        self.labels = tuple(project.labels())
        self.label_counts = project.label_counts()
        ids = {label.id for label in self.labels}
        if self.current_label_id not in ids:
            self.current_label_id = self.labels[0].id if self.labels else None
        self.hidden_labels = frozenset(self.hidden_labels & ids)

    def label_map(self) -> dict[int, Label]:
        return {label.id: label for label in self.labels}

    def label_number(self, number: int) -> Label | None:
        """The label number key `number` (1-9) picks, in the labels panel's order."""
        return self.labels[number - 1] if 0 < number <= len(self.labels) else None

    def use_label(self, label_id: int) -> None:
        """A shape got this label: it becomes current and first among the recent labels (kept by the project)."""
        self.current_label_id = label_id
        self.recent_labels = (label_id, *[i for i in self.recent_labels if i != label_id][: RECENT_LIMIT - 1])
        self.require().set_setting(RECENT_LABELS_KEY, list(self.recent_labels))

    def set_label_visible(self, label_id: int, visible: bool) -> None:
        self.hidden_labels = self.hidden_labels - {label_id} if visible else self.hidden_labels | {label_id}

    def set_source_visible(self, source: str | int, visible: bool) -> None:
        """Show or hide human annotations ("human") or a model run's predictions (its id)."""
        if source == "human":
            self.human_visible = visible
        elif isinstance(source, int):
            self.visible_runs = self.visible_runs | {source} if visible else self.visible_runs - {source}

    def set_run_threshold(self, run_id: int, min_score: float | None) -> None:
        thresholds = dict(self.run_thresholds)
        if min_score is None:
            thresholds.pop(run_id, None)
        else:
            thresholds[run_id] = min_score
        self.run_thresholds = thresholds

    def reload_runs(self) -> None:
        """After a run was added or deleted: colours for every run; a deleted one is no longer shown."""
        project = self.require()
        stored = project.get_setting(RUN_COLORS_KEY, {}) or {}
        runs = [run.id for run in project.runs()]
        self.run_colors = {i: stored.get(str(i), PALETTE[(i * 3) % len(PALETTE)]) for i in runs}
        self.visible_runs = self.visible_runs & set(runs)
        self.run_thresholds = {k: v for k, v in self.run_thresholds.items() if k in self.run_colors}

    def set_run_color(self, run_id: int, color: str) -> None:
        project = self.require()
        project.set_setting(RUN_COLORS_KEY, (project.get_setting(RUN_COLORS_KEY, {}) or {}) | {str(run_id): color})
        self.run_colors = self.run_colors | {run_id: color}

    def _remember_drawing_tool(self, tool: Tool) -> None:
        if tool not in ("select", "eraser"):
            self.last_drawing_tool = tool
