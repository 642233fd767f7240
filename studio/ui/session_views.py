"""Each view of the labelling window observes the Session it shows, and writes back what the person chose.

These functions are the whole of the binding: after them no view is refreshed by hand. A view writes a
session field (or calls a session method); the session emits the field's signal only if the value really
changed, so a view that mirrors a field it also writes (selection, say) does not loop.
"""

from __future__ import annotations

from studio.core.types import Annotation
from studio.session import Session
from studio.ui.canvas import Canvas
from studio.ui.panels import AnnotationsPanel, LabelsPanel, PropertiesPanel, TagsPanel


def run_names(session: Session) -> dict[int, str]:
    return {run.id: run.name for run in session.project.runs()} if session.project else {}


def bind_canvas(canvas: Canvas, session: Session) -> None:
    """The canvas draws the session's shown annotations in label (or run) colours and shares its selection."""

    def show(*_changed: object) -> None:
        colors = {label.id: label.color for label in session.labels}
        names = {label.id: label.name for label in session.labels}
        canvas.set_annotations(list(session.annotations), colors, session.run_colors, names)
        canvas.select(list(session.selection))

    session.events.annotations.connect(show)
    session.events.run_colors.connect(show)
    session.events.labels.connect(show)  # a recoloured label
    session.events.selection.connect(lambda ids: canvas.select(list(ids)))
    session.events.tool.connect(canvas.set_tool)
    session.events.brush_size.connect(lambda size: setattr(canvas, "brush_radius", float(size)))
    session.events.shapes_visible.connect(canvas.set_shapes_visible)
    canvas.selection_changed.connect(session.select)


def bind_labels_panel(panel: LabelsPanel, session: Session) -> None:
    """Labels with counts and visibility; clicking one makes it the label of new shapes."""

    def show(*_changed: object) -> None:
        panel.set_labels(list(session.labels), session.label_counts, set(session.hidden_labels), session.current_label_id)

    for signal in (session.events.labels, session.events.label_counts, session.events.current_label_id):
        signal.connect(show)
    panel.current_changed.connect(lambda label_id: setattr(session, "current_label_id", label_id))
    panel.visibility_changed.connect(lambda: setattr(session, "hidden_labels", frozenset(panel.hidden_ids())))


def bind_annotations_panel(panel: AnnotationsPanel, session: Session) -> None:
    def show(*_changed: object) -> None:
        panel.set_annotations(list(session.annotations), session.label_map(), run_names(session))
        panel.select(list(session.selection))

    session.events.annotations.connect(show)
    session.events.labels.connect(show)
    session.events.selection.connect(lambda ids: panel.select(list(ids)))
    panel.selection_changed.connect(session.select)


def bind_properties_panel(panel: PropertiesPanel, session: Session) -> None:
    """The one selected annotation's label, attributes and origin (nothing for none or several)."""

    def show(*_changed: object) -> None:
        selected = session.selected()
        ann: Annotation | None = selected[0] if len(selected) == 1 else None
        panel.show_annotation(ann, list(session.labels), run_names(session) if ann and ann.run_id else {})

    for signal in (session.events.selection, session.events.annotations, session.events.labels):
        signal.connect(show)


def bind_tags_panel(panel: TagsPanel, session: Session) -> None:
    def show(*_changed: object) -> None:
        media = session.media
        panel.show_media(media, session.require().tags(media.id) if media is not None else [])

    session.events.media.connect(show)
