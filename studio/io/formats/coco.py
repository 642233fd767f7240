"""COCO instances JSON: read ground truth and results files, write ground truth.

Reading validates every item against the file's own images and categories, so a bad file fails with
one line naming the file and the item, before anything reaches the project. Writing builds plain dicts
and serialises them once: exporting 100,000 boxes takes well under a second.

Shapes COCO has no field for (rotated boxes, points, polylines) are written with their box and a
`studio_shape` key other tools ignore, so they come back exactly when read by Studio.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pycocotools import mask as mask_utils

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError
from studio.core.shapes import Box, Mask, Polygon, RotatedBox, Shape, shape_from_json
from studio.io import safe_files
from studio.io.formats.base import (
    Dataset,
    DatasetAnnotation,
    DatasetImage,
    bulk_objects,
    number,
    skip_or_raise,
    write_image,
)

ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"

# Keys of a COCO annotation that Studio reads into fields; any other key is kept as an attribute.
_KNOWN_KEYS = frozenset(
    {"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd", "score", "attributes",
     "track_id", "studio_shape"}
)


# ---- reading ---------------------------------------------------------------------------------------


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A COCO instances file (or a folder holding exactly one), or a results file (a list of detections)."""
    json_path = _find_json(Path(path))
    document = _load(json_path)
    reader = _Reader(json_path.name, skip_bad)
    if isinstance(document, list):
        return reader.results(document)
    if not isinstance(document, dict):
        raise FormatError(f"{json_path.name}: expected a COCO object or a results list, got {type(document).__name__}")
    dataset = reader.instances(document)
    first = dataset.images[0].file_name if dataset.images else None
    dataset.image_root = _image_root(json_path, first)
    return dataset


def _find_json(path: Path) -> Path:
    if path.is_file() or (path.exists() and not path.is_dir()):  # a FIFO is refused when read, not globbed
        return path
    candidates = sorted(path.glob("*.json")) or sorted(path.glob("annotations/*.json"))
    if len(candidates) != 1:
        found = ", ".join(c.name for c in candidates) or "none"
        raise FormatError(f"{path}: expected exactly one COCO annotations .json in the folder or its annotations/, found {found}")
    return candidates[0]


def _load(json_path: Path) -> Any:
    return safe_files.load_json(json_path)


def _image_root(json_path: Path, first_image: str | None) -> Path:
    """Where the image files are: the first of the usual COCO layouts that holds the first image."""
    folder, parent = json_path.parent, json_path.parent.parent
    # instances_val2017.json -> val2017 (the official layout keeps images in <root>/val2017/)
    split = re.sub(r"^(instances|person_keypoints|captions|panoptic)_", "", json_path.stem)
    candidates = [folder, parent, folder / IMAGES_DIR, parent / IMAGES_DIR, parent / split, parent / IMAGES_DIR / split]
    if first_image is not None:
        for candidate in candidates:
            if (candidate / first_image).is_file():
                return candidate
    return folder


def _json_number(value: Any, what: str) -> float:
    """A finite JSON number: a string or a boolean is an error here, though Python's float() takes them."""
    if isinstance(value, (str, bool)):
        raise FormatError(f"{what}: expected a number, got {value!r}")
    return number(value, what)


def _checked_rle(rle: dict[str, Any], where: str) -> dict[str, Any]:
    """The RLE's size and uncompressed counts checked before pycocotools sees them: it overflows (a
    C error, not a ValueError) on negative or huge numbers."""
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 0 < v < 2**31 for v in size)):
        raise FormatError(f"{where}: RLE size must be [height, width] of positive integers, got {size!r:.60}")
    counts = rle.get("counts")
    if isinstance(counts, list) and not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in counts):
        raise FormatError(f"{where}: uncompressed RLE counts must be non-negative integers")
    return rle


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise FormatError(f"{what}: expected an integer, got {value!r}")
    return int(value)


