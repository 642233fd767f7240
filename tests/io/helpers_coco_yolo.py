"""A small annotated project and comparisons shared by the COCO and YOLO format tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from studio.core import geometry
from studio.core.shapes import Box, Mask, Polygon, Shape
from studio.core.types import Annotation
from studio.db.project import Project
from studio.io.media import add_paths

WIDTH, HEIGHT = 64, 48
SIZE = (HEIGHT, WIDTH)


def write_noise_image(path: Path, *, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    return path


def ring_mask() -> Mask:
    """A mask with a hole: only RLE can hold it exactly (COCO writes it as iscrowd RLE)."""
    canvas = np.zeros(SIZE, dtype=np.uint8)
    cv2.circle(canvas, (40, 24), 14, 1, thickness=-1)
    cv2.circle(canvas, (40, 24), 5, 0, thickness=-1)
    return geometry.encode_mask(canvas)


TWO_PART = Polygon([[(2.5, 3.25), (20.0, 2.0), (18.75, 19.5)], [(30.0, 30.0), (50.5, 31.0), (44.0, 46.0), (31.0, 44.0)]])
SHAPES: dict[str, list[tuple[str, Shape]]] = {
    "img0.jpg": [("cat", Box(1.5, 2.25, 30.125, 40.0)), ("dog", Box(10.0, 10.0, 63.0, 47.0))],
    "img1.jpg": [("cat", TWO_PART), ("dog", Box(0.0, 0.0, 8.0, 8.0))],
    "img2.jpg": [("dog", ring_mask())],
    "img3.jpg": [],
}


def make_images(folder: Path) -> list[Path]:
    return [write_noise_image(folder / name, seed=i) for i, name in enumerate(SHAPES)]


def annotate(project: Project, folder: Path, *, run_name: str | None = None, crowd_masks: bool = True) -> None:
    """Add the images of SHAPES from `folder` with their annotations (as a run with scores if `run_name`)."""
    media = {m.name: m for m in add_paths(project, make_images(folder)).added}
    run_id = None if run_name is None else project.create_run("test", name=run_name).id
    annotations = []
    for index, (name, shapes) in enumerate(SHAPES.items()):
        for label, shape in shapes:
            crowd = crowd_masks and isinstance(shape, Mask)
            annotations.append(
                Annotation(
                    media_id=media[name].id, label_id=project.ensure_label(label).id, shape=shape, run_id=run_id,
                    score=None if run_id is None else 0.5 + index / 10, attributes={"iscrowd": 1} if crowd else {},
                )
            )
    project.add_annotations(annotations)


def by_image(project: Project, source: str | int = "human") -> dict[str, list[tuple[str, Shape, float | None, dict]]]:
    """Annotations per media file name, sorted, with label names: comparable across projects."""
    if isinstance(source, str) and source not in ("human", "all"):
        source = project.find_run(source).id
    names = {label.id: label.name for label in project.labels()}
    media = {m.id: m.name for m in project.list_media()}
    result: dict[str, list] = {name: [] for name in media.values()}
    for ann in project.annotations(source=source):  # type: ignore[arg-type]
        result[media[ann.media_id]].append((names[ann.label_id], ann.shape, ann.score, ann.attributes))
    return {name: sorted(anns, key=lambda a: (a[0], a[1].bbox())) for name, anns in result.items()}


def assert_close(a: Shape, b: Shape, *, rel: float = 1e-6) -> None:
    """Same kind and coordinates within `rel` (relative to the image size)."""
    assert a.kind == b.kind
    if isinstance(a, Mask):
        assert a == b
        return
    flat = lambda s: np.concatenate(s.to_flat()) if isinstance(s, Polygon) else np.asarray(s.bbox())  # noqa: E731
    assert [len(p) for p in getattr(a, "parts", [])] == [len(p) for p in getattr(b, "parts", [])]
    np.testing.assert_allclose(flat(a), flat(b), rtol=rel, atol=rel * max(SIZE))


def assert_same_pixels_but_boundary(a: Shape, b: Shape) -> None:
    """Rasterized, the shapes differ at most on pixels within 1 px of `a`'s boundary."""
    mask_a, mask_b = geometry.rasterize(a, SIZE), geometry.rasterize(b, SIZE)
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.dilate(mask_a.astype(np.uint8), kernel) != cv2.erode(mask_a.astype(np.uint8), kernel)
    assert not np.any((mask_a != mask_b) & ~band)
    assert mask_b.sum() > 0
