"""YOLO datasets as ultralytics, darknet, CVAT and Roboflow write them.

Layouts read: an ultralytics data.yaml (`names` as a list or a {id: name} dict; `train`/`val`/`test` as
folders, lists of folders or .txt lists of images; Roboflow's `train: ../train/images` resolved as
ultralytics resolves it, by dropping the `../` when the path does not exist; a split listed but absent
is left out), darknet's obj.data (CVAT's "YOLO 1.1": obj.names, train.txt listing `data/obj_train_data/
x.jpg`, the `data/` prefix being darknet's working folder), and a plain folder of images, or images/ +
labels/, with classes.txt or obj.names. An image's label file is found by ultralytics' rule (the last
/images/ becomes /labels/), else beside the image (darknet, CVAT).

Label lines are `class cx cy w h` (a box) or `class x1 y1 x2 y2 ...` (a polygon), normalised to [0, 1],
with an optional trailing confidence (ultralytics' save_conf). Image sizes come from the image files.

Class ids. Every declared class becomes a label, used or not, and the class id of each name is
remembered in the project, so an export gives every class the id it had (a model trained on the export
keeps its meaning); classes new to the project take the ids after them, and an id whose class is not
exported is named `unused_<id>` so the ids stay 0..n-1 as ultralytics requires.

Writing produces a dataset that ultralytics trains on as it is: 5 columns a box, no confidences unless
asked (`scores=True`), since ultralytics' dataset check refuses a sixth column.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError, MediaError
from studio.core.shapes import Box, Mask, Polygon, RotatedBox, Shape
from studio.core.types import IMAGE_SUFFIXES
from studio.io import safe_files
from studio.io.formats.base import Dataset, DatasetAnnotation, DatasetImage, number, skip_or_raise, write_image
from studio.io.media import probe

DATA_YAML = "data.yaml"
CLASSES_TXT = "classes.txt"
NAMES_FILES = (CLASSES_TXT, "obj.names")
"""Class-name files of a folder without data.yaml: labelImg / Label Studio's classes.txt, darknet's obj.names."""
SPLITS = ("train", "val", "test")
DARKNET_SPLITS = ("train", "valid", "test")
VAL_EVERY = 5
"""One image in VAL_EVERY goes to the validation split on export (by a hash of its name: stable)."""
COORD_TOLERANCE = 0.01
"""How far past [0, 1] a normalised coordinate may be (rounding in other tools' files); clipped."""

# ---- reading ---------------------------------------------------------------------------------------


@dataclass
class _Layout:
    root: Path
    names: list[str]
    images: list[Path]
    label_folders: list[Path]
    """Folders searched for label files without an image."""
    names_file: Path | None = None
    list_files: tuple[Path, ...] = ()
    """Split lists (train.txt): text files that are not label files."""


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A YOLO dataset: its data.yaml or obj.data, or a folder holding one, or a folder with classes.txt."""
    layout = _locate(Path(path))
    problems: list[str] = []
    label_files = {image: _label_file(image) for image in layout.images}
    images = [
        _read_image(image, label_files[image], layout.root, layout.names, problems, skip_bad) for image in layout.images
    ]
    expected = set(label_files.values()) | {layout.root / name for name in NAMES_FILES}
    expected |= {*layout.list_files, *([layout.names_file] if layout.names_file else [])}
    for folder in layout.label_folders:
        for orphan in sorted(set(safe_files.files_under(folder, [".txt"])) - expected):
            skip_or_raise(problems, f"{_shown(orphan, layout.root)}: label file without an image", skip_bad)
    return Dataset(
        labels=layout.names,
        images=[i for i in images if i is not None],
        image_root=layout.root,
        problems=problems,
        label_ids={name: index for index, name in enumerate(layout.names)},
    )


def _locate(path: Path) -> _Layout:
    if path.is_file():
        if path.suffix in (".yaml", ".yml"):
            return _layout_from_yaml(path)
        if path.suffix == ".data":
            return _layout_from_darknet(path)
        raise FormatError(f"{path}: expected a YOLO data.yaml, a darknet obj.data or a dataset folder")
    if not path.is_dir():
        raise FormatError(f"{path}: not a YOLO dataset folder or data.yaml")
    for pattern, layout in (("*.yaml", _layout_from_yaml), ("*.data", _layout_from_darknet)):
        preferred = path / (DATA_YAML if pattern == "*.yaml" else "obj.data")
        candidates = [preferred] if preferred.is_file() else sorted(path.glob(pattern))
        if len(candidates) == 1:
            return layout(candidates[0])
    names_file = next((path / name for name in NAMES_FILES if (path / name).is_file()), None)
    if names_file is None:
        raise FormatError(f"{path}: no {DATA_YAML}, obj.data, {CLASSES_TXT} or obj.names naming the classes")
    return _Layout(path, _names_from_file(names_file), _images_under(path), [path], names_file)


def _shown(path: Path, root: Path) -> str:
    """A path for messages: relative to the dataset, as the user knows it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _layout_from_yaml(yaml_path: Path) -> _Layout:
    """Root folder, class names, image files and label folders of an ultralytics data.yaml."""
    data = safe_files.load_yaml(yaml_path)  # no aliases: a 300-byte "billion laughs" file expands to GBs
    if not isinstance(data, dict):
        raise FormatError(f"{yaml_path.name}: expected a mapping with `names` and `train`/`val`")
    names = _names(data.get("names"), yaml_path.name)
    root = yaml_path.parent
    if data.get("path") is not None:
        # ultralytics resolves a relative `path` against its own datasets folder; for a dataset copied
        # elsewhere it usually means the yaml's own folder, which is the fallback here
        # elsewhere it usually means the yaml's own folder, which is the fallback here. A `path` outside
        # the yaml's folder that exists (`path: /etc`) is refused, never read: the dataset is what the
        # user gave Studio (an absolute path from the author's machine, absent here, still falls back)
        given = safe_files.inside(yaml_path.parent, str(data["path"]))
        if given is None and (yaml_path.parent / str(data["path"])).exists():
            raise FormatError(f"{yaml_path.name}: `path` lies outside the dataset folder; Studio reads only files inside it")
        root = given if given is not None and given.is_dir() else yaml_path.parent
    images: dict[Path, None] = {}  # ordered set: train and val may name the same folder
    folders: list[Path] = []
    looked: list[str] = []
    lists: list[Path] = []
    for split in SPLITS:
        entries = data.get(split)
        if entries is None:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, str):
                raise FormatError(f"{yaml_path.name}: `{split}` must be a path or a list of paths, got {entry!r}")
            location = _inside_dataset(root, entry, f"{yaml_path.name}: `{split}`")
            looked.append(str(root / entry))
            if location is None:
                continue  # a split listed but absent (Roboflow lists `test` when there is none) is no error by itself
            if location.is_dir():
                images.update(dict.fromkeys(_images_under(location)))
                folders.append(_label_path(location / "x").parent)
            elif location.is_file() and location.suffix == ".txt":
                images.update(dict.fromkeys(_images_listed(location, [location.parent], root)))
                lists.append(location)
    if not looked:
        raise FormatError(f"{yaml_path.name}: names no `train`, `val` or `test` images")
    if not folders and not images:
        raise FormatError(f"{yaml_path.name}: split folders not found (looked for {', '.join(looked)})")
    return _Layout(root, names, list(images), [f for f in folders if f.is_dir()], list_files=tuple(lists))


