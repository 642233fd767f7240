"""Propagation jobs: tracks from a detector and a multi-object tracker, and one object followed by OpenCV.

`track_run` turns a detection run on a video into tracks: the stored predictions are fed frame by frame to
ByteTrack (the `trackers` package; supervision 0.31 dropped its own), and each identity becomes a track of
that run whose keyframes are its detections. Running the tracker over stored predictions, rather than
inside the detector loop, lets any run be tracked again with other settings and keeps detection itself in
one place (studio.jobs.predict). `detect_and_track` does both.

`follow` starts from one box and lets an OpenCV tracker (MIL, in opencv-python's main module) follow it
forward, adding keyframes until it loses the object or reaches the next keyframe of the track.

Both read frames sequentially and keep only the current frame, so memory stays flat with video length.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from typing import Any

import numpy as np

from studio.core.errors import StudioError
from studio.core.geometry import clip_to_image
from studio.core.shapes import Box
from studio.core.tracks import Track
from studio.core.types import Annotation, ModelRun
from studio.db import tracks as track_store
from studio.db.project import Project
from studio.jobs.predict import FrameRange, run_detection
from studio.jobs.runner import CancelCheck, ProgressCallback, ProgressMeter, never_cancelled


def track_run(
    project: Project, run: ModelRun, media_id: int, *, activation: float = 0.5, lost_frames: int = 30,
    progress: ProgressCallback | None = None, cancel: CancelCheck = never_cancelled,
) -> list[Track]:
    """Group a run's predictions on one video into tracks with ByteTrack; returns the new tracks.

    Predictions the tracker never confirms stay single-frame predictions of the run. Each track ends (an
    outside range to the video's end) after the last frame the tracker saw its object.
    """
    import supervision as sv
    from trackers import ByteTrackTracker

    media = project.get_media(media_id)
    if media.kind != "video":
        raise StudioError(f"{media.name} is an image; tracking needs a video")
    predictions = [a for a in project.annotations(media_id, source=run.id) if a.track_id is None]
    if not predictions:
        raise StudioError(f"run {run.name!r} has no predictions on {media.name} to track")
    by_frame: dict[int, list[Annotation]] = defaultdict(list)
    for ann in predictions:
        by_frame[ann.frame].append(ann)
    step = int(run.params.get("every_n") or 1)
    frames = range(min(by_frame), max(by_frame) + 1, step)
    fps = (media.fps or 30.0) / step
    tracker = ByteTrackTracker(lost_track_buffer=lost_frames, frame_rate=fps, track_activation_threshold=activation,
                               minimum_consecutive_frames=1)
    members: dict[int, list[Annotation]] = defaultdict(list)
    unconfirmed: dict[int, list[Annotation]] = {}
    meter = ProgressMeter(len(frames), progress)
    for done, frame in enumerate(frames, start=1):
        if cancel():
            raise StudioError("tracking cancelled; nothing was changed")
        anns = by_frame.get(frame, [])
        detections = sv.Detections(
            xyxy=np.array([_xyxy(a) for a in anns], dtype=np.float64).reshape(-1, 4),
            confidence=np.array([a.score if a.score is not None else 1.0 for a in anns], dtype=np.float64),
            class_id=np.array([a.label_id for a in anns], dtype=int),
            data={"index": np.arange(len(anns))},
        )
        tracked = tracker.update(detections)
        unconfirmed[frame] = []
        for tracker_id, index in zip(tracked.tracker_id, tracked.data["index"], strict=True):
            if tracker_id < 0:
                unconfirmed[frame].append(anns[int(index)])
            elif int(tracker_id) in members:
                members[int(tracker_id)].append(anns[int(index)])
            else:  # a new identity: ByteTrack confirms a track one frame after the detection that started it
                members[int(tracker_id)] = [*_starter(unconfirmed.get(frame - step, []), anns[int(index)]), anns[int(index)]]
        unconfirmed.pop(frame - step, None)
        if done % 50 == 0 or done == len(frames):
            meter.update(done)
    created: list[Track] = []
    with project.transaction():
        for tracker_id, anns in sorted(members.items()):
            label_id = Counter(a.label_id for a in anns).most_common(1)[0][0]
            last = anns[-1].frame
            outside = [(last + 1, media.frame_count - 1)] if last + 1 < media.frame_count else []
            track = track_store.create_track(project, media_id, label_id, run_id=run.id,
                                             attributes={"tracker_id": tracker_id}, outside=outside)
            for ann in anns:
                project.update_annotation(replace(ann, track_id=track.id, label_id=label_id))
            created.append(track)
    return created


def _starter(candidates: list[Annotation], first: Annotation) -> list[Annotation]:
    """The unconfirmed detection of the previous frame that started `first`'s track (best IoU >= 0.5), if any."""
    from studio.core.geometry import iou

    scored = [(iou(c.shape, first.shape), c) for c in candidates if c.label_id == first.label_id]
    best = max(scored, key=lambda pair: pair[0], default=(0.0, None))
    if best[1] is None or best[0] < 0.5:
        return []
    candidates.remove(best[1])
    return [best[1]]


def _xyxy(ann: Annotation) -> tuple[float, float, float, float]:
    x, y, w, h = ann.shape.bbox()
    return (x, y, x + w, y + h)


def detect_and_track(
    project: Project, plugin_id: str, media_id: int, *, frame_range: FrameRange | None = None, every_n: int = 1,
    activation: float = 0.5, progress: ProgressCallback | None = None, cancel: CancelCheck = never_cancelled,
    **detect_options: Any,
) -> tuple[ModelRun, list[Track]]:
    """A detection run over a video's frames, then its tracks (the run is kept even if tracking fails)."""
    run = run_detection(project, plugin_id, media_ids=[media_id], frame_range=frame_range, every_n=every_n,
                        progress=progress, cancel=cancel, **detect_options)
    if run.status != "complete":
        return run, []
    return run, track_run(project, run, media_id, activation=activation, progress=progress, cancel=cancel)


def follow(
    project: Project, annotation_id: int, *, max_frames: int = 300, step: int = 1,
    progress: ProgressCallback | None = None, cancel: CancelCheck = never_cancelled,
) -> tuple[Track, int]:
    """Follow the box of `annotation_id` forward with OpenCV's MIL tracker; returns (track, keyframes added).

    The annotation becomes the first keyframe of a new track unless it already belongs to one. Following
    stops at the video's end, after `max_frames`, at the track's next keyframe, or when the tracker loses
    the object; then the object is marked outside until the next keyframe (or the end).
    """
    import cv2

    from studio.io.media import iter_frames

    if step < 1 or max_frames < 1:
        raise StudioError("the step and the number of frames to follow must be at least 1")
    start = project.get_annotation(annotation_id)
    media = project.get_media(start.media_id)
    if media.kind != "video":
        raise StudioError(f"{media.name} is an image; following an object needs a video")
    if not isinstance(start.shape, Box):
        raise StudioError(f"the tracker follows boxes; annotation {annotation_id} is a {start.shape.kind}")
    track = (track_store.get_track(project, start.track_id) if start.track_id is not None
             else track_store.join_into_track(project, [annotation_id]))
    later = [a.frame for a in track_store.keyframes(project, track.id) if a.frame > start.frame]
    stop = min([start.frame + max_frames + 1, media.frame_count, *later])
    frames = iter_frames(project.resolve(media), range(start.frame, stop))
    cv2.setRNGSeed(0)  # MIL samples patches at random: the same box follows the same way every time
    tracker = cv2.TrackerMIL_create()
    _, first = next(frames)
    x, y, w, h = (int(round(v)) for v in start.shape.bbox())
    tracker.init(first, (x, y, max(w, 1), max(h, 1)))
    meter = ProgressMeter(stop - start.frame - 1, progress)
    keyframes: list[tuple[int, Box]] = []
    lost_at: int | None = None
    for frame, pixels in frames:
        if cancel():
            break
        ok, (bx, by, bw, bh) = tracker.update(pixels)
        if not ok:
            lost_at = frame
            break
        if (frame - start.frame) % step == 0 or frame == stop - 1:
            box = clip_to_image(Box.from_xywh(bx, by, bw, bh), media.size)
            keyframes.append((frame, box))  # type: ignore[arg-type]
        meter.update(frame - start.frame)
    with project.transaction():
        project.add_annotations(
            Annotation(media_id=media.id, label_id=track.label_id, shape=box, frame=frame, run_id=track.run_id,
                       track_id=track.id, created_by="opencv-mil")
            for frame, box in keyframes
        )
        if lost_at is not None:
            end = (later[0] - 1) if later else media.frame_count - 1
            track = track_store.set_outside(project, track.id, [*track.outside, (lost_at, end)])
    return track, len(keyframes)
