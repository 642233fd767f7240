"""Tracks in a project: rows of `tracks`, whose keyframes are the annotations carrying the track's id.

Kept beside `Project` rather than inside it: a track is a thin layer over annotations (every reader of
annotations sees the keyframes as ordinary shapes on their frames), and interpolation happens in
studio.core.tracks on demand. Each function is one short transaction, or part of `project.transaction()`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import delete, func, select, update

from studio.core.errors import NotFoundError, StudioError
from studio.core.shapes import Shape
from studio.core.tracks import FrameRange, Track, TrackShape, normalize_ranges, shape_at
from studio.core.types import Annotation
from studio.db.project import Project, Source, _annotation
from studio.db.schema import AnnotationRow, TrackRow

INTERPOLATED = "interpolated"
"""Attribute set on annotations materialised from a track between its keyframes (exports)."""


def _track(row: TrackRow) -> Track:
    outside = tuple((int(a), int(b)) for a, b in (row.outside or []))
    return Track(id=row.id, media_id=row.media_id, label_id=row.label_id, run_id=row.run_id,
                 attributes=dict(row.attributes or {}), outside=outside)


def create_track(
    project: Project, media_id: int, label_id: int, *, run_id: int | None = None,
    attributes: dict[str, Any] | None = None, keyframes: Sequence[tuple[int, Shape]] = (),
    outside: Sequence[FrameRange] = (), created_by: str | None = None,
) -> Track:
    """A new track on a video with its first keyframes (frame, shape); returns it."""
    frames = [frame for frame, _ in keyframes]
    if len(set(frames)) != len(frames):
        raise StudioError("a track has at most one keyframe per frame")
    with project.transaction(), project._session() as s:
        media = project.get_media(media_id)
        if media.kind != "video":
            raise StudioError(f"{media.name} is an image; tracks belong to videos")
        _check_frames(frames, media.frame_count, media.name)
        row = TrackRow(media_id=media_id, label_id=label_id, run_id=run_id, attributes=dict(attributes or {}),
                       outside=[list(r) for r in normalize_ranges(outside)])
        s.add(row)
        s.flush()
        track = _track(row)
        project.add_annotations(
            Annotation(media_id=media_id, label_id=label_id, shape=shape, frame=frame, run_id=run_id,
                       track_id=track.id, created_by=created_by)
            for frame, shape in keyframes
        )
    return track


def _check_frames(frames: Sequence[int], frame_count: int, name: str) -> None:
    bad = [f for f in frames if not 0 <= f < frame_count]
    if bad:
        raise StudioError(f"frame {bad[0]} is outside {name} (frames 0..{frame_count - 1})")


def get_track(project: Project, track_id: int) -> Track:
    with project._session() as s:
        row = s.get(TrackRow, track_id)
        if row is None:
            raise NotFoundError(f"no track with id {track_id}")
        return _track(row)


def tracks(project: Project, media_id: int | None = None, source: Source = "human") -> list[Track]:
    """Tracks of a video (or of the project), of one source: "human", "all" or a run id."""
    query = select(TrackRow).order_by(TrackRow.id)
    if media_id is not None:
        query = query.where(TrackRow.media_id == media_id)
    if source == "human":
        query = query.where(TrackRow.run_id.is_(None))
    elif source != "all":
        query = query.where(TrackRow.run_id == source)
    with project._session() as s:
        return [_track(row) for row in s.scalars(query)]


def count_tracks(project: Project) -> int:
    with project._session() as s:
        return int(s.scalar(select(func.count()).select_from(TrackRow)) or 0)


def keyframes(project: Project, track_id: int) -> list[Annotation]:
    """The track's keyframe annotations, by frame."""
    with project._session() as s:
        rows = s.scalars(select(AnnotationRow).where(AnnotationRow.track_id == track_id).order_by(AnnotationRow.frame))
        return [_annotation(row) for row in rows]


def set_keyframe(project: Project, track_id: int, frame: int, shape: Shape, *, created_by: str | None = None) -> Annotation:
    """Make `frame` a keyframe with `shape` (replacing that frame's keyframe if there is one)."""
    track = get_track(project, track_id)
    media = project.get_media(track.media_id)
    _check_frames([frame], media.frame_count, media.name)
    existing = next((ann for ann in keyframes(project, track_id) if ann.frame == frame), None)
    if existing is not None:
        return project.update_annotation(replace(existing, shape=shape))
    return project.add_annotation(Annotation(media_id=track.media_id, label_id=track.label_id, shape=shape,
                                             frame=frame, run_id=track.run_id, track_id=track_id, created_by=created_by))