def _layout_from_darknet(data_path: Path) -> _Layout:
    """darknet's obj.data (`names = data/obj.names`, `train = data/train.txt`, ...), as CVAT exports it.

    Its paths are relative to darknet's working folder, which holds `data/`; a path is looked up beside
    the obj.data, from its parent, and without the `data/` prefix (how datumaro reads CVAT's export).
    """
    data_path = data_path.resolve()  # image paths in its lists are resolved too
    lines = safe_files.read_text(data_path).splitlines()
    entries = {key.strip(): value.strip() for key, sep, value in (line.partition("=") for line in lines) if sep}
    bases = [data_path.parent, data_path.parent.parent]
    if "names" not in entries:
        raise FormatError(f"{data_path.name}: no `names = ...` line naming the class-name file")
    names_file = _darknet_path(entries["names"], bases, data_path)
    images: dict[Path, None] = {}
    lists = [_darknet_path(entries[split], bases, data_path) for split in DARKNET_SPLITS if split in entries]
    for list_file in lists:
        images.update(dict.fromkeys(_images_listed(list_file, bases, data_path.parent)))
    if not images:
        raise FormatError(f"{data_path.name}: lists no images (`train = ...` or `valid = ...`)")
    folders = sorted({image.parent for image in images if image.parent != data_path.parent})
    return _Layout(data_path.parent, _names_from_file(names_file), list(images), folders, names_file, tuple(lists))


def _darknet_path(entry: str, bases: list[Path], where: Path) -> Path:
    entry = entry.replace("\\", "/")
    relative = [entry, entry[len("data/") :]] if entry.startswith("data/") else [entry]
    candidates = [base / path for path in relative for base in bases]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        raise FormatError(f"{where.name}: {entry} not found (looked in {', '.join(str(c) for c in candidates)})")
    return found


