"""The interchange form every dataset format reads into and writes from.

A format module (coco.py, yolo.py, ...) only translates between its files and `Dataset`; matching
images to project media, transactions, label creation and `--skip-bad` live once, in
studio.io.formats.transfer, so every format behaves the same way on bad input.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, TypeVar
from xml.etree import ElementTree

import cv2

from studio.core import geometry
from studio.core.errors import FormatError, MediaError
from studio.core.shapes import BBox, Shape
from studio.core.types import KeypointSchema

T = TypeVar("T")


@dataclass
class DatasetAnnotation:
    label: str
    shape: Shape
    score: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    track_id: int | None = None
    bbox: BBox | None = None
    """The box (x, y, w, h) the file states, when it states its own (COCO's `bbox` of a segmented
    object); on export, the one stored with the annotation."""
    area: float | None = None
    """The area the file states (COCO's `area`), kept like `bbox`."""


@dataclass
class DatasetImage:
    """One image of a dataset and its annotations.

    `file_name` is the image's path as the format records it (posix, usually relative to the dataset's
    image folder). On export, `source` is the file holding the pixels and `frame` the frame of a video
    source to extract; on import they are unused. `embedded` holds the encoded image when the dataset file
    carries it (labelme's imageData): an import uses it only when `file_name` is not found on disk.

    `source_id` is the format's own number for the image (a COCO image id), when it has one: read from
    the file on import, and on export the id a writer should use (the media id) or the one it chose.
    Transfer remembers these ids so a later file that names images only by id (COCO results) resolves.
    On export, `media_id` is the project media the image comes from.
    `tags` are image-level labels (CVAT <tag>, labelme's image flags), added to the media's tags on import.
    """

    file_name: str
    width: int | None
    height: int | None
    annotations: list[DatasetAnnotation] = field(default_factory=list)
    source: Path | None = None
    frame: int | None = None
    source_id: int | None = None
    embedded: bytes | None = None
    media_id: int | None = None
    tags: list[str] = field(default_factory=list)
    split: str | None = None
    """"train" or "val" when the caller chose the side (training uses the project's stored split)."""


@dataclass
class Dataset:
    """Images with annotations, and the ordered list of label names (format class ids follow it).

    `image_root` is the folder `file_name`s are relative to on disk, so an importer can add images that
    are not in the project yet.
    """

    labels: list[str]
    images: list[DatasetImage]
    image_root: Path | None = None
    problems: list[str] = field(default_factory=list)
    """Items a reader skipped, one message each: bad items when asked to skip them, and parts or elements
    Studio cannot hold (a degenerate polygon part, CVAT cuboids), which are always skipped and reported."""
    folders_tried: list[Path] = field(default_factory=list)
    """Where the reader looked for the image files, for the message when an image is found nowhere."""
    label_ids: dict[str, int] = field(default_factory=dict)
    """The format's own id of each label (COCO category ids): read on import, set by a writer on export."""
    ids_only: bool = False
    """The file names images and labels only by the format's ids (a COCO results file): each image has
    just a `source_id`, each annotation's label is a key of `label_ids`. Transfer resolves them through
    the ids remembered from this format's files imported into or exported from the project."""
    file: Path | None = None
    """The file whose numbers `source_id` and `label_ids` are (the COCO .json), for remembering them."""
    keypoints: dict[str, KeypointSchema] = field(default_factory=dict)
    """Labels whose objects are keypoints: their points' names and skeleton (COCO's category keypoints)."""


class Reader(Protocol):
    def __call__(self, path: Path, *, skip_bad: bool = False) -> Dataset: ...


class Writer(Protocol):
    def __call__(self, dataset: Dataset, out: Path, *, copy_images: bool = True) -> list[Path]: ...


def write_image(image: DatasetImage, dest: Path) -> None:
    """Put an exported image's pixels at `dest`: a hard link (instant, no extra disk), else a copy;
    a video frame is decoded and written as an image file. The project's own media are never modified."""
    if image.source is None:
        raise MediaError(f"{image.file_name}: no source file to export")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.unlink()
    if image.frame is not None:
        from studio.io.media import read_frame

        if not cv2.imwrite(str(dest), read_frame(image.source, image.frame)):
            raise MediaError(f"cannot write {dest}")
        return
    try:
        os.link(image.source, dest)
    except OSError:
        shutil.copy2(image.source, dest)


def skip_or_raise(problems: list[str], message: str, skip_bad: bool) -> None:
    """The one policy for a bad item: raise FormatError, or (skip_bad) note it and go on."""
    if not skip_bad:
        raise FormatError(message)
    problems.append(message)


def number(value: Any, what: str) -> float:
    """A finite float from a file, or FormatError naming what was wrong."""
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise FormatError(f"{what}: expected a number, got {value!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise FormatError(f"{what}: expected a finite number, got {value!r}")
    return result


def parse_xml(path: Path) -> ElementTree.Element:
    """The root element of an XML dataset file, parsed with defusedxml (no entity expansion, no external
    references, so a hostile file cannot exhaust memory or read local files); FormatError otherwise."""
    from defusedxml import DefusedXmlException
    from defusedxml import ElementTree as SafeElementTree

    from studio.io.safe_files import read_bytes

    data = read_bytes(path)  # a regular file only: a FIFO named x.xml would block parse() forever
    try:
        return SafeElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        raise FormatError(f"{path}: not valid XML ({exc})") from None
    except RecursionError:
        raise FormatError(f"{path}: XML nested too deeply") from None


MAX_UNSEEN_PIXELS = 1 << 26
"""Largest image (67 MP) whose size Studio takes from a dataset file alone to build a mask, when the
image itself is neither on disk nor embedded: a declared size is what a mask is allocated at."""


def checked_size(
    size: tuple[int, int], where: str, *, image_root: Path | None, file_name: str, embedded: bytes | None = None
) -> tuple[int, int]:
    """A dataset file's declared (height, width) for an image, checked before Studio allocates a mask of
    that size: against the real image (its header only: embedded bytes, else the file inside the
    dataset folder), else against MAX_UNSEEN_PIXELS. FormatError otherwise, so a 700-byte file declaring
    a 100,000 x 100,000 image cannot make Studio allocate 10 GB."""
    from studio.io import safe_files
    from studio.io.media import image_size

    on_disk = safe_files.inside(image_root, file_name)
    source: Path | bytes | None = embedded
    if source is None and on_disk is not None and safe_files.real_file_inside(image_root, on_disk):  # type: ignore[arg-type]
        source = on_disk
    if source is None:
        if size[0] * size[1] > MAX_UNSEEN_PIXELS:
            raise FormatError(f"{where}: declares a {size[1]}x{size[0]} image, too large to take on trust (image not found)")
        return size
    try:
        width, height = image_size(source, where)
    except MediaError as exc:
        raise FormatError(str(exc)) from None
    if (height, width) != tuple(size):
        raise FormatError(f"{where}: declares a {size[1]}x{size[0]} image but the image is {width}x{height}")
    return size


def format_number(value: float) -> str:
    """A coordinate as text: whole numbers without '.0', others rounded to 1e-6 px so arithmetic noise
    (10.300000000000001) does not reach the file, while sub-pixel values survive a round trip."""
    rounded = round(float(value), 6)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)


def unique_stem(file_name: str, taken: set[str]) -> str:
    """The image's path without its extension, for naming its annotation file; 'x.jpg' and 'x.png' in one
    dataset get distinct stems. Adds the result to `taken`."""
    path = PurePosixPath(file_name)
    stem = path.with_suffix("").as_posix()
    if stem in taken:
        stem = f"{stem}_{path.suffix.lstrip('.')}"
    taken.add(stem)
    return stem


ELLIPSE_VERTICES = 64
"""Vertices of the polygon an ellipse or circle becomes (labelme circles, CVAT ellipses): within 0.12 %
of its area."""


def ellipse_vertices(
    centre: tuple[float, float], radii: tuple[float, float], *, angle: float = 0.0, start: float = 0.0
) -> list[tuple[float, float]]:
    """ELLIPSE_VERTICES points on an ellipse turned `angle` degrees clockwise (y down, as RotatedBox),
    the first at parameter `start` (radians). Studio has no ellipse shape; a polygon keeps its pixels."""
    import numpy as np

    (cx, cy), (rx, ry) = centre, radii
    t = start + 2 * np.pi * np.arange(ELLIPSE_VERTICES) / ELLIPSE_VERTICES
    dx, dy = rx * np.cos(t), ry * np.sin(t)
    turn = np.radians(angle)
    xs = cx + dx * np.cos(turn) - dy * np.sin(turn)
    ys = cy + dx * np.sin(turn) + dy * np.cos(turn)
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def check_inside(shape: Shape, size: tuple[int, int] | None, where: str) -> None:
    """FormatError naming the item when a shape lies outside the image size the dataset file states, so the
    message points into the dataset file rather than at the image (transfer checks the real size again)."""
    if size is not None and not geometry.is_inside(shape, size):
        raise FormatError(f"{where}: {shape.kind} lies outside the {size[1]}x{size[0]} image")


def collect_images(
    items: Iterable[T],
    read_one: Callable[[T, list[str]], DatasetImage],
    *,
    image_root: Path,
    skip_bad: bool,
    labels: Iterable[str] = (),
) -> Dataset:
    """A dataset from per-image items (annotation files, XML elements): `read_one(item, problems)` reads
    one, raising FormatError for a bad item (skipped and reported with `skip_bad`). Labels are listed in
    first-seen order after the given `labels` (a format's declared list)."""
    seen = dict.fromkeys(labels)  # a dict keeps insertion order
    images: list[DatasetImage] = []
    problems: list[str] = []
    for item in items:
        try:
            image = read_one(item, problems)
        except FormatError as exc:
            skip_or_raise(problems, str(exc), skip_bad)
            continue
        seen.update(dict.fromkeys(ann.label for ann in image.annotations))
        images.append(image)
    return Dataset(labels=list(seen), images=images, image_root=image_root, problems=problems)


def attribute_text(value: Any) -> str:
    """An attribute value for a text-only format (XML): booleans as CVAT writes checkboxes, other
    non-strings as JSON, so `attribute_value` reads them back as they were."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def attribute_value(text: str) -> Any:
    """Inverse of `attribute_text` for booleans; other text stays text (a format cannot tell "3" from 3)."""
    return {"true": True, "false": False}.get(text, text)


@contextmanager
def bulk_objects() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects that form no cycles
    (100,000 annotations, a COCO document): it would rescan them again and again as they are made,
    which costs about 40 % of an export. Reference counting still frees everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
