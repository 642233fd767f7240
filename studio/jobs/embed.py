"""Embed a project's images, video frames and annotation crops with a CLIP-like model, incrementally.

Only what is new or changed is encoded: every stored vector carries a stamp of what it was made from (the
file's size and mtime; for a crop also the box), so a second `studio embed` after adding images encodes
just those, and a re-saved file or a moved box is encoded again. Decoding and preprocessing run on a
helper thread while the model encodes the previous batch (OpenCV and torch both release the GIL).
Vectors are written one batch per transaction: a cancel or a crash keeps what was done.
An unreadable image is skipped and reported, and its old vector (if any) dropped.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from studio.core.errors import MediaError, StudioError
from studio.core.types import Media
from studio.db import embeddings as store
from studio.db.project import Project
from studio.jobs.predict import WorkItem, _pixels, plan
from studio.jobs.runner import CancelCheck, ProgressCallback, ProgressMeter, never_cancelled
from studio.models.embedders import load_embedder, space_id
from studio.models.protocols import Embedder


@dataclass
class EmbedReport:
    """What an embed job did: the space it wrote to and how many vectors were new, unchanged or failed."""

    model: str
    embedded: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class _Target:
    """One vector to compute: a whole image/frame (box None) or an annotation's crop (x1, y1, x2, y2)."""

    key: store.Key
    stamp: str
    box: tuple[int, int, int, int] | None = None


def _file_stamp(project: Project, media: Media) -> str:
    """Size and mtime of the file now (not as recorded when it was added): a re-saved image is re-embedded."""
    try:
        stat = os.stat(project.resolve(media))
    except OSError:
        return "missing"
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _image_targets(project: Project, items: Sequence[WorkItem]) -> list[tuple[WorkItem, list[_Target]]]:
    stamps = {item.media.id: _file_stamp(project, item.media) for item in items}
    return [(item, [_Target((item.media.id, item.frame, store.NO_ANNOTATION), stamps[item.media.id])]) for item in items]


def _region_targets(project: Project, items: Sequence[WorkItem]) -> list[tuple[WorkItem, list[_Target]]]:
    """Human annotations of the planned media, grouped by the (media, frame) their crops come from."""
    table = project.annotation_table("human")
    by_place: dict[tuple[int, int], list[_Target]] = {}
    for ann_id, media_id, frame, x, y, w, h in zip(
        table["id"], table["media_id"], table["frame"], table["x"], table["y"], table["w"], table["h"], strict=True
    ):
        box = (int(x), int(y), int(np.ceil(x + w)), int(np.ceil(y + h)))
        by_place.setdefault((media_id, frame), []).append(_Target((media_id, frame, ann_id), "", box))
    media = {item.media.id: item.media for item in items}
    result = []
    for (media_id, frame), targets in sorted(by_place.items()):
        if media_id not in media:
            continue
        file = _file_stamp(project, media[media_id])
        stamped = [_Target(t.key, f"{file}:{','.join(map(str, t.box or ()))}", t.box) for t in targets]
        result.append((WorkItem(media[media_id], frame), stamped))
    return result


def _crop(pixels: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray | None:
    if box is None:
        return pixels
    height, width = pixels.shape[:2]
    x1, y1 = max(0, box[0]), max(0, box[1])
    x2, y2 = min(width, box[2]), min(height, box[3])
    return pixels[y1:y2, x1:x2] if x2 > x1 and y2 > y1 else None


def _readable(
    project: Project, work: Sequence[tuple[WorkItem, list[_Target]]], failed: list[tuple[str, list[_Target]]]
) -> Iterator[tuple[np.ndarray, list[_Target]]]:
    """Decoded pixels per planned place, one media at a time: a file that cannot be read is recorded in
    `failed` and the next one is read."""
    for _, group in itertools.groupby(work, key=lambda pair: pair[0].media.id):
        places = list(group)
        targets = {(item.media.id, item.frame): ts for item, ts in places}
        try:
            for item, pixels in _pixels(project, [item for item, _ in places]):
                yield pixels, targets[(item.media.id, item.frame)]
        except MediaError as exc:
            failed.append((str(exc), [t for _, ts in places for t in ts]))


def _batches(
    embedder: Embedder, decoded: Iterator[tuple[np.ndarray, list[_Target]]], batch_size: int
) -> Iterator[tuple[Any, list[_Target]]]:
    """Model inputs of `batch_size` crops at a time, preprocessed when the model can do it apart from encoding."""
    prepare = getattr(embedder, "preprocess_images", None)
    crops: list[np.ndarray] = []
    targets: list[_Target] = []
    for pixels, wanted in decoded:
        for target in wanted:
            crop = _crop(pixels, target.box)
            if crop is not None:
                crops.append(crop)
                targets.append(target)
            if len(crops) >= batch_size:
                yield (prepare(crops) if prepare else crops), targets
                crops, targets = [], []
    if crops:
        yield (prepare(crops) if prepare else crops), targets


def _prefetched(source: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """Run `source` on a helper thread, `depth` items ahead of the consumer."""
    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for element in source:
                if stop.is_set():
                    return
                slots.put(element)
            slots.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(exc)

    worker = threading.Thread(target=produce, name="studio-embed-decode", daemon=True)
    worker.start()
    try:
        while (element := slots.get()) is not done:
            if isinstance(element, BaseException):
                raise element
            yield element
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def embed_project(
    project: Project,
    plugin_id: str,
    *,
    weights: str | None = None,
    device: str | None = None,
    regions: bool = False,
    media_ids: Sequence[int] | None = None,
    every_n: int = 30,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck = never_cancelled,
) -> EmbedReport:
    """Embed what is not embedded yet (images and every `every_n`-th video frame; with `regions`, the crops of
    human annotations instead) and store the vectors under the model's space id."""
    if batch_size < 1:
        raise StudioError(f"batch size must be 1 or more, got {batch_size}")
    items = plan(project, media_ids, every_n=every_n)  # refuses an empty project in one line
    model = space_id(plugin_id, weights)
    if weights is not None and Path(weights).expanduser().exists():
        weights = str(Path(weights).expanduser().resolve())  # later queries may run from another folder
    work = _region_targets(project, items) if regions else _image_targets(project, items)
    stored = store.stored_stamps(project, model, regions=regions)
    report = EmbedReport(model)
    pending = []
    for item, targets in work:
        todo = [t for t in targets if stored.get(t.key) != t.stamp]
        report.unchanged += len(targets) - len(todo)
        if todo:
            pending.append((item, todo))
    total = sum(len(targets) for _, targets in pending)
    if not total:
        return report
    embedder = load_embedder(plugin_id, weights=weights, device=device)
    store.record_embedder(project, model, plugin_id, weights)
    encode = getattr(embedder, "embed_pixels", None) if hasattr(embedder, "preprocess_images") else None
    meter = ProgressMeter(total, progress)
    meter.update(0)
    failed: list[tuple[str, list[_Target]]] = []
    for inputs, targets in _prefetched(_batches(embedder, _readable(project, pending, failed), batch_size)):
        if cancel():
            report.cancelled = True
            break
        vectors = encode(inputs) if encode else embedder.embed_images(inputs)
        store.save_embeddings(project, model, [t.key for t in targets], [t.stamp for t in targets], vectors)
        report.embedded += len(targets)
        meter.update(report.embedded)
    for message, targets in failed:
        report.failed.append(message)
        store.delete_embeddings(project, model, [t.key for t in targets if t.key in stored])
    return report