def _inside_dataset(root: Path, entry: str, where: str) -> Path | None:
    """A split's folder or list file (None when absent), which must lie inside the dataset folder
    (`train: /` would walk the whole disk). Like ultralytics, `../x` is also tried as `x`: Roboflow's data.yaml says
    `train: ../train/images` for the train/ beside it."""
    location = safe_files.inside(root, entry)
    if location is None and entry.replace("\\", "/").startswith("../"):
        location = safe_files.inside(root, entry[3:])
    if location is not None and not location.exists():
        return None
    if location is None or not safe_files.really_inside(root, location):
        raise FormatError(f"{where} {entry!r:.80} lies outside the dataset folder; Studio reads only files inside it")
    return location


def _names(raw: Any, where: str) -> list[str]:
    """Class names from a list, or from a dict {0: name, 1: name, ...} as ultralytics writes them."""
    if isinstance(raw, dict):
        try:
            ordered = {int(k): v for k, v in raw.items()}
        except (TypeError, ValueError):
            raise FormatError(f"{where}: `names` keys must be class numbers 0, 1, ...") from None
        if sorted(ordered) != list(range(len(ordered))):
            raise FormatError(f"{where}: `names` keys must be 0..{len(ordered) - 1} without gaps, got {sorted(ordered)}")
        raw = [ordered[i] for i in range(len(ordered))]
    if not isinstance(raw, list) or not raw:
        raise FormatError(f"{where}: `names` must be a non-empty list or a {{number: name}} mapping")
    names = [str(name).strip() for name in raw]
    if not all(names) or len(set(names)) != len(names):
        raise FormatError(f"{where}: class names must be non-empty and distinct, got {names}")
    return names


def _names_from_file(names_file: Path) -> list[str]:
    """Class names one a line (classes.txt, obj.names); line i names class i."""
    text = safe_files.read_text(names_file)
    return _names([line for line in text.splitlines() if line.strip()], names_file.name)


def _images_under(folder: Path) -> list[Path]:
    return safe_files.files_under(folder, IMAGE_SUFFIXES, any_case=True)  # a FIFO x.jpg is kept: probe reports it


def _images_listed(list_file: Path, bases: list[Path], root: Path) -> list[Path]:
    """Images named one per line in a split .txt: relative to the list file's folder (as ultralytics),
    or to darknet's working folder, with or without its `data/` prefix (as CVAT writes them). Each must
    lie inside the dataset folder `root`."""
    lines = [line.strip() for line in safe_files.read_text(list_file).splitlines() if line.strip()]
    found = []
    for number_, line in enumerate(lines, 1):
        if os.path.isabs(line) or safe_files.inside(root, os.path.relpath(os.path.join(list_file.parent, line), root)) is None:
            raise FormatError(f"{list_file.name}:{number_}: names an image outside the dataset folder")
        try:
            image = _darknet_path(line, bases, list_file).resolve()
        except FormatError:
            image = (list_file.parent / line).resolve()  # reported as a missing image when read
        if not safe_files.really_inside(root, image):
            raise FormatError(f"{list_file.name}:{number_}: names an image outside the dataset folder")
        found.append(image)
    return found


def _label_path(image: Path) -> Path:
    """ultralytics' rule (img2label_paths): the last /images/ becomes /labels/, the suffix .txt."""
    parts = image.parts
    if "images" in parts[:-1]:
        at = len(parts) - 2 - parts[-2::-1].index("images")
        image = Path(*parts[:at], "labels", *parts[at + 1 :])
    return image.with_suffix(".txt")


def _label_file(image: Path) -> Path:
    """ultralytics' rule when that file exists (or the image is under images/), else x.txt beside x.jpg."""
    by_rule = _label_path(image)
    beside = image.with_suffix(".txt")
    return by_rule if by_rule.is_file() or not beside.is_file() else beside


def _read_image(
    image: Path, label_file: Path, root: Path, names: list[str], problems: list[str], skip_bad: bool
) -> DatasetImage | None:
    shown = _shown(image, root)
    try:
        info = probe(image)
    except MediaError as exc:
        skip_or_raise(problems, str(exc), skip_bad)
        return None
    result = DatasetImage(shown, info.width, info.height)
    if not label_file.is_file():
        if os.path.lexists(label_file):  # a FIFO or a folder: reported, never opened (a FIFO blocks)
            skip_or_raise(problems, f"{_shown(label_file, root)}: not a regular file", skip_bad)
            return None
        return result  # no label file: an image without objects, as ultralytics reads it
    try:
        text = safe_files.read_text(label_file)
    except FormatError as exc:
        skip_or_raise(problems, f"{_shown(label_file, root)}: {str(exc).partition(': ')[2]}", skip_bad)
        return None
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            result.annotations.append(_parse_line(line, names, info.width, info.height))
        except FormatError as exc:
            skip_or_raise(problems, f"{_shown(label_file, root)}:{line_number}: {exc}", skip_bad)
    return result


