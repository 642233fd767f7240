"""YOLO (ultralytics) datasets: data.yaml + images/<split>/ + labels/<split>/, or a plain folder of
images with same-name .txt files and classes.txt.

Label lines are `class cx cy w h` (a box) or `class x1 y1 x2 y2 ...` (a polygon), normalised to [0, 1],
with an optional trailing confidence (ultralytics' save_conf). Image sizes come from the image files.
Writing produces a dataset that ultralytics trains on as it is.
"""

from __future__ import annotations

import zlib
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError, MediaError
from studio.core.shapes import Box, Mask, Polygon, RotatedBox, Shape
from studio.core.types import IMAGE_SUFFIXES
from studio.io.formats.base import Dataset, DatasetAnnotation, DatasetImage, number, skip_or_raise, write_image
from studio.io.media import probe

DATA_YAML = "data.yaml"
CLASSES_TXT = "classes.txt"
SPLITS = ("train", "val", "test")
VAL_EVERY = 5
"""One image in VAL_EVERY goes to the validation split on export (by a hash of its name: stable)."""
COORD_TOLERANCE = 0.01
"""How far past [0, 1] a normalised coordinate may be (rounding in other tools' files); clipped."""

# ---- reading ---------------------------------------------------------------------------------------


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A YOLO dataset: its data.yaml, a folder holding one, or a plain folder with classes.txt."""
    path = Path(path)
    yaml_path = path if path.is_file() else _find_yaml(path)
    if yaml_path is not None:
        root, names, image_files, label_folders = _layout_from_yaml(yaml_path)
    else:
        root, names = path, _names_from_classes_txt(path)
        image_files = _images_under(path)
        label_folders = [path]
    label_of = _label_path if yaml_path is not None else _label_beside
    problems: list[str] = []
    images = [_read_image(image, label_of(image), root, names, problems, skip_bad) for image in image_files]
    expected = {label_of(image) for image in image_files} | {root / CLASSES_TXT}
    for folder in label_folders:
        for orphan in sorted(set(folder.rglob("*.txt")) - expected):
            skip_or_raise(problems, f"{_shown(orphan, root)}: label file without an image", skip_bad)
    return Dataset(labels=names, images=[i for i in images if i is not None], image_root=root, problems=problems)


def _find_yaml(folder: Path) -> Path | None:
    if (folder / DATA_YAML).is_file():
        return folder / DATA_YAML
    candidates = sorted(folder.glob("*.yaml"))
    return candidates[0] if len(candidates) == 1 else None


def _shown(path: Path, root: Path) -> str:
    """A path for messages: relative to the dataset, as the user knows it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _layout_from_yaml(yaml_path: Path) -> tuple[Path, list[str], list[Path], list[Path]]:
    """Root folder, class names, image files and label folders of an ultralytics data.yaml."""
    try:
        data = yaml.safe_load(yaml_path.read_text())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{yaml_path.name}: not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise FormatError(f"{yaml_path.name}: expected a mapping with `names` and `train`/`val`")
    names = _names(data.get("names"), yaml_path.name)
    root = yaml_path.parent
    if data.get("path") is not None:
        # ultralytics resolves a relative `path` against its own datasets folder; for a dataset copied
        # elsewhere it usually means the yaml's own folder, which is the fallback here
        given = yaml_path.parent / str(data["path"])
        root = given.resolve() if given.is_dir() else yaml_path.parent
    images: dict[Path, None] = {}  # ordered set: train and val may name the same folder
    folders: list[Path] = []
    for split in SPLITS:
        entries = data.get(split)
        if entries is None:
            continue
        for entry in entries if isinstance(entries, list) else [entries]:
            if not isinstance(entry, str):
                raise FormatError(f"{yaml_path.name}: `{split}` must be a path or a list of paths, got {entry!r}")
            location = root / entry
            if location.is_dir():
                images.update(dict.fromkeys(_images_under(location)))
                folders.append(_label_path(location / "x").parent)
            elif location.is_file() and location.suffix == ".txt":
                images.update(dict.fromkeys(_images_listed(location)))
            else:
                raise FormatError(f"{yaml_path.name}: `{split}` folder {entry} not found under {root}")
    if not images and not folders:
        raise FormatError(f"{yaml_path.name}: names no `train`, `val` or `test` images")
    return root, names, list(images), [f for f in folders if f.is_dir()]


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


def _names_from_classes_txt(folder: Path) -> list[str]:
    classes = folder / CLASSES_TXT
    if not folder.is_dir():
        raise FormatError(f"{folder}: not a YOLO dataset folder or data.yaml")
    if not classes.is_file():
        raise FormatError(f"{folder}: no {DATA_YAML} or {CLASSES_TXT} naming the classes")
    try:
        text = classes.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{CLASSES_TXT}: cannot read: {exc}") from None
    return _names([line for line in text.splitlines() if line.strip()], CLASSES_TXT)


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _images_listed(list_file: Path) -> list[Path]:
    """Images named one per line in a split .txt, relative to the list file's folder (as ultralytics)."""
    try:
        lines = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{list_file.name}: cannot read: {exc}") from None
    return [(list_file.parent / line).resolve() for line in lines]


def _label_path(image: Path) -> Path:
    """ultralytics' rule (img2label_paths): the last /images/ becomes /labels/, the suffix .txt."""
    parts = image.parts
    if "images" in parts[:-1]:
        at = len(parts) - 2 - parts[-2::-1].index("images")
        image = Path(*parts[:at], "labels", *parts[at + 1 :])
    return image.with_suffix(".txt")


def _label_beside(image: Path) -> Path:
    """A plain folder's rule: x.jpg's labels are x.txt next to it."""
    return image.with_suffix(".txt")


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
        return result  # no label file: an image without objects, as ultralytics reads it
    try:
        text = label_file.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        skip_or_raise(problems, f"{_shown(label_file, root)}: cannot read: {exc}", skip_bad)
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


def write(dataset: Dataset, out: Path, *, copy_images: bool = True) -> list[Path]:
    """OUT/data.yaml, OUT/labels/{train,val}/ and (when `copy_images`) OUT/images/{train,val}/.

    Images are linked or copied, not referenced where they are: ultralytics finds an image's labels by
    replacing /images/ with /labels/ in its path. A dataset with any polygon or mask is written as a
    segmentation dataset (boxes as 4-corner polygons), since ultralytics drops the boxes of a mixed one.
    """
    out = Path(out)
    class_ids = {name: index for index, name in enumerate(dataset.labels)}
    segments = any(isinstance(a.shape, (Polygon, Mask, RotatedBox)) for i in dataset.images for a in i.annotations)
    files: list[Path] = []
    splits = _splits(dataset.images)
    for image, split in zip(dataset.images, splits, strict=True):
        width, height = _size(image)
        lines = [_line(a, class_ids[a.label], width, height, segments=segments) for a in image.annotations]
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
    data = {"train": "images/train", "val": val, "names": dict(enumerate(dataset.labels))}
    (out / DATA_YAML).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return [out / DATA_YAML, *files]


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


def _line(annotation: DatasetAnnotation, class_id: int, width: int, height: int, *, segments: bool) -> str:
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
    if annotation.score is not None:
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