def _list(document: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> list[Any]:
    value = document.get(key, None if required else [])
    if not isinstance(value, list):
        raise FormatError(f"{where}: `{key}` must be a list, got {type(value).__name__ if key in document else 'nothing'}")
    return value


class _Reader:
    """One file's reading: its name for messages, the skip policy and what was skipped."""

    def __init__(self, file_name: str, skip_bad: bool) -> None:
        self.file_name = file_name
        self.skip_bad = skip_bad
        self.problems: list[str] = []

    def instances(self, document: dict[str, Any]) -> Dataset:
        categories = self._categories(_list(document, "categories", self.file_name))
        images: dict[int, DatasetImage] = {}
        for index, item in enumerate(_list(document, "images", self.file_name)):
            try:
                image = self._image(item, index)
                if image.source_id in images:
                    raise FormatError(f"{self.file_name}: image id {image.source_id} appears twice")
                images[image.source_id] = image  # type: ignore[index]
            except FormatError as exc:
                skip_or_raise(self.problems, str(exc), self.skip_bad)
        for index, item in enumerate(_list(document, "annotations", self.file_name, required=False)):
            try:
                image_id, annotation = self._annotation(item, index, categories, images)
                images[image_id].annotations.append(annotation)
            except FormatError as exc:
                skip_or_raise(self.problems, str(exc), self.skip_bad)
        labels = list(categories.values())
        return Dataset(
            labels=labels, images=list(images.values()), problems=self.problems,
            label_ids={name: category_id for category_id, name in categories.items()},
        )

    def results(self, document: list[Any]) -> Dataset:
        """A results file names images and categories by id only; transfer resolves them in the project."""
        images: dict[int, DatasetImage] = {}
        label_ids: dict[str, int] = {}
        for index, item in enumerate(document):
            try:
                if not isinstance(item, dict):
                    raise FormatError(f"{self.file_name}: result {index} is not an object")
                image_id = _as_int(item.get("image_id"), f"{self.file_name}: result {index} image_id")
                category_id = _as_int(item.get("category_id"), f"{self.file_name}: result {index} category_id")
                label = str(category_id)
                annotation = self._shape_and_fields(item, f"{self.file_name}: result {index}", label, None)
                label_ids[label] = category_id
                images.setdefault(image_id, DatasetImage("", None, None, source_id=image_id)).annotations.append(annotation)
            except FormatError as exc:
                skip_or_raise(self.problems, str(exc), self.skip_bad)
        return Dataset(
            labels=sorted(label_ids, key=label_ids.__getitem__), images=list(images.values()),
            problems=self.problems, label_ids=label_ids, ids_only=True,
        )

    def _categories(self, items: list[Any]) -> dict[int, str]:
        """category id -> name, in file order. A bad category fails even with skip_bad: every
        annotation of it would be unreadable, so skipping it would silently lose them all."""
        categories: dict[int, str] = {}
        for index, item in enumerate(items):
            where = f"{self.file_name}: category {index}"
            if not isinstance(item, dict):
                raise FormatError(f"{where} is not an object")
            category_id = _as_int(item.get("id"), f"{where} id")
            name = item.get("name")
            if not isinstance(name, str) or not name.strip():
                raise FormatError(f"{where}: name must be a non-empty string, got {name!r}")
            if category_id in categories or name.strip() in categories.values():
                raise FormatError(f"{where}: category id {category_id} or name {name!r} appears twice")
            categories[category_id] = name.strip()
        return categories

    def _image(self, item: Any, index: int) -> DatasetImage:
        where = f"{self.file_name}: image {index}"
        if not isinstance(item, dict):
            raise FormatError(f"{where} is not an object")
        image_id = _as_int(item.get("id"), f"{where} id")
        where = f"{self.file_name}: image {image_id}"
        file_name = item.get("file_name")
        if not isinstance(file_name, str) or not file_name:
            raise FormatError(f"{where}: file_name must be a non-empty string, got {file_name!r}")
        width, height = (_as_int(item.get(key), f"{where} {key}") for key in ("width", "height"))
        if width <= 0 or height <= 0:
            raise FormatError(f"{where}: size must be positive, got {width}x{height}")
        return DatasetImage(file_name, width, height, source_id=image_id)

    def _annotation(
        self, item: Any, index: int, categories: dict[int, str], images: dict[int, DatasetImage]
    ) -> tuple[int, DatasetAnnotation]:
        where = f"{self.file_name}: annotation {index}"
        if not isinstance(item, dict):
            raise FormatError(f"{where} is not an object")
        if "id" in item:
            where = f"{self.file_name}: annotation {_as_int(item['id'], f'{where} id')}"
        image_id = _as_int(item.get("image_id"), f"{where} image_id")
        category_id = _as_int(item.get("category_id"), f"{where} category_id")
        if image_id not in images:
            raise FormatError(f"{where} refers to unknown image_id {image_id}")
        if category_id not in categories:
            raise FormatError(f"{where} refers to unknown category_id {category_id}")
        image = images[image_id]
        size = (image.height, image.width)
        return image_id, self._shape_and_fields(item, where, categories[category_id], size)  # type: ignore[arg-type]

    def _shape_and_fields(
        self, item: dict[str, Any], where: str, label: str, size: tuple[int, int] | None
    ) -> DatasetAnnotation:
        shape = _shape(item, where, size)
        score = _json_number(item["score"], f"{where} score") if item.get("score") is not None else None
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            raise FormatError(f"{where}: attributes must be an object, got {type(attributes).__name__}")
        attributes = {**{k: v for k, v in item.items() if k not in _KNOWN_KEYS}, **attributes}
        iscrowd = item.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, bool):
            raise FormatError(f"{where}: iscrowd must be 0 or 1, got {iscrowd!r}")
        if iscrowd:
            attributes["iscrowd"] = 1
        track_id = item.get("track_id")
        track_id = None if track_id is None else _as_int(track_id, f"{where} track_id")
        return DatasetAnnotation(label, shape, score, attributes, track_id)


