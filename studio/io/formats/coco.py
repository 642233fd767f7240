"""COCO instances JSON: read ground truth and results files, write ground truth.

Reading validates every item against the file's own images and categories, so a bad file fails with
one line naming the file and the item, before anything reaches the project. Writing builds plain dicts
and serialises them once: exporting 100,000 boxes takes well under a second.

Shapes COCO has no field for (rotated boxes, points, polylines) are written with their box and a
`studio_shape` key other tools ignore, so they come back exactly when read by Studio. Keypoints of a
category that declares them are COCO keypoints both ways. An annotation's `bbox` and `area` are kept as
the file states them (COCO's evaluation uses them, not the segmentation), and its keys Studio has no
field for are kept in the attribute `coco` and written back where they were.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pycocotools import mask as mask_utils

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError, StudioError
from studio.core.shapes import Box, Mask, Points, Polygon, RotatedBox, Shape, shape_from_json
from studio.core.types import KeypointSchema
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
NUMBERS_IMAGES = True
"""COCO files name images and categories by number; results files refer to them by those numbers."""
FILE_KEYS = "coco"
"""The attribute holding an annotation's keys Studio has no field for, written back at the top level."""
IMAGE_FOLDER_SAMPLE = 50
"""Images looked up on disk to choose the image folder among the usual layouts."""

