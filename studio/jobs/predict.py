"""Run a detector over media and store its predictions as a new model run.

Every call creates a new run (never overwrites one) recording the plugin, weights, parameters, device and
timing. Predictions are written in batches, so a cancel or a crash keeps what was done: a cancelled run is
marked "cancelled" with how far it got, a failing one "failed" with the error message.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.errors import NotFoundError, StudioError
from studio.core.geometry import clip_to_image, encode_mask
from studio.core.shapes import Box, Mask
from studio.core.types import Annotation, Media, ModelRun, TrainedModel
from studio.db.project import Project
from studio.jobs.runner import CancelCheck, ProgressCallback, ProgressMeter, never_cancelled
from studio.models.protocols import Detection, Detector, check_classes
from studio.models.registry import all_plugins, device_for, get_plugin, load_model
from studio.models.weights import sha256_of

FrameRange = tuple[int, int | None]
"""First frame and the frame to stop before (None: the end), as Python slices count."""


@dataclass(frozen=True, slots=True)
class WorkItem:
    media: Media
    frame: int


def parse_frame_range(text: str) -> FrameRange:
    """'A:B', 'A:' or ':B' -> (A, B); frames from A up to but not including B."""
    start, sep, stop = text.partition(":")
    try:
        if not sep:
            raise ValueError
        first = int(start) if start.strip() else 0
        last = int(stop) if stop.strip() else None
    except ValueError:
        raise StudioError(f"frame range must look like A:B (e.g. 0:100 or 50:), got {text!r}") from None
    if first < 0 or (last is not None and last <= first):
        raise StudioError(f"frame range {text!r} is empty or negative")
    return first, last


def plan(
    project: Project,
    media_ids: Sequence[int] | None,
    *,
    every_n: int = 1,
    frame_range: FrameRange | None = None,
    annotated_frames: bool = False,
) -> list[WorkItem]:
    """The (media, frame) pairs to run on: every image, and every n-th frame of videos within the range
    (only the frames holding human annotations with `annotated_frames`: a validation set)."""
    if every_n < 1:
        raise StudioError(f"--every must be 1 or more, got {every_n}")
    media = [project.get_media(i) for i in media_ids] if media_ids else project.list_media()
    items: list[WorkItem] = []
    for m in media:
        if m.kind == "image":
            items.append(WorkItem(m, 0))
            continue
        start, stop = frame_range or (0, None)
        if start >= m.frame_count:
            raise StudioError(f"{m.name} has {m.frame_count} frames; frame range {start}:{stop or ''} lies outside it")
        stop = m.frame_count if stop is None else min(stop, m.frame_count)
        frames = range(start, stop, every_n)
        if annotated_frames:
            frames = [f for f in project.annotated_frames(m.id) if f in frames]  # type: ignore[assignment]
        items += [WorkItem(m, f) for f in frames]
    if not items:
        raise StudioError("nothing to run on: the project has no media" if not media else "nothing to run on")
    return items


def _pixels(project: Project, items: Sequence[WorkItem]) -> Iterator[tuple[WorkItem, np.ndarray]]:
    """Decode the items in order; a video's run of items is read sequentially by one `iter_frames`."""
    from studio.io.media import iter_frames, read_image

    for _, run in itertools.groupby(items, key=lambda item: item.media.id):
        group = list(run)
        media = group[0].media
        if media.kind == "image":
            for item in group:
                yield item, read_image(project.resolve(item.media))
            continue
        for item, (_, frame) in zip(group, iter_frames(project.resolve(media), (i.frame for i in group)), strict=True):
            yield item, frame


