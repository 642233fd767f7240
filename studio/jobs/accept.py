"""Accept model predictions into the human annotations: one, all above a score, or per class.

Accepted copies remember where they came from (`attributes["accepted_from"]`: run id and prediction id), so
accepting the same predictions twice adds nothing, and undo is deleting exactly what an accept returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from studio.core.errors import StudioError
from studio.core.types import Annotation
from studio.db.project import Project

ORIGIN_KEY = "accepted_from"


def accept_predictions(
    project: Project,
    run_id: int,
    *,
    annotation_ids: Sequence[int] | None = None,
    min_score: float | None = None,
    label_ids: Sequence[int] | None = None,
    media_ids: Sequence[int] | None = None,
    accepted_by: str | None = None,
) -> list[Annotation]:
    """Copy the run's predictions matching every filter into human annotations; returns the new ones."""
    run = project.get_run(run_id)
    predictions = project.annotations(source=run.id, label_ids=label_ids, min_score=min_score)
    if annotation_ids is not None:
        wanted = set(annotation_ids)
        predictions = [p for p in predictions if p.id in wanted]
        missing = wanted - {p.id for p in predictions}
        if missing:
            raise StudioError(f"annotations {sorted(missing)} are not predictions of run {run.name!r}")
    if media_ids is not None:
        media = set(media_ids)
        predictions = [p for p in predictions if p.media_id in media]
    already = {
        a.attributes[ORIGIN_KEY]["annotation"]
        for a in project.annotations(source="human")
        if isinstance(a.attributes.get(ORIGIN_KEY), dict)
    }
    accepted: list[Annotation] = []
    with project.transaction():
        for prediction in predictions:
            if prediction.id in already:
                continue
            copy = replace(
                prediction, id=None, run_id=None, score=None, created_at=None, updated_at=None,
                created_by=accepted_by or f"run:{run.name}",
                attributes={
                    **prediction.attributes,
                    ORIGIN_KEY: {"run": run.id, "annotation": prediction.id, "score": prediction.score},
                },
            )
            accepted.append(project.add_annotation(copy))
    return accepted


def undo_accept(project: Project, accepted: Sequence[Annotation]) -> int:
    """Delete what an accept added (those still there); returns how many were deleted."""
    return len(project.delete_annotations([a.id for a in accepted if a.id is not None]))


def accept_tags(project: Project, run_id: int, *, min_score: float | None = None) -> int:
    """Add a tagging run's tags (those scoring at least `min_score`) to the human tags; returns how many
    tags were new."""
    by_media: dict[int, set[str]] = {}
    for media_id, name, _score in project.run_tags(run_id, min_score=min_score):
        by_media.setdefault(media_id, set()).add(name)
    added = 0
    with project.transaction():
        for media_id, names in by_media.items():
            current = set(project.tags(media_id))
            added += len(names - current)
            project.set_tags(media_id, current | names)
    return added