def remove_keyframe(project: Project, track_id: int, frame: int) -> list[Annotation]:
    """Stop `frame` being a keyframe (the frame is interpolated again); returns what was deleted, for undo."""
    ids = [ann.id for ann in keyframes(project, track_id) if ann.frame == frame and ann.id is not None]
    return project.delete_annotations(ids)


def set_outside(project: Project, track_id: int, ranges: Sequence[FrameRange]) -> Track:
    """Replace the frame ranges where the object is absent."""
    cleaned = normalize_ranges(ranges)
    with project._session() as s:
        result = s.execute(update(TrackRow).where(TrackRow.id == track_id).values(outside=[list(r) for r in cleaned]))
        if result.rowcount == 0:
            raise NotFoundError(f"no track with id {track_id}")
    return get_track(project, track_id)


def delete_track(project: Project, track_id: int) -> list[Annotation]:
    """Delete a track and its keyframes; returns the keyframes (for undo)."""
    with project.transaction(), project._session() as s:
        get_track(project, track_id)
        deleted = project.delete_annotations([a.id for a in keyframes(project, track_id) if a.id is not None])
        s.execute(delete(TrackRow).where(TrackRow.id == track_id))
    return deleted


def join_into_track(project: Project, annotation_ids: Sequence[int]) -> Track:
    """Make existing per-frame annotations of one video the keyframes of a new track (label of the first)."""
    anns = [project.get_annotation(i) for i in annotation_ids]
    if not anns:
        raise StudioError("choose the annotations to join into a track")
    media_ids, runs = {a.media_id for a in anns}, {a.run_id for a in anns}
    if len(media_ids) != 1 or len(runs) != 1:
        raise StudioError("a track joins annotations of one video and one source")
    frames = [a.frame for a in anns]
    if len(set(frames)) != len(frames):
        raise StudioError("a track has at most one keyframe per frame: choose one annotation per frame")
    first = min(anns, key=lambda a: a.frame)
    with project.transaction():
        track = create_track(project, first.media_id, first.label_id, run_id=first.run_id)
        for ann in anns:
            project.update_annotation(replace(ann, track_id=track.id, label_id=first.label_id))
    return track


@dataclass(frozen=True, slots=True)
class TrackSet:
    """The tracks of one video with their keyframes, loaded once: `at(frame)` for display and playback."""

    items: tuple[tuple[Track, tuple[tuple[int, Shape], ...]], ...]

    def at(self, frame: int) -> list[TrackShape]:
        shapes = []
        for track, keys in self.items:
            found = shape_at(keys, track.outside, frame)
            if found is not None:
                shapes.append(TrackShape(track, frame, found[0], found[1]))
        return shapes


def load_tracks(project: Project, media_id: int, source: Source = "human") -> TrackSet:
    """Every track of a video (one source) with its keyframes, in two queries."""
    found = tracks(project, media_id, source)
    by_track: dict[int, list[tuple[int, Shape]]] = {t.id: [] for t in found}
    if found:
        with project._session() as s:
            rows = s.scalars(select(AnnotationRow).where(AnnotationRow.media_id == media_id,
                                                         AnnotationRow.track_id.in_(list(by_track)))
                             .order_by(AnnotationRow.frame))
            for row in rows:
                by_track[row.track_id].append((row.frame, _annotation(row).shape))  # type: ignore[index]
    return TrackSet(tuple((t, tuple(by_track[t.id])) for t in found))


def materialize(project: Project, media_id: int, source: Source = "human", *, stride: int = 1) -> Iterator[Annotation]:
    """Annotations for the frames between keyframes (frames that are multiples of `stride`), for exports and
    evaluation.

    Keyframes are not repeated: they are annotations already. Each carries its track id and the attribute
    `interpolated: true`.
    """
    if stride < 1:
        raise StudioError(f"the frame stride must be at least 1, got {stride}")
    media = project.get_media(media_id)
    for track, keys in load_tracks(project, media_id, source).items:
        if not keys:
            continue
        keyed = {frame for frame, _ in keys}
        first = -(-keys[0][0] // stride) * stride  # frames that are multiples of the stride: shared by all tracks
        for frame in range(first, media.frame_count, stride):
            if frame in keyed:
                continue
            found = shape_at(keys, track.outside, frame)
            if found is not None:
                yield Annotation(media_id=media_id, label_id=track.label_id, shape=found[0], frame=frame,
                                 run_id=track.run_id, track_id=track.id,
                                 attributes={**track.attributes, INTERPOLATED: True})
