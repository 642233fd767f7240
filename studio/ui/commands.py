"""Undoable edits: QUndoCommands that call the Project service, so every step is saved at once.

Each command writes to the database in redo() and undo(); the window's view is refreshed through the
`changed` callback with the media the edit touched. A deleted annotation comes back under its old id,
so a redo after an undo after a delete addresses the same row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QUndoCommand

from studio.core.types import Annotation
from studio.db.project import Project

Changed = Callable[[int], None]
"""Called with the media id after an edit was stored."""


class AddAnnotations(QUndoCommand):
    """Add new annotations (drawn or pasted); undo deletes them, redo re-adds them with their ids."""

    def __init__(self, project: Project, annotations: Sequence[Annotation], changed: Changed, text: str) -> None:
        super().__init__(text)
        self.project = project
        self.annotations = list(annotations)
        self.changed = changed

    @property
    def ids(self) -> list[int]:
        return [ann.id for ann in self.annotations if ann.id is not None]

    def redo(self) -> None:
        with self.project.transaction():
            self.annotations = [self.project.add_annotation(ann) for ann in self.annotations]
        self._notify()

    def undo(self) -> None:
        self.project.delete_annotations(self.ids)
        self._notify()

    def _notify(self) -> None:
        for media_id in {ann.media_id for ann in self.annotations}:
            self.changed(media_id)


class UpdateAnnotation(QUndoCommand):
    """Replace an annotation's shape, label or attributes by an edited copy."""

    def __init__(self, project: Project, before: Annotation, after: Annotation, changed: Changed, text: str) -> None:
        super().__init__(text)
        self.project = project
        self.before = before
        self.after = after
        self.changed = changed

    def redo(self) -> None:
        self.project.update_annotation(self.after)
        self.changed(self.after.media_id)

    def undo(self) -> None:
        self.project.update_annotation(self.before)
        self.changed(self.before.media_id)


class DeleteAnnotations(QUndoCommand):
    """Delete annotations; undo re-inserts them under the same ids with their original timestamps."""

    def __init__(self, project: Project, annotation_ids: Sequence[int], changed: Changed, text: str) -> None:
        super().__init__(text)
        self.project = project
        self.annotation_ids = list(annotation_ids)
        self.deleted: list[Annotation] = []
        self.changed = changed

    def redo(self) -> None:
        self.deleted = self.project.delete_annotations(self.annotation_ids)
        for media_id in {ann.media_id for ann in self.deleted}:
            self.changed(media_id)

    def undo(self) -> None:
        with self.project.transaction():
            for ann in self.deleted:
                self.project.add_annotation(ann)
        for media_id in {ann.media_id for ann in self.deleted}:
            self.changed(media_id)


class SetCaption(QUndoCommand):
    """Replace a media item's caption (e.g. by a model's answer); undo restores the one before."""

    def __init__(self, project: Project, media_id: int, caption: str | None, changed: Changed, text: str) -> None:
        super().__init__(text)
        self.project = project
        self.media_id = media_id
        self.before = project.get_media(media_id).caption
        self.after = caption
        self.changed = changed

    def redo(self) -> None:
        self.project.set_caption(self.media_id, self.after)
        self.changed(self.media_id)

    def undo(self) -> None:
        self.project.set_caption(self.media_id, self.before)
        self.changed(self.media_id)


class SetTags(QUndoCommand):
    """Replace a media item's tags; undo restores the ones before."""

    def __init__(self, project: Project, media_id: int, tags: Sequence[str], changed: Changed, text: str) -> None:
        super().__init__(text)
        self.project = project
        self.media_id = media_id
        self.before = project.tags(media_id)
        self.after = list(tags)
        self.changed = changed

    def redo(self) -> None:
        self.project.set_tags(self.media_id, self.after)
        self.changed(self.media_id)

    def undo(self) -> None:
        self.project.set_tags(self.media_id, self.before)
        self.changed(self.media_id)