def _shape(item: dict[str, Any], where: str, size: tuple[int, int] | None) -> Shape:
    """The annotation's region: its segmentation when it has one (polygons or RLE), else its bbox."""
    try:
        if "studio_shape" in item:
            return shape_from_json(item["studio_shape"])
        segmentation = item.get("segmentation")
        if isinstance(segmentation, dict):
            mask = geometry.mask_from_rle(_checked_rle(segmentation, where))
            if size is not None and mask.size != size:
                raise FormatError(f"{where}: mask size {list(mask.size)} differs from its image's {list(size)} (h, w)")
            return mask
        if isinstance(segmentation, list) and segmentation:
            if not all(isinstance(part, list) for part in segmentation):
                raise FormatError(f"{where}: segmentation must be a list of [x, y, ...] lists or an RLE object")
            return Polygon.from_flat([[_json_number(v, f"{where} segmentation") for v in part] for part in segmentation])
        if segmentation not in (None, []):
            raise FormatError(f"{where}: segmentation must be polygon lists or an RLE object, got {segmentation!r:.60}")
        bbox = item.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise FormatError(f"{where}: needs a bbox [x, y, width, height] or a segmentation, got bbox {bbox!r:.60}")
        return Box.from_xywh(*(_json_number(v, f"{where} bbox") for v in bbox))
    except InvalidShapeError as exc:
        raise FormatError(f"{where}: {exc}") from None


# ---- writing ---------------------------------------------------------------------------------------


