"""Click segmentation outside the canvas: one image from given prompts, and "segment all boxes".

"Segment all boxes" turns every box of the human annotations or of a model run into a mask, prompting
the segmenter with the box. The masks are stored as a NEW model run (never over the human annotations):
they are predictions a person should look at before they become ground truth, and a run can be
compared, filtered by score (the segmenter's predicted IoU), exported, or deleted in one go. Each mask
keeps the label of its box and records the box's annotation id in `attributes["box_annotation"]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from studio.core.errors import CancelledError, StudioError
from studio.core.geometry import encode_mask
from studio.core.shapes import Box
from studio.core.types import Annotation, ModelRun
from studio.db.project import Project, Source
from studio.io.media import CancelCheck, Progress, read_media
from studio.models.click_segmentation import Click, predict_prompts
from studio.models.embedding_cache import EmbeddingCache, embed
from studio.models.protocols import MaskCandidate, Segmenter


def segment_image(
    segmenter: Segmenter,
    image: np.ndarray,
    *,
    model_id: str,
    points: Sequence[tuple[float, float]] = (),
    point_labels: Sequence[int] | None = None,
    box: Box | None = None,
    cache: EmbeddingCache | None = None,
) -> list[MaskCandidate]:
    """Candidates for the prompts, best predicted IoU first. Points are (x, y); labels 1 positive, 0 negative."""
    if not points and box is None:
        raise StudioError("give at least one point or a box to segment")
    labels = [1] * len(points) if point_labels is None else list(point_labels)
    if len(labels) != len(points):
        raise StudioError(f"{len(points)} points but {len(labels)} point labels")
    height, width = image.shape[:2]
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise StudioError(f"point ({x:g}, {y:g}) lies outside the {width}x{height} image")
    if box is not None and (box.x2 <= 0 or box.y2 <= 0 or box.x1 >= width or box.y1 >= height):
        raise StudioError(f"box {box.bbox()} lies outside the {width}x{height} image")
    embedding = embed(segmenter, image, model_id=model_id, cache=cache)
    clicks = [Click(x, y, bool(label)) for (x, y), label in zip(points, labels, strict=True)]
    return predict_prompts(segmenter, embedding, clicks, box)  # the canvas tool's rule, so both agree


@dataclass(frozen=True, slots=True)
class SegmentBoxesReport:
    run: ModelRun
    boxes: int
    masks: int
    """Boxes for which the segmenter returned an empty mask are not stored (boxes - masks of them)."""


def segment_all_boxes(
    project: Project,
    segmenter: Segmenter,
    *,
    model_id: str,
    source: Source = "human",
    run_name: str | None = None,
    weights: str | None = None,
    cache: EmbeddingCache | None = None,
    progress: Progress | None = None,
    cancel: CancelCheck | None = None,
) -> SegmentBoxesReport:
    """Prompt the segmenter with every box of `source`; store the masks as a new run (see module doc).

    Results are written image by image, so a cancel (CancelledError) or a crash keeps the masks done so
    far, in a run marked "cancelled" or "failed".
    """
    boxes = [ann for ann in project.annotations(source=source) if isinstance(ann.shape, Box)]
    if not boxes:
        where = "the human annotations" if source == "human" else f"run {source}"
        raise StudioError(f"{where} hold no boxes to segment")
    by_frame: dict[tuple[int, int], list[Annotation]] = {}
    for ann in boxes:
        by_frame.setdefault((ann.media_id, ann.frame), []).append(ann)
    run = project.create_run(
        model_id, name=run_name, weights=weights, params={"task": "segment-boxes", "source": source}
    )
    done = stored = 0
    try:
        for (media_id, frame), anns in by_frame.items():
            if cancel is not None and cancel():
                raise CancelledError(f"segmenting boxes cancelled after {done} of {len(boxes)}; run {run.name!r} keeps them")
            image = read_media(project, project.get_media(media_id), frame)
            embedding = embed(segmenter, image, model_id=model_id, weights=weights, cache=cache)
            masks = []
            for ann in anns:
                candidates = segmenter.predict(embedding, box=ann.shape, multimask=False)
                best = max(candidates, key=lambda c: c.score, default=None)
                if best is not None and best.mask.any():
                    masks.append(
                        Annotation(
                            media_id, ann.label_id, encode_mask(best.mask), frame=frame, run_id=run.id,
                            score=float(best.score), attributes={"box_annotation": ann.id},
                        )
                    )
            stored += project.add_annotations(masks)
            done += len(anns)
            if progress is not None:
                progress(done, len(boxes))
    except (CancelledError, KeyboardInterrupt):  # Cancel, Ctrl+C, SIGTERM/SIGHUP in the CLI
        project.finish_run(run.id, "cancelled", {"boxes": done, "masks": stored})
        raise
    except BaseException:
        project.finish_run(run.id, "failed", {"boxes": done, "masks": stored})
        raise
    run = project.finish_run(run.id, "complete", {"boxes": done, "masks": stored})
    return SegmentBoxesReport(run=run, boxes=done, masks=stored)
