"""Editing rules of a labelling session that need no window: which shapes are shown, and pasting.

The canvas, the panels and the tests all go through these, so "what is drawn" and "what a paste
stores" are decided in one place.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from studio.core.geometry import clip_to_image, is_inside
from studio.core.shapes import Mask, Points, RotatedBox, Shape
from studio.core.types import Annotation, Media
from studio.jobs.accept import ORIGIN_KEY


def visible_annotations(
    human: Iterable[Annotation],
    predictions: Iterable[Annotation],
    *,
    hidden_labels: Collection[int] = (),
) -> list[Annotation]:
    """Human shapes, then predictions, without hidden labels and without predictions already accepted.

    An accepted prediction has a human copy (`attributes["accepted_from"]`) on the same frame: drawing
    both would put the run's shape over the person's, which is then edited underneath it.
    """
    human = [ann for ann in human if ann.label_id not in hidden_labels]
    accepted = {
        origin["annotation"] for ann in human if isinstance(origin := ann.attributes.get(ORIGIN_KEY), dict)
    }
    shown = [ann for ann in predictions if ann.label_id not in hidden_labels and ann.id not in accepted]
    return human + shown


@dataclass(frozen=True)
class PasteResult:
    """What a paste would store, and what it had to change or leave out on the way."""

    annotations: list[Annotation]
    clipped: int = 0
    refused: int = 0

    def message(self) -> str:
        """One line for the status bar: how many shapes were pasted, clipped and left out."""
        parts = [f"Pasted {len(self.annotations)} shapes"]
        if self.clipped:
            parts.append(f"{self.clipped} clipped to the image")
        if self.refused:
            parts.append(f"{self.refused} left out (outside this image, or a mask of another size)")
        return "; ".join(parts)


def _has_extent(shape: Shape) -> bool:
    """Whether a clipped shape still covers something (a box squashed onto the border does not)."""
    _x, _y, w, h = shape.bbox()
    if isinstance(shape, Points):
        return True
    return w > 0 and h > 0 if shape.kind in ("box", "polygon") else w > 0 or h > 0


def paste_onto(
    clipboard: Iterable[Annotation], media: Media, *, frame: int = 0, created_by: str | None = None
) -> PasteResult:
    """Copies of `clipboard` as new human shapes on `media`, clipped to its size.

    A shape that sticks out is clipped to the image; one that would be empty once clipped, a rotated box
    that sticks out (clipping would turn it into another kind) and a mask of another image size are
    refused, so nothing outside the image is ever stored or exported.
    """
    size = media.size
    fresh: list[Annotation] = []
    clipped = refused = 0
    for ann in clipboard:
        shape = ann.shape
        if not is_inside(shape, size, slack=0.0):
            if isinstance(shape, (Mask, RotatedBox)):
                refused += 1
                continue
            shape = clip_to_image(shape, size)
            if not _has_extent(shape) or not _overlaps(ann.shape, size):
                refused += 1
                continue
            clipped += 1
        fresh.append(
            replace(
                ann, id=None, media_id=media.id, frame=frame, shape=shape, run_id=None, score=None,
                attributes=dict(ann.attributes), created_by=created_by, created_at=None, updated_at=None,
                track_id=None,
            )
        )
    return PasteResult(fresh, clipped, refused)


def _overlaps(shape: Shape, size: tuple[int, int]) -> bool:
    """Whether a shape's bounding box meets the image at all (points: whether one lies inside)."""
    h, w = size
    if isinstance(shape, Points):
        return any(0 <= x <= w and 0 <= y <= h for x, y in shape.points)
    x, y, bw, bh = shape.bbox()
    return x < w and y < h and x + bw > 0 and y + bh > 0

