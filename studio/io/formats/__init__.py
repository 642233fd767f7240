"""Dataset formats. Each module provides `read(path, *, skip_bad)` and `write(dataset, out, *, copy_images)`.

Modules are imported only when used, so `studio --help` stays fast.
"""

from __future__ import annotations

import importlib

from studio.core.errors import StudioError
from studio.io.formats.base import Reader, Writer

FORMATS: dict[str, str] = {
    "coco": "studio.io.formats.coco",
    "yolo": "studio.io.formats.yolo",
    "voc": "studio.io.formats.voc",
    "labelme": "studio.io.formats.labelme",
    "cvat": "studio.io.formats.cvat",
}


def _module(name: str):
    if name not in FORMATS:
        raise StudioError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}")
    return importlib.import_module(FORMATS[name])


def reader(name: str) -> Reader:
    return _module(name).read


def writer(name: str) -> Writer:
    return _module(name).write


def numbers_images(name: str) -> bool:
    """Whether the format's files name images and categories by number (COCO), numbers that results
    files refer to: exports keep them, and transfer remembers what each meant."""
    return bool(getattr(_module(name), "NUMBERS_IMAGES", False))