def _parse_line(line: str, names: list[str], width: int, height: int) -> DatasetAnnotation:
    values = [number(v, "value") for v in line.split()]
    class_value, coords = values[0], values[1:]
    if class_value != int(class_value) or not 0 <= class_value < len(names):
        raise FormatError(f"class {line.split()[0]} is not one of 0..{len(names) - 1}")
    score = None
    if len(coords) == 5 or (len(coords) >= 7 and len(coords) % 2 == 1):
        score, coords = coords[-1], coords[:-1]
        if not 0 <= score <= 1:
            raise FormatError(f"confidence {score} is not within [0, 1]")
    if len(coords) != 4 and (len(coords) < 6 or len(coords) % 2):
        raise FormatError(
            f"expected `class cx cy w h` or `class x1 y1 x2 y2 x3 y3 ...` (+ confidence), got {len(values)} values"
        )
    if any(not -COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE for v in coords):
        raise FormatError("coordinates must be normalised to [0, 1]")
    try:
        shape = _shape(np.clip(coords, 0.0, 1.0), width, height)
    except InvalidShapeError as exc:
        raise FormatError(str(exc)) from None
    return DatasetAnnotation(names[int(class_value)], shape, score)


def _shape(coords: np.ndarray, width: int, height: int) -> Shape:
    if len(coords) == 4:
        cx, cy, w, h = coords.tolist()
        x1, y1 = max(cx - w / 2, 0.0), max(cy - h / 2, 0.0)
        x2, y2 = min(cx + w / 2, 1.0), min(cy + h / 2, 1.0)
        return Box(x1 * width, y1 * height, x2 * width, y2 * height)
    return Polygon([(coords.reshape(-1, 2) * (width, height)).tolist()])


# ---- writing ---------------------------------------------------------------------------------------


def write(dataset: Dataset, out: Path, *, copy_images: bool = True, scores: bool = False) -> list[Path]:
    """OUT/data.yaml, OUT/labels/{train,val}/ and (when `copy_images`) OUT/images/{train,val}/.

    Images are linked or copied, not referenced where they are: ultralytics finds an image's labels by
    replacing /images/ with /labels/ in its path. A dataset with any polygon or mask is written as a
    segmentation dataset (boxes as 4-corner polygons), since ultralytics drops the boxes of a mixed one.
    `scores` adds each prediction's confidence as a last column (ultralytics' save_conf), which
    ultralytics' dataset check refuses; without it a run exports as a trainable dataset.
    Class ids follow `dataset.label_ids` (the ids remembered from this format) and are stored back there.
    """
    out = Path(out)
    class_ids = _class_ids(dataset)
    dataset.label_ids = dict(class_ids)
    segments = any(isinstance(a.shape, (Polygon, Mask, RotatedBox)) for i in dataset.images for a in i.annotations)
    files: list[Path] = []
    splits = _splits(dataset.images)
    for image, split in zip(dataset.images, splits, strict=True):
        width, height = _size(image)
        lines = [_line(a, class_ids[a.label], width, height, segments=segments, score=scores) for a in image.annotations]
        relative = _safe_relative(image.file_name)
        label_file = out / "labels" / split / relative.with_suffix(".txt")
        label_file.parent.mkdir(parents=True, exist_ok=True)
        label_file.write_text("".join(line + "\n" for line in lines if line))
        files.append(label_file)
        if copy_images:
            destination = out / "images" / split / relative
            write_image(image, destination)
            files.append(destination)
    # No `path:` key: ultralytics resolves a relative one against its own datasets folder, and an
    # absolute one breaks when the folder moves. Without it, paths are relative to this file.
    # A one-image dataset has no validation image; it validates on its training image.
    val = "images/val" if "val" in splits else "images/train"
    by_id = {number: name for name, number in class_ids.items()}
    names = {number: by_id.get(number, f"unused_{number}") for number in range(max(by_id, default=-1) + 1)}
    data = {"train": "images/train", "val": val, "names": names}
    (out / DATA_YAML).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return [out / DATA_YAML, *files]


def _class_ids(dataset: Dataset) -> dict[str, int]:
    """Each label's class id: the remembered one, else the next free id in the dataset's label order."""
    class_ids = {name: number for name, number in dataset.label_ids.items() if name in dataset.labels}
    taken = set(class_ids.values())
    free = (number for number in range(len(dataset.labels) + len(taken)) if number not in taken)
    for name in dataset.labels:
        if name not in class_ids:
            class_ids[name] = next(free)
    return class_ids