def _batches(
    project: Project, items: Sequence[WorkItem], size: int
) -> Iterator[list[tuple[WorkItem, np.ndarray]]]:
    batch: list[tuple[WorkItem, np.ndarray]] = []
    for pair in _pixels(project, items):
        batch.append(pair)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class LabelIds:
    """Label ids by predicted class name, creating project labels on first sight."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.ids: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = self.project.ensure_label(name).id
        return self.ids[name]


def detections_to_annotations(
    item: WorkItem, found: Sequence[Detection], run_id: int, label_id: Callable[[str], int]
) -> list[Annotation]:
    """A run's predictions from a model's detections on one item: its mask when the model gave one (with the
    model's own box kept as the stored box, as COCO results carry both), else its box clipped to the image."""
    size = item.media.size
    result = []
    for det in found:
        box = clip_to_image(det.box, size)
        assert isinstance(box, Box)
        if box.width <= 0 or box.height <= 0:
            continue
        mask = None if det.mask is None else _mask_at(det.mask, size)
        shape, stated = (box, None) if mask is None else (mask, box.bbox())
        result.append(
            Annotation(
                item.media.id, label_id(det.label), shape, frame=item.frame, run_id=run_id, score=det.score, bbox=stated
            )
        )
    return result


def resolve_model(project: Project, model_id: str, weights: str | None) -> tuple[str, str | None]:
    """(plugin id, weights) for a plugin id, or for the name of a model trained on the project (its weights
    file, checked against the sha256 recorded at training)."""
    if model_id in {spec.id for spec in all_plugins()}:
        return model_id, weights
    try:
        trained = project.find_trained_model(model_id)
    except NotFoundError:
        get_plugin(model_id)  # the plugin error, which lists the plugins
        raise
    if weights is not None:
        raise StudioError(f"{model_id} is a model trained on the project; it brings its own weights (drop --weights)")
    return trained.plugin, str(trained_model_weights(project, trained))


def trained_model_weights(project: Project, model: TrainedModel) -> Path:
    """The weights file of a trained model, checked against its recorded sha256."""
    if model.weights is None:
        raise StudioError(f"{model.name} has no weights (its training {model.status})")
    path = project.root / model.weights
    if not path.is_file():
        raise NotFoundError(f"the weights of {model.name} are missing: {path}")
    if sha256_of(path) != model.sha256:
        raise StudioError(f"the weights of {model.name} ({path}) changed since training (sha256 mismatch)")
    return path


def _mask_at(mask: np.ndarray, size: tuple[int, int]) -> Mask | None:
    """A detector's (H, W) mask as a Mask on the image's pixel grid (resized if the model gave another
    size); None when it covers no pixel."""
    import cv2

    pixels = np.asarray(mask)
    if pixels.shape[:2] != size:
        pixels = cv2.resize(pixels.astype(np.uint8), (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
    pixels = pixels.astype(bool)
    return encode_mask(pixels) if pixels.any() else None


def run_detection(
    project: Project,
    plugin_id: str,
    *,
    weights: str | None = None,
    device: str | None = None,
    media_ids: Sequence[int] | None = None,
    every_n: int = 1,
    frame_range: FrameRange | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    classes: Sequence[str] | None = None,
    run_name: str | None = None,
    batch_size: int = 8,
    annotated_frames: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck = never_cancelled,
) -> ModelRun:
    """Detect objects on the chosen media (all by default) and return the new run (complete or cancelled).

    `plugin_id` is a plugin or a model trained on the project (see `resolve_model`). A failure while
    running marks the run "failed" with the message and re-raises the error.
    """
    plugin_id, weights = resolve_model(project, plugin_id, weights)
    spec = get_plugin(plugin_id)
    if spec.task != "detect":
        raise StudioError(f"{plugin_id} is a {spec.task} model, not a detector")
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise StudioError(f"confidence and IoU must lie in 0..1 (got conf={conf}, iou={iou})")
    if batch_size < 1:
        raise StudioError(f"batch size must be 1 or more, got {batch_size}")
    items = plan(project, media_ids, every_n=every_n, frame_range=frame_range, annotated_frames=annotated_frames)
    chosen_device = device_for(spec, device)
    params = {
        "conf": conf, "iou": iou, "classes": list(classes) if classes else None, "every_n": every_n,
        "frame_range": list(frame_range) if frame_range else None, "batch_size": batch_size,
        "media_ids": list(media_ids) if media_ids else None, "annotated_frames": annotated_frames,
    }
    # The model loads before the run exists: a bad weights file is one error, not a failed run to clean up.
    load_started = time.monotonic()
    detector: Detector = load_model(plugin_id, weights=weights, device=chosen_device)
    check_classes(detector, classes)  # a wrong class is bad input: no run is made for it
    load_seconds = round(time.monotonic() - load_started, 3)
    recorded_weights = weights or (spec.weights[0].name if spec.weights else None)
    run = project.create_run(plugin_id, name=run_name, weights=recorded_weights, params=params, device=chosen_device)
    meter = ProgressMeter(len(items), progress)
    done = predictions = 0
    infer_seconds = 0.0
    started = time.monotonic()

    def stats(**extra: object) -> dict[str, object]:
        return {
            "items": done, "items_planned": len(items), "predictions": predictions,
            "seconds_per_image": round(infer_seconds / done, 4) if done else None,
            "total_seconds": round(time.monotonic() - started, 3), "load_seconds": load_seconds, **extra,
        }

    try:
        label_id = LabelIds(project)
        meter.update(0)
        for batch in _batches(project, items, batch_size):
            if cancel():
                return project.finish_run(run.id, "cancelled", stats(partial=True))
            tick = time.perf_counter()
            found = detector.detect([pixels for _, pixels in batch], classes=classes, conf=conf, iou=iou)
            infer_seconds += time.perf_counter() - tick
            annotations = [
                ann
                for (item, _), dets in zip(batch, found, strict=True)
                for ann in detections_to_annotations(item, dets, run.id, label_id)
            ]
            predictions += project.add_annotations(annotations)
            done += len(batch)
            meter.update(done)
    except KeyboardInterrupt:  # Ctrl+C in `studio predict`: keep what was done, like Cancel in the GUI
        project.finish_run(run.id, "cancelled", stats(partial=True))
        raise
    except Exception as exc:
        project.finish_run(run.id, "failed", stats(error=str(exc), partial=done < len(items)))
        raise
    return project.finish_run(run.id, "complete", stats(partial=False))