def write(dataset: Dataset, out: Path, *, copy_images: bool = True) -> list[Path]:
    """OUT/annotations.json, and the images under OUT/images/ when `copy_images`.

    Image ids are the images' `source_id` (Studio's media ids) where set and unique, else new numbers;
    category ids are those in `dataset.label_ids` where given, else count up in `dataset.labels` order.
    Both are recorded on the dataset (`source_id`, `label_ids`) so the caller can remember them.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _assign_label_ids(dataset)
    _assign_image_ids(dataset.images)
    images_json: list[dict[str, Any]] = []
    annotations_json: list[dict[str, Any]] = []
    with bulk_objects():
        for image in dataset.images:
            if image.width is None or image.height is None:
                raise FormatError(f"{image.file_name}: image size unknown, cannot write COCO")
            images_json.append(
                {"id": image.source_id, "file_name": image.file_name, "width": image.width, "height": image.height}
            )
            size = (image.height, image.width)
            for annotation in image.annotations:
                entry = _annotation_json(annotation, size)
                entry["id"] = len(annotations_json) + 1
                entry["image_id"] = image.source_id
                entry["category_id"] = dataset.label_ids[annotation.label]
                annotations_json.append(entry)
        categories = [{"id": category_id, "name": name, "supercategory": ""} for name, category_id in dataset.label_ids.items()]
        document = {
            "info": {"description": "exported by Studio"},
            "images": images_json,
            "annotations": annotations_json,
            "categories": categories,
        }
        text = orjson.dumps(document)  # the json module takes 5x longer on 100k annotations
    target = out / ANNOTATIONS_FILE
    target.write_bytes(text)
    files = [target]
    if copy_images:
        for image in dataset.images:
            destination = out / IMAGES_DIR / image.file_name
            write_image(image, destination)
            files.append(destination)
    return files


def _assign_label_ids(dataset: Dataset) -> None:
    """Category ids: those given in `label_ids` (remembered from an imported file) where distinct, the
    next free numbers for the rest in label order; categories are listed by id."""
    given: dict[str, int] = {}
    for name in dataset.labels:
        category_id = dataset.label_ids.get(name)
        if isinstance(category_id, int) and category_id > 0 and category_id not in given.values():
            given[name] = category_id
    next_id = max(given.values(), default=0) + 1
    for name in dataset.labels:
        if name not in given:
            given[name], next_id = next_id, next_id + 1
    dataset.label_ids = dict(sorted(given.items(), key=lambda item: item[1]))


def _assign_image_ids(images: list[DatasetImage]) -> None:
    taken: set[int] = set()
    missing: list[DatasetImage] = []
    for image in images:
        if image.source_id is None or image.source_id in taken:
            missing.append(image)
        else:
            taken.add(image.source_id)
    next_id = max(taken, default=0) + 1
    for offset, image in enumerate(missing):
        image.source_id = next_id + offset


def _annotation_json(annotation: DatasetAnnotation, size: tuple[int, int]) -> dict[str, Any]:
    """bbox, segmentation and area as COCO has them: area from the rasterized region, as pycocotools
    computes it for evaluation, except for boxes, whose area is exact. Boxes take the short path: an
    export of 100,000 of them is mostly this function."""
    shape = annotation.shape
    if isinstance(shape, Box):
        width, height = shape.x2 - shape.x1, shape.y2 - shape.y1
        entry: dict[str, Any] = {"bbox": [shape.x1, shape.y1, width, height], "area": width * height, "segmentation": []}
    elif isinstance(shape, (Polygon, Mask, RotatedBox)):
        entry = {"bbox": list(shape.bbox()), "area": float(mask_utils.area(geometry.to_rle(shape, size)))}
        if isinstance(shape, Mask):
            entry["segmentation"] = {"size": list(shape.size), "counts": shape.counts}
        elif isinstance(shape, Polygon):
            entry["segmentation"] = shape.to_flat()
        else:
            entry["segmentation"] = [[v for point in shape.corners() for v in point]]
    else:  # points and polylines cover no area
        entry = {"bbox": list(shape.bbox()), "area": 0.0, "segmentation": []}
    if not isinstance(shape, (Box, Polygon, Mask)):
        entry["studio_shape"] = shape.to_json()
    entry["iscrowd"] = 0
    if annotation.attributes:
        attributes = dict(annotation.attributes)
        entry["iscrowd"] = 1 if attributes.pop("iscrowd", 0) else 0
        if attributes:
            entry["attributes"] = attributes
    if annotation.score is not None:
        entry["score"] = annotation.score
    if annotation.track_id is not None:
        entry["track_id"] = annotation.track_id
    return entry