# Keys of a COCO annotation that Studio reads into fields; any other is kept in the FILE_KEYS attribute.
_KNOWN_KEYS = frozenset(
    {"id", "image_id", "category_id", "bbox", "segmentation", "area", "iscrowd", "score", "attributes",
     "track_id", "studio_shape", "keypoints", "num_keypoints"}
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
    dataset.file = json_path
    dataset.image_root, dataset.folders_tried = _image_root(json_path, [image.file_name for image in dataset.images])
    return dataset


def _find_json(path: Path) -> Path:
    if path.is_file():
        return path
    candidates = sorted(path.glob("*.json")) or sorted(path.glob("annotations/*.json"))
    if len(candidates) != 1:
        found = ", ".join(c.name for c in candidates) or "none"
        raise FormatError(f"{path}: expected exactly one COCO annotations .json in the folder or its annotations/, found {found}")
    return candidates[0]


def _load(json_path: Path) -> Any:
    try:
        return json.loads(json_path.read_bytes())
    except json.JSONDecodeError as exc:
        raise FormatError(f"{json_path.name}: not valid JSON (truncated or malformed) at line {exc.lineno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{json_path.name}: cannot read: {exc}") from None


def _image_root(json_path: Path, file_names: list[str]) -> tuple[Path, list[Path]]:
    """Where the image files are: of the usual layouts, the folder holding most of a sample of the
    images (not the first alone: with --skip-bad it may be the missing one), and the folders tried.

    Layouts: beside the .json (Roboflow's `_annotations.coco.json`, labelme2coco), `images/`, and for
    `annotations/NAME_SPLIT.json` (instances_val2017, stuff_val2017, person_keypoints_train2017) the
    split's folder `SPLIT/` or `images/SPLIT/` beside `annotations/`.
    """
    folder, parent = json_path.parent, json_path.parent.parent
    split = json_path.stem.rsplit("_", 1)[-1]
    candidates = list(dict.fromkeys(
        [folder, folder / IMAGES_DIR, folder / split, parent / split, parent / IMAGES_DIR / split, parent / IMAGES_DIR, parent]
    ))
    step = max(1, len(file_names) // IMAGE_FOLDER_SAMPLE)
    sample = file_names[::step][:IMAGE_FOLDER_SAMPLE]
    found = [sum((candidate / name).is_file() for name in sample) for candidate in candidates]
    best = max(range(len(candidates)), key=lambda i: (found[i], -i)) if sample else 0
    return (candidates[best] if found and found[best] else folder), candidates


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
        self.keypoints: dict[str, KeypointSchema] = {}

    def instances(self, document: dict[str, Any]) -> Dataset:
        category_items = _list(document, "categories", self.file_name)
        categories = self._categories(category_items)
        self.keypoints = self._keypoint_schemas(category_items, categories)
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
        used = {ann.label for image in images.values() for ann in image.annotations}
        labels = [name for category_id, name in categories.items() if not self._only_a_supercategory(category_items, name, used)]
        return Dataset(
            labels=labels, images=list(images.values()), problems=self.problems,
            label_ids={name: category_id for category_id, name in categories.items() if name in labels},
            keypoints=self.keypoints,
        )

    def _only_a_supercategory(self, items: list[Any], name: str, used: set[str]) -> bool:
        """Placeholders that are no label, when unused: Roboflow lists the dataset's name as category 0, the
        supercategory of the real ones; labelme2coco lists `_background_`. Noted among the problems, so
        that they are not left out in silence."""
        if name in used:
            return False
        if name == "_background_":
            self.problems.append(f"{self.file_name}: category '_background_' (labelme's) is no object class; not made a label")
            return True
        if not any(item.get("supercategory") == name and item.get("name") != name for item in items):
            return False
        self.problems.append(f"{self.file_name}: category {name!r} is only the supercategory of others; not made a label")
        return True

    def _keypoint_schemas(self, items: list[Any], categories: dict[int, str]) -> dict[str, KeypointSchema]:
        """Keypoint names and skeleton of each category that declares them (COCO person_keypoints)."""
        schemas: dict[str, KeypointSchema] = {}
        for item in items:
            names = item.get("keypoints")
            if names is None:
                continue
            name = categories[int(item["id"])]
            skeleton = item.get("skeleton") or []
            try:
                if not isinstance(names, list) or not isinstance(skeleton, list):
                    raise StudioError("keypoints and skeleton must be lists")
                schemas[name] = KeypointSchema(tuple(names), tuple((_as_int(i, "bone"), _as_int(j, "bone")) for i, j in skeleton))
            except (StudioError, TypeError, ValueError) as exc:
                raise FormatError(f"{self.file_name}: category {name!r}: bad keypoints or skeleton ({exc})") from None
        return schemas

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
        annotation = self._shape_and_fields(item, where, categories[category_id], size)  # type: ignore[arg-type]
        # COCO's evaluation uses the file's bbox and area, not ones recomputed from the segmentation
        if isinstance(item.get("bbox"), list) and len(item["bbox"]) == 4 and not isinstance(annotation.shape, Box):
            annotation.bbox = tuple(_json_number(v, f"{where} bbox") for v in item["bbox"])  # type: ignore[assignment]
        if item.get("area") is not None:
            annotation.area = _json_number(item["area"], f"{where} area")
        return image_id, annotation

    def _shape_and_fields(
        self, item: dict[str, Any], where: str, label: str, size: tuple[int, int] | None
    ) -> DatasetAnnotation:
        unknown = {k: v for k, v in item.items() if k not in _KNOWN_KEYS}
        keypoints = _keypoints(item, where, self.keypoints.get(label))
        if keypoints is not None:
            shape: Shape = keypoints
            if item.get("segmentation"):  # a person's outline beside its keypoints: kept where it was
                unknown["segmentation"] = item["segmentation"]
        else:
            shape = _shape(item, where, size, self.problems)
            unknown.update({k: item[k] for k in ("keypoints", "num_keypoints") if k in item})
        score = _json_number(item["score"], f"{where} score") if item.get("score") is not None else None
        attributes = item.get("attributes", {})
        if not isinstance(attributes, dict):
            raise FormatError(f"{where}: attributes must be an object, got {type(attributes).__name__}")
        attributes = dict(attributes)
        if unknown:
            attributes[FILE_KEYS] = unknown
        iscrowd = item.get("iscrowd", 0)
        if iscrowd not in (0, 1) or isinstance(iscrowd, bool):
            raise FormatError(f"{where}: iscrowd must be 0 or 1, got {iscrowd!r}")
        if iscrowd:
            attributes["iscrowd"] = 1
        track_id = item.get("track_id")
        track_id = None if track_id is None else _as_int(track_id, f"{where} track_id")
        return DatasetAnnotation(label, shape, score, attributes, track_id)


def _keypoints(item: dict[str, Any], where: str, schema: KeypointSchema | None) -> Points | None:
    """COCO keypoints [x1, y1, v1, ...] as a Points shape, for a category that declares keypoints and an
    annotation that labels at least one (a crowd region has none: it stays a region)."""
    flat = item.get("keypoints")
    if schema is None or flat is None:
        return None
    if not isinstance(flat, list) or len(flat) != 3 * len(schema.names):
        raise FormatError(f"{where}: keypoints must be {3 * len(schema.names)} numbers (x, y, v per keypoint)")
    values = [_json_number(v, f"{where} keypoints") for v in flat]
    visibility = [int(v) for v in values[2::3]]
    if not any(visibility):
        return None
    try:
        return Points(list(zip(values[0::3], values[1::3], strict=True)), visibility)
    except InvalidShapeError as exc:
        raise FormatError(f"{where}: {exc}") from None


def _shape(item: dict[str, Any], where: str, size: tuple[int, int] | None, problems: list[str] | None = None) -> Shape:
    """The annotation's region: its segmentation when it has one (polygons or RLE), else its bbox.

    A polygon part of fewer than 3 points (labelme2coco writes them for a 2-click polygon) is dropped,
    noted in `problems`, and the valid parts are kept."""
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
            parts = [[_json_number(v, f"{where} segmentation") for v in part] for part in segmentation]
            valid = [part for part in parts if len(part) >= 6]
            if valid and len(valid) < len(parts) and problems is not None:
                dropped = [str(i + 1) for i, part in enumerate(parts) if len(part) < 6]
                problems.append(f"{where}: dropped polygon part {', '.join(dropped)} of {len(parts)} (fewer than 3 points)")
            if not valid and len(parts) == 1 and len(parts[0]) == 4:
                # labelme2coco writes a rectangle as its two corners: that is a box, the file's bbox if stated
                x1, y1, x2, y2 = parts[0]
                if isinstance(item.get("bbox"), list) and len(item["bbox"]) == 4:
                    return Box.from_xywh(*(_json_number(v, f"{where} bbox") for v in item["bbox"]))
                return Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
            return Polygon.from_flat(valid or parts)
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
                entry = _annotation_json(annotation, size, dataset.keypoints.get(annotation.label))
                entry["id"] = len(annotations_json) + 1
                entry["image_id"] = image.source_id
                entry["category_id"] = dataset.label_ids[annotation.label]
                annotations_json.append(entry)
        categories = [_category_json(name, category_id, dataset.keypoints.get(name)) for name, category_id in dataset.label_ids.items()]
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
        if isinstance(category_id, int) and category_id >= 0 and category_id not in given.values():
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


def _category_json(name: str, category_id: int, keypoints: KeypointSchema | None) -> dict[str, Any]:
    category: dict[str, Any] = {"id": category_id, "name": name, "supercategory": ""}
    if keypoints is not None:
        category["keypoints"] = list(keypoints.names)
        category["skeleton"] = [list(bone) for bone in keypoints.skeleton]
    return category


def _annotation_json(
    annotation: DatasetAnnotation, size: tuple[int, int], keypoints: KeypointSchema | None = None
) -> dict[str, Any]:
    """bbox, segmentation and area as COCO has them. The bbox and area stored with the annotation are
    written where given (those an imported file stated, which COCO's evaluation uses); otherwise the
    area is the rasterized region's, except for boxes, whose area is exact. A box has no segmentation
    key (an empty list crashes pycocotools' annToMask). Boxes take the short path: an export of 100,000
    of them is mostly this function."""
    shape = annotation.shape
    if isinstance(shape, Box):
        width, height = shape.x2 - shape.x1, shape.y2 - shape.y1
        entry: dict[str, Any] = {"bbox": [shape.x1, shape.y1, width, height], "area": width * height}
    elif isinstance(shape, (Polygon, Mask, RotatedBox)):
        entry = {"bbox": list(shape.bbox())}
        if annotation.area is None:
            entry["area"] = float(mask_utils.area(geometry.to_rle(shape, size)))
        if isinstance(shape, Mask):
            entry["segmentation"] = {"size": list(shape.size), "counts": shape.counts}
        elif isinstance(shape, Polygon):
            entry["segmentation"] = shape.to_flat()
        else:
            entry["segmentation"] = [[v for point in shape.corners() for v in point]]
    elif isinstance(shape, Points) and keypoints is not None and len(shape.points) == len(keypoints.names):
        visibility = shape.visibility or (2,) * len(shape.points)
        _, _, width, height = shape.bbox()
        entry = {
            "keypoints": [v for (x, y), flag in zip(shape.points, visibility, strict=True) for v in (x, y, flag)],
            "num_keypoints": sum(flag > 0 for flag in visibility),
            "bbox": list(shape.bbox()),
            "area": width * height,  # COCO's keypoint similarity scales by the object's area
        }
    else:  # other points and polylines cover no area
        entry = {"bbox": list(shape.bbox()), "area": 0.0}
    if not isinstance(shape, (Box, Polygon, Mask)) and "keypoints" not in entry:
        entry["studio_shape"] = shape.to_json()
    if annotation.bbox is not None:
        entry["bbox"] = list(annotation.bbox)
    if annotation.area is not None and (annotation.area or "keypoints" not in entry):
        entry["area"] = annotation.area
    entry["iscrowd"] = 0
    if annotation.attributes:
        attributes = dict(annotation.attributes)
        entry["iscrowd"] = 1 if attributes.pop("iscrowd", 0) else 0
        for key, value in (attributes.pop(FILE_KEYS, None) or {}).items():
            entry.setdefault(key, value)  # the file's own keys, back where they were
        if attributes:
            entry["attributes"] = attributes
    if annotation.score is not None:
        entry["score"] = annotation.score
    if annotation.track_id is not None:
        entry["track_id"] = annotation.track_id
    return entry