def _splits(images: list[DatasetImage]) -> list[str]:
    """train or val for each image, stable across exports; both splits used when there are >= 2 images.

    When every image carries its side (training from the project's stored split), that side is used.
    """
    if images and all(image.split in SPLITS for image in images):
        return [str(image.split) for image in images]
    hashes = [zlib.crc32(image.file_name.encode()) for image in images]
    splits = ["val" if h % VAL_EVERY == 0 else "train" for h in hashes]
    if len(images) >= 2 and len(set(splits)) == 1:
        # all landed on one side: move the image with the smallest hash (a stable choice) across
        splits[hashes.index(min(hashes))] = "train" if splits[0] == "val" else "val"
    return splits


def _size(image: DatasetImage) -> tuple[int, int]:
    if image.width is not None and image.height is not None:
        return image.width, image.height
    if image.source is None:
        raise FormatError(f"{image.file_name}: image size unknown, cannot normalise YOLO coordinates")
    info = probe(image.source)
    return info.width, info.height


def _safe_relative(file_name: str) -> PurePosixPath:
    """The image's path below images/<split>/, with folders named `images` renamed: ultralytics would
    take the last /images/ in the path for the one to replace with /labels/."""
    parts = PurePosixPath(file_name.replace("\\", "/")).parts
    return PurePosixPath(*["images_" if part == "images" else part for part in parts[:-1]], parts[-1])


def _line(annotation: DatasetAnnotation, class_id: int, width: int, height: int, *, segments: bool, score: bool) -> str:
    """One label line, or "" for an empty mask (nothing to write)."""
    shape = annotation.shape
    scale = np.array([width, height], dtype=np.float64)
    if isinstance(shape, Box) and not segments:
        x, y, w, h = shape.bbox()
        values = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
    elif isinstance(shape, (Box, Polygon, Mask, RotatedBox)):
        polygon = _as_polygon(shape)
        if polygon is None:
            return ""
        values = (_merge_parts([np.asarray(part) for part in polygon.parts]) / scale).reshape(-1).tolist()
    else:
        raise FormatError(
            f"YOLO has no form for a {shape.kind!r} ({annotation.label!r}); leave that label out (--labels) "
            "or export to COCO"
        )
    if score and annotation.score is not None:
        values.append(annotation.score)
    return " ".join([str(class_id), *(format(v, ".10g") for v in values)])


def _as_polygon(shape: Box | Polygon | Mask | RotatedBox) -> Polygon | None:
    if isinstance(shape, Polygon):
        return shape
    if isinstance(shape, Mask):
        return geometry.mask_to_polygon(shape)
    if isinstance(shape, Box):
        return Polygon([[(shape.x1, shape.y1), (shape.x2, shape.y1), (shape.x2, shape.y2), (shape.x1, shape.y2)]])
    return Polygon([shape.corners()])


def _merge_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Join a polygon's parts into one ring, as YOLO wants one polygon per object.

    A port of ultralytics.data.converter.merge_multi_segment (studio.io may not import ultralytics):
    consecutive parts are linked at their closest points by a zero-width bridge walked out and back,
    so the ring covers the same pixels as the parts. Returns an (N, 2) array.
    """
    if len(parts) == 1:
        return parts[0]
    segments = [part.copy() for part in parts]
    links: list[list[int]] = [[] for _ in segments]
    for i in range(1, len(segments)):
        distances = ((segments[i - 1][:, None, :] - segments[i][None, :, :]) ** 2).sum(-1)
        a, b = np.unravel_index(np.argmin(distances), distances.shape)
        links[i - 1].append(int(a))
        links[i].append(int(b))
    merged: list[np.ndarray] = []
    last = len(segments) - 1
    for i, idx in enumerate(links):  # forward: walk each part from its first link
        if len(idx) == 2 and idx[0] > idx[1]:
            idx = [len(segments[i]) - 1 - x for x in idx]
            segments[i] = segments[i][::-1, :]
        segments[i] = np.roll(segments[i], -idx[0], axis=0)
        segments[i] = np.concatenate([segments[i], segments[i][:1]])
        if i in (0, last):
            merged.append(segments[i])
        else:
            merged.append(segments[i][: idx[1] - idx[0] + 1])
    for i in range(last - 1, 0, -1):  # back: the rest of each middle part
        merged.append(segments[i][abs(links[i][1] - links[i][0]) :])
    return np.concatenate(merged)
