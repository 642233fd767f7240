"""The interchange form every dataset format reads into and writes from.

A format module (coco.py, yolo.py, ...) only translates between its files and `Dataset`; matching
images to project media, transactions, label creation and `--skip-bad` live once, in
studio.io.formats.transfer, so every format behaves the same way on bad input.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import cv2

from studio.core.errors import FormatError, MediaError
from studio.core.shapes import Shape


@dataclass
class DatasetAnnotation:
    label: str
    shape: Shape
    score: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    track_id: int | None = None


@dataclass
class DatasetImage:
    """One image of a dataset and its annotations.

    `file_name` is the image's path as the format records it (posix, usually relative to the dataset's
    image folder). On export, `source` is the file holding the pixels and `frame` the frame of a video
    source to extract; on import they are unused.

    `source_id` is the format's own number for the image (a COCO image id), when it has one: read from
    the file on import, and on export the id a writer should use (the media id) or the one it chose.
    Transfer remembers these ids so a later file that names images only by id (COCO results) resolves.
    """

    file_name: str
    width: int | None
    height: int | None
    annotations: list[DatasetAnnotation] = field(default_factory=list)
    source: Path | None = None
    frame: int | None = None
    source_id: int | None = None


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
    """Items a reader skipped (only when asked to skip bad items), one message each."""
    label_ids: dict[str, int] = field(default_factory=dict)
    """The format's own id of each label (COCO category ids): read on import, set by a writer on export."""
    ids_only: bool = False
    """The file names images and labels only by the format's ids (a COCO results file): each image has
    just a `source_id`, each annotation's label is a key of `label_ids`. Transfer resolves them through
    the ids remembered from this format's last import or export in the project."""



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

