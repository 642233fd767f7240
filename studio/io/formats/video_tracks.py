"""The interchange form of video formats (CVAT for video, MOTChallenge) and its glue to a project.

Image formats go through `Dataset` (one entry per image); a video file's annotations are tracks instead:
an identity with keyframes and outside ranges over one video's frames. Format modules translate files
to and from `VideoAnnotations`; `import_video` and `export_video` match the video, create labels and
tracks in one transaction, and materialise nothing (frames between keyframes stay interpolated).
"""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.errors import FormatError, NotFoundError, StudioError
from studio.core.shapes import Shape
from studio.core.tracks import FrameRange, normalize_ranges, shape_at
from studio.core.types import Annotation, Media
from studio.db import tracks as track_store
from studio.db.project import Project

VIDEO_FORMATS: dict[str, str] = {
    "cvat-video": "studio.io.formats.cvat_video",
    "mot": "studio.io.formats.mot",
}


@dataclass
class TrackData:
    label: str
    keyframes: list[tuple[int, Shape]]
    outside: tuple[FrameRange, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)
    last_frame: int | None = None
    """The last frame the object is present on, when the format says it ends (MOT); None: until the video ends."""


@dataclass
class VideoAnnotations:
    """One video's tracks and single-frame shapes, as a format file holds them."""

    source: str | None
    """The video's file name as the file records it (CVAT's <source>), used to find it in the project."""
    frame_count: int | None
    size: tuple[int, int] | None
    """(height, width) when the file says."""
    labels: list[str]
    tracks: list[TrackData]
    shapes: list[tuple[int, str, Shape, dict[str, Any]]] = field(default_factory=list)
    """Shapes that belong to one frame only: (frame, label, shape, attributes)."""
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class VideoImportReport:
    media: str
    tracks: int
    keyframes: int
    shapes: int
    labels_created: list[str]
    run: str | None
    skipped: list[str]


def _module(name: str) -> Any:
    if name not in VIDEO_FORMATS:
        raise StudioError(f"unknown video format {name!r}; choose one of {', '.join(VIDEO_FORMATS)}")
    return importlib.import_module(VIDEO_FORMATS[name])


def _find_video(project: Project, wanted: str | None, recorded: str | None) -> Media:
    videos = [m for m in project.list_media() if m.kind == "video"]
    name = wanted or recorded
    if name is not None:
        matches = [m for m in videos if m.name == Path(name).name or m.path == name]
        if len(matches) == 1:
            return matches[0]
        if wanted is not None or len(videos) != 1:
            raise NotFoundError(f"no video named {Path(name).name} in the project (videos: "
                                f"{', '.join(m.name for m in videos) or 'none'}); add it first or pass --media")
    if len(videos) == 1:
        return videos[0]
    raise StudioError(f"the file names no video and the project has {len(videos)}; choose one with --media NAME")


def import_video(
    project: Project, format_name: str, path: Path | str, *, media_name: str | None = None,
    run_name: str | None = None, skip_bad: bool = False,
) -> VideoImportReport:
    """Read a video annotation file into tracks (as human annotations, or a new run); all or nothing."""
    data: VideoAnnotations = _module(format_name).read(Path(path), skip_bad=skip_bad)
    if not data.tracks and not data.shapes:
        raise FormatError(f"{path}: no tracks or shapes to import")
    media = _find_video(project, media_name, data.source)
    if data.size is not None and data.size != media.size:
        raise FormatError(f"{path} is for a {data.size[1]}x{data.size[0]} video; {media.name} is "
                          f"{media.width}x{media.height}")
    last = max([f for t in data.tracks for f, _ in t.keyframes] + [s[0] for s in data.shapes])
    if last >= media.frame_count:
        raise FormatError(f"{path} has shapes on frame {last}; {media.name} has {media.frame_count} frames")
    existing = {label.name for label in project.labels()}
    with project.transaction():
        run_id = None
        if run_name is not None:
            run_id = project.create_run(f"import:{format_name}", name=run_name, params={"file": str(path)}).id
        label_ids = {name: project.ensure_label(name).id for name in dict.fromkeys(data.labels)}
        for track in data.tracks:
            label_id = label_ids.get(track.label) or project.ensure_label(track.label).id
            label_ids[track.label] = label_id
            outside = list(track.outside)
            if track.last_frame is not None and track.last_frame < media.frame_count - 1:
                outside.append((track.last_frame + 1, media.frame_count - 1))
            track_store.create_track(project, media.id, label_id, run_id=run_id, attributes=track.attributes,
                                     keyframes=track.keyframes, outside=outside)
        project.add_annotations(
            Annotation(media_id=media.id, label_id=label_ids.get(label) or project.ensure_label(label).id,
                       shape=shape, frame=frame, run_id=run_id, attributes=attributes)
            for frame, label, shape, attributes in data.shapes
        )
        if run_id is not None:
            project.finish_run(run_id, "complete")
    return VideoImportReport(
        media=media.name, tracks=len(data.tracks), keyframes=sum(len(t.keyframes) for t in data.tracks),
        shapes=len(data.shapes), labels_created=sorted(set(label_ids) - existing), run=run_name,
        skipped=data.problems,
    )


def video_annotations(project: Project, media: Media, source: track_store.Source = "human") -> VideoAnnotations:
    """A video's tracks and single-frame shapes from the project, ready for a writer."""
    names = {label.id: label.name for label in project.labels()}
    track_data = [
        TrackData(names[track.label_id], list(keys), track.outside, dict(track.attributes))
        for track, keys in track_store.load_tracks(project, media.id, source).items
    ]
    shapes = [(a.frame, names[a.label_id], a.shape, dict(a.attributes))
              for a in project.annotations(media.id, source=source) if a.track_id is None]
    used = {t.label for t in track_data} | {s[1] for s in shapes}
    return VideoAnnotations(media.name, media.frame_count, media.size, [n for n in names.values() if n in used],
                            track_data, shapes)


def export_video(
    project: Project, format_name: str, media_name: str | None, out: Path | str,
    source: track_store.Source = "human",
) -> tuple[Path, VideoAnnotations]:
    """Write one video's tracks to `out` (a file), through a temporary file moved into place when complete."""
    module = _module(format_name)
    media = _find_video(project, media_name, None)
    data = video_annotations(project, media, source)
    if not data.tracks and not data.shapes:
        raise StudioError(f"{media.name} has no tracks or shapes to export")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(handle)
    try:
        module.write(data, Path(temporary))
        shutil.move(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out, data


def track_frames(track: TrackData, frame_count: int) -> list[tuple[int, Shape]]:
    """Every frame where the track is present, with its (interpolated) shape: for per-frame formats (MOT)."""
    if not track.keyframes:
        return []
    found = (shape_at(track.keyframes, track.outside, frame) for frame in range(track.keyframes[0][0], frame_count))
    return [(track.keyframes[0][0] + i, hit[0]) for i, hit in enumerate(found) if hit is not None]


def outside_from_markers(markers: Sequence[tuple[int, bool]], last_frame: int) -> tuple[FrameRange, ...]:
    """CVAT's keyframe flags, (frame, outside) sorted by frame, as inclusive outside ranges.

    An outside keyframe hides the object from its frame until the next keyframe that is not outside, or
    until `last_frame`.
    """
    ranges: list[FrameRange] = []
    start: int | None = None
    for frame, outside in markers:
        if outside and start is None:
            start = frame
        elif not outside and start is not None:
            if frame - 1 >= start:
                ranges.append((start, frame - 1))
            start = None
    if start is not None and last_frame >= start:
        ranges.append((start, last_frame))
    return normalize_ranges(ranges)
